"""Process plumbing for services: logging set-up and graceful shutdown."""

from __future__ import annotations

import logging
import signal
import threading
from types import FrameType

from rich.logging import RichHandler

__all__ = ["StopFlag", "configure_logging"]


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
