"""Metrics and health endpoints bind to loopback by default, and to what ``*_METRICS_HOST`` says."""

from __future__ import annotations

import os
import socket

import pytest
from prometheus_client import CollectorRegistry
from pydantic_settings import BaseSettings

from alerts.settings import AlertSettings
from ingest.settings import IngestSettings
from stream.http import MetricsServer
from stream.scorer.settings import ScorerSettings

SERVICES: list[tuple[type[BaseSettings], str]] = [
    (ScorerSettings, "FINSENTINEL_SCORER_"),
    (AlertSettings, "FINSENTINEL_ALERTS_"),
    (IngestSettings, "FINSENTINEL_INGEST_"),
]


@pytest.mark.parametrize(("settings", "prefix"), SERVICES, ids=lambda v: getattr(v, "__name__", v))
def test_metrics_host_is_loopback_by_default_and_configurable(
    settings: type[BaseSettings], prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in list(os.environ):
        if name.startswith(prefix):
            monkeypatch.delenv(name)
    assert settings().metrics_host == "127.0.0.1"  # type: ignore[attr-defined]
    monkeypatch.setenv(f"{prefix}METRICS_HOST", "10.1.2.3")
    assert settings().metrics_host == "10.1.2.3"  # type: ignore[attr-defined]


def test_the_server_listens_only_on_the_configured_address() -> None:
    server = MetricsServer(CollectorRegistry(), host="127.0.0.1", port=0).start()
    try:
        host, port = server._server.server_address[:2]  # the bound socket, read-only
        assert host == "127.0.0.1"
        other = _non_loopback_address()
        if other is not None:
            with pytest.raises(OSError), socket.create_connection((other, port), timeout=1):
                pass
    finally:
        server.stop()


def _non_loopback_address() -> str | None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        try:
            s.connect(("192.0.2.1", 9))  # no packet is sent; picks the outgoing interface
        except OSError:
            return None
        address = str(s.getsockname()[0])
    return None if address.startswith("127.") else address
