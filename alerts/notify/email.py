"""E-mail over SMTP with :mod:`smtplib`: STARTTLS when configured, login when a
user is configured (the password comes from the environment).

A re-sent notification has the same ``Message-ID`` (built from its idempotency
key, also in ``X-FinSentinel-Idempotency-Key``), which mail systems use to
fold duplicates.
"""

from __future__ import annotations

import smtplib
import ssl
from email.message import EmailMessage

from pydantic import SecretStr

from alerts.exceptions import NotifyError, NotifyRejected
from alerts.notify.base import Notification
from alerts.rules import EmailChannel

__all__ = ["EmailNotifier", "email_message"]


def email_message(notification: Notification, *, sender: str, to: list[str]) -> EmailMessage:
    """The message for ``notification``: plain text, subject = its title."""
    msg = EmailMessage()
    msg["Subject"] = notification.title
    msg["From"] = sender
    msg["To"] = ", ".join(to)
    msg["Message-ID"] = f"<{notification.key}@finsentinel.alerts>"
    msg["X-FinSentinel-Idempotency-Key"] = notification.key
    msg.set_content(notification.text())
    return msg


class EmailNotifier:
    """Send each notification as one e-mail."""

    channel_type = "email"

    def __init__(self, config: EmailChannel, *, password: SecretStr | None) -> None:
        self.name = config.name
        self._config = config
        self._password = password

    def send(self, notification: Notification) -> None:
        """Deliver one notification."""
        c = self._config
        msg = email_message(notification, sender=c.from_addr, to=c.to_addrs)
        try:
            with smtplib.SMTP(c.smtp_host, c.smtp_port, timeout=c.timeout_s) as smtp:
                if c.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if c.username and self._password is not None:
                    smtp.login(c.username, self._password.get_secret_value())
                smtp.send_message(msg)
        except (smtplib.SMTPAuthenticationError, smtplib.SMTPRecipientsRefused) as exc:
            raise NotifyRejected(f"email {self.name}: {exc}") from exc
        except (smtplib.SMTPException, OSError) as exc:
            raise NotifyError(f"email {self.name}: {type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        """Nothing to release: one connection per message."""
