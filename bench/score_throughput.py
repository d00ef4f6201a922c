"""Scoring throughput: bare ONNX Runtime, the scoring core, the full Kafka pipeline, naive torch.

Not a test: run it and read the numbers (a table, then one JSON line)::

    .venv/bin/python bench/score_throughput.py [--model DIR] [--docs N]

(a) bare ONNX Runtime on pre-tokenized, length-sorted, padded batches;
(b) the scoring core (decode, tokenize, infer, build scored documents);
(c) the full pipeline through the embedded broker: produce raw, consume,
    score, produce scored, commit; throughput from a backlog, then
    end-to-end latency (fetched_at to the scored record) at half that rate;
(d) the naive baseline: PyTorch, one document at a time.
Targets: (c)/(a) >= 0.80 and (c)/(d) >= 10.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
import uuid
from collections import namedtuple
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _corpus import make_corpus
from _naive import build_untrained_minilm, naive_model, naive_throughput

from stream.contracts.schemas import RawDocument, ScoredDocument, decode, encode, message_key

Rec = namedtuple("Rec", "topic partition offset key value")
DEFAULT_MODEL = Path(__file__).resolve().parents[1] / "models" / "default"


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> str:
    """One line describing where the numbers were measured."""
    import onnxruntime as ort

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{cores} vCPU {_cpu_name()}, {platform.system()}, onnxruntime {ort.__version__}"


def bench_bare(classifier: Any, texts: Sequence[str], batch_size: int) -> float:
    """(a) docs/s of ``run_batch`` alone over pre-tokenized, sorted, padded batches."""
    from models.encoding import pad_batch

    encoded = classifier.tokenize(texts)
    windows = sorted((c for e in encoded for c in e.chunks), key=len)
    batches = [pad_batch(windows[i : i + batch_size]) for i in range(0, len(windows), batch_size)]
    classifier.run_batch(*batches[0])  # warm-up
    started = time.perf_counter()
    for batch in batches:
        classifier.run_batch(*batch)
    return len(texts) / (time.perf_counter() - started)


def bench_core(classifier: Any, docs: Sequence[RawDocument], batch_size: int, infer: int) -> float:
    """(b) docs/s of the scorer's core on encoded records, batch by batch."""
    from stream.scorer.batch import BatchScorer

    scorer = BatchScorer(classifier, clock=lambda: datetime.now(UTC), inference_batch_size=infer)
    records = [Rec("raw", 0, i, message_key(d), encode(d)) for i, d in enumerate(docs)]
    scorer.score(records[:batch_size])  # warm-up
    started = time.perf_counter()
    for i in range(0, len(records), batch_size):
        scorer.score(records[i : i + batch_size])
    return len(records) / (time.perf_counter() - started)


def _send(settings: Any, topics: Any, docs: Sequence[RawDocument], rate: float | None) -> None:
    from stream.kafka import make_producer

    producer = make_producer(settings)
    started = time.monotonic()
    for i, doc in enumerate(docs):
        if rate is not None:
            time.sleep(max(0.0, started + i / rate - time.monotonic()))
            doc = doc.model_copy(update={"fetched_at": datetime.now(UTC)})
        producer.send(topics.raw_for(doc.kind), value=encode(doc), key=message_key(doc))
    producer.flush()
    producer.close()


def _wait(predicate: Any, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("the pipeline did not finish in time")
        time.sleep(0.005)


def _latencies(settings: Any, topic: str, count: int) -> list[float]:
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(**settings.client_kwargs(), enable_auto_commit=False)
    parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic)]
    consumer.assign(parts)
    consumer.seek_to_beginning(*parts)
    out: list[float] = []
    seen = 0
    deadline = time.monotonic() + 120
    while seen < count and time.monotonic() < deadline:
        for records in consumer.poll(timeout_ms=500).values():
            for record in records:
                seen += 1
                doc = decode(record.value, ScoredDocument)
                if doc.id.startswith("lat-"):
                    out.append(record.timestamp / 1_000 - doc.fetched_at.timestamp())
    consumer.close()
    return out


def bench_pipeline(
    classifier: Any, docs: Sequence[RawDocument], latency_docs: int, batch_size: int, infer: int
) -> tuple[float, float, float]:
    """(c) docs/s through the embedded broker, then p50/p99 latency at half that rate."""
    from stream.broker import EmbeddedBroker
    from stream.contracts.topics import TopicNames
    from stream.kafka import KafkaSettings, ensure_topics
    from stream.runtime import StopFlag
    from stream.scorer.service import ScorerService
    from stream.scorer.settings import ScorerSettings

    log = Path(tempfile.mkdtemp()) / "tansu.log"
    with EmbeddedBroker(log_path=log) as broker:
        kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers, default_partitions=6)
        topics = TopicNames.with_prefix(f"bench{uuid.uuid4().hex[:6]}")
        ensure_topics(kafka, topics.all)
        _send(kafka, topics, docs, rate=None)
        settings = ScorerSettings(
            group_id="bench", metrics_port=0, batch_max_size=batch_size,
            batch_max_wait_ms=20, inference_batch_size=infer,
        )  # fmt: skip
        service = ScorerService(settings, kafka=kafka, topics=topics, classifier=classifier)
        stop = StopFlag()
        thread = threading.Thread(target=service.run, args=(stop,))
        thread.start()
        try:
            _wait(lambda: service.ready, 120)
            started = time.perf_counter()
            _wait(lambda: service.stats.scored + service.stats.dead_lettered >= len(docs), 3600)
            throughput = len(docs) / (time.perf_counter() - started)
            paced = [
                d.model_copy(update={"id": f"lat-{i}"}) for i, d in enumerate(docs[:latency_docs])
            ]
            _send(kafka, topics, paced, rate=throughput / 2)
            _wait(lambda: service.stats.scored >= len(docs) + len(paced), 600)
        finally:
            stop.set()
            thread.join()
        lat = sorted(_latencies(kafka, topics.scored, len(docs) + len(paced)))
    p50 = statistics.median(lat)
    p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))]
    return throughput, p50, p99


def _resolve_model(arg: Path | None) -> Path:
    if arg is not None:
        return arg
    if (DEFAULT_MODEL / "model_card.json").is_file():
        return DEFAULT_MODEL
    out = Path(tempfile.gettempdir()) / "finsentinel-bench-untrained-minilm"
    print(f"models/default is absent: using an untrained MiniLM model dir in {out}")
    return build_untrained_minilm(out)


def _report(results: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"Scoring throughput: {results['model']} on {results['machine']}")
    table.add_column("stage")
    table.add_column("docs/s", justify="right")
    table.add_column("notes")
    table.add_row("(a) bare ONNX Runtime", f"{results['bare_docs_per_s']:.0f}", "pre-tokenized")
    table.add_row("(b) scoring core", f"{results['core_docs_per_s']:.0f}", "decode+tokenize+infer")
    table.add_row(
        "(c) full pipeline",
        f"{results['pipeline_docs_per_s']:.0f}",
        f"p50 {results['pipeline_p50_latency_s'] * 1000:.0f} ms, "
        f"p99 {results['pipeline_p99_latency_s'] * 1000:.0f} ms at half load",
    )
    table.add_row(
        "(d) naive torch, 1 doc", f"{results['naive_docs_per_s']:.1f}", results["naive_weights"]
    )
    table.add_row("(c)/(a)", f"{results['ratio_pipeline_to_bare']:.2f}", "target >= 0.80")
    table.add_row("(c)/(d)", f"{results['ratio_pipeline_to_naive']:.1f}", "target >= 10")
    Console().print(table)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", type=Path, default=None, help="model directory")
    parser.add_argument("--docs", type=int, default=2_000, help="corpus size")
    parser.add_argument("--naive-docs", type=int, default=200, help="docs for the naive baseline")
    parser.add_argument("--latency-docs", type=int, default=500, help="paced docs for latency")
    parser.add_argument("--batch-size", type=int, default=256, help="records per micro-batch")
    parser.add_argument("--inference-batch-size", type=int, default=64, help="windows per run")
    parser.add_argument("--provider", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--repeats", type=int, default=3, help="repeats of (a) and (b)")
    parser.add_argument("--checkpoint", type=Path, default=None, help="torch run/checkpoint dir")
    args = parser.parse_args(argv)

    from models.scoring import Classifier

    model_dir = _resolve_model(args.model)
    classifier = Classifier.load(model_dir, provider=args.provider)
    docs = make_corpus(args.docs)
    texts = [d.text for d in docs]
    # Interleaved repeats, median of each: other load on a shared machine hits both alike.
    bare_runs, core_runs = [], []
    for _ in range(args.repeats):
        bare_runs.append(bench_bare(classifier, texts, args.inference_batch_size))
        core_runs.append(bench_core(classifier, docs, args.batch_size, args.inference_batch_size))
    bare, core = statistics.median(bare_runs), statistics.median(core_runs)
    pipeline, p50, p99 = bench_pipeline(
        classifier, docs, args.latency_docs, args.batch_size, args.inference_batch_size
    )
    network, weights = naive_model(classifier.card, args.checkpoint)
    naive, naive_threads = naive_throughput(
        network, model_dir / "tokenizer.json", classifier.card.max_length,
        texts[: args.naive_docs],
    )  # fmt: skip
    encoded = classifier.tokenize(texts)
    window = classifier.card.max_length
    results = {
        "machine": machine(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        "model": f"{classifier.card.name} {classifier.card.version} "
        f"({classifier.variant}, {classifier.provider})",
        "docs": len(docs),
        "batch_size": args.batch_size,
        "inference_batch_size": args.inference_batch_size,
        # Work per document: the pipeline scores every window of long texts,
        # the naive baseline truncates each text to one window.
        "windows_per_doc": round(sum(e.n_chunks for e in encoded) / len(docs), 3),
        "tokens_per_doc_scored": round(
            sum(len(c) for e in encoded for c in e.chunks) / len(docs), 1
        ),
        "tokens_per_doc_naive": round(
            sum(min(e.n_tokens + 2, window) for e in encoded) / len(docs), 1
        ),
        "bare_docs_per_s": round(bare, 1),
        "core_docs_per_s": round(core, 1),
        "pipeline_docs_per_s": round(pipeline, 1),
        "pipeline_p50_latency_s": round(p50, 4),
        "pipeline_p99_latency_s": round(p99, 4),
        "naive_docs_per_s": round(naive, 2),
        "naive_weights": weights,
        "naive_torch_threads": naive_threads,
        "ratio_pipeline_to_bare": round(pipeline / bare, 3),
        "ratio_pipeline_to_naive": round(pipeline / naive, 1),
    }
    _report(results)
    print(json.dumps(results))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
