"""``finsentinel classify``: score a table of texts with a model directory (no torch).

Uses :class:`~models.scoring.Classifier`, the stream's code path.
:func:`classify_frame` adds the prediction columns to a frame
(:mod:`models.classify.core` says which, with their types);
:func:`classify_file` does it for a file, chunk by chunk, so a long run can be
stopped and resumed (:mod:`models.classify.output`).
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from models.classify.core import INT_COLUMNS, arrow_schema, classify_frame
from models.classify.output import ChunkWriter, Progress
from models.data import read_table, table_format
from models.exceptions import DataError
from models.scoring import Classifier

__all__ = ["INT_COLUMNS", "ClassifyRun", "classify_file", "classify_frame"]

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ClassifyRun:
    """What :func:`classify_file` did."""

    #: Rows in the input, and rows now in the output (all of them when ``complete``).
    total: int
    written: int
    #: Rows a resumed run found already written.
    resumed_from: int
    complete: bool
    #: Where the rows are: the output, or for an interrupted Parquet run its parts folder.
    path: Path


def classify_file(
    classifier: Classifier,
    input_path: Path,
    output_path: Path,
    *,
    text_column: str = "text",
    batch_size: int = 64,
    chunk_rows: int = 1024,
    resume: bool = False,
    progress: Callable[[int], None] | None = None,
    on_start: Callable[[int, int], None] | None = None,
    stop: Callable[[], bool] = lambda: False,
) -> ClassifyRun:
    """Classify ``input_path`` into ``output_path`` (formats by extension), writing
    every ``chunk_rows`` rows; ``stop()`` is checked between chunks.

    ``on_start(total, done)`` is called once the input is read (``done`` rows
    already written by the run being resumed); ``progress(n)`` after each chunk of
    ``n`` rows, empty texts included, so a progress bar ends at ``total``.
    """
    if chunk_rows < 1:
        raise DataError(f"chunk_rows must be at least 1, not {chunk_rows}")
    table_format(output_path)
    frame = read_table(input_path)
    if text_column not in frame.columns:
        raise DataError(f"{input_path}: no column {text_column!r} (columns: {list(frame.columns)})")
    empty = int((frame[text_column].fillna("").astype(str).str.strip() == "").sum())
    if empty:
        logger.warning("%d rows have an empty text: kept, not scored (n_tokens 0)", empty)
    expected = Progress(
        input=str(input_path.resolve()), input_rows=len(frame), text_column=text_column
    )
    schema = arrow_schema(frame, classifier)
    if resume:
        writer = ChunkWriter.resume(output_path, expected, schema)
    else:
        writer = ChunkWriter.start(output_path, expected, schema)
    done = writer.progress.rows
    if on_start is not None:
        on_start(len(frame), done)
    for start in range(done, len(frame), chunk_rows):
        if stop():
            logger.info("stopped after %d of %d rows", writer.progress.rows, len(frame))
            break
        chunk = classify_frame(
            frame.iloc[start : start + chunk_rows],
            classifier,
            text_column=text_column,
            batch_size=batch_size,
        )
        writer.write(chunk)
        if progress is not None:
            progress(len(chunk))
    complete = writer.progress.rows == len(frame)
    if complete:
        writer.finish()
    return ClassifyRun(
        total=len(frame),
        written=writer.progress.rows,
        resumed_from=done,
        complete=complete,
        path=output_path if complete else writer.partial_output,
    )
