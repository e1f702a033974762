"""The SMTP side of sending: one connection per batch (STARTTLS or implicit TLS as set),
addresses checked before sending, errors turned into short texts recorded on the row."""

from __future__ import annotations

import contextlib
import smtplib
import socket
import ssl
from collections.abc import Callable
from typing import Any

from aggregator.config import Settings

#: makes a connected SMTP client from the settings (tests pass their own)
SmtpFactory = Callable[[Settings], smtplib.SMTP]


def smtp_connect(settings: Settings) -> smtplib.SMTP:
    """An SMTP connection as configured: implicit TLS (``ssl``, RFC 8314), ``starttls`` (RFC
    3207; refused if the server does not offer it) or plain (``none``), then AUTH when a user
    is set. Raises ``OSError`` or ``smtplib.SMTPException``."""
    timeout = settings.smtp_timeout_seconds
    host, port = settings.smtp_host, settings.smtp_port
    local = socket.getfqdn()
    smtp: smtplib.SMTP
    if settings.smtp_security == "ssl":
        smtp = smtplib.SMTP_SSL(
            host, port, local_hostname=local, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        smtp = smtplib.SMTP(host, port, local_hostname=local, timeout=timeout)
        if settings.smtp_security == "starttls":
            smtp.ehlo()
            smtp.starttls(context=ssl.create_default_context())
            smtp.ehlo()
    if settings.smtp_user:
        password = settings.smtp_password.get_secret_value() if settings.smtp_password else ""
        smtp.login(settings.smtp_user, password)
    return smtp


class _Connection:
    """One lazily opened SMTP connection, reopened after a failed transaction."""

    def __init__(self, settings: Settings, factory: SmtpFactory) -> None:
        self.settings, self.factory = settings, factory
        self.smtp: smtplib.SMTP | None = None

    def get(self) -> smtplib.SMTP:
        if self.smtp is None:
            self.smtp = self.factory(self.settings)
        return self.smtp

    def drop(self) -> None:
        smtp, self.smtp = self.smtp, None
        if smtp is not None:
            with contextlib.suppress(Exception):  # closing a broken socket
                smtp.close()

    def quit(self) -> None:
        smtp, self.smtp = self.smtp, None
        if smtp is not None:
            try:
                smtp.quit()
            except (smtplib.SMTPException, OSError):
                smtp.close()


def _valid_address(address: str) -> str | None:
    """None when ``address`` is a valid email address (email-validator, syntax only), else why not."""
    from email_validator import EmailNotValidError, validate_email

    try:
        validate_email(address, check_deliverability=False)
    except EmailNotValidError as err:
        return str(err)
    return None


def _error_text(err: BaseException) -> str:
    if isinstance(err, smtplib.SMTPRecipientsRefused):
        parts = [f"{code} {_decode(msg)}" for code, msg in err.recipients.values()]
        return "recipient refused: " + "; ".join(parts)
    if isinstance(err, smtplib.SMTPResponseException):
        return f"{type(err).__name__}: {err.smtp_code} {_decode(err.smtp_error)}"
    return f"{type(err).__name__}: {err}"[:1000]


def _decode(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
