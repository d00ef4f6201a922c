"""Soak benchmark: the scorer and the alerting service at 80 % of capacity for N minutes.

Not a test: run it and read the numbers (a table, one JSON line, a PNG)::

    .venv/bin/python bench/soak.py [--minutes 20] [--rate DOCS_PER_S] [--out DIR]

Real processes (``python -m stream`` with the shipped model on CPU, ``python -m
alerts``) on a private embedded broker. Without ``--rate`` the scorer's capacity
is measured first: a backlog is produced and the scored rate over
``--capacity-s`` (60 s) is its capacity. Then raw documents are produced at
``--load`` (0.8) of it for ``--minutes``, while every ``--sample-s`` seconds the
harness records throughput, lag (produced - scored), end-to-end latency
percentiles (produce -> first seen on the scored topic) and the RSS of each
process. Reports the memory growth of each process between minute 5 (or the
first sample when the run is shorter) and the end.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from finsentinel.demo_corpus import generate
from stream.broker import EmbeddedBroker
from stream.contracts.schemas import RawDocument, encode, message_key
from stream.contracts.topics import TopicNames
from stream.kafka import KafkaSettings, ensure_topics, make_producer
from tests.faults.harness import PYTHON, Service, TopicTail, service_env

REPO = Path(__file__).resolve().parents[1]


def _docs(n: int, seed: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    chunk = 0
    while len(out) < n:
        for d in generate(n_docs=450, burst=0, seed=seed + chunk):
            out.append({**d, "id": f"s{chunk}-{d['id']}"})
        chunk += 1
    return out[:n]


class Feeder(threading.Thread):
    """Produces documents (published now) at ``rate`` per second; ``rate=0``: as fast as it can."""

    def __init__(self, kafka: KafkaSettings, docs: list[dict[str, Any]], rate: float) -> None:
        super().__init__(name="feeder", daemon=True)
        self.kafka, self.docs, self.rate = kafka, docs, rate
        self.sent_at: dict[str, float] = {}
        self.stop = threading.Event()
        self.topics = TopicNames()

    def run(self) -> None:
        producer = make_producer(self.kafka)
        t0 = time.monotonic()
        for i, d in enumerate(self.docs):
            if self.stop.is_set():
                break
            if self.rate > 0:
                delay = t0 + i / self.rate - time.monotonic()
                if delay > 0:
                    time.sleep(delay)
            now = datetime.now(UTC)
            doc = RawDocument(
                id=d["id"], source=d["source"], kind=d["kind"], url=d["url"], title=d["title"],
                body=d["body"], author=d["author"], tickers=d["tickers"],
                published_at=now, fetched_at=now,
            )  # fmt: skip
            producer.send(self.topics.raw_for(doc.kind), key=message_key(doc), value=encode(doc))
            self.sent_at[doc.id] = time.monotonic()
        producer.flush(timeout=120)
        producer.close(timeout=30)


def _rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return float("nan")


def _pct(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def measure_capacity(kafka: KafkaSettings, tail: TopicTail, seconds: float) -> float:
    """Scored documents per second while the scorer works through a backlog."""
    backlog = Feeder(kafka, _docs(int(seconds * 900), seed=900_000), rate=0)
    backlog.start()
    start_count = tail.records
    time.sleep(min(10.0, seconds / 4))  # let the backlog build and the scorer reach speed
    c0, t0 = tail.records, time.monotonic()
    time.sleep(seconds)
    rate = (tail.records - c0) / (time.monotonic() - t0)
    backlog.stop.set()
    backlog.join()
    produced = len(backlog.sent_at)
    while tail.records - start_count < produced:  # drain before the soak starts
        time.sleep(1.0)
    return rate


def soak(
    kafka: KafkaSettings, tail: TopicTail, pids: dict[str, int], rate: float, args: Any
) -> list[dict[str, Any]]:
    """Run the load for ``args.minutes``; one sample per ``args.sample_s``."""
    n = int(rate * args.minutes * 60) + 1
    feeder = Feeder(kafka, _docs(n, seed=1), rate=rate)
    base = tail.records
    feeder.start()
    t0 = time.monotonic()
    samples: list[dict[str, Any]] = []
    seen_lat: set[str] = set()
    last_scored = 0
    while feeder.is_alive():
        time.sleep(args.sample_s)
        now = time.monotonic()
        sent = dict(feeder.sent_at)
        first = dict(tail.first_seen)
        new = [i for i in sent if i in first and i not in seen_lat]
        seen_lat.update(new)
        lat = [first[i] - sent[i] for i in new]
        scored = tail.records - base
        samples.append({
            "t_s": round(now - t0, 1),
            "produced": len(sent),
            "scored": scored,
            "throughput_per_s": round((scored - last_scored) / args.sample_s, 1),
            "lag": len(sent) - scored,
            "latency_p50_s": round(_pct(lat, 0.5), 3),
            "latency_p95_s": round(_pct(lat, 0.95), 3),
            "latency_p99_s": round(_pct(lat, 0.99), 3),
            **{f"rss_{name}_mb": round(_rss_mb(pid), 1) for name, pid in pids.items()},
        })  # fmt: skip
        last_scored = scored
        s = samples[-1]
        print(f"{s['t_s']:7.0f}s produced {s['produced']:7d} scored {s['scored']:7d} "
              f"lag {s['lag']:6d} p50 {s['latency_p50_s']:6.2f}s p99 {s['latency_p99_s']:6.2f}s "
              + " ".join(f"{k[4:-3]} {v:.0f}MB" for k, v in s.items() if k.startswith("rss_")),
              flush=True)  # fmt: skip
    return samples


def summarize(samples: list[dict[str, Any]], rate: float, capacity: float) -> dict[str, Any]:
    """Throughput, lag and latency over the run; RSS growth from minute 5 to the end."""
    ref = next((s for s in samples if s["t_s"] >= 300), samples[0])
    end = samples[-1]
    rss_keys = [k for k in end if k.startswith("rss_")]
    return {
        "capacity_docs_per_s": round(capacity, 1),
        "offered_docs_per_s": round(rate, 1),
        "minutes": round(end["t_s"] / 60, 1),
        "produced": end["produced"],
        "scored": end["scored"],
        "mean_throughput_per_s": round(end["scored"] / end["t_s"], 1),
        "max_lag": max(s["lag"] for s in samples),
        "final_lag": end["lag"],
        "latency_p50_s_median": round(_pct([s["latency_p50_s"] for s in samples], 0.5), 3),
        "latency_p99_s_max": max(s["latency_p99_s"] for s in samples),
        "rss_growth_from_s": ref["t_s"],
        "rss_growth_mb": {k[4:-3]: round(end[k] - ref[k], 1) for k in rss_keys},
        "rss_end_mb": {k[4:-3]: end[k] for k in rss_keys},
    }


def plot(samples: list[dict[str, Any]], path: Path) -> None:
    """Throughput, lag, latency and RSS over time, one panel each."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    t = [s["t_s"] / 60 for s in samples]
    fig, axes = plt.subplots(4, 1, figsize=(9, 11), sharex=True)
    axes[0].plot(t, [s["throughput_per_s"] for s in samples])
    axes[0].set_ylabel("scored docs/s")
    axes[1].plot(t, [s["lag"] for s in samples])
    axes[1].set_ylabel("lag (docs)")
    for q in ("p50", "p95", "p99"):
        axes[2].plot(t, [s[f"latency_{q}_s"] for s in samples], label=q)
    axes[2].set_ylabel("latency (s)")
    axes[2].legend()
    for k in (k for k in samples[0] if k.startswith("rss_")):
        axes[3].plot(t, [s[k] for s in samples], label=k[4:-3])
    axes[3].set_ylabel("RSS (MB)")
    axes[3].set_xlabel("minutes")
    axes[3].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main(argv: list[str] | None = None) -> int:
    """Run the soak; print a table of samples and the summary; write JSON, CSV-like JSONL, PNG."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=None, help="docs/s; default: 0.8 x measured")
    parser.add_argument("--load", type=float, default=0.8)
    parser.add_argument("--capacity-s", type=float, default=60.0)
    parser.add_argument("--sample-s", type=float, default=10.0)
    parser.add_argument("--out", type=Path, default=REPO / "runs" / "soak")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="finsentinel-soak-"))
    with EmbeddedBroker(log_path=tmp / "tansu.log") as broker:
        kafka = KafkaSettings(bootstrap_servers=broker.bootstrap_servers, default_partitions=3)
        topics = TopicNames()
        ensure_topics(kafka, topics.all)
        (tmp / "logs").mkdir()
        services = {
            "scorer": Service("scorer", [PYTHON, "-m", "stream"],
                              service_env(kafka, FINSENTINEL_SCORER_PROVIDER="cpu"),
                              "FINSENTINEL_SCORER_METRICS_PORT", tmp / "logs"),
            "alerts": Service("alerts", [PYTHON, "-m", "alerts"],
                              service_env(kafka, FINSENTINEL_ALERTS_DB_PATH=str(tmp / "a.sqlite")),
                              "FINSENTINEL_ALERTS_METRICS_PORT", tmp / "logs"),
        }  # fmt: skip
        for s in services.values():
            s.start()
        while not all(s.ready for s in services.values()):
            time.sleep(0.5)
        pids = {n: s.proc.pid for n, s in services.items() if s.proc is not None}
        pids["broker"] = broker.pid
        tail = TopicTail(kafka, [topics.scored])
        try:
            capacity = args.rate / args.load if args.rate else measure_capacity(
                kafka, tail, args.capacity_s
            )  # fmt: skip
            rate = args.rate or args.load * capacity
            print(f"capacity {capacity:.1f} docs/s; offering {rate:.1f} docs/s "
                  f"for {args.minutes} min", flush=True)  # fmt: skip
            samples = soak(kafka, tail, pids, rate, args)
        finally:
            tail.close()
            codes = {n: s.terminate() for n, s in services.items()}
    summary = {**summarize(samples, rate, capacity), "exit_codes": codes}
    (args.out / "samples.jsonl").write_text("".join(json.dumps(s) + "\n" for s in samples))
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1))
    plot(samples, args.out / "soak.png")
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
