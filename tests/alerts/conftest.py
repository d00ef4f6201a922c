"""Real receivers for notification tests: HTTP (HMAC-checking), SMTP and Alertmanager."""

from __future__ import annotations

import shutil
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest

from alerts.notify.webhook import (
    DEFAULT_TOLERANCE_S,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    verify,
)

ALERTMANAGER = "/usr/bin/prometheus-alertmanager"
SECRET = b"test-secret"


@dataclass
class Receiver:
    """An HTTP receiver on 127.0.0.1 that records bodies and verifies the HMAC signature
    and the timestamp's freshness, as a production receiver would."""

    url: str = ""
    bodies: list[bytes] = field(default_factory=list)
    signatures_ok: list[bool] = field(default_factory=list)
    headers: list[dict[str, str]] = field(default_factory=list)
    #: The receiver's own clock, which the request's timestamp must be close to.
    clock: Callable[[], float] = time.time
    #: Raise to ``math.inf`` when the sender runs on a simulated clock (signature only).
    tolerance_s: float = DEFAULT_TOLERANCE_S
    fail_next: int = 0  # answer ``fail_status`` to this many requests first
    fail_status: int = 500
    attempts: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            with rec.lock:
                rec.attempts += 1
                failing = rec.fail_next > 0
                if failing:
                    rec.fail_next -= 1
                else:
                    rec.bodies.append(body)
                    rec.headers.append(dict(self.headers))
                    ok = verify(
                        SECRET,
                        body,
                        self.headers.get(TIMESTAMP_HEADER, ""),
                        self.headers.get(SIGNATURE_HEADER, ""),
                        now=rec.clock(),
                        tolerance_s=rec.tolerance_s,
                    )
                    rec.signatures_ok.append(ok)
            self.send_response(rec.fail_status if failing else 200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    rec.url = f"http://127.0.0.1:{server.server_address[1]}/hook"
    yield rec
    server.shutdown()
    server.server_close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="session")
def alertmanager(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real Alertmanager 0.25 on a free port (clustering off, temp storage)."""
    if not shutil.which(ALERTMANAGER):
        pytest.skip(f"{ALERTMANAGER} is missing: apt-get install prometheus-alertmanager")
    base = tmp_path_factory.mktemp("alertmanager")
    config = base / "alertmanager.yml"
    config.write_text("route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n")
    port = _free_port()
    log = (base / "alertmanager.log").open("wb")
    proc = subprocess.Popen(
        [
            ALERTMANAGER,
            f"--config.file={config}",
            f"--storage.path={base / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(url, proc, base / "alertmanager.log")
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=10)
        log.close()


def _wait_ready(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.skip(f"Alertmanager exited at start-up: {log.read_text()[-500:]}")
        try:
            if httpx.get(url + "/-/ready", timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    pytest.skip("Alertmanager did not become ready within 30 s")
