"""Alert lifecycle per rule: firing, updated, resolved, with cooldown and evidence.

The tracker compares what the detectors want (hysteresis active) with what is
open, in event time:

* active and not open, and out of cooldown -> **firing** (a new alert);
* open and still active, grown by ``growth`` since the last event, and at
  least ``update_interval`` after it -> **updated**;
* open and no longer active -> **resolved**, and the key cools down for
  ``cooldown``: a new firing waits until it expires (if the condition still
  holds then, it fires).

One alert per key (rule + series) is open at a time; the key is the dedup key.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np
from numpy.typing import NDArray

from alerts.durations import format_duration_s
from alerts.rules import Rule
from alerts.series import SeriesKey
from stream.contracts.schemas import Alert, AlertEvidence

__all__ = ["Observation", "RuleTracker"]

FloatArray = NDArray[np.float64]


def _dt(ts_s: int) -> datetime:
    return datetime.fromtimestamp(ts_s, tz=UTC)


@dataclass(frozen=True)
class Observation:
    """What the detectors saw on one final bucket, per series row."""

    end_s: int
    active: NDArray[np.bool_]
    score: FloatArray
    negative: FloatArray  # window negative count
    expected: FloatArray  # baseline negative count for the window (NaN if unknown)
    share: FloatArray  # window negative share
    baseline_share: FloatArray  # NaN if unknown


@dataclass
class _Open:
    started_s: int
    last_event_s: int
    last_negative: float
    peak_score: float


class RuleTracker:
    """Turns per-bucket decisions of one rule into :class:`Alert` transitions."""

    growth = 1.25  # an "updated" event needs 25 % more negative documents than the last one

    def __init__(
        self,
        rule: Rule,
        *,
        key_of: Callable[[int], SeriesKey],
        labels_of: Callable[[str, str], dict[str, str]],
        evidence_of: Callable[[int, int], list[AlertEvidence]],
    ) -> None:
        self.rule = rule
        self._key_of = key_of
        self._labels_of = labels_of
        self._evidence_of = evidence_of
        self.open: dict[int, _Open] = {}
        self.cooldown_until: dict[int, int] = {}

    def step(self, obs: Observation) -> list[Alert]:
        """Alerts for the transitions on this bucket, in row order."""
        out: list[Alert] = []
        for row in np.flatnonzero(obs.active).tolist():
            if row in self.open:
                alert = self._maybe_update(row, obs)
            elif self.cooldown_until.get(row, 0) <= obs.end_s:
                alert = self._fire(row, obs)
            else:
                alert = None
            if alert is not None:
                out.append(alert)
        for row in sorted(r for r in self.open if not obs.active[r]):
            out.append(self._resolve(row, obs))
        return out

    def _fire(self, row: int, obs: Observation) -> Alert:
        state = _Open(obs.end_s, obs.end_s, float(obs.negative[row]), float(obs.score[row]))
        self.open[row] = state
        self.cooldown_until.pop(row, None)
        return self._alert(row, obs, "firing", state)

    def _maybe_update(self, row: int, obs: Observation) -> Alert | None:
        state = self.open[row]
        state.peak_score = max(state.peak_score, float(obs.score[row]))
        due = obs.end_s - state.last_event_s >= self.rule.update_interval_s
        grew = obs.negative[row] >= self.growth * max(state.last_negative, 1.0)
        if not (due and grew):
            return None
        state.last_event_s, state.last_negative = obs.end_s, float(obs.negative[row])
        return self._alert(row, obs, "updated", state)

    def _resolve(self, row: int, obs: Observation) -> Alert:
        state = self.open.pop(row)
        self.cooldown_until[row] = obs.end_s + self.rule.cooldown_s
        return self._alert(row, obs, "resolved", state, resolved_s=obs.end_s)

    def _alert(
        self, row: int, obs: Observation, state_name: str, st: _Open, resolved_s: int | None = None
    ) -> Alert:
        kind, value = self._key_of(row)
        rule = self.rule
        since = st.started_s - rule.window_s
        neg, exp = float(obs.negative[row]), float(obs.expected[row])
        share, base = float(obs.share[row]), float(obs.baseline_share[row])
        labels = {
            **self._labels_of(kind, value),
            **rule.labels,
            "rule": rule.name,
            "series_kind": kind,
            "series": value,
            "severity": rule.severity,
        }
        return Alert(
            key=rule.key(kind, value),
            rule=rule.name,
            series_kind=kind,  # type: ignore[arg-type]
            series=value,
            state=state_name,  # type: ignore[arg-type]
            severity=rule.severity,
            # + 0.0 turns a -0.0 (a log10(1) score) into 0.0: receivers see "score": 0.0.
            score=float(np.clip(np.nan_to_num(obs.score[row]), 0.0, 1.0)) + 0.0,
            observed=neg,
            baseline=0.0 if np.isnan(exp) else exp,
            window_start=_dt(obs.end_s - rule.window_s),
            window_end=_dt(obs.end_s),
            started_at=_dt(st.started_s),
            updated_at=_dt(obs.end_s),
            resolved_at=_dt(resolved_s) if resolved_s is not None else None,
            summary=self._summary(kind, value, state_name, neg, exp, share, base),
            labels=labels,
            evidence=self._evidence_of(row, since),
        )

    def _summary(
        self, kind: str, value: str, state: str, neg: float, exp: float, share: float, base: float
    ) -> str:
        window = format_duration_s(self.rule.window_s)
        what = f"negative coverage on {kind} {value}"
        if state == "resolved":
            return f"Resolved: {what} is back to normal ({neg:.0f} negative in the last {window})."
        expected = "" if np.isnan(exp) else f" vs {exp:.1f} expected"
        shares = "" if np.isnan(share) else f"; negative share {share:.0%}"
        if not np.isnan(base):
            shares += f" vs {base:.0%} baseline"
        return f"Spike in {what}: {neg:.0f} negative documents in {window}{expected}{shares}."

    def state(self) -> dict[str, Any]:
        """JSON-able state for checkpoints."""
        return {
            "open": {str(r): vars(s) for r, s in self.open.items()},
            "cooldown_until": {str(r): t for r, t in self.cooldown_until.items()},
        }

    def load(self, state: dict[str, Any]) -> None:
        """Restore from :meth:`state`."""
        self.open = {int(r): _Open(**s) for r, s in state["open"].items()}
        self.cooldown_until = {int(r): int(t) for r, t in state["cooldown_until"].items()}
