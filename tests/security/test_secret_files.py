"""Secrets can come from files named by ``*_FILE`` variables (Docker/Kubernetes secrets).

Covers the Kafka SASL password (``KAFKA_SASL_PASSWORD_FILE``), the alert channels'
``*_env`` secrets (``<NAME>_FILE``) and the crawler's credentials (``<ENV>_FILE``).
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from alerts.exceptions import ChannelConfigError
from alerts.notify import build_notifiers
from alerts.rules import parse_rules
from ingest.config import Credentials
from ingest.exceptions import SourceConfigError
from stream.contracts.errors import ConfigError
from stream.kafka import KafkaSettings

SECRET = "file-s3cret-9e1f"


@pytest.fixture
def secret_file(tmp_path: Path) -> Path:
    path = tmp_path / "secret"
    path.write_text(SECRET + "\n", encoding="utf-8")  # trailing newline as `echo` writes it
    path.chmod(0o600)
    return path


def test_kafka_sasl_password_from_a_file(
    secret_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("KAFKA_SASL_PASSWORD_FILE", str(secret_file))
    settings = KafkaSettings(bootstrap_servers="k:9093", security_protocol="SASL_SSL",
                             sasl_mechanism="SCRAM-SHA-512", sasl_username="svc")  # fmt: skip
    assert settings.client_kwargs()["sasl_plain_password"] == SECRET
    assert SECRET not in repr(settings)


def test_kafka_unreadable_password_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises((ConfigError, ValueError), match="KAFKA_SASL_PASSWORD_FILE"):
        KafkaSettings(bootstrap_servers="k:9093", security_protocol="SASL_SSL",
                      sasl_mechanism="PLAIN", sasl_username="svc",
                      sasl_password_file=tmp_path / "missing")  # fmt: skip


def test_alert_channel_secret_from_a_file(secret_file: Path) -> None:
    rules = parse_rules(
        "rules: [{name: r, series: {kind: all}}]\nchannels:\n"
        "  - {name: hook, type: webhook, url: 'https://h.example/x', secret_env: HOOK_SECRET}\n"
    )
    notifiers = build_notifiers(
        rules.channels, env={"HOOK_SECRET_FILE": str(secret_file)}, clock=time.time
    )
    assert notifiers["hook"]._secret.get_secret_value() == SECRET  # type: ignore[attr-defined]
    with pytest.raises(ChannelConfigError, match="HOOK_SECRET_FILE"):
        build_notifiers(rules.channels, env={"HOOK_SECRET_FILE": "/nonexistent"}, clock=time.time)


def test_crawler_credentials_from_a_file(
    secret_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FS_API_TOKEN", raising=False)
    monkeypatch.setenv("FS_API_TOKEN_FILE", str(secret_file))
    creds = Credentials(env="FS_API_TOKEN", prefix="Bearer ")
    assert creds.secret().get_secret_value() == f"Bearer {SECRET}"
    monkeypatch.setenv("FS_API_TOKEN_FILE", "/nonexistent")
    with pytest.raises(SourceConfigError, match="FS_API_TOKEN_FILE"):
        creds.secret()
