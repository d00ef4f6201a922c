"""The model-directory format, defined once.

A model directory holds:

* ``model_card.json`` -- a :class:`ModelCard` (labels, max length, temperatures,
  metrics, parity results, and the sha256 of every file it lists);
* ``tokenizer.json`` -- a Hugging Face fast-tokenizer file;
* ONNX variants: ``model.int8.onnx`` (the CPU default), optionally
  ``model.onnx`` (fp32) and ``model.fp16.onnx`` (for CUDA);
* optionally ``reference.json`` -- the drift-monitoring reference profile
  (:class:`models.drift.Reference`), listed in the card's ``reference`` field.

Every ONNX variant takes ``input_ids``, ``attention_mask`` and
``token_type_ids`` (int64, ``[batch, sequence]``, both axes dynamic) and returns
``sentiment_logits`` ``[batch, 3]`` and ``topic_logits`` ``[batch, n_topics]``,
both float32.

>>> VARIANT_FILES["int8"]
'model.int8.onnx'
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from models.exceptions import ModelDirError
from models.labels import SENTIMENT_LABELS

__all__ = [
    "CARD_FILE",
    "DEFAULT_MODEL_DIR",
    "FORMAT_VERSION",
    "INPUT_NAMES",
    "OUTPUT_NAMES",
    "REFERENCE_FILE",
    "TOKENIZER_FILE",
    "VARIANT_FILES",
    "FileEntry",
    "ModelCard",
    "ModelDir",
    "file_entry",
    "load_model_dir",
    "sha256_file",
    "write_card",
]

FORMAT_VERSION: Final = 1
CARD_FILE: Final = "model_card.json"
TOKENIZER_FILE: Final = "tokenizer.json"
#: The drift reference profile (optional; see :mod:`models.drift`).
REFERENCE_FILE: Final = "reference.json"
#: ONNX file name of each variant.
VARIANT_FILES: Final[dict[str, str]] = {
    "int8": "model.int8.onnx",
    "fp32": "model.onnx",
    "fp16": "model.fp16.onnx",
}
INPUT_NAMES: Final = ("input_ids", "attention_mask", "token_type_ids")
OUTPUT_NAMES: Final = ("sentiment_logits", "topic_logits")
#: The model shipped with the package.
DEFAULT_MODEL_DIR: Final = Path(__file__).parent / "default"

Variant = Literal["int8", "fp32", "fp16"]


class FileEntry(BaseModel):
    """One file of a model directory, with its size and hash."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    path: Annotated[str, Field(min_length=1)]
    sha256: Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
    bytes: Annotated[int, Field(ge=0)]


class ModelCard(BaseModel):
    """Everything a scorer needs to know about a model, and how it was made."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    format_version: Literal[1] = FORMAT_VERSION
    name: Annotated[str, Field(min_length=1, max_length=128)]
    version: Annotated[str, Field(min_length=1, max_length=128)]
    created_at: datetime
    base_model: str
    max_length: Annotated[int, Field(ge=8, le=512)]
    sentiment_labels: list[str]
    topic_labels: Annotated[list[str], Field(min_length=2)]
    #: Variant name (``int8``, ``fp32``, ``fp16``) or ``tokenizer`` -> file entry.
    files: dict[str, FileEntry]
    #: Softmax temperature per head; 1.0 when uncalibrated.
    temperature: dict[str, Annotated[float, Field(gt=0)]] = {"sentiment": 1.0, "topic": 1.0}
    metrics: dict[str, Any] = {}
    parity: dict[str, Any] = {}
    training_data: str = ""
    notes: str = ""
    #: The drift reference profile (``reference.json``); absent: no drift monitoring.
    reference: FileEntry | None = None

    @field_validator("sentiment_labels")
    @classmethod
    def _sentiment_order(cls, value: list[str]) -> list[str]:
        if tuple(value) != SENTIMENT_LABELS:
            raise ValueError(f"sentiment_labels must be exactly {list(SENTIMENT_LABELS)}")
        return value

    @field_validator("topic_labels")
    @classmethod
    def _unique_topics(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("topic_labels must be unique")
        return value

    @field_validator("temperature")
    @classmethod
    def _both_heads(cls, value: dict[str, float]) -> dict[str, float]:
        if set(value) != {"sentiment", "topic"}:
            raise ValueError("temperature must have exactly the keys 'sentiment' and 'topic'")
        return value

    @field_validator("files")
    @classmethod
    def _known_variants(cls, value: dict[str, FileEntry]) -> dict[str, FileEntry]:
        unknown = set(value) - set(VARIANT_FILES) - {"tokenizer"}
        if unknown:
            raise ValueError(f"unknown file keys {sorted(unknown)}")
        if not set(value) & set(VARIANT_FILES):
            raise ValueError(f"files must list at least one ONNX variant of {list(VARIANT_FILES)}")
        return value

    @property
    def variants(self) -> list[str]:
        """The ONNX variants the card lists, in preference order int8, fp32, fp16."""
        return [v for v in VARIANT_FILES if v in self.files]


@dataclass(frozen=True)
class ModelDir:
    """A loaded, verified model directory."""

    path: Path
    card: ModelCard

    @property
    def tokenizer_path(self) -> Path:
        """The fast-tokenizer file."""
        return self.path / TOKENIZER_FILE

    def onnx_path(self, variant: str) -> Path:
        """The ONNX file of ``variant``; :class:`ModelDirError` if the card lacks it."""
        if variant not in self.card.files:
            raise ModelDirError(
                f"{self.path}: variant {variant!r} not in this model directory "
                f"(available: {self.card.variants})"
            )
        return self.path / self.card.files[variant].path

    @property
    def reference_path(self) -> Path | None:
        """The drift reference profile the card lists, or ``None``."""
        return None if self.card.reference is None else self.path / self.card.reference.path

    def has_variant(self, variant: str) -> bool:
        """Whether the card lists ``variant`` and its file exists."""
        return variant in self.card.files and (self.path / self.card.files[variant].path).is_file()


def sha256_file(path: Path) -> str:
    """Hex sha256 of a file, read in 1 MiB blocks."""
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_entry(directory: Path, name: str) -> FileEntry:
    """The :class:`FileEntry` of ``directory / name`` as it is on disk now."""
    path = directory / name
    return FileEntry(path=name, sha256=sha256_file(path), bytes=path.stat().st_size)


def write_card(directory: Path, card: ModelCard) -> Path:
    """Write ``card`` as ``model_card.json`` in ``directory``; returns the path."""
    path = directory / CARD_FILE
    # A card without a reference is written as before the field existed.
    omit = {"reference"} if card.reference is None else None
    path.write_text(card.model_dump_json(indent=2, exclude=omit) + "\n", encoding="utf-8")
    return path


def _read_card(directory: Path) -> ModelCard:
    card_path = directory / CARD_FILE
    if not card_path.is_file():
        raise ModelDirError(f"{directory}: no {CARD_FILE}; is this a model directory?")
    try:
        raw = json.loads(card_path.read_text(encoding="utf-8"))
        return ModelCard.model_validate(raw)
    except json.JSONDecodeError as exc:
        raise ModelDirError(f"{card_path}: not valid JSON ({exc})") from exc
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "card"
        raise ModelDirError(f"{card_path}: invalid model card at {where}: {first['msg']}") from exc


def _check_file(directory: Path, key: str, entry: FileEntry, verify_hashes: bool) -> None:
    path = directory / entry.path
    if not path.is_file():
        # fp32/fp16 are build outputs that are not shipped; only int8 is required.
        if key in ("fp32", "fp16"):
            return
        raise ModelDirError(f"{directory}: {entry.path} ({key}) is listed in the card but missing")
    if path.stat().st_size != entry.bytes:
        raise ModelDirError(
            f"{path}: size {path.stat().st_size} does not match the card ({entry.bytes})"
        )
    if verify_hashes and sha256_file(path) != entry.sha256:
        raise ModelDirError(f"{path}: sha256 does not match the card; the file was changed")


def load_model_dir(path: Path | str | None = None, *, verify_hashes: bool = True) -> ModelDir:
    """Load and check a model directory (``None``: :data:`DEFAULT_MODEL_DIR`).

    Raises :class:`ModelDirError` if the card is missing or invalid, the
    tokenizer or a listed non-optional file is missing, or a hash differs.
    Variants listed in the card whose files are absent (fp32, fp16 are not
    shipped) are simply unavailable: see :meth:`ModelDir.has_variant`.
    """
    directory = Path(path) if path is not None else DEFAULT_MODEL_DIR
    if not directory.is_dir():
        raise ModelDirError(f"{directory}: model directory does not exist")
    card = _read_card(directory)
    if not (directory / TOKENIZER_FILE).is_file():
        raise ModelDirError(f"{directory}: {TOKENIZER_FILE} is missing")
    for key, entry in card.files.items():
        _check_file(directory, key, entry, verify_hashes)
    if card.reference is not None:
        _check_file(directory, "reference", card.reference, verify_hashes)
    model_dir = ModelDir(path=directory, card=card)
    if not any(model_dir.has_variant(v) for v in card.variants):
        raise ModelDirError(f"{directory}: none of the ONNX files the card lists exist")
    return model_dir
