"""Score a backtest against labeled events: precision, recall, delay, false alarms.

A labels file is CSV with a header ``series,start,end``: ``series`` is
``kind:value`` (``ticker:CRBK``, ``topic:Earnings``, ``source:wire``) or
``all``; ``start``/``end`` are ISO-8601 times (UTC when no offset is given).

A rule is scored on the events of series it watches. A firing alert *matches*
an event of the same series when it fires in ``[start, end + tolerance]``.

* precision = matching firings / all firings of the rule;
* recall = events with at least one matching firing / events;
* delay of a detected event = its first matching firing - its start;
* false alarms per day = firings matching no event / days of history.

>>> ev = LabeledEvent("ticker", "ACME", 1000, 2000)
>>> fires = [Firing("ticker", "ACME", 1300), Firing("ticker", "ZZZ", 1300)]
>>> m = score_rule(fires, [ev], days=2.0, tolerance_s=0)
>>> m.precision, m.recall, m.mean_delay_s, m.false_alarms_per_day
(0.5, 1.0, 300.0, 0.5)
"""

from __future__ import annotations

import csv
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from alerts.exceptions import InputError
from alerts.rules import Rule

__all__ = ["Firing", "LabeledEvent", "RuleMetrics", "load_labels", "parse_time", "score_rule"]


@dataclass(frozen=True)
class LabeledEvent:
    """A known event: series and ``[start_s, end_s]`` in epoch seconds."""

    kind: str
    value: str
    start_s: int
    end_s: int

    @property
    def series(self) -> str:
        """``kind:value``."""
        return f"{self.kind}:{self.value}"


@dataclass(frozen=True)
class Firing:
    """One firing alert: its series and the event time it fired."""

    kind: str
    value: str
    at_s: int


@dataclass(frozen=True)
class RuleMetrics:
    """How one rule did against the labels (NaN where undefined, e.g. no alerts)."""

    alerts: int
    events: int
    detected: int
    precision: float
    recall: float
    mean_delay_s: float
    false_alarms: int
    false_alarms_per_day: float

    def row(self) -> dict[str, float | int]:
        """The metrics as a flat dict (CSV/JSON)."""
        return dict(vars(self))


def parse_time(text: str) -> datetime:
    """An ISO-8601 time; naive times are UTC.

    >>> parse_time("2026-01-05T14:00").isoformat()
    '2026-01-05T14:00:00+00:00'
    """
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError as exc:
        raise InputError(f"{text!r} is not an ISO-8601 time (e.g. 2026-01-05T14:00Z)") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _series(text: str) -> tuple[str, str]:
    text = text.strip()
    if text == "all":
        return ("all", "all")
    kind, sep, value = text.partition(":")
    if not sep or kind not in ("all", "topic", "ticker", "source") or not value:
        raise InputError(f"series {text!r} must be kind:value with kind topic, ticker or source")
    return kind, value


def load_labels(path: Path) -> list[LabeledEvent]:
    """Read a ``series,start,end`` CSV; :class:`InputError` names the line that is wrong."""
    try:
        with Path(path).open(newline="", encoding="utf-8") as fh:
            reader = csv.DictReader(fh)
            missing = {"series", "start", "end"} - set(reader.fieldnames or ())
            if missing:
                raise InputError(
                    f"{path}: missing columns {sorted(missing)} (need series,start,end)"
                )
            return [_event(path, i, row) for i, row in enumerate(reader, start=2)]
    except OSError as exc:
        raise InputError(f"{path}: cannot read the labels file: {exc.strerror}") from exc


def _event(path: Path, line: int, row: dict[str, str]) -> LabeledEvent:
    try:
        kind, value = _series(row["series"])
        start, end = parse_time(row["start"]), parse_time(row["end"])
    except InputError as exc:
        raise InputError(f"{path}: line {line}: {exc}") from exc
    if end < start:
        raise InputError(f"{path}: line {line}: end {end} is before start {start}")
    return LabeledEvent(kind, value, int(start.timestamp()), int(end.timestamp()))


def events_for(rule: Rule, events: Sequence[LabeledEvent]) -> list[LabeledEvent]:
    """The events on series ``rule`` watches."""
    return [e for e in events if rule.series.matches(e.kind, e.value)]


def _matches(f: Firing, e: LabeledEvent, tolerance_s: int) -> bool:
    same = (e.kind, e.value) == (f.kind, f.value)
    return same and e.start_s <= f.at_s <= e.end_s + tolerance_s


def score_rule(
    firings: Sequence[Firing],
    events: Sequence[LabeledEvent],
    *,
    days: float,
    tolerance_s: int,
) -> RuleMetrics:
    """Metrics of one rule's firings against the events it watches."""
    first_hit: dict[int, int] = {}
    false_alarms = 0
    for f in firings:
        hits = [
            i
            for i, e in enumerate(events)
            if (e.kind, e.value) == (f.kind, f.value)
            and e.start_s <= f.at_s <= e.end_s + tolerance_s
        ]
        if not hits:
            false_alarms += 1
        for i in hits:
            first_hit[i] = min(first_hit.get(i, f.at_s), f.at_s)
    delays = [first_hit[i] - events[i].start_s for i in sorted(first_hit)]
    n = len(firings)
    return RuleMetrics(
        alerts=n,
        events=len(events),
        detected=len(first_hit),
        precision=(n - false_alarms) / n if n else math.nan,
        recall=len(first_hit) / len(events) if events else math.nan,
        mean_delay_s=sum(delays) / len(delays) if delays else math.nan,
        false_alarms=false_alarms,
        false_alarms_per_day=false_alarms / days if days > 0 else math.nan,
    )
