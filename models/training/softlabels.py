"""Soft labels: a teacher's logits for both heads on every training text (torch to make).

The teacher (a run's ``best/`` checkpoint) scores *both* heads on the training
rows of both files: topic headlines get sentiment distributions and sentiment
headlines topic distributions. Validation rows are never scored, nor any
training text that also appears among the validation rows. The file is a
compressed ``.npz`` small enough to commit (float16 logits, ~1 MB for 24k
texts):

* ``keys`` — uint64, the first 8 bytes of ``sha256(head + "\\0" + text)``, where
  ``head`` names the file the text came from (:func:`text_key`);
* ``sentiment_logits`` ``[n, 3]`` and ``topic_logits`` ``[n, 20]``, float16;
* ``meta`` — JSON: teacher, its validation metrics, the split (``val_fraction``,
  ``seed``), the data files' sha256, how many texts were offered and labeled.

``python -m models.training.softlabels --teacher RUN/best --data DIR --out FILE``.
``--model DIR`` labels with an exported model directory instead (ONNX, no torch:
e.g. the shipped default, for another round of self-training); its logits are the
log of its uncalibrated probabilities and its card's temperatures go with them.
``--ensemble A.npz B.npz --out FILE`` makes one teacher of several files
(:func:`ensemble`: the mean of their calibrated log-probabilities).
Texts are scored in a seeded random order and the file is rewritten after each
chunk, so a run stopped by ``--max-minutes`` leaves an unbiased partial file
(``meta["complete"]`` says which); rows without a target train on hard labels only.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Protocol

import numpy as np

from models.data import LabeledSet
from models.exceptions import TrainingError
from models.labels import HEADS

__all__ = [
    "SoftLabels",
    "candidates",
    "ensemble",
    "label_files",
    "label_training_texts",
    "label_with_model_dir",
    "main",
    "text_key",
]

logger = logging.getLogger(__name__)

FORMAT_VERSION: Final = 1


class _Split(Protocol):
    @property
    def train(self) -> LabeledSet: ...
    @property
    def validation(self) -> LabeledSet: ...


def text_key(head: str, text: str) -> int:
    """The 64-bit key of ``text`` from ``head``'s file.

    >>> text_key("topic", "Fed holds rates") == text_key("topic", "Fed holds rates")
    True
    >>> text_key("topic", "Fed holds rates") == text_key("sentiment", "Fed holds rates")
    False
    """
    digest = hashlib.sha256(f"{head}\0{text}".encode()).digest()
    return int.from_bytes(digest[:8], "little")


def _keys(head: str, texts: Sequence[str]) -> np.ndarray:
    return np.fromiter((text_key(head, t) for t in texts), dtype=np.uint64, count=len(texts))


@dataclass(frozen=True)
class SoftLabels:
    """Teacher logits of both heads, keyed by :func:`text_key`."""

    keys: np.ndarray
    sentiment: np.ndarray
    topic: np.ndarray
    meta: dict[str, Any]

    def __len__(self) -> int:
        return len(self.keys)

    def save(self, path: Path) -> None:
        """Write atomically (a partial file is never left behind)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + ".tmp.npz")
        np.savez_compressed(
            tmp,
            keys=self.keys.astype(np.uint64),
            sentiment_logits=self.sentiment.astype(np.float16),
            topic_logits=self.topic.astype(np.float16),
            meta=np.array(json.dumps(self.meta, sort_keys=True)),
        )
        os.replace(tmp, path)

    @classmethod
    def load(cls, path: Path) -> SoftLabels:
        """Read what :meth:`save` wrote; a clear error for anything else."""
        try:
            with np.load(path, allow_pickle=False) as data:
                meta = json.loads(str(data["meta"]))
                labels = cls(data["keys"], data["sentiment_logits"], data["topic_logits"], meta)
        except (OSError, KeyError, ValueError) as exc:
            raise TrainingError(f"{path}: not a soft-label file ({exc})") from exc
        if meta.get("format") != FORMAT_VERSION:
            raise TrainingError(f"{path}: soft-label format {meta.get('format')} unsupported")
        return labels

    def temperature(self, head: str) -> float | None:
        """The teacher's calibration temperature for ``head`` (``meta.temperature``), if known.

        Soft targets use the raw logits (distillation has its own temperature);
        hard pseudo-labels threshold *probabilities*, which need the teacher calibrated.
        """
        value = self.meta.get("temperature", {}).get(head)
        return None if value is None else float(value)

    def check_split(self, path: Path, val_fraction: float, seed: int) -> None:
        """:class:`TrainingError` unless the file was made for this train/validation split."""
        split = self.meta.get("split", {})
        if split != {"val_fraction": val_fraction, "seed": seed}:
            raise TrainingError(
                f"{path} was made for the split {split}; this run holds out "
                f"val_fraction={val_fraction}, seed={seed}: make the soft labels "
                "with the same --val-fraction and --seed"
            )

    def lookup(self, head: str, texts: Sequence[str]) -> dict[str, np.ndarray]:
        """Both heads' float32 logits for ``texts`` of ``head``'s file; NaN rows: no target."""
        index = {int(k): i for i, k in enumerate(self.keys)}
        rows = np.array([index.get(int(k), -1) for k in _keys(head, texts)], dtype=np.int64)
        found = rows >= 0
        out = {}
        for name, table in (("sentiment", self.sentiment), ("topic", self.topic)):
            logits = np.full((len(texts), table.shape[1]), np.nan, dtype=np.float32)
            logits[found] = table[rows[found]].astype(np.float32)
            out[name] = logits
        return out

    def count(self, head: str, texts: Sequence[str]) -> int:
        """How many of ``texts`` (from ``head``'s file) have a target."""
        return int(np.isin(_keys(head, texts), self.keys).sum())


def candidates(splits: Mapping[str, _Split]) -> list[tuple[str, str]]:
    """``(head, text)`` of every training row that may be labeled, deduplicated.

    Never a validation row, nor a training text equal to one (of either head).
    """
    held_out = {t for split in splits.values() for t in split.validation.texts}
    seen: set[tuple[str, str]] = set()
    out = []
    for head, split in splits.items():
        for text in split.train.texts:
            if text not in held_out and (head, text) not in seen:
                seen.add((head, text))
                out.append((head, text))
    return out


def label_training_texts(
    teacher: Path,
    splits: Mapping[str, _Split],
    out: Path,
    *,
    meta: Mapping[str, Any],
    chunk_size: int = 512,
    int8: bool = False,
    max_minutes: float | None = None,
    seed: int = 0,
) -> SoftLabels:
    """Score both heads on the training texts of ``splits`` and save to ``out``.

    The file is rewritten after every chunk of ``chunk_size`` texts; after
    ``max_minutes`` the texts labeled so far are kept (``meta["complete"]`` false).
    """
    import torch

    from models.encoding import TextEncoder
    from models.training.loop import predict_logits
    from models.training.network import load_checkpoint

    model, heads = load_checkpoint(teacher)
    temperatures = teacher_temperatures(teacher)
    if temperatures:
        meta = {**meta, "temperature": temperatures}
    if int8:
        model = torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
    encoder = TextEncoder.from_file(teacher / "tokenizer.json", int(heads["max_length"]))
    pool = candidates(splits)
    order = np.random.default_rng(seed).permutation(len(pool))
    pool = [pool[i] for i in order]
    deadline = None if max_minutes is None else time.monotonic() + 60 * max_minutes
    keys: list[np.ndarray] = []
    sent: list[np.ndarray] = []
    topic: list[np.ndarray] = []
    info = {
        **meta,
        "format": FORMAT_VERSION,
        "teacher": str(teacher),
        "teacher_metrics": heads.get("metrics"),
        "teacher_epoch": heads.get("epoch"),
        "teacher_base_model": Path(str(heads.get("base_model", ""))).name,
        "max_length": heads["max_length"],
        "int8_teacher": int8,
        "candidates": {h: sum(1 for x, _ in pool if x == h) for h in splits},
    }
    labels = SoftLabels(np.zeros(0, np.uint64), np.zeros((0, 3)), np.zeros((0, 20)), info)
    for start in range(0, len(pool), chunk_size):
        chunk = pool[start : start + chunk_size]
        s, t = predict_logits(model, encoder.encode_truncated([text for _, text in chunk]))
        keys.append(np.array([text_key(h, text) for h, text in chunk], dtype=np.uint64))
        sent.append(s)
        topic.append(t)
        done = start + len(chunk)
        labeled = {h: sum(1 for x, _ in pool[:done] if x == h) for h in splits}
        info = {**info, "labeled": labeled, "complete": done == len(pool)}
        labels = SoftLabels(np.concatenate(keys), np.concatenate(sent), np.concatenate(topic), info)
        labels.save(out)
        logger.info("labeled %s of %s texts", done, len(pool))
        if deadline is not None and time.monotonic() > deadline and done < len(pool):
            logger.warning("time budget reached: %s of %s texts labeled", done, len(pool))
            break
    return labels


def label_with_model_dir(
    model_dir: Path,
    splits: Mapping[str, _Split],
    out: Path,
    *,
    meta: Mapping[str, Any],
    batch_size: int = 64,
    chunk_size: int = 2048,
    threads: int | None = None,
) -> SoftLabels:
    """Score both heads on the training texts of ``splits`` with an exported model; save to ``out``.

    The stored logits are ``log p`` of the model's uncalibrated probabilities
    (windows of a long text averaged as the scorer does), so ``softmax`` of them
    gives those probabilities back; the card's temperatures are recorded as the
    calibration. Validation rows are never scored (:func:`candidates`).
    """
    from models.scoring import Classifier

    classifier = Classifier.load(model_dir, provider="cpu", intra_op_threads=threads)
    card = classifier.card
    pool = candidates(splits)
    raw = {head: 1.0 for head in HEADS}
    sent_parts, topic_parts = [], []
    for start in range(0, len(pool), chunk_size):
        texts = [text for _, text in pool[start : start + chunk_size]]
        s, t = classifier.probabilities(
            classifier.tokenize(texts), batch_size=batch_size, temperature=raw
        )
        sent_parts.append(s)
        topic_parts.append(t)
        logger.info("labeled %s of %s texts", start + len(texts), len(pool))
    sent = np.concatenate(sent_parts) if pool else np.zeros((0, len(card.sentiment_labels)))
    topic = np.concatenate(topic_parts) if pool else np.zeros((0, len(card.topic_labels)))
    counts = {h: sum(1 for x, _ in pool if x == h) for h in splits}
    info = {
        **meta,
        "format": FORMAT_VERSION,
        "teacher": f"{card.name} {card.version} (exported model directory {model_dir})",
        "teacher_metrics": card.metrics.get("validation"),
        "teacher_base_model": Path(str(card.base_model)).name,
        "teacher_variant": classifier.variant,
        "max_length": card.max_length,
        "temperature": {head: float(card.temperature[head]) for head in HEADS},
        "candidates": counts,
        "labeled": counts,
        "complete": True,
    }
    tiny = 1e-12  # log(0) is -inf; log(1e-12) = -27.6 is still exact enough in float16
    labels = SoftLabels(
        np.array([text_key(h, text) for h, text in pool], dtype=np.uint64),
        np.log(np.maximum(sent, tiny)),
        np.log(np.maximum(topic, tiny)),
        info,
    )
    labels.save(out)
    logger.info("%s texts labeled by %s", len(pool), info["teacher"])
    return labels


def teacher_temperatures(teacher: Path) -> dict[str, float]:
    """Per head, the temperature that minimises log-loss on the teacher's validation logits.

    Read from the checkpoint's ``val_logits.npz`` (written with every ``best/``);
    empty when there is none. A briefly trained large teacher is under-confident
    (the one-epoch MPNet teacher needed T ~0.44, the 3-epoch one ~0.7), so its raw
    softmax seldom reaches a pseudo-label threshold of 0.8.
    """
    from models.calibration import fit_temperature

    path = teacher / "val_logits.npz"
    if not path.is_file():
        return {}
    with np.load(path, allow_pickle=False) as data:
        return {
            head: round(fit_temperature(data[f"{head}_logits"], data[f"{head}_labels"]), 4)
            for head in HEADS
            if f"{head}_logits" in data.files and len(data[f"{head}_labels"])
        }


def ensemble(members: Mapping[str, SoftLabels]) -> SoftLabels:
    """One teacher from several files: the mean of their calibrated log-probabilities.

    Each member's logits are divided by its ``meta.temperature`` (1 when it has
    none) and turned into log-probabilities; the ensemble's logits are their
    mean for every text that *all* members labeled (a geometric mean of the
    members' probabilities, already calibrated: its temperatures are 1). Two
    teachers that err on different texts (a 110M MPNet and a MiniLM) agree
    with the labels more often than either. The members must share the split
    and the data files; ``members`` maps a name for the card to each file.

    >>> one = SoftLabels(np.array([1, 2], np.uint64), np.log([[.8, .1, .1], [.2, .2, .6]]),
    ...                  np.zeros((2, 20)), {"split": {}, "data_sha256": {}})
    >>> both = ensemble({"a": one, "b": one})
    >>> np.allclose(np.exp(both.sentiment), [[.8, .1, .1], [.2, .2, .6]])
    True
    """
    if len(members) < 2:
        raise TrainingError("an ensemble needs at least two soft-label files")
    first = next(iter(members.values()))
    for name, labels in members.items():
        for field in ("split", "data_sha256"):
            if labels.meta.get(field) != first.meta.get(field):
                raise TrainingError(
                    f"{name}: made for another {field.replace('_', ' ')} than the first file "
                    f"({labels.meta.get(field)} vs {first.meta.get(field)})"
                )
    keys = first.keys
    for labels in members.values():
        keys = keys[np.isin(keys, labels.keys)]
    from models.calibration import log_softmax

    logps: dict[str, list[np.ndarray]] = {head: [] for head in HEADS}
    for labels in members.values():
        index = {int(k): i for i, k in enumerate(labels.keys)}
        rows = np.array([index[int(k)] for k in keys], dtype=np.int64)
        for head in HEADS:
            table = getattr(labels, head)[rows]
            logps[head].append(log_softmax(table, labels.temperature(head) or 1.0))
    means = {head: np.mean(logps[head], axis=0) for head in HEADS}
    meta = {
        "format": FORMAT_VERSION,
        "teacher": "ensemble of " + " + ".join(members),
        "members": {
            name: {
                "teacher": labels.meta.get("teacher_base_model") or labels.meta.get("teacher"),
                "teacher_metrics": labels.meta.get("teacher_metrics"),
                "temperature": labels.meta.get("temperature"),
                "labeled": len(labels),
            }
            for name, labels in members.items()
        },
        "split": first.meta.get("split"),
        "data_sha256": first.meta.get("data_sha256"),
        "temperature": dict.fromkeys(HEADS, 1.0),
        "labeled": len(keys),
        "complete": all(bool(m.meta.get("complete", True)) for m in members.values()),
    }
    return SoftLabels(keys, means["sentiment"], means["topic"], meta)


def label_files(
    teacher: Path,
    files: Mapping[str, Path],
    out: Path,
    *,
    val_fraction: float = 0.1,
    seed: int = 0,
    int8: bool = False,
    max_minutes: float | None = None,
    exported: bool = False,
    threads: int | None = None,
) -> SoftLabels:
    """Split ``files`` as a student run with ``val_fraction``/``seed`` would, and label.

    ``teacher`` is a checkpoint (a run's ``best/``), or with ``exported`` a model directory.
    """
    from models.modeldir import sha256_file
    from models.training.config import TrainConfig
    from models.training.run import split_files

    config = TrainConfig(base_model=str(teacher), val_fraction=val_fraction, seed=seed)
    meta = {
        "split": {"val_fraction": val_fraction, "seed": seed},
        "data_sha256": {head: sha256_file(path) for head, path in files.items()},
    }
    splits = split_files(files, config)
    if exported:
        return label_with_model_dir(teacher, splits, out, meta=meta, threads=threads)
    return label_training_texts(
        teacher, splits, out, meta=meta, int8=int8, max_minutes=max_minutes, seed=seed
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m models.training.softlabels",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--teacher", type=Path, help="A run's best/ checkpoint.")
    source.add_argument(
        "--model", type=Path, help="An exported model directory (e.g. models/default) instead."
    )
    source.add_argument(
        "--ensemble",
        type=Path,
        nargs="+",
        metavar="FILE",
        help="Soft-label files to combine into one teacher (mean calibrated log-probabilities).",
    )
    parser.add_argument("--data", type=Path, help="Directory with the data files.")
    parser.add_argument("--out", type=Path, required=True, help="The .npz to write.")
    parser.add_argument("--val-fraction", type=float, default=0.1, help="The student's split.")
    parser.add_argument("--seed", type=int, default=0, help="The student's split seed.")
    parser.add_argument("--int8", action="store_true", help="Dynamic int8 teacher (faster).")
    parser.add_argument("--max-minutes", type=float, default=None)
    parser.add_argument("--threads", type=int, default=None)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code."""
    from models.exceptions import ModelError
    from models.training.reproduce import DATA_FILES

    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    if args.ensemble is not None:
        try:
            labels = ensemble({path.name: SoftLabels.load(path) for path in args.ensemble})
        except TrainingError as exc:
            logger.error("%s", exc)
            return 2
        labels.save(args.out)
        logger.info("%s ensemble soft labels written to %s", len(labels), args.out)
        return 0
    if args.data is None:
        parser.error("--data is required with --teacher or --model")
    if args.threads and args.teacher is not None:  # --model runs on ONNX Runtime: no torch
        import torch

        torch.set_num_threads(args.threads)
    files = {head: args.data / DATA_FILES[head] for head in HEADS}
    try:
        labels = label_files(
            args.teacher or args.model,
            files,
            args.out,
            val_fraction=args.val_fraction,
            seed=args.seed,
            int8=args.int8,
            max_minutes=args.max_minutes,
            exported=args.model is not None,
            threads=args.threads,
        )
    except ModelError as exc:
        logger.error("%s", exc)
        return 2 if isinstance(exc, ValueError) else 1
    logger.info("%s soft labels written to %s", len(labels), args.out)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
