"""The ``finsentinel score`` command (and ``python -m stream``): run the stream scorer.

Options override ``FINSENTINEL_SCORER_*`` environment variables; Kafka comes
from ``KAFKA_*``. Without ``KAFKA_BOOTSTRAP_SERVERS`` the scorer refuses to start
unless ``--embedded-broker`` asks for a throw-away in-memory broker (local
trials only). SIGHUP switches models between two batches (``docs/models.md``).
Launched by :func:`stream.runtime.launch`, so the exit codes are
those of every service: 0 after SIGTERM/Ctrl+C (current batch finished and
committed), 2 for invalid settings (no bootstrap servers included), a bad
model directory or a registry without an ACTIVE version, 1 when the service
cannot run (GPU required but unusable, broker unreachable, metrics port taken).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from stream.runtime import (
    EmbeddedBrokerOpt,
    JsonLogsOpt,
    LogLevelOpt,
    LogOptions,
    exit_with,
    launch,
    load_settings,
    topic_names,
)

if TYPE_CHECKING:
    from stream.runtime import Launch, StopFlag
    from stream.scorer.settings import ScorerSettings

__all__ = ["register", "score", "serve"]

logger = logging.getLogger(__name__)

REQUIRE_GPU_HINT = "unset FINSENTINEL_SCORER_REQUIRE_GPU to fall back to CPU"


def serve(
    overrides: dict[str, Any],
    *,
    topic_prefix: str | None = None,
    stop: StopFlag | None = None,
    allow_embedded: bool = False,
    logs: LogOptions | None = None,
) -> int:
    """Run the scorer until SIGTERM/SIGINT (or ``stop`` is set); returns the exit code.

    No bootstrap servers is exit 2 unless ``allow_embedded`` (then a throw-away
    in-memory broker runs; see :func:`stream.kafka.kafka_connection`).
    """
    from models.exceptions import ModelDirError
    from stream.scorer.settings import ScorerSettings

    return launch(
        "scorer",
        lambda: load_settings(ScorerSettings, **overrides),
        _run,
        logs=logs,
        topics=topic_names(topic_prefix),
        allow_embedded=allow_embedded,
        stop=stop,
        reload=True,
        input_errors=(ModelDirError,),
    )


def _run(job: Launch[ScorerSettings]) -> None:
    from models.exceptions import ProviderError
    from stream.scorer.service import ScorerService

    assert job.kafka is not None
    try:
        service = ScorerService(job.settings, kafka=job.kafka, topics=job.topics, reload=job.reload)
        service.run(job.stop)
    except ProviderError as exc:
        raise ProviderError(f"{exc} ({REQUIRE_GPU_HINT})") from exc


def score(
    ctx: typer.Context,
    model_dir: Annotated[
        Path | None, typer.Option(help="Model directory (default: the shipped model).")
    ] = None,
    registry_dir: Annotated[
        Path | None,
        typer.Option(
            help="Model registry: score with its ACTIVE version and switch when it changes "
            "(or on SIGHUP). Instead of --model-dir."
        ),
    ] = None,
    shadow_model_dir: Annotated[
        Path | None,
        typer.Option(
            help="A candidate model scored in shadow (output to the scored.shadow topic)."
        ),
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
    log_level: LogLevelOpt = None,
    json_logs: JsonLogsOpt = False,
) -> None:
    """Score raw news and comments from Kafka and produce scored documents."""
    overrides = {
        "model_dir": model_dir,
        "registry_dir": registry_dir,
        "shadow_model_dir": shadow_model_dir,
        "provider": provider,
        "device_id": device_id,
        "require_gpu": require_gpu,
        "group_id": group_id,
        "batch_max_size": batch_max_size,
        "batch_max_wait_ms": batch_max_wait_ms,
        "metrics_port": metrics_port,
    }
    given = {k: v for k, v in overrides.items() if v is not None}
    logs = LogOptions.of(ctx, log_level, json_logs)
    exit_with(serve(given, topic_prefix=topic_prefix, allow_embedded=embedded_broker, logs=logs))


def register(app: typer.Typer) -> None:
    """Add ``score`` to the root ``finsentinel`` app."""
    app.command("score")(score)
