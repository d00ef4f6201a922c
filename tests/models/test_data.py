"""Reading labeled tables: formats, label mapping, clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from models.data import load_labeled, read_table, stratified_split, write_table
from models.exceptions import DataError


def test_zeroshot_ids_map_to_our_sentiment_order(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_bytes(b"text,label\r\nstocks fall,0\r\nstocks rise,1\r\nstocks flat,2\r\n")
    data = load_labeled(path, "sentiment")
    assert [data.label_names[i] for i in data.labels] == ["negative", "positive", "neutral"]


def test_names_and_aliases_any_case(tmp_path: Path) -> None:
    path = tmp_path / "s.jsonl"
    pd.DataFrame({"text": ["a", "b", "c"], "label": ["Bearish", "BULLISH", "neutral"]}).to_json(
        path, orient="records", lines=True
    )
    data = load_labeled(path, "sentiment")
    assert data.labels.tolist() == [0, 2, 1]


def test_topic_names_and_ids(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    frame = pd.DataFrame({"text": ["x &amp; y", "z"], "label": ["Fed | Central Banks", "4"]})
    frame.to_parquet(path)
    data = load_labeled(path, "topic")
    assert data.labels.tolist() == [1, 4]


def test_missing_column(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("headline,label\nx,0\n")
    with pytest.raises(DataError, match="no column 'text'"):
        load_labeled(path, "sentiment")


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("")
    with pytest.raises(DataError, match="empty"):
        load_labeled(path, "sentiment")


def test_header_only_file(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("text,label\n")
    with pytest.raises(DataError, match="no rows"):
        load_labeled(path, "sentiment")


def test_unknown_label(tmp_path: Path) -> None:
    path = tmp_path / "s.csv"
    path.write_text("text,label\nx,0\ny,very good\n")
    with pytest.raises(DataError, match="unknown sentiment label"):
        load_labeled(path, "sentiment")


def test_unsupported_extension(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="unsupported extension"):
        read_table(tmp_path / "data.xlsx")


def test_write_then_read_round_trip(tmp_path: Path) -> None:
    frame = pd.DataFrame({"text": ["a", "b"], "n": [1, 2]})
    for name in ("o.csv", "o.jsonl", "o.parquet"):
        write_table(frame, tmp_path / name)
        back = read_table(tmp_path / name)
        assert back["text"].tolist() == ["a", "b"]


def test_split_keeps_rare_classes_in_both_parts() -> None:
    labels = np.array([0] * 50 + [1] * 3 + [2] * 2)
    train, val = stratified_split(labels, 0.1, seed=0)
    assert set(labels[val]) == {0, 1, 2}
    assert set(labels[train]) == {0, 1, 2}
    assert len(set(train) | set(val)) == len(labels)
