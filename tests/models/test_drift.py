"""Drift statistics against scipy and hand values; the sliding window against numpy over the
last N; the reference profile in a model directory."""

from __future__ import annotations

import json
import math
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import jensenshannon

from models.drift import (
    LENGTH_BIN_EDGES,
    DriftWindow,
    Observation,
    Reference,
    js_distance,
    length_bin,
    load_reference,
    profile,
    psi,
    save_reference,
)
from models.exceptions import ModelDirError
from models.modeldir import CARD_FILE, REFERENCE_FILE, load_model_dir, sha256_file

LABELS = {"sentiment": ["negative", "neutral", "positive"], "topic": ["A", "B", "C", "D"]}


def _random_distribution(rng: np.random.Generator, k: int, zeros: int = 0) -> np.ndarray:
    p = rng.dirichlet(np.ones(k))
    p[:zeros] = 0.0
    return p / p.sum()


@pytest.mark.parametrize("seed", range(6))
def test_js_distance_matches_scipy(seed: int) -> None:
    rng = np.random.default_rng(seed)
    k = int(rng.integers(2, 21))
    p, q = _random_distribution(rng, k, zeros=seed % 2), _random_distribution(rng, k)
    assert math.isclose(js_distance(p, q), float(jensenshannon(p, q, base=2)), rel_tol=1e-9)
    # Counts are normalised first, as scipy does.
    assert math.isclose(js_distance(p * 37, q), js_distance(p, q), rel_tol=1e-12)


def test_js_distance_bounds() -> None:
    assert js_distance([1, 0, 0], [0, 0, 1]) == 1.0
    assert js_distance([0.2, 0.8], [0.2, 0.8]) == 0.0


def test_psi_hand_values() -> None:
    # sum((a - e) * ln(a / e)), bins by hand.
    expected = (0.3 - 0.5) * math.log(0.3 / 0.5) + (0.7 - 0.5) * math.log(0.7 / 0.5)
    assert math.isclose(psi([0.3, 0.7], [0.5, 0.5]), expected, rel_tol=1e-12)
    three = sum(
        (a - e) * math.log(a / e) for a, e in zip([0.2, 0.3, 0.5], [0.25, 0.25, 0.5], strict=True)
    )
    assert math.isclose(psi([20, 30, 50], [0.25, 0.25, 0.5]), three, rel_tol=1e-12)
    assert psi([1, 2, 3], [1, 2, 3]) == 0.0


def test_psi_is_symmetric_kl_sum() -> None:
    rng = np.random.default_rng(7)
    p, q = _random_distribution(rng, 5), _random_distribution(rng, 5)
    kl = float(np.sum(p * np.log(p / q)) + np.sum(q * np.log(q / p)))
    assert math.isclose(psi(p, q), kl, rel_tol=1e-9)


def test_psi_handles_empty_bins() -> None:
    value = psi([0.0, 1.0], [0.5, 0.5])
    assert math.isfinite(value) and value > 1.0


@pytest.mark.parametrize(
    ("a", "b"), [([0.5, 0.5], [1.0]), ([0, 0], [0.5, 0.5]), ([-0.1, 1.1], [0.5, 0.5])]
)
def test_distributions_are_checked(a: list[float], b: list[float]) -> None:
    with pytest.raises(ValueError, match="distribution"):
        psi(a, b)
    with pytest.raises(ValueError, match="distribution"):
        js_distance(a, b)


def test_length_bins() -> None:
    assert [length_bin(n) for n in (1, 8, 9, 16, 17, 512, 513)] == [0, 0, 1, 1, 2, 9, 10]
    assert len(LENGTH_BIN_EDGES) + 1 == 11


def _stream(
    rng: np.random.Generator, n: int, shift: float = 0.0, topics: list[str] = LABELS["topic"]
) -> list[Observation]:
    sent_p = np.array([0.2 + shift, 0.6 - shift, 0.2])
    items = []
    for _ in range(n):
        s = str(rng.choice(LABELS["sentiment"], p=sent_p))
        t = str(rng.choice(topics[:4], p=[0.4, 0.3, 0.2, 0.1]))
        items.append(
            Observation(
                {"sentiment": (s, float(rng.uniform(0.34, 1))), "topic": (t, rng.uniform(0.25, 1))},
                n_tokens=int(rng.integers(1, 700)),
                n_unknown=int(rng.integers(0, 3)),
            )
        )
    return items


def _frame(items: list[Observation]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            **{f"{h}_label": [o.heads[h][0] for o in items] for h in LABELS},
            **{f"{h}_conf": [o.heads[h][1] for o in items] for h in LABELS},
            "tokens": [o.n_tokens for o in items],
            "unknown": [o.n_unknown for o in items],
        }
    )


def test_profile_matches_pandas() -> None:
    items = _stream(np.random.default_rng(0), 500)
    ref = profile(items, LABELS, confidence_floor=0.6, source="test")
    frame = _frame(items)
    for head, labels in LABELS.items():
        shares = frame[f"{head}_label"].value_counts(normalize=True).reindex(labels, fill_value=0)
        assert np.allclose(ref.heads[head].distribution, shares.to_numpy())
        assert math.isclose(
            ref.heads[head].confidence_mean, frame[f"{head}_conf"].mean(), abs_tol=1e-6
        )
        assert ref.heads[head].low_confidence_ratio == (frame[f"{head}_conf"] < 0.6).mean()
    assert math.isclose(ref.unknown_token_ratio, frame.unknown.sum() / frame.tokens.sum())
    bins = pd.cut(frame.tokens, [0, *LENGTH_BIN_EDGES, np.inf], labels=False)
    assert np.allclose(ref.length_distribution, np.bincount(bins, minlength=11) / len(items))
    assert ref.n_documents == 500 and ref.confidence_floor == 0.6


@pytest.mark.parametrize("size", [1, 50, 333])
def test_window_matches_numpy_over_the_last_n(size: int) -> None:
    """After every update, the window equals a from-scratch computation over the last N."""
    rng = np.random.default_rng(size)
    ref = profile(_stream(rng, 400), LABELS)
    stream = _stream(rng, 400) + _stream(rng, 400, shift=0.3)
    window = DriftWindow(ref, size=size, confidence_floor=0.7)
    for i, item in enumerate(stream, start=1):
        window.update(item)
        if i % 97 and i != len(stream):
            continue
        last = stream[max(0, i - size) : i]
        snap, expect = window.get(), profile(last, LABELS, confidence_floor=0.7)
        assert snap.n_documents == len(last) == len(window)
        for head in LABELS:
            got, want = snap.heads[head], expect.heads[head]
            assert math.isclose(got.psi, psi(want.distribution, ref.heads[head].distribution))
            assert math.isclose(
                got.js_distance, js_distance(want.distribution, ref.heads[head].distribution)
            )
            assert math.isclose(got.confidence_mean, want.confidence_mean, abs_tol=1e-9)
            assert got.low_confidence_ratio == want.low_confidence_ratio
        assert math.isclose(snap.unknown_token_ratio, expect.unknown_token_ratio)
        assert math.isclose(
            snap.text_length_psi, psi(expect.length_distribution, ref.length_distribution)
        )


def test_window_sees_a_shift() -> None:
    rng = np.random.default_rng(3)
    ref = profile(_stream(rng, 2000), LABELS)
    same, shifted = DriftWindow(ref, size=500), DriftWindow(ref, size=500)
    for item in _stream(rng, 500):
        same.update(item)
    for item in _stream(rng, 500, shift=0.35):
        shifted.update(item)
    assert same.get().heads["sentiment"].psi < 0.05
    assert shifted.get().heads["sentiment"].psi > 0.25
    assert shifted.get().heads["sentiment"].js_distance > same.get().heads["sentiment"].js_distance


def test_empty_window_and_bad_arguments() -> None:
    ref = profile(_stream(np.random.default_rng(1), 10), LABELS)
    assert DriftWindow(ref, size=5).get().n_documents == 0
    with pytest.raises(ValueError, match="size"):
        DriftWindow(ref, size=0)
    with pytest.raises(ValueError, match="confidence_floor"):
        DriftWindow(ref, size=5, confidence_floor=1.0)
    with pytest.raises(ValueError, match="at least one"):
        profile([], LABELS)


def test_reference_validation() -> None:
    ref = profile(_stream(np.random.default_rng(2), 20), LABELS)
    raw = json.loads(ref.model_dump_json())
    assert Reference.model_validate(raw) == ref
    for broken in (
        {**raw, "heads": {"sentiment": raw["heads"]["sentiment"]}},
        {**raw, "length_distribution": raw["length_distribution"][:-1]},
        {**raw, "length_bin_edges": [8, 8, *raw["length_bin_edges"][2:]]},
        {**raw, "unexpected": 1},
    ):
        with pytest.raises(ValueError):
            Reference.model_validate(broken)


def test_tiny_model_ships_a_reference(tiny_model_dir: Path) -> None:
    model_dir = load_model_dir(tiny_model_dir)
    assert model_dir.card.reference is not None
    ref = load_reference(model_dir)
    assert ref is not None and ref.n_documents == 75
    assert ref.heads["topic"].labels == model_dir.card.topic_labels


def test_save_reference_keeps_every_other_file(
    tiny_model_dir_without_reference: Path, tmp_path: Path
) -> None:
    target = Path(shutil.copytree(tiny_model_dir_without_reference, tmp_path / "m"))
    before = load_model_dir(target)
    assert before.card.reference is None and load_reference(before) is None
    assert "reference" not in json.loads((target / CARD_FILE).read_text())
    hashes = {p.name: sha256_file(p) for p in target.iterdir() if p.name != CARD_FILE}
    topics = before.card.topic_labels
    ref = profile(_stream(np.random.default_rng(4), 30, topics=topics), {**LABELS, "topic": topics})
    after = save_reference(target, ref)
    assert load_reference(after) == ref
    assert after.card.model_dump(exclude={"reference"}) == before.card.model_dump(
        exclude={"reference"}
    )
    assert all(sha256_file(target / name) == h for name, h in hashes.items())


def test_reference_that_disagrees_with_the_card(
    tiny_model_dir_without_reference: Path, tmp_path: Path
) -> None:
    target = Path(shutil.copytree(tiny_model_dir_without_reference, tmp_path / "m"))
    ref = profile(_stream(np.random.default_rng(5), 30), LABELS)  # four topics, not the card's
    with pytest.raises(ModelDirError, match="topic labels differ"):
        save_reference(target, ref)


def test_edited_reference_fails_the_hash_check(tiny_model_dir: Path, tmp_path: Path) -> None:
    target = tmp_path / "m"
    shutil.copytree(tiny_model_dir, target)
    raw = json.loads((target / REFERENCE_FILE).read_text())
    raw["source"] = "edited by hand!"
    (target / REFERENCE_FILE).write_text(json.dumps(raw, indent=2))
    with pytest.raises(ModelDirError, match="does not match the card"):
        load_model_dir(target)
