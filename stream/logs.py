"""Log output of every entry point: Rich lines for people, or one JSON object per line.

>>> import logging
>>> record = logging.LogRecord("x", logging.WARNING, __file__, 1, 'say "%s"', ("hi\\n",), None)
>>> entry = json.loads(JsonFormatter().format(record))
>>> entry["level"], entry["logger"], entry["msg"]
('WARNING', 'x', 'say "hi\\n"')
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from typing import Any

from pydantic import Field
from rich.logging import RichHandler

from stream.settings import ServiceSettings, SettingsConfigDict

__all__ = ["JsonFormatter", "LogSettings", "configure_logging", "warn_retired_settings"]

#: Attributes every LogRecord has; anything else was passed with ``extra=`` and is kept.
_STANDARD = frozenset(
    vars(logging.LogRecord("", 0, "", 0, "", None, None)).keys() | {"message", "asctime"}
)


class LogSettings(ServiceSettings):
    """Logging of every service: ``FINSENTINEL_LOG_LEVEL`` and ``FINSENTINEL_JSON_LOGS``.

    The ``--log-level`` and ``--json-logs`` options (before or after a subcommand) win.
    """

    model_config = SettingsConfigDict(env_prefix="FINSENTINEL_", extra="forbid", frozen=True)

    log_level: str = Field(default="INFO", pattern=r"(?i)^(DEBUG|INFO|WARNING|ERROR|CRITICAL)$")
    #: One JSON object per line (log collectors); tracebacks go in its ``exc_info`` field.
    json_logs: bool = False


class JsonFormatter(logging.Formatter):
    """One JSON object per record, valid whatever the message holds (built by ``json.dumps``).

    Keys: ``ts`` (UTC, ISO 8601), ``level``, ``logger``, ``msg``; ``exc_info`` (the
    traceback as text) and ``stack_info`` when present; values passed with ``extra=``.
    """

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "msg": record.getMessage(),
        }
        if record.exc_info:
            entry["exc_info"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exc_info"] = record.exc_text
        if record.stack_info:
            entry["stack_info"] = self.formatStack(record.stack_info)
        for key, value in vars(record).items():
            if key not in _STANDARD and key not in entry:
                entry[key] = value
        return json.dumps(entry, ensure_ascii=False, default=str)


def configure_logging(level: str = "INFO", *, json_logs: bool = False) -> None:
    """Configure the root logger; only entry points call this.

    Calling it again replaces the handler it added before (a service subcommand's
    ``--json-logs`` over the root command's choice); handlers that others added,
    such as pytest's log capture, stay.
    """
    root = logging.getLogger()
    for old in [h for h in root.handlers if getattr(h, _OURS, False)]:
        root.removeHandler(old)
    if json_logs:
        handler: logging.Handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
    else:
        handler = RichHandler(show_path=False, rich_tracebacks=False, log_time_format="%X")
    setattr(handler, _OURS, True)
    root.addHandler(handler)
    root.setLevel(level.upper())
    for noisy in ("kafka", "urllib3", "httpx", "apscheduler"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
    # kafka-python 3 warns whenever its I/O loop was held up for 0.1 s, which a busy
    # 2-core machine does all the time; real connection problems are logged as errors.
    logging.getLogger("kafka.net").setLevel(max(logging.ERROR, root.level))


_OURS = "finsentinel_handler"

#: Per-service logging variables of earlier releases; FINSENTINEL_LOG_LEVEL/_JSON_LOGS rule now.
_RETIRED = ("FINSENTINEL_ALERTS_LOG_LEVEL", "FINSENTINEL_INGEST_LOG_LEVEL",
            "FINSENTINEL_INGEST_JSON_LOGS")  # fmt: skip


def warn_retired_settings() -> None:
    """Warn about per-service logging variables that are set but no longer read."""
    for name in _RETIRED:
        if name in os.environ:
            logging.getLogger(__name__).warning(
                "%s is no longer read: use FINSENTINEL_%s", name, name.split("_", 2)[2]
            )
