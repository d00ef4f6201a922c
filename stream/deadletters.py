"""Dead letters on their way out: the one counter, and a send that is checked and retried.

Every service counts its dead letters in ``finsentinel_deadletters_total`` with
a ``stage`` label (``ingest``, ``score``, ``alerts``, ``archive``) and a
``reason`` from :data:`~stream.contracts.schemas.REJECT_REASONS`. (Until 0.4 the
scorer, the archive and the crawler had a counter each; deploy/prometheus keeps
those names as recording rules for one release.) Letters are built by
:func:`stream.contracts.deadletters.dead_letter`.

>>> from prometheus_client import CollectorRegistry
>>> registry = CollectorRegistry()
>>> counter = DeadLetterCounter(registry, stage="archive")
>>> counter.inc("too_large")
>>> DeadLetterCounter(registry, stage="score").inc("empty_text")  # a second service
>>> registry.get_sample_value("finsentinel_deadletters_total",
...                           {"stage": "archive", "reason": "too_large"})
1.0
"""

from __future__ import annotations

import base64
import logging
import time
import weakref
from collections.abc import Callable
from typing import Final

from kafka import KafkaProducer
from kafka.errors import KafkaError, MessageSizeTooLargeError
from prometheus_client import CollectorRegistry, Counter

from stream.contracts.deadletters import Stage, shrink
from stream.contracts.errors import BrokerError
from stream.contracts.schemas import REJECT_REASONS, DeadLetter, encode

__all__ = [
    "SAFE_ORIGINAL_BYTES",
    "DeadLetterCounter",
    "DeadLetterSendError",
    "send_dead_letter",
]

logger = logging.getLogger(__name__)

#: What a letter's original is cut to when the broker refuses it as too large anyway
#: (a broker whose message limit is below the configured cap).
SAFE_ORIGINAL_BYTES: Final = 65_536


_COUNTERS: weakref.WeakKeyDictionary[CollectorRegistry, Counter] = weakref.WeakKeyDictionary()


class DeadLetterSendError(BrokerError):
    """A dead letter was not acknowledged after every attempt: the service must stop
    without committing past its record (a broker failure: a restart may succeed)."""


class DeadLetterCounter:
    """``finsentinel_deadletters_total{stage, reason}`` of one service, series made at start."""

    def __init__(self, registry: CollectorRegistry, *, stage: Stage) -> None:
        self.stage = stage
        # Services that share a registry (the demo serves all of them on one /metrics)
        # share the counter: one family, a stage label each.
        counter = _COUNTERS.get(registry)
        if counter is None:
            counter = Counter(
                "finsentinel_deadletters_total",
                "Records sent to the dead-letter topic, by stage and reason.",
                ["stage", "reason"],
                registry=registry,
            )
            _COUNTERS[registry] = counter
        self._counter = counter
        for reason in REJECT_REASONS:
            self._counter.labels(stage=stage, reason=reason)

    def inc(self, reason: str, amount: int = 1) -> None:
        """Count ``amount`` letters sent for ``reason`` (unknown reasons: ``processing_error``)."""
        label = reason if reason in REJECT_REASONS else "processing_error"
        self._counter.labels(stage=self.stage, reason=label).inc(amount)


def send_dead_letter(
    producer: KafkaProducer,
    topic: str,
    letter: DeadLetter,
    *,
    attempts: int = 3,
    timeout_s: float = 10.0,
    backoff_s: float = 1.0,
    sleep: Callable[[float], None] = time.sleep,
) -> DeadLetter:
    """Produce ``letter`` to ``topic`` and wait for the broker's acknowledgement.

    A refusal as too large cuts the original to :data:`SAFE_ORIGINAL_BYTES` and
    tries again; any other Kafka error is retried after ``backoff_s``. Returns the
    letter as sent; raises :class:`DeadLetterSendError` (one line, naming the
    record) when every attempt failed.
    """
    key = base64.b64decode(letter.key_b64) if letter.key_b64 is not None else None
    last: Exception | None = None
    for attempt in range(1, attempts + 1):
        try:
            producer.send(topic, value=encode(letter), key=key).get(timeout=timeout_s)
            return letter
        except MessageSizeTooLargeError as exc:
            last, letter = exc, shrink(letter, SAFE_ORIGINAL_BYTES)
        except KafkaError as exc:
            last = exc
            logger.warning(
                "dead letter of %s not acknowledged (attempt %d of %d): %s",
                _where(letter), attempt, attempts, exc,
            )  # fmt: skip
            if attempt < attempts:
                sleep(backoff_s)
    raise DeadLetterSendError(
        f"the dead letter of {_where(letter)} ({letter.reason}) was not acknowledged after "
        f"{attempts} attempts ({last}); stopping without committing past it"
    )


def _where(letter: DeadLetter) -> str:
    if letter.source_topic is None:
        return f"a {letter.stage} reject"
    return f"{letter.source_topic}[{letter.partition}]@{letter.offset}"
