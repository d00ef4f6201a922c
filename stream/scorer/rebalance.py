"""Track the consumer's partition assignment through rebalances.

kafka-python runs rebalance callbacks on its IO thread while the service's
thread is blocked in ``poll()``, so the tracker only records what changed; the
service acts on it after ``poll()`` returns (see :mod:`stream.scorer.service`).
"""

from __future__ import annotations

import contextlib
import logging
import threading
from collections.abc import Iterable

from kafka import TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener

from stream.scorer.metrics import ScorerMetrics

__all__ = ["AssignmentTracker"]

logger = logging.getLogger(__name__)


def _names(partitions: Iterable[TopicPartition]) -> str:
    return ", ".join(sorted(f"{tp.topic}[{tp.partition}]" for tp in partitions)) or "none"


class AssignmentTracker(ConsumerRebalanceListener):
    """A rebalance listener that keeps the current assignment, thread-safely.

    >>> from kafka import TopicPartition
    >>> tracker = AssignmentTracker()
    >>> tracker.on_partitions_assigned([TopicPartition("raw", 0), TopicPartition("raw", 1)])
    >>> tracker.on_partitions_revoked([TopicPartition("raw", 1)])
    >>> sorted(tp.partition for tp in tracker.assigned), tracker.generation
    ([0], 2)
    """

    def __init__(self, metrics: ScorerMetrics | None = None) -> None:
        self._metrics = metrics
        self._lock = threading.Lock()
        self._assigned: frozenset[TopicPartition] = frozenset()
        self._generation = 0

    @property
    def assigned(self) -> frozenset[TopicPartition]:
        """The partitions this consumer owns now."""
        with self._lock:
            return self._assigned

    @property
    def generation(self) -> int:
        """Counts assignment changes; a batch compares it before and after polling."""
        with self._lock:
            return self._generation

    def _change(self, event: str, partitions: Iterable[TopicPartition], add: bool) -> None:
        parts = frozenset(partitions)
        if not parts:
            return  # the first join "revokes" nothing
        with self._lock:
            self._assigned = self._assigned | parts if add else self._assigned - parts
            self._generation += 1
        if self._metrics is not None:
            self._metrics.rebalances.labels(event=event).inc()
            if not add:
                for tp in parts:
                    self._forget_lag(tp)
        logger.info("partitions %s: %s", event, _names(parts))

    def _forget_lag(self, tp: TopicPartition) -> None:
        assert self._metrics is not None
        with contextlib.suppress(KeyError):  # no lag was recorded for it yet
            self._metrics.lag.remove(tp.topic, str(tp.partition))

    def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        """Partitions are about to move: the service abandons their uncommitted records."""
        self._change("revoked", revoked, add=False)

    def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        """Partitions now owned (positions start at the committed offsets when new)."""
        self._change("assigned", assigned, add=True)

    def on_partitions_lost(self, lost: Iterable[TopicPartition]) -> None:
        """The group evicted this consumer: its uncommitted records are someone else's now."""
        self._change("lost", lost, add=False)
