"""The ``backtest`` and ``replay`` commands: outputs, exit codes, one-line errors."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from alerts.backtest.cli import register as register_backtest
from stream.contracts.schemas import ScoredDocument, encode, message_key
from stream.contracts.topics import TopicNames
from stream.history.cli import register as register_replay
from stream.history.query import HistoryQuery
from stream.history.schema import from_row
from stream.history.sources import archive_documents
from stream.kafka import KafkaSettings, make_producer

from .conftest import START


@pytest.fixture
def app() -> Iterator[typer.Typer]:
    root = typer.Typer(pretty_exceptions_enable=False)

    @root.callback()
    def _root() -> None: ...

    register_backtest(root)
    register_replay(root)
    handlers = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    yield root
    for s, h in handlers.items():  # the replay command installs its stop handlers
        signal.signal(s, h)


@pytest.mark.slow
def test_backtest_command_writes_everything(
    app: typer.Typer, archive_dir: Path, rules_path: Path, labels_path: Path, tmp_path: Path
) -> None:
    out = tmp_path / "bt"
    args = ["backtest", "--rules", str(rules_path), "--archive", str(archive_dir)]
    args += ["--labels", str(labels_path), "--out", str(out), "--bucket", "5m", "--no-report"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    names = {p.name for p in out.iterdir()}
    assert {"alerts.csv", "alerts.json", "rule_counts.csv", "metrics.csv", "sweep.csv"} <= names
    assert "neg-ticker: precision 1.00 recall 1.00" in result.output


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ([], "give exactly one of --archive DIR and --input FILE"),
        (["--input", "nowhere.parquet"], "nowhere.parquet: no such input file"),
        (["--input", "x.parquet", "--archive", "a"], "give exactly one of"),
        (["--input", "x.csv", "--bucket", "7 parsecs"], "is not a duration"),
    ],
)
def test_backtest_bad_input_is_one_line_and_exit_2(
    app: typer.Typer, rules_path: Path, tmp_path: Path, extra: list[str], message: str
) -> None:
    args = ["backtest", "--rules", str(rules_path), "--out", str(tmp_path), *extra]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and message in errors[0]


def test_backtest_bad_rules_exit_2(app: typer.Typer, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text("rules: [{name: x, series: {kind: sector}}]\n")
    args = ["backtest", "--rules", str(rules), "--input", "x.csv", "--out", str(tmp_path)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2 and "line 1" in result.output


def test_replay_archive_to_parquet(app: typer.Typer, archive_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "replayed.parquet"
    args = ["replay", "--archive", str(archive_dir), "--from", "2026-01-05T10:00Z"]
    args += ["--to", "2026-01-05T12:00Z", "--ticker", "T001", "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    query = HistoryQuery(
        "scored", START.replace(hour=10), START.replace(hour=12), tickers=("T001",)
    )
    want = [d.id for d in archive_documents(archive_dir, query)]
    assert pq.read_table(out)["id"].to_pylist() == want and want


def test_replay_and_backtest_of_an_empty_range_warn(
    app: typer.Typer, archive_dir: Path, rules_path: Path, tmp_path: Path
) -> None:
    empty = ["--from", "2020-01-01T00:00Z", "--to", "2020-01-02T00:00Z"]
    out = tmp_path / "replayed.parquet"
    result = CliRunner().invoke(
        app, ["replay", "--archive", str(archive_dir), *empty, "--out", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "replayed 0 documents" in result.output
    assert "warning: nothing to replay between 2020-01-01T00:00Z and 2020-01-02T00:00Z" in (
        result.output
    )
    args = ["backtest", "--rules", str(rules_path), "--archive", str(archive_dir), *empty]
    result = CliRunner().invoke(app, [*args, "--out", str(tmp_path / "bt"), "--no-report"])
    assert result.exit_code == 0, result.output
    assert "warning: no scored documents in the range" in result.output


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--out", "x.parquet"], "give exactly one of --from-kafka and --archive DIR"),
        (["--archive", "a"], "give --to-topic NAME and/or --out FILE.parquet"),
        (["--archive", "a", "--out", "x.parquet", "--speed", "fast"], "is not e.g. 1x"),
    ],
)
def test_replay_bad_input_is_one_line_and_exit_2(
    app: typer.Typer, extra: list[str], message: str
) -> None:
    args = ["replay", "--from", "2026-01-05", "--to", "2026-01-06", *extra]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 2
    assert message in result.output


@pytest.mark.integration
def test_replay_from_kafka_to_parquet(
    app: typer.Typer,
    kafka_settings: KafkaSettings,
    topics: TopicNames,
    history: pa.Table,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    docs = [from_row(r, ScoredDocument) for r in history.slice(2000, 40).to_pylist()]
    producer = make_producer(kafka_settings)
    for d in docs:
        stamp = int(d.published_at.timestamp() * 1000)
        producer.send(topics.scored, value=encode(d), key=message_key(d), timestamp_ms=stamp)
    producer.flush()
    producer.close()
    monkeypatch.setenv("KAFKA_BOOTSTRAP_SERVERS", kafka_settings.bootstrap_servers or "")
    out = tmp_path / "from-kafka.parquet"
    lo, hi = docs[10].published_at, docs[30].published_at
    args = ["replay", "--from-kafka", "--from", lo.isoformat(), "--to", hi.isoformat()]
    args += ["--topic-prefix", topics.scored.removesuffix(".scored"), "--out", str(out)]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    got = pq.read_table(out)
    assert got["id"].to_pylist() == [d.id for d in docs if lo <= d.published_at < hi]
    times = got["published_at"].to_pylist()
    assert times == sorted(times)  # partitions merged back into event-time order
