"""Process plumbing for services: logging set-up, graceful shutdown, shared CLI options."""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from types import FrameType
from typing import Annotated, Any

import typer
from rich.logging import RichHandler

__all__ = ["EmbeddedBrokerOpt", "StopFlag", "configure_logging", "run_command"]

#: ``--embedded-broker`` of every service command: allows
#: ``kafka_connection(..., allow_embedded=True)`` when ``KAFKA_BOOTSTRAP_SERVERS`` is unset.
EmbeddedBrokerOpt = Annotated[
    bool,
    typer.Option(
        "--embedded-broker",
        help="Without KAFKA_BOOTSTRAP_SERVERS, start a throw-away in-memory broker for "
        "local trials; data is lost on exit; never in production.",
    ),
]


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
