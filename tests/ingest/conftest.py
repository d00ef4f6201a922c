"""Fixtures for the crawler tests: a real HTTP server on 127.0.0.1 and a Kafka reader."""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
from kafka import TopicPartition

from ingest.settings import IngestSettings
from stream.kafka import KafkaSettings, make_consumer

FIXTURES = Path(__file__).parent / "fixtures"


@dataclass
class Reply:
    """One canned HTTP answer; ``stream_bytes`` sends that many bytes in chunks."""

    status: int = 200
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    stream_bytes: int = 0


Handler = Callable[[str, dict[str, list[str]], dict[str, str]], Reply]


class FixtureServer:
    """Serves routes by path: a Reply, a list of Replies (consumed in order), or a handler."""

    def __init__(self) -> None:
        self.routes: dict[str, Reply | list[Reply] | Handler] = {}
        self.hits: Counter[str] = Counter()
        self.requests: list[tuple[str, dict[str, str]]] = []
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), daemon=True
        )

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    def route(self, path: str, reply: Reply | list[Reply] | Handler) -> None:
        self.routes[path] = reply

    def _reply(self, path: str, query: dict[str, list[str]], headers: dict[str, str]) -> Reply:
        with self._lock:
            self.hits[path] += 1
            self.requests.append((path, headers))
            route = self.routes.get(path)
            if route is None:
                return Reply(404, b"not found")
            if isinstance(route, list):
                return route.pop(0) if len(route) > 1 else route[0]
        if isinstance(route, Reply):
            return route
        return route(path, query, headers)

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class H(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                parts = urlsplit(self.path)
                headers = {k.lower(): v for k, v in self.headers.items()}
                reply = server._reply(parts.path, parse_qs(parts.query), headers)
                self.send_response(reply.status)
                for k, v in reply.headers.items():
                    self.send_header(k, v)
                size = reply.stream_bytes or len(reply.body)
                if "X-No-Length" in reply.headers:
                    self.close_connection = True  # body ends when the connection closes
                    self.send_header("Connection", "close")
                else:
                    self.send_header("Content-Length", str(size))
                self.end_headers()
                try:
                    if reply.stream_bytes:
                        chunk = b"x" * 65_536
                        for _ in range(reply.stream_bytes // len(chunk)):
                            self.wfile.write(chunk)
                    else:
                        self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client aborted on purpose (size cap)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        return H

    def start(self) -> FixtureServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def server() -> Iterator[FixtureServer]:
    """A fresh HTTP server on 127.0.0.1 (robots.txt allows everything unless replaced)."""
    srv = FixtureServer().start()
    srv.route("/robots.txt", Reply(200, b"User-agent: *\nAllow: /\n"))
    yield srv
    srv.stop()


@pytest.fixture
def settings(tmp_path: Path) -> IngestSettings:
    """Fast settings: no politeness delay, tiny backoffs, state under tmp_path."""
    return IngestSettings(
        state_dir=tmp_path / "state",
        per_host_min_interval_s=0,
        retry_backoff_base_s=0.01,
        retry_backoff_max_s=0.05,
        max_retries=2,
        produce_timeout_s=30,
        metrics_port=0,
    )


def read_topic(
    kafka: KafkaSettings, topic: str, *, expect: int, timeout_s: float = 20
) -> list[Any]:
    """Every record of ``topic`` from the beginning, waiting until ``expect`` arrived.

    Reads by assignment (no group join); stops early once ``expect`` records are
    in and one more empty poll confirms nothing else follows.
    """
    consumer = make_consumer(kafka, group_id=None)
    try:
        partitions = consumer.partitions_for_topic(topic) or set()
        consumer.assign([TopicPartition(topic, p) for p in sorted(partitions)])
        consumer.seek_to_beginning()
        records: list[Any] = []
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            batch = consumer.poll(timeout_ms=500)
            got = [r for rs in batch.values() for r in rs]
            records.extend(got)
            if len(records) >= expect and not got:
                break
        return records
    finally:
        consumer.close()
