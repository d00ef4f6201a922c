"""A real Prometheus (and Alertmanager) scraping a running FinSentinel pipeline.

Used by ``test_promql_live.py``. The scrape configuration is derived from the
shipped ``deploy/prometheus/prometheus.yml``: same job names, same rules files,
but every FinSentinel job scrapes the pipeline under test and keeps only its own
service's metrics (``finsentinel_scorer_*`` for ``finsentinel-scorer`` ..., and
its ``stage`` of the shared ``finsentinel_deadletters_total``), so a
single endpoint serving every service's metrics (``finsentinel demo``) looks to
the rules and dashboards exactly like the separate services of a deployment.
"""

from __future__ import annotations

import contextlib
import json
import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.manifests import DEPLOY, RULE_FILES, SERVICES


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str, timeout_s: float = 5.0) -> bytes:
    """GET ``url`` (local test servers only)."""
    with urllib.request.urlopen(url, timeout=timeout_s) as response:
        return bytes(response.read())


def wait_for(
    what: str, check: Callable[[], bool], *, timeout_s: float, interval_s: float = 0.5
) -> None:
    """Poll ``check`` until it is true; fail with ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(OSError, ValueError):
            if check():
                return
        time.sleep(interval_s)
    raise TimeoutError(f"timed out after {timeout_s:.0f} s waiting for {what}")


#: The ``stage`` label each service gives ``finsentinel_deadletters_total``.
DEADLETTER_STAGE = {
    "scorer": "score",
    "alerts": "alerts",
    "crawler": "ingest",
    "archive": "archive",
}


def scrape_config(
    metrics_target: str,
    *,
    prometheus_target: str,
    alertmanager_target: str | None,
    rule_files: list[Path] | None = None,
) -> dict[str, Any]:
    """The shipped config with every target pointed at the test's processes (and the
    shipped rules files, unless ``rule_files`` replaces them)."""
    shipped = yaml.safe_load((DEPLOY / "prometheus" / "prometheus.yml").read_text())
    jobs = {spec.prometheus_job: spec for spec in SERVICES}
    config: dict[str, Any] = {
        "global": {
            **shipped["global"],
            "scrape_interval": "1s",
            "scrape_timeout": "1s",
            "evaluation_interval": "1s",
        },
        "rule_files": [str(p) for p in (RULE_FILES if rule_files is None else rule_files)],
        "scrape_configs": [],
    }
    for job in shipped["scrape_configs"]:
        name = job["job_name"]
        if name in jobs:
            config["scrape_configs"].append(
                {
                    "job_name": name,
                    "static_configs": [
                        {"targets": [metrics_target], "labels": {"service": jobs[name].name}}
                    ],
                    "metric_relabel_configs": [
                        {
                            # Its own metrics, and its stage of the shared dead-letter counter.
                            "source_labels": ["__name__", "stage"],
                            "regex": f"{jobs[name].metric_prefix}.*;.*"
                            f"|finsentinel_deadletters_total;{DEADLETTER_STAGE[jobs[name].name]}",
                            "action": "keep",
                        }
                    ],
                }
            )
        elif name == "prometheus":
            config["scrape_configs"].append(
                {"job_name": name, "static_configs": [{"targets": [prometheus_target]}]}
            )
        elif name == "alertmanager" and alertmanager_target:
            config["scrape_configs"].append(
                {"job_name": name, "static_configs": [{"targets": [alertmanager_target]}]}
            )
    missing = set(jobs) - {j["job_name"] for j in config["scrape_configs"]}
    assert not missing, f"the shipped prometheus.yml has no job {missing}"
    if alertmanager_target:
        config["alerting"] = {
            "alertmanagers": [{"static_configs": [{"targets": [alertmanager_target]}]}]
        }
    return config


class Process:
    """A child process with its output in a log file; stopped with SIGTERM, then SIGKILL."""

    def __init__(self, args: list[str], log: Path, **kwargs: Any) -> None:
        self.log = log
        self._out = log.open("wb")
        self.proc = subprocess.Popen(args, stdout=self._out, stderr=subprocess.STDOUT, **kwargs)

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, chars: int = 3000) -> str:
        """The end of the process's log, for failure messages."""
        return self.log.read_text(errors="replace")[-chars:]

    def stop(self, timeout_s: float = 20.0) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self._out.close()


class Prometheus:
    """Debian's Prometheus 2.x on a free port with a temporary TSDB."""

    def __init__(
        self,
        workdir: Path,
        metrics_target: str,
        *,
        alertmanager: str | None,
        rule_files: list[Path] | None = None,
    ) -> None:
        binary = shutil.which("prometheus")
        assert binary is not None
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        config = scrape_config(
            metrics_target,
            prometheus_target=f"127.0.0.1:{self.port}",
            alertmanager_target=alertmanager,
            rule_files=rule_files,
        )
        self.config_path = workdir / "prometheus.yml"
        self.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.process = Process(
            [
                binary,
                f"--config.file={self.config_path}",
                f"--storage.tsdb.path={workdir / 'tsdb'}",
                f"--web.listen-address=127.0.0.1:{self.port}",
                "--web.enable-lifecycle",
                "--storage.tsdb.retention.time=1h",
                "--log.level=warn",
            ],
            workdir / "prometheus.log",
        )
        wait_for("Prometheus to be ready", self._ready, timeout_s=60)

    def _ready(self) -> bool:
        if not self.process.alive():
            raise AssertionError(f"Prometheus exited:\n{self.process.tail()}")
        return http_get(f"{self.url}/-/ready").startswith(b"Prometheus")

    def api(self, path: str, **params: str) -> Any:
        """GET an API path; returns ``data`` or raises with Prometheus's error."""
        url = f"{self.url}/api/v1/{path}?{urllib.parse.urlencode(params)}"
        try:
            body = json.loads(http_get(url))
        except urllib.error.HTTPError as exc:
            body = json.loads(exc.read())
        if body.get("status") != "success":
            raise PromQLError(f"{body.get('errorType')}: {body.get('error')}")
        return body["data"]

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query's samples (vector), or one pseudo-sample for a scalar."""
        data = self.api("query", query=expr)
        if data["resultType"] in ("scalar", "string"):
            return [{"metric": {}, "value": data["result"]}]
        return list(data["result"])

    def firing(self, alertnames: set[str]) -> set[tuple[str, str]]:
        """``(alertname, head)`` of the firing alerts named in ``alertnames``."""
        return {
            (a["labels"]["alertname"], a["labels"].get("head", ""))
            for a in self.api("alerts")["alerts"]
            if a["state"] == "firing" and a["labels"]["alertname"] in alertnames
        }

    def evaluated_after(self, group: str, when: float) -> bool:
        """True once the rules ``group`` was last evaluated after ``when`` (Unix seconds)."""
        found = next(g for g in self.api("rules")["groups"] if g["name"] == group)
        last = datetime.fromisoformat(found["lastEvaluation"].replace("Z", "+00:00"))
        return last.timestamp() > when

    def stop(self) -> None:
        self.process.stop()


class PromQLError(AssertionError):
    """Prometheus refused a query (parse or execution error)."""


class Alertmanager:
    """Debian's Alertmanager with the shipped configuration, clustering off."""

    def __init__(self, workdir: Path) -> None:
        binary = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
        assert binary is not None
        self.port = free_port()
        self.target = f"127.0.0.1:{self.port}"
        self.process = Process(
            [
                binary,
                f"--config.file={DEPLOY / 'alertmanager' / 'alertmanager.yml'}",
                f"--storage.path={workdir / 'alertmanager'}",
                f"--web.listen-address={self.target}",
                "--cluster.listen-address=",
                "--log.level=warn",
            ],
            workdir / "alertmanager.log",
        )
        wait_for("Alertmanager to be ready", self._ready, timeout_s=30)

    def _ready(self) -> bool:
        if not self.process.alive():
            raise AssertionError(f"Alertmanager exited:\n{self.process.tail()}")
        http_get(f"http://{self.target}/-/ready")
        return True

    def stop(self) -> None:
        self.process.stop()


def rules_without_wait(rules: Path, out: Path, group: str) -> Path:
    """A copy of a rules file whose ``group`` fires at once: its rules' ``for:`` set to 0s.

    Expressions and thresholds stay as shipped; a test cannot wait the real 30 minutes.
    """
    doc = yaml.safe_load(rules.read_text())
    found = [g for g in doc["groups"] if g["name"] == group]
    assert found, f"{rules.name} has no group {group}"
    for rule in found[0]["rules"]:
        rule["for"] = "0s"
    out.write_text(yaml.safe_dump(doc, sort_keys=False))
    return out


@contextlib.contextmanager
def monitoring(
    workdir: Path, metrics_target: str, *, rule_files: list[Path] | None = None
) -> Iterator[Prometheus]:
    """Alertmanager (when installed) and Prometheus scraping ``metrics_target``."""
    alertmanager = None
    if shutil.which("prometheus-alertmanager") or shutil.which("alertmanager"):
        alertmanager = Alertmanager(workdir)
    try:
        prometheus = Prometheus(
            workdir,
            metrics_target,
            alertmanager=alertmanager.target if alertmanager else None,
            rule_files=rule_files,
        )
        try:
            yield prometheus
        finally:
            prometheus.stop()
    finally:
        if alertmanager is not None:
            alertmanager.stop()
