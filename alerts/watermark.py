"""How the alerting service moves event time: live or history mode.

*Live* (the default): the watermark is the newest event time of the slowest
partition minus ``allowed_lateness_s`` (two minutes), and after
``idle_watermark_after_s`` without input it follows the wall clock, so
buckets close on a quiet stream.

*History* (``--history``, ``FINSENTINEL_ALERTS_HISTORY=true``): for a back-fill
or an archive replay, whose documents are days old and arrive far faster than
they were published. Event time alone moves the watermark (the wall clock
says nothing about old documents); the lateness is ``history_lateness_s``
(default: the longest trend window), because a few seconds of processing
disorder (the scorer merging partitions) span hours of event time when
history streams by; and when no record arrived for ``history_end_after_s``
the input has ended: every open bucket is closed, the detectors run, pending
notification groups are sent. The alerts raised are those a live run, fed the
same documents on time, would have raised.

:class:`EndOfInput` says when a history has ended; :class:`HistoryHint` warns
once when a live service is fed history.

>>> end = EndOfInput(after_s=30)
>>> end.due(now_s=100.0)  # nothing arrived yet: nothing to end
False
>>> end.seen(now_s=100.0)
>>> end.due(now_s=120.0), end.due(now_s=131.0), end.due(now_s=200.0)
(False, True, False)
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime

from alerts.engine import EngineStats
from alerts.settings import AlertSettings

__all__ = ["HINT_AFTER_S", "EndOfInput", "HistoryHint", "describe", "lateness_s"]

logger = logging.getLogger(__name__)

#: A live service whose newest document is older than this says it looks like history.
HINT_AFTER_S = 3600.0


def lateness_s(settings: AlertSettings) -> int:
    """The event-time lateness the aggregator allows in this mode.

    >>> lateness_s(AlertSettings()), lateness_s(AlertSettings(history=True))
    (120, 86400)
    """
    if not settings.history:
        return settings.allowed_lateness_s
    if settings.history_lateness_s is not None:
        return settings.history_lateness_s
    return max(settings.windows_s)


def describe(settings: AlertSettings) -> str:
    """One line for the start-up log: what moves the watermark, what ends the input."""
    if settings.history:
        return (
            f"history mode: the watermark follows event time only (lateness "
            f"{lateness_s(settings)} s); after {settings.history_end_after_s:g} s without "
            "input, every open window is flushed and evaluated"
        )
    idle = settings.idle_watermark_after_s
    quiet = (
        f"after {idle:g} s without input it follows the wall clock"
        if idle is not None
        else "event time only"
    )
    return (
        f"live mode: the watermark is the newest event time minus {settings.allowed_lateness_s} s; "
        f"{quiet}"
    )


class EndOfInput:
    """History mode: the input has ended once no record arrived for ``after_s`` (wall clock).

    Due once per quiet period that follows records; records arriving later
    (another back-fill) start a new period.
    """

    def __init__(self, *, after_s: float) -> None:
        self.after_s = after_s
        self._last_s: float | None = None

    def seen(self, *, now_s: float) -> None:
        """Records arrived at ``now_s``."""
        self._last_s = now_s

    def due(self, *, now_s: float) -> bool:
        """True once, when the input has been quiet for ``after_s``."""
        if self._last_s is None or now_s - self._last_s < self.after_s:
            return False
        self._last_s = None
        return True

    def report(
        self, open_buckets: int, watermark_s: int | None, transitions: int, stats: EngineStats
    ) -> None:
        """The INFO line after a flush at the end of the input."""
        until = "-" if watermark_s is None else datetime.fromtimestamp(watermark_s, UTC).isoformat()
        logger.info(
            "history input quiet for %g s: flushed %d open buckets up to event time %s; "
            "%d alert transitions (%d documents counted, %d late, %d future so far)",
            self.after_s,
            open_buckets,
            until,
            transitions,
            stats.accepted,
            stats.late,
            stats.future,
        )


class HistoryHint:
    """Live mode: warn once when the input is history (far behind the wall clock).

    The newest event time is further behind the clock than both the idle
    watermark's own test for "a replay, not live" (lateness plus the idle
    period) and :data:`HINT_AFTER_S` (a live stream may lag minutes behind a
    busy scorer, not hours).

    >>> hint = HistoryHint(AlertSettings())
    >>> hint.check(max_event_s=1_000, now_s=1_100.0), hint.check(max_event_s=0, now_s=90_000.0)
    (False, True)
    >>> hint.check(max_event_s=0, now_s=90_000.0)  # said once
    False
    """

    def __init__(self, settings: AlertSettings) -> None:
        self.settings = settings
        self._said = settings.history

    def check(self, *, max_event_s: int | None, now_s: float) -> bool:
        """Log the warning (once) if the newest event time looks like history."""
        if self._said or max_event_s is None:
            return False
        s = self.settings
        behind_s = now_s - max_event_s
        if behind_s <= max(HINT_AFTER_S, s.allowed_lateness_s + (s.idle_watermark_after_s or 0.0)):
            return False
        self._said = True
        logger.warning(
            "the input is %.1f h behind the wall clock: this looks like a back-fill or replay. "
            "Live mode counts documents more than %d s older than the newest one as late; for "
            "history run `finsentinel alert --history` (FINSENTINEL_ALERTS_HISTORY=true), see "
            "docs/history.md",
            behind_s / 3600,
            s.allowed_lateness_s,
        )
        return True
