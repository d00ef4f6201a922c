"""One worker thread per channel: delivers its outbox rows, rate-limited, with backoff.

A failing channel never blocks the others (each has its own rows and
thread). A retriable failure is retried with exponential backoff for as long
as it takes (the outbox keeps what arrives meanwhile, oldest dropped past
``max_pending``), so notifications are delivered in order once the channel
recovers, after a restart too; a notification older than the channel's
``max_age`` is marked expired instead of sent late. A refusal that retrying
cannot fix is marked rejected and logged. Every outcome is recorded in the
outbox before the next row is taken.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from alerts.exceptions import NotifyError, StoreError
from alerts.notify.base import Notifier
from alerts.notify.outbox import Delivery, Outbox

__all__ = ["ChannelWorker", "RetryPolicy"]

logger = logging.getLogger(__name__)

#: Outcomes counted per channel type (a fixed set: it is a metric label).
OUTCOMES = ("sent", "retried", "rejected", "dropped", "expired", "silenced")


@dataclass(frozen=True)
class RetryPolicy:
    """Exponential backoff between attempts, capped."""

    initial_s: float = 1.0
    max_s: float = 60.0
    factor: float = 2.0

    def delay_s(self, attempt: int) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based).

        >>> [RetryPolicy(initial_s=1, max_s=5).delay_s(a) for a in (1, 2, 3, 4)]
        [1.0, 2.0, 4.0, 5.0]
        """
        return float(min(self.max_s, self.initial_s * self.factor ** (attempt - 1)))


class ChannelWorker:
    """Deliver one channel's outbox rows from its own thread."""

    #: Finished rows older than the outbox retention are deleted this often (wall clock).
    prune_every_s = 600.0

    def __init__(
        self,
        notifier: Notifier,
        outbox: Outbox,
        *,
        rate_limit_per_minute: int,
        max_age_s: float,
        retry: RetryPolicy,
        clock: Callable[[], float],
        on_outcome: Callable[[str, str], None] = lambda _t, _o: None,
        on_change: Callable[[], None] = lambda: None,
    ) -> None:
        self.notifier = notifier
        self.outbox = outbox
        self.min_interval_s = 60.0 / rate_limit_per_minute
        self.max_age_s = max_age_s
        self.retry = retry
        self._clock = clock
        self.on_outcome = on_outcome
        self._on_change = on_change
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._last_sent_s = float("-inf")
        self._last_prune_s = float("-inf")
        self.failing = False
        self._thread = threading.Thread(
            target=self._run, name=f"notify-{notifier.name}", daemon=True
        )

    def start(self) -> ChannelWorker:
        """Start the delivery thread."""
        self._thread.start()
        return self

    def wake(self) -> None:
        """New rows were committed: look now rather than at the next poll."""
        self._wake.set()

    @property
    def pending(self) -> int:
        """Rows waiting (including one being retried)."""
        return self.outbox.pending(self.notifier.name)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Give the outbox up to ``timeout_s`` to drain, then stop after the current attempt;
        what is still pending stays in the outbox for the next start."""
        deadline = time.monotonic() + timeout_s
        while self.pending and not self.failing and time.monotonic() < deadline:
            if self._stop.wait(0.05):
                break
        self._stop.set()
        self._wake.set()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        if left := self.pending:
            logger.warning(
                "channel %s: %d notifications not delivered yet; they stay in the outbox and "
                "are sent after the next start",
                self.notifier.name,
                left,
            )
        self.notifier.close()

    def _outcome(self, outcome: str) -> None:
        self.on_outcome(self.notifier.channel_type, outcome)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                item = self.outbox.next_pending(self.notifier.name)
                if item is None:
                    self._prune()
                    self._wake.wait(1.0)
                    self._wake.clear()
                    continue
                self._deliver(item)
            except StoreError:  # the database is closed or broken: retry, never die silently
                logger.exception("channel %s: outbox unavailable", self.notifier.name)
                self._stop.wait(self.retry.max_s)

    def _prune(self) -> None:
        now = self._clock()
        if now - self._last_prune_s >= self.prune_every_s:
            self._last_prune_s = now
            if removed := self.outbox.prune(now_s=now):
                logger.info("outbox: pruned %d finished notifications", removed)

    def _finish(self, item: Delivery, status: str, error: str | None = None) -> None:
        self.outbox.finish(item, status, now_s=self._clock(), error=error)
        self._outcome(status)
        self._on_change()

    def _deliver(self, item: Delivery) -> None:
        attempt = 0
        notification = item.notification
        while not self._stop.is_set():
            if self._clock() - notification.created_s > self.max_age_s:
                self._finish(item, "expired")
                logger.warning(
                    "channel %s: dropped %r, older than %ss",
                    self.notifier.name,
                    notification.title,
                    self.max_age_s,
                )
                return
            # Pacing runs on the monotonic clock: an injected (possibly frozen) clock only
            # dates notifications and ages them out.
            wait = self._last_sent_s + self.min_interval_s - time.monotonic()
            if wait > 0 and self._stop.wait(wait):
                return
            attempt += 1
            try:
                self.notifier.send(notification)
            except NotifyError as exc:
                if not exc.retriable:
                    self._finish(item, "rejected", str(exc))
                    logger.error(
                        "channel %s: gave up on %r: %s", self.notifier.name, notification.title, exc
                    )
                    return
                self.failing = True
                self.outbox.attempted(item, str(exc))
                self._outcome("retried")
                delay = self.retry.delay_s(attempt)
                logger.warning(
                    "channel %s: attempt %d failed (%s); retrying in %.1fs",
                    self.notifier.name,
                    attempt,
                    exc,
                    delay,
                )
                if self._stop.wait(delay):
                    return
                continue
            self._last_sent_s = time.monotonic()
            if self.failing:
                logger.info("channel %s: recovered after %d attempts", self.notifier.name, attempt)
            self.failing = False
            self._finish(item, "sent")
            return
