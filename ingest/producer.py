"""Produce documents and dead letters, and report exactly which ones the broker acknowledged.

Built on :func:`stream.kafka.make_producer` (idempotent, ``acks=all``,
compression). :meth:`DocumentProducer.deliver` sends a batch with delivery
callbacks, flushes, and returns the tags of the acknowledged records; the
caller marks only those as seen, so an outage loses nothing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field
from typing import Any

from kafka.errors import KafkaError

from stream.kafka import KafkaSettings, make_producer

__all__ = ["Delivery", "DocumentProducer", "OutgoingRecord"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class OutgoingRecord:
    """One record to send; ``tag`` identifies it in the delivery report."""

    topic: str
    key: bytes | None
    value: bytes
    tag: Hashable


@dataclass
class Delivery:
    """Which records were acknowledged and why the others were not."""

    acked: set[Hashable] = field(default_factory=set)
    failed: dict[Hashable, str] = field(default_factory=dict)

    @property
    def complete(self) -> bool:
        """True when every record was acknowledged."""
        return not self.failed


class DocumentProducer:
    """A Kafka producer that reports per-record delivery."""

    def __init__(
        self,
        kafka: KafkaSettings,
        *,
        ack_timeout_s: float,
        producer: Any | None = None,
        max_block_ms: int = 10_000,
    ) -> None:
        self._ack_timeout_s = ack_timeout_s
        ack_ms, linger_ms = int(ack_timeout_s * 1000), 20
        # The broker's answer must arrive inside the ack timeout, so a record we
        # report as failed is not delivered later behind our back.
        self._producer = producer or make_producer(
            kafka,
            max_block_ms=max_block_ms,
            linger_ms=linger_ms,
            delivery_timeout_ms=ack_ms,
            request_timeout_ms=max(1, min(kafka.request_timeout_ms, ack_ms - linger_ms - 1)),
        )
        self._lock = threading.Lock()

    def deliver(self, records: Sequence[OutgoingRecord]) -> Delivery:
        """Send ``records`` and wait for the broker's answer to each (at most the ack timeout)."""
        delivery = Delivery()
        if not records:
            return delivery
        lock = threading.Lock()

        def ok(tag: Hashable) -> Any:
            def callback(_metadata: Any) -> None:
                with lock:
                    delivery.acked.add(tag)

            return callback

        def fail(tag: Hashable) -> Any:
            def errback(exc: BaseException) -> None:
                with lock:
                    delivery.failed[tag] = f"{type(exc).__name__}: {exc}"

            return errback

        pending = list(records)
        with self._lock:
            for i, record in enumerate(pending):
                try:
                    future = self._producer.send(record.topic, value=record.value, key=record.key)
                except KafkaError as exc:
                    reason = f"send refused: {type(exc).__name__}: {exc}"
                    for rest in pending[i:]:
                        delivery.failed[rest.tag] = reason
                    logger.warning(
                        "producer refused a record (%s); %s not sent", exc, len(pending) - i
                    )
                    break
                future.add_callback(ok(record.tag))
                future.add_errback(fail(record.tag))
            try:
                self._producer.flush(timeout=self._ack_timeout_s)
            except KafkaError as exc:
                logger.warning("flush did not complete: %s", exc)
        with lock:
            for record in pending:
                if record.tag not in delivery.acked and record.tag not in delivery.failed:
                    delivery.failed[record.tag] = "no acknowledgement within the ack timeout"
        return delivery

    def close(self, timeout_s: float = 10.0) -> None:
        """Flush what is left and close the connection."""
        try:
            self._producer.close(timeout=timeout_s)
        except KafkaError as exc:
            logger.warning("producer close: %s", exc)
