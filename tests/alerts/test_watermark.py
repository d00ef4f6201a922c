"""History-mode settings and helpers (no broker): lateness, end of input, the live hint."""

from __future__ import annotations

import logging

import pytest
from pydantic import ValidationError

from alerts.settings import AlertSettings
from alerts.watermark import EndOfInput, HistoryHint, describe, lateness_s


def test_history_lateness_defaults_to_the_longest_window_and_is_bounded_by_it() -> None:
    assert lateness_s(AlertSettings(history=True, windows_s=(300, 3600))) == 3600
    assert lateness_s(AlertSettings(history=True, history_lateness_s=600)) == 600
    assert lateness_s(AlertSettings(history_lateness_s=600)) == 120  # live ignores it
    with pytest.raises(ValidationError, match="history_lateness_s=90000 exceeds"):
        AlertSettings(history=True, history_lateness_s=90_000)


def test_the_start_up_line_says_which_mode_runs() -> None:
    assert describe(AlertSettings()).startswith("live mode: the watermark is the newest")
    line = describe(AlertSettings(history=True, history_end_after_s=5))
    assert "event time only (lateness 86400 s)" in line and "after 5 s without input" in line


def test_end_of_input_is_due_once_per_quiet_period() -> None:
    end = EndOfInput(after_s=10)
    end.seen(now_s=0.0)
    assert [end.due(now_s=t) for t in (5.0, 10.0, 11.0)] == [False, True, False]
    end.seen(now_s=20.0)  # another back-fill
    assert end.due(now_s=30.0)


def test_the_history_hint_is_one_warning_and_silent_in_history_mode(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING):
        live = HistoryHint(AlertSettings())
        assert not live.check(max_event_s=10_000, now_s=10_000 + 1800.0)  # lagging, not history
        assert live.check(max_event_s=0, now_s=5 * 86_400.0)
        assert not live.check(max_event_s=0, now_s=6 * 86_400.0)
        assert not HistoryHint(AlertSettings(history=True)).check(max_event_s=0, now_s=1e9)
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "120.0 h behind the wall clock" in caplog.records[0].getMessage()
