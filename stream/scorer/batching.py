"""Micro-batches from a Kafka consumer: up to ``max_size`` records or ``max_wait_ms``.

The wait starts when the first record of a batch arrives, so an idle stream
costs no latency and a busy one fills batches. Records of one partition keep
their order. ``poll(max_records=...)`` leaves records beyond the batch in the
consumer's buffer for the next batch, so nothing is skipped and no partition
needs pausing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from kafka import KafkaConsumer
from kafka.consumer.fetcher import ConsumerRecord

from stream.runtime import StopFlag

__all__ = ["BatchCollector"]


class BatchCollector:
    """Collect micro-batches from ``consumer`` (the clock is injectable for tests)."""

    def __init__(
        self,
        consumer: KafkaConsumer,
        *,
        max_size: int,
        max_wait_ms: int,
        idle_poll_ms: int = 500,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_size < 1:
            raise ValueError("max_size must be at least 1")
        self._consumer = consumer
        self._max_size = max_size
        self._max_wait_s = max_wait_ms / 1_000
        self._idle_poll_ms = idle_poll_ms
        self._monotonic = monotonic

    def collect(self, stop: StopFlag) -> list[ConsumerRecord]:
        """The next batch; empty after one idle poll, so the caller can check ``stop``."""
        batch: list[ConsumerRecord] = []
        deadline: float | None = None
        while len(batch) < self._max_size:
            if deadline is None:
                timeout_ms = self._idle_poll_ms
            else:
                remaining_s = deadline - self._monotonic()
                if remaining_s <= 0 or stop.is_set():
                    break
                timeout_ms = max(1, int(remaining_s * 1_000))
            records = self._poll(timeout_ms, self._max_size - len(batch))
            if records and deadline is None:
                deadline = self._monotonic() + self._max_wait_s
            batch.extend(records)
            if deadline is None:
                break
        return batch

    def _poll(self, timeout_ms: int, max_records: int) -> list[ConsumerRecord]:
        polled: dict[Any, list[ConsumerRecord]] = self._consumer.poll(
            timeout_ms=timeout_ms, max_records=max_records
        )
        return [record for records in polled.values() for record in records]
