"""Mailing sign-in and verification links from the API and the pages, after the answer.

Every function here runs as a background task (Starlette's ``BackgroundTasks``): the answer
to ``/signin``, ``/signup`` and ``POST /api/readers`` is sent before the database is asked
whether the address has an account and before any SMTP traffic, so neither its content nor its
timing tells whether an account exists. Each opens its own database session, makes the link
(:func:`aggregator.accounts.links.issue_link`, which refuses past
``AGGREGATOR_AUTH_MAILS_PER_HOUR`` links per address), commits, then mails it
(:func:`aggregator.mail.account_mail.send_link_mail`). Nothing here raises: a failure is logged.
"""

from __future__ import annotations

import logging
from typing import Any

from aggregator import errors
from aggregator.accounts import links, readers
from aggregator.config import Settings
from aggregator.mail.account_mail import send_link_mail

log = logging.getLogger(__name__)


def _mail(state: Any, key: str, reader_id: int, email: str, purpose: links.Purpose) -> bool:
    settings: Settings = state.settings
    with state.sessionmaker() as session:
        token = links.issue_link(session, reader_id, purpose, key, settings.auth_mails_per_hour)
        session.commit()
    if token is None:
        log.info("no %s link mailed to reader %s: the hourly limit is reached", purpose, reader_id)
        return False
    return send_link_mail(settings, email, purpose, token, links.MAX_AGE[purpose])


def mail_verification(state: Any, key: str, reader_id: int, email: str) -> None:
    """Mail the verification link of a reader who just signed up."""
    try:
        _mail(state, key, reader_id, email, "verify")
    except Exception:  # a background task has nobody to report to
        log.exception("mailing the verification link of reader %s failed", reader_id)


def signin_requested(state: Any, key: str, address: str) -> None:
    """``/signin`` with ``address`` (normalised): mail a sign-in link when an account has that
    address, nothing otherwise. The link also verifies an unverified address."""
    try:
        with state.sessionmaker() as session:
            reader = readers.reader_by_email(session, address)
            found = None if reader is None else (reader.id, reader.email)
        if found is not None:
            _mail(state, key, found[0], found[1], "signin")
    except Exception:
        log.exception("mailing a sign-in link failed")


def signup_requested(state: Any, key: str, address: str) -> None:
    """The web sign-up form with ``address`` (normalised): a new reader and their verification
    link, or, when the address has an account already, a sign-in link to it instead."""
    try:
        with state.sessionmaker() as session:
            reader = readers.reader_by_email(session, address)
            if reader is not None:
                found, purpose = (reader.id, reader.email), "signin"
            else:
                try:
                    new = readers.create_reader(session, address)
                    session.commit()
                    found, purpose = (new.reader_id, new.email), "verify"
                except errors.Conflict:  # made by a concurrent request in the meantime
                    again = readers.reader_by_email(session, address)
                    if again is None:
                        return
                    found, purpose = (again.id, again.email), "signin"
        _mail(state, key, found[0], found[1], purpose)  # type: ignore[arg-type]
    except Exception:
        log.exception("signing up by the web form failed")
