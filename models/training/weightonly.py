"""The int8 variant as *weight-only* int8: int8 weights in the file, fp32 compute.

Why: dynamic quantization (``quantize_dynamic``: ``DynamicQuantizeLinear`` +
``MatMulInteger``/``QAttention``) picks one int8 scale per activation tensor, that
is per inference batch. A text's numbers then depend on which other texts share
its batch and how long the longest of them is. Measured on the demo corpus with
0.3.0: up to 0.15 of sentiment score and 5 label flips in 488 between scoring in
batches of 64 and one by one. A backtest that replays a stream twice got
different alerts. With the weights alone in int8 every row is computed on its
own: batched and one-by-one agree to ~1e-7.

Layout: every MatMul and fused Attention weight is an int8 initializer feeding a
``DequantizeLinear`` (per output column, or per block of :data:`BLOCK` rows of
each column where the input width divides into blocks), reshaped back to
``[K, N]`` when block-wise. Fused embeddings go into ``QEmbedLayerNormalization``
(int8 tables, looked up per token); an embedding table the BERT optimizer could
not fuse (MPNet: relative positions) is an int8 ``Gather`` table the same way, one
scale per token. ONNX Runtime
folds the dequantization into fp32 weights once, when the session is created
(:func:`models.providers.cpu_session_options` sets ``session.disable_quant_qdq``
so its constant folding does not keep the ``DequantizeLinear`` nodes for QDQ
fusion). The file stays int8-sized (< 30 MB for MiniLM) and, on this AVX2 CPU,
fp32 GEMM on the folded weights runs as fast as the dynamic int8 kernels
(bench/score_throughput.py).

:func:`weight_only_from_fp32` is the export recipe; :func:`weight_only_from_dynamic`
rewrites a dynamically quantized model (0.3.0's layout) into this one *keeping its
int8 weights bit for bit*, so a shipped model can be migrated without its fp32
file or its training run (``python -m models.training.weightonly``).
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import warnings
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

__all__ = [
    "BLOCK",
    "fp16_from_fp32",
    "fp16_from_weight_only",
    "fp32_from_weight_only",
    "migrate_model_dir",
    "weight_only_from_dynamic",
    "weight_only_from_fp32",
]

logger = logging.getLogger(__name__)

#: Rows of a weight column that share one int8 scale (when the input width divides).
BLOCK = 128
_MS = "com.microsoft"


class _Graph:
    """A small editing helper: new initializers and node lists for one graph."""

    def __init__(self, model: onnx.ModelProto) -> None:
        self.model = model
        self.graph = model.graph
        self.inits = {i.name: i for i in self.graph.initializer}
        self.producer = {o: n for n in self.graph.node for o in n.output}
        self.new_inits: list[onnx.TensorProto] = []

    def array(self, name: str) -> np.ndarray:
        return numpy_helper.to_array(self.inits[name])

    def add(self, array: np.ndarray, name: str) -> str:
        self.new_inits.append(numpy_helper.from_array(array, name))
        return name

    def dequantized_weight(
        self, prefix: str, q: np.ndarray, scales: np.ndarray, zero: np.ndarray | None = None
    ) -> tuple[list[onnx.NodeProto], str]:
        """Nodes that turn int8 ``q`` ``[K, N]`` into an fp32 ``[K, N]`` weight.

        ``scales`` is ``[nb, N]`` (one row per block of ``K // nb`` rows; ``nb == 1``:
        per column); ``zero`` the per-column zero points (default 0).
        """
        k, n = q.shape
        nb = scales.shape[0]
        out = f"{prefix}_weight"
        if nb == 1:
            zp = np.zeros(n, np.int8) if zero is None else zero.astype(q.dtype)
            dq = helper.make_node(
                "DequantizeLinear",
                [
                    self.add(q, f"{prefix}_wq"),
                    self.add(scales[0].astype(np.float32), f"{prefix}_ws"),
                    self.add(zp, f"{prefix}_wz"),
                ],
                [out],
                axis=1,
                name=f"{prefix}_dq",
            )
            return [dq], out
        if zero is not None and np.any(zero):
            raise ValueError(f"{prefix}: block-wise weights must be symmetric")
        blk = k // nb
        # Rows of the stored tensor are (block, column): one scale per row, axis 0.
        stored = q.reshape(nb, blk, n).transpose(0, 2, 1).reshape(nb * n, blk)
        nodes = [
            helper.make_node(
                "DequantizeLinear",
                [
                    self.add(np.ascontiguousarray(stored), f"{prefix}_wq"),
                    self.add(scales.reshape(nb * n).astype(np.float32), f"{prefix}_ws"),
                    self.add(np.zeros(nb * n, q.dtype), f"{prefix}_wz"),
                ],
                [f"{prefix}_dq"],
                axis=0,
                name=f"{prefix}_dq",
            ),
            helper.make_node(
                "Reshape",
                [f"{prefix}_dq", self.add(np.array([nb, n, blk], np.int64), f"{prefix}_s3")],
                [f"{prefix}_r3"],
                name=f"{prefix}_r3",
            ),
            helper.make_node(
                "Transpose", [f"{prefix}_r3"], [f"{prefix}_t"], perm=[0, 2, 1], name=f"{prefix}_t"
            ),
            helper.make_node(
                "Reshape",
                [f"{prefix}_t", self.add(np.array([k, n], np.int64), f"{prefix}_s2")],
                [out],
                name=f"{prefix}_r2",
            ),
        ]
        return nodes, out

    def finish(self, nodes: list[onnx.NodeProto]) -> onnx.ModelProto:
        """Replace the node list, drop dead quantizers and unused initializers."""
        outputs = {o.name for o in self.graph.output}
        while True:  # drop nodes whose outputs nobody reads (the old quantizers)
            used = {i for n in nodes for i in n.input} | outputs
            alive = [n for n in nodes if any(o in used for o in n.output)]
            if len(alive) == len(nodes):
                break
            nodes = alive
        used = {i for n in nodes for i in n.input}
        del self.graph.node[:]
        self.graph.node.extend(nodes)
        keep = [i for i in self.graph.initializer if i.name in used]
        keep += [i for i in self.new_inits if i.name in used]
        del self.graph.initializer[:]
        self.graph.initializer.extend(keep)
        onnx.checker.check_model(self.model)
        logger.info("weight-only int8 graph: %s", dict(Counter(n.op_type for n in self.graph.node)))
        return self.model


def _quantize(w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 of fp32 ``w`` ``[K, N]``: ``(q, scales[nb, N])``, block-wise when
    ``K`` divides into :data:`BLOCK` rows, else per column."""
    k, n = w.shape
    nb = k // BLOCK if k % BLOCK == 0 and k > BLOCK else 1
    blocks = w.reshape(nb, k // nb, n)
    scales = np.abs(blocks).max(axis=1) / 127.0
    scales = np.where(scales > 0, scales, 1.0).astype(np.float32)
    q = np.clip(np.rint(blocks / scales[:, None, :]), -127, 127).astype(np.int8)
    return q.reshape(k, n), scales


def weight_only_from_fp32(fp32_path: Path, out: Path) -> Path:
    """The export recipe: the BERT-optimized fp32 model to weight-only int8 at ``out``."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.simplefilter("ignore")
        embed = Path(tmp) / "embed.onnx"
        # Only the embedding tables: QEmbedLayerNormalization dequantizes per token.
        quantize_dynamic(
            str(fp32_path),
            str(embed),
            weight_type=QuantType.QInt8,
            op_types_to_quantize=["EmbedLayerNormalization"],
            extra_options={"DefaultTensorType": onnx.TensorProto.FLOAT},
        )
        g = _Graph(onnx.load(str(embed)))
    nodes: list[onnx.NodeProto] = []
    for i, node in enumerate(g.graph.node):
        slot = {"MatMul": 1, "Attention": 1, "Gather": 0}.get(node.op_type)
        if slot is None or node.input[slot] not in g.inits or g.array(node.input[slot]).ndim != 2:
            nodes.append(node)
            continue
        weight = g.array(node.input[slot]).astype(np.float32)
        if node.op_type == "Gather":
            # An embedding table left unfused (e.g. MPNet's): one scale per row (per token),
            # quantized as the transposed matrix and transposed back (folded at load).
            q, scales = _quantize(np.ascontiguousarray(weight.T))
            chain, transposed = g.dequantized_weight(f"wo{i}", q, scales)
            chain.append(
                helper.make_node(
                    "Transpose", [transposed], [f"wo{i}_table"], perm=[1, 0], name=f"wo{i}_tt"
                )
            )
            node.input[slot] = f"wo{i}_table"
        else:
            q, scales = _quantize(weight)
            chain, node.input[slot] = g.dequantized_weight(f"wo{i}", q, scales)
        nodes.extend([*chain, node])
    onnx.save(g.finish(nodes), str(out))
    return out


def _dequantize(g: _Graph, node: onnx.NodeProto) -> np.ndarray:
    """What a ``DequantizeLinear`` of constant inputs computes: ``(q - zero) * scale``."""
    q = g.array(node.input[0]).astype(np.float32)
    scale = g.array(node.input[1]).astype(np.float32)
    zero = (
        g.array(node.input[2]).astype(np.float32)
        if len(node.input) > 2 and node.input[2]
        else np.zeros_like(scale)
    )
    if scale.ndim == 1 and q.ndim > 1:  # per-axis: scales run along ``axis``
        axis = next((a.i for a in node.attribute if a.name == "axis"), 1)
        shape = [1] * q.ndim
        shape[axis] = -1
        scale, zero = scale.reshape(shape), zero.reshape(shape)
    return ((q - zero) * scale).astype(np.float32)


def fp32_from_weight_only(model: onnx.ModelProto) -> onnx.ModelProto:
    """The weight-only int8 model with its weights dequantized into fp32 initializers.

    It computes what the int8 file computes (ONNX Runtime folds the same
    dequantization into fp32 weights when it loads the int8 file on CPU), so a
    variant built from it scores like the int8 file: the CUDA variant
    (:func:`fp16_from_weight_only`) agrees with every CPU scorer's labels instead of
    with the fp32 export's (which the int8 file differs from on ~0.5 % of texts).
    ``DequantizeLinear`` nodes of constant inputs become initializers and
    ``QEmbedLayerNormalization`` (CPU-only in ONNX Runtime) the plain
    ``EmbedLayerNormalization`` on dequantized tables. Raises ``ValueError`` on a
    dynamically quantized model (0.3.0's layout: activations quantized per batch),
    which has no fp32 equivalent.
    """
    g = _Graph(model)
    dynamic = {"DynamicQuantizeLinear", "MatMulInteger", "QAttention", "DynamicQuantizeMatMul"}
    found = sorted({n.op_type for n in g.graph.node} & dynamic)
    if found:
        raise ValueError(f"not a weight-only int8 model: dynamic quantization ops {found}")
    nodes: list[onnx.NodeProto] = []
    for node in g.graph.node:
        if node.op_type == "DequantizeLinear" and all(i in g.inits for i in node.input if i):
            g.add(_dequantize(g, node), node.output[0])
        elif node.op_type == "QEmbedLayerNormalization":
            # inputs: ids, segment ids, 5 quantized tables, mask, 5 scales, 5 zero points
            ins = list(node.input)
            tables = []
            for q, scale, zero in zip(ins[2:7], ins[8:13], ins[13:18], strict=True):
                fake = helper.make_node("DequantizeLinear", [q, scale, zero], [f"{q}_fp32"])
                tables.append(g.add(_dequantize(g, fake), f"{q}_fp32"))
            embed = helper.make_node(
                "EmbedLayerNormalization",
                [ins[0], ins[1], *tables, ins[7]],
                list(node.output),
                name=node.name,
                domain=_MS,
            )
            embed.attribute.extend(a for a in node.attribute if a.name == "epsilon")
            nodes.append(embed)
        else:
            nodes.append(node)
    return g.finish(nodes)


def fp16_from_weight_only(int8_path: Path, out: Path) -> Path:
    """The CUDA variant of a weight-only int8 file: its dequantized weights in fp16, fp16
    compute, fp32 inputs and outputs (see :func:`fp32_from_weight_only` for why)."""
    return fp16_from_fp32(fp32_from_weight_only(onnx.load(str(int8_path))), out)


def fp16_from_fp32(fp32: onnx.ModelProto, out: Path) -> Path:
    """onnxruntime's float16 conversion of ``fp32`` to ``out``, fp32 inputs and outputs kept."""
    from onnxruntime.transformers.onnx_model import OnnxModel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        model = OnnxModel(fp32)
        model.convert_float_to_float16(keep_io_types=True)
        model.save_model_to_file(str(out))
    return out


def _matmul_nbits(g: _Graph, node: onnx.NodeProto, prefix: str) -> list[onnx.NodeProto]:
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    if attrs.get("bits") != 8 or (len(node.input) > 3 and node.input[3]):
        raise ValueError(f"{node.name}: only 8-bit MatMulNBits without zero points")
    k, n = int(attrs["K"]), int(attrs["N"])
    packed = g.array(node.input[1]).astype(np.int16) - 128  # [N, nb, block], zero point 128
    nb, blk = packed.shape[1], packed.shape[2]
    q = packed.transpose(1, 2, 0).reshape(nb * blk, n)[:k].astype(np.int8)
    scales = g.array(node.input[2]).reshape(n, nb).T
    chain, weight = g.dequantized_weight(prefix, q, scales)
    matmul = helper.make_node("MatMul", [node.input[0], weight], list(node.output), name=prefix)
    return [*chain, matmul]


def weight_only_from_dynamic(model: onnx.ModelProto) -> onnx.ModelProto:
    """Rewrite a dynamically quantized model as weight-only int8, weights unchanged.

    ``QAttention`` becomes ``Attention`` on the float input; ``DynamicQuantizeLinear`` +
    ``MatMulInteger`` (+ its ``Cast`` and scale ``Mul`` nodes) a float ``MatMul``; 8-bit
    ``MatMulNBits`` a float ``MatMul``. Each weight keeps its int8 values and scales.
    """
    g = _Graph(model)
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in g.graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    replaced: dict[int, list[onnx.NodeProto]] = {}
    dropped: set[int] = set()
    for i, node in enumerate(g.graph.node):
        prefix = f"wo{i}"
        if node.op_type == "MatMulNBits":
            replaced[id(node)] = _matmul_nbits(g, node, prefix)
        elif node.op_type == "QAttention":
            x = g.producer[node.input[0]]
            if x.op_type != "DynamicQuantizeLinear":
                raise ValueError(f"{node.name}: input is not dynamically quantized")
            q = g.array(node.input[1])
            chain, weight = g.dequantized_weight(
                prefix, q, g.array(node.input[4]).reshape(1, -1), g.array(node.input[7])
            )
            attention = helper.make_node(
                "Attention",
                [x.input[0], weight, node.input[2], node.input[5]],
                list(node.output),
                name=prefix,
                domain=_MS,
            )
            attention.attribute.extend(node.attribute)
            replaced[id(node)] = [*chain, attention]
        elif node.op_type == "MatMulInteger":
            x = g.producer[node.input[0]]
            (cast,) = consumers[node.output[0]]
            (scale_mul,) = consumers[cast.output[0]]
            scales_name = next(s for s in scale_mul.input if s != cast.output[0])
            factors = g.producer[scales_name]  # activation scale x weight scales
            w_scale = next(s for s in factors.input if s in g.inits)
            q = g.array(node.input[1])
            scales = np.broadcast_to(g.array(w_scale), (q.shape[1],)).reshape(1, -1)
            zero = np.broadcast_to(g.array(node.input[3]), (q.shape[1],))
            chain, weight = g.dequantized_weight(prefix, q, scales, zero)
            matmul = helper.make_node(
                "MatMul", [x.input[0], weight], list(scale_mul.output), name=prefix
            )
            replaced[id(node)] = [*chain, matmul]
            dropped |= {id(cast), id(scale_mul), id(factors)}
    nodes: list[onnx.NodeProto] = []
    for node in g.graph.node:
        if id(node) in replaced:
            nodes.extend(replaced[id(node)])
        elif id(node) not in dropped:
            nodes.append(node)
    # Topological order: a replacement reads the float input its quantizer read.
    return _sorted(g.finish(nodes))


def _sorted(model: onnx.ModelProto) -> onnx.ModelProto:
    graph = model.graph
    ready = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending, order = list(graph.node), []
    while pending:
        rest = []
        for node in pending:
            if all(i in ready for i in node.input):
                order.append(node)
                ready.update(node.output)
            else:
                rest.append(node)
        if len(rest) == len(pending):
            raise ValueError(f"graph has a cycle or a missing input at {rest[0].name}")
        pending = rest
    del graph.node[:]
    graph.node.extend(order)
    return model


def migrate_model_dir(model_dir: Path, data_dir: Path, version: str) -> None:
    """Rewrite a model directory's dynamic ``int8`` file as weight-only int8 and update its
    card: version, file hash, the int8 validation metrics (the recipe's split of
    ``data_dir``), the agreement with the file it replaces, and the drift reference."""
    import pandas as pd

    from models.data import (
        RECIPE_FILES,
        RECIPE_SEED,
        RECIPE_VAL_FRACTION,
        load_labeled,
        stratified_split,
    )
    from models.evaluate import evaluate_file
    from models.modeldir import VARIANT_FILES, file_entry, load_model_dir, write_card
    from models.scoring import Classifier
    from models.training.reference import add_reference, recipe_source, recipe_validation_texts

    model_dir = Path(model_dir)
    path = model_dir / VARIANT_FILES["int8"]
    texts = recipe_validation_texts(data_dir)
    before = Classifier.load(model_dir, provider="cpu").predict(texts)
    card = load_model_dir(model_dir).card
    old_version = card.version
    onnx.save(weight_only_from_dynamic(onnx.load(str(path))), str(path))
    files = {**card.files, "int8": file_entry(model_dir, path.name)}
    card = card.model_copy(update={"files": files})
    write_card(model_dir, card)
    after = Classifier.load(model_dir, provider="cpu").predict(texts)
    pairs = list(zip(before, after, strict=True))
    agreement = {
        head: round(sum(getattr(a, head) == getattr(b, head) for a, b in pairs) / len(pairs), 4)
        for head in ("sentiment", "topic")
    }
    metrics = dict(card.metrics)
    validation = {head: dict(v) for head, v in metrics.get("validation", {}).items()}
    with tempfile.TemporaryDirectory() as tmp:
        for head, name in RECIPE_FILES.items():
            data = load_labeled(Path(data_dir) / name, head)
            _, val_idx = stratified_split(data.labels, RECIPE_VAL_FRACTION, RECIPE_SEED)
            val = data.subset(val_idx)
            csv = Path(tmp) / f"val_{head}.csv"
            labels = [val.label_names[i] for i in val.labels]
            pd.DataFrame({"text": val.texts, "label": labels}).to_csv(csv, index=False)
            report = evaluate_file(model_dir, csv, head, variant="int8")
            entry = {k: report[k] for k in ("n", "accuracy", "macro_f1", "ece_before", "ece_after")}
            entry["per_class_f1"] = {k: round(v["f1"], 4) for k, v in report["per_class"].items()}
            validation.setdefault(head, {})["int8"] = entry
    metrics["validation"] = validation
    parity = dict(card.parity)
    parity["int8_layout"] = (
        f"weight-only int8 (fp32 compute), migrated from {old_version}'s dynamic int8 with "
        "its int8 weights unchanged; int8_vs_fp32_* above describe the dynamic file"
    )
    parity[f"int8_vs_{old_version}_int8_argmax_agreement"] = agreement
    parity[f"int8_vs_{old_version}_n_texts"] = len(texts)
    note = (
        f" {version}: the {old_version} weights, int8 re-laid out as weight-only "
        "(python -m models.training.weightonly): batch-invariant scores."
    )
    update = {"version": version, "metrics": metrics, "parity": parity, "notes": card.notes + note}
    card = card.model_copy(update=update)
    write_card(model_dir, card)
    add_reference(model_dir, texts, source=recipe_source())
    logger.info(
        "%s: %s -> %s, agreement with the old int8: %s", model_dir, old_version, version, agreement
    )


def main(argv: list[str] | None = None) -> None:
    """Migrate a model directory's dynamic int8 file to weight-only int8 (module doc)."""
    parser = argparse.ArgumentParser(
        prog="python -m models.training.weightonly", description=main.__doc__
    )
    parser.add_argument("--model", type=Path, required=True, help="the model directory")
    parser.add_argument("--data", type=Path, required=True, help="the recipe's data directory")
    parser.add_argument("--version", required=True, help="the migrated model's version")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    migrate_model_dir(args.model, args.data, args.version)


if __name__ == "__main__":
    main()
