"""Fault injection on the archive sink: every committed record ends up in a Parquet file.

The sink runs as a real process (``python -m finsentinel archive``) on the
module's private broker. Each test injects one fault while documents flow,
then fixes it, restarts the sink as a supervisor would, stops it with SIGTERM
and checks the promise of issue 20: every record below the group's committed
offset of its partition is in a Parquet file, and in the end every valid
document is archived. The faults:

* SIGKILL mid-file (no clean-up possible);
* a read-only partition directory. Tests run as root here, and root ignores
  permission bits, so ``chmod`` cannot stop a write: the directory is made
  immutable with ``chattr +i`` (ext4 and most Linux file systems; root is
  refused too), or ``chmod 0555`` when not root; skipped when neither works;
* a full disk: a 4 MiB tmpfs mounted under the test's directory and filled up
  (needs CAP_SYS_ADMIN; skipped with the reason otherwise);
* a raw record over 1 MB: dead-lettered, cut and flagged, while the sink keeps
  running.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from kafka import TopicPartition

from stream.contracts.schemas import DeadLetter, RawDocument, decode, encode, message_key
from stream.contracts.topics import TopicNames
from stream.kafka import KafkaSettings, ensure_topics, make_consumer, make_producer
from tests.faults.harness import PYTHON, Service, read_all, service_env

pytestmark = [pytest.mark.slow, pytest.mark.integration, pytest.mark.timeout(600)]

PUBLISHED = datetime(2026, 1, 5, 12, tzinfo=UTC)
DATE_DIR = "date=2026-01-05"


@dataclass
class Rig:
    """One archive sink process, its topics, group and directory."""

    kafka: KafkaSettings
    topics: TopicNames
    group: str
    root: Path
    sink: Service
    produced: int = 0

    def produce(self, n: int, *, rate_per_s: float = 0.0) -> None:
        """Send ``n`` valid raw documents (one event date) to the news and comments topics."""
        producer = make_producer(self.kafka)
        try:
            for _ in range(n):
                doc = _doc(self.produced)
                self.produced += 1
                topic = self.topics.raw[self.produced % 2]
                producer.send(topic, value=encode(doc), key=message_key(doc))
                if rate_per_s:
                    time.sleep(1.0 / rate_per_s)
            producer.flush()
        finally:
            producer.close()

    def committed(self) -> dict[tuple[str, int], int]:
        """The group's committed offset per partition of the raw topics."""
        consumer = make_consumer(self.kafka, group_id=self.group)
        try:
            out = {}
            for topic in self.topics.raw:
                for p in sorted(consumer.partitions_for_topic(topic) or []):
                    offset = consumer.committed(TopicPartition(topic, p))
                    if offset is not None:
                        out[(topic, p)] = offset
            return out
        finally:
            consumer.close(autocommit=False)

    def archived(self) -> dict[tuple[str, int, int], str]:
        """``(topic, partition, offset) -> id`` of every row in a finished Parquet file."""
        out = {}
        for path in self.root.rglob("*.parquet"):
            topic = next(p for p in path.parts if p.startswith("topic=")).removeprefix("topic=")
            table = pq.read_table(path, columns=["id", "kafka_partition", "kafka_offset"])
            for row in table.to_pylist():
                out[(topic, row["kafka_partition"], row["kafka_offset"])] = row["id"]
        return out

    def assert_committed_are_archived(
        self, skip: frozenset[tuple[str, int, int]] = frozenset()
    ) -> dict[tuple[str, int], int]:
        """Every record below a committed offset is in a Parquet file (``skip``: dead letters)."""
        archived = self.archived()
        committed = self.committed()
        missing = [
            (t, p, o)
            for (t, p), end in committed.items()
            for o in range(end)
            if (t, p, o) not in archived and (t, p, o) not in skip
        ]
        assert not missing, (
            f"{len(missing)} committed records are in no Parquet file, e.g. {missing[:5]}"
        )
        return committed

    def finish(self) -> None:
        """Wait until everything is committed, stop with SIGTERM, check every id is archived."""
        wait_for(
            lambda: sum(self.committed().values()) >= self.produced,
            timeout_s=120,
            what=f"the sink to commit all {self.produced} records",
        )
        assert self.sink.terminate() == 0, self.sink.log_tail()
        self.assert_committed_are_archived()
        ids = set(self.archived().values())
        assert ids == {f"doc-{i}" for i in range(self.produced)}
        assert not list(self.root.rglob("*.parquet.tmp"))


def wait_for(cond: Callable[[], object], *, timeout_s: float, what: str) -> None:
    """Poll ``cond`` until it is true; fail saying ``what`` was awaited."""
    deadline = time.monotonic() + timeout_s
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")
        time.sleep(0.25)


def _doc(i: int) -> RawDocument:
    return RawDocument(
        id=f"doc-{i}",
        source="wire",
        kind="news",
        title=f"Acme update number {i}",
        body="Shares moved after the report. " * 4,
        tickers=["ACME" if i % 2 else "BETA"],
        published_at=PUBLISHED + timedelta(seconds=i),
        fetched_at=PUBLISHED + timedelta(seconds=i),
    )


@pytest.fixture
def rig(fault_kafka: KafkaSettings, tmp_path: Path) -> Iterator[Rig]:
    """A sink with its own topics, group and root; files close 2 s after they open."""
    prefix = f"a{uuid.uuid4().hex[:8]}"
    topics = TopicNames.with_prefix(prefix)
    ensure_topics(fault_kafka, topics.all)
    root = tmp_path / "archive"
    env = service_env(
        fault_kafka,
        FINSENTINEL_TOPIC_PREFIX=prefix,
        FINSENTINEL_ARCHIVE_ROOT_DIR=str(root),
        FINSENTINEL_ARCHIVE_GROUP_ID=f"{prefix}-archive",
        FINSENTINEL_ARCHIVE_MAX_FILE_AGE_S="2",
        FINSENTINEL_ARCHIVE_POLL_TIMEOUT_S="0.2",
        # Row groups of 10 rows: an open file is on disk as *.parquet.tmp, half written.
        FINSENTINEL_ARCHIVE_ROW_GROUP_ROWS="10",
    )
    logs = tmp_path / "logs"
    logs.mkdir()
    argv = [PYTHON, "-m", "finsentinel", "archive"]
    sink = Service("archive", argv, env, "FINSENTINEL_ARCHIVE_METRICS_PORT", logs)
    rig = Rig(fault_kafka, topics, f"{prefix}-archive", root, sink)
    try:
        yield rig
    finally:
        if sink.proc is not None and sink.proc.poll() is None:
            sink.proc.kill()
            sink.proc.wait(timeout=30)


def _start(rig: Rig) -> None:
    rig.sink.start()
    wait_for(lambda: rig.sink.ready, timeout_s=90, what=f"the sink to start\n{rig.sink.log_tail()}")


def _exit_code(rig: Rig, timeout_s: float = 60.0) -> int:
    proc = rig.sink.proc
    assert proc is not None
    wait_for(lambda: proc.poll() is not None, timeout_s=timeout_s, what="the sink to stop")
    return proc.returncode


def _partition_dir(rig: Rig, topic: str) -> Path:
    return rig.root / "raw" / DATE_DIR / f"topic={topic}"


def test_sigkill_mid_file_loses_nothing(rig: Rig) -> None:
    _start(rig)
    rig.produce(100)
    wait_for(lambda: list(rig.root.rglob("*.parquet")), timeout_s=60, what="a first closed file")
    feeder = threading.Thread(target=rig.produce, args=(150,), kwargs={"rate_per_s": 50})
    feeder.start()
    wait_for(lambda: list(rig.root.rglob("*.parquet.tmp")), timeout_s=60, what="an open file")
    rig.sink.proc.kill()  # type: ignore[union-attr]  # mid-file: no footer, no commit
    rig.sink.proc.wait(timeout=30)  # type: ignore[union-attr]
    feeder.join()
    rig.assert_committed_are_archived()
    _start(rig)  # a sink alone on its root removes the killed one's .tmp files
    rig.finish()


def _make_read_only(path: Path) -> str:
    """Make ``path`` refuse new entries, even to root; returns how (to undo it)."""
    if os.geteuid() != 0:
        path.chmod(0o555)
        return "chmod"
    if shutil.which("chattr") is None:
        pytest.skip("running as root (chmod is ignored) and chattr is not installed")
    done = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"running as root and chattr +i failed on this file system: {done.stderr}")
    return "chattr"


def _make_writable(path: Path, how: str) -> None:
    if how == "chmod":
        path.chmod(0o755)
    else:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def test_a_read_only_partition_directory_commits_nothing_past_it(rig: Rig) -> None:
    """Issue 20's case A: one partition directory turns read-only while a file in it is
    half written and the other partition's files close fine."""
    _start(rig)
    rig.produce(40)
    directory = _partition_dir(rig, rig.topics.raw_comments)
    wait_for(lambda: list(directory.glob("*.parquet")), timeout_s=60, what="a first closed file")
    feeder = threading.Thread(target=rig.produce, args=(200,), kwargs={"rate_per_s": 40})
    feeder.start()
    # Freeze the directory while a file in it is open: its close (rename) then fails.
    wait_for(lambda: list(directory.glob("*.tmp")), timeout_s=60, what="an open file")
    how = _make_read_only(directory)
    try:
        code = _exit_code(rig)
        feeder.join()
        rig.assert_committed_are_archived()
        assert sum(rig.committed().values()) < rig.produced  # the failed file's records wait
        log = rig.sink.log_tail()
        assert code == 1, log
        assert "cannot write archive file" in log and str(directory) in log, log
        assert "Traceback" not in log, log
    finally:
        feeder.join()
        _make_writable(directory, how)
    _start(rig)
    rig.produce(30)
    rig.finish()


def test_a_full_disk_commits_nothing_past_the_file_that_did_not_fit(rig: Rig) -> None:
    disk = rig.root
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=4m", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill (needs CAP_SYS_ADMIN): {mounted.stderr}")
    try:
        _start(rig)
        rig.produce(60)
        wait_for(lambda: list(disk.rglob("*.parquet")), timeout_s=60, what="a first closed file")
        filler = disk / "filler"
        with filler.open("wb") as f, pytest.raises(OSError, match="No space left"):
            while True:
                f.write(b"\0" * 65_536)
                f.flush()
        rig.produce(120, rate_per_s=60)
        code = _exit_code(rig)
        rig.assert_committed_are_archived()
        log = rig.sink.log_tail()
        assert code == 1, log
        assert "cannot write archive file" in log and "No space left on device" in log, log
        assert str(disk) in log and "Traceback" not in log, log
        filler.unlink()  # the fault is fixed
        _start(rig)
        rig.finish()
    finally:
        if rig.sink.proc is not None and rig.sink.proc.poll() is None:
            rig.sink.proc.kill()
            rig.sink.proc.wait(timeout=30)
        subprocess.run(["umount", str(disk)], check=False)


def test_an_oversize_raw_record_is_dead_lettered_and_the_sink_keeps_running(rig: Rig) -> None:
    _start(rig)
    rig.produce(20)
    big = encode(_doc(10_000)).replace(b'"body":"', b'"body":"' + b"x" * 2_600_000, 1)
    producer = make_producer(rig.kafka, max_request_size=8 * 1024 * 1024)
    meta = producer.send(rig.topics.raw_news, value=big, key=b"BIG").get(timeout=30)
    producer.close()
    rig.produce(20)
    bad = (rig.topics.raw_news, int(meta.partition), int(meta.offset))
    wait_for(
        lambda: any((t, p) == bad[:2] and o > bad[2] for (t, p), o in rig.committed().items()),
        timeout_s=90,
        what=f"a commit past the oversize record\n{rig.sink.log_tail()}",
    )
    assert rig.sink.proc is not None and rig.sink.proc.poll() is None, rig.sink.log_tail()
    letters = [
        decode(value, DeadLetter) for *_, value in read_all(rig.kafka, [rig.topics.deadletter])
    ]
    assert [(d.stage, d.reason, d.truncated) for d in letters] == [("archive", "too_large", True)]
    (letter,) = letters
    assert letter.original_bytes == len(big) and letter.original == big[: len(letter.original)]
    assert (letter.source_topic, letter.partition, letter.offset) == bad
    assert len(encode(letter)) < 1_000_000
    wait_for(
        lambda: sum(rig.committed().values()) >= rig.produced + 1,
        timeout_s=120,
        what="every record committed",
    )
    assert rig.sink.terminate() == 0, rig.sink.log_tail()
    rig.assert_committed_are_archived(skip=frozenset({bad}))
    assert set(rig.archived().values()) == {f"doc-{i}" for i in range(rig.produced)}
