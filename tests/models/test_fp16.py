"""The CUDA (fp16) variant built from the int8 file (models/training/weightonly.py,
models/training/fp16.py), on the shipped model and real ONNX Runtime sessions.

The fp16 file is meant for CUDA; ONNX Runtime also runs it on CPU (slowly), which is
what these tests do: there is no GPU here. bench/gpu_paths.py measured the same files
on an H200 (models/README.md).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from models.encoding import TextEncoder, pad_batch
from models.modeldir import DEFAULT_MODEL_DIR, VARIANT_FILES, load_model_dir
from models.providers import cpu_session_options
from models.scoring import Classifier
from models.training.fp16 import add_fp16_variant
from models.training.weightonly import fp32_from_weight_only, weight_only_from_fp32

REPO = Path(__file__).resolve().parents[2]
TEXTS = [
    "Bank shares tumble after a surprise profit warning",
    "Fed holds rates steady, signals cuts later this year",
    "$TSLA to the moon after record deliveries",
    "Oil prices climb as OPEC+ extends output cuts",
    "Regulator fines lender $2 billion over money laundering failures",
    "Acme Corp raises dividend and announces a buyback",
]


def _session(model: onnx.ModelProto | Path) -> ort.InferenceSession:
    source = str(model) if isinstance(model, Path) else model.SerializeToString()
    return ort.InferenceSession(
        source, cpu_session_options(intra_op_threads=1), providers=["CPUExecutionProvider"]
    )


def _shipped_copy(tmp_path: Path) -> Path:
    """The committed default model directory as shipped: card, tokenizer, reference, int8."""
    out = tmp_path / "default"
    out.mkdir()
    for name in ("model_card.json", "tokenizer.json", "reference.json", VARIANT_FILES["int8"]):
        shutil.copy2(DEFAULT_MODEL_DIR / name, out / name)
    return out


@pytest.mark.parametrize("k", [256, 100])  # block-wise (K divides into blocks), per column
def test_dequantized_weights_compute_what_the_int8_file_computes(tmp_path: Path, k: int) -> None:
    rng = np.random.default_rng(k)
    weight = rng.normal(size=(k, 24)).astype(np.float32)
    graph = helper.make_graph(
        [helper.make_node("MatMul", ["x", "w"], ["y"], name="mm")],
        "one",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", k])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 24])],
        [numpy_helper.from_array(weight, "w")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=8)
    onnx.save(model, tmp_path / "fp32.onnx")
    weight_only_from_fp32(tmp_path / "fp32.onnx", tmp_path / "int8.onnx")
    int8 = onnx.load(str(tmp_path / "int8.onnx"))
    assert "DequantizeLinear" in {n.op_type for n in int8.graph.node}

    back = fp32_from_weight_only(int8)

    assert "DequantizeLinear" not in {n.op_type for n in back.graph.node}
    x = rng.normal(size=(5, k)).astype(np.float32)
    want = _session(tmp_path / "int8.onnx").run(None, {"x": x})[0]
    got = _session(back).run(None, {"x": x})[0]
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-5)


def test_the_shipped_int8_model_dequantizes_to_the_same_numbers() -> None:
    """QEmbedLayerNormalization (CPU-only in ONNX Runtime) becomes EmbedLayerNormalization on
    dequantized tables; every logit is what the int8 file gives."""
    int8_path = DEFAULT_MODEL_DIR / VARIANT_FILES["int8"]
    back = fp32_from_weight_only(onnx.load(str(int8_path)))
    ops = {n.op_type for n in back.graph.node}
    assert "QEmbedLayerNormalization" not in ops and "EmbedLayerNormalization" in ops
    card = load_model_dir(DEFAULT_MODEL_DIR).card
    encoder = TextEncoder.from_file(DEFAULT_MODEL_DIR / "tokenizer.json", card.max_length)
    batch = pad_batch(encoder.encode_truncated(TEXTS), encoder.pad_id)
    feeds = dict(zip(("input_ids", "attention_mask", "token_type_ids"), batch, strict=True))
    want = _session(int8_path).run(None, feeds)
    got = _session(back).run(None, feeds)
    for a, b in zip(want, got, strict=True):
        np.testing.assert_allclose(b, a, rtol=0, atol=1e-5)


def test_a_dynamically_quantized_model_is_refused() -> None:
    graph = helper.make_graph(
        [helper.make_node("DynamicQuantizeLinear", ["x"], ["q", "s", "z"], name="dq")],
        "dynamic",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [2])],
        [helper.make_tensor_value_info("q", TensorProto.UINT8, [2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    with pytest.raises(ValueError, match="dynamic quantization ops"):
        fp32_from_weight_only(model)


def test_adding_the_fp16_variant_to_the_shipped_model(tmp_path: Path) -> None:
    model_dir = _shipped_copy(tmp_path)
    assert not load_model_dir(model_dir).has_variant("fp16")

    report = add_fp16_variant(model_dir, TEXTS)

    loaded = load_model_dir(model_dir)  # hashes checked against the rewritten card
    assert loaded.has_variant("fp16")
    assert loaded.card.parity["fp16"] == report
    assert report["derived_from"] == "int8" and report["n_texts"] == len(TEXTS)
    assert report["argmax_agreement_vs_int8"] == {"sentiment": 1.0, "topic": 1.0}
    assert max(report["max_abs_prob_diff_vs_int8"].values()) < 0.01
    # the rest of the card is the shipped one
    shipped = json.loads((DEFAULT_MODEL_DIR / "model_card.json").read_text())
    card = json.loads((model_dir / "model_card.json").read_text())
    assert {k: v for k, v in card.items() if k not in ("files", "parity")} == {
        k: v for k, v in shipped.items() if k not in ("files", "parity")
    }
    assert card["files"]["int8"] == shipped["files"]["int8"]
    # labels as the CPU scorers give them
    labels = {}
    for variant in ("int8", "fp16"):
        clf = Classifier.load(model_dir, provider="cpu", variant=variant)
        labels[variant] = [(p.sentiment, p.topic) for p in clf.predict(TEXTS)]
    assert labels["fp16"] == labels["int8"]
    # deterministic (a rebuilt image gets the same file), and no staging file left beside it
    first = (model_dir / VARIANT_FILES["fp16"]).read_bytes()
    add_fp16_variant(model_dir, TEXTS)
    assert (model_dir / VARIANT_FILES["fp16"]).read_bytes() == first
    assert {p.name for p in model_dir.iterdir()} == {
        "model_card.json", "tokenizer.json", "reference.json", "model.int8.onnx", "model.fp16.onnx"
    }  # fmt: skip


def test_the_cli_runs_without_torch(tmp_path: Path) -> None:
    """What the CUDA image's build step runs: the runtime dependencies and onnx, no torch."""
    model_dir = _shipped_copy(tmp_path)
    code = (
        "import sys; sys.modules['torch'] = None; "  # any `import torch` now fails
        "from models.training.fp16 import main; main(sys.argv[1:])"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, "--model", str(model_dir)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert "wrote model.fp16.onnx from model.int8.onnx" in result.stderr
    card = load_model_dir(model_dir).card
    assert card.parity["fp16"]["n_texts"] > 400  # the whole headline suite


def test_a_missing_directory_is_a_clear_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from models.exceptions import ModelDirError
    from models.training.fp16 import main

    with pytest.raises(ModelDirError, match="does not exist"):
        add_fp16_variant(tmp_path / "missing")
    with pytest.raises(SystemExit) as exc:
        main(["--model", str(tmp_path / "missing")])
    assert exc.value.code == 2
    assert "does not exist" in capsys.readouterr().err
