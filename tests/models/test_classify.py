"""``finsentinel classify`` on files: typed columns, chunked writes, interrupt and resume."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import typer
from typer.testing import CliRunner

from models.classify import classify_file
from models.cli import register
from models.exceptions import DataError
from models.scoring import Classifier

runner = CliRunner()
TEXTS = ["Acme beats", "Fed hikes", "", "Oil slides", "Bank warns", "Gold steady", "IPO soars"]


@pytest.fixture(scope="module")
def app() -> typer.Typer:
    app = typer.Typer()
    register(app)
    return app


@pytest.fixture(scope="module")
def classifier(tiny_model_dir: Path) -> Classifier:
    return Classifier.load(tiny_model_dir, provider="cpu")


@pytest.fixture
def src(tmp_path: Path) -> Path:
    path = tmp_path / "in.csv"
    pd.DataFrame({"id": range(len(TEXTS)), "text": TEXTS}).to_csv(path, index=False)
    return path


def test_parquet_columns_are_typed_even_for_an_empty_row(
    classifier: Classifier, src: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out.parquet"
    run = classify_file(classifier, src, out, chunk_rows=2)
    assert run.complete and run.written == len(TEXTS)
    schema = pq.read_schema(out)
    assert schema.field("topic_probs").type == pa.map_(pa.string(), pa.float64())
    assert schema.field("n_tokens").type == pa.int64() == schema.field("n_chunks").type
    assert schema.field("sentiment").type == pa.string()
    table = pq.read_table(out).to_pylist()
    assert table[2]["n_tokens"] == 0 and table[2]["n_chunks"] == 0  # the empty text
    assert table[2]["sentiment"] is None and table[2]["topic_probs"] is None
    probs = dict(table[0]["topic_probs"])
    assert len(probs) == 20 and abs(sum(probs.values()) - 1) < 1e-6
    assert not out.with_name("out.parquet.parts").exists()
    assert not out.with_name("out.parquet.progress.json").exists()


def test_csv_keeps_json_text_and_jsonl_an_object_with_integer_counts(
    classifier: Classifier, src: Path, tmp_path: Path
) -> None:
    classify_file(classifier, src, tmp_path / "out.csv", chunk_rows=3)
    classify_file(classifier, src, tmp_path / "out.jsonl", chunk_rows=3)
    csv = pd.read_csv(tmp_path / "out.csv")
    assert csv["n_tokens"].dtype == "int64" and csv["n_chunks"].dtype == "int64"
    assert len(json.loads(csv["topic_probs"].iloc[0])) == 20 and pd.isna(csv["topic_probs"][2])
    lines = [json.loads(line) for line in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert len(lines) == len(TEXTS)
    assert isinstance(lines[0]["topic_probs"], dict) and lines[2]["topic_probs"] is None
    assert all(isinstance(r["n_tokens"], int) and isinstance(r["n_chunks"], int) for r in lines)


def test_rows_the_model_cannot_read_say_why(classifier: Classifier, tmp_path: Path) -> None:
    src = tmp_path / "mixed.csv"
    texts = ["Deutsche Bank übertrifft die Erwartungen deutlich", "🚀🚀 $GME to the moon", ""]
    pd.DataFrame({"text": [*texts, "Apple shares fall after weak iPhone sales"]}).to_csv(src)
    classify_file(classifier, src, tmp_path / "out.parquet")
    rows = pq.read_table(tmp_path / "out.parquet").to_pylist()
    assert [r["unsupported_reason"] for r in rows] == ["language", "no_text", "no_text", None]
    assert [r["detected_language"] for r in rows] == ["de", None, None, "en"]
    assert rows[0]["sentiment"] is not None  # the model's output is kept, and flagged


def test_progress_ends_at_total_when_a_row_is_empty(
    classifier: Classifier, src: Path, tmp_path: Path
) -> None:
    started: list[tuple[int, int]] = []
    advanced: list[int] = []
    classify_file(
        classifier,
        src,
        tmp_path / "out.csv",
        chunk_rows=2,
        on_start=lambda total, done: started.append((total, done)),
        progress=advanced.append,
    )
    assert started == [(len(TEXTS), 0)] and sum(advanced) == len(TEXTS)


def _words(text: str) -> str:
    return " ".join(text.split())  # rich wraps long lines


def _read(path: Path) -> pd.DataFrame:
    if path.suffix == ".csv":
        return pd.read_csv(path)
    return pq.read_table(path).to_pandas()  # a file or a parts directory


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_sigterm_leaves_a_valid_partial_output_and_resume_completes_it(
    app: typer.Typer,
    tiny_model_dir: Path,
    src: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    suffix: str,
) -> None:
    out = tmp_path / f"out{suffix}"
    args = ["classify", "--model", str(tiny_model_dir), "--input", str(src), "--output", str(out)]
    args += ["--provider", "cpu", "--chunk-rows", "2"]
    predict = Classifier.predict
    calls = 0

    def predict_then_sigterm(self: Classifier, texts: Any, **kwargs: Any) -> Any:
        nonlocal calls
        calls += 1
        if calls == 2:  # during the second chunk: it is finished, the third never starts
            os.kill(os.getpid(), signal.SIGTERM)
        return predict(self, texts, **kwargs)

    monkeypatch.setattr(Classifier, "predict", predict_then_sigterm)
    stopped = runner.invoke(app, args)
    assert stopped.exit_code == 130, stopped.output
    assert "4 of 7 rows" in _words(stopped.output) and "--resume" in stopped.output
    partial = out.with_name(out.name + ".parts") if suffix == ".parquet" else out
    if suffix == ".jsonl":
        assert len(partial.read_text().splitlines()) == 4
    else:
        assert _read(partial)["id"].tolist() == [0, 1, 2, 3]
    if suffix != ".parquet":  # a crash in the middle of the next chunk: cut on resume
        with out.open("ab") as f:
            f.write(b'4,"Bank wa')

    monkeypatch.setattr(Classifier, "predict", predict)
    resumed = runner.invoke(app, [*args, "--resume"])
    assert resumed.exit_code == 0, resumed.output
    assert "4 of them from the earlier run" in _words(resumed.output)
    whole = tmp_path / f"whole{suffix}"
    # Same chunks as the interrupted run: int8 dynamic quantization scales per batch.
    fresh = runner.invoke(app, [*args, "--output", str(whole)])
    assert fresh.exit_code == 0, fresh.output
    if suffix == ".jsonl":
        assert out.read_text() == whole.read_text()
    else:
        pd.testing.assert_frame_equal(_read(out), _read(whole))
    again = runner.invoke(app, [*args, "--resume"])
    assert again.exit_code == 2 and "is complete" in _words(again.output)


def test_resume_refuses_another_input(classifier: Classifier, src: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.csv"
    classify_file(classifier, src, out, chunk_rows=2, stop=iter([False, True]).__next__)
    other = tmp_path / "other.csv"
    pd.DataFrame({"text": ["x"] * 3}).to_csv(other, index=False)
    with pytest.raises(DataError, match="start again without --resume"):
        classify_file(classifier, other, out, resume=True)
    with pytest.raises(DataError, match="nothing to resume"):
        classify_file(classifier, src, tmp_path / "never.csv", resume=True)
