"""``python -m alerts``: run the alerting service (settings from ``FINSENTINEL_ALERTS_*``).

The same command as ``finsentinel alert`` (:func:`alerts.cli.alert`), launched the
same way (:func:`stream.runtime.launch`): Kafka from ``KAFKA_*`` (without
``KAFKA_BOOTSTRAP_SERVERS`` the service refuses to start unless
``--embedded-broker`` asks for a throw-away in-memory broker), ``--log-level`` and
``--json-logs``, and exit codes 0 after SIGTERM/Ctrl+C, 2 invalid settings or
rules (one line), 1 the service could not run (one line).
"""

from __future__ import annotations

import sys

from alerts.cli import alert
from stream.runtime import run_command

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m alerts``."""
    return run_command(alert, argv, "python -m alerts")


if __name__ == "__main__":
    sys.exit(main())
