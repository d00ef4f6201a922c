"""Weight-only int8 (models/training/weightonly.py): the export recipe and the migration
of a dynamically quantized model, on real ONNX graphs run by ONNX Runtime."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from models.modeldir import VARIANT_FILES
from models.providers import cpu_session_options
from models.training.weightonly import (
    BLOCK,
    weight_only_from_dynamic,
    weight_only_from_fp32,
)

pytest.importorskip("torch", reason="the tiny model is exported with the [train] extra")

DYNAMIC_OPS = {"DynamicQuantizeLinear", "MatMulInteger", "QAttention", "MatMulNBits"}


def _ops(model: onnx.ModelProto) -> set[str]:
    return {n.op_type for n in model.graph.node}


def _session(model: onnx.ModelProto | Path, optimized: Path | None = None) -> ort.InferenceSession:
    options = cpu_session_options(intra_op_threads=1)
    if optimized is not None:
        options.optimized_model_filepath = str(optimized)
    source = str(model) if isinstance(model, Path) else model.SerializeToString()
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def _one_matmul(path: Path, weight: np.ndarray) -> Path:
    """A graph ``y = x @ weight`` with ``weight`` an fp32 initializer."""
    k, n = weight.shape
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
        "one",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", n])],
        [numpy_helper.from_array(weight.astype(np.float32), "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, path)
    return path


def _dynamic_int8(fp32: Path, out: Path) -> Path:
    """``fp32`` quantized the way 0.3.0 shipped it (quantize_dynamic: QAttention,
    MatMulInteger)."""
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(
        str(fp32),
        str(out),
        weight_type=QuantType.QInt8,
        per_channel=True,
        reduce_range=True,
        extra_options={"DefaultTensorType": TensorProto.FLOAT},
    )
    return out


def test_the_exported_int8_has_no_dynamic_quantizers(tiny_model_dir: Path, tmp_path: Path) -> None:
    model = onnx.load(str(tiny_model_dir / VARIANT_FILES["int8"]))
    ops = _ops(model)
    assert not ops & DYNAMIC_OPS
    assert "DequantizeLinear" in ops and "QEmbedLayerNormalization" in ops
    int8 = [i for i in model.graph.initializer if i.data_type == TensorProto.INT8]
    assert int8, "the weights are stored as int8"
    # The session folds every weight's dequantization once, at load.
    _session(tiny_model_dir / VARIANT_FILES["int8"], optimized=tmp_path / "opt.onnx")
    assert "DequantizeLinear" not in _ops(onnx.load(str(tmp_path / "opt.onnx")))


@pytest.mark.parametrize("k", [3 * BLOCK, 40])
def test_weight_only_matmul_matches_fp32_within_int8_error(tmp_path: Path, k: int) -> None:
    rng = np.random.default_rng(0)
    weight = rng.normal(size=(k, 24)).astype(np.float32)
    out = weight_only_from_fp32(_one_matmul(tmp_path / "fp32.onnx", weight), tmp_path / "wo.onnx")
    model = onnx.load(str(out))
    assert ("Reshape" in _ops(model)) is (k % BLOCK == 0)  # block-wise only where K divides
    x = rng.normal(size=(5, k)).astype(np.float32)
    (y,) = _session(model).run(None, {"x": x})
    expected = x @ weight
    # Symmetric int8: each weight within half a step (max|w| / 254) of its value.
    bound = np.abs(x).sum(axis=1, keepdims=True) * np.abs(weight).max() / 254
    assert np.all(np.abs(y - expected) <= bound + 1e-4)
    # Each row is computed on its own: the same row alone gives the same numbers.
    (alone,) = _session(model).run(None, {"x": x[2:3]})
    np.testing.assert_allclose(alone[0], y[2], rtol=0, atol=1e-5)


def test_migration_keeps_matmulnbits_weights_exactly(tmp_path: Path) -> None:
    from onnxruntime.quantization.matmul_nbits_quantizer import MatMulNBitsQuantizer

    rng = np.random.default_rng(1)
    weight = rng.normal(size=(2 * BLOCK, 16)).astype(np.float32)
    quantizer = MatMulNBitsQuantizer(
        onnx.load(str(_one_matmul(tmp_path / "fp32.onnx", weight))),
        bits=8,
        block_size=BLOCK,
        is_symmetric=True,
        accuracy_level=1,  # fp32 compute on the dequantized weights: the exact reference
    )
    quantizer.process()
    nbits = quantizer.model.model
    assert "MatMulNBits" in _ops(nbits)
    migrated = weight_only_from_dynamic(onnx.load_from_string(nbits.SerializeToString()))
    assert not _ops(migrated) & DYNAMIC_OPS
    x = rng.normal(size=(4, 2 * BLOCK)).astype(np.float32)
    (reference,) = _session(nbits).run(None, {"x": x})
    (y,) = _session(migrated).run(None, {"x": x})
    np.testing.assert_allclose(y, reference, rtol=1e-5, atol=1e-4)


def test_migration_of_a_dynamic_model_is_batch_invariant(
    tiny_model_dir: Path, tmp_path: Path
) -> None:
    """quantize_dynamic's layout (QAttention, MatMulInteger: what 0.3.0 shipped) becomes
    weight-only with the same int8 weight values, and stops depending on the batch."""
    dynamic = _dynamic_int8(tiny_model_dir / VARIANT_FILES["fp32"], tmp_path / "dynamic.onnx")
    source = onnx.load(str(dynamic))
    assert {"QAttention", "MatMulInteger"} <= _ops(source)
    weights = {
        numpy_helper.to_array(i).tobytes()
        for i in source.graph.initializer
        if i.data_type == TensorProto.INT8 and len(i.dims) == 2
    }
    migrated = weight_only_from_dynamic(source)
    assert not _ops(migrated) & DYNAMIC_OPS
    kept = {
        numpy_helper.to_array(i).tobytes()
        for i in migrated.graph.initializer
        if i.data_type == TensorProto.INT8 and len(i.dims) == 2
    }
    assert weights <= kept  # every int8 weight matrix survives bit for bit
    rng = np.random.default_rng(2)
    ids = rng.integers(5, 90, size=(3, 12)).astype(np.int64)
    mask = np.ones_like(ids)
    mask[1, 7:] = 0  # a padded row
    feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
    session = _session(migrated)
    batch = session.run(None, feeds)
    row = {k: v[1:2, :7] for k, v in feeds.items()}
    alone = session.run(None, row)
    for together, single in zip(batch, alone, strict=True):
        np.testing.assert_allclose(together[1], single[0], rtol=0, atol=1e-5)


def test_migrating_a_whole_model_directory(tiny_model_dir: Path, tmp_path: Path) -> None:
    """``python -m models.training.weightonly``: a directory shipped with dynamic int8 (as
    0.3.0 was) comes out weight-only, loadable, with its card's version, file hash,
    int8 validation metrics, agreement with the replaced file and drift reference new."""
    import json
    import shutil

    from models.data import RECIPE_FILES
    from models.modeldir import CARD_FILE, file_entry, load_model_dir
    from models.scoring import Classifier
    from models.training.weightonly import main
    from tests.models.conftest import toy_sentiment, toy_topic

    model_dir = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model_dir)
    int8 = model_dir / VARIANT_FILES["int8"]
    _dynamic_int8(model_dir / VARIANT_FILES["fp32"], int8)
    card_file = model_dir / CARD_FILE  # the card as 0.3.0 shipped it: dynamic int8's hash
    raw = json.loads(card_file.read_text())
    raw["files"]["int8"] = file_entry(model_dir, int8.name).model_dump()
    card_file.write_text(json.dumps({**raw, "version": "0.3.0"}, indent=2))
    reference_before = (model_dir / "reference.json").read_bytes()
    data = tmp_path / "data"
    data.mkdir()
    frames = {"sentiment": toy_sentiment(), "topic": toy_topic()}
    for head, name in RECIPE_FILES.items():
        frames[head].to_csv(data / name, index=False)

    main(["--model", str(model_dir), "--data", str(data), "--version", "0.3.1"])

    assert not _ops(onnx.load(str(int8))) & DYNAMIC_OPS
    card = load_model_dir(model_dir).card  # the file hashes in the card match again
    assert card.version == "0.3.1" and "0.3.1: the 0.3.0 weights" in card.notes
    agreement = card.parity["int8_vs_0.3.0_int8_argmax_agreement"]
    assert set(agreement) == {"sentiment", "topic"}
    assert all(0 <= v <= 1 for v in agreement.values())
    n_texts = card.parity["int8_vs_0.3.0_n_texts"]
    validation = card.metrics["validation"]
    assert n_texts == sum(validation[head]["int8"]["n"] for head in RECIPE_FILES)
    assert (model_dir / "reference.json").read_bytes() != reference_before
    assert json.loads((model_dir / "reference.json").read_text())
    (scored,) = Classifier.load(model_dir, provider="cpu").predict(["Acme beats estimates"])
    assert scored.sentiment in ("negative", "neutral", "positive")
