"""Scorer settings for tests (a plain module: conftest and test modules import it)."""

from __future__ import annotations

from typing import Any

from stream.scorer.settings import ScorerSettings


def scorer_settings(group_id: str, **overrides: Any) -> ScorerSettings:
    """Scorer settings for tests: any free metrics port, short waits, one ONNX thread."""
    values: dict[str, Any] = {
        "group_id": group_id,
        "metrics_port": 0,
        "batch_max_wait_ms": 50,
        "idle_poll_ms": 100,
        "intra_op_threads": 1,
        **overrides,
    }
    return ScorerSettings(**values)
