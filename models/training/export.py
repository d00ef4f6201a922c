"""Export a trained :class:`~models.training.network.MultiTaskModel` to ONNX (torch, onnx).

fp32 through the legacy TorchScript exporter (``dynamo=False``; the model uses
eager attention so the BERT optimizer can fuse it), then onnxruntime's BERT
graph optimizer; int8 as weight-only int8 (see :func:`export_int8`); fp16 by
onnxruntime's float16 conversion with fp32 inputs and outputs, of the int8 file's
dequantized weights when there is one (:func:`~models.training.weightonly.fp16_from_weight_only`,
what models/training/package.py does) or of the fp32 file (:func:`export_fp16`).
"""

from __future__ import annotations

import logging
import tempfile
import warnings
from pathlib import Path

import onnx
import torch
from onnxruntime.transformers.optimizer import optimize_model

from models.encoding import pad_batch
from models.training.network import MultiTaskModel
from models.training.weightonly import fp16_from_fp32, weight_only_from_fp32

__all__ = ["OPSET", "export_fp16", "export_fp32", "export_int8"]

logger = logging.getLogger(__name__)

OPSET = 17
_INPUTS = ["input_ids", "attention_mask", "token_type_ids"]
_OUTPUTS = ["sentiment_logits", "topic_logits"]


def _dummy_inputs() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    ids, mask, types = pad_batch([[101, 2000, 2001, 2002, 102], [101, 2003, 102]])
    return torch.from_numpy(ids), torch.from_numpy(mask), torch.from_numpy(types)


def _torch_export(model: MultiTaskModel, path: Path) -> None:
    axes = {name: {0: "batch", 1: "sequence"} for name in _INPUTS}
    axes.update({name: {0: "batch"} for name in _OUTPUTS})
    model.eval()
    with warnings.catch_warnings(), torch.no_grad():
        # The legacy exporter warns about tracing and its own deprecation; both are expected.
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            _dummy_inputs(),
            str(path),
            input_names=_INPUTS,
            output_names=_OUTPUTS,
            dynamic_axes=axes,
            opset_version=OPSET,
            do_constant_folding=True,
            dynamo=False,
        )


def _keep_inputs(path: Path) -> None:
    """Declare every input of the one ONNX signature, used or not.

    The exporter drops an input the network never reads: MPNet has no segment
    embeddings, so its graph would lose ``token_type_ids`` and every caller that
    feeds the signature (the scorer, classify, parity) would be refused.
    """
    model = onnx.load(str(path))
    present = {i.name for i in model.graph.input}
    missing = [name for name in _INPUTS if name not in present]
    if not missing:
        return
    for name in missing:
        model.graph.input.append(
            onnx.helper.make_tensor_value_info(name, onnx.TensorProto.INT64, ["batch", "sequence"])
        )
    ordered = sorted(model.graph.input, key=lambda i: _INPUTS.index(i.name))
    del model.graph.input[:]
    model.graph.input.extend(ordered)
    logger.info("inputs %s are not read by this encoder; declared anyway", missing)
    onnx.save(model, str(path))


def _optimize(path: Path, model: MultiTaskModel, out: Path) -> onnx.ModelProto:
    config = model.config
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        optimized = optimize_model(
            str(path),
            model_type="bert",
            num_heads=int(config.num_attention_heads),
            hidden_size=int(config.hidden_size),
            opt_level=1,
        )
    fused = optimized.get_fused_operator_statistics()
    logger.info("BERT optimizer fused operators: %s", fused)
    optimized.save_model_to_file(str(out))
    return optimized


def export_fp32(model: MultiTaskModel, out: Path) -> Path:
    """Export and BERT-optimize the fp32 ONNX model to ``out``."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.onnx"
        _torch_export(model, raw)
        _optimize(raw, model, out)
    _keep_inputs(out)  # the optimizer prunes unused inputs too
    onnx.checker.check_model(str(out))
    return out


def export_int8(fp32_path: Path, out: Path) -> Path:
    """int8 weights, fp32 compute: batch-invariant scores (models/training/weightonly.py).

    Dynamic quantization's per-batch activation scales made a text's numbers
    depend on its batch neighbours; weight-only int8 keeps the file small and
    every row on its own.
    """
    return weight_only_from_fp32(fp32_path, out)


def export_fp16(fp32_path: Path, out: Path) -> Path:
    """fp16 weights and compute for CUDA, keeping fp32 inputs and outputs."""
    return fp16_from_fp32(onnx.load(str(fp32_path)), out)
