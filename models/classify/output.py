"""Incremental, resumable output of ``finsentinel classify``.

Rows are written chunk by chunk, so an interrupted run keeps every finished
chunk and ``--resume`` continues after them:

* **CSV / JSONL**: each chunk is appended to the output file and ``fsync``\\ ed,
  then ``<output>.progress.json`` records the rows and bytes written so far
  (replaced atomically). The output is a valid file after every chunk; on resume
  it is cut back to the recorded size (dropping a chunk a crash left half
  written) and the recorded rows are skipped.
* **Parquet**: each chunk is a complete Parquet file in ``<output>.parts/``
  (written to ``*.tmp``, ``fsync``\\ ed, renamed), so the directory is a valid
  Parquet dataset at any moment (``pandas.read_parquet("<output>.parts")``). When
  the last chunk is written the parts are merged into ``<output>`` (atomically)
  and removed.

The progress file also records the input's path, row count and text column;
resuming with a different input is refused.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from models.data import table_format
from models.exceptions import DataError
from stream.files import durable_replace, fsync_path

__all__ = ["ChunkWriter", "Progress"]


@dataclass(frozen=True)
class Progress:
    """What a run has written; saved next to the output after every chunk."""

    input: str
    input_rows: int
    text_column: str
    rows: int = 0
    bytes: int = 0  # CSV/JSONL: output size after the last complete chunk
    parts: int = 0  # Parquet: part files written


def _arrow(chunk: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    """The chunk in the run's one schema (a chunk of empty texts must not turn a
    string column into nulls, or an input column's type change between parts)."""
    columns = [
        pa.array(chunk[f.name].tolist(), type=f.type, from_pandas=True)
        if pa.types.is_map(f.type)
        else pa.Array.from_pandas(chunk[f.name], type=f.type)
        for f in schema
    ]
    return pa.Table.from_arrays(columns, schema=schema)


class ChunkWriter:
    """Appends prediction chunks to ``output`` and records :class:`Progress`."""

    def __init__(self, output: Path, progress: Progress, schema: pa.Schema) -> None:
        self.output = output
        self.schema = schema
        self.kind = table_format(output)
        self.progress = progress
        self.progress_path = output.with_name(output.name + ".progress.json")
        self.parts_dir = output.with_name(output.name + ".parts")

    # -- starting ---------------------------------------------------------------------------

    @classmethod
    def start(cls, output: Path, progress: Progress, schema: pa.Schema) -> ChunkWriter:
        """A fresh run: leftovers of an earlier run on ``output`` are removed."""
        writer = cls(output, progress, schema)
        output.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(writer.parts_dir, ignore_errors=True)
        output.unlink(missing_ok=True)
        writer._save()
        return writer

    @classmethod
    def resume(cls, output: Path, expected: Progress, schema: pa.Schema) -> ChunkWriter:
        """Continue the run recorded next to ``output``; :class:`DataError` if there is
        none, or it was for another input."""
        writer = cls(output, expected, schema)
        if not writer.progress_path.is_file():
            if output.is_file():
                raise DataError(f"{output} is complete (no {writer.progress_path.name})")
            raise DataError(f"nothing to resume: no {writer.progress_path.name} next to {output}")
        saved = Progress(**json.loads(writer.progress_path.read_text()))
        for field in ("input", "input_rows", "text_column"):
            if getattr(saved, field) != getattr(expected, field):
                raise DataError(
                    f"{writer.progress_path} was written for {field}={getattr(saved, field)!r}, "
                    f"not {getattr(expected, field)!r}; start again without --resume"
                )
        writer.progress = saved
        if writer.kind == "parquet":
            writer._drop_parts_after(saved.parts)
        else:
            with output.open("r+b") as f:  # drop a chunk a crash left half written
                f.truncate(saved.bytes)
        return writer

    # -- writing ----------------------------------------------------------------------------

    def write(self, chunk: pd.DataFrame) -> None:
        """Append ``chunk`` durably, then record it in the progress file."""
        if self.kind == "parquet":
            self._write_part(chunk)
        else:
            self._append_text(chunk)
        self._save()

    def finish(self) -> None:
        """All rows written: merge Parquet parts into ``output``; drop the progress file."""
        if self.kind == "parquet":
            self._merge_parts()
        self.progress_path.unlink(missing_ok=True)
        fsync_path(self.output.parent)

    @property
    def partial_output(self) -> Path:
        """Where an interrupted run's rows are (the parts directory for Parquet)."""
        return self.parts_dir if self.kind == "parquet" else self.output

    def _append_text(self, chunk: pd.DataFrame) -> None:
        if self.kind == "csv":
            frame = chunk.assign(
                topic_probs=[None if p is None else json.dumps(p) for p in chunk["topic_probs"]]
            )
            data = frame.to_csv(index=False, header=self.progress.rows == 0).encode()
        else:
            text = chunk.to_json(orient="records", lines=True, force_ascii=False)
            data = text.encode() if text.endswith("\n") else (text + "\n").encode()
        with self.output.open("ab") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        self.progress = _advanced(self.progress, len(chunk), bytes=self.progress.bytes + len(data))

    def _part(self, i: int) -> Path:
        return self.parts_dir / f"part-{i:06d}.parquet"

    def _write_part(self, chunk: pd.DataFrame) -> None:
        self.parts_dir.mkdir(parents=True, exist_ok=True)
        final = self._part(self.progress.parts)
        tmp = final.with_name(final.name + ".tmp")
        pq.write_table(_arrow(chunk, self.schema), tmp)
        durable_replace(tmp, final)
        self.progress = _advanced(self.progress, len(chunk), parts=self.progress.parts + 1)

    def _drop_parts_after(self, parts: int) -> None:
        if not self.parts_dir.is_dir():
            if parts:
                raise DataError(f"{self.parts_dir} is missing; start again without --resume")
            return
        for path in self.parts_dir.iterdir():  # *.tmp and parts written after the record
            keep = path.suffix == ".parquet" and int(path.stem.split("-")[1]) < parts
            if not keep:
                path.unlink()

    def _merge_parts(self) -> None:
        tmp = self.output.with_name(self.output.name + ".tmp")
        paths = [self._part(i) for i in range(self.progress.parts)]
        if not paths:
            raise DataError("no rows were written")
        with pq.ParquetWriter(tmp, self.schema) as writer:
            for path in paths:
                writer.write_table(pq.read_table(path, schema=self.schema))
        durable_replace(tmp, self.output)
        shutil.rmtree(self.parts_dir)

    def _save(self) -> None:
        tmp = self.progress_path.with_name(self.progress_path.name + ".tmp")
        tmp.write_text(json.dumps(asdict(self.progress)))
        durable_replace(tmp, self.progress_path)


def _advanced(progress: Progress, rows: int, **changes: Any) -> Progress:
    return Progress(**{**asdict(progress), "rows": progress.rows + rows, **changes})
