"""The Prometheus and Alertmanager configuration, checked by their own tools.

Needs Debian's ``prometheus`` (promtool) and ``prometheus-alertmanager`` (amtool)
packages (``make system-deps``); each test skips with the reason when its tool is
missing.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.deploy.manifests import DEPLOY, RULE_FILES


def _tool(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        pytest.skip(f"{name} is not installed (make system-deps installs Debian's package)")
    return path


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, check=False, timeout=60)


def test_rules_files_exist() -> None:
    assert {p.name for p in RULE_FILES} >= {"recording.yml", "alerts.yml"}


def test_promtool_check_config() -> None:
    """The compose Prometheus config, including the rules files it loads."""
    out = _run(_tool("promtool"), "check", "config", str(DEPLOY / "prometheus" / "prometheus.yml"))
    assert out.returncode == 0, out.stdout + out.stderr
    for rules in RULE_FILES:
        assert f"rules/{rules.name}" in out.stdout + out.stderr, "rules file not loaded"


def test_promtool_check_rules() -> None:
    out = _run(_tool("promtool"), "check", "rules", *map(str, RULE_FILES))
    assert out.returncode == 0, out.stdout + out.stderr


def test_promtool_rule_unit_tests() -> None:
    """Alert rules fire (and stay quiet) on synthetic series: deploy/prometheus/tests."""
    tests = sorted((DEPLOY / "prometheus" / "tests").glob("*.yml"))
    assert tests, "no promtool rule tests in deploy/prometheus/tests"
    out = _run(_tool("promtool"), "test", "rules", *map(str, tests))
    assert out.returncode == 0, out.stdout + out.stderr


def test_amtool_check_config() -> None:
    out = _run(_tool("amtool"), "check-config", str(DEPLOY / "alertmanager" / "alertmanager.yml"))
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (
            ["alertname=negative-spike-ticker", "series_kind=ticker", "severity=critical"],
            "market-desk",
        ),
        (
            ["alertname=negative-spike-topic", "series_kind=topic", "severity=warning"],
            "market-desk",
        ),
        (["alertname=FinSentinelScorerDown", "severity=page"], "ops-page"),
        (["alertname=FinSentinelSourceStale", "severity=ticket"], "ops-ticket"),
    ],
)
def test_amtool_routes(labels: list[str], receiver: str) -> None:
    """Market alerts (from the alerts service) and pipeline alerts reach different people."""
    config = f"--config.file={DEPLOY / 'alertmanager' / 'alertmanager.yml'}"
    out = _run(_tool("amtool"), "config", "routes", "test", config, *labels)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == receiver
