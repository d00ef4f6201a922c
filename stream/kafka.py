"""Kafka connection settings and client factories shared by every service.

Settings come from explicit arguments first, then ``KAFKA_*`` environment
variables. When no bootstrap address is configured, :func:`kafka_connection`
refuses to connect unless the caller allows a throw-away embedded broker (the
demo, tests, or a service started with ``--embedded-broker``; see
:mod:`stream.broker`). A configured address always wins over that permission.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.admin import NewTopic
from kafka.errors import KafkaError, TopicAlreadyExistsError
from pydantic import Field, SecretStr, model_validator
from pydantic_settings import SettingsConfigDict

from stream.broker import EmbeddedBroker
from stream.contracts.errors import BrokerError, ConfigError
from stream.kafka_joins import keep_finished_joins
from stream.settings import ServiceSettings

__all__ = [
    "KafkaSettings",
    "ensure_topics",
    "kafka_connection",
    "make_admin",
    "make_consumer",
    "make_producer",
]

logger = logging.getLogger(__name__)

keep_finished_joins()  # before any consumer exists: see stream.kafka_joins


class KafkaSettings(ServiceSettings):
    """How to reach Kafka. Environment variables: ``KAFKA_<FIELD>`` (upper case).

    >>> KafkaSettings(bootstrap_servers="k1:9092").client_kwargs()["bootstrap_servers"]
    ['k1:9092']
    """

    model_config = SettingsConfigDict(env_prefix="KAFKA_", extra="forbid", frozen=True)

    #: Comma-separated ``host:port`` list; empty is an error unless an embedded broker is allowed.
    bootstrap_servers: str | None = None
    client_id: str = "finsentinel"
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] | None = None
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    #: File holding the SASL password (container secrets); used when ``sasl_password`` is unset.
    sasl_password_file: Path | None = None
    ssl_cafile: Path | None = None
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_check_hostname: bool = True
    request_timeout_ms: int = Field(default=30_000, ge=1_000)
    #: How long a client waits for the first broker to answer before giving up.
    bootstrap_timeout_ms: int = Field(default=30_000, ge=1_000)
    #: Partitions for topics FinSentinel creates itself (existing topics are left alone).
    default_partitions: int = Field(default=6, ge=1)
    replication_factor: int = Field(default=1, ge=1)

    @model_validator(mode="before")
    @classmethod
    def _password_from_file(cls, data: Any) -> Any:
        if (
            isinstance(data, dict)
            and data.get("sasl_password_file")
            and not data.get("sasl_password")
        ):
            path = Path(data["sasl_password_file"])
            try:
                data = {**data, "sasl_password": path.read_text(encoding="utf-8").strip()}
            except OSError as exc:
                raise ConfigError(
                    f"cannot read KAFKA_SASL_PASSWORD_FILE={path}: {exc.strerror}"
                ) from exc
        return data

    @model_validator(mode="after")
    def _check_security(self) -> KafkaSettings:
        if self.security_protocol.startswith("SASL"):
            missing = [
                n
                for n in ("sasl_mechanism", "sasl_username", "sasl_password")
                if getattr(self, n) is None
            ]
            if missing:
                raise ConfigError(
                    f"KAFKA_SECURITY_PROTOCOL={self.security_protocol} needs "
                    + ", ".join(f"KAFKA_{n.upper()}" for n in missing)
                )
        elif self.sasl_mechanism is not None:
            raise ConfigError(
                "KAFKA_SASL_MECHANISM is set but KAFKA_SECURITY_PROTOCOL is not SASL_PLAINTEXT "
                "or SASL_SSL"
            )
        return self

    @property
    def servers(self) -> list[str]:
        """The bootstrap list; raises if none is configured."""
        if not self.bootstrap_servers:
            raise ConfigError("no Kafka bootstrap servers: set KAFKA_BOOTSTRAP_SERVERS")
        return [s.strip() for s in self.bootstrap_servers.split(",") if s.strip()]

    def client_kwargs(self) -> dict[str, Any]:
        """Keyword arguments common to kafka-python producers, consumers and admins."""
        kwargs: dict[str, Any] = {
            "bootstrap_servers": self.servers,
            "client_id": self.client_id,
            "security_protocol": self.security_protocol,
            "request_timeout_ms": self.request_timeout_ms,
            "bootstrap_timeout_ms": self.bootstrap_timeout_ms,
        }
        if self.sasl_mechanism:
            kwargs["sasl_mechanism"] = self.sasl_mechanism
            kwargs["sasl_plain_username"] = self.sasl_username
            kwargs["sasl_plain_password"] = (
                self.sasl_password.get_secret_value() if self.sasl_password else None
            )
        if "SSL" in self.security_protocol:
            kwargs["ssl_check_hostname"] = self.ssl_check_hostname
            for name in ("ssl_cafile", "ssl_certfile", "ssl_keyfile"):
                value = getattr(self, name)
                if value is not None:
                    kwargs[name] = str(value)
        return kwargs


def make_producer(settings: KafkaSettings, **overrides: Any) -> KafkaProducer:
    """An idempotent ``acks=all`` producer with compression; overrides win."""
    config: dict[str, Any] = {
        "acks": "all",
        "enable_idempotence": True,
        "compression_type": "gzip",
        "linger_ms": 5,
        "max_in_flight_requests_per_connection": 5,
        "retries": 2**31 - 1,
        "delivery_timeout_ms": 120_000,
        **settings.client_kwargs(),
        **overrides,
    }
    try:
        return KafkaProducer(**config)
    except KafkaError as exc:
        raise BrokerError(f"no Kafka broker answers at {settings.bootstrap_servers}") from exc


def make_consumer(
    settings: KafkaSettings,
    *,
    group_id: str | None,
    topics: Iterable[str] = (),
    **overrides: Any,
) -> KafkaConsumer:
    """A consumer with manual commits; subscribes to ``topics`` when given.

    Session and heartbeat defaults (6 s / 1 s) keep group joins fast and are
    within Apache Kafka's allowed range (``group.min.session.timeout.ms``).
    """
    config: dict[str, Any] = {
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": 6_000,
        "heartbeat_interval_ms": 1_000,
        "max_poll_interval_ms": 300_000,
        **settings.client_kwargs(),
        **overrides,
    }
    try:
        consumer = KafkaConsumer(**config)
    except KafkaError as exc:
        raise BrokerError(f"no Kafka broker answers at {settings.bootstrap_servers}") from exc
    topics = list(topics)
    if topics:
        consumer.subscribe(topics)
    return consumer


def make_admin(settings: KafkaSettings) -> KafkaAdminClient:
    """An admin client (topic creation, offsets inspection)."""
    try:
        return KafkaAdminClient(**settings.client_kwargs())
    except KafkaError as exc:
        raise BrokerError(f"no Kafka broker answers at {settings.bootstrap_servers}") from exc


def ensure_topics(
    settings: KafkaSettings, topics: Iterable[str], *, partitions: int | None = None
) -> None:
    """Create the missing ``topics``; existing ones are left as they are."""
    admin = make_admin(settings)
    try:
        existing = set(admin.list_topics())
        new = [
            NewTopic(t, partitions or settings.default_partitions, settings.replication_factor)
            for t in dict.fromkeys(topics)
            if t not in existing
        ]
        if new:
            # Another process may create the same topics concurrently: that is the goal.
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(new)
            logger.info("created topics %s", ", ".join(t.name for t in new))
    except KafkaError as exc:
        raise BrokerError(f"could not create topics: {exc}") from exc
    finally:
        admin.close()


#: Why a service refuses to start without ``KAFKA_BOOTSTRAP_SERVERS``.
NO_BOOTSTRAP_MESSAGE = (
    "no Kafka bootstrap servers: set KAFKA_BOOTSTRAP_SERVERS (e.g. kafka:9092), or pass "
    "--embedded-broker for a throw-away local broker (data is lost on exit)"
)


@contextmanager
def kafka_connection(
    settings: KafkaSettings | None = None,
    *,
    allow_embedded: bool = False,
    broker_log: Path | None = None,
) -> Iterator[KafkaSettings]:
    """Yield settings with a usable bootstrap address.

    If ``settings`` names bootstrap servers they are used as they are; with
    ``allow_embedded`` too, a WARNING says that ``--embedded-broker`` is ignored,
    so trial data never goes to a real cluster unnoticed. Otherwise, with
    ``allow_embedded``, an in-memory embedded broker runs for the duration of the
    block (a WARNING says so: nothing else can reach it and its data is lost on
    exit); without it, :class:`ConfigError` is raised, so a service whose
    ``KAFKA_BOOTSTRAP_SERVERS`` was forgotten stops instead of working alone.

    >>> with kafka_connection(KafkaSettings(bootstrap_servers=None)):  # doctest: +ELLIPSIS
    ...     pass
    Traceback (most recent call last):
    ...
    stream.contracts.errors.ConfigError: no Kafka bootstrap servers: set KAFKA_BOOTSTRAP_SERVERS ...
    """
    settings = settings or KafkaSettings()
    if settings.bootstrap_servers:
        if allow_embedded:
            logger.warning(
                "--embedded-broker is ignored because KAFKA_BOOTSTRAP_SERVERS=%s is set: "
                "this run reads and writes that cluster",
                settings.bootstrap_servers,
            )
        yield settings
        return
    if not allow_embedded:
        raise ConfigError(NO_BOOTSTRAP_MESSAGE)
    with EmbeddedBroker(log_path=broker_log) as broker:
        logger.warning(
            "KAFKA_BOOTSTRAP_SERVERS is not set: started a throw-away in-memory broker at %s; "
            "no other process uses it and its data is lost on exit (never in production)",
            broker.bootstrap_servers,
        )
        yield settings.model_copy(update={"bootstrap_servers": broker.bootstrap_servers})
