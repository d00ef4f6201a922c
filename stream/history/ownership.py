"""Which partitions the archive sink owns, from the rebalance callbacks.

kafka-python calls the callbacks on its IO thread while the sink is blocked in
``poll()`` (or, when a join finishes in the background, while it works), so
they only record; the sink acts after ``poll()`` returns. Ownership is not read
from ``consumer.assignment()``: under the eager protocol kafka-python keeps the
revoked partitions there until the new assignment arrives, and a sink that
trusted it committed, between generations, partitions it no longer owned.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

from kafka import TopicPartition
from kafka.consumer.subscription_state import ConsumerRebalanceListener

from stream.history.writer import TP

__all__ = ["Ownership"]

logger = logging.getLogger(__name__)


class Ownership(ConsumerRebalanceListener):
    """The partitions this sink owns, from the rebalance callbacks (kafka-python's IO thread).

    Revocations are also queued: the sink closes its files for them after ``poll()``.

    >>> own = Ownership()
    >>> own.on_partitions_assigned([TopicPartition("t", 0), TopicPartition("t", 1)])
    >>> own.on_partitions_revoked([TopicPartition("t", 1)])
    >>> sorted(own.owned), own.take_revoked()
    ([('t', 0)], {('t', 1)})
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._owned: set[TP] = set()
        self._revoked: set[TP] = set()
        self._assigned: set[TP] = set()

    @property
    def owned(self) -> frozenset[TP]:
        """Partitions assigned and not revoked since."""
        with self._lock:
            return frozenset(self._owned)

    def take_revoked(self) -> set[TP]:
        """Partitions revoked since the last call."""
        with self._lock:
            out, self._revoked = self._revoked, set()
        return out

    def take_assigned(self) -> set[TP]:
        """Partitions assigned since the last call."""
        with self._lock:
            out, self._assigned = self._assigned, set()
        return out

    def on_partitions_revoked(self, revoked: Iterable[TopicPartition]) -> None:
        tps = {(tp.topic, tp.partition) for tp in revoked}
        with self._lock:
            self._owned -= tps
            self._revoked |= tps

    def on_partitions_assigned(self, assigned: Iterable[TopicPartition]) -> None:
        tps = {(tp.topic, tp.partition) for tp in assigned}
        with self._lock:
            self._owned |= tps
            self._assigned |= tps
        logger.info("archive assigned %d partitions", len(tps))

    def on_partitions_lost(self, lost: Iterable[TopicPartition]) -> None:
        self.on_partitions_revoked(lost)
