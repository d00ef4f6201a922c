"""``python -m alerts``: run the alerting service (settings from ``FINSENTINEL_ALERTS_*``).

Kafka comes from ``KAFKA_*``; without ``KAFKA_BOOTSTRAP_SERVERS`` the service
refuses to start unless ``--embedded-broker`` asks for a throw-away in-memory
broker (local trials only). Exit codes: 0 after SIGTERM/Ctrl+C, 2 invalid
settings (one line on stderr), 1 the service could not run.
"""

from __future__ import annotations

import logging
import sys

import typer

from alerts.exceptions import AlertError
from alerts.settings import AlertSettings
from stream.contracts.errors import ConfigError, FinSentinelError
from stream.contracts.topics import TopicNames
from stream.kafka import KafkaSettings, ensure_topics, kafka_connection
from stream.runtime import (
    EmbeddedBrokerOpt,
    StopFlag,
    configure_logging,
    load_settings,
    run_command,
)

__all__ = ["main", "serve"]

logger = logging.getLogger("alerts")


def serve(
    settings: AlertSettings,
    *,
    kafka: KafkaSettings | None = None,
    configure_logs: bool = True,
    allow_embedded: bool = False,
) -> int:
    """Run the service in this process until SIGTERM/SIGINT; the exit code (invalid
    ``KAFKA_*`` settings or no bootstrap servers: 2, the latter unless
    ``allow_embedded`` starts a throw-away broker)."""
    from alerts.service import AlertService

    if configure_logs:
        configure_logging(settings.log_level)
    topics = TopicNames.from_env()
    try:
        kafka = kafka or load_settings(KafkaSettings)
        with kafka_connection(kafka, allow_embedded=allow_embedded) as connected:
            stop = StopFlag().install()  # after the checks, so failing early changes nothing
            ensure_topics(connected, (topics.scored, topics.alerts, topics.deadletter))
            service = AlertService(settings, kafka=connected, topics=topics)
            try:
                service.run(stop)
            finally:
                service.close()
    except ConfigError as exc:  # one line, like the settings errors of main()
        print(f"error: {exc}", file=sys.stderr)
        return 2
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


def _run(embedded_broker: EmbeddedBrokerOpt = False) -> None:
    """Run the alerting service until SIGTERM/Ctrl+C (settings: FINSENTINEL_ALERTS_*)."""
    try:
        settings = load_settings(AlertSettings)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        raise typer.Exit(2) from None
    raise typer.Exit(serve(settings, allow_embedded=embedded_broker))


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m alerts``."""
    return run_command(_run, argv, "python -m alerts")


if __name__ == "__main__":
    sys.exit(main())
