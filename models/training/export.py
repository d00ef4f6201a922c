"""Export a trained :class:`~models.training.network.MultiTaskModel` to ONNX (torch, onnx).

fp32 through the legacy TorchScript exporter (``dynamo=False``; the model uses
eager attention so the BERT optimizer can fuse it), then onnxruntime's BERT
graph optimizer; int8 in two parts (see :func:`export_int8`); fp16 by
onnxruntime's float16 conversion with fp32 inputs and outputs.
"""

from __future__ import annotations

import logging
import re
import tempfile
import warnings
from pathlib import Path

import onnx
import torch
from onnxruntime.quantization import QuantType, quantize_dynamic
from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer
from onnxruntime.transformers.optimizer import optimize_model

from models.encoding import pad_batch
from models.training.network import MultiTaskModel

__all__ = ["FFN_BLOCK_SIZE", "OPSET", "export_fp16", "export_fp32", "export_int8", "ffn_matmuls"]

logger = logging.getLogger(__name__)

OPSET = 17
_INPUTS = ["input_ids", "attention_mask", "token_type_ids"]
_OUTPUTS = ["sentiment_logits", "topic_logits"]
#: The two feed-forward MatMuls of each encoder layer (not the attention output).
_FFN_MATMUL = re.compile(r"layer\.\d+/(intermediate|output)/dense/MatMul$")
#: Block size of the feed-forward weights and of their activations' int8 scales.
FFN_BLOCK_SIZE = 128


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
    onnx.checker.check_model(str(out))
    return out


def ffn_matmuls(model: onnx.ModelProto) -> list[str]:
    """Names of the encoder layers' feed-forward MatMul nodes (BERT export naming).

    >>> from onnx.helper import make_graph, make_model, make_node
    >>> names = ["/layer.3/output/dense/MatMul", "/layer.3/attention/output/dense/MatMul"]
    >>> nodes = [make_node("MatMul", ["a", "b"], [n], name=n) for n in names]
    >>> ffn_matmuls(make_model(make_graph(nodes, "g", [], [])))
    ['/layer.3/output/dense/MatMul']
    """
    return [
        n.name for n in model.graph.node if n.op_type == "MatMul" and _FFN_MATMUL.search(n.name)
    ]


def export_int8(fp32_path: Path, out: Path) -> Path:
    """int8 weights everywhere, int8 compute where it keeps argmax agreement with fp32.

    Attention (QKV and output projection), embeddings and the heads: dynamic
    quantization (per channel, reduced range; activations per tensor). The
    feed-forward MatMuls: 8-bit block-wise weights (``MatMulNBits``, block
    :data:`FFN_BLOCK_SIZE`, ``accuracy_level=4`` so activations are quantized to
    int8 per block too). Per-tensor activation scales on the GELU output are what
    flipped near-tie topic predictions; see models/README.md for the measurements.
    """
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        dynamic = Path(tmp) / "dynamic.onnx"
        quantize_dynamic(
            str(fp32_path),
            str(dynamic),
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=True,
            nodes_to_exclude=ffn_matmuls(onnx.load(str(fp32_path))),
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
        quantizer = MatMulNBitsQuantizer(
            onnx.load(str(dynamic)),
            bits=8,
            block_size=FFN_BLOCK_SIZE,
            is_symmetric=True,
            accuracy_level=4,
            op_types_to_quantize=("MatMul",),
        )
        quantizer.process()
        quantizer.model.save_model_to_file(str(out), False)
    return out


def export_fp16(fp32_path: Path, out: Path) -> Path:
    """fp16 weights and compute for CUDA, keeping fp32 inputs and outputs."""
    from onnxruntime.transformers.onnx_model import OnnxModel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = OnnxModel(onnx.load(str(fp32_path)))
        model.convert_float_to_float16(keep_io_types=True)
        model.save_model_to_file(str(out))
    return out
