"""The CUDA path against the CPU path, per model variant: speed and agreement.

Not a test: run it on a machine with an NVIDIA GPU and ``onnxruntime-gpu`` and
read the numbers (a Markdown table, then one JSON line)::

    .venv/bin/python bench/gpu_paths.py --model models/default [--model models/accurate]

For each model directory, in one run on the same corpus (``bench/_corpus.py``):

* the reference is the CPU session on the int8 variant, all cores: what every
  CPU scorer runs;
* then each variant present (fp16, fp32, int8) on CUDA, with I/O binding on
  (the scorer's default there) and off, at each ``--batch-size``;
* for each: docs/s of inference alone (``Classifier.probabilities`` on
  pre-tokenized texts, best of ``--repeats``), docs/s of the scoring core
  (``Classifier.predict``: tokenize, infer, build predictions), single-document
  latency p50/p95 (after one untimed call per text), and agreement with the
  reference: the largest difference of a calibrated probability and the share of
  documents whose labels match, per head;
* where each CUDA session's nodes ran (ONNX Runtime's profiler, one 64 x 48 batch):
  the int8 file's quantized embedding node has no CUDA kernel and runs on CPU.

``models/default`` ships its int8 file only: ``make model-fp16`` first adds the fp16
file the CUDA image builds. Measured on an H200 on 4 December: models/README.md.
Without a usable GPU the CUDA rows say why (``fallback_reason``) and the CPU
row is still measured. Ratios are against the reference row of the same model.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _corpus import make_corpus
from model_variants import single_doc_latency

from models.exceptions import ProviderError
from models.scoring import Classifier

_CUDA_VARIANTS = ("fp16", "fp32", "int8")


def _gpu_name() -> str:
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        )
        return out.stdout.strip().splitlines()[0]
    except (OSError, subprocess.SubprocessError, IndexError):
        return "no GPU (nvidia-smi unavailable)"


def machine() -> dict[str, Any]:
    """Where the numbers were measured."""
    import onnxruntime as ort

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "gpu": _gpu_name(),
        "cpu_cores": cores,
        "python": platform.python_version(),
        "onnxruntime": ort.__version__,
        "providers": ort.get_available_providers(),
    }


def _agreement(
    ref: tuple[np.ndarray, np.ndarray], got: tuple[np.ndarray, np.ndarray]
) -> dict[str, Any]:
    out = {}
    for head, r, g in zip(("sentiment", "topic"), ref, got, strict=True):
        out[head] = {
            "max_abs_prob_diff": float(np.abs(r - g).max()),
            "label_agreement": float((r.argmax(axis=1) == g.argmax(axis=1)).mean()),
        }
    return out


def _best_rate(fn: Any, n: int, repeats: int) -> float:
    fn()  # warm-up: CUDA kernels, allocator arenas, cuDNN/cuBLAS heuristics
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return n / best


def _placement(classifier: Classifier, batch: tuple[np.ndarray, ...]) -> dict[str, Any]:
    """Where the session's nodes ran: op types and kernel time per provider in the last of
    three runs (ORT's profiler; CUDA kernel times as the host sees them).

    A CUDA session puts nodes that have no CUDA kernel on the CPU, with copies
    around them; this shows which, and what they cost, for one padded batch.
    """
    import tempfile

    import onnxruntime as ort

    with tempfile.TemporaryDirectory() as tmp:
        options = ort.SessionOptions()
        options.enable_profiling = True
        options.profile_file_prefix = str(Path(tmp) / "profile")
        options.log_severity_level = 3
        session = ort.InferenceSession(
            str(classifier.model_dir.onnx_path(classifier.variant)),
            sess_options=options,
            providers=[("CUDAExecutionProvider", {"device_id": 0}), "CPUExecutionProvider"],
        )
        feeds = dict(zip(("input_ids", "attention_mask", "token_type_ids"), batch, strict=True))
        for _ in range(3):  # the first runs pay for kernel selection and allocations
            session.run(None, feeds)
        events = json.loads(Path(session.end_profiling()).read_text())
    last = max(e["ts"] for e in events if e.get("cat") == "Session" and e["name"] == "model_run")
    out: dict[str, dict[str, Any]] = {}
    for event in events:
        if event.get("cat") != "Node" or not event["name"].endswith("_kernel_time"):
            continue
        if event["ts"] < last:
            continue
        where = out.setdefault(event["args"]["provider"], {"ops": set(), "us_per_run": 0.0})
        where["ops"].add(event["args"]["op_name"])
        where["us_per_run"] += event["dur"]
    return {
        p: {"ops": sorted(v["ops"]), "us_per_run": round(v["us_per_run"])} for p, v in out.items()
    }


def _measure(
    classifier: Classifier,
    texts: list[str],
    short: list[str],
    batch_size: int,
    args: argparse.Namespace,
) -> dict[str, Any]:
    encoded = classifier.tokenize(texts)
    probs = classifier.probabilities(encoded, batch_size=batch_size)
    infer = _best_rate(
        lambda: classifier.probabilities(encoded, batch_size=batch_size), len(texts), args.repeats
    )
    core = _best_rate(
        lambda: classifier.predict(texts, batch_size=batch_size), len(texts), args.repeats
    )
    p50, p95 = single_doc_latency(classifier, short)
    return {
        "infer_docs_per_s": round(infer, 1),
        "core_docs_per_s": round(core, 1),
        "latency_ms_p50": round(p50, 2),
        "latency_ms_p95": round(p95, 2),
        "_probs": probs,
    }


def _sample_batch(classifier: Classifier) -> tuple[np.ndarray, ...]:
    """64 windows of 48 tokens: a typical padded batch of headlines."""
    ids = np.full((64, 48), 1000, dtype=np.int64)
    ids[:, 0], ids[:, -1] = 101, 102
    return ids, np.ones_like(ids), np.zeros_like(ids)


def measure_model(
    model: Path, texts: list[str], short: list[str], args: argparse.Namespace
) -> list[dict[str, Any]]:
    """The reference row, then one row per CUDA configuration."""
    ref_clf = Classifier.load(
        model, provider="cpu", variant="int8", intra_op_threads=args.threads or None
    )
    name = f"{ref_clf.card.name} {ref_clf.card.version}"
    ref = _measure(ref_clf, texts, short, 64, args)
    ref_probs = ref.pop("_probs")
    rows = [
        {"model": str(model), "name": name, "provider": "cpu", "variant": "int8",
         "io_binding": False, "batch_size": 64, **ref,
         "agreement": _agreement(ref_probs, ref_probs)}
    ]  # fmt: skip
    for variant in _CUDA_VARIANTS:
        if not ref_clf.model_dir.has_variant(variant):
            continue
        for binding in (True, False):
            try:
                clf = Classifier.load(
                    model, provider="cuda", require_gpu=True, variant=variant, io_binding=binding
                )
            except ProviderError as exc:
                rows.append({"model": str(model), "name": name, "provider": "cuda",
                             "variant": variant, "unavailable": str(exc)})  # fmt: skip
                return rows
            placement = _placement(clf, _sample_batch(clf)) if binding else None
            for batch_size in args.batch_size:
                got = _measure(clf, texts, short, batch_size, args)
                probs = got.pop("_probs")
                rows.append(
                    {"model": str(model), "name": name, "provider": "cuda", "variant": variant,
                     "io_binding": binding, "batch_size": batch_size, **got,
                     "agreement": _agreement(ref_probs, probs), "placement": placement}
                )  # fmt: skip
    return rows


def _table(rows: list[dict[str, Any]]) -> None:
    print(
        "| model | provider / variant | I/O binding | batch | inference docs/s | ratio | "
        "scoring core docs/s | latency p50 / p95 (ms) | max Δp sentiment / topic | "
        "labels agree sentiment / topic |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    base: dict[str, float] = {}
    for row in rows:
        if "unavailable" in row:
            print(f"| {row['name']} | {row['provider']} / {row['variant']} | – | – | "
                  f"unavailable: {row['unavailable']} | | | | | |")  # fmt: skip
            continue
        base.setdefault(row["model"], row["infer_docs_per_s"])
        a = row["agreement"]
        print(
            f"| {row['name']} | {row['provider']} / {row['variant']} | "
            f"{'on' if row['io_binding'] else 'off'} | {row['batch_size']} | "
            f"{row['infer_docs_per_s']} | {row['infer_docs_per_s'] / base[row['model']]:.2f}x | "
            f"{row['core_docs_per_s']} | {row['latency_ms_p50']} / {row['latency_ms_p95']} | "
            f"{a['sentiment']['max_abs_prob_diff']:.4f} / {a['topic']['max_abs_prob_diff']:.4f} | "
            f"{a['sentiment']['label_agreement']:.4f} / {a['topic']['label_agreement']:.4f} |"
        )


def _placements(rows: list[dict[str, Any]]) -> None:
    for row in rows:
        if row.get("placement") and row.get("batch_size") == row.get("_first_batch"):
            where = "; ".join(
                f"{provider.removesuffix('ExecutionProvider')}: {v['us_per_run']} µs "
                f"({', '.join(v['ops'])})"
                for provider, v in row["placement"].items()
            )
            print(f"- {row['name']} cuda / {row['variant']}, 64 x 48 tokens: {where}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, action="append", required=True)
    parser.add_argument("--docs", type=int, default=2000, help="corpus size for docs/s")
    parser.add_argument("--latency-docs", type=int, default=200, help="single-doc calls")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--batch-size", type=int, action="append", help="windows per CUDA call (default: 64, 256)"
    )
    parser.add_argument("--threads", type=int, default=0, help="CPU intra-op threads; 0: all")
    parser.add_argument("--json-out", type=Path, default=None, help="also write the JSON here")
    args = parser.parse_args(argv)
    args.batch_size = args.batch_size or [64, 256]
    corpus = make_corpus(args.docs)
    texts = [f"{d.title or ''}\n{d.body or ''}".strip() for d in corpus]
    short = [d.title or d.body or "" for d in corpus[: args.latency_docs]]
    where = machine()
    print(json.dumps(where))
    rows = [row for model in args.model for row in measure_model(model, texts, short, args)]
    _table(rows)
    for row in rows:
        row["_first_batch"] = args.batch_size[0]
    _placements(rows)
    for row in rows:
        row.pop("_first_batch")
    result = {"docs": len(texts), "machine": where, "rows": rows}
    print(json.dumps(result))
    if args.json_out is not None:
        args.json_out.write_text(json.dumps(result, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
