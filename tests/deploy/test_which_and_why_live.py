"""The "which, and why" panels on a real Prometheus, with alerts open.

``test_promql_live.py`` checks every dashboard query on a running pipeline, but
whether an alert is open at query time there depends on event-time progress.
Here an alerts service is fed a stream whose burst is still on (two alerts
open: a topic and a ticker that is on no watch-list), its metrics and alert
pages are served by the real :class:`~stream.http.MetricsServer`, a real
Prometheus scrapes them, and every dashboard query reading the active-alert or
top-mover families must return the open alerts and the movers. The data link
Grafana builds from a row's labels must open that alert's page with its
headlines.
"""

from __future__ import annotations

import json
import shutil
import urllib.parse
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import CollectorRegistry

from alerts.service import AlertService
from alerts.settings import AlertSettings
from alerts.testing import synthetic_stream
from alerts.view import AlertView
from stream.http import MetricsServer
from stream.kafka import KafkaSettings
from tests.deploy.live import Prometheus, http_get, monitoring, wait_for
from tests.deploy.manifests import DEPLOY, dashboard_queries, substitute

pytestmark = [pytest.mark.integration, pytest.mark.slow]

BOARD = DEPLOY / "grafana" / "dashboards" / "market-sentiment.json"
NEW_FAMILIES = ("finsentinel_alerts_active_alert_", "finsentinel_alerts_mover_")
T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Prometheus, str]]:
    """Prometheus scraping an alerts service with two alerts open; and its base URL."""
    if shutil.which("prometheus") is None:
        pytest.skip("prometheus is not installed (make system-deps installs Debian's package)")
    workdir = tmp_path_factory.mktemp("which_and_why")
    registry = CollectorRegistry()
    service = AlertService(
        AlertSettings(db_path=workdir / "alerts.sqlite", metrics_port=0, watch_tickers=()),
        kafka=KafkaSettings(bootstrap_servers="127.0.0.1:9"),  # never connected: fed directly
        registry=registry,
        clock=lambda: (T0 + timedelta(hours=3)).timestamp(),
    )
    docs = synthetic_stream(
        start=T0, docs=480, seed=1, burst_topic="Earnings", burst_ticker="ACME", burst_docs=45
    )
    for doc in docs:  # stop while the burst is on: its alerts stay open
        if doc.published_at < T0 + timedelta(minutes=130):
            service.add(doc)
    service.flush()
    assert len(service.engine.open_alerts()) == 2
    server = MetricsServer(registry, routes=AlertView(service.current_alerts).routes()).start()
    try:
        with monitoring(workdir, f"127.0.0.1:{server.port}") as prometheus:
            wait_for(
                "two scrapes of the open alerts",
                lambda: bool(
                    prometheus.query(
                        "min(count_over_time(finsentinel_alerts_active_alert_score[1m])) >= 2"
                    )
                ),
                timeout_s=60,
            )
            yield prometheus, server.url
    finally:
        server.stop()
        service.close()


QUERIES = [q for q in dashboard_queries(BOARD) if any(f in q.expr for f in NEW_FAMILIES)]
VALUES = {"mover_kind": "ticker", "window": "1h", "ticker": ".*", "topic": ".*"}


def test_the_new_panels_are_there() -> None:
    assert len(QUERIES) >= 5


@pytest.mark.parametrize("query", QUERIES, ids=lambda q: q.origin)
def test_which_and_why_query_returns_the_open_alerts_and_movers(
    served: tuple[Prometheus, str], query: object
) -> None:
    prometheus, _ = served
    expr = substitute(query.expr, VALUES)  # type: ignore[attr-defined]
    result = prometheus.query(expr)
    assert result, f"{expr!r} returned no data"
    labels = [r["metric"] for r in result]
    if "active_alert" in expr:
        assert {(m["rule"], m["kind"], m["series"]) for m in labels} == {
            ("negative-spike-topic", "topic", "Earnings"),
            ("negative-spike-ticker", "ticker", "ACME"),
        }
    elif "series" in {k for m in labels for k in m}:
        # ACME is on no watch-list, and still the top ticker mover.
        assert "ACME" in {m["series"] for m in labels}


def test_the_data_link_opens_the_alert_page_with_its_headlines(
    served: tuple[Prometheus, str],
) -> None:
    prometheus, base = served
    board = json.loads(BOARD.read_text())
    panel = next(p for p in board["panels"] if p["title"].startswith("Open alerts"))
    link = panel["fieldConfig"]["defaults"]["links"][0]["url"]
    rows = prometheus.query("finsentinel_alerts_active_alert_score")
    for row in rows:
        m = row["metric"]
        url = (
            link.replace("${alerts_url}", base)
            .replace("${__data.fields.rule}", m["rule"])
            .replace("${__data.fields.kind}", m["kind"])
            .replace("${__data.fields.series:percentencode}", urllib.parse.quote(m["series"]))
        )
        page = http_get(url).decode()
        assert f"{m['rule']} on {m['series']}" in page and "Profit warning shock" in page
    listed = json.loads(http_get(f"{base}/alerts"))
    assert {a["series"] for a in listed} == {r["metric"]["series"] for r in rows}
