"""robots.txt: fetched through the guarded fetcher, parsed by ``urllib.robotparser``, cached.

A ``Crawl-delay`` for our agent (or ``*``) widens the fetcher's per-host
interval. Per RFC 9309: a 4xx robots.txt means "no rules" (allow all); a 5xx or an
unreachable host means "disallow all" until it can be fetched again (cached
for a shorter time so recovery is noticed).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import urlsplit
from urllib.robotparser import RobotFileParser

from ingest.exceptions import FetchError, HTTPStatusError, RobotsDisallowedError
from ingest.http import Fetcher
from ingest.netguard import AllowPrivate

__all__ = ["RobotsCache"]

logger = logging.getLogger(__name__)

_MAX_ROBOTS_BYTES = 512 * 1024
_FAILURE_TTL_S = 300.0
#: A longer Crawl-delay is capped (it would park a worker for that long per request).
_MAX_CRAWL_DELAY_S = 120.0
_DISALLOW_ALL = ["User-agent: *", "Disallow: /"]


@dataclass
class _Entry:
    parser: RobotFileParser
    expires: float


class RobotsCache:
    """``check(url, allow_private)`` raises :class:`RobotsDisallowedError` when forbidden."""

    def __init__(
        self,
        fetcher: Fetcher,
        *,
        agent: str,
        ttl_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._fetcher = fetcher
        self._agent = agent
        self._ttl_s = ttl_s
        self._clock = clock
        self._lock = threading.Lock()
        self._cache: dict[str, _Entry] = {}

    def check(self, url: str, allow_private: AllowPrivate = False) -> None:
        """Raise if robots.txt of ``url``'s origin disallows it for our agent."""
        if not self.allowed(url, allow_private=allow_private):
            raise RobotsDisallowedError(f"{url}: disallowed by robots.txt for {self._agent}")

    def allowed(self, url: str, *, allow_private: AllowPrivate = False) -> bool:
        """True when our agent may fetch ``url``."""
        parts = urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}".lower()
        if parts.path == "/robots.txt":
            return True
        return self._parser(origin, allow_private).can_fetch(self._agent, url)

    def _parser(self, origin: str, allow_private: AllowPrivate) -> RobotFileParser:
        now = self._clock()
        with self._lock:
            entry = self._cache.get(origin)
        if entry is not None and entry.expires > now:
            return entry.parser
        parser, ttl = self._load(origin, allow_private)
        with self._lock:
            self._cache[origin] = _Entry(parser, now + ttl)
        return parser

    def _load(self, origin: str, allow_private: AllowPrivate) -> tuple[RobotFileParser, float]:
        parser = RobotFileParser(f"{origin}/robots.txt")
        try:
            resp = self._fetcher.get(
                f"{origin}/robots.txt",
                allow_private=allow_private,
                check_robots=False,
                max_bytes=_MAX_ROBOTS_BYTES,
            )
        except HTTPStatusError as exc:
            if 400 <= exc.status < 500 and exc.status != 429:
                parser.parse([])  # no rules: everything allowed
                return parser, self._ttl_s
            logger.warning("%s/robots.txt: %s; treating the site as disallowed", origin, exc)
            parser.parse(_DISALLOW_ALL)
            return parser, min(self._ttl_s, _FAILURE_TTL_S)
        except FetchError as exc:
            logger.warning("%s/robots.txt unreachable (%s); treating as disallowed", origin, exc)
            parser.parse(_DISALLOW_ALL)
            return parser, min(self._ttl_s, _FAILURE_TTL_S)
        parser.parse(resp.text().splitlines())
        delay = parser.crawl_delay(self._agent)
        if delay:
            host = (urlsplit(origin).hostname or "").lower()
            seconds = min(float(delay), _MAX_CRAWL_DELAY_S)
            self._fetcher.limiter.set_min_interval(host, seconds)
            logger.info("%s asks for a %s s crawl delay", origin, seconds)
        return parser, self._ttl_s
