"""The ``/metrics`` and ``/healthz`` endpoint every service exposes.

A service may add read-only routes of its own (the alerts service serves its
open alerts there): ``routes`` maps a path prefix to a function of the request
path that returns an :class:`HttpResponse`.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest

__all__ = ["HttpResponse", "MetricsServer", "Route"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class HttpResponse:
    """What a route answers: status, body and content type."""

    status: int
    body: bytes
    content_type: str = "text/plain; charset=utf-8"


#: A read-only route: the request path (without the query string) -> the response.
Route = Callable[[str], HttpResponse]


def _route_for(routes: Mapping[str, Route], path: str) -> Route | None:
    """The route whose prefix is ``path`` or a parent of it (``/alerts`` serves
    ``/alerts/x``, not ``/alertsx``); the longest prefix wins."""
    for prefix in sorted(routes, key=len, reverse=True):
        if path == prefix or path.startswith(prefix.rstrip("/") + "/"):
            return routes[prefix]
    return None


class MetricsServer:
    """Serve Prometheus metrics and a readiness probe on a background thread.

    ``GET /metrics`` renders ``registry``; ``GET /healthz`` answers 200 when
    ``ready()`` is true and 503 otherwise, with a one-line reason from
    ``status()``. ``port=0`` picks a free port (see :attr:`port`). Further GET
    routes come from ``routes`` (path prefix -> :data:`Route`); a route that raises
    answers 500 and is logged.
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        ready: Callable[[], bool] = lambda: True,
        status: Callable[[], str] = lambda: "ok",
        routes: Mapping[str, Route] | None = None,
    ) -> None:
        reserved = {"/metrics", "/healthz"} & set(routes or {})
        if reserved:
            raise ValueError(f"routes must not replace {sorted(reserved)}")
        self.registry = registry
        self.routes = dict(routes or {})
        self._ready = ready
        self._status = status
        self._server = ThreadingHTTPServer((host, port), self._handler())
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        """The bound address."""
        return str(self._server.server_address[0])

    @property
    def port(self) -> int:
        """The bound port."""
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        """Base URL, e.g. ``http://127.0.0.1:9100``."""
        return f"http://{self.host}:{self.port}"

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                route = _route_for(server.routes, path)
                if path == "/metrics":
                    self._send(200, generate_latest(server.registry), CONTENT_TYPE_LATEST)
                elif path == "/healthz":
                    ok = server._ready()
                    body = f"{'ok' if ok else 'not ready'}: {server._status()}\n".encode()
                    self._send(200 if ok else 503, body, "text/plain; charset=utf-8")
                elif route is not None:
                    self._answer(route, path)
                else:
                    self._send(404, b"not found\n", "text/plain; charset=utf-8")

            def _answer(self, route: Route, path: str) -> None:
                try:
                    response = route(path)
                except Exception:  # one bad request must not stop the server thread
                    logger.exception("GET %s failed", path)
                    response = HttpResponse(500, b"internal error\n")
                self._send(response.status, response.body, response.content_type)

            def _send(self, code: int, body: bytes, ctype: str) -> None:
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                # Read-only pages: no scripts, no framing, no content sniffing.
                self.send_header("X-Content-Type-Options", "nosniff")
                self.send_header(
                    "Content-Security-Policy",
                    "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'none'",
                )
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: object) -> None:
                logger.debug("%s " + format, self.address_string(), *args)

        return Handler

    def start(self) -> MetricsServer:
        """Start serving in a daemon thread."""
        self._thread = threading.Thread(
            target=self._server.serve_forever, name="metrics-http", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and release the port."""
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
