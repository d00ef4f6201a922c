"""Archive files: rotation by size and age, atomic close, pending offsets, failed files,
the root lock and crash leftovers."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from stream.contracts.schemas import ScoredDocument
from stream.history.files import ArchiveWriteError, RootLock, remove_orphans
from stream.history.schema import SCORED_SCHEMA, from_row, to_row
from stream.history.writer import RollingWriter


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


def test_a_file_that_cannot_be_closed_keeps_its_offsets_pending(
    history: pa.Table, tmp_path: Path
) -> None:
    w = RollingWriter(tmp_path, max_file_bytes=1 << 30, max_file_age_s=60, clock=lambda: 0.0)
    rows = _rows(history, 6)
    for i, r in enumerate(rows[:3]):
        w.add("scored", "2026-01-05", "s", r, 100, ("s", 0, 10 + i))
    for i, r in enumerate(rows[3:]):
        w.add("scored", "2026-01-06", "s", r, 100, ("s", 0, 13 + i))
    # The 2026-01-05 partition directory cannot be created: a file has its name. (Root
    # ignores permission bits, so chmod would not stop this test's writes.)
    blocker = tmp_path / "scored" / "date=2026-01-05"
    blocker.parent.mkdir(parents=True)
    blocker.write_bytes(b"")
    closed = w.close_all()
    assert [f.rows for f in closed] == [3]  # the other file closed
    assert len(w) == 0 and len(w.failures) == 1
    error = w.failures[0].error
    assert isinstance(error, ArchiveWriteError) and "date=2026-01-05" in str(error)
    assert str(error).startswith("cannot write archive file ") and ".parquet.tmp" in str(error)
    assert w.pending_low_offsets() == {("s", 0): 10}  # never committed past the failed file


def test_orphans_are_all_removed_when_alone_only_old_ones_otherwise(tmp_path: Path) -> None:
    old = tmp_path / "scored" / "date=2026-01-05" / "topic=s" / "part-a.parquet.tmp"
    new = old.with_name("part-b.parquet.tmp")
    old.parent.mkdir(parents=True)
    old.write_bytes(b"half a file")
    new.write_bytes(b"being written")
    os.utime(old, (1_000, 1_000))
    with RootLock(tmp_path) as first:
        assert first.exclusive
        with RootLock(tmp_path) as second:  # another sink on the same root
            assert not second.exclusive
            assert remove_orphans(tmp_path, older_than_s=3600) == 1
            assert not old.exists() and new.exists()
    with RootLock(tmp_path) as alone:
        assert alone.exclusive
        assert remove_orphans(tmp_path, older_than_s=None) == 1
    assert not new.exists()
