"""Scorer settings: environment names, units, and the rules checked at start-up."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from stream.scorer.metrics import fallback_reason_class
from stream.scorer.settings import ScorerSettings


def test_environment_variables_use_the_scorer_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINSENTINEL_SCORER_BATCH_MAX_SIZE", "17")
    monkeypatch.setenv("FINSENTINEL_SCORER_PROVIDER", "cuda")
    monkeypatch.setenv("FINSENTINEL_SCORER_DEVICE_ID", "1")
    settings = ScorerSettings()
    assert (settings.batch_max_size, settings.provider, settings.device_id) == (17, "cuda", 1)


def test_explicit_arguments_beat_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FINSENTINEL_SCORER_BATCH_MAX_SIZE", "17")
    assert ScorerSettings(batch_max_size=3).batch_max_size == 3


def test_unknown_settings_are_errors() -> None:
    with pytest.raises(ValidationError, match="batch_size"):
        ScorerSettings(batch_size=3)  # type: ignore[call-arg]


def test_settings_are_frozen() -> None:
    settings = ScorerSettings()
    with pytest.raises(ValidationError):
        settings.batch_max_size = 3  # type: ignore[misc]


def test_batch_wait_must_stay_well_under_the_poll_interval() -> None:
    with pytest.raises(ValidationError, match="MAX_POLL_INTERVAL_MS"):
        ScorerSettings(batch_max_wait_ms=6_000, max_poll_interval_ms=10_000)


def test_produce_timeout_counts_against_the_poll_interval() -> None:
    with pytest.raises(ValidationError, match="PRODUCE_TIMEOUT_S"):
        ScorerSettings(produce_timeout_s=30, max_poll_interval_ms=60_000)


def test_require_gpu_contradicts_cpu() -> None:
    with pytest.raises(ValidationError, match="require_gpu"):
        ScorerSettings(provider="cpu", require_gpu=True)


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        ("CUDAExecutionProvider is not in this onnxruntime build (install onnxruntime-gpu)",
         "not_in_build"),
        ("creating a CUDA session failed: libcudnn.so.9 missing", "session_error"),
        ("onnxruntime could not initialise CUDA (no GPU, or CUDA/cuDNN libraries missing)",
         "no_usable_gpu"),
        ("no NVIDIA GPU device on this machine (/dev/nvidia* absent)", "no_gpu_device"),
        ("something new", "other"),
    ],
)  # fmt: skip
def test_fallback_reasons_map_to_a_fixed_label_set(message: str, expected: str) -> None:
    assert fallback_reason_class(message) == expected


def test_a_model_dir_and_a_registry_are_not_both_the_model() -> None:
    with pytest.raises(ValidationError, match="unset FINSENTINEL_SCORER_MODEL_DIR"):
        ScorerSettings(model_dir="models/default", registry_dir="registry")
