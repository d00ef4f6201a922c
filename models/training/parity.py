"""Parity checks run on every export: ONNX fp32 vs PyTorch, int8 and fp16 vs fp32."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import torch

from models.encoding import pad_batch
from models.exceptions import ExportError
from models.providers import cpu_session_options
from models.training.network import MultiTaskModel

__all__ = ["Logits", "check_parity", "onnx_logits", "torch_logits"]

logger = logging.getLogger(__name__)

Logits = tuple[np.ndarray, np.ndarray]
_BATCH = 32


def _batches(sequences: Sequence[Sequence[int]]) -> list[tuple[np.ndarray, ...]]:
    return [pad_batch(sequences[i : i + _BATCH]) for i in range(0, len(sequences), _BATCH)]


def torch_logits(model: MultiTaskModel, sequences: Sequence[Sequence[int]]) -> Logits:
    """PyTorch logits of both heads, in order."""
    model.eval()
    sent, topic = [], []
    with torch.no_grad():
        for ids, mask, types in _batches(sequences):
            s, t = model(torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(types))
            sent.append(s.numpy())
            topic.append(t.numpy())
    return np.concatenate(sent), np.concatenate(topic)


def onnx_logits(path: Path, sequences: Sequence[Sequence[int]]) -> Logits:
    """ONNX Runtime (CPU) logits of both heads, in order."""
    session = ort.InferenceSession(
        str(path), sess_options=cpu_session_options(), providers=["CPUExecutionProvider"]
    )
    sent, topic = [], []
    for ids, mask, types in _batches(sequences):
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
        s, t = session.run(["sentiment_logits", "topic_logits"], feeds)
        sent.append(np.asarray(s, dtype=np.float32))
        topic.append(np.asarray(t, dtype=np.float32))
    return np.concatenate(sent), np.concatenate(topic)


def _agreement(a: Logits, b: Logits) -> dict[str, float]:
    return {
        head: float(np.mean(x.argmax(-1) == y.argmax(-1)))
        for head, x, y in (("sentiment", a[0], b[0]), ("topic", a[1], b[1]))
    }


def _in_domain_agreement(
    a: Logits, b: Logits, domains: Mapping[str, Sequence[int]]
) -> dict[str, float]:
    out = {}
    for head, index in domains.items():
        i = 0 if head == "sentiment" else 1
        idx = np.asarray(index, dtype=np.int64)
        if len(idx):
            out[head] = float(np.mean(a[i][idx].argmax(-1) == b[i][idx].argmax(-1)))
    return out


def _max_diff(a: Logits, b: Logits) -> float:
    return float(max(np.abs(a[0] - b[0]).max(), np.abs(a[1] - b[1]).max()))


def _fp16_report(
    path: Path, sequences: Sequence[Sequence[int]], ref: Logits, int8: Logits | None
) -> dict[str, Any]:
    """fp16 against fp32 and, when it was built from the int8 file, against int8."""
    derived = {"derived_from": "int8" if int8 is not None else "fp32"}
    try:
        logits = onnx_logits(path, sequences)
    except Exception as exc:  # fp16 kernels are CUDA-only in parts of ORT
        logger.info("fp16 parity not checked on CPU: %s", exc)
        reason = f"fp16 does not run on the CPU provider: {exc}"[:300]
        return {"checked": False, "reason": reason, **derived}
    report = {
        "checked": True,
        **derived,
        "max_abs_diff_vs_fp32": _max_diff(logits, ref),
        "argmax_agreement_vs_fp32": _agreement(logits, ref),
    }
    if int8 is not None:
        report["max_abs_diff_vs_int8"] = _max_diff(logits, int8)
        report["argmax_agreement_vs_int8"] = _agreement(logits, int8)
    return report


def check_parity(
    model: MultiTaskModel,
    variants: dict[str, Path],
    sequences: Sequence[Sequence[int]],
    *,
    max_abs_diff: float = 1e-4,
    min_agreement: float = 0.99,
    domains: Mapping[str, Sequence[int]] | None = None,
) -> dict[str, Any]:
    """Compare the exported variants on ``sequences``; :class:`ExportError` on failure.

    ``variants`` maps ``fp32`` (required), ``int8`` and ``fp16`` to their files.
    ``domains`` maps a head to the indices of the texts of its own data set;
    when given, the int8 gate applies to each head on its own texts (a topic
    head's near-ties on sentiment tweets are reported but do not fail the
    export), otherwise to all texts.
    """
    reference = torch_logits(model, sequences)
    fp32 = onnx_logits(variants["fp32"], sequences)
    report: dict[str, Any] = {
        "n_texts": len(sequences),
        "fp32_vs_torch_max_abs_diff": _max_diff(fp32, reference),
        "fp32_vs_torch_argmax_agreement": _agreement(fp32, reference),
    }
    if report["fp32_vs_torch_max_abs_diff"] >= max_abs_diff:
        raise ExportError(
            f"ONNX fp32 differs from PyTorch by {report['fp32_vs_torch_max_abs_diff']:.2e} "
            f"(limit {max_abs_diff:.0e})"
        )
    int8: Logits | None = None
    if "int8" in variants:
        int8 = onnx_logits(variants["int8"], sequences)
        report["int8_vs_fp32_argmax_agreement"] = _agreement(int8, fp32)
        report["int8_vs_fp32_max_abs_diff"] = _max_diff(int8, fp32)
        gate = report["int8_vs_fp32_argmax_agreement"]
        if domains:
            gate = _in_domain_agreement(int8, fp32, domains)
            report["int8_vs_fp32_in_domain_agreement"] = gate
        worst = min(gate.values())
        report["int8_min_agreement_gate"] = min_agreement
        if worst < min_agreement:
            raise ExportError(
                f"int8 argmax agrees with fp32 on only {worst:.2%} of texts "
                f"(need {min_agreement:.0%}): {gate}"
            )
    if "fp16" in variants:
        report["fp16"] = _fp16_report(variants["fp16"], sequences, fp32, int8)
    logger.info("export parity: %s", report)
    return report
