"""Errors of the models package (see :mod:`stream.contracts.errors` for the whole tree)."""

from __future__ import annotations

from stream.contracts.errors import FinSentinelError

__all__ = [
    "DataError",
    "ExportError",
    "FeedbackError",
    "ModelDirError",
    "ModelError",
    "ProviderError",
    "RegistryError",
    "TrainingError",
]


class ModelError(FinSentinelError):
    """Root of model errors."""


class ModelDirError(ModelError):
    """A model directory is missing files, has a bad card, or fails its hashes."""


class DataError(ModelError, ValueError):
    """A labeled or unlabeled input file cannot be used (missing column, empty, unknown label)."""


class ProviderError(ModelError):
    """The requested ONNX Runtime execution provider could not be used."""


class ExportError(ModelError):
    """An exported ONNX model fails its parity checks against PyTorch or fp32."""


class TrainingError(ModelError):
    """Training cannot proceed (bad hyper-parameters, a head without data)."""


class FeedbackError(ModelError, ValueError):
    """A correction cannot be stored or read (unknown label, no text, bad file or store)."""


class RegistryError(ModelError):
    """A model registry operation is refused (unknown version, failing report, no history)."""
