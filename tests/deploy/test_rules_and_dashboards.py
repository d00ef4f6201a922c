"""Rules and dashboards as files: annotations, runbook links, provisioning, structure.

Whether their PromQL works on real metrics is ``test_promql_live.py``'s job.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.deploy.manifests import DASHBOARDS, DEPLOY, REPO, RULE_FILES, rule_queries

DOCS = REPO / "docs" / "deploy.md"
ALERTS = [rule for path in RULE_FILES for _, rule in rule_queries(path) if "alert" in rule]


def _anchors(markdown: str) -> set[str]:
    """GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens."""
    out = set()
    prose = re.sub(r"^```.*?^```", "", markdown, flags=re.M | re.S)
    for heading in re.findall(r"^#+\s+(.+)$", prose, flags=re.M):
        slug = re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")
        out.add(slug)
    return out


@pytest.mark.parametrize("rule", ALERTS, ids=[r["alert"] for r in ALERTS])
def test_alert_has_summary_severity_and_a_runbook_that_exists(rule: dict[str, Any]) -> None:
    labels, annotations = rule["labels"], rule["annotations"]
    assert isinstance(labels, dict) and isinstance(annotations, dict)
    assert labels["severity"] in {"page", "ticket"}
    assert annotations["summary"]
    url = str(annotations["runbook"])
    assert url.startswith("https://github.com/finsentinel/finsentinel/blob/main/docs/deploy.md#")
    anchor = url.split("#", 1)[1]
    assert anchor in _anchors(DOCS.read_text()), f"docs/deploy.md has no heading for #{anchor}"
    assert rule["alert"] in DOCS.read_text(), "the runbook names the alert"


def test_alertmanager_routes_every_severity() -> None:
    config = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
    receivers = {r["name"] for r in config["receivers"]}
    routed = {m for r in config["route"]["routes"] for m in r["matchers"]}
    for severity in {str(r["labels"]["severity"]) for r in ALERTS}:  # type: ignore[index]
        assert f'severity="{severity}"' in routed
    assert {r["receiver"] for r in config["route"]["routes"]} <= receivers


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda p: p.name)
def test_dashboard_structure(path: Path) -> None:
    board = json.loads(path.read_text())
    datasources = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml").read_text()
    )
    prometheus_uid = next(d["uid"] for d in datasources["datasources"] if d["type"] == "prometheus")
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)), "panel ids must be unique"
    assert board["uid"] and board["editable"] is False
    for panel in board["panels"]:
        assert {"x", "y", "w", "h"} <= set(panel["gridPos"])
        if panel["type"] == "row":
            continue
        assert panel["datasource"]["uid"] == prometheus_uid, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == prometheus_uid
    for var in board["templating"]["list"]:
        if var["type"] == "textbox":  # a URL the data links use, not a query
            assert var["query"].startswith("http"), var["name"]
            continue
        assert var["datasource"]["uid"] == prometheus_uid
        assert var["query"]["query"].startswith("label_values(")


def _links(value: Any) -> list[str]:
    """Every data link and panel link URL in a dashboard fragment."""
    if isinstance(value, dict):
        own = [str(link["url"]) for link in value.get("links", []) if isinstance(link, dict)]
        return own + [u for v in value.values() for u in _links(v)]
    if isinstance(value, list):
        return [u for v in value for u in _links(v)]
    return []


def test_market_dashboard_links_alerts_to_their_evidence_page() -> None:
    board = json.loads((DEPLOY / "grafana" / "dashboards" / "market-sentiment.json").read_text())
    textboxes = {v["name"] for v in board["templating"]["list"] if v["type"] == "textbox"}
    urls = [u for p in board["panels"] for u in _links(p)]
    # The alert key is rule:kind:series (alerts/rules.py), the page /alerts/<key>.
    key = "${__data.fields.rule}:${__data.fields.kind}:${__data.fields.series:percentencode}"
    assert "${alerts_url}/alerts/" + key in urls
    assert "${alerts_url}/alerts" in urls
    assert all(u.startswith("${alerts_url}/alerts") for u in urls)
    assert textboxes == {"alerts_url"}


def test_dashboards_are_provisioned_where_compose_mounts_them() -> None:
    uids = [json.loads(p.read_text())["uid"] for p in DASHBOARDS]
    assert len(uids) == len(set(uids))
    provider = yaml.safe_load(
        (DEPLOY / "grafana" / "provisioning" / "dashboards" / "finsentinel.yml").read_text()
    )
    path = provider["providers"][0]["options"]["path"]
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./grafana/dashboards:{path}:ro" in mounts
    home = compose["services"]["grafana"]["environment"][
        "GF_DASHBOARDS_DEFAULT_HOME_DASHBOARD_PATH"
    ]
    assert (
        Path(home).parent == Path(path)
        and (DEPLOY / "grafana" / "dashboards" / Path(home).name).is_file()
    )
