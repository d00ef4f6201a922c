"""The guarded fetcher against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import ipaddress
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import pytest

from ingest.exceptions import (
    BlockedURLError,
    FetchError,
    HTTPStatusError,
    ResponseTooLargeError,
    RobotsDisallowedError,
)
from ingest.http import Fetcher
from ingest.netguard import AddressGuard, system_resolve
from ingest.robots import RobotsCache
from ingest.settings import IngestSettings
from tests.ingest.conftest import FixtureServer, Reply

LOOPBACK = (ipaddress.ip_network("127.0.0.0/8"),)


MakeFetcher = Callable[..., tuple[Fetcher, list[float]]]


@pytest.fixture
def make_fetcher() -> Iterator[MakeFetcher]:
    """Fetchers with robots checks and a recording sleep; closed after the test."""
    made: list[Fetcher] = []

    def make(settings: IngestSettings, **kwargs: Any) -> tuple[Fetcher, list[float]]:
        sleeps: list[float] = []
        kwargs.setdefault("sleep", sleeps.append)
        fetcher = Fetcher(settings, **kwargs)
        fetcher.robots = RobotsCache(fetcher, agent=settings.user_agent_product, ttl_s=60).check
        made.append(fetcher)
        return fetcher, sleeps

    yield make
    for fetcher in made:
        fetcher.close()


def test_user_agent_names_the_bot_and_its_contact(
    server: FixtureServer, settings: IngestSettings, make_fetcher: MakeFetcher
) -> None:
    server.route("/a", Reply(200, b"ok"))
    fetcher, _ = make_fetcher(settings)
    assert fetcher.get(server.url("/a"), allow_private=True).content == b"ok"
    ua = server.requests[-1][1]["user-agent"]
    assert ua == settings.user_agent and settings.contact_url in ua


def test_429_with_retry_after_seconds_then_success(
    server: FixtureServer, settings: IngestSettings, make_fetcher: MakeFetcher
) -> None:
    server.route("/feed", [Reply(429, headers={"Retry-After": "3"}), Reply(200, b"fine")])
    fetcher, sleeps = make_fetcher(settings)
    assert fetcher.get(server.url("/feed"), allow_private=True).content == b"fine"
    assert sleeps == [3.0]
    assert server.hits["/feed"] == 2


def test_retry_after_as_http_date(
    server: FixtureServer, settings: IngestSettings, make_fetcher: MakeFetcher
) -> None:
    now = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)
    when = format_datetime(now + timedelta(seconds=42), usegmt=True)
    server.route("/feed", [Reply(503, headers={"Retry-After": when}), Reply(200, b"fine")])
    fetcher, sleeps = make_fetcher(settings, wall_clock=lambda: now)
    assert fetcher.get(server.url("/feed"), allow_private=True).content == b"fine"
    assert sleeps == [42.0]


def test_5xx_backoff_is_exponential_with_jitter_and_gives_up(
    server: FixtureServer, settings: IngestSettings, make_fetcher: MakeFetcher
) -> None:
    server.route("/down", Reply(500, b"boom"))
    fetcher, sleeps = make_fetcher(settings)
    with pytest.raises(HTTPStatusError) as info:
        fetcher.get(server.url("/down"), allow_private=True)
    assert info.value.status == 500 and info.value.retriable
    assert server.hits["/down"] == settings.max_retries + 1
    caps = [
        min(settings.retry_backoff_max_s, settings.retry_backoff_base_s * 2**i) for i in range(2)
    ]
    assert all(0 <= s <= cap for s, cap in zip(sleeps, caps, strict=True))


def test_retry_after_beyond_the_limit_fails_instead_of_blocking(
    server: FixtureServer, settings: IngestSettings, make_fetcher: MakeFetcher
) -> None:
    server.route("/slow", Reply(429, headers={"Retry-After": "86400"}))
    fetcher, sleeps = make_fetcher(settings)
    with pytest.raises(FetchError, match="retry after"):
        fetcher.get(server.url("/slow"), allow_private=True)
    assert sleeps == []


def test_404_is_final_and_not_retried(
    server: FixtureServer, settings: IngestSettings, make_fetcher: MakeFetcher
) -> None:
    fetcher, _ = make_fetcher(settings)
    with pytest.raises(HTTPStatusError) as info:
        fetcher.get(server.url("/missing"), allow_private=True)
    assert info.value.status == 404 and not info.value.retriable
    assert server.hits["/missing"] == 1


@pytest.mark.parametrize("target", ["http://10.0.0.1/latest", "http://169.254.169.254/meta-data/"])
def test_redirect_to_private_address_is_refused_before_connecting(
    server: FixtureServer, settings: IngestSettings, target: str, make_fetcher: MakeFetcher
) -> None:
    server.route("/feed", Reply(302, headers={"Location": target}))
    resolved: list[str] = []

    def resolve(host: str, port: int) -> list[str]:
        resolved.append(host)
        return system_resolve(host, port)  # IP literals: no DNS query is sent

    fetcher, _ = make_fetcher(settings, guard=AddressGuard(resolve))
    with pytest.raises(BlockedURLError, match="non-public address"):
        fetcher.get(server.url("/feed"), allow_private=LOOPBACK)
    assert server.hits["/feed"] == 1
    # The target was resolved (to check it) but no request went anywhere else.
    assert resolved[-1] == target.split("/")[2]


def test_metadata_address_is_refused_even_when_private_addresses_are_allowed(
    server: FixtureServer, settings: IngestSettings, make_fetcher: MakeFetcher
) -> None:
    server.route("/feed", Reply(301, headers={"Location": "http://169.254.169.254/"}))
    fetcher, _ = make_fetcher(settings)
    with pytest.raises(BlockedURLError):
        fetcher.get(server.url("/feed"), allow_private=True)


def test_loopback_is_refused_by_default(
    server: FixtureServer, settings: IngestSettings, make_fetcher: MakeFetcher
) -> None:
    fetcher, _ = make_fetcher(settings)
    with pytest.raises(BlockedURLError):
        fetcher.get(server.url("/robots.txt"))
    assert server.hits["/robots.txt"] == 0


def test_redirect_to_another_scheme_is_refused(
    server: FixtureServer, settings: IngestSettings, make_fetcher: MakeFetcher
) -> None:
    server.route("/feed", Reply(302, headers={"Location": "file:///etc/passwd"}))
    fetcher, _ = make_fetcher(settings)
    with pytest.raises(BlockedURLError, match="only http and https"):
        fetcher.get(server.url("/feed"), allow_private=True)


def test_dns_rebinding_is_caught_at_connect_time(
    server: FixtureServer, settings: IngestSettings, make_fetcher: MakeFetcher
) -> None:
    port = server.base.rsplit(":", 1)[1]
    answers = iter([["127.0.0.1"], ["169.254.169.254"]])

    def rebinding(host: str, _port: int) -> list[str]:
        return next(answers)  # first answer passes the pre-check, the second is the attack

    fetcher, _ = make_fetcher(settings, guard=AddressGuard(rebinding))
    with pytest.raises(BlockedURLError):
        fetcher.get(
            f"http://feeds.rebind.test:{port}/robots.txt", allow_private=True, check_robots=False
        )
    assert server.hits["/robots.txt"] == 0


def test_redirects_are_followed_within_policy(
    server: FixtureServer, settings: IngestSettings, make_fetcher: MakeFetcher
) -> None:
    server.route("/old", Reply(301, headers={"Location": "/new"}))
    server.route("/new", Reply(200, b"moved"))
    fetcher, _ = make_fetcher(settings)
    resp = fetcher.get(server.url("/old"), allow_private=True)
    assert resp.content == b"moved" and resp.url == server.url("/new")


def test_50_mb_response_is_aborted_at_the_cap(
    server: FixtureServer, settings: IngestSettings, make_fetcher: MakeFetcher
) -> None:
    server.route("/huge", Reply(200, stream_bytes=50 * 1024 * 1024))
    capped = settings.model_copy(update={"max_response_bytes": 1_000_000})
    fetcher, _ = make_fetcher(capped)
    with pytest.raises(ResponseTooLargeError, match="1000000"):
        fetcher.get(server.url("/huge"), allow_private=True)


def test_body_without_length_is_aborted_while_streaming(
    server: FixtureServer, settings: IngestSettings, make_fetcher: MakeFetcher
) -> None:
    server.route("/huge", Reply(200, stream_bytes=50 * 1024 * 1024, headers={"X-No-Length": "1"}))
    capped = settings.model_copy(update={"max_response_bytes": 2_000_000})
    fetcher, _ = make_fetcher(capped)
    with pytest.raises(ResponseTooLargeError, match="aborted"):
        fetcher.get(server.url("/huge"), allow_private=True)


def test_declared_windows_1252_is_decoded(
    server: FixtureServer, settings: IngestSettings, make_fetcher: MakeFetcher
) -> None:
    text = "Société Générale – Q3 profit €1.2bn, “strong” ‘beat’"
    server.route(
        "/p", Reply(200, text.encode("cp1252"), {"Content-Type": "text/html; charset=windows-1252"})
    )
    server.route(
        "/q",
        Reply(
            200,
            f"<meta charset='iso-8859-1'><p>{text}</p>".encode("cp1252"),
            {"Content-Type": "text/html"},
        ),
    )
    fetcher, _ = make_fetcher(settings)
    assert fetcher.get(server.url("/p"), allow_private=True).text() == text
    assert text in fetcher.get(server.url("/q"), allow_private=True).text()


def test_robots_disallow_is_respected_and_cached(
    server: FixtureServer, settings: IngestSettings, make_fetcher: MakeFetcher
) -> None:
    server.route("/robots.txt", Reply(200, b"User-agent: FinSentinelBot\nDisallow: /private\n"))
    server.route("/private/feed", Reply(200, b"secret"))
    server.route("/public", Reply(200, b"ok"))
    fetcher, _ = make_fetcher(settings)
    with pytest.raises(RobotsDisallowedError):
        fetcher.get(server.url("/private/feed"), allow_private=True)
    assert fetcher.get(server.url("/public"), allow_private=True).content == b"ok"
    assert server.hits["/private/feed"] == 0
    assert server.hits["/robots.txt"] == 1


def test_robots_404_allows_and_5xx_disallows(
    server: FixtureServer, settings: IngestSettings, make_fetcher: MakeFetcher
) -> None:
    server.route("/page", Reply(200, b"ok"))
    server.route("/robots.txt", Reply(404))
    fetcher, _ = make_fetcher(settings)
    assert fetcher.get(server.url("/page"), allow_private=True).content == b"ok"
    server.route("/robots.txt", Reply(503))
    fetcher, _ = make_fetcher(settings)
    with pytest.raises(RobotsDisallowedError):
        fetcher.get(server.url("/page"), allow_private=True)


def test_robots_crawl_delay_spaces_requests_to_that_host(
    server: FixtureServer, settings: IngestSettings, make_fetcher: MakeFetcher
) -> None:
    server.route("/robots.txt", Reply(200, b"User-agent: *\nCrawl-delay: 7\n"))
    server.route("/a", Reply(200, b"a"))
    now = [100.0]
    fetcher, sleeps = make_fetcher(settings)
    fetcher.limiter._clock = lambda: now[0]  # a frozen clock: every wait is visible in sleeps
    fetcher.get(server.url("/a"), allow_private=True)
    fetcher.get(server.url("/a"), allow_private=True)
    assert sleeps == [7.0]


def test_credentials_do_not_follow_a_redirect_to_another_origin(
    settings: IngestSettings, make_fetcher: MakeFetcher
) -> None:
    first, second = FixtureServer().start(), FixtureServer().start()
    try:
        for srv in (first, second):
            srv.route("/robots.txt", Reply(200, b""))
        first.route("/api", Reply(302, headers={"Location": second.url("/landing")}))
        first.route("/same", Reply(302, headers={"Location": "/api2"}))
        first.route("/api2", Reply(200, b"same origin"))
        second.route("/landing", Reply(200, b"elsewhere"))
        fetcher, _ = make_fetcher(settings)
        secrets = {"Authorization": "Bearer t", "X-Api-Key": "k", "Accept": "application/json"}
        fetcher.get(
            first.url("/api"), allow_private=True, headers=secrets, secret_headers=("X-Api-Key",)
        )
        landed = second.requests[-1][1]
        assert "authorization" not in landed and "x-api-key" not in landed
        assert landed["accept"] == "application/json"
        fetcher.get(
            first.url("/same"), allow_private=True, headers=secrets, secret_headers=("X-Api-Key",)
        )
        assert first.requests[-1][1]["x-api-key"] == "k"  # same origin keeps them
    finally:
        first.stop()
        second.stop()


def test_per_host_concurrency_is_shared_by_all_callers(
    server: FixtureServer, settings: IngestSettings, make_fetcher: MakeFetcher
) -> None:
    lock = threading.Lock()
    state = {"now": 0, "max": 0}
    gate = threading.Event()

    def slow(_p: str, _q: object, _h: object) -> Reply:
        with lock:
            state["now"] += 1
            state["max"] = max(state["max"], state["now"])
        gate.wait(0.2)  # hold the request open so overlapping callers would show
        with lock:
            state["now"] -= 1
        return Reply(200, b"ok")

    server.route("/slow", slow)
    fetcher, _ = make_fetcher(settings.model_copy(update={"per_host_concurrency": 1}))
    threads = [
        threading.Thread(
            target=fetcher.get, args=(server.url("/slow"),), kwargs={"allow_private": True}
        )
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert server.hits["/slow"] == 4 and state["max"] == 1
