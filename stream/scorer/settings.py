"""Settings of the stream scorer (``FINSENTINEL_SCORER_*``).

>>> s = ScorerSettings(batch_max_size=32, metrics_port=0)
>>> s.batch_max_size, s.provider
(32, 'auto')
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, model_validator
from pydantic_settings import SettingsConfigDict

from stream.contracts.deadletters import DEFAULT_MAX_ORIGINAL_BYTES
from stream.contracts.errors import ConfigError
from stream.settings import ServiceSettings

__all__ = ["ScorerSettings"]


class ScorerSettings(ServiceSettings):
    """How the scorer batches, scores and delivers. Kafka itself: :class:`KafkaSettings`."""

    model_config = SettingsConfigDict(env_prefix="FINSENTINEL_SCORER_", extra="forbid", frozen=True)

    #: Model directory; empty means the shipped ``models/default``.
    model_dir: Path | None = None
    #: A model registry (:mod:`models.registry`): score with its ACTIVE version and switch
    #: models when the pointer moves (checked between batches). Excludes ``model_dir``.
    registry_dir: Path | None = None
    #: Seconds between two checks of the registry's ACTIVE pointer; 0: only on SIGHUP.
    registry_poll_s: float = Field(default=5.0, ge=0)
    #: A candidate model directory scored in shadow next to the live model: its output
    #: goes to the ``scored.shadow`` topic and its disagreement is exported.
    shadow_model_dir: Path | None = None
    #: ``auto`` uses CUDA when a usable GPU is present, else CPU.
    provider: Literal["auto", "cpu", "cuda"] = "auto"
    device_id: int = Field(default=0, ge=0)
    #: Refuse to start instead of falling back to CPU.
    require_gpu: bool = False
    #: ONNX Runtime CPU threads; empty means every core this process may use.
    intra_op_threads: int | None = Field(default=None, ge=1)
    group_id: str = Field(default="finsentinel-scorer", min_length=1)
    #: Most records taken from Kafka per micro-batch.
    batch_max_size: int = Field(default=256, ge=1, le=10_000)
    #: Longest wait for a micro-batch to fill once its first record arrived.
    batch_max_wait_ms: int = Field(default=100, ge=0)
    #: Windows per ONNX Runtime call (a batch is sorted by length, then cut into these).
    inference_batch_size: int = Field(default=64, ge=1, le=4_096)
    #: Padded tokens (windows x longest) per ONNX Runtime call; long windows then go in
    #: smaller batches. Empty: 1,024 on CPU, no cap on CUDA.
    max_batch_tokens: int | None = Field(default=None, ge=16)
    #: Poll timeout while idle; bounds how quickly a stop request is noticed.
    idle_poll_ms: int = Field(default=500, ge=10)
    #: Longest time the broker may hold a fetch when no data is waiting (bounds latency
    #: on brokers that do not answer a waiting fetch as soon as data arrives).
    fetch_max_wait_ms: int = Field(default=100, ge=1, le=5_000)
    #: Kafka's limit between polls; a batch must be scored and delivered well within it.
    max_poll_interval_ms: int = Field(default=300_000, ge=10_000)
    #: Documents with more tokens are dead-lettered as ``too_large``.
    max_document_tokens: int = Field(default=16_384, ge=16)
    #: How long to wait for the broker to acknowledge a batch's records.
    produce_timeout_s: float = Field(default=60.0, gt=0)
    #: Pause before re-reading a batch whose records the broker did not acknowledge.
    retry_backoff_ms: int = Field(default=1_000, ge=0)
    #: Dead letters keep at most this many bytes of the original (it stays in the raw topic).
    deadletter_max_original_bytes: int = Field(default=DEFAULT_MAX_ORIGINAL_BYTES, ge=1_024)
    #: Scored documents in the drift-monitoring window (:mod:`stream.scorer.drift`).
    drift_window_documents: int = Field(default=1_000, ge=10, le=1_000_000)
    #: A top-class probability under this is a low-confidence prediction; empty: the
    #: floor of the model's reference profile (0.5 unless it was made with another).
    drift_confidence_floor: float | None = Field(default=None, gt=0, lt=1)
    metrics_host: str = "127.0.0.1"
    #: 0 picks any free port.
    metrics_port: int = Field(default=9101, ge=0, le=65_535)

    @model_validator(mode="after")
    def _check_rules(self) -> ScorerSettings:
        if self.model_dir is not None and self.registry_dir is not None:
            raise ConfigError(
                "model_dir and registry_dir both name the model to score: unset "
                "FINSENTINEL_SCORER_MODEL_DIR to follow the registry's ACTIVE version"
            )
        if self.require_gpu and self.provider == "cpu":
            raise ConfigError(
                "require_gpu=true contradicts provider=cpu: set FINSENTINEL_SCORER_PROVIDER "
                "to cuda or auto, or unset FINSENTINEL_SCORER_REQUIRE_GPU"
            )
        if self.batch_max_wait_ms * 2 >= self.max_poll_interval_ms:
            raise ConfigError(
                f"batch_max_wait_ms={self.batch_max_wait_ms} must be under half of "
                f"max_poll_interval_ms={self.max_poll_interval_ms}: lower the wait or "
                "raise FINSENTINEL_SCORER_MAX_POLL_INTERVAL_MS"
            )
        budget_ms = self.batch_max_wait_ms + self.produce_timeout_s * 1_000
        if budget_ms * 2 >= self.max_poll_interval_ms:
            raise ConfigError(
                f"batch_max_wait_ms + produce_timeout_s ({budget_ms:.0f} ms) must be under "
                f"half of max_poll_interval_ms={self.max_poll_interval_ms}, leaving room "
                "for inference: lower FINSENTINEL_SCORER_PRODUCE_TIMEOUT_S or raise "
                "FINSENTINEL_SCORER_MAX_POLL_INTERVAL_MS"
            )
        return self
