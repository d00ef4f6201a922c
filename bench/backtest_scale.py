"""Backtest at scale: a month of scored history for 500 tickers, timed stage by stage.

Generates the history (synthetic, with planted bursts), writes it as an
archive, then times: reading the archive day by day, the vectorised bucket
aggregation alone, the full backtest through the live alert engine (default
rules), and writing outputs and the report. Prints one line per stage.

    .venv/bin/python bench/backtest_scale.py                 # 30 days x 500 tickers
    .venv/bin/python bench/backtest_scale.py --days 3 --tickers 100 --no-report
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime, timedelta
from functools import partial
from pathlib import Path

from alerts.backtest.core import Backtest, BacktestConfig, plot_bin_for
from alerts.backtest.evaluate import LabeledEvent
from alerts.backtest.frames import BucketBuilder
from alerts.backtest.inputs import archive_tables
from alerts.backtest.outputs import write_outputs
from alerts.backtest.parallel import run_parallel
from alerts.backtest.report import write_report
from alerts.backtest.synthetic import PlantedEvent, synthesize, write_archive
from alerts.rules import load_rules
from alerts.series import SeriesIndex

RULES = Path(__file__).resolve().parents[1] / "alerts" / "rules.default.yaml"


def _events(start: datetime, days: int, tickers: int) -> list[PlantedEvent]:
    return [
        PlantedEvent(f"T{1 + (7 * i) % tickers:03d}", start + timedelta(days=d, hours=14), 45, 40.0)
        for i, d in enumerate(range(2, days, 3))
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--tickers", type=int, default=500)
    parser.add_argument("--docs-per-ticker-day", type=float, default=48.0)
    parser.add_argument("--bucket-s", type=int, default=60)
    parser.add_argument("--no-seasonal", action="store_true")
    parser.add_argument("--no-report", action="store_true")
    parser.add_argument("--aggregation-only", action="store_true")
    parser.add_argument("--out", type=Path, help="keep outputs and report here")
    parser.add_argument("--workers", type=int, default=1, help="processes (rules split)")
    args = parser.parse_args()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    events = _events(start, args.days, args.tickers)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        t = time.perf_counter()
        table = synthesize(
            start=start, days=args.days, n_tickers=args.tickers,
            docs_per_ticker_day=args.docs_per_ticker_day, events=events,
        )  # fmt: skip
        write_archive(table, root / "archive")
        n_docs = table.num_rows
        del table
        print(f"generate+write  {n_docs:>10,} documents   {time.perf_counter() - t:7.1f} s")
        t = time.perf_counter()
        days = list(archive_tables(root / "archive", start=None, end=None))
        print(f"read archive    {len(days):>10} days        {time.perf_counter() - t:7.1f} s")
        t = time.perf_counter()
        builder = BucketBuilder(SeriesIndex(), bucket_s=args.bucket_s)
        n_buckets = sum(1 for _, d in days for _ in builder.feed(d)) + sum(
            1 for _ in builder.finish()
        )
        print(f"aggregate       {n_buckets:>10,} buckets     {time.perf_counter() - t:7.1f} s")
        if args.aggregation_only:
            return
        labels = [
            LabeledEvent("ticker", e.ticker, int(e.start.timestamp()), int(e.end.timestamp()))
            for e in events
        ]
        config = BacktestConfig(
            bucket_s=args.bucket_s,
            seasonal=not args.no_seasonal,
            plot_bin_buckets=plot_bin_for(args.days * 86_400, args.bucket_s),
        )
        t = time.perf_counter()
        if args.workers > 1:
            source = partial(archive_tables, root / "archive", start=None, end=None)
            result = run_parallel(load_rules(RULES), config, labels, source, workers=args.workers)
        else:
            bt = Backtest(load_rules(RULES), config, events=labels)
            for _, day in days:
                bt.feed(day)
            result = bt.finish()
        elapsed = time.perf_counter() - t
        per_bucket_ms = 1000 * elapsed / max(result.buckets, 1)
        print(
            f"backtest        {len(result.alerts):>10,} alerts      {elapsed:7.1f} s"
            f"  ({per_bucket_ms:.2f} ms per bucket, {len(result.series):,} series)"
        )
        for rule in result.rules.rules:
            m = result.metrics(rule)
            print(f"  {rule.name}: recall {m.recall:.2f} precision {m.precision:.2f}")
        t = time.perf_counter()
        out = args.out or root / "out"
        write_outputs(result, out)
        if not args.no_report:
            write_report(result, out, title=f"{args.days} days x {args.tickers} tickers")
        print(f"outputs+report                          {time.perf_counter() - t:7.1f} s")


if __name__ == "__main__":
    main()
