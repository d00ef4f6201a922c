"""Generic JSON webhook, signed with HMAC-SHA256 so receivers can trust it.

Headers of every request (each retry is stamped and signed afresh):

* ``X-FinSentinel-Timestamp``: Unix seconds when the request was sent.
* ``X-FinSentinel-Signature: v1=<hex>``: the HMAC-SHA256, keyed with the
  channel's secret, of the *signed string* ``<timestamp>.<body>``: the
  timestamp header's text, one ``.``, then the raw body bytes as received.

A receiver recomputes the HMAC, compares it in constant time and refuses a
timestamp more than ``tolerance_s`` (default 300 s) away from its own clock, so
neither the body nor the time can be altered and a captured request cannot be
replayed later; :func:`verify` does all three.

* ``Idempotency-Key``: the notification's key (also ``idempotency_key`` in the
  body, and per alert in ``alerts[].idempotency_key``): the same on every
  re-send. Delivery is at-least-once; receivers de-duplicate by this key
  (:mod:`alerts.notify.keys`).

>>> signature = sign(b"secret", b'{"a":1}', 1767600000)
>>> signature
'v1=75ef4ed709e4ac7108c39bb3714441b8a193aed3c5858f1f729ff4c16ad3a5ad'
>>> verify(b"secret", b'{"a":1}', "1767600000", signature, now=1767600060)
True
>>> verify(b"secret", b'{"a":1}', "1767600000", signature, now=1767603600)  # an hour later
False
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time
from collections.abc import Callable

import httpx
from pydantic import SecretStr

from alerts.notify.base import Notification
from alerts.notify.http import post
from alerts.notify.keys import HEADER as IDEMPOTENCY_HEADER

__all__ = [
    "DEFAULT_TOLERANCE_S",
    "SIGNATURE_HEADER",
    "TIMESTAMP_HEADER",
    "WebhookNotifier",
    "sign",
    "verify",
]

SIGNATURE_HEADER = "X-FinSentinel-Signature"
TIMESTAMP_HEADER = "X-FinSentinel-Timestamp"
#: How far (either way) a receiver's clock may be from the request's timestamp.
DEFAULT_TOLERANCE_S = 300.0

_VERSION = "v1="
# ASCII digits only (no sign, spaces, "_" or other scripts' digits) and bounded,
# so the text that was signed is the one integer it reads as.
_TIMESTAMP = re.compile(r"[0-9]{1,12}")


def _signature(secret: bytes, timestamp: str, body: bytes) -> str:
    signed = timestamp.encode("ascii") + b"." + body
    return _VERSION + hmac.new(secret, signed, hashlib.sha256).hexdigest()


def sign(secret: bytes, body: bytes, timestamp: int) -> str:
    """The signature header value for ``body`` sent at ``timestamp`` (Unix seconds)."""
    if timestamp < 0:
        raise ValueError(f"timestamp must be Unix seconds >= 0, got {timestamp}")
    return _signature(secret, str(timestamp), body)


def verify(
    secret: bytes,
    body: bytes,
    timestamp_header: str,
    signature_header: str,
    *,
    now: float | None = None,
    tolerance_s: float = DEFAULT_TOLERANCE_S,
) -> bool:
    """Whether a received request is authentic and fresh.

    False for a timestamp that is not a plain non-negative integer, one more
    than ``tolerance_s`` from ``now`` (default: the wall clock) either way, or a
    signature that does not match (constant-time compare).
    """
    if tolerance_s < 0:
        raise ValueError(f"tolerance_s must be >= 0, got {tolerance_s}")
    if not _TIMESTAMP.fullmatch(timestamp_header) or not signature_header.isascii():
        return False
    current = time.time() if now is None else now
    if abs(current - int(timestamp_header)) > tolerance_s:
        return False
    return hmac.compare_digest(_signature(secret, timestamp_header, body), signature_header)


class WebhookNotifier:
    """POST the notification JSON to ``url``, signed when a secret is configured."""

    channel_type = "webhook"

    def __init__(
        self,
        name: str,
        url: str,
        *,
        secret: SecretStr | None,
        client: httpx.Client,
        clock: Callable[[], float],
    ) -> None:
        self.name = name
        self.url = url
        self._secret = secret
        self._client = client
        self._clock = clock

    def send(self, notification: Notification) -> None:
        """Deliver one notification."""
        body = notification.to_json()
        timestamp = int(self._clock())
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: str(timestamp),
            IDEMPOTENCY_HEADER: notification.key,
        }
        if self._secret is not None:
            secret = self._secret.get_secret_value().encode()
            headers[SIGNATURE_HEADER] = sign(secret, body, timestamp)
        post(self._client, self.url, content=body, headers=headers, what=f"webhook {self.name}")

    def close(self) -> None:
        """Release connections."""
        self._client.close()
