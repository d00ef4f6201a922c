"""Errors of the models package (see :mod:`stream.errors` for the whole tree)."""

from __future__ import annotations

from stream.errors import FinSentinelError

__all__ = ["DataError", "ModelDirError", "ModelError", "ProviderError"]


class ModelError(FinSentinelError):
    """Root of model errors."""


class ModelDirError(ModelError):
    """A model directory is missing files, has a bad card, or fails its hashes."""


class DataError(ModelError, ValueError):
    """A labeled or unlabeled input file cannot be used (missing column, empty, unknown label)."""


class ProviderError(ModelError):
    """The requested ONNX Runtime execution provider could not be used."""
