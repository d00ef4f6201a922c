"""Secrets given through the environment are used, and never logged, printed or served.

Each service runs as its real entry point (``python -m stream|alerts|ingest``) at
DEBUG log level with distinctive fake secrets in its environment: a Kafka SASL
password, a webhook HMAC secret, an SMTP password, a Slack webhook URL token and
a crawler API token. Everything the processes write (stdout, stderr, logs) and
what their ``/metrics`` and ``/healthz`` answer is searched for every secret.
The crawler's token is also shown to be *used*: a local API receives it.
"""

from __future__ import annotations

import contextlib
import http.server
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import ClassVar

import httpx
import pytest

from tests.faults.harness import free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(240)]

REPO = Path(__file__).resolve().parents[2]
SECRETS = {
    "KAFKA_SASL_PASSWORD": "sasl-Pa55-4f9c1d",
    "FS_WEBHOOK_SECRET": "hmac-5ecr3t-8b2e77",
    "FS_SMTP_PASSWORD": "smtp-pw-1c3a9f",
    "FS_SLACK_WEBHOOK_URL": "https://hooks.slack.invalid/services/T0/B0/slacktok-77aa",
    "FS_API_TOKEN": "api-t0ken-d41d8c",
}
#: What to search for: the secret values (the Slack one by its token part).
NEEDLES = [v.rsplit("/", 1)[-1] for v in SECRETS.values()]

RULES = """
version: 1
rules:
  - {name: r, series: {kind: all}, detectors: [count], window: 5m, channels: ["*"]}
channels:
  - {name: hook, type: webhook, url: "http://127.0.0.1:9/hook", secret_env: FS_WEBHOOK_SECRET}
  - {name: desk, type: slack, url_env: FS_SLACK_WEBHOOK_URL}
  - {name: mail, type: email, smtp_host: 127.0.0.1, smtp_port: 9, starttls: false,
     username: alerts, password_env: FS_SMTP_PASSWORD, from_addr: a@example.com,
     to_addrs: [b@example.com]}
"""


class _Api(http.server.BaseHTTPRequestHandler):
    tokens: ClassVar[list[str]] = []

    def do_GET(self) -> None:
        _Api.tokens.append(self.headers.get("X-Api-Key", ""))
        body = json.dumps({"data": {"posts": [{"id": "1", "headline": "Acme up 5%"}]}}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return


@pytest.fixture
def api() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def _env(broker: str, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FINSENTINEL_", "KAFKA_"))}
    env.update(SECRETS)
    env.update(KAFKA_BOOTSTRAP_SERVERS=broker, FINSENTINEL_LOG_LEVEL="DEBUG", **extra)
    return env


def _run(
    argv: list[str],
    env: dict[str, str],
    port: int,
    seconds: float,
    until: Callable[[list[str]], bool] = lambda served: False,
) -> tuple[str, str]:
    """Run a service until ``until(served)`` holds, it exits or ``seconds`` passed (a busy
    machine may take long to start it); its output and what it served."""
    proc = subprocess.Popen(argv, env=env, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)  # fmt: skip
    served: list[str] = []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and proc.poll() is None and not until(served):
        for path in ("/healthz", "/metrics"):
            with contextlib.suppress(httpx.HTTPError):  # not listening yet, or already gone
                served.append(httpx.get(f"http://127.0.0.1:{port}{path}", timeout=2).text)
        time.sleep(1.0)
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=60)
    return out, "\n".join(served)


def _assert_clean(what: str, *texts: str) -> None:
    for needle in NEEDLES:
        for text in texts:
            assert needle not in text, f"{what} leaked {needle!r}"


def test_scorer_with_sasl_does_not_log_the_password() -> None:
    # No SASL broker here: the scorer gets a closed port, retries at DEBUG and gives up.
    port = free_port()
    env = _env(
        f"127.0.0.1:{free_port()}",
        KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT",
        KAFKA_SASL_MECHANISM="SCRAM-SHA-512",
        KAFKA_SASL_USERNAME="svc",
        KAFKA_BOOTSTRAP_TIMEOUT_MS="2000",
        FINSENTINEL_SCORER_METRICS_PORT=str(port),
        FINSENTINEL_SCORER_PROVIDER="cpu",
    )
    out, served = _run([sys.executable, "-m", "stream"], env, port, 40)
    assert "DEBUG" in out or "no Kafka broker" in out, out[-2000:]
    _assert_clean("python -m stream", out, served)


def test_alerts_with_channel_secrets_does_not_log_them(broker: str, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(RULES, encoding="utf-8")
    port = free_port()
    env = _env(
        broker,
        FINSENTINEL_ALERTS_RULES_PATH=str(rules),
        FINSENTINEL_ALERTS_DB_PATH=str(tmp_path / "a.sqlite"),
        FINSENTINEL_ALERTS_METRICS_PORT=str(port),
    )

    def ran(served: list[str]) -> bool:
        return any("finsentinel_alerts" in text for text in served)

    out, served = _run([sys.executable, "-m", "alerts"], env, port, 180, until=ran)
    assert "finsentinel_alerts" in served, out[-2000:]  # it ran and served its metrics
    assert "DEBUG" in out, out[-2000:]
    _assert_clean("python -m alerts", out, served)


def test_crawler_uses_its_api_token_and_does_not_log_it(
    broker: str, api: str, tmp_path: Path
) -> None:
    sources = tmp_path / "sources.yaml"
    sources.write_text(
        "sources:\n  - name: api\n    kind: json\n    url: " + api + "/v1/posts\n"
        "    allow_private_addresses: true\n"
        "    credentials: {env: FS_API_TOKEN, header: X-Api-Key}\n"
        "    mapping: {items: data.posts, id: id, title: headline}\n",
        encoding="utf-8",
    )
    port = free_port()
    env = _env(
        broker,
        FINSENTINEL_INGEST_SOURCES_FILE=str(sources),
        FINSENTINEL_INGEST_STATE_DIR=str(tmp_path / "state"),
        FINSENTINEL_INGEST_METRICS_PORT=str(port),
    )
    _Api.tokens.clear()

    def fetched(_served: list[str]) -> bool:
        return SECRETS["FS_API_TOKEN"] in _Api.tokens

    out, served = _run([sys.executable, "-m", "ingest"], env, port, 180, until=fetched)
    assert SECRETS["FS_API_TOKEN"] in _Api.tokens, out[-2000:]
    _assert_clean("python -m ingest", out, served)
