"""One worker thread per channel: a bounded queue, a rate limit, retries with backoff.

A failing channel never blocks the others (each has its own queue and
thread). A retriable failure is retried with exponential backoff for as long
as it takes (the queue keeps what arrives meanwhile, oldest dropped when
full), so queued alerts are delivered once the channel recovers; a
notification older than the channel's ``max_age`` is dropped instead of sent
late. Non-retriable failures are logged and dropped.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

from alerts.exceptions import NotifyError
from alerts.notify.base import Notification, Notifier

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
    """Deliver notifications to one channel from its own thread."""

    def __init__(
        self,
        notifier: Notifier,
        *,
        rate_limit_per_minute: int,
        max_age_s: float,
        retry: RetryPolicy,
        queue_max: int = 1000,
        clock: Callable[[], float],
        on_outcome: Callable[[str, str], None] = lambda _t, _o: None,
    ) -> None:
        self.notifier = notifier
        self.min_interval_s = 60.0 / rate_limit_per_minute
        self.max_age_s = max_age_s
        self.retry = retry
        self._queue: deque[Notification] = deque()
        self._queue_max = queue_max
        self._clock = clock
        self.on_outcome = on_outcome
        self._cv = threading.Condition()
        self._stop = threading.Event()
        self._last_sent_s = float("-inf")
        self.failing = False
        self._thread = threading.Thread(
            target=self._run, name=f"notify-{notifier.name}", daemon=True
        )

    def start(self) -> ChannelWorker:
        """Start the delivery thread."""
        self._thread.start()
        return self

    def submit(self, notification: Notification) -> None:
        """Queue ``notification``; drop the oldest queued one if the queue is full."""
        with self._cv:
            if len(self._queue) >= self._queue_max:
                self._queue.popleft()
                self._outcome("dropped")
                logger.warning("channel %s: queue full, dropped the oldest", self.notifier.name)
            self._queue.append(notification)
            self._cv.notify()

    @property
    def pending(self) -> int:
        """Notifications waiting (including one being retried)."""
        with self._cv:
            return len(self._queue)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Give the queue up to ``timeout_s`` to drain, then stop after the current attempt;
        what is still queued is logged as lost."""
        deadline = time.monotonic() + timeout_s
        while self.pending and not self.failing and time.monotonic() < deadline:
            if self._stop.wait(0.05):
                break
        self._stop.set()
        with self._cv:
            self._cv.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout_s)
        if self.pending:
            logger.warning(
                "channel %s: %d notifications undelivered at shutdown",
                self.notifier.name,
                self.pending,
            )
        self.notifier.close()

    def _outcome(self, outcome: str) -> None:
        self.on_outcome(self.notifier.channel_type, outcome)

    def _next(self) -> Notification | None:
        with self._cv:
            while not self._queue and not self._stop.is_set():
                self._cv.wait(1.0)
            return self._queue[0] if self._queue else None

    def _run(self) -> None:
        while not self._stop.is_set():
            item = self._next()
            if item is None or self._stop.is_set():
                return
            self._deliver(item)
            with self._cv:
                if self._queue and self._queue[0] is item:
                    self._queue.popleft()

    def _deliver(self, item: Notification) -> None:
        attempt = 0
        while not self._stop.is_set():
            if self._clock() - item.created_s > self.max_age_s:
                self._outcome("expired")
                logger.warning(
                    "channel %s: dropped %r, older than %ss",
                    self.notifier.name,
                    item.title,
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
                self.notifier.send(item)
            except NotifyError as exc:
                if not exc.retriable:
                    self._outcome("rejected")
                    logger.error(
                        "channel %s: gave up on %r: %s", self.notifier.name, item.title, exc
                    )
                    return
                self.failing = True
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
            self._outcome("sent")
            return
