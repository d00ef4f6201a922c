"""Generic JSON webhook, signed with HMAC-SHA256 so receivers can trust it.

Headers: ``X-FinSentinel-Timestamp`` (Unix seconds) and
``X-FinSentinel-Signature: sha256=<hex>``, the HMAC-SHA256 of the raw body
with the shared secret. The body carries ``created_s`` too, so the signature
covers the time; receivers should reject stale or replayed bodies.

>>> sign(b"secret", b'{"a":1}')
'sha256=aa9e2e3575f5d7098b6caccd790888c36d5fdb63342a73bada2d6a51747a8494'
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable

import httpx
from pydantic import SecretStr

from alerts.notify.base import Notification
from alerts.notify.http import post

__all__ = ["SIGNATURE_HEADER", "TIMESTAMP_HEADER", "WebhookNotifier", "sign", "verify"]

SIGNATURE_HEADER = "X-FinSentinel-Signature"
TIMESTAMP_HEADER = "X-FinSentinel-Timestamp"


def sign(secret: bytes, body: bytes) -> str:
    """The signature header value for ``body``."""
    return "sha256=" + hmac.new(secret, body, hashlib.sha256).hexdigest()


def verify(secret: bytes, body: bytes, header: str) -> bool:
    """Constant-time check of a received signature header."""
    return hmac.compare_digest(sign(secret, body), header)


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
        headers = {
            "Content-Type": "application/json",
            TIMESTAMP_HEADER: str(int(self._clock())),
        }
        if self._secret is not None:
            headers[SIGNATURE_HEADER] = sign(self._secret.get_secret_value().encode(), body)
        post(self._client, self.url, content=body, headers=headers, what=f"webhook {self.name}")

    def close(self) -> None:
        """Release connections."""
        self._client.close()
