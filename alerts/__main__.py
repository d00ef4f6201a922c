"""``python -m alerts``: run the alerting service (settings from ``FINSENTINEL_ALERTS_*``)."""

from __future__ import annotations

import logging
import sys

from alerts.exceptions import AlertError
from alerts.settings import AlertSettings
from stream.errors import FinSentinelError
from stream.kafka import KafkaSettings, ensure_topics, kafka_connection
from stream.runtime import StopFlag, configure_logging
from stream.topics import TopicNames

__all__ = ["main", "serve"]

logger = logging.getLogger("alerts")


def serve(
    settings: AlertSettings, *, kafka: KafkaSettings | None = None, configure_logs: bool = True
) -> int:
    """Run the service in this process until SIGTERM/SIGINT; the exit code."""
    from alerts.service import AlertService

    if configure_logs:
        configure_logging(settings.log_level)
    stop = StopFlag().install()
    topics = TopicNames.from_env()
    try:
        with kafka_connection(kafka or KafkaSettings()) as connected:
            ensure_topics(connected, (topics.scored, topics.alerts, topics.deadletter))
            service = AlertService(settings, kafka=connected, topics=topics)
            try:
                service.run(stop)
            finally:
                service.close()
    except AlertError as exc:
        logger.error("%s", exc)
        return 2 if not exc.retriable else 1
    except FinSentinelError as exc:
        logger.error("%s", exc)
        return 1 if exc.retriable else 2
    except OSError as exc:  # e.g. the metrics port is taken
        logger.error("cannot start the alerting service: %s", exc)
        return 1
    return 0


def main() -> int:
    """Entry point of ``python -m alerts``."""
    from pydantic import ValidationError

    try:
        settings = AlertSettings()
    except ValidationError as exc:
        print(f"error: invalid FINSENTINEL_ALERTS_* settings: {exc}", file=sys.stderr)
        return 2
    return serve(settings)


if __name__ == "__main__":
    sys.exit(main())
