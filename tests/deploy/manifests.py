"""Helpers of the deployment tests: the files under ``deploy/`` and what the code says.

* :data:`SERVICES`: each FinSentinel service as the code defines it (CLI command,
  settings class, metrics port, metric prefix, Prometheus job).
* :func:`dashboard_queries` / :func:`rule_queries`: the PromQL expressions of the
  Grafana dashboards and the Prometheus rules files, extracted programmatically.
* :func:`kustomize`: the rendered Kubernetes documents.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
DASHBOARDS = sorted((DEPLOY / "grafana" / "dashboards").glob("*.json"))
RULE_FILES = sorted((DEPLOY / "prometheus" / "rules").glob("*.yml"))


@dataclass(frozen=True)
class ServiceSpec:
    """One FinSentinel service as the code defines it."""

    name: str
    command: str
    env_prefix: str
    settings: str  # "module:Class"
    metrics_port: int
    metric_prefix: str
    prometheus_job: str

    def settings_class(self) -> Any:
        """Import the settings class; skip the test if its package has not landed."""
        return import_class(self.settings)


def import_class(ref: str) -> Any:
    """``"module:Class"`` imported; a missing one fails the calling test (the manifests name it)."""
    module, _, cls = ref.partition(":")
    try:
        return getattr(importlib.import_module(module), cls)
    except (ImportError, AttributeError) as exc:
        pytest.fail(f"{ref}, named by the deployment files, is not importable: {exc}")


def root_cli_commands() -> set[str]:
    """The subcommands of the ``finsentinel`` console script."""
    try:
        import typer.main

        from finsentinel.cli import app
    except ImportError as exc:
        pytest.fail(f"the finsentinel CLI does not import: {exc}")
    group = typer.main.get_command(app)
    return set(getattr(group, "commands", {}))


#: The four services; ports are the settings defaults the brief fixes (tests check both).
SERVICES: tuple[ServiceSpec, ...] = (
    ServiceSpec(
        "scorer",
        "score",
        "FINSENTINEL_SCORER_",
        "stream.scorer.settings:ScorerSettings",
        9101,
        "finsentinel_scorer_",
        "finsentinel-scorer",
    ),
    ServiceSpec(
        "alerts",
        "alert",
        "FINSENTINEL_ALERTS_",
        "alerts.settings:AlertSettings",
        9102,
        "finsentinel_alerts_",
        "finsentinel-alerts",
    ),
    ServiceSpec(
        "crawler",
        "crawl",
        "FINSENTINEL_INGEST_",
        "ingest.settings:IngestSettings",
        9103,
        "finsentinel_ingest_",
        "finsentinel-ingest",
    ),
    ServiceSpec(
        "archive",
        "archive",
        "FINSENTINEL_ARCHIVE_",
        "stream.history.settings:ArchiveSettings",
        9104,
        "finsentinel_archive_",
        "finsentinel-archive",
    ),
)

KAFKA_SETTINGS = "stream.kafka:KafkaSettings"
#: Read from the environment outside the settings classes: the root ``finsentinel``
#: command's options (finsentinel/cli.py) and the topic prefix (stream/contracts/topics.py).
ROOT_CLI_ENV = ("FINSENTINEL_LOG_LEVEL", "FINSENTINEL_JSON_LOGS", "FINSENTINEL_TOPIC_PREFIX")


def spec_for_env(name: str) -> ServiceSpec | None:
    """The service whose settings own environment variable ``name``."""
    return next((s for s in SERVICES if name.startswith(s.env_prefix)), None)


def kustomize(path: Path) -> list[dict[str, Any]] | None:
    """``kubectl kustomize path`` as documents, or None without kubectl."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return None
    out = subprocess.run(
        [kubectl, "kustomize", str(path)], capture_output=True, text=True, check=False, timeout=60
    )
    assert out.returncode == 0, f"kubectl kustomize {path} failed:\n{out.stderr}"
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def raw_resources(path: Path) -> list[dict[str, Any]]:
    kustomization = yaml.safe_load((path / "kustomization.yaml").read_text())
    docs: list[dict[str, Any]] = []
    for name in kustomization["resources"]:
        docs.extend(d for d in yaml.safe_load_all((path / name).read_text()) if d)
    return docs


def find(docs: list[dict[str, Any]], kind: str, name: str) -> dict[str, Any]:
    """The one document of ``kind`` called ``name``."""
    hits = [d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name]
    assert len(hits) == 1, f"expected one {kind}/{name}, found {len(hits)}"
    return hits[0]


# --------------------------------------------------------------------- PromQL


@dataclass(frozen=True)
class Query:
    """A PromQL expression and where it came from."""

    origin: str
    expr: str
    #: Grafana template variables used (``$ticker`` ...), substituted before querying.
    variables: tuple[str, ...] = ()


_VARIABLE = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+))")
#: Grafana's built-in interval variables and what the tests put in their place.
BUILTINS = {
    "__rate_interval": "1m",
    "__interval": "1m",
    "__range": "1h",
    "__range_s": "3600",
    "interval": "1m",
}


def substitute(expr: str, values: dict[str, str]) -> str:
    """Replace Grafana variables in ``expr``; unknown ones are left (and will fail).

    >>> substitute('rate(x{t=~"$ticker"}[$__rate_interval])', {"ticker": "ABC"})
    'rate(x{t=~"ABC"}[1m])'
    """
    merged = {**BUILTINS, **values}

    def repl(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        return merged.get(name, match.group(0))

    return _VARIABLE.sub(repl, expr)


def _panels(panels: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for panel in panels:
        out.append(panel)
        out.extend(_panels(panel.get("panels", [])))
    return out


def dashboard_queries(path: Path) -> list[Query]:
    """Every PromQL expression of a dashboard: panel targets and annotations."""
    board = json.loads(path.read_text())
    queries: list[Query] = []
    for panel in _panels(board.get("panels", [])):
        for target in panel.get("targets", []):
            if target.get("expr"):
                expr = target["expr"]
                queries.append(
                    Query(f"{path.name}: {panel.get('title')!r} {target.get('refId')}", expr)
                )
    for annotation in board.get("annotations", {}).get("list", []):
        if annotation.get("expr"):
            queries.append(
                Query(f"{path.name}: annotation {annotation['name']!r}", annotation["expr"])
            )
    return [
        Query(
            q.origin,
            q.expr,
            tuple(
                sorted(
                    {m.group(1) or m.group(2) for m in _VARIABLE.finditer(q.expr)} - set(BUILTINS)
                )
            ),
        )
        for q in queries
    ]


def template_variables(path: Path) -> list[dict[str, Any]]:
    """The dashboard's templating variables."""
    return list(json.loads(path.read_text()).get("templating", {}).get("list", []))


def rule_queries(path: Path) -> list[tuple[Query, dict[str, Any]]]:
    """Every rule of a rules file with its expression."""
    doc = yaml.safe_load(path.read_text())
    out = []
    for group in doc["groups"]:
        for rule in group["rules"]:
            name = rule.get("record") or rule.get("alert")
            out.append((Query(f"{path.name}: {group['name']}/{name}", rule["expr"]), rule))
    return out


def settings_from_env(
    spec: ServiceSpec, env: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> tuple[Any, Any]:
    """Build the service's settings and KafkaSettings from ``env`` as the service would.

    Every variable must belong to the service's settings, KafkaSettings or the root
    CLI; values are parsed by pydantic-settings from the environment (JSON for
    lists), so cross-setting rules are checked too.
    """
    settings, kafka = spec.settings_class(), import_class(KAFKA_SETTINGS)
    for name in list(os.environ):
        if name.startswith((spec.env_prefix, "KAFKA_")):
            monkeypatch.delenv(name)
    for name, value in env.items():
        if name.startswith("KAFKA_"):
            field = name.removeprefix("KAFKA_").lower()
            assert field in kafka.model_fields, f"{spec.name}: {name} is no KafkaSettings field"
        elif name.startswith(spec.env_prefix):
            field = name.removeprefix(spec.env_prefix).lower()
            assert field in settings.model_fields, f"{spec.name}: {name} is no {spec.settings}"
        else:
            assert name in ROOT_CLI_ENV, f"{spec.name}: {name} belongs to no settings class"
        monkeypatch.setenv(name, value)
    return settings(), kafka()


def path_settings(spec: ServiceSpec, env: dict[str, str]) -> dict[str, str]:
    """The variables of ``env`` whose settings field is a filesystem path."""
    settings = spec.settings_class()
    out = {}
    for name, value in env.items():
        field = settings.model_fields.get(name.removeprefix(spec.env_prefix).lower())
        if (
            name.startswith(spec.env_prefix)
            and field is not None
            and "Path" in str(field.annotation)
        ):
            out[name] = value
    return out
