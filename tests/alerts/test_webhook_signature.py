"""Webhook signatures: ``v1=`` HMAC-SHA256 over ``<timestamp>.<body>``, so neither the body
nor the time can be altered and a captured request is refused outside the tolerance window.
The notifier against a real receiver is in ``test_notify.py``."""

from __future__ import annotations

import hashlib
import hmac

import pytest

from alerts.notify.webhook import DEFAULT_TOLERANCE_S, sign, verify

SECRET = b"signature-test-secret"
T = 1_767_600_000
BODY = b'{"alerts":[{"key":"negative-spike-topic:topic:Earnings"}],"created_s":1.0}'


def _signed_over(timestamp_text: str, body: bytes = BODY) -> str:
    """The documented wire format, computed here independently of the module."""
    signed = timestamp_text.encode() + b"." + body
    return "v1=" + hmac.new(SECRET, signed, hashlib.sha256).hexdigest()


def test_signature_is_the_documented_hmac_of_timestamp_dot_body() -> None:
    assert sign(SECRET, BODY, T) == _signed_over(str(T))


def test_a_valid_request_verifies() -> None:
    assert verify(SECRET, BODY, str(T), sign(SECRET, BODY, T), now=T + 1)


def test_a_tampered_body_fails() -> None:
    tampered = BODY.replace(b"Earnings", b"Mergers")
    assert not verify(SECRET, tampered, str(T), sign(SECRET, BODY, T), now=T)


@pytest.mark.parametrize("timestamp", [str(T + 60), str(T - 1), "0" + str(T)])
def test_an_altered_timestamp_fails(timestamp: str) -> None:
    # Even when the receiver's clock agrees with the altered time.
    assert not verify(SECRET, BODY, timestamp, sign(SECRET, BODY, T), now=int(timestamp))


def test_a_wrong_secret_fails() -> None:
    assert not verify(b"another-secret", BODY, str(T), sign(SECRET, BODY, T), now=T)


def test_the_old_body_only_signature_fails() -> None:
    old = "sha256=" + hmac.new(SECRET, BODY, hashlib.sha256).hexdigest()
    assert not verify(SECRET, BODY, str(T), old, now=T)


@pytest.mark.parametrize("offset_s", [-DEFAULT_TOLERANCE_S, 0, DEFAULT_TOLERANCE_S])
def test_the_window_is_inclusive_both_ways(offset_s: float) -> None:
    assert verify(SECRET, BODY, str(T), sign(SECRET, BODY, T), now=T + offset_s)


@pytest.mark.parametrize("offset_s", [DEFAULT_TOLERANCE_S + 1, 86_400, -DEFAULT_TOLERANCE_S - 1])
def test_a_replay_outside_the_window_fails(offset_s: float) -> None:
    assert not verify(SECRET, BODY, str(T), sign(SECRET, BODY, T), now=T + offset_s)


def test_the_tolerance_is_configurable() -> None:
    signature = sign(SECRET, BODY, T)
    assert verify(SECRET, BODY, str(T), signature, now=T + 600, tolerance_s=900)
    assert verify(SECRET, BODY, str(T), signature, now=T, tolerance_s=0)
    assert not verify(SECRET, BODY, str(T), signature, now=T + 1, tolerance_s=0)


@pytest.mark.parametrize(
    "timestamp",
    [
        "",
        "abc",
        "1767600000.5",
        "-1767600000",
        "+1767600000",
        " 1767600000",
        "1767600000\n",
        "1_767_600_000",
        "\u0661\u0667\u0666\u0667\u0666\u0660\u0660\u0660\u0660\u0660",  # Arabic-Indic digits
        "9" * 5000,
    ],
)
def test_a_non_integer_timestamp_fails(timestamp: str) -> None:
    # Correctly signed over that text, so only the timestamp check can refuse it.
    assert not verify(SECRET, BODY, timestamp, _signed_over(timestamp), now=T)


@pytest.mark.parametrize("signature", ["", "v1=", "v1=é", "v1=" + "0" * 64])
def test_a_malformed_signature_fails_without_raising(signature: str) -> None:
    assert not verify(SECRET, BODY, str(T), signature, now=T)


def test_verify_without_now_uses_the_wall_clock() -> None:
    assert not verify(SECRET, BODY, "0", sign(SECRET, BODY, 0))  # signed in 1970


def test_invalid_arguments_are_value_errors() -> None:
    with pytest.raises(ValueError, match="tolerance_s"):
        verify(SECRET, BODY, str(T), sign(SECRET, BODY, T), now=T, tolerance_s=-1)
    with pytest.raises(ValueError, match="timestamp"):
        sign(SECRET, BODY, -1)
