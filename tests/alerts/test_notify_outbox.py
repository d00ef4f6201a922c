"""The notification outbox against a real HTTP receiver: what survives a restart, what is
never sent twice, bounds, retention and metrics."""

from __future__ import annotations

import json
import math
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from alerts.db import Database
from alerts.exceptions import StoreError
from alerts.notify import Dispatcher, Notification, RetryPolicy, build_notifiers
from alerts.notify.keys import HEADER
from alerts.notify.outbox import Outbox
from alerts.rules import RulesFile, parse_rules
from alerts.service import AlertService
from alerts.settings import AlertSettings
from alerts.store import AlertStore
from alerts.testing import sample_alert, synthetic_stream
from stream.contracts.schemas import Alert
from stream.kafka import KafkaSettings

from .conftest import SECRET, Receiver

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 5, 8, 0, tzinfo=UTC)
ENV = {"HOOK_SECRET": SECRET.decode()}


def _wait(predicate: Callable[[], bool], timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def _rules(url: str, group_by: str | None = None) -> RulesFile:
    group = f", group_by: {group_by}" if group_by else ""
    return parse_rules(
        f"""
rules: [{{name: negative-spike-topic, series: {{kind: topic}}{group}}}]
channels:
  - {{name: hook, type: webhook, url: "{url}", secret_env: HOOK_SECRET,
      rate_limit_per_minute: 6000}}
"""
    )


def _dispatcher(db: Database, rules: RulesFile) -> Dispatcher:
    return Dispatcher(
        rules,
        build_notifiers(rules.channels, env=ENV, clock=time.time),
        clock=time.time,
        outbox=Outbox(db),
        retry=RetryPolicy(initial_s=0.05, max_s=0.2),
    )


def _alert(i: int) -> Alert:
    return sample_alert(key=f"negative-spike-topic:topic:T{i}", series=f"T{i}")


def _keys(receiver: Receiver) -> list[str]:
    return [h[HEADER] for h in receiver.headers]


def test_after_a_restart_only_undelivered_notifications_are_sent(
    tmp_path: Path, receiver: Receiver
) -> None:
    db_path = tmp_path / "alerts.sqlite"
    first = _dispatcher(Database(db_path), _rules(receiver.url)).start()
    first.submit(_alert(0))
    first.submit(_alert(1))
    _wait(lambda: len(receiver.bodies) == 2)
    with receiver.lock:
        receiver.fail_next = 10**9  # the receiver goes down
    first.submit(_alert(2))
    _wait(lambda: receiver.attempts >= 4)
    first.stop(timeout_s=0.5)  # the process ends with T2 undelivered
    with receiver.lock:
        receiver.fail_next = 0
    second = _dispatcher(Database(db_path), _rules(receiver.url))
    for i in range(3):  # the restarted service re-derives the same transitions
        second.submit(_alert(i))
    second.start()
    _wait(lambda: len(receiver.bodies) == 3)
    second.stop()
    series = [json.loads(b)["alerts"][0]["series"] for b in receiver.bodies]
    assert series == ["T0", "T1", "T2"]  # in order, each once
    assert len(set(_keys(receiver))) == 3 and all(receiver.signatures_ok)
    assert second.outbox.pending() == 0


def test_a_refused_notification_is_not_retried_after_a_restart(
    tmp_path: Path, receiver: Receiver
) -> None:
    db = Database(tmp_path / "alerts.sqlite")
    receiver.fail_next, receiver.fail_status = 1, 400
    first = _dispatcher(db, _rules(receiver.url)).start()
    first.submit(_alert(0))
    _wait(lambda: receiver.attempts == 1 and first.pending == 0)
    first.stop()
    second = _dispatcher(db, _rules(receiver.url)).start()
    second.submit(_alert(0))
    second.submit(_alert(1))
    _wait(lambda: len(receiver.bodies) == 1)
    second.stop()
    assert receiver.attempts == 2  # T0 refused once, T1 delivered; T0 never again
    with db.transaction() as conn:
        rows = conn.execute("SELECT status, attempts FROM outbox ORDER BY id").fetchall()
    assert rows == [("rejected", 1), ("sent", 1)]


def test_the_outbox_is_bounded_and_finished_rows_are_pruned(tmp_path: Path) -> None:
    db = Database(tmp_path / "alerts.sqlite")
    box = Outbox(db, max_pending=2, retention_s=3600)
    notes = [Notification((_alert(i),), created_s=1_000.0 + i) for i in range(3)]
    assert [box.add(n, ["hook"])[1] for n in notes] == [{}, {}, {"hook": 1}]
    first = box.next_pending("hook")
    assert first is not None and first.notification == notes[1]  # the oldest was dropped
    box.finish(first, "sent", now_s=1_010.0)
    assert box.prune(now_s=1_000.0 + 3600) == 0  # kept for the retention
    assert box.prune(now_s=1_010.0 + 3601) == 2  # the sent and the dropped one
    assert box.pending("hook") == 1  # a pending row is never pruned
    # Pruned keys are forgotten: the retention must outlast any replay after a restart.
    assert box.add(notes[1], ["hook"])[0] == 1


def test_the_transition_and_its_intent_commit_together(tmp_path: Path, receiver: Receiver) -> None:
    db = Database(tmp_path / "alerts.sqlite")
    store, dispatcher = AlertStore(db), _dispatcher(db, _rules(receiver.url))
    with pytest.raises(StoreError), db.transaction() as conn:
        store.record(_alert(0))
        dispatcher.submit(_alert(0))
        conn.execute("INSERT INTO no_such_table VALUES (1)")  # the transaction fails
    assert store.list() == [] and dispatcher.outbox.pending() == 0


def test_waiting_groups_are_restored_with_the_checkpoint(
    tmp_path: Path, receiver: Receiver
) -> None:
    db = Database(tmp_path / "alerts.sqlite")
    rules = _rules(receiver.url, group_by="sector")
    first = _dispatcher(db, rules)
    for t in ("JPM", "BAC"):
        first.submit(sample_alert(key=f"negative-spike-topic:topic:{t}", series=t,
                                  labels={"sector": "banks"}))  # fmt: skip
    first.save_groups()  # the checkpoint; then the process dies before the group is due
    second = _dispatcher(db, rules)
    second.load_groups()
    second.flush()
    delivery = second.outbox.next_pending("hook")
    assert delivery is not None
    assert {a.series for a in delivery.notification.alerts} == {"JPM", "BAC"}


class FakeClock:
    def __init__(self, start: datetime) -> None:
        self.now = start.timestamp()

    def __call__(self) -> float:
        return self.now


def _service(
    tmp_path: Path, clock: FakeClock, url: str, registry: CollectorRegistry
) -> AlertService:
    return AlertService(
        AlertSettings(db_path=tmp_path / "alerts.sqlite", metrics_port=0, group_wait_s=0),
        kafka=KafkaSettings(bootstrap_servers="127.0.0.1:1"),  # run() is not called here
        registry=registry,
        clock=clock,
        rules=parse_rules(
            "rules:\n  - {name: neg, series: {kind: topic}, min_history: 30m, hold: 2m,"
            f" clear: 10m}}\nchannels:\n  - {{name: hook, type: webhook, url: '{url}',"
            " secret_env: HOOK_SECRET, rate_limit_per_minute: 6000}\n"
        ),
        env=ENV,
    )


def test_a_crash_before_the_checkpoint_does_not_notify_twice(
    tmp_path: Path, receiver: Receiver
) -> None:
    """The issue's case in one process: transitions notified, then the process dies before
    its checkpoint; the restart re-derives them from the older state and sends nothing."""
    receiver.tolerance_s = math.inf  # the sender runs on the simulated clock
    docs = synthetic_stream(start=T0, hours=4, docs=480, seed=2, burst_topic="Legal")
    runs: list[AlertService] = []
    for registry in (CollectorRegistry(), CollectorRegistry()):
        clock = FakeClock(T0)
        service = _service(tmp_path, clock, receiver.url, registry)
        runs.append(service)
        assert service.stats["accepted"] == 0  # no checkpoint was ever saved
        service.dispatcher.start()
        for doc in docs:
            clock.now = max(clock.now, doc.published_at.timestamp() + 1)
            service.add(doc)
            service.evaluate_now()
        _wait(lambda s=service: s.dispatcher.pending == 0)  # type: ignore[misc]
        pending = registry.get_sample_value(
            "finsentinel_alerts_notifications_pending", {"channel_type": "webhook"}
        )
        sent = registry.get_sample_value(
            "finsentinel_alerts_notifications_total", {"channel_type": "webhook", "outcome": "sent"}
        )
        service.dispatcher.stop()
        service.db.close()  # dies here: no checkpoint
    first, second = runs
    states = [a.state for a in first.alerts()]
    assert "firing" in states and "resolved" in states
    assert [(a.key, a.state) for a in second.alerts()] == [(a.key, a.state) for a in first.alerts()]
    assert Counter(_keys(receiver)) == Counter({k: 1 for k in _keys(receiver)})
    assert len(receiver.bodies) == len(first.alerts())
    assert pending == 0 and sent == 0  # the second run sent nothing


def test_rows_of_a_channel_removed_from_the_rules_are_dropped_at_start(
    tmp_path: Path, receiver: Receiver
) -> None:
    db = Database(tmp_path / "alerts.sqlite")
    note = Notification((_alert(0),), created_s=time.time())
    Outbox(db).add(note, ["old-hook", "hook"])
    dispatcher = _dispatcher(db, _rules(receiver.url)).start()
    _wait(lambda: len(receiver.bodies) == 1)
    dispatcher.stop()
    with db.transaction() as conn:
        rows = conn.execute("SELECT channel, status FROM outbox ORDER BY channel").fetchall()
    assert rows == [("hook", "sent"), ("old-hook", "dropped")]


def test_an_unreadable_row_is_rejected_not_fatal(tmp_path: Path) -> None:
    db = Database(tmp_path / "alerts.sqlite")
    box = Outbox(db)
    box.add(Notification((_alert(0),), created_s=1.0), ["hook"])
    box.add(Notification((_alert(1),), created_s=2.0), ["hook"])
    with db.transaction() as conn:  # e.g. written by a newer version, then rolled back
        conn.execute("UPDATE outbox SET notification = '{\"alerts\": 3}' WHERE id = 1")
    delivery = box.next_pending("hook")
    assert delivery is not None and delivery.notification.first.series == "T1"
    with db.transaction() as conn:
        assert conn.execute("SELECT status FROM outbox WHERE id = 1").fetchone() == ("rejected",)
