"""Crawler service settings (environment prefix ``FINSENTINEL_INGEST_``).

Explicit arguments win over the environment; rules between settings are
checked at construction with messages that say how to fix them.

>>> s = IngestSettings(contact_url="https://example.org/bot")
>>> s.user_agent
'FinSentinelBot/0.1 (+https://example.org/bot)'
>>> IngestSettings(retry_backoff_base_s=10, retry_backoff_max_s=1)
Traceback (most recent call last):
...
pydantic_core._pydantic_core.ValidationError: 1 validation error for IngestSettings
...
"""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

__all__ = ["IngestSettings"]


class IngestSettings(BaseSettings):
    """Everything the crawler service needs except Kafka (see ``stream.kafka.KafkaSettings``)."""

    model_config = SettingsConfigDict(env_prefix="FINSENTINEL_INGEST_", extra="forbid", frozen=True)

    #: YAML file listing the sources (see ``ingest/sources.example.yaml``).
    sources_file: Path = Path("sources.yaml")
    #: Dedup database, per-source cursors and processed-file state live here.
    state_dir: Path = Path("var/ingest")

    # -- identity and politeness ------------------------------------------------
    user_agent_product: str = "FinSentinelBot/0.1"
    #: Where site owners learn about the crawler; sent in the User-Agent.
    contact_url: str = "https://github.com/finsentinel/finsentinel"
    connect_timeout_s: float = Field(default=5.0, gt=0)
    read_timeout_s: float = Field(default=20.0, gt=0)
    #: Bodies larger than this are aborted mid-download.
    max_response_bytes: int = Field(default=10_000_000, ge=1_024)
    max_redirects: int = Field(default=5, ge=0, le=20)
    max_retries: int = Field(default=3, ge=0, le=10)
    retry_backoff_base_s: float = Field(default=1.0, ge=0)
    retry_backoff_max_s: float = Field(default=60.0, ge=0)
    #: A Retry-After longer than this fails the fetch instead of blocking a worker.
    retry_after_max_s: float = Field(default=300.0, ge=0)
    #: Requests in flight to one host at once, across all sources.
    per_host_concurrency: int = Field(default=2, ge=1)
    #: Minimum gap between two requests to one host, across all sources.
    per_host_min_interval_s: float = Field(default=1.0, ge=0)
    robots_cache_ttl_s: float = Field(default=3_600.0, ge=0)
    #: Respect robots.txt (turn off only for hosts you own).
    respect_robots: bool = True

    # -- entities ---------------------------------------------------------------
    #: Extra company alias tables (CSV ``symbol,aliases``) on top of the shipped one;
    #: a JSON list in the environment (`FINSENTINEL_INGEST_ALIAS_FILES='["a.csv"]'`).
    alias_files: list[Path] = []
    #: Symbols linked whenever they stand bare in a text (upper case, not stop-listed),
    #: on top of the shipped list; a JSON list (`FINSENTINEL_INGEST_TICKERS_ALWAYS='["KO"]'`).
    tickers_always: list[str] = []

    # -- deduplication ----------------------------------------------------------
    #: Estimated Jaccard similarity (MinHash of 3-word shingles) from which two
    #: stories are one story; novelty is 1 - the highest similarity in the window.
    near_duplicate_min_similarity: float = Field(default=0.6, gt=0, le=1)
    #: Texts with fewer words are deduplicated exactly only: on a bare headline a
    #: similarity estimate cannot tell a syndicated copy from a templated sibling
    #: ("... results on Thursday" / "... results in March").
    near_duplicate_min_words: int = Field(default=20, ge=1)
    #: Near-duplicate and novelty comparisons look back this far.
    near_window_s: float = Field(default=72 * 3_600.0, gt=0)
    #: Ids and content hashes are remembered this long ...
    dedup_retention_s: float = Field(default=30 * 86_400.0, gt=0)
    #: ... and at most this many (oldest evicted first).
    dedup_max_entries: int = Field(default=500_000, ge=100)

    # -- scheduling and failure handling ----------------------------------------
    #: Worker threads running source passes concurrently.
    max_concurrent_sources: int = Field(default=4, ge=1)
    #: Consecutive failed passes before a source is backed off.
    breaker_failure_threshold: int = Field(default=3, ge=1)
    breaker_cooldown_s: float = Field(default=60.0, ge=0)
    breaker_max_cooldown_s: float = Field(default=3_600.0, ge=0)
    #: How long a pass waits for the broker to acknowledge what it produced.
    produce_timeout_s: float = Field(default=60.0, gt=0)

    # -- endpoint and logging ---------------------------------------------------
    metrics_host: str = "127.0.0.1"
    metrics_port: int = Field(default=9103, ge=0, le=65_535)
    log_level: str = "INFO"
    json_logs: bool = False

    @property
    def user_agent(self) -> str:
        """The User-Agent header: product and contact URL."""
        return f"{self.user_agent_product} (+{self.contact_url})"

    @model_validator(mode="after")
    def _check(self) -> IngestSettings:
        if self.retry_backoff_max_s < self.retry_backoff_base_s:
            raise ValueError(
                "retry_backoff_max_s must be >= retry_backoff_base_s: raise "
                "FINSENTINEL_INGEST_RETRY_BACKOFF_MAX_S or lower ..._BASE_S"
            )
        if self.breaker_max_cooldown_s < self.breaker_cooldown_s:
            raise ValueError(
                "breaker_max_cooldown_s must be >= breaker_cooldown_s: raise "
                "FINSENTINEL_INGEST_BREAKER_MAX_COOLDOWN_S"
            )
        if self.near_window_s > self.dedup_retention_s:
            raise ValueError(
                "near_window_s cannot exceed dedup_retention_s: the window would look at "
                "evicted entries; lower FINSENTINEL_INGEST_NEAR_WINDOW_S"
            )
        if not self.contact_url.startswith(("http://", "https://", "mailto:")):
            raise ValueError("contact_url must be an http(s):// or mailto: URL")
        return self
