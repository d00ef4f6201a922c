"""Drift monitoring: a model's reference profile, and a sliding window compared with it.

No torch, no ONNX Runtime. The reference profile (``reference.json`` in a model
directory, :class:`Reference`) says what the model produced on its validation
texts: per head, the share of each predicted label, the mean top-class
probability and the share of texts under a confidence floor; over all texts,
the share of tokens the tokenizer did not know and a histogram of text lengths
in tokens (fixed bins, :data:`LENGTH_BIN_EDGES`). :class:`DriftWindow` keeps the
same statistics over the last N scored documents, O(1) per document, and
compares them with the reference: population stability index (:func:`psi`) and
Jensen-Shannon distance (:func:`js_distance`) of each head's label shares, PSI
of the length histogram.

>>> labels = {"sentiment": ["negative", "neutral", "positive"], "topic": ["Earnings", "Macro"]}
>>> calm = [Observation({"sentiment": ("neutral", 0.9), "topic": ("Macro", 0.8)}, 12, 0)] * 8
>>> calm += [Observation({"sentiment": ("positive", 0.7), "topic": ("Earnings", 0.9)}, 20, 0)] * 2
>>> ref = profile(calm, labels, confidence_floor=0.5)
>>> ref.heads["sentiment"].distribution
[0.0, 0.8, 0.2]
>>> window = DriftWindow(ref, size=4)
>>> shifted = Observation({"sentiment": ("negative", 0.4), "topic": ("Macro", 0.6)}, 30, 3)
>>> for _ in range(6):
...     _ = window.update(shifted)
>>> snap = window.get()
>>> snap.n_documents, snap.heads["sentiment"].low_confidence_ratio, snap.unknown_token_ratio
(4, 1.0, 0.1)
>>> snap.heads["sentiment"].psi > 0.25, snap.heads["topic"].psi < snap.heads["sentiment"].psi
(True, True)
"""

from __future__ import annotations

import json
from bisect import bisect_left
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Final, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from models.exceptions import ModelDirError
from models.labels import HEADS
from models.modeldir import REFERENCE_FILE, ModelDir, file_entry, load_model_dir, write_card

if TYPE_CHECKING:
    from models.scoring import Prediction

__all__ = [
    "DEFAULT_CONFIDENCE_FLOOR",
    "LENGTH_BIN_EDGES",
    "DriftSnapshot",
    "DriftWindow",
    "HeadDrift",
    "HeadProfile",
    "Observation",
    "Reference",
    "js_distance",
    "length_bin",
    "load_reference",
    "observe",
    "profile",
    "psi",
    "save_reference",
]

#: Upper edges (tokens, inclusive) of the text-length bins; one more bin above the last.
LENGTH_BIN_EDGES: Final = (8, 16, 24, 32, 48, 64, 96, 128, 256, 512)
#: A top-class probability under this counts as a low-confidence prediction.
DEFAULT_CONFIDENCE_FLOOR: Final = 0.5
#: Share given to an empty bin in :func:`psi` (so a label never seen does not divide by 0).
PSI_EPSILON: Final = 1e-4
#: Confidences are summed as integer millionths: a window's running sums never drift.
_MICRO: Final = 1_000_000


def psi(actual: Sequence[float] | np.ndarray, expected: Sequence[float] | np.ndarray) -> float:
    """Population stability index of ``actual`` against ``expected`` (both shares or counts).

    ``sum((a - e) * ln(a / e))`` over the bins, after each distribution is
    normalised and empty bins get :data:`PSI_EPSILON`. Rule of thumb: under 0.1
    stable, 0.1-0.25 a moderate shift, over 0.25 a significant one.

    >>> psi([0.5, 0.5], [0.5, 0.5])
    0.0
    >>> round(psi([0.9, 0.1], [0.5, 0.5]), 4)
    0.8789
    """
    p, q = _shares(actual), _shares(expected)
    if p.shape != q.shape:
        raise ValueError(f"distributions differ in length: {p.size} and {q.size}")
    p, q = _shares(np.maximum(p, PSI_EPSILON)), _shares(np.maximum(q, PSI_EPSILON))
    return float(np.sum((p - q) * np.log(p / q)))


def js_distance(p: Sequence[float] | np.ndarray, q: Sequence[float] | np.ndarray) -> float:
    """Jensen-Shannon distance (base 2, so in [0, 1]) of two distributions.

    The square root of the Jensen-Shannon divergence; what
    ``scipy.spatial.distance.jensenshannon(p, q, base=2)`` computes.

    >>> js_distance([1, 0], [0, 1])
    1.0
    >>> js_distance([0.25, 0.75], [0.25, 0.75])
    0.0
    """
    a, b = _shares(p), _shares(q)
    if a.shape != b.shape:
        raise ValueError(f"distributions differ in length: {a.size} and {b.size}")
    m = (a + b) / 2
    divergence = (_kl2(a, m) + _kl2(b, m)) / 2
    return float(np.sqrt(max(divergence, 0.0)))


def _shares(values: Sequence[float] | np.ndarray) -> np.ndarray:
    arr = np.asarray(values, dtype=np.float64)
    total = arr.sum()
    if arr.ndim != 1 or arr.size == 0 or total <= 0 or (arr < 0).any():
        raise ValueError("a distribution needs non-negative values with a positive sum")
    return arr / total


def _kl2(p: np.ndarray, q: np.ndarray) -> float:
    """KL divergence in bits; 0 * log 0 is 0."""
    mask = p > 0
    return float(np.sum(p[mask] * np.log2(p[mask] / q[mask])))


def length_bin(n_tokens: int, edges: Sequence[int] = LENGTH_BIN_EDGES) -> int:
    """The bin of a text with ``n_tokens`` tokens.

    >>> length_bin(8), length_bin(9), length_bin(10_000)
    (0, 1, 10)
    """
    return bisect_left(edges, n_tokens)


class HeadProfile(BaseModel):
    """One head's outputs on the reference texts."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    labels: Annotated[list[str], Field(min_length=2)]
    #: Share of texts predicted as each label, in ``labels`` order.
    distribution: list[Annotated[float, Field(ge=0, le=1)]]
    #: Mean probability of the predicted (top) class.
    confidence_mean: Annotated[float, Field(ge=0, le=1)]
    #: Share of texts whose top-class probability is under the reference's floor.
    low_confidence_ratio: Annotated[float, Field(ge=0, le=1)]

    @model_validator(mode="after")
    def _aligned(self) -> HeadProfile:
        if len(self.distribution) != len(self.labels):
            raise ValueError("distribution must have one share per label")
        if abs(sum(self.distribution) - 1.0) > 1e-6:
            raise ValueError("distribution must sum to 1")
        return self


class Reference(BaseModel):
    """A model's reference profile: what drift is measured against."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format_version: Literal[1] = 1
    created_at: datetime
    #: Where the texts came from (e.g. the recipe's validation split).
    source: str = ""
    n_documents: Annotated[int, Field(ge=1)]
    confidence_floor: Annotated[float, Field(gt=0, lt=1)]
    heads: dict[str, HeadProfile]
    #: Unknown tokens / all tokens, over every text.
    unknown_token_ratio: Annotated[float, Field(ge=0, le=1)]
    #: Upper edges (tokens, inclusive) of the length bins, ascending.
    length_bin_edges: Annotated[list[Annotated[int, Field(ge=1)]], Field(min_length=1)]
    #: Share of texts in each length bin (``len(length_bin_edges) + 1`` bins).
    length_distribution: list[Annotated[float, Field(ge=0, le=1)]]

    @model_validator(mode="after")
    def _consistent(self) -> Reference:
        if set(self.heads) != set(HEADS):
            raise ValueError(f"heads must be exactly {list(HEADS)}")
        if list(self.length_bin_edges) != sorted(set(self.length_bin_edges)):
            raise ValueError("length_bin_edges must be strictly ascending")
        if len(self.length_distribution) != len(self.length_bin_edges) + 1:
            raise ValueError("length_distribution needs len(length_bin_edges) + 1 shares")
        return self


@dataclass(frozen=True)
class Observation:
    """What the monitor needs of one scored text: each head's label and its probability."""

    #: Head -> (predicted label, its probability).
    heads: Mapping[str, tuple[str, float]]
    n_tokens: int
    n_unknown: int = 0


def observe(prediction: Prediction) -> Observation:
    """The :class:`Observation` of a :class:`models.scoring.Prediction`."""
    return Observation(
        {
            "sentiment": (prediction.sentiment, prediction.sentiment_probs[prediction.sentiment]),
            "topic": (prediction.topic, prediction.topic_probs[prediction.topic]),
        },
        prediction.n_tokens,
        prediction.n_unknown_tokens,
    )


@dataclass(frozen=True)
class HeadDrift:
    """One head over the window, against the reference."""

    psi: float
    js_distance: float
    confidence_mean: float
    low_confidence_ratio: float


@dataclass(frozen=True)
class DriftSnapshot:
    """The window's statistics; ``n_documents`` is 0 (and the rest 0) before any document."""

    n_documents: int
    heads: dict[str, HeadDrift]
    unknown_token_ratio: float
    text_length_psi: float


class DriftWindow:
    """The last ``size`` documents' statistics against a :class:`Reference`.

    ``update`` is O(1) (running integer sums over a ring of plain lists, no
    allocation per document beyond the input); ``get`` is O(labels + bins).
    ``confidence_floor`` defaults to the reference's. Not thread-safe: callers
    that read from another thread hold a lock around both.
    """

    def __init__(
        self, reference: Reference, *, size: int, confidence_floor: float | None = None
    ) -> None:
        if size < 1:
            raise ValueError("size must be at least 1")
        floor = reference.confidence_floor if confidence_floor is None else confidence_floor
        if not 0 < floor < 1:
            raise ValueError("confidence_floor must be in (0, 1)")
        self.reference, self.size, self.confidence_floor = reference, size, floor
        self._floor_micro = round(floor * _MICRO)
        self._index = {
            h: {lab: i for i, lab in enumerate(reference.heads[h].labels)} for h in HEADS
        }
        self._edges = tuple(reference.length_bin_edges)
        self._n = self._next = 0
        # The ring: one plain list per field, preallocated.
        self._label = {h: [0] * size for h in HEADS}
        self._conf = {h: [0] * size for h in HEADS}
        self._tokens, self._unknown, self._bin = [0] * size, [0] * size, [0] * size
        # Running sums over the ring.
        self._counts = {h: [0] * len(reference.heads[h].labels) for h in HEADS}
        self._conf_sum = dict.fromkeys(HEADS, 0)
        self._low = dict.fromkeys(HEADS, 0)
        self._token_sum = self._unknown_sum = 0
        self._bins = [0] * (len(self._edges) + 1)

    def __len__(self) -> int:
        return self._n

    def update(self, item: Observation | Prediction) -> DriftWindow:
        """Add one scored text (evicting the oldest once full); returns ``self``.

        ``KeyError`` for a label the reference does not know.
        """
        slot = self._next
        if self._n == self.size:
            self._evict(slot)
        else:
            self._n += 1
        self._next = (slot + 1) % self.size
        if isinstance(item, Observation):
            for head in HEADS:
                self._put(head, slot, *item.heads[head])
        else:  # a Prediction, read in place: no Observation built per document
            self._put("sentiment", slot, item.sentiment, item.sentiment_probs[item.sentiment])
            self._put("topic", slot, item.topic, item.topic_probs[item.topic])
        n_unknown = item.n_unknown if isinstance(item, Observation) else item.n_unknown_tokens
        bucket = bisect_left(self._edges, item.n_tokens)
        self._tokens[slot], self._unknown[slot], self._bin[slot] = item.n_tokens, n_unknown, bucket
        self._token_sum += item.n_tokens
        self._unknown_sum += n_unknown
        self._bins[bucket] += 1
        return self

    def _put(self, head: str, slot: int, label: str, probability: float) -> None:
        idx, conf = self._index[head][label], round(probability * _MICRO)
        self._label[head][slot], self._conf[head][slot] = idx, conf
        self._counts[head][idx] += 1
        self._conf_sum[head] += conf
        self._low[head] += conf < self._floor_micro

    def _evict(self, slot: int) -> None:
        for head in HEADS:
            conf = self._conf[head][slot]
            self._counts[head][self._label[head][slot]] -= 1
            self._conf_sum[head] -= conf
            self._low[head] -= conf < self._floor_micro
        self._token_sum -= self._tokens[slot]
        self._unknown_sum -= self._unknown[slot]
        self._bins[self._bin[slot]] -= 1

    def get(self) -> DriftSnapshot:
        """The window's statistics and their distance from the reference."""
        n = self._n
        if n == 0:
            zero = HeadDrift(0.0, 0.0, 0.0, 0.0)
            return DriftSnapshot(0, dict.fromkeys(HEADS, zero), 0.0, 0.0)
        ref = self.reference
        heads = {
            h: HeadDrift(
                psi=psi(self._counts[h], ref.heads[h].distribution),
                js_distance=js_distance(self._counts[h], ref.heads[h].distribution),
                confidence_mean=self._conf_sum[h] / (n * _MICRO),
                low_confidence_ratio=self._low[h] / n,
            )
            for h in HEADS
        }
        return DriftSnapshot(
            n_documents=n,
            heads=heads,
            unknown_token_ratio=self._unknown_sum / self._token_sum if self._token_sum else 0.0,
            text_length_psi=psi(self._bins, ref.length_distribution),
        )


def profile(
    items: Iterable[Observation | Prediction],
    labels: Mapping[str, Sequence[str]],
    *,
    confidence_floor: float = DEFAULT_CONFIDENCE_FLOOR,
    source: str = "",
    length_bin_edges: Sequence[int] = LENGTH_BIN_EDGES,
) -> Reference:
    """The :class:`Reference` of a model's outputs on some texts (``labels``: head -> labels)."""
    obs = [i if isinstance(i, Observation) else observe(i) for i in items]
    if not obs:
        raise ValueError("a reference profile needs at least one text")
    floor_micro = round(confidence_floor * _MICRO)
    heads = {}
    for head in HEADS:
        index = {lab: i for i, lab in enumerate(labels[head])}
        counts = np.zeros(len(index))
        conf = np.array([round(o.heads[head][1] * _MICRO) for o in obs])
        for o in obs:
            counts[index[o.heads[head][0]]] += 1
        heads[head] = HeadProfile(
            labels=list(labels[head]),
            distribution=(counts / len(obs)).tolist(),
            confidence_mean=float(conf.mean() / _MICRO),
            low_confidence_ratio=float((conf < floor_micro).mean()),
        )
    tokens = sum(o.n_tokens for o in obs)
    bins = np.bincount(
        [bisect_left(length_bin_edges, o.n_tokens) for o in obs],
        minlength=len(length_bin_edges) + 1,
    )
    return Reference(
        created_at=datetime.now(UTC),
        source=source,
        n_documents=len(obs),
        confidence_floor=confidence_floor,
        heads=heads,
        unknown_token_ratio=sum(o.n_unknown for o in obs) / tokens if tokens else 0.0,
        length_bin_edges=list(length_bin_edges),
        length_distribution=(bins / len(obs)).tolist(),
    )


def load_reference(model_dir: ModelDir) -> Reference | None:
    """The model directory's reference profile; ``None`` when its card lists none.

    :class:`~models.exceptions.ModelDirError` when the file is not a valid
    profile or does not match the card's labels.
    """
    path = model_dir.reference_path
    if path is None:
        return None
    try:
        reference = Reference.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (OSError, json.JSONDecodeError, ValidationError) as exc:
        raise ModelDirError(f"{path}: not a valid reference profile ({exc})") from exc
    card = model_dir.card
    expected = {"sentiment": card.sentiment_labels, "topic": card.topic_labels}
    for head, head_labels in expected.items():
        if reference.heads[head].labels != head_labels:
            raise ModelDirError(f"{path}: the {head} labels differ from the model card's")
    return reference


def save_reference(directory: Path, reference: Reference) -> ModelDir:
    """Write ``reference.json`` into a model directory and list it in the card.

    The other files and their hashes are left as they are; returns the reloaded directory.
    """
    model_dir = load_model_dir(directory)
    path = Path(directory) / REFERENCE_FILE
    path.write_text(reference.model_dump_json(indent=2) + "\n", encoding="utf-8")
    card = model_dir.card.model_copy(update={"reference": file_entry(Path(directory), path.name)})
    write_card(Path(directory), card)
    loaded = load_model_dir(directory)
    load_reference(loaded)  # the labels agree with the card
    return loaded
