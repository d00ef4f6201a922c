"""Slack incoming webhook: a header block, one section per alert, headline links.

Each headline shows its document id (the ids of headlines beyond the first
three follow them), so a reader can correct a wrong label with
``finsentinel feedback add DOC_ID``.

Slack itself does not de-duplicate; the request carries the ``Idempotency-Key``
header (for a relay in between) and the key is shown in the context line.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from pydantic import SecretStr

from alerts.notify.base import FEEDBACK_HINT, SHOWN_EVIDENCE, Notification
from alerts.notify.http import post
from alerts.notify.keys import HEADER as IDEMPOTENCY_HEADER

__all__ = ["SlackNotifier", "slack_payload"]

_EMOJI = {"firing": ":rotating_light:", "updated": ":arrow_up:", "resolved": ":white_check_mark:"}


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def slack_payload(notification: Notification) -> dict[str, Any]:
    """The Slack message (``text`` fallback plus ``blocks``) for ``notification``.

    >>> from alerts.notify.base import FEEDBACK_HINT, SHOWN_EVIDENCE, Notification
    >>> from alerts.testing import sample_alert
    >>> p = slack_payload(Notification((sample_alert(),)))
    >>> p["blocks"][0]["type"], p["text"].startswith("[FIRING]")
    ('header', True)
    >>> p["blocks"][1]["text"]["text"].splitlines()[1]
    '• <https://news.example/e0|Earnings story e0> · id `e0`'
    """
    first = notification.first
    blocks: list[dict[str, Any]] = [
        {
            "type": "header",
            "text": {"type": "plain_text", "text": notification.title[:150]},
        }
    ]
    for alert in notification.alerts[:20]:  # Slack allows 50 blocks per message
        lines = [f"{_EMOJI.get(alert.state, '')} *{_escape(alert.summary)}*"]
        for e in alert.evidence[:SHOWN_EVIDENCE]:
            title = _escape(e.title[:150])
            headline = f"<{e.url}|{title}>" if e.url else title
            lines.append(f"• {headline} · id `{_escape(e.id)}`")
        rest = [f"`{_escape(e.id)}`" for e in alert.evidence[SHOWN_EVIDENCE:]]
        if rest:
            lines.append(f"• and {len(rest)} more: ids {', '.join(rest)}")
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": "\n".join(lines)}})
    blocks.append(
        {
            "type": "context",
            "elements": [
                {
                    "type": "mrkdwn",
                    "text": f"rule `{first.rule}` · severity {first.severity} · "
                    f"score {first.score:.2f} · {first.updated_at:%Y-%m-%d %H:%M} UTC · "
                    f"`{notification.key}`"
                    + (
                        f" · {_escape(FEEDBACK_HINT)}"
                        if any(a.evidence for a in notification.alerts)
                        else ""
                    ),
                }
            ],
        }
    )
    return {"text": notification.title, "blocks": blocks}


class SlackNotifier:
    """POST to a Slack incoming-webhook URL (a secret, from the environment)."""

    channel_type = "slack"

    def __init__(self, name: str, url: SecretStr, *, client: httpx.Client) -> None:
        self.name = name
        self._url = url
        self._client = client

    def send(self, notification: Notification) -> None:
        """Deliver one notification."""
        body = json.dumps(slack_payload(notification)).encode()
        post(
            self._client,
            self._url.get_secret_value(),
            content=body,
            headers={"Content-Type": "application/json", IDEMPOTENCY_HEADER: notification.key},
            what=f"slack {self.name}",
        )

    def close(self) -> None:
        """Release connections."""
        self._client.close()
