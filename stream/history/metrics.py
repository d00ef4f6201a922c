"""The ``finsentinel_archive_*`` metrics of the archive sink, on an injectable registry.

Dead letters are counted in the shared ``finsentinel_deadletters_total``
(:mod:`stream.deadletters`) with ``stage="archive"``.

>>> from prometheus_client import CollectorRegistry
>>> registry = CollectorRegistry()
>>> metrics = ArchiveMetrics(registry)
>>> registry.get_sample_value(
...     "finsentinel_archive_files_closed_total", {"doc_type": "raw", "reason": "rebalance"})
0.0
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from stream.deadletters import DeadLetterCounter

__all__ = ["CLOSE_REASONS", "ArchiveMetrics"]

#: Why a file was closed (a label of ``finsentinel_archive_files_closed_total``).
CLOSE_REASONS = ("size", "age", "shutdown", "rebalance")


class ArchiveMetrics:
    """The ``finsentinel_archive_*`` metrics, labels created at start-up."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.records = Counter(
            "finsentinel_archive_records_written_total",
            "Records in archive files that were durably closed.",
            ["doc_type"],
            registry=registry,
        )
        self.files = Counter(
            "finsentinel_archive_files_closed_total",
            "Archive files closed, by why they were closed.",
            ["doc_type", "reason"],
            registry=registry,
        )
        self.bytes = Counter(
            "finsentinel_archive_bytes_written_total",
            "Bytes of archive files that were durably closed.",
            ["doc_type"],
            registry=registry,
        )
        self.rotation = Histogram(
            "finsentinel_archive_rotation_seconds",
            "Time to close a file: footer, fsync, rename, directory fsync.",
            buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0),
            registry=registry,
        )
        self.deadletters = DeadLetterCounter(registry, stage="archive")
        self.open_files = Gauge(
            "finsentinel_archive_open_files", "Archive files open now.", registry=registry
        )
        self.commits = Counter(
            "finsentinel_archive_offset_commits_total",
            "Offset commits after files were closed.",
            registry=registry,
        )
        for doc_type in ("raw", "scored"):
            self.records.labels(doc_type=doc_type)
            self.bytes.labels(doc_type=doc_type)
            for reason in CLOSE_REASONS:
                self.files.labels(doc_type=doc_type, reason=reason)
