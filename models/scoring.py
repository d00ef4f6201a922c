"""The scoring core: texts in, topic and sentiment out (ONNX Runtime, no torch).

Shared by the stream scorer, ``finsentinel classify``, backtests and benchmarks.
Texts are tokenized with the fast tokenizer, sorted by length and batched, each
batch padded to its longest member; long texts are split into windows whose
probabilities are averaged, weighted by token count. Logits are divided by the
card's temperatures before the softmax.

On CUDA, inference uses ONNX Runtime's I/O binding: each padded batch is copied
to the device once as ``OrtValue`` inputs and the (tiny) logits are bound to
host memory, so ORT does no per-call feed conversion or extra staging copies.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import onnxruntime as ort

from models.encoding import EncodedText, TextEncoder, pad_batch
from models.modeldir import OUTPUT_NAMES, ModelCard, ModelDir, load_model_dir
from models.providers import ProviderName, open_session

__all__ = ["Classifier", "Prediction", "softmax"]

_CUDA = "CUDAExecutionProvider"
#: Padded tokens per inference call on CPU (``max_batch_tokens=None``). Measured
#: with bench/score_throughput.py's corpus in 256-record micro-batches: a fixed 64
#: windows per call ran at ~0.8x of globally sorted batches, this budget at ~0.95x
#: (long windows go in smaller batches, so less padding is computed).
CPU_MAX_BATCH_TOKENS = 1024


@dataclass(frozen=True)
class Prediction:
    """The model's view of one text."""

    sentiment: str
    sentiment_probs: dict[str, float]
    topic: str
    topic_probs: dict[str, float]
    #: P(positive) - P(negative), in [-1, 1].
    sentiment_score: float
    #: Tokens of the text, without special tokens.
    n_tokens: int
    #: Windows the text was split into (1 unless longer than ``max_length``).
    n_chunks: int
    #: Of ``n_tokens``, how many are the tokenizer's unknown token.
    n_unknown_tokens: int = 0


def softmax(logits: np.ndarray, temperature: float = 1.0) -> np.ndarray:
    """Row-wise softmax of ``logits / temperature`` in float64.

    >>> softmax(np.array([[0.0, 0.0]])).tolist()
    [[0.5, 0.5]]
    """
    z = logits.astype(np.float64) / temperature
    z -= z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


class Classifier:
    """An ONNX model directory ready to score texts.

    Create it with :meth:`load`; ``provider`` is the active ONNX Runtime
    provider, ``variant`` the ONNX file in use, and ``fallback_reason`` says why
    CUDA was asked for (or ``auto``) and not used.
    """

    def __init__(
        self,
        model_dir: ModelDir,
        session: object,
        *,
        provider: str,
        variant: str,
        fallback_reason: str | None,
        device_id: int = 0,
        io_binding: bool | None = None,
        max_batch_tokens: int | None = None,
    ) -> None:
        self.model_dir = model_dir
        self.card: ModelCard = model_dir.card
        self.provider = provider
        self.variant = variant
        self.fallback_reason = fallback_reason
        self._session = session
        #: Inputs go through ``session.io_binding()``; default: on for CUDA only.
        self.io_binding = provider == _CUDA if io_binding is None else io_binding
        self._device = ("cuda", device_id) if provider == _CUDA else ("cpu", 0)
        if max_batch_tokens is not None and max_batch_tokens < 1:
            raise ValueError("max_batch_tokens must be at least 1")
        #: Cap on padded tokens (windows x longest) per inference call; 0: none.
        #: Default: :data:`CPU_MAX_BATCH_TOKENS` on CPU, none on CUDA (count-bound only).
        self.max_batch_tokens = (
            max_batch_tokens
            if max_batch_tokens is not None
            else (0 if provider == _CUDA else CPU_MAX_BATCH_TOKENS)
        )
        self._encoder = TextEncoder.from_file(model_dir.tokenizer_path, self.card.max_length)

    @classmethod
    def load(
        cls,
        model_dir: Path | str | None = None,
        *,
        provider: ProviderName = "auto",
        device_id: int = 0,
        require_gpu: bool = False,
        intra_op_threads: int | None = None,
        variant: str | None = None,
        io_binding: bool | None = None,
        max_batch_tokens: int | None = None,
    ) -> Classifier:
        """Load a model directory (``None``: the shipped default) and open a session.

        ``io_binding`` (default: on for CUDA, off for CPU, where plain
        ``session.run`` is as fast) selects how batches are fed to the session.
        ``max_batch_tokens`` caps padded tokens per inference call (see the attribute).
        """
        loaded = load_model_dir(model_dir)
        choice = open_session(
            loaded,
            provider=provider,
            device_id=device_id,
            require_gpu=require_gpu,
            intra_op_threads=intra_op_threads,
            variant=variant,
        )
        return cls(
            loaded,
            choice.session,
            provider=choice.provider,
            variant=choice.variant,
            fallback_reason=choice.fallback_reason,
            device_id=device_id,
            io_binding=io_binding,
            max_batch_tokens=max_batch_tokens,
        )

    def tokenize(self, texts: Sequence[str]) -> list[EncodedText]:
        """Tokenize and window ``texts`` (benchmarks pre-tokenize with this)."""
        return self._encoder.encode(texts)

    def run_batch(
        self, input_ids: np.ndarray, attention_mask: np.ndarray, token_type_ids: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Bare inference: int64 inputs to ``(sentiment_logits, topic_logits)``."""
        feeds = {
            "input_ids": input_ids,
            "attention_mask": attention_mask,
            "token_type_ids": token_type_ids,
        }
        if self.io_binding:
            sentiment, topic = self._run_bound(feeds)
        else:
            sentiment, topic = self._session.run(list(OUTPUT_NAMES), feeds)  # type: ignore[attr-defined]
        return np.asarray(sentiment, dtype=np.float32), np.asarray(topic, dtype=np.float32)

    def _run_bound(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """One inference call through I/O binding (inputs on the session's device)."""
        device, device_id = self._device
        binding = self._session.io_binding()  # type: ignore[attr-defined]
        inputs = []  # keep the device copies alive until the run returns
        for name, array in feeds.items():
            value = ort.OrtValue.ortvalue_from_numpy(
                np.ascontiguousarray(array, dtype=np.int64), device, device_id
            )
            inputs.append(value)
            binding.bind_ortvalue_input(name, value)
        for name in OUTPUT_NAMES:
            binding.bind_output(name, "cpu")
        self._session.run_with_iobinding(binding)  # type: ignore[attr-defined]
        outputs: list[np.ndarray] = binding.copy_outputs_to_cpu()
        return outputs

    def predict(self, texts: Sequence[str], *, batch_size: int = 64) -> list[Prediction]:
        """Score ``texts``, in input order; ``ValueError`` on an empty text."""
        if isinstance(texts, str):
            raise TypeError("predict takes a sequence of texts, not a single string")
        if not texts:
            return []
        return self.predict_encoded(self.tokenize(texts), batch_size=batch_size)

    def predict_encoded(
        self, encoded: Sequence[EncodedText], *, batch_size: int = 64
    ) -> list[Prediction]:
        """Score pre-tokenized texts (see :meth:`tokenize`)."""
        sent, topic = self.probabilities(encoded, batch_size=batch_size)
        return [self._prediction(s, t, e) for s, t, e in zip(sent, topic, encoded, strict=True)]

    def probabilities(
        self,
        encoded: Sequence[EncodedText],
        *,
        batch_size: int = 64,
        temperature: Mapping[str, float] | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Per-text ``(sentiment, topic)`` probabilities, windows aggregated.

        ``temperature`` overrides the card's (``{"sentiment": 1.0, "topic": 1.0}``
        gives the uncalibrated probabilities).
        """
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        temps = dict(temperature if temperature is not None else self.card.temperature)
        sent, topic = self._chunk_probs(encoded, batch_size, temps)
        return self._aggregate(encoded, sent), self._aggregate(encoded, topic)

    def _chunk_probs(
        self, encoded: Sequence[EncodedText], batch_size: int, temps: Mapping[str, float]
    ) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities of every window, in flattened input order."""
        windows = [chunk for text in encoded for chunk in text.chunks]
        lengths = [len(w) for w in windows]
        order = sorted(range(len(windows)), key=lengths.__getitem__)
        n_sent, n_topic = len(self.card.sentiment_labels), len(self.card.topic_labels)
        sent = np.empty((len(windows), n_sent), dtype=np.float64)
        topic = np.empty((len(windows), n_topic), dtype=np.float64)
        for idx in self._plan(order, lengths, batch_size):
            s_logits, t_logits = self.run_batch(
                *pad_batch([windows[i] for i in idx], self._encoder.pad_id)
            )
            sent[idx] = softmax(s_logits, temps["sentiment"])
            topic[idx] = softmax(t_logits, temps["topic"])
        return sent, topic

    def _plan(
        self, order: Sequence[int], lengths: Sequence[int], batch_size: int
    ) -> Iterator[list[int]]:
        """Inference batches over ``order`` (ascending length): at most ``batch_size``
        windows and, when set, ``max_batch_tokens`` padded tokens (a longer window alone)."""
        budget = self.max_batch_tokens
        batch: list[int] = []
        for i in order:
            if batch and (
                len(batch) >= batch_size or (budget and (len(batch) + 1) * lengths[i] > budget)
            ):
                yield batch
                batch = []
            batch.append(i)
        if batch:
            yield batch

    @staticmethod
    def _aggregate(encoded: Sequence[EncodedText], probs: np.ndarray) -> np.ndarray:
        """Token-count-weighted mean of each text's window probabilities.

        One vectorised pass (``np.add.reduceat`` over each text's rows): the
        per-text ``np.average`` it replaces cost a fifth of the scoring core's
        non-inference time, which bounds a GPU scorer (docs/scaling.md). Same
        arithmetic, ``sum(p * w) / sum(w)``: a one-window text's row is bit for bit
        what it was; several windows' sums may differ by summation order (~1e-17).
        """
        if not encoded:
            return np.empty((0, probs.shape[1]), dtype=np.float64)
        weights = np.maximum(
            np.fromiter((len(c) - 2 for t in encoded for c in t.chunks), np.float64, len(probs)),
            1.0,
        )
        starts = np.cumsum([0] + [t.n_chunks for t in encoded[:-1]])
        total = np.add.reduceat(probs * weights[:, None], starts, axis=0)
        return total / np.add.reduceat(weights, starts)[:, None]

    def _prediction(self, sent: np.ndarray, topic: np.ndarray, text: EncodedText) -> Prediction:
        s_labels, t_labels = self.card.sentiment_labels, self.card.topic_labels
        s_probs = {label: float(p) for label, p in zip(s_labels, sent, strict=True)}
        t_probs = {label: float(p) for label, p in zip(t_labels, topic, strict=True)}
        score = float(np.clip(s_probs["positive"] - s_probs["negative"], -1.0, 1.0))
        return Prediction(
            sentiment=s_labels[int(np.argmax(sent))],
            sentiment_probs=s_probs,
            topic=t_labels[int(np.argmax(topic))],
            topic_probs=t_probs,
            sentiment_score=score,
            n_tokens=text.n_tokens,
            n_chunks=text.n_chunks,
            n_unknown_tokens=text.n_unknown,
        )
