"""Top movers: the series the detectors score highest right now, without a watch-list.

Every rule's combined detector score is read per series; a series' mover score
is the highest score any rule gives it (and that rule's name and threshold).
The ``k`` highest of each series kind (ticker, topic, source, group; ``all`` is
not a mover) are kept, highest score first, then most documents, then name, so
the exported label set is bounded by ``k`` times the number of kinds. A series
with no document in the longest trend window is not a mover.

>>> from datetime import datetime, timedelta, timezone
>>> from alerts.engine import AlertEngine
>>> from alerts.rules import parse_rules
>>> from alerts.testing import scored
>>> rules = parse_rules("rules: [{name: neg, series: {kind: topic}, min_history: 10m}]")
>>> engine = AlertEngine(rules, bucket_s=60, allowed_lateness_s=0, windows_s=(3600,))
>>> t0 = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
>>> for i in range(60):
...     _ = engine.add(scored(f"d{i}", t0 + timedelta(minutes=i)))
>>> for i in range(20):
...     _ = engine.add(scored(f"n{i}", t0 + timedelta(minutes=60 + i / 4), sentiment="negative"))
>>> _ = engine.flush()
>>> [(m.kind, m.series, m.rule, m.score > m.threshold) for m in top_movers(engine, k=3)]
[('topic', 'Markets', 'neg', True)]
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from alerts.engine import AlertEngine

__all__ = ["MOVER_KINDS", "Mover", "top_movers"]

#: Series kinds ranked separately (``all`` is the whole stream, never a mover).
MOVER_KINDS = ("ticker", "topic", "source", "group")


@dataclass(frozen=True)
class Mover:
    """One series among the top movers of its kind."""

    kind: str
    series: str
    #: The rule that scores this series highest, its score in [0, 1] and threshold.
    rule: str
    score: float
    threshold: float
    #: Documents in each trend window (window in seconds -> count).
    documents: dict[int, float]


def top_movers(engine: AlertEngine, *, k: int) -> list[Mover]:
    """The ``k`` highest-scoring series of each kind in :data:`MOVER_KINDS`."""
    n = len(engine.index)
    if k <= 0 or n == 0:
        return []
    best = np.full(n, -1.0)
    best_rule = np.full(n, -1)
    rules = engine.rule_scores()
    for i, (_, score) in enumerate(rules):
        s = np.full(n, np.nan)
        s[: score.shape[0]] = score[:n]
        better = np.nan_to_num(s, nan=-1.0) > best
        best[better] = s[better]
        best_rule[better] = i
    trends = {w: engine.trend(w) for w in engine.windows.windows_s}
    longest = trends[max(trends)].total
    volume = np.zeros(n)
    volume[: longest.shape[0]] = longest[:n]
    kinds = engine.index.kinds()
    out: list[Mover] = []
    for kind in MOVER_KINDS:
        rows = [int(r) for r in np.flatnonzero((kinds == kind) & (best_rule >= 0) & (volume > 0))]
        ranked = sorted(rows, key=lambda r: (-best[r], -volume[r], engine.index.key(r)[1]))
        for r in ranked[:k]:
            rule = rules[best_rule[r]][0]
            out.append(
                Mover(
                    kind=kind,
                    series=engine.index.key(r)[1],
                    rule=rule.name,
                    score=float(best[r]) + 0.0,  # no -0.0
                    threshold=float(rule.threshold),
                    documents={
                        w: float(t.total[r]) if r < t.total.shape[0] else 0.0
                        for w, t in trends.items()
                    },
                )
            )
    return out
