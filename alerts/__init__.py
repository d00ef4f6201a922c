"""FinSentinel alerting: sentiment trends, spike detection and notifications.

The core is pure and clock-free (:class:`AlertEngine`: aggregation, detectors,
lifecycle), so the live service, replays and backtests make the same
decisions; :class:`AlertService` wraps it with Kafka, SQLite checkpoints,
apscheduler evaluation, metrics and notification channels.

Names are imported lazily, so ``finsentinel --help`` does not load numpy,
scipy or Kafka.
"""

from __future__ import annotations

import importlib
from typing import Final

__all__ = [
    "DEFAULT_RULES_PATH",
    "AlertEngine",
    "AlertError",
    "AlertService",
    "AlertSettings",
    "NotifyError",
    "Rule",
    "RulesError",
    "RulesFile",
    "load_rules",
    "parse_rules",
]

_HOME: Final = {
    "DEFAULT_RULES_PATH": "alerts.settings",
    "AlertEngine": "alerts.engine",
    "AlertError": "alerts.exceptions",
    "AlertService": "alerts.service",
    "AlertSettings": "alerts.settings",
    "NotifyError": "alerts.exceptions",
    "Rule": "alerts.rules",
    "RulesError": "alerts.exceptions",
    "RulesFile": "alerts.rules",
    "load_rules": "alerts.rules",
    "parse_rules": "alerts.rules",
}


def __getattr__(name: str) -> object:
    if name in _HOME:
        return getattr(importlib.import_module(_HOME[name]), name)
    raise AttributeError(f"module 'alerts' has no attribute {name!r}")
