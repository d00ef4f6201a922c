"""Build notifiers from the rules file's channels, with secrets from the environment."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from pathlib import Path

import httpx
from pydantic import SecretStr

from alerts.exceptions import ChannelConfigError
from alerts.notify.alertmanager import AlertmanagerNotifier
from alerts.notify.base import Notifier
from alerts.notify.email import EmailNotifier
from alerts.notify.slack import SlackNotifier
from alerts.notify.webhook import WebhookNotifier
from alerts.rules import (
    AlertmanagerChannel,
    ChannelConfig,
    EmailChannel,
    SlackChannel,
    WebhookChannel,
)

__all__ = ["build_notifier", "build_notifiers"]


def _secret(env: Mapping[str, str], name: str | None, channel: str) -> SecretStr | None:
    """The secret in ``$NAME``, or in the file named by ``$NAME_FILE`` (container secrets)."""
    if name is None:
        return None
    value = env.get(name)
    path = env.get(f"{name}_FILE")
    if not value and path:
        try:
            value = Path(path).read_text(encoding="utf-8").strip()
        except OSError as exc:
            raise ChannelConfigError(
                f"channel {channel!r}: cannot read {name}_FILE={path}: {exc.strerror}"
            ) from exc
    if not value:
        raise ChannelConfigError(
            f"channel {channel!r} needs the environment variable {name} (or {name}_FILE)"
        )
    return SecretStr(value)


def build_notifier(
    config: ChannelConfig,
    *,
    env: Mapping[str, str] | None = None,
    clock: Callable[[], float],
    transport: httpx.BaseTransport | None = None,
    timeout_s: float = 10.0,
) -> Notifier:
    """The notifier for one channel; :class:`ChannelConfigError` if a secret is missing."""
    env = os.environ if env is None else env

    def client() -> httpx.Client:
        return httpx.Client(timeout=timeout_s, transport=transport, follow_redirects=False)

    if isinstance(config, WebhookChannel):
        url = config.url or (_secret(env, config.url_env, config.name) or SecretStr(""))
        url_text = url if isinstance(url, str) else url.get_secret_value()
        if not url_text:
            raise ChannelConfigError(f"webhook channel {config.name!r} needs url or url_env")
        secret = _secret(env, config.secret_env, config.name)
        return WebhookNotifier(config.name, url_text, secret=secret, client=client(), clock=clock)
    if isinstance(config, SlackChannel):
        url_secret = _secret(env, config.url_env, config.name)
        assert url_secret is not None
        return SlackNotifier(config.name, url_secret, client=client())
    if isinstance(config, EmailChannel):
        return EmailNotifier(config, password=_secret(env, config.password_env, config.name))
    if isinstance(config, AlertmanagerChannel):
        return AlertmanagerNotifier(
            config.name, config.url, client=client(), generator_url=config.generator_url
        )
    raise ChannelConfigError(f"unknown channel type {type(config).__name__}")


def build_notifiers(
    channels: list[ChannelConfig],
    *,
    env: Mapping[str, str] | None = None,
    clock: Callable[[], float],
    transport: httpx.BaseTransport | None = None,
    timeout_s: float = 10.0,
) -> dict[str, Notifier]:
    """Notifiers for every channel, by name."""
    return {
        c.name: build_notifier(c, env=env, clock=clock, transport=transport, timeout_s=timeout_s)
        for c in channels
    }
