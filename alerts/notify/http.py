"""HTTP plumbing shared by the webhook, Slack and Alertmanager channels."""

from __future__ import annotations

import httpx

from alerts.exceptions import NotifyError, NotifyRejected

__all__ = ["post"]


def post(
    client: httpx.Client, url: str, *, content: bytes, headers: dict[str, str], what: str
) -> httpx.Response:
    """POST and classify the outcome: 2xx returns; 408/429/5xx and network errors are
    retriable :class:`NotifyError`; other statuses are :class:`NotifyRejected`."""
    try:
        response = client.post(url, content=content, headers=headers)
    except httpx.HTTPError as exc:
        raise NotifyError(f"{what}: {type(exc).__name__}: {exc}") from exc
    if response.is_success:
        return response
    detail = f"{what}: HTTP {response.status_code} {response.text[:200]!r}"
    if response.status_code in (408, 429) or response.status_code >= 500:
        raise NotifyError(detail)
    raise NotifyRejected(detail)
