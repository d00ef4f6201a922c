"""The ``finsentinel score`` command (and ``python -m stream``): run the stream scorer.

Options override ``FINSENTINEL_SCORER_*`` environment variables; Kafka comes
from ``KAFKA_*``. Without ``KAFKA_BOOTSTRAP_SERVERS`` the scorer refuses to start
unless ``--embedded-broker`` asks for a throw-away in-memory broker (local
trials only). Exit codes: 0 after SIGTERM/Ctrl+C (current batch finished and
committed), 2 for invalid settings (no bootstrap servers included) or a bad
model directory, 1 when the service cannot run (GPU required but unusable,
broker unreachable, metrics port taken).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Annotated, Any

import typer

from stream.runtime import EmbeddedBrokerOpt, load_settings

__all__ = ["register", "score", "serve"]

logger = logging.getLogger(__name__)


def _fail(code: int, message: str) -> int:
    typer.echo(f"error: {message}", err=True)
    return code


def serve(
    overrides: dict[str, Any],
    *,
    topic_prefix: str | None = None,
    stop: Any = None,
    allow_embedded: bool = False,
) -> int:
    """Run the scorer until SIGTERM/SIGINT (or ``stop`` is set); returns the exit code.

    No bootstrap servers is exit 2 unless ``allow_embedded`` (then a throw-away
    in-memory broker runs; see :func:`stream.kafka.kafka_connection`).
    """
    from models.exceptions import ModelDirError, ProviderError
    from stream.contracts.errors import BrokerError, ConfigError
    from stream.contracts.topics import TopicNames
    from stream.kafka import KafkaSettings, ensure_topics, kafka_connection
    from stream.runtime import StopFlag
    from stream.scorer.service import ScorerService
    from stream.scorer.settings import ScorerSettings

    try:
        settings = load_settings(ScorerSettings, **overrides)
        kafka = load_settings(KafkaSettings)
    except ConfigError as exc:
        return _fail(2, str(exc))
    topics = TopicNames.with_prefix(topic_prefix) if topic_prefix else TopicNames()
    try:
        with kafka_connection(kafka, allow_embedded=allow_embedded) as connected:
            flag = stop if stop is not None else StopFlag().install()
            ensure_topics(connected, topics.all)
            ScorerService(settings, kafka=connected, topics=topics).run(flag)
    except (ModelDirError, ConfigError) as exc:
        return _fail(2, str(exc))
    except ProviderError as exc:
        return _fail(1, f"{exc} (unset FINSENTINEL_SCORER_REQUIRE_GPU to fall back to CPU)")
    except BrokerError as exc:
        return _fail(1, str(exc))
    except OSError as exc:
        return _fail(1, f"cannot serve metrics on {settings.metrics_host}:"
                        f"{settings.metrics_port}: {exc}")  # fmt: skip
    return 0


def score(
    model_dir: Annotated[
        Path | None, typer.Option(help="Model directory (default: the shipped model).")
    ] = None,
    provider: Annotated[str | None, typer.Option(help="auto, cpu or cuda.")] = None,
    device_id: Annotated[int | None, typer.Option(help="CUDA device.")] = None,
    require_gpu: Annotated[
        bool | None, typer.Option("--require-gpu/--allow-cpu", help="Refuse to run on CPU.")
    ] = None,
    group_id: Annotated[str | None, typer.Option(help="Kafka consumer group.")] = None,
    batch_max_size: Annotated[int | None, typer.Option(help="Records per micro-batch.")] = None,
    batch_max_wait_ms: Annotated[
        int | None, typer.Option(help="Longest wait to fill a micro-batch.")
    ] = None,
    metrics_port: Annotated[
        int | None, typer.Option(help="Port of /metrics and /healthz (0: any).")
    ] = None,
    topic_prefix: Annotated[
        str | None,
        typer.Option(envvar="FINSENTINEL_TOPIC_PREFIX", help="Topic name prefix."),
    ] = None,
    embedded_broker: EmbeddedBrokerOpt = False,
) -> None:
    """Score raw news and comments from Kafka and produce scored documents."""
    overrides = {
        "model_dir": model_dir,
        "provider": provider,
        "device_id": device_id,
        "require_gpu": require_gpu,
        "group_id": group_id,
        "batch_max_size": batch_max_size,
        "batch_max_wait_ms": batch_max_wait_ms,
        "metrics_port": metrics_port,
    }
    given = {k: v for k, v in overrides.items() if v is not None}
    code = serve(given, topic_prefix=topic_prefix, allow_embedded=embedded_broker)
    if code:
        raise typer.Exit(code)


def register(app: typer.Typer) -> None:
    """Add ``score`` to the root ``finsentinel`` app."""
    app.command("score")(score)
