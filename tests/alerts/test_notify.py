"""Notification channels against real servers on 127.0.0.1."""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import httpx
import pytest
from aiosmtpd.controller import Controller
from pydantic import SecretStr

from alerts.exceptions import ChannelConfigError, NotifyError, NotifyRejected
from alerts.notify import Dispatcher, Notification, RetryPolicy, build_notifiers
from alerts.notify.alertmanager import AlertmanagerNotifier
from alerts.notify.email import EmailNotifier
from alerts.notify.slack import slack_payload
from alerts.notify.webhook import SIGNATURE_HEADER, TIMESTAMP_HEADER, WebhookNotifier
from alerts.rules import EmailChannel, parse_rules
from alerts.testing import sample_alert

from .conftest import SECRET, Receiver, _free_port

pytestmark = pytest.mark.integration


def _wait(predicate: Callable[[], bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_webhook_body_is_signed_with_hmac_sha256(receiver: Receiver) -> None:
    notifier = WebhookNotifier(
        "ops",
        receiver.url,
        secret=SecretStr(SECRET.decode()),
        client=httpx.Client(),
        clock=time.time,
    )
    notifier.send(Notification((sample_alert(),), created_s=1.0))
    notifier.close()
    assert receiver.signatures_ok == [True]
    body = json.loads(receiver.bodies[0])
    assert body["alerts"][0]["key"] == "negative-spike-topic:topic:Earnings"
    assert body["alerts"][0]["evidence"][0]["url"].startswith("https://")
    # Each evidence document's id, so a reader can correct its label.
    assert [e["id"] for e in body["alerts"][0]["evidence"]] == ["e0", "e1"]
    assert body["idempotency_key"] == "fs1-2ee8ac9efa00f4b64827219f23ca72fe"  # unchanged


class _Clock:
    def __init__(self, now_s: float) -> None:
        self.now_s = now_s

    def __call__(self) -> float:
        return self.now_s


def test_receiver_verifies_what_was_sent_and_refuses_a_replay(receiver: Receiver) -> None:
    sent_s = 1_767_600_000
    sender, receiving = _Clock(sent_s), _Clock(sent_s + 5)
    receiver.clock = receiving
    notifier = WebhookNotifier(
        "ops", receiver.url, secret=SecretStr(SECRET.decode()), client=httpx.Client(), clock=sender
    )
    notifier.send(Notification((sample_alert(),)))
    assert receiver.signatures_ok == [True]
    captured = {k: receiver.headers[0][k] for k in (TIMESTAMP_HEADER, SIGNATURE_HEADER)}
    assert captured[TIMESTAMP_HEADER] == str(sent_s)
    # The same request captured and sent again ten minutes later...
    receiving.now_s = sent_s + 600
    httpx.post(receiver.url, content=receiver.bodies[0], headers=captured).raise_for_status()
    # ...and again with the timestamp rewritten to look fresh: both refused.
    fresh = {**captured, TIMESTAMP_HEADER: str(sent_s + 600)}
    httpx.post(receiver.url, content=receiver.bodies[0], headers=fresh).raise_for_status()
    # A notification retried an hour late is stamped and signed afresh, so it is accepted.
    sender.now_s = receiving.now_s = sent_s + 3600
    notifier.send(Notification((sample_alert(),)))
    notifier.close()
    assert receiver.signatures_ok == [True, False, False, True]


def test_webhook_errors_are_classified(receiver: Receiver) -> None:
    notifier = WebhookNotifier(
        "ops", receiver.url, secret=None, client=httpx.Client(), clock=time.time
    )
    receiver.fail_next = 1
    with pytest.raises(NotifyError) as info:
        notifier.send(Notification((sample_alert(),)))
    assert info.value.retriable
    dead = WebhookNotifier(
        "x", "http://127.0.0.1:1/", secret=None, client=httpx.Client(), clock=time.time
    )
    with pytest.raises(NotifyError):
        dead.send(Notification((sample_alert(),)))
    assert NotifyRejected.retriable is False


class _Sink:
    def __init__(self) -> None:
        self.messages: list[bytes] = []

    async def handle_DATA(self, server, session, envelope) -> str:
        self.messages.append(envelope.content)
        return "250 OK"


def test_email_over_real_smtp_server() -> None:
    sink = _Sink()
    port = _free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        config = EmailChannel(
            name="mail",
            type="email",
            smtp_host="127.0.0.1",
            smtp_port=port,
            starttls=False,
            from_addr="alerts@finsentinel.test",
            to_addrs=["risk@bank.test"],
        )
        EmailNotifier(config, password=None).send(Notification((sample_alert(),)))
    finally:
        controller.stop()
    text = sink.messages[0].decode()
    assert "Subject: [FIRING] warning: negative-spike-topic on topic Earnings" in text
    assert "https://news.example/e0" in text
    assert "id e0]" in text and "id e1]" in text
    assert "finsentinel feedback add DOC_ID" in text


def test_every_evidence_id_is_in_the_text_and_slack_bodies() -> None:
    base = sample_alert()
    more = [base.evidence[0].model_copy(update={"id": f"doc-{i}"}) for i in range(5)]
    alert = base.model_copy(update={"evidence": more})
    n = Notification((alert,))
    assert n.key == Notification((base,)).key  # evidence never enters the key
    text = n.text()
    slack = json.dumps(slack_payload(n))
    for i in range(5):
        assert f"doc-{i}" in text and f"`doc-{i}`" in slack
    assert "and 2 more, ids doc-3, doc-4" in text


def test_email_to_a_closed_port_is_retriable() -> None:
    config = EmailChannel(
        name="mail",
        type="email",
        smtp_host="127.0.0.1",
        smtp_port=1,
        starttls=False,
        from_addr="a@b.test",
        to_addrs=["c@d.test"],
        timeout_s=2,
    )
    with pytest.raises(NotifyError) as info:
        EmailNotifier(config, password=None).send(Notification((sample_alert(),)))
    assert info.value.retriable


def test_alertmanager_receives_the_alert(alertmanager: str) -> None:
    notifier = AlertmanagerNotifier(
        "am", alertmanager, client=httpx.Client(), generator_url="http://finsentinel.test/alerts"
    )
    alert = sample_alert(key="negative-spike-topic:topic:Legal", series="Legal")
    notifier.send(Notification((alert,)))
    notifier.close()
    got = httpx.get(
        f"{alertmanager}/api/v2/alerts", params={"filter": 'key="negative-spike-topic:topic:Legal"'}
    ).json()
    assert len(got) == 1
    assert got[0]["labels"]["alertname"] == "negative-spike-topic"
    assert got[0]["labels"]["severity"] == "warning"
    assert "Spike in negative coverage" in got[0]["annotations"]["summary"]
    assert got[0]["annotations"]["evidence_ids"] == "e0,e1"
    assert "[id e0]" in got[0]["annotations"]["description"]
    assert got[0]["generatorURL"] == "http://finsentinel.test/alerts"


def test_slack_payload_has_blocks_and_links() -> None:
    payload = slack_payload(Notification((sample_alert(),)))
    assert payload["blocks"][0]["type"] == "header"
    assert "<https://news.example/e0|" in payload["blocks"][1]["text"]["text"]
    assert "id `e0`" in payload["blocks"][1]["text"]["text"]
    assert "id `e1`" in payload["blocks"][1]["text"]["text"]


def test_missing_secret_is_a_clear_config_error() -> None:
    rules = parse_rules(
        "rules: [{name: r, series: {kind: all}}]\n"
        "channels: [{name: s, type: slack, url_env: FINSENTINEL_TEST_SLACK_URL}]"
    )
    with pytest.raises(ChannelConfigError, match="FINSENTINEL_TEST_SLACK_URL"):
        build_notifiers(rules.channels, env={}, clock=time.time)


def test_failing_channel_is_retried_and_delivered_while_others_are_unaffected(
    receiver: Receiver,
) -> None:
    good = _start_receiver()
    rules = parse_rules(
        f"""
rules: [{{name: negative-spike-topic, series: {{kind: topic}}}}]
channels:
  - {{name: flaky, type: webhook, url: "{receiver.url}", secret_env: HOOK_SECRET,
      rate_limit_per_minute: 6000}}
  - {{name: steady, type: webhook, url: "{good[0].url}", secret_env: HOOK_SECRET,
      rate_limit_per_minute: 6000}}
"""
    )
    outcomes: list[tuple[str, str]] = []
    notifiers = build_notifiers(
        rules.channels, env={"HOOK_SECRET": SECRET.decode()}, clock=time.time
    )
    dispatcher = Dispatcher(
        rules,
        notifiers,
        clock=time.time,
        retry=RetryPolicy(initial_s=0.05, max_s=0.2),
        on_outcome=lambda t, o: outcomes.append((t, o)),
    ).start()
    receiver.fail_next = 10**9  # down until we say so
    try:
        for i in range(3):
            dispatcher.submit(sample_alert(key=f"negative-spike-topic:topic:T{i}", series=f"T{i}"))
        _wait(lambda: len(good[0].bodies) == 3)  # the steady channel is not held up
        _wait(lambda: receiver.attempts >= 2)
        assert receiver.bodies == []
        with receiver.lock:
            receiver.fail_next = 0  # the receiver recovers
        _wait(lambda: len(receiver.bodies) == 3)
    finally:
        dispatcher.stop()
        good[1]()
    keys = [json.loads(b)["alerts"][0]["key"] for b in receiver.bodies]
    assert keys == [f"negative-spike-topic:topic:T{i}" for i in range(3)]  # in order, once each
    assert all(receiver.signatures_ok)
    assert outcomes.count(("webhook", "retried")) >= 2
    assert outcomes.count(("webhook", "sent")) == 6


def _start_receiver() -> tuple[Receiver, Callable[[], None]]:
    import threading
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    rec = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            rec.bodies.append(self.rfile.read(int(self.headers["Content-Length"])))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    rec.url = f"http://127.0.0.1:{server.server_address[1]}/hook"

    def stop() -> None:
        server.shutdown()
        server.server_close()

    return rec, stop


def test_open_alerts_are_resent_to_alertmanager_only(receiver: Receiver) -> None:
    rules = parse_rules(
        f"""
rules: [{{name: negative-spike-topic, series: {{kind: topic}}}}]
channels:
  - {{name: hook, type: webhook, url: "{receiver.url}", rate_limit_per_minute: 6000}}
  - {{name: am, type: alertmanager, url: "http://127.0.0.1:1", rate_limit_per_minute: 6000}}
"""
    )
    notifiers = build_notifiers(rules.channels, env={}, clock=time.time)
    dispatcher = Dispatcher(rules, notifiers, clock=time.time)  # not started: rows stay
    dispatcher.resend([sample_alert()])
    dispatcher.resend([sample_alert()])  # one keep-alive waits per alert and channel
    dispatcher.resend([sample_alert(key="negative-spike-topic:topic:Legal", series="Legal")])
    assert dispatcher.outbox.pending("am") == 2 and dispatcher.outbox.pending("hook") == 0
    queued = dispatcher.outbox.next_pending("am")
    assert queued is not None and queued.keep_alive
    dispatcher.outbox.finish(queued, "sent", now_s=time.time())  # deleted once sent
    dispatcher.resend([sample_alert()])
    assert dispatcher.outbox.pending("am") == 2
    for n in notifiers.values():
        n.close()
