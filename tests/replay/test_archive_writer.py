"""Archive files: rotation by size and age, atomic close, pending offsets, crash leftovers."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from stream.contracts.schemas import ScoredDocument
from stream.history.schema import SCORED_SCHEMA, from_row, to_row
from stream.history.writer import RollingWriter, remove_stale_tmp


def _rows(history: pa.Table, n: int) -> list[dict]:
    return [
        to_row(from_row(r, ScoredDocument), partition=0, offset=i)
        for i, r in enumerate(history.slice(0, n).to_pylist())
    ]


def test_rotation_by_size_closes_complete_files(history: pa.Table, tmp_path: Path) -> None:
    w = RollingWriter(
        tmp_path, max_file_bytes=64 * 1024, max_file_age_s=3600, row_group_rows=50,
        clock=lambda: 0.0,
    )  # fmt: skip
    rows = _rows(history, 600)
    closed = [
        f
        for i, r in enumerate(rows)
        if (f := w.add("scored", "2026-01-05", "s", r, 400, ("s", 0, i)))
    ]
    closed += w.close_all()
    assert len(closed) >= 2 and not list(tmp_path.rglob("*.tmp"))
    assert sum(f.rows for f in closed) == 600
    for f in closed:
        table = pq.read_table(f.path)
        assert table.schema.equals(SCORED_SCHEMA) and table.num_rows == f.rows
        assert f.bytes == f.path.stat().st_size
    offsets = sorted(o for f in closed for o in pq.read_table(f.path)["kafka_offset"].to_pylist())
    assert offsets == list(range(600))


def test_pending_offsets_follow_open_files_and_age_rotation(
    history: pa.Table, tmp_path: Path
) -> None:
    now = [0.0]
    w = RollingWriter(tmp_path, max_file_bytes=1 << 30, max_file_age_s=60, clock=lambda: now[0])
    rows = _rows(history, 10)
    for i, r in enumerate(rows[:5]):
        w.add("scored", "2026-01-05", "s", r, 100, ("s", 0, 10 + i))
    now[0] = 30.0
    for i, r in enumerate(rows[5:]):
        w.add("scored", "2026-01-06", "s", r, 100, ("s", 0, 15 + i))
    assert w.pending_low_offsets() == {("s", 0): 10}
    now[0] = 61.0
    assert [f.rows for f in w.close_expired()] == [5]  # only the older file is due
    assert w.pending_low_offsets() == {("s", 0): 15}
    now[0] = 91.0
    assert [f.rows for f in w.close_expired()] == [5]
    assert w.pending_low_offsets() == {} and len(w) == 0


def test_stale_tmp_files_are_removed_fresh_ones_kept(tmp_path: Path) -> None:
    old = tmp_path / "scored" / "date=2026-01-05" / "topic=s" / "part-a.parquet.tmp"
    new = old.with_name("part-b.parquet.tmp")
    old.parent.mkdir(parents=True)
    old.write_bytes(b"half a file")
    new.write_bytes(b"being written")
    os.utime(old, (1_000, 1_000))
    assert remove_stale_tmp(tmp_path, older_than_s=3600) == 1
    assert not old.exists() and new.exists()
