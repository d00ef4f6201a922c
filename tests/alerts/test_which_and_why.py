"""Which series is firing, and why: the active-alert and top-mover metrics, the alert pages."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from prometheus_client import CollectorRegistry

from alerts.engine import AlertEngine
from alerts.metrics import AlertMetrics
from alerts.movers import top_movers
from alerts.rules import load_rules
from alerts.settings import DEFAULT_RULES_PATH
from alerts.testing import sample_alert, synthetic_stream
from alerts.view import AlertView
from stream.contracts.schemas import Alert
from stream.http import HttpResponse, MetricsServer

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
ACTIVE = "finsentinel_alerts_active_alert_score"
OVERFLOW = "finsentinel_alerts_active_alerts_overflow_total"


def _metrics(registry: CollectorRegistry, **kwargs: int) -> AlertMetrics:
    return AlertMetrics(registry, topics=(), tickers=(), windows_s=(300, 3600), **kwargs)


def _alert(series: str, *, state: str = "firing", kind: str = "ticker") -> Alert:
    return sample_alert(key=f"neg:{kind}:{series}", series=series, series_kind=kind, state=state)


def _active(registry: CollectorRegistry) -> set[str]:
    return {
        s.labels["series"]
        for m in registry.collect()
        if m.name == ACTIVE
        for s in m.samples
        if s.name == ACTIVE
    }


def test_one_series_per_open_alert_removed_on_resolve() -> None:
    registry = CollectorRegistry()
    metrics = _metrics(registry)
    metrics.export_active([_alert("ACME"), _alert("Earnings", kind="topic")])
    labels = {"rule": "neg", "kind": "ticker", "series": "ACME", "severity": "warning"}
    assert registry.get_sample_value(ACTIVE, labels) == pytest.approx(0.93)
    assert _active(registry) == {"ACME", "Earnings"}
    metrics.export_active([_alert("ACME", state="resolved"), _alert("Earnings", kind="topic")])
    assert _active(registry) == {"Earnings"}
    assert registry.get_sample_value(ACTIVE, labels) is None


def test_active_alerts_are_bounded_and_the_overflow_counted_once_each() -> None:
    registry = CollectorRegistry()
    metrics = _metrics(registry, max_active_alerts=2)
    alerts = [_alert(s) for s in ("AAA", "BBB", "CCC", "DDD")]
    metrics.export_active(alerts)
    metrics.export_active(alerts)  # the same open alerts: nothing counted twice
    assert _active(registry) == {"AAA", "BBB"}
    assert registry.get_sample_value(OVERFLOW) == 2
    # An exported alert resolves: a waiting one takes its place; the others keep theirs.
    metrics.export_active([_alert("AAA", state="resolved"), *alerts[1:]])
    assert _active(registry) == {"BBB", "CCC"}
    assert registry.get_sample_value(OVERFLOW) == 2


def _engine_with_burst_on() -> AlertEngine:
    engine = AlertEngine(load_rules(DEFAULT_RULES_PATH), windows_s=(300, 3600))
    docs = synthetic_stream(
        start=T0, docs=480, seed=1, burst_topic="Earnings", burst_ticker="ACME", burst_docs=45
    )
    for doc in docs:
        if doc.published_at < T0 + timedelta(minutes=130):
            engine.add(doc)
    engine.flush()
    return engine


def test_top_movers_need_no_watch_list_and_are_bounded_per_kind() -> None:
    engine = _engine_with_burst_on()
    movers = top_movers(engine, k=3)
    by_kind = {kind: [m for m in movers if m.kind == kind] for kind in ("ticker", "topic")}
    assert [len(v) for v in by_kind.values()] == [3, 3]
    assert by_kind["ticker"][0].series == "ACME" and by_kind["topic"][0].series == "Earnings"
    assert by_kind["ticker"][0].score > by_kind["ticker"][0].threshold == 0.5
    scores = [m.score for m in by_kind["ticker"]]
    assert scores == sorted(scores, reverse=True) and all(0.0 <= s <= 1.0 for s in scores)
    assert all(m.documents[3600] > 0 for m in movers)  # volume shown, never an empty series
    assert top_movers(engine, k=0) == []

    registry = CollectorRegistry()
    metrics = _metrics(registry, top_movers=1)  # and no watch-list at all
    metrics.export(engine, engine.rules, stale_after_s=3600, now_s=T0.timestamp())
    labels = {"kind": "ticker", "series": "ACME", "rule": "negative-spike-ticker"}
    assert registry.get_sample_value("finsentinel_alerts_mover_score", labels) > 0.5
    assert registry.get_sample_value("finsentinel_alerts_mover_threshold", labels) == 0.5
    docs = {"kind": "ticker", "series": "ACME", "window": "1h"}
    assert registry.get_sample_value("finsentinel_alerts_mover_documents", docs) == 25
    samples = [
        s
        for m in registry.collect()
        if m.name == "finsentinel_alerts_mover_score"
        for s in m.samples
    ]
    assert len(samples) == len({s.labels["kind"] for s in samples})  # K=1 per kind


@pytest.fixture
def view_server() -> Iterator[tuple[str, list[Alert]]]:
    alerts: list[Alert] = []
    server = MetricsServer(CollectorRegistry(), routes=AlertView(lambda: alerts).routes())
    server.start()
    try:
        yield server.url, alerts
    finally:
        server.stop()


def _evil(alert: Alert) -> Alert:
    e = alert.evidence[0]
    return alert.model_copy(
        update={
            "series": "A&B <x>",
            "key": "neg:topic:A&B <x>",
            "summary": '<script>alert("x")</script> spike',
            "evidence": [
                e.model_copy(update={"title": "<img src=x onerror=alert(1)>", "url": None}),
                e.model_copy(update={"title": "click", "url": "javascript:alert(1)"}),
                e.model_copy(
                    update={"title": "Acme warns", "url": 'https://news.example/a?x=1&y="2"'}
                ),
            ],
        }
    )


def test_alert_pages_list_open_alerts_and_show_escaped_evidence(
    view_server: tuple[str, list[Alert]],
) -> None:
    url, alerts = view_server
    alerts += [_alert("ACME"), _alert("OLD"), _alert("OLD", state="resolved"), _evil(_alert("x"))]
    listed = httpx.get(f"{url}/alerts")
    assert listed.status_code == 200 and listed.headers["content-type"] == "application/json"
    body = listed.json()
    assert {a["series"] for a in body} == {"ACME", "A&B <x>"}  # OLD resolved
    assert body[0]["evidence"][0]["title"] and body[0]["view"].startswith("/alerts/neg%3A")

    page = httpx.get(f"{url}{body[0]['view']}")  # as the JSON links it
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    assert page.headers["content-security-policy"].startswith("default-src 'none'")
    evil = httpx.get(f"{url}/alerts/neg:topic:A%26B%20%3Cx%3E").text  # Grafana's percentencode
    assert "<script>" not in evil and "&lt;script&gt;" in evil
    assert "<img" not in evil and "&lt;img src=x onerror=alert(1)&gt;" in evil
    assert "javascript:" not in evil and "<li>click " in evil  # shown, not linked
    assert 'href="https://news.example/a?x=1&amp;y=&quot;2&quot;"' in evil
    assert "neg on A&amp;B &lt;x&gt;" in evil

    resolved = httpx.get(f"{url}/alerts/neg:ticker:OLD")  # recent, resolved: still shown
    assert resolved.status_code == 200 and ">resolved<" in resolved.text
    assert httpx.get(f"{url}/alerts/neg:ticker:NOPE").status_code == 404
    assert httpx.get(f"{url}/alertsx").status_code == 404


def test_a_failing_route_answers_500_and_the_server_keeps_serving() -> None:
    def broken(path: str) -> HttpResponse:
        raise RuntimeError(path)

    server = MetricsServer(CollectorRegistry(), routes={"/broken": broken}).start()
    try:
        assert httpx.get(f"{server.url}/broken/x").status_code == 500
        assert httpx.get(f"{server.url}/healthz").status_code == 200
    finally:
        server.stop()
    with pytest.raises(ValueError, match="/metrics"):
        MetricsServer(CollectorRegistry(), routes={"/metrics": broken})
