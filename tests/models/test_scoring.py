"""The scoring core: order, batching, chunking, providers, errors."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from models.encoding import EncodedText, TextEncoder, pad_batch, split_windows
from models.exceptions import ProviderError
from models.scoring import Classifier, Prediction
from models.training.tiny import base_tokenizer_path

HEADLINES = [
    "Acme Corp beats quarterly estimates",
    "Fed raises rates",
    "Oil prices slump as inventories grow sharply across the United States",
    "Globex cuts dividend",
]


@pytest.fixture(scope="module")
def clf(tiny_model_dir: Path) -> Classifier:
    return Classifier.load(tiny_model_dir, provider="cpu", intra_op_threads=1)


def test_predict_shapes_and_probabilities(clf: Classifier) -> None:
    preds = clf.predict(HEADLINES)
    assert len(preds) == len(HEADLINES)
    for p in preds:
        assert isinstance(p, Prediction)
        assert p.sentiment in ("negative", "neutral", "positive")
        assert p.topic in clf.card.topic_labels
        assert math.isclose(sum(p.sentiment_probs.values()), 1.0, abs_tol=1e-6)
        assert math.isclose(sum(p.topic_probs.values()), 1.0, abs_tol=1e-6)
        expected = p.sentiment_probs["positive"] - p.sentiment_probs["negative"]
        assert math.isclose(p.sentiment_score, expected, abs_tol=1e-9)
        assert p.n_chunks == 1 and p.n_tokens > 0
    assert clf.provider == "CPUExecutionProvider"
    assert clf.variant == "int8"
    assert clf.fallback_reason is None


@pytest.mark.parametrize("variant", ["int8", "fp32"])
def test_order_and_batching_do_not_change_results(tiny_model_dir: Path, variant: str) -> None:
    # int8 is weight-only (models/training/weightonly.py): no per-batch activation scales,
    # so a text's numbers do not depend on its batch neighbours or their length.
    clf = Classifier.load(tiny_model_dir, provider="cpu", variant=variant)
    together = clf.predict(HEADLINES, batch_size=64)
    one_by_one = [clf.predict([h], batch_size=1)[0] for h in HEADLINES]
    reversed_ = clf.predict(HEADLINES[::-1], batch_size=3)[::-1]
    for a, b, c in zip(together, one_by_one, reversed_, strict=True):
        for label, prob in a.sentiment_probs.items():
            assert math.isclose(prob, b.sentiment_probs[label], abs_tol=1e-5)
            assert math.isclose(prob, c.sentiment_probs[label], abs_tol=1e-5)
        for label, prob in a.topic_probs.items():
            assert math.isclose(prob, b.topic_probs[label], abs_tol=1e-5)
        assert a.topic == b.topic == c.topic


def test_token_budget_bounds_padded_batches_without_changing_results(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = [*HEADLINES, " ".join(["Acme Corp raised its guidance for the year."] * 3)] * 5
    plain = Classifier.load(tiny_model_dir, provider="cpu", variant="fp32", max_batch_tokens=10**6)
    capped = Classifier.load(tiny_model_dir, provider="cpu", variant="fp32", max_batch_tokens=64)
    assert Classifier.load(tiny_model_dir, provider="cpu").max_batch_tokens == 1024  # CPU default
    shapes: list[tuple[int, int]] = []
    run = capped.run_batch

    def spy(ids: np.ndarray, mask: np.ndarray, types: np.ndarray) -> tuple[np.ndarray, ...]:
        shapes.append(ids.shape)
        return run(ids, mask, types)

    monkeypatch.setattr(capped, "run_batch", spy)
    got, want = capped.predict(texts, batch_size=8), plain.predict(texts, batch_size=8)
    assert sum(rows for rows, _ in shapes) == len(texts)  # every window scored once
    assert all(rows <= 8 and (rows == 1 or rows * width <= 64) for rows, width in shapes), shapes
    assert len(shapes) > -(-len(texts) // 8)  # the budget, not the count, split them
    for a, b in zip(got, want, strict=True):
        assert a.sentiment == b.sentiment and a.topic == b.topic
        for label, prob in a.topic_probs.items():
            assert math.isclose(prob, b.topic_probs[label], abs_tol=1e-4)
    with pytest.raises(ValueError, match="max_batch_tokens"):
        Classifier.load(tiny_model_dir, provider="cpu", max_batch_tokens=0)


def test_long_text_is_chunked_not_truncated(clf: Classifier) -> None:
    sentence = "Acme Corp reported strong results and raised its guidance for the year. "
    text = sentence * 40
    (pred,) = clf.predict([text])
    assert pred.n_chunks > 1
    assert pred.n_tokens > clf.card.max_length
    encoded = clf.tokenize([text])[0]
    assert sum(len(c) - 2 for c in encoded.chunks) == encoded.n_tokens
    assert all(len(c) <= clf.card.max_length for c in encoded.chunks)


def test_empty_text_raises_value_error(clf: Classifier) -> None:
    with pytest.raises(ValueError, match="empty"):
        clf.predict(["fine", "   "])
    assert clf.predict([]) == []


def test_single_string_is_rejected(clf: Classifier) -> None:
    with pytest.raises(TypeError):
        clf.predict("one headline")  # type: ignore[arg-type]


def test_run_batch_is_bare_inference(clf: Classifier) -> None:
    encoded = clf.tokenize(HEADLINES)
    ids, mask, types = pad_batch([e.chunks[0] for e in encoded])
    sent, topic = clf.run_batch(ids, mask, types)
    assert sent.shape == (4, 3) and topic.shape == (4, len(clf.card.topic_labels))
    assert sent.dtype == np.float32


def test_io_binding_path_matches_plain_run(tiny_model_dir: Path, clf: Classifier) -> None:
    """The I/O-binding feed (CUDA's default) gives the plain run's logits.

    No GPU here: the binding is exercised with host-memory ``OrtValue`` inputs on
    the CPU provider, the same calls the CUDA path makes with device memory.
    """
    assert clf.io_binding is False  # CPU default
    bound = Classifier.load(tiny_model_dir, provider="cpu", intra_op_threads=1, io_binding=True)
    assert bound.io_binding is True
    for batch in (HEADLINES, HEADLINES[:1], HEADLINES[2:]):  # shapes change between calls
        ids, mask, types = pad_batch([e.chunks[0] for e in clf.tokenize(batch)])
        for plain, via_binding in zip(
            clf.run_batch(ids, mask, types), bound.run_batch(ids, mask, types), strict=True
        ):
            assert via_binding.dtype == np.float32
            np.testing.assert_array_equal(plain, via_binding)
    assert [p.sentiment_probs for p in bound.predict(HEADLINES)] == [
        p.sentiment_probs for p in clf.predict(HEADLINES)
    ]


def test_cuda_falls_back_to_cpu_with_reason(tiny_model_dir: Path) -> None:
    import onnxruntime as ort

    fallback = Classifier.load(tiny_model_dir, provider="cuda")
    if fallback.provider == "CUDAExecutionProvider":
        pytest.skip("a usable CUDA GPU is present; the fallback cannot be tested here")
    assert fallback.provider == "CPUExecutionProvider"
    assert fallback.variant == "int8"
    assert fallback.fallback_reason
    assert "CUDAExecutionProvider" in ort.get_available_providers() or (
        "not in this onnxruntime build" in fallback.fallback_reason
    )
    with pytest.raises(ProviderError, match="GPU required"):
        Classifier.load(tiny_model_dir, provider="cuda", require_gpu=True)


def test_explicit_fp32_variant(tiny_model_dir: Path, clf: Classifier) -> None:
    fp32 = Classifier.load(tiny_model_dir, provider="cpu", variant="fp32")
    assert fp32.variant == "fp32"
    a, b = fp32.predict(HEADLINES), clf.predict(HEADLINES)
    assert [p.sentiment for p in a] == [p.sentiment for p in b]


def test_bad_provider_name(tiny_model_dir: Path) -> None:
    with pytest.raises(ValueError, match="provider"):
        Classifier.load(tiny_model_dir, provider="tpu")  # type: ignore[arg-type]


def test_split_windows_respects_words() -> None:
    tokens = ["acme", "##corp", "beats", "estimates", "again", "and", "again"]
    word_ids = [0, 0, 1, 2, 3, 4, 5]
    spans = split_windows(tokens, word_ids, 3)
    assert [t for s in spans for t in s] == list(range(len(tokens)))
    assert all(len(s) <= 3 for s in spans)
    assert all(tokens[s.start] != "##corp" for s in spans)


def test_encoder_windows_fit_max_length() -> None:
    encoder = TextEncoder.from_file(base_tokenizer_path(), 16)
    (enc,) = encoder.encode(["The quick brown fox jumps over the lazy dog. " * 10])
    assert enc.n_chunks > 1
    assert all(c[0] == encoder.cls_id and c[-1] == encoder.sep_id for c in enc.chunks)
    assert all(len(c) <= 16 for c in enc.chunks)


def test_scoring_does_not_import_torch() -> None:
    import subprocess
    import sys

    code = "import sys, models.scoring; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_cpu_only_onnxruntime_build_is_reported(
    tiny_model_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import onnxruntime as ort

    monkeypatch.setattr(ort, "get_available_providers", lambda: ["CPUExecutionProvider"])
    clf = Classifier.load(tiny_model_dir, provider="auto")
    assert clf.provider == "CPUExecutionProvider"
    assert clf.fallback_reason is not None
    assert "not in this onnxruntime build" in clf.fallback_reason


def test_cpu_provider_has_no_fallback_reason(clf: Classifier) -> None:
    assert clf.fallback_reason is None


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.lists(st.integers(min_value=2, max_value=130), min_size=1, max_size=5),
        min_size=1,
        max_size=30,
    )
)
def test_aggregation_is_the_token_weighted_mean_of_each_texts_windows(
    window_lengths: list[list[int]],
) -> None:
    """The vectorised aggregation against its definition, text by text: a window of n ids
    (two of them special tokens) weighs max(n - 2, 1)."""
    encoded = [
        EncodedText(chunks=tuple(tuple(range(n)) for n in lengths), n_tokens=sum(lengths))
        for lengths in window_lengths
    ]
    n_windows = sum(len(lengths) for lengths in window_lengths)
    probs = np.random.default_rng(n_windows).dirichlet(np.ones(3), size=n_windows)

    got = Classifier._aggregate(encoded, probs)

    row = 0
    for i, lengths in enumerate(window_lengths):
        weights = [max(n - 2, 1) for n in lengths]
        want = np.average(probs[row : row + len(lengths)], axis=0, weights=weights)
        np.testing.assert_allclose(got[i], want, rtol=0, atol=1e-15)
        if len(lengths) == 1:  # one window: exactly the window's probabilities as before
            assert np.array_equal(got[i], want)
        row += len(lengths)
    assert Classifier._aggregate([], probs[:0]).shape == (0, 3)


def test_cuda_on_the_int8_file_says_how_to_add_the_fp16_file(
    tiny_model_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """No GPU here: the CUDA session is stood in for by a CPU session on the int8 file (a
    fake of ``_try_cuda`` alone); what is tested is the choice and the operator's hint."""
    import shutil

    import onnxruntime as ort

    from models import providers
    from models.modeldir import load_model_dir

    def fake_cuda(model_dir, device_id, variant):  # type: ignore[no-untyped-def]
        chosen = providers._pick_variant(model_dir, providers._CUDA_ORDER, variant)
        path = str(model_dir.onnx_path(chosen))
        session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
        return providers.SessionChoice(session, "CUDAExecutionProvider", chosen, None)

    monkeypatch.setattr(providers, "_try_cuda", fake_cuda)
    model_dir = load_model_dir(tiny_model_dir)  # int8 and fp32 files, no fp16
    with caplog.at_level("WARNING", logger="models.providers"):
        choice = providers.open_session(model_dir, provider="cuda")
    assert choice.variant == "fp32"  # fp16 absent: fp32 before int8 on CUDA
    assert not caplog.records
    shipped = tmp_path / "int8-only"  # as models/default is committed: no fp32, no fp16
    shutil.copytree(tiny_model_dir, shipped, ignore=shutil.ignore_patterns("model.onnx"))
    model_dir = load_model_dir(shipped)
    with caplog.at_level("WARNING", logger="models.providers"):
        choice = providers.open_session(model_dir, provider="cuda")
    assert choice.variant == "int8"
    assert "python -m models.training.fp16" in caplog.text
    caplog.clear()
    with caplog.at_level("WARNING", logger="models.providers"):  # asked for int8: no hint
        providers.open_session(model_dir, provider="cuda", variant="int8")
    assert not caplog.records
