"""Process plumbing for services: logging set-up, graceful shutdown, shared CLI options,
and settings errors as one line."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable, Collection
from types import FrameType
from typing import Annotated, Any, TypeVar

import typer
from pydantic import ValidationError
from pydantic_settings import BaseSettings
from rich.logging import RichHandler

from stream.contracts.errors import ConfigError

__all__ = ["EmbeddedBrokerOpt", "StopFlag", "configure_logging", "load_settings", "run_command"]

SettingsT = TypeVar("SettingsT", bound=BaseSettings)

#: ``--embedded-broker`` of every service command: allows
#: ``kafka_connection(..., allow_embedded=True)`` when ``KAFKA_BOOTSTRAP_SERVERS`` is unset.
EmbeddedBrokerOpt = Annotated[
    bool,
    typer.Option(
        "--embedded-broker",
        help="Without KAFKA_BOOTSTRAP_SERVERS, start a throw-away in-memory broker for "
        "local trials; data is lost on exit; never in production. Ignored (with a warning) "
        "when KAFKA_BOOTSTRAP_SERVERS is set.",
    ),
]


def load_settings(model: type[SettingsT], **given: Any) -> SettingsT:
    """Build the settings ``model`` from ``given`` values (``None``: unset) and the environment.

    Invalid settings raise :class:`ConfigError` with one line saying what to fix,
    so every service reports them alike (``error: ...`` and exit 2): the
    environment variable, or the field of a value given explicitly.

    >>> from stream.kafka import KafkaSettings
    >>> load_settings(KafkaSettings, bootstrap_servers="k:9092", request_timeout_ms=5)
    Traceback (most recent call last):
    ...
    stream.contracts.errors.ConfigError: request_timeout_ms: Input should be greater ...
    """
    explicit = {k: v for k, v in given.items() if v is not None}
    try:
        return model(**explicit)
    except ValidationError as exc:
        raise ConfigError(_one_line(exc, model, explicit)) from exc


def _one_line(exc: ValidationError, model: type[BaseSettings], given: Collection[str]) -> str:
    err, more = exc.errors()[0], exc.error_count() - 1
    message = str(err["msg"]).removeprefix("Value error, ")
    if more:
        message += f" (and {more} more)"
    where = [str(p) for p in err["loc"]]
    if not where:  # a rule between settings: its message names the variables
        return message
    if where[0] not in given:  # pydantic-settings reads upper-case names by default
        where[0] = f"{model.model_config.get('env_prefix', '')}{where[0]}".upper()
    return f"{'.'.join(where)}: {message}"


class StopFlag:
    """Set by SIGTERM/SIGINT; services check it between batches and then exit 0.

    >>> flag = StopFlag()
    >>> flag.is_set()
    False
    >>> flag.set(); flag.is_set()
    True
    """

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        """Ask the service to stop after the current batch."""
        self._event.set()

    def is_set(self) -> bool:
        """True once a stop was requested."""
        return self._event.is_set()

    def wait(self, timeout_s: float) -> bool:
        """Sleep up to ``timeout_s``; return True early if a stop was requested."""
        return self._event.wait(timeout_s)

    def install(self) -> StopFlag:
        """Route SIGTERM and SIGINT to this flag (main thread only)."""

        def handler(signum: int, _frame: FrameType | None) -> None:
            logging.getLogger(__name__).info(
                "received %s: finishing the current batch", signal.Signals(signum).name
            )
            self.set()

        signal.signal(signal.SIGTERM, handler)
        signal.signal(signal.SIGINT, handler)
        return self


def configure_logging(level: str = "INFO", *, json_logs: bool = False) -> None:
    """Configure the root logger; only entry points call this."""
    root = logging.getLogger()
    root.handlers.clear()
    if json_logs:
        handler: logging.Handler = logging.StreamHandler()
        handler.setFormatter(
            logging.Formatter(
                '{"ts":"%(asctime)s","level":"%(levelname)s","logger":"%(name)s",'
                '"msg":"%(message)s"}'
            )
        )
    else:
        handler = RichHandler(show_path=False, rich_tracebacks=False, log_time_format="%X")
    root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in ("kafka", "urllib3", "httpx", "apscheduler"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    # kafka-python 3 warns whenever its I/O loop was held up for 0.1 s, which a busy
    # 2-core machine does all the time; real connection problems are logged as errors.
    logging.getLogger("kafka.net").setLevel(max(logging.ERROR, root.level))


def run_command(command: Callable[..., Any], argv: list[str] | None, prog_name: str) -> int:
    """Run one Typer command as a whole program (``python -m <package>``); its exit code."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False)
    app.command()(command)
    try:
        app(args=argv, prog_name=prog_name)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0
