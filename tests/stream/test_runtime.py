"""The launcher's exit codes and messages, the JSON log formatter, list settings, CLI flags."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from typer.testing import CliRunner

from alerts.settings import AlertSettings
from finsentinel.cli import app
from ingest.settings import IngestSettings
from stream.contracts.errors import BrokerError, ConfigError
from stream.history.settings import ArchiveSettings
from stream.kafka import KafkaSettings
from stream.logs import JsonFormatter, configure_logging
from stream.runtime import Launch, LogOptions, StopFlag, launch
from stream.scorer.settings import ScorerSettings
from stream.settings import load_settings

ROOT = Path(__file__).resolve().parents[2]


def _record(msg: str, *args: object, exc: bool = False) -> logging.LogRecord:
    info = None
    if exc:
        try:
            raise ValueError('a "quoted"\nmulti-line failure')
        except ValueError:
            info = sys.exc_info()
    return logging.LogRecord("finsentinel.test", logging.ERROR, __file__, 7, msg, args, info)


def test_json_formatter_emits_valid_json_for_quotes_newlines_and_tracebacks() -> None:
    record = _record('bad value "%s"\n\tat {line}', 'x"y\\z', exc=True)
    line = JsonFormatter().format(record)
    assert "\n" not in line
    entry = json.loads(line)
    assert entry["msg"] == 'bad value "x"y\\z"\n\tat {line}'
    assert entry["level"] == "ERROR" and entry["logger"] == "finsentinel.test"
    assert entry["exc_info"].startswith("Traceback (most recent call last):")
    assert 'ValueError: a "quoted"\nmulti-line failure' in entry["exc_info"]


def test_json_formatter_keeps_extra_fields() -> None:
    record = _record("stopped")
    record.exit_code = 2
    assert json.loads(JsonFormatter().format(record))["exit_code"] == 2


def _fails(exc: BaseException) -> Callable[[Launch[None]], None]:
    def run(_job: Launch[None]) -> None:
        raise exc

    return run


def _launch(exc: BaseException, level: str = "INFO") -> int:
    return launch(
        "demo service", lambda: None, _fails(exc),
        logs=LogOptions(level), kafka=False, stop=StopFlag(),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (ConfigError("FINSENTINEL_X: must be positive"), 2),
        (BrokerError("broker at k:9092 unreachable"), 1),
        (OSError(98, "cannot serve metrics on 127.0.0.1:9101: Address already in use"), 1),
        (RuntimeError("a bug\nover two lines"), 1),
    ],
)
def test_every_failure_is_one_line_and_a_fixed_exit_code(
    error: BaseException, code: int, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _launch(error) == code
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err


def test_an_unexpected_error_names_the_service_and_type(capsys: pytest.CaptureFixture[str]) -> None:
    assert _launch(RuntimeError("a bug")) == 1
    assert capsys.readouterr().err == "error: demo service failed: RuntimeError: a bug\n"


def test_the_traceback_shows_at_debug(capsys: pytest.CaptureFixture[str]) -> None:
    assert _launch(RuntimeError("a bug"), level="DEBUG") == 1
    configure_logging("INFO")
    out = capsys.readouterr()
    assert "Traceback (most recent call last)" in out.out + out.err


def test_a_settings_error_is_json_in_json_mode(capsys: pytest.CaptureFixture[str]) -> None:
    def load() -> None:
        raise ConfigError("FINSENTINEL_X: 'a' is not \"b\"")

    code = launch("demo", load, lambda job: 0, logs=LogOptions(json_logs=True), kafka=False)
    configure_logging("INFO")
    assert code == 2
    (line,) = capsys.readouterr().err.splitlines()
    entry = json.loads(line)
    assert entry["msg"] == "FINSENTINEL_X: 'a' is not \"b\"" and entry["exit_code"] == 2
    assert "exc_info" not in entry


def test_run_returns_its_exit_code() -> None:
    assert launch("x", lambda: None, lambda job: 3, logs=None, kafka=False, stop=StopFlag()) == 3


def test_log_options_after_the_subcommand_beat_those_before_and_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("FINSENTINEL_LOG_LEVEL", "ERROR")
    assert LogOptions().resolve().log_level == "ERROR"
    assert LogOptions("DEBUG").resolve(LogOptions("WARNING")).log_level == "DEBUG"
    assert LogOptions().resolve(LogOptions("WARNING", json_logs=True)).json_logs
    monkeypatch.setenv("FINSENTINEL_LOG_LEVEL", "LOUD")
    with pytest.raises(ConfigError, match="FINSENTINEL_LOG_LEVEL"):
        LogOptions().resolve()


# -- list settings (issue 18 item 2) ----------------------------------------------------

LIST_SETTINGS = [
    (IngestSettings, "FINSENTINEL_INGEST_ALIAS_FILES", "alias_files"),
    (IngestSettings, "FINSENTINEL_INGEST_TICKERS_ALWAYS", "tickers_always"),
    (AlertSettings, "FINSENTINEL_ALERTS_WATCH_TICKERS", "watch_tickers"),
    (AlertSettings, "FINSENTINEL_ALERTS_METRIC_TOPICS", "metric_topics"),
    (AlertSettings, "FINSENTINEL_ALERTS_WINDOWS_S", "windows_s"),
]


def _list_fields() -> set[tuple[str, str]]:
    found = set()
    for model in (IngestSettings, AlertSettings, ScorerSettings, ArchiveSettings, KafkaSettings):
        for name, field in model.model_fields.items():
            if any(t in str(field.annotation) for t in ("list[", "tuple[", "set[")):
                found.add((model.__name__, name))
    return found


def test_the_list_settings_under_test_are_all_of_them() -> None:
    assert _list_fields() == {(m.__name__, f) for m, _, f in LIST_SETTINGS}


@pytest.mark.parametrize(("model", "env", "field"), LIST_SETTINGS)
@pytest.mark.parametrize(
    "text",
    ["60,120", " 60 , 120 ,", '["60", "120"]'],
    ids=["csv", "csv-spaces", "json"],
)
def test_list_settings_take_comma_separated_or_json(
    model: type, env: str, field: str, text: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(env, text)
    extra = {"bucket_s": 60} if model is AlertSettings else {}
    value = getattr(load_settings(model, **extra), field)
    assert [str(v) for v in value] == ["60", "120"]


def test_a_single_value_is_a_list_of_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINSENTINEL_INGEST_ALIAS_FILES", "/x.csv")
    monkeypatch.setenv("FINSENTINEL_ALERTS_WATCH_TICKERS", "JPM,BAC")
    assert load_settings(IngestSettings).alias_files == (Path("/x.csv"),)
    assert load_settings(AlertSettings).watch_tickers == ("JPM", "BAC")
    monkeypatch.setenv("FINSENTINEL_ALERTS_WATCH_TICKERS", "")
    assert load_settings(AlertSettings).watch_tickers == ()


@pytest.mark.parametrize(
    ("env", "value", "says"),
    [
        ("FINSENTINEL_ALERTS_WINDOWS_S", "[300,", "not a JSON list"),
        ("FINSENTINEL_ALERTS_WINDOWS_S", "300,five", "valid integer"),
        ("FINSENTINEL_ALERTS_METRIC_TOPICS", '["a", ["b"]]', "valid string"),
    ],
)
def test_a_bad_list_is_one_line_naming_the_variable(
    env: str, value: str, says: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(env, value)
    with pytest.raises(ConfigError) as caught:
        load_settings(AlertSettings)
    message = str(caught.value)
    assert message.startswith(env) and says in message and "\n" not in message


@pytest.mark.parametrize(
    ("module", "env", "value"),
    [
        ("ingest", "FINSENTINEL_INGEST_ALIAS_FILES", "[/x.csv"),
        ("alerts", "FINSENTINEL_ALERTS_WATCH_TICKERS", "[JPM"),
        ("stream", "FINSENTINEL_SCORER_BATCH_MAX_SIZE", "many"),
    ],
)
def test_python_m_with_a_bad_setting_exits_2_with_one_line(
    module: str, env: str, value: str
) -> None:
    done = subprocess.run(
        [sys.executable, "-m", module], cwd=ROOT, env=_env({env: value}),
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr[-2000:]
    assert done.stderr.count("\n") == 1 and done.stderr.startswith(f"error: {env}"), done.stderr


def _env(extra: dict[str, str]) -> dict[str, str]:
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith(("FINSENTINEL_", "KAFKA_"))}
    return {**env, "KAFKA_BOOTSTRAP_SERVERS": "127.0.0.1:1", **extra}


# -- CLI flags (issue 18 item 7) -------------------------------------------------------


def test_flags_show_no_value_placeholder_in_help() -> None:
    for args in (["--help"], ["score", "--help"], ["alert", "--help"], ["crawl", "--help"]):
        result = CliRunner().invoke(app, args, terminal_width=120)
        assert result.exit_code == 0, result.output
        assert "<bool>" not in result.output and "BOOLEAN" not in result.output
        line = next(ln for ln in result.output.splitlines() if "--json-logs" in ln)
        assert line.split()[0] == "--json-logs" and line.split()[1] == "One", line


@pytest.mark.parametrize("command", ["score", "alert", "crawl", "archive"])
def test_log_options_are_accepted_after_the_service_subcommand(
    command: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SASL_SSL")  # fails fast, before any work
    sources = tmp_path / "sources.yaml"
    sources.write_text(f"sources:\n  - {{name: a, kind: files, path: {tmp_path}}}\n")
    args = {"crawl": ["--sources", str(sources)], "alert": ["--db", str(tmp_path / "a.db")]}
    result = CliRunner().invoke(
        app, [command, *args.get(command, []), "--log-level", "debug", "--json-logs"]
    )
    configure_logging("INFO")
    assert result.exit_code == 2, result.output
    entry = json.loads(result.output.strip().splitlines()[-1])
    assert entry["level"] == "ERROR" and "KAFKA_SASL_MECHANISM" in entry["msg"]


def test_retired_per_service_logging_variables_are_named_in_a_warning(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("FINSENTINEL_INGEST_JSON_LOGS", "true")
    with caplog.at_level(logging.WARNING, logger="stream.logs"):
        assert launch("x", lambda: None, lambda job: 0, logs=LogOptions(), kafka=False) == 0
    configure_logging("INFO")
    assert any("FINSENTINEL_INGEST_JSON_LOGS is no longer read" in m for m in caplog.messages)


def test_sighup_sets_the_reload_flag_only_while_the_service_runs() -> None:
    before = signal.getsignal(signal.SIGHUP)
    seen: list[bool] = []

    def run(job: Launch[None]) -> int:
        seen.append(job.reload.take())
        os.kill(os.getpid(), signal.SIGHUP)  # handled: the default action would end the process
        seen.extend([job.reload.take(), job.reload.take()])
        return 0

    assert launch("scorer", lambda: None, run, logs=None, kafka=False, reload=True) == 0
    assert seen == [False, True, False]
    assert signal.getsignal(signal.SIGHUP) is before
