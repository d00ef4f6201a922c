"""The polite, defensive HTTP fetcher every source uses.

One :class:`Fetcher` is shared by all sources of a process, so its per-host
limits (concurrency and minimum interval) hold across sources. Each request:

* is checked by the SSRF guard (scheme, every resolved address), again on
  every redirect hop (redirects are followed here, not by httpx) and again at
  connect time;
* is checked against robots.txt (through an injected ``robots`` callable);
* carries the descriptive User-Agent and honours connect/read timeouts;
* is retried with exponential backoff and full jitter on 429, 5xx and network
  errors, honouring ``Retry-After`` (seconds or an HTTP date);
* streams the body and aborts once it passes the byte cap.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urljoin, urlsplit

import httpcore
import httpx

from ingest.exceptions import FetchError, HTTPStatusError, ResponseTooLargeError
from ingest.netguard import AddressGuard, AllowPrivate, GuardedBackend
from ingest.settings import IngestSettings
from ingest.textcodec import decode_body

__all__ = ["FetchResponse", "Fetcher", "HostLimiter", "parse_retry_after"]

logger = logging.getLogger(__name__)

_REDIRECTS = frozenset({301, 302, 303, 307, 308})
#: ``robots(url, allow_private) -> None``; raises RobotsDisallowedError when forbidden.
RobotsCheck = Callable[[str, AllowPrivate], None]


@dataclass(frozen=True)
class FetchResponse:
    """A completed response: final URL after redirects, status, headers, full body."""

    url: str
    status: int
    headers: Mapping[str, str]
    content: bytes
    elapsed_s: float = 0.0

    @property
    def not_modified(self) -> bool:
        """True for a 304 answer to a conditional GET."""
        return self.status == 304

    @property
    def content_type(self) -> str:
        """The media type without parameters, lower-cased."""
        return self.headers.get("content-type", "").split(";")[0].strip().lower()

    def text(self) -> str:
        """The body decoded by its declared, sniffed or guessed charset."""
        return decode_body(self.content, self.headers.get("content-type", ""))


def parse_retry_after(value: str | None, *, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or HTTP date).

    >>> now = datetime(2026, 1, 1, tzinfo=UTC)
    >>> parse_retry_after("7", now=now), parse_retry_after("Thu, 01 Jan 2026 00:00:30 GMT", now=now)
    (7.0, 30.0)
    >>> parse_retry_after("soon", now=now) is None
    True
    """
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


class HostLimiter:
    """Per-host concurrency cap and minimum interval between request starts."""

    def __init__(
        self,
        *,
        concurrency: int,
        min_interval_s: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self._concurrency = concurrency
        self._min_interval_s = min_interval_s
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        self._next_start: dict[str, float] = {}
        self._interval_s: dict[str, float] = {}

    def set_min_interval(self, host: str, seconds: float) -> None:
        """Space requests to ``host`` at least ``seconds`` apart (robots.txt Crawl-delay)."""
        with self._lock:
            self._interval_s[host] = max(self._min_interval_s, seconds)

    def acquire(self, host: str) -> None:
        """Block until a request to ``host`` may start."""
        with self._lock:
            slot = self._slots.setdefault(host, threading.BoundedSemaphore(self._concurrency))
        slot.acquire()
        with self._lock:
            now = self._clock()
            start = max(now, self._next_start.get(host, now))
            self._next_start[host] = start + self._interval_s.get(host, self._min_interval_s)
        if start > now:
            try:
                self._sleep(start - now)
            except BaseException:
                slot.release()  # a cancelled wait must not leak the slot
                raise

    def release(self, host: str) -> None:
        """Give back the slot taken by :meth:`acquire`."""
        self._slots[host].release()


def _transport(guard: AddressGuard, *, allow_private: AllowPrivate) -> httpx.HTTPTransport:
    transport = httpx.HTTPTransport()
    # httpx has no public hook for the network backend: swap in a pool whose
    # backend re-checks and pins the address at connect time.
    transport._pool = httpcore.ConnectionPool(
        ssl_context=httpx.create_ssl_context(),
        max_connections=100,
        max_keepalive_connections=20,
        keepalive_expiry=5.0,
        network_backend=GuardedBackend(guard, allow_private=allow_private),
    )
    return transport


@dataclass
class Fetcher:
    """Shared HTTP client for every source; see the module docstring for the rules."""

    settings: IngestSettings
    guard: AddressGuard = field(default_factory=AddressGuard)
    robots: RobotsCheck | None = None
    #: ``transport(allow_private) -> httpx.BaseTransport``; tests may inject their own.
    transport: Callable[[AllowPrivate], httpx.BaseTransport] | None = None
    sleep: Callable[[float], None] = time.sleep
    rng: random.Random = field(default_factory=random.Random)
    wall_clock: Callable[[], datetime] = lambda: datetime.now(UTC)

    def __post_init__(self) -> None:
        s = self.settings
        self.limiter = HostLimiter(
            concurrency=s.per_host_concurrency,
            min_interval_s=s.per_host_min_interval_s,
            sleep=self.sleep,
        )
        self._clients: dict[AllowPrivate, httpx.Client] = {}
        self._lock = threading.Lock()

    def _client(self, allow_private: AllowPrivate) -> httpx.Client:
        with self._lock:
            if allow_private not in self._clients:
                make = self.transport or (lambda p: _transport(self.guard, allow_private=p))
                s = self.settings
                self._clients[allow_private] = httpx.Client(
                    transport=make(allow_private),
                    follow_redirects=False,
                    trust_env=False,
                    timeout=httpx.Timeout(
                        s.read_timeout_s, connect=s.connect_timeout_s, pool=s.read_timeout_s
                    ),
                    headers={"User-Agent": s.user_agent, "Accept-Encoding": "gzip, deflate"},
                )
            return self._clients[allow_private]

    def close(self) -> None:
        """Close the underlying connection pools."""
        with self._lock:
            for client in self._clients.values():
                client.close()
            self._clients.clear()

    def get(
        self,
        url: str,
        *,
        allow_private: AllowPrivate = False,
        headers: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        check_robots: bool = True,
        max_bytes: int | None = None,
        secret_headers: Sequence[str] = (),
    ) -> FetchResponse:
        """GET ``url`` following the rules; 2xx and 304 return, anything else raises.

        On a redirect to another origin, ``Authorization``, ``Cookie`` and the
        ``secret_headers`` are dropped, so credentials never follow a redirect.
        """
        s = self.settings
        attempt = 0
        while True:
            try:
                return self._follow(
                    url, allow_private, headers, params, check_robots, max_bytes, secret_headers
                )
            except HTTPStatusError as exc:
                if not exc.retriable or attempt >= s.max_retries:
                    raise
                delay = self._retry_delay(attempt, exc.retry_after_s)
                if delay > s.retry_after_max_s:
                    raise FetchError(
                        f"{url}: server asks to retry after {delay:.0f} s "
                        f"(> retry_after_max_s={s.retry_after_max_s:.0f})"
                    ) from exc
                logger.info("%s: HTTP %s, retry %s in %.1f s", url, exc.status, attempt + 1, delay)
            except FetchError as exc:
                if attempt >= s.max_retries:
                    raise
                delay = self._retry_delay(attempt, None)
                logger.info("%s: %s, retry %s in %.1f s", url, exc, attempt + 1, delay)
            attempt += 1
            self.sleep(delay)

    def _retry_delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return retry_after
        s = self.settings
        cap = min(s.retry_backoff_max_s, s.retry_backoff_base_s * 2**attempt)
        return self.rng.uniform(0, cap)

    def _follow(
        self,
        url: str,
        allow_private: AllowPrivate,
        headers: Mapping[str, str] | None,
        params: Mapping[str, str] | None,
        check_robots: bool,
        max_bytes: int | None,
        secret_headers: Sequence[str] = (),
    ) -> FetchResponse:
        started = time.monotonic()
        for _hop in range(self.settings.max_redirects + 1):
            self.guard.check_url(url, allow_private=allow_private)
            if check_robots and self.robots is not None and self.settings.respect_robots:
                self.robots(url, allow_private)
            status, resp_headers, body, location = self._request(
                url, allow_private, headers, params, max_bytes
            )
            if status in _REDIRECTS and location:
                target = urljoin(url, location)
                if _origin(target) != _origin(url):
                    headers = _without_secrets(headers, secret_headers)
                url, params = target, None
                continue
            if 200 <= status < 300 or status == 304:
                return FetchResponse(url, status, resp_headers, body, time.monotonic() - started)
            wait_s = parse_retry_after(resp_headers.get("retry-after"), now=self.wall_clock())
            raise HTTPStatusError(status, url, retry_after_s=wait_s)
        raise FetchError(f"{url}: more than {self.settings.max_redirects} redirects")

    def _request(
        self,
        url: str,
        allow_private: AllowPrivate,
        headers: Mapping[str, str] | None,
        params: Mapping[str, str] | None,
        max_bytes: int | None,
    ) -> tuple[int, dict[str, str], bytes, str | None]:
        cap = max_bytes or self.settings.max_response_bytes
        host = (urlsplit(url).hostname or "").lower()
        self.limiter.acquire(host)
        try:
            with self._client(allow_private).stream(
                "GET", url, headers=dict(headers or {}), params=dict(params or {})
            ) as resp:
                resp_headers = {k.lower(): v for k, v in resp.headers.items()}
                if resp.status_code in _REDIRECTS or resp.status_code >= 400:
                    return resp.status_code, resp_headers, b"", resp_headers.get("location")
                return resp.status_code, resp_headers, _read_capped(resp, cap, url), None
        except httpx.TransportError as exc:
            raise FetchError(f"{url}: {type(exc).__name__}: {exc}") from exc
        except httpx.InvalidURL as exc:
            raise FetchError(f"{url}: invalid URL: {exc}") from exc
        finally:
            self.limiter.release(host)


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme.lower(), (parts.hostname or "").lower(), parts.port


_ALWAYS_SECRET = frozenset({"authorization", "proxy-authorization", "cookie"})


def _without_secrets(
    headers: Mapping[str, str] | None, secret: Sequence[str]
) -> dict[str, str] | None:
    if not headers:
        return None
    drop = _ALWAYS_SECRET | {h.lower() for h in secret}
    return {k: v for k, v in headers.items() if k.lower() not in drop}


def _read_capped(resp: httpx.Response, cap: int, url: str) -> bytes:
    declared = resp.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > cap:
        raise ResponseTooLargeError(f"{url}: Content-Length {declared} > cap {cap} bytes")
    body = bytearray()
    for chunk in resp.iter_bytes():
        body += chunk
        if len(body) > cap:
            raise ResponseTooLargeError(f"{url}: body passed the {cap}-byte cap; aborted")
    return bytes(body)
