"""Every PromQL expression we ship, evaluated by a real Prometheus on a running pipeline.

A real Prometheus (Debian's 2.x) scrapes a running FinSentinel pipeline every
second, with the shipped rules files loaded and the shipped Alertmanager
configuration running next to it. Then every expression in the Grafana
dashboards (panel targets and annotations, template variables substituted with
values their own variable queries return) and in the rules files is sent to
``/api/v1/query``: each must parse, and must return data, except the ones listed
in :data:`ALLOWED_EMPTY` with the reason. Alert conditions are empty on a healthy
pipeline by design; for those the test asserts that every series they read exists.

Two pipelines are checked (``FINSENTINEL_TEST_PIPELINE=demo|inprocess`` picks
one): ``finsentinel demo --keep-running``, as users run it, and the services
started in threads here (``tests/deploy/pipelines.py``) with every option the
dashboards use: the archive sink, a watch-list of tickers and a shadow model. Expressions that
read only a service or option the pipeline does not run return nothing there;
the other pipeline checks them.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from stream.kafka import KafkaSettings
from tests.deploy.live import DEADLETTER_STAGE, Prometheus, PromQLError, monitoring, wait_for
from tests.deploy.manifests import (
    DASHBOARDS,
    RULE_FILES,
    SERVICES,
    Query,
    dashboard_queries,
    rule_queries,
    substitute,
    template_variables,
)
from tests.deploy.pipelines import demo_available, demo_pipeline, inprocess_pipeline

pytestmark = [
    pytest.mark.integration,
    pytest.mark.slow,
    # kafka-python's consumer threads in the in-process pipeline close sockets late.
    pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning"),
]

#: Expressions that may return nothing on a healthy pipeline, by origin substring.
ALLOWED_EMPTY: dict[str, str] = {
    # Firing pipeline alerts: none on a healthy pipeline (the annotation is then empty).
    "annotation 'Pipeline alerts'": "no pipeline alert fires on a healthy demo",
    # Market alerts: an alert condition too. Whether the corpus's burst has an alert
    # open at the moment of the query depends on event-time progress, not on health.
    "annotation 'Market alerts open'": "no market alert open at query time",
    "annotation 'Market alert fired'": "no market alert fired in the last 2 minutes",
    # One series per open alert: none while nothing fires. test_which_and_why_live.py
    # proves these queries on a real Prometheus with alerts open.
    "'Open alerts: click one for its headlines'": "no market alert open at query time",
}

#: Families with one series per open alert: absent while none is open (see above).
ABSENT_WHILE_NONE_OPEN = {
    "finsentinel_alerts_active_alert_score",
    "finsentinel_alerts_active_alert_started_timestamp_seconds",
}

#: Per-ticker series exist only for a configured watch-list; the demo may have none.
_WATCH_LIST = 'kind="ticker"'
#: Shadow-scoring series exist only when a shadow model is configured (not in the demo).
_SHADOW = "finsentinel_scorer_shadow_"
#: Written only by one-shot passes (``crawl --once --metrics-file``) for node_exporter's
#: textfile collector, which neither pipeline runs: tests/ingest/test_service.py checks
#: the file and deploy/prometheus/tests/pipeline_alerts_test.yml the alerts reading it.
_ONE_SHOT = "finsentinel_ingest_last_run_"
_METRIC = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_QUOTED = re.compile(r'"(?:[^"\\]|\\.)*"')
#: ``finsentinel_deadletters_total{stage="..."}``: the stage names its service.
_STAGED = re.compile(r'finsentinel_deadletters_total\s*\{[^}]*stage="(\w+)"')
_SERVICE_OF_STAGE = {stage: service for service, stage in DEADLETTER_STAGE.items()}


@dataclass
class Live:
    """The running Prometheus and what it scrapes."""

    prometheus: Prometheus
    #: Services whose metrics the pipeline under test exports (scorer, alerts, ...).
    services: set[str]
    #: Recording rule name -> the services its expression reads (transitively).
    record_services: dict[str, set[str]]
    #: Whether the alerts service exports watch-list tickers (per-ticker series).
    watch_list: bool
    #: Whether the scorer scores a shadow model (``finsentinel_scorer_shadow_*`` series).
    shadow: bool


def _model_dir(request: pytest.FixtureRequest) -> Path:
    """The shipped model when it is complete, else the tiny test model."""
    from models.exceptions import ModelDirError
    from models.modeldir import DEFAULT_MODEL_DIR, load_model_dir

    try:
        load_model_dir(DEFAULT_MODEL_DIR)
    except ModelDirError:
        return Path(request.getfixturevalue("tiny_model_dir"))
    return Path(DEFAULT_MODEL_DIR)


PIPELINES = [
    p for p in ("demo", "inprocess") if os.environ.get("FINSENTINEL_TEST_PIPELINE", p) == p
]


@pytest.fixture(scope="module", params=PIPELINES)
def live(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Live]:
    """Prometheus on ``finsentinel demo`` (as users run it), or on the services started
    here with every option the dashboards use (archive sink, a watch-list)."""
    if shutil.which("prometheus") is None:
        pytest.skip("prometheus is not installed (make system-deps installs Debian's package)")
    if request.param == "demo" and not demo_available():
        pytest.fail("`finsentinel demo` is not registered in the root CLI")
    workdir = tmp_path_factory.mktemp(f"promql_{request.param}")
    broker = request.getfixturevalue("broker")
    if request.param == "demo":
        pipeline = demo_pipeline(workdir, broker)
    else:
        kafka = KafkaSettings(bootstrap_servers=broker)
        pipeline = inprocess_pipeline(workdir, kafka, _model_dir(request))
    with pipeline as (target, errors):
        with monitoring(workdir, target) as prometheus:
            wait_for(
                "documents crawled and scored",
                lambda: bool(
                    prometheus.query("sum(finsentinel_scorer_documents_scored_total) > 0")
                    and prometheus.query("sum(finsentinel_ingest_documents_produced_total) > 0")
                ),
                timeout_s=240,
                interval_s=1,
            )
            # Top movers exist once the alerts service closed buckets (the demo flushes at
            # the end of its corpus; the threads' watermark follows event time).
            wait_for(
                "the alerts service's first evaluation (top movers exported)",
                lambda: bool(prometheus.query("count(finsentinel_alerts_mover_score) > 0")),
                timeout_s=240,
                interval_s=1,
            )
            # Every job scraped a few times, so a service with no metrics really has none.
            wait_for(
                "a few scrapes of every job",
                lambda: bool(
                    prometheus.query(
                        'count(count_over_time(up{job=~"finsentinel-.*"}[1m]) >= 3)'
                        f" == {len(SERVICES)}"
                    )
                ),
                timeout_s=60,
                interval_s=1,
            )
            services = {
                s.name
                for s in SERVICES
                if prometheus.query(f'count({{__name__=~"{s.metric_prefix}.*"}})')
            }
            # Rates need two samples after the data arrived: wait until every service was
            # scraped a few times. max, not min: a family whose series come and go (one
            # per open alert, the top movers) always has a young series, so its min could
            # stay under 4 for as long as alerts keep changing.
            names = prometheus.api("label/__name__/values")
            canaries = [
                next(n for n in names if n.startswith(s.metric_prefix))
                for s in SERVICES
                if s.name in services
            ]
            wait_for(
                "a few scrapes of every service",
                lambda: all(
                    prometheus.query(f"max(count_over_time({name}[1m])) >= 4") for name in canaries
                ),
                timeout_s=60,
                interval_s=1,
            )
            records = _record_services()
            # Every recording rule of a running service must have been evaluated.
            wait_for(
                "recording rules to be evaluated",
                lambda: all(
                    prometheus.query(f"count({name})")
                    for name, used in records.items()
                    if used & services
                ),
                timeout_s=60,
                interval_s=1,
            )
            watch_list = bool(
                prometheus.query('count(finsentinel_alerts_series_documents{kind="ticker"})')
            )
            shadow = bool(prometheus.query(f"count({_SHADOW}documents_total)"))
            yield Live(prometheus, services, records, watch_list, shadow)
        assert not errors, f"a service thread failed: {errors!r}"


def _metrics_in(expr: str) -> set[str]:
    """Metric and recording-rule names an expression reads (ours only)."""
    bare = _QUOTED.sub('""', expr)
    return {m for m in _METRIC.findall(bare) if "finsentinel" in m}


def _staged_services(expr: str) -> set[str]:
    """Services whose stage of the shared dead-letter counter ``expr`` selects."""
    return {_SERVICE_OF_STAGE[m] for m in _STAGED.findall(expr) if m in _SERVICE_OF_STAGE}


def _record_services() -> dict[str, set[str]]:
    exprs: dict[str, set[str]] = {}
    staged: dict[str, set[str]] = {}
    for path in RULE_FILES:
        for query, rule in rule_queries(path):
            if "record" in rule:
                exprs.setdefault(rule["record"], set()).update(_metrics_in(query.expr))
                staged.setdefault(rule["record"], set()).update(_staged_services(query.expr))
    resolved: dict[str, set[str]] = {}

    def services_of(name: str, seen: frozenset[str] = frozenset()) -> set[str]:
        if name in exprs and name not in seen:
            used = (services_of(m, seen | {name}) for m in exprs[name])
            return set(staged[name]).union(*used)
        return {s.name for s in SERVICES if name.startswith(s.metric_prefix)}

    for name in exprs:
        resolved[name] = services_of(name)
    return resolved


def _services_of(expr: str, live: Live) -> set[str]:
    out: set[str] = _staged_services(expr)
    for name in _metrics_in(expr):
        out |= live.record_services.get(name) or {
            s.name for s in SERVICES if name.startswith(s.metric_prefix)
        }
    return out


def _variable_values(live: Live, board: Path) -> dict[str, str]:
    """What Grafana puts in for each template variable: its "All" value (the default
    selection) when it has one, else the first value its own query returns; either
    way that query must return values."""
    values = {}
    for var in template_variables(board):
        if var["type"] == "textbox":  # a URL for data links, never in a query
            continue
        query = var["query"]["query"] if isinstance(var["query"], dict) else var["query"]
        m = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", query.strip())
        assert m, f"{board.name}: variable {var['name']} is not a label_values() query"
        found = live.prometheus.api(f"label/{m.group(2)}/values", **{"match[]": m.group(1)})
        if not found and 'kind="ticker"' in query and not live.watch_list:
            found = [".*"]  # no watch-list: allowed below, see _WATCH_LIST
        assert found, f"{board.name}: variable ${var['name']} ({query}) has no values"
        values[var["name"]] = var["allValue"] if var.get("includeAll") else found[0]
    return values


def _check_returns_data(live: Live, query: Query, expr: str) -> None:
    try:
        result = live.prometheus.query(expr)
    except PromQLError as exc:
        pytest.fail(f"{query.origin}: Prometheus rejects {expr!r}: {exc}")
    if result:
        return
    allowed = [why for key, why in ALLOWED_EMPTY.items() if key in query.origin]
    if _WATCH_LIST in query.expr and not live.watch_list:
        allowed.append("the pipeline has no watch-list (FINSENTINEL_ALERTS_WATCH_TICKERS)")
    if _SHADOW in query.expr and not live.shadow:
        allowed.append("the pipeline scores no shadow model (FINSENTINEL_SCORER_SHADOW_MODEL_DIR)")
    needed = _services_of(query.expr, live)
    if not allowed and needed and not needed & live.services:
        allowed = [f"reads only {sorted(needed)}, which this pipeline does not run"]
    assert allowed, f"{query.origin}: {expr!r} returned no data"
    _check_series_exist(live, query, needed & live.services)


def _check_series_exist(live: Live, query: Query, services: set[str]) -> None:
    for name in _metrics_in(query.expr):
        owners = live.record_services.get(name) or {
            s.name for s in SERVICES if name.startswith(s.metric_prefix)
        }
        if (owners and not owners & services) or name in ABSENT_WHILE_NONE_OPEN:
            continue
        if (name.startswith(_SHADOW) and not live.shadow) or name.startswith(_ONE_SHOT):
            continue
        assert live.prometheus.query(f"count({name})"), f"{query.origin}: no series {name}"


DASHBOARD_QUERIES = [(board, q) for board in DASHBOARDS for q in dashboard_queries(board)]
RULES = [(q, rule) for path in RULE_FILES for q, rule in rule_queries(path)]


def test_there_is_something_to_check() -> None:
    assert len(DASHBOARDS) >= 2 and len(DASHBOARD_QUERIES) > 20 and len(RULES) > 10


@pytest.mark.parametrize(
    ("board", "query"), DASHBOARD_QUERIES, ids=lambda v: getattr(v, "origin", "")
)
def test_dashboard_expression_returns_data(live: Live, board: Path, query: Query) -> None:
    values = _variable_values(live, board)
    _check_returns_data(live, query, substitute(query.expr, values))


@pytest.mark.parametrize(("query", "rule"), RULES, ids=[q.origin for q, _ in RULES])
def test_rule_expression(live: Live, query: Query, rule: dict[str, Any]) -> None:
    if "record" in rule:
        _check_returns_data(live, query, query.expr)
        return
    # An alert condition: empty while healthy. It must parse and evaluate, and
    # every series it reads must exist, or it could never fire.
    try:
        live.prometheus.query(query.expr)
    except PromQLError as exc:
        pytest.fail(f"{query.origin}: {exc}")
    _check_series_exist(live, query, _services_of(query.expr, live) & live.services)


def _rules(live: Live) -> list[dict[str, Any]]:
    return [r for g in live.prometheus.api("rules")["groups"] for r in g["rules"]]


def test_rules_are_loaded_and_healthy(live: Live) -> None:
    assert len(_rules(live)) == len(RULES)
    # "unknown" until a rule's group has been evaluated once.
    wait_for(
        "every rule to be evaluated",
        lambda: all(r["health"] != "unknown" for r in _rules(live)),
        timeout_s=30,
    )
    unhealthy = [(r["name"], r.get("lastError")) for r in _rules(live) if r["health"] != "ok"]
    assert not unhealthy


def test_every_service_target_is_up(live: Live) -> None:
    # Over 30 s: on a busy machine one 1-second scrape may time out now and then.
    samples = live.prometheus.query('max_over_time(up{job=~"finsentinel-.*"}[30s])')
    assert len(samples) == len(SERVICES)
    for sample in samples:
        assert sample["value"][1] == "1", sample["metric"]
    assert {"scorer", "crawler", "alerts"} <= live.services


def test_alertmanager_is_connected(live: Live) -> None:
    if shutil.which("prometheus-alertmanager") is None and shutil.which("alertmanager") is None:
        pytest.skip("Alertmanager is not installed (make system-deps)")
    wait_for(
        "Prometheus to discover Alertmanager",
        lambda: bool(live.prometheus.api("alertmanagers")["activeAlertmanagers"]),
        timeout_s=30,
    )
