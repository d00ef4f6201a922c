"""Backtest the rules of a file in parallel processes, one group of rules per process.

Rules are independent given the buckets, and the engine's cost is paid per
bucket and per rule, so a rules file with several rules backtests about
``workers`` times faster on as many cores. Each process reads the history
itself (archive days or the input file), runs the live engine with its share
of the rules, and the results are merged in the order a single engine emits
them: by bucket, then by rule order in the file. The merged result, and so
every output file, is byte-identical to a single-process run.
"""

from __future__ import annotations

import multiprocessing
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from typing import Any

import pyarrow as pa

from alerts.backtest.core import Backtest, BacktestConfig, BacktestResult
from alerts.backtest.evaluate import LabeledEvent
from alerts.rules import RulesFile

__all__ = ["merge_results", "run_parallel"]

#: ``() -> iterator of (date, table)``; must be picklable (a module-level function or partial).
TableSource = Callable[[], Iterator[tuple[str, pa.Table]]]


def _run_part(
    rules: RulesFile, config: BacktestConfig, events: list[LabeledEvent], source: TableSource
) -> BacktestResult:
    bt = Backtest(rules, config, events=events)
    for _, table in source():
        bt.feed(table)
    return bt.finish()


def _split(rules: RulesFile, parts: int) -> list[RulesFile]:
    groups = [rules.rules[i::parts] for i in range(parts)]
    return [rules.model_copy(update={"rules": g}) for g in groups if g]


def merge_results(whole: RulesFile, parts: list[BacktestResult]) -> BacktestResult:
    """One result as a single engine with every rule of ``whole`` would have produced it."""
    order = {r.name: i for i, r in enumerate(whole.rules)}
    series = parts[0].series
    if any(p.series != series for p in parts):
        raise RuntimeError("parallel backtest parts saw different series; input changed?")
    alerts = sorted(
        (a for p in parts for a in p.alerts), key=lambda a: (a.updated_at, order[a.rule])
    )
    return replace(
        parts[0],
        rules=whole,
        alerts=alerts,
        plots={k: v for p in parts for k, v in p.plots.items()},
        sweep_firings={k: v for p in parts for k, v in p.sweep_firings.items()},
    )


def run_parallel(
    rules: RulesFile,
    config: BacktestConfig,
    events: list[LabeledEvent],
    source: TableSource,
    *,
    workers: int,
    done: Callable[[int], Any] = lambda n: None,
) -> BacktestResult:
    """Backtest ``rules`` over ``source`` in up to ``workers`` processes."""
    groups = _split(rules, max(1, min(workers, len(rules.rules))))
    if len(groups) == 1:
        return _run_part(rules, config, events, source)
    ctx = multiprocessing.get_context("spawn")  # no fork of a process with threads
    with ProcessPoolExecutor(max_workers=len(groups), mp_context=ctx) as pool:
        futures = [pool.submit(_run_part, g, config, events, source) for g in groups]
        results = []
        for f in futures:
            results.append(f.result())
            done(len(results))
    return merge_results(rules, results)
