"""The one way a service starts and stops: :func:`launch`, plus its shared CLI options.

Every service (``finsentinel score|alert|crawl|archive|replay`` and the
``python -m stream|alerts|ingest`` forms) runs through :func:`launch`:

1. logging options (``--log-level``/``--json-logs`` before or after the subcommand,
   else ``FINSENTINEL_LOG_LEVEL``/``FINSENTINEL_JSON_LOGS``), then logging;
2. settings (explicit options beat the environment; ``KAFKA_*`` too);
3. the Kafka connection (a throw-away broker only with ``--embedded-broker``);
4. the topics, created when missing;
5. the stop flag: SIGTERM/SIGINT finish the current batch; with ``reload=True``,
   SIGHUP sets the reload flag (the scorer then switches models between batches);
6. the service's own run step;
7. the exit code, the same everywhere: **0** done (also after SIGTERM/Ctrl+C),
   **2** invalid settings or input (one line), **1** the service failed at run
   time (one line; the traceback only at DEBUG, or as the ``exc_info`` field of
   the JSON log record).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from types import FrameType
from typing import TYPE_CHECKING, Annotated, Any, Generic, TypeVar

import typer

from stream.contracts.errors import ConfigError, FinSentinelError
from stream.contracts.topics import TopicNames
from stream.logs import JsonFormatter, LogSettings, configure_logging, warn_retired_settings
from stream.settings import load_settings

if TYPE_CHECKING:
    from stream.kafka import KafkaSettings

__all__ = [
    "EmbeddedBrokerOpt",
    "JsonLogsOpt",
    "Launch",
    "LogLevelOpt",
    "LogOptions",
    "ReloadFlag",
    "StopFlag",
    "configure_logging",
    "exit_with",
    "launch",
    "load_settings",
    "run_command",
    "topic_names",
]

logger = logging.getLogger(__name__)

S = TypeVar("S")

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
#: ``--log-level``: accepted by the root command and after every service subcommand.
LogLevelOpt = Annotated[
    str | None,
    typer.Option(
        "--log-level",
        metavar="LEVEL",
        help="DEBUG, INFO, WARNING or ERROR [default: FINSENTINEL_LOG_LEVEL, else INFO].",
    ),
]
#: ``--json-logs``: a flag (it takes no value), before or after a service subcommand.
JsonLogsOpt = Annotated[
    bool,
    typer.Option(
        "--json-logs",
        help="One JSON object per log line, tracebacks as its exc_info field "
        "[default: FINSENTINEL_JSON_LOGS=true|false].",
    ),
]


@dataclass(frozen=True)
class LogOptions:
    """``--log-level`` and ``--json-logs`` as given on one command line (None/False: not given).

    Options after the subcommand beat those before it, which beat the environment:

    >>> LogOptions("debug").resolve(LogOptions("ERROR", json_logs=True)).model_dump()
    {'log_level': 'debug', 'json_logs': True}
    """

    level: str | None = None
    json_logs: bool = False

    @classmethod
    def of(cls, ctx: typer.Context | None, level: str | None, json_logs: bool) -> LogOptions:
        """This command's options over those the root command was given (``ctx``)."""
        mine = cls(level, json_logs)
        if ctx is None:
            return mine
        root = ctx.find_root()
        if root is ctx:
            return mine
        outer = cls(root.params.get("log_level"), bool(root.params.get("json_logs")))
        return cls(mine.level or outer.level, mine.json_logs or outer.json_logs)

    def resolve(self, outer: LogOptions | None = None) -> LogSettings:
        """The logging to use; the environment fills what no option says (ConfigError if bad)."""
        outer = outer or LogOptions()
        return load_settings(
            LogSettings,
            log_level=self.level or outer.level,
            json_logs=True if self.json_logs or outer.json_logs else None,
        )


def topic_names(prefix: str | None) -> TopicNames:
    """The topics under ``--topic-prefix`` (``FINSENTINEL_TOPIC_PREFIX``), else the defaults."""
    return TopicNames.with_prefix(prefix) if prefix else TopicNames()


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

    @contextlib.contextmanager
    def installed(self) -> Iterator[StopFlag]:
        """:meth:`install` for the duration of a block; the previous handlers come back."""
        before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            yield self.install()
        finally:
            for sig, previous in before.items():
                signal.signal(sig, previous)


class ReloadFlag:
    """Set by SIGHUP; a service takes it between batches and reloads (the scorer: its model).

    >>> flag = ReloadFlag()
    >>> flag.set(); flag.take(), flag.take()
    (True, False)
    """

    def __init__(self) -> None:
        self._event = threading.Event()

    def set(self) -> None:
        """Ask for a reload at the next batch boundary."""
        self._event.set()

    def take(self) -> bool:
        """True once per request: the request is consumed."""
        if not self._event.is_set():
            return False
        self._event.clear()
        return True

    @contextlib.contextmanager
    def installed(self) -> Iterator[ReloadFlag]:
        """Route SIGHUP to this flag for the duration of a block (main thread, POSIX only)."""
        if not hasattr(signal, "SIGHUP"):
            yield self
            return

        def handler(signum: int, _frame: FrameType | None) -> None:
            logging.getLogger(__name__).info("received SIGHUP: reloading between two batches")
            self.set()

        before = signal.signal(signal.SIGHUP, handler)
        try:
            yield self
        finally:
            signal.signal(signal.SIGHUP, before)


@dataclass(frozen=True)
class Launch(Generic[S]):
    """What a service's run step gets from :func:`launch`."""

    settings: S
    #: Connected Kafka settings (``None`` when the service needs no Kafka).
    kafka: KafkaSettings | None
    topics: TopicNames
    stop: StopFlag
    #: Set by SIGHUP when the service was launched with ``reload=True``.
    reload: ReloadFlag = field(default_factory=ReloadFlag)


def _all_topics(topics: TopicNames) -> Iterable[str]:
    return topics.all


def launch(
    name: str,
    load: Callable[[], S],
    run: Callable[[Launch[S]], int | None],
    *,
    logs: LogOptions | None = None,
    topics: TopicNames | None = None,
    ensure: Callable[[TopicNames], Iterable[str]] | None = _all_topics,
    kafka: bool = True,
    allow_embedded: bool = False,
    stop: StopFlag | None = None,
    reload: bool = False,
    input_errors: tuple[type[BaseException], ...] = (),
) -> int:
    """Run service ``name`` through the seven steps in the module docstring; its exit code.

    ``load`` builds the settings (``ConfigError``: exit 2); ``run`` does the work
    and may return an exit code; ``input_errors`` are further errors that mean
    "fix your input" (exit 2, e.g. a broken model directory). ``ensure`` says
    which topics to create (None: none); ``kafka=False`` skips the connection.
    ``logs=None`` keeps the logging as configured (tests, embedding programs);
    ``stop`` replaces the SIGTERM/SIGINT flag (the signals are then left alone);
    ``reload=True`` routes SIGHUP to :attr:`Launch.reload` (unless ``stop`` is given).
    """
    try:
        json_logs = _logging(logs)
    except ConfigError as exc:
        return _report(name, 2, exc, json_logs=False)
    usage: tuple[type[BaseException], ...] = (ConfigError, *input_errors)
    try:
        settings = load()
        connection = _kafka_settings() if kafka else None
    except usage as exc:
        return _report(name, 2, exc, json_logs=json_logs)
    except Exception as exc:  # e.g. a settings file that cannot be read
        return _report(name, 1, exc, json_logs=json_logs)
    names = topics or TopicNames()
    try:
        with _connected(connection, allow_embedded) as connected:
            if connected is not None and ensure is not None:
                from stream.kafka import ensure_topics

                ensure_topics(connected, ensure(names))
            with _stop_flag(stop) as flag, _reload_flag(reload and stop is None) as again:
                code = run(Launch(settings, connected, names, flag, again))
    except usage as exc:
        return _report(name, 2, exc, json_logs=json_logs)
    except typer.Exit:  # a run step that chose its exit code itself
        raise
    except Exception as exc:  # a fatal error: one line, the traceback at DEBUG / in JSON
        return _report(name, 1, exc, json_logs=json_logs)
    return code or 0


def _logging(logs: LogOptions | None) -> bool:
    if logs is None:
        return any(isinstance(h.formatter, JsonFormatter) for h in logging.getLogger().handlers)
    chosen = logs.resolve()
    configure_logging(chosen.log_level, json_logs=chosen.json_logs)
    warn_retired_settings()
    return chosen.json_logs


def _kafka_settings() -> KafkaSettings:
    from stream.kafka import KafkaSettings

    return load_settings(KafkaSettings)


@contextlib.contextmanager
def _connected(
    settings: KafkaSettings | None, allow_embedded: bool
) -> Iterator[KafkaSettings | None]:
    if settings is None:
        yield None
        return
    from stream.kafka import kafka_connection

    with kafka_connection(settings, allow_embedded=allow_embedded) as connected:
        yield connected


@contextlib.contextmanager
def _stop_flag(stop: StopFlag | None) -> Iterator[StopFlag]:
    if stop is not None:
        yield stop
        return
    with StopFlag().installed() as flag:
        yield flag


@contextlib.contextmanager
def _reload_flag(install: bool) -> Iterator[ReloadFlag]:
    flag = ReloadFlag()
    if not install:
        yield flag
        return
    with flag.installed():
        yield flag


def _report(name: str, code: int, exc: BaseException, *, json_logs: bool) -> int:
    """Say why ``name`` stops with ``code`` in one line; return ``code``."""
    message = " ".join(str(exc).split()) or type(exc).__name__
    if code == 1 and not isinstance(exc, FinSentinelError | OSError):
        message = f"{name} failed: {type(exc).__name__}: {message}"
    if json_logs:  # everything on the output stays JSON
        trace = exc if code == 1 else None
        logger.error("%s", message, exc_info=trace, extra={"exit_code": code})
    else:
        typer.echo(f"error: {message}", err=True)
        if code == 1:
            logger.debug("%s stopped by this error:", name, exc_info=exc)
    return code


def run_command(command: Callable[..., Any], argv: list[str] | None, prog_name: str) -> int:
    """Run one Typer command as a whole program (``python -m <package>``); its exit code."""
    app = typer.Typer(add_completion=False, pretty_exceptions_enable=False, rich_markup_mode=None)
    app.command()(command)
    try:
        app(args=argv, prog_name=prog_name)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


def exit_with(code: int) -> None:
    """End a Typer command with ``code`` (nothing for 0)."""
    if code:
        raise typer.Exit(code)
