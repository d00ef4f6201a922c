"""Settings of the archive sink: environment variables ``FINSENTINEL_ARCHIVE_<FIELD>``.

>>> s = ArchiveSettings(root_dir="/tmp/arch", max_file_bytes=1_000_000)
>>> s.max_file_bytes, s.group_id
(1000000, 'finsentinel-archive')
>>> ArchiveSettings(root_dir="/tmp/arch", poll_timeout_s=30, max_file_age_s=10)
... # doctest: +ELLIPSIS
Traceback (most recent call last):
...
pydantic_core._pydantic_core.ValidationError: 1 validation error for ArchiveSettings
  Value error, poll_timeout_s (30.0) must be below max_file_age_s (10.0) ...
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from stream.contracts.deadletters import DEFAULT_MAX_ORIGINAL_BYTES
from stream.contracts.errors import ConfigError
from stream.settings import ServiceSettings

__all__ = ["ArchiveSettings"]


class ArchiveSettings(ServiceSettings):
    """How the archive sink consumes, writes and rotates Parquet files."""

    model_config = SettingsConfigDict(
        env_prefix="FINSENTINEL_ARCHIVE_", extra="forbid", frozen=True
    )

    #: Directory that holds ``raw/`` and ``scored/`` (created if missing).
    root_dir: Path = Path("archive")
    #: Consumer group of the sink; never shared with a live service.
    group_id: str = "finsentinel-archive"
    #: Archive the raw topics (news and comments).
    include_raw: bool = True
    #: Archive the scored topic.
    include_scored: bool = True
    #: Close a file once its estimated size reaches this many bytes.
    max_file_bytes: int = Field(default=128 * 1024 * 1024, ge=64 * 1024)
    #: Close a file this many seconds after it was opened, even if small.
    max_file_age_s: float = Field(default=600.0, gt=0)
    #: Rows buffered per open file before they are written as a row group.
    row_group_rows: int = Field(default=10_000, ge=1)
    #: Upper bound on records fetched by one poll.
    max_poll_records: int = Field(default=2_000, ge=1)
    poll_timeout_s: float = Field(default=1.0, gt=0)
    #: Parquet compression codec.
    compression: str = "zstd"
    #: When another sink holds the same root, ``*.parquet.tmp`` files older than this
    #: at start-up are leftovers of a crash (alone on the root, every one is).
    stale_tmp_age_s: float = Field(default=3_600.0, gt=0)
    #: Dead letters carry at most this many bytes of the rejected record (``truncated``
    #: says when they were cut), so a letter always fits one Kafka message.
    deadletter_max_original_bytes: int = Field(default=DEFAULT_MAX_ORIGINAL_BYTES, ge=1_024)
    metrics_host: str = "127.0.0.1"
    #: 0 picks any free port.
    metrics_port: int = Field(default=9104, ge=0, le=65_535)

    @model_validator(mode="after")
    def _check(self) -> ArchiveSettings:
        if not (self.include_raw or self.include_scored):
            raise ConfigError(
                "include_raw and include_scored are both false: enable at least one "
                "(FINSENTINEL_ARCHIVE_INCLUDE_RAW / FINSENTINEL_ARCHIVE_INCLUDE_SCORED)"
            )
        if self.poll_timeout_s >= self.max_file_age_s:
            raise ConfigError(
                f"poll_timeout_s ({self.poll_timeout_s}) must be below max_file_age_s "
                f"({self.max_file_age_s}) or files are closed late; lower "
                "FINSENTINEL_ARCHIVE_POLL_TIMEOUT_S"
            )
        if self.stale_tmp_age_s <= self.max_file_age_s:
            raise ConfigError(
                "stale_tmp_age_s must exceed max_file_age_s, or a live file could be "
                "taken for a leftover; raise FINSENTINEL_ARCHIVE_STALE_TMP_AGE_S"
            )
        return self
