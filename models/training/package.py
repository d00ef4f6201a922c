"""Write a complete model directory from a trained network (export + parity + card)."""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from models.encoding import TextEncoder
from models.labels import SENTIMENT_LABELS
from models.modeldir import (
    TOKENIZER_FILE,
    VARIANT_FILES,
    ModelCard,
    file_entry,
    write_card,
)
from models.training.export import export_fp16, export_fp32, export_int8
from models.training.network import MultiTaskModel
from models.training.parity import check_parity
from models.training.weightonly import fp16_from_weight_only

__all__ = ["CardInfo", "write_model_dir"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class CardInfo:
    """The descriptive parts of a model card."""

    name: str
    version: str
    base_model: str
    max_length: int
    topic_labels: Sequence[str]
    temperature: dict[str, float] = field(default_factory=lambda: {"sentiment": 1.0, "topic": 1.0})
    metrics: dict[str, Any] = field(default_factory=dict)
    training_data: str = ""
    notes: str = ""


def write_model_dir(
    model: MultiTaskModel,
    tokenizer_path: Path,
    out_dir: Path,
    info: CardInfo,
    parity_texts: Sequence[str],
    *,
    variants: Sequence[str] = ("fp32", "int8", "fp16"),
    min_agreement: float = 0.99,
    parity_domains: Mapping[str, Sequence[int]] | None = None,
) -> Path:
    """Export ``model`` into ``out_dir`` with tokenizer, parity report and card.

    fp32 is always exported (it is the parity reference). Raises
    :class:`~models.exceptions.ExportError` if a parity check fails.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(tokenizer_path, out_dir / TOKENIZER_FILE)
    paths = {"fp32": export_fp32(model, out_dir / VARIANT_FILES["fp32"])}
    if "int8" in variants:
        paths["int8"] = export_int8(paths["fp32"], out_dir / VARIANT_FILES["int8"])
    if "fp16" in variants:
        # From the int8 file when there is one: CUDA then scores what every CPU scorer does.
        fp16 = out_dir / VARIANT_FILES["fp16"]
        paths["fp16"] = (
            fp16_from_weight_only(paths["int8"], fp16)
            if "int8" in paths
            else export_fp16(paths["fp32"], fp16)
        )
    encoder = TextEncoder.from_file(out_dir / TOKENIZER_FILE, info.max_length)
    sequences = encoder.encode_truncated(parity_texts)
    parity = check_parity(
        model, paths, sequences, min_agreement=min_agreement, domains=parity_domains
    )
    card = ModelCard(
        name=info.name,
        version=info.version,
        created_at=datetime.now(UTC),
        base_model=info.base_model,
        max_length=info.max_length,
        sentiment_labels=list(SENTIMENT_LABELS),
        topic_labels=list(info.topic_labels),
        files={
            "tokenizer": file_entry(out_dir, TOKENIZER_FILE),
            **{v: file_entry(out_dir, p.name) for v, p in paths.items()},
        },
        temperature=info.temperature,
        metrics=info.metrics,
        parity=parity,
        training_data=info.training_data,
        notes=info.notes,
    )
    write_card(out_dir, card)
    logger.info("wrote model directory %s (%s)", out_dir, ", ".join(paths))
    return out_dir
