"""ONNX Runtime session creation and execution-provider selection (no torch).

``auto`` and ``cuda`` try CUDA first, and only count it as used when a session
actually runs on it (``onnxruntime-gpu`` lists CUDA even on machines without a
GPU or without the CUDA libraries). Otherwise they fall back to CPU with the
int8 variant; ``cuda`` does so with a loud warning, or raises
:class:`~models.exceptions.ProviderError` when ``require_gpu`` is set.
"""

from __future__ import annotations

import logging
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import onnxruntime as ort

from models.exceptions import ModelDirError, ProviderError
from models.modeldir import ModelDir

__all__ = [
    "ProviderName",
    "SessionChoice",
    "cpu_session_options",
    "gpu_device_present",
    "open_session",
]

logger = logging.getLogger(__name__)

ProviderName = Literal["auto", "cpu", "cuda"]
_CUDA = "CUDAExecutionProvider"
_CPU = "CPUExecutionProvider"
_CPU_ORDER = ("int8", "fp32", "fp16")
_CUDA_ORDER = ("fp16", "fp32", "int8")


@dataclass(frozen=True)
class SessionChoice:
    """The session that was created and why."""

    session: ort.InferenceSession
    provider: str
    variant: str
    fallback_reason: str | None


def _available_cores() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def cpu_session_options(intra_op_threads: int | None = None) -> ort.SessionOptions:
    """Session options for CPU: threads from the cores we may use, spinning off.

    Spinning threads make several sessions in one process (and other processes
    on a small machine) slow each other down. ``session.disable_quant_qdq`` lets
    constant folding turn the int8 variant's ``DequantizeLinear`` weights into fp32
    once, at load (models/training/weightonly.py); with it on, ORT would keep them
    for QDQ fusion and dequantize on every call.
    """
    options = ort.SessionOptions()
    options.intra_op_num_threads = intra_op_threads or _available_cores()
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.add_session_config_entry("session.inter_op.allow_spinning", "0")
    options.add_session_config_entry("session.disable_quant_qdq", "1")
    options.log_severity_level = 3
    return options


def _pick_variant(model_dir: ModelDir, order: tuple[str, ...], variant: str | None) -> str:
    if variant is not None:
        if not model_dir.has_variant(variant):
            raise ModelDirError(
                f"{model_dir.path}: variant {variant!r} is not available "
                f"(available: {[v for v in model_dir.card.variants if model_dir.has_variant(v)]})"
            )
        return variant
    for candidate in order:
        if model_dir.has_variant(candidate):
            return candidate
    raise ModelDirError(f"{model_dir.path}: no ONNX variant file present")


def _no_nvidia_device() -> bool:
    """True on Linux when no NVIDIA device node exists (trying CUDA would only log errors)."""
    if not sys.platform.startswith("linux"):
        return False
    dev = Path("/dev")
    return not (dev / "nvidiactl").exists() and not any(dev.glob("nvidia[0-9]*"))


def gpu_device_present() -> bool:
    """False when this machine has no NVIDIA device at all (Linux; elsewhere: unknown, True).

    With ``provider="auto"`` such a machine is *expected* to score on CPU: it is
    not a fallback worth an alert.
    """
    return not _no_nvidia_device()


def _try_cuda(model_dir: ModelDir, device_id: int, variant: str | None) -> SessionChoice | str:
    """A CUDA session, or the reason there is none."""
    if _CUDA not in ort.get_available_providers():
        return f"{_CUDA} is not in this onnxruntime build (install onnxruntime-gpu)"
    if _no_nvidia_device():
        return "no NVIDIA GPU device on this machine (/dev/nvidia* absent)"
    chosen = _pick_variant(model_dir, _CUDA_ORDER, variant)
    options = ort.SessionOptions()
    options.log_severity_level = 4  # the CPU fallback below is reported by us, once
    try:
        session = ort.InferenceSession(
            str(model_dir.onnx_path(chosen)),
            sess_options=options,
            providers=[(_CUDA, {"device_id": device_id}), _CPU],
        )
    except Exception as exc:  # ORT raises bare RuntimeErrors and Fail subclasses
        return f"creating a CUDA session failed: {exc}"
    if session.get_providers()[0] != _CUDA:
        return "onnxruntime could not initialise CUDA (no GPU, or CUDA/cuDNN libraries missing)"
    return SessionChoice(session, _CUDA, chosen, None)


def _cpu(
    model_dir: ModelDir, variant: str | None, threads: int | None
) -> tuple[ort.InferenceSession, str]:
    chosen = _pick_variant(model_dir, _CPU_ORDER, variant)
    session = ort.InferenceSession(
        str(model_dir.onnx_path(chosen)),
        sess_options=cpu_session_options(threads),
        providers=[_CPU],
    )
    return session, chosen


def open_session(
    model_dir: ModelDir,
    *,
    provider: ProviderName = "auto",
    device_id: int = 0,
    require_gpu: bool = False,
    intra_op_threads: int | None = None,
    variant: str | None = None,
) -> SessionChoice:
    """Create the inference session for ``model_dir`` on the best allowed provider."""
    if provider not in ("auto", "cpu", "cuda"):
        raise ValueError(f"provider must be 'auto', 'cpu' or 'cuda', not {provider!r}")
    if require_gpu and provider == "cpu":
        raise ValueError("require_gpu=True contradicts provider='cpu'; use 'cuda' or 'auto'")
    reason: str | None = None
    if provider in ("auto", "cuda"):
        attempt = _try_cuda(model_dir, device_id, variant)
        if isinstance(attempt, SessionChoice):
            logger.info("scoring on CUDA device %s with the %s variant", device_id, attempt.variant)
            if attempt.variant == "int8" and variant is None:
                logger.warning(
                    "%s has no fp16 file: CUDA runs its int8 file, at about half the fp16 "
                    "file's speed (same labels). Add it with `python -m models.training.fp16 "
                    "--model %s` (needs onnx)",
                    model_dir.path,
                    model_dir.path,
                )
            return attempt
        reason = attempt
        if require_gpu:
            raise ProviderError(f"GPU required but unavailable: {reason}")
        if provider == "cuda":
            logger.warning("CUDA was requested but is unavailable, using CPU: %s", reason)
        else:
            logger.info("no usable GPU, scoring on CPU: %s", reason)
    session, chosen = _cpu(model_dir, variant, intra_op_threads)
    return SessionChoice(session, _CPU, chosen, reason)
