"""Kafka SASL (PLAIN/SCRAM) and TLS settings reach every client; the password never shows.

No SASL/TLS broker can run here, so these tests check the settings and the client
keyword arguments, plus a source scan proving every Kafka client is built by the
``stream.kafka`` factories (which pass ``client_kwargs()``): no service can
bypass the security settings.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from stream.contracts.errors import ConfigError
from stream.kafka import KafkaSettings

REPO = Path(__file__).resolve().parents[2]
SECRET = "sasl-Pa55-4f9c1d"  # distinctive, so a leak is found by grep


@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_settings_reach_the_client_kwargs(
    protocol: str, mechanism: str, tmp_path: Path
) -> None:
    ca = tmp_path / "ca.pem"
    settings = KafkaSettings(
        bootstrap_servers="k1:9093,k2:9093",
        security_protocol=protocol,  # type: ignore[arg-type]
        sasl_mechanism=mechanism,  # type: ignore[arg-type]
        sasl_username="finsentinel",
        sasl_password=SECRET,  # type: ignore[arg-type]
        ssl_cafile=ca,
    )
    kwargs = settings.client_kwargs()
    assert kwargs["security_protocol"] == protocol
    assert kwargs["sasl_mechanism"] == mechanism
    assert kwargs["sasl_plain_username"] == "finsentinel"
    assert kwargs["sasl_plain_password"] == SECRET
    if protocol == "SASL_SSL":
        assert kwargs["ssl_cafile"] == str(ca) and kwargs["ssl_check_hostname"] is True
    else:
        assert "ssl_cafile" not in kwargs
    assert SECRET not in repr(settings) and SECRET not in str(settings)
    assert SECRET not in settings.model_dump_json()


def test_tls_client_certificates_reach_the_client_kwargs(tmp_path: Path) -> None:
    files = {n: tmp_path / f"{n}.pem" for n in ("ca", "cert", "key")}
    kwargs = KafkaSettings(
        bootstrap_servers="k1:9093", security_protocol="SSL",
        ssl_cafile=files["ca"], ssl_certfile=files["cert"], ssl_keyfile=files["key"],
    ).client_kwargs()  # fmt: skip
    assert kwargs["ssl_certfile"] == str(files["cert"]) and kwargs["ssl_keyfile"] == str(
        files["key"]
    )


def test_sasl_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", "k1:9093")
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("KAFKA_SASL_MECHANISM", "SCRAM-SHA-512")
    monkeypatch.setenv("KAFKA_SASL_USERNAME", "svc")
    monkeypatch.setenv("KAFKA_SASL_PASSWORD", SECRET)
    settings = KafkaSettings()
    assert settings.client_kwargs()["sasl_plain_password"] == SECRET
    assert SECRET not in repr(settings)


@pytest.mark.parametrize("missing", ["sasl_mechanism", "sasl_username", "sasl_password"])
def test_incomplete_sasl_is_refused_at_start_up(missing: str) -> None:
    values = {"sasl_mechanism": "PLAIN", "sasl_username": "u", "sasl_password": SECRET}
    del values[missing]
    with pytest.raises((ConfigError, ValueError), match=f"KAFKA_{missing.upper()}"):
        KafkaSettings(bootstrap_servers="k:1", security_protocol="SASL_SSL", **values)  # type: ignore[arg-type]


def test_every_kafka_client_is_built_by_the_stream_kafka_factories() -> None:
    direct = re.compile(r"\b(KafkaProducer|KafkaConsumer|KafkaAdminClient)\(")
    offenders = [
        f"{path.relative_to(REPO)}:{n}"
        for pkg in ("ingest", "stream", "alerts", "models")
        for path in (REPO / pkg).rglob("*.py")
        if path != REPO / "stream" / "kafka.py"
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if direct.search(line)
    ]
    assert not offenders, f"Kafka clients built outside stream.kafka: {offenders}"
