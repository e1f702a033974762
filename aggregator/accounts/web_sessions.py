"""Server-side sessions of the HTML pages (table ``web_sessions``).

A session id is ``secrets.token_urlsafe(32)``; the browser's cookie holds it signed (see
:mod:`aggregator.api.auth`), the table only its SHA-256, with the reader, the CSRF token of the
session's forms and its end (UTC). A cookie is worth something only while its row exists:
signing out deletes the row, so the old cookie replayed later is refused, and
:func:`end_all` ends every session of a reader ("sign out everywhere", account deletion).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from aggregator.clock import utcnow
from aggregator.store.account_tables import WebSession
from aggregator.store.tables import Reader

#: Seconds a session lasts from sign-in: 30 days.
SESSION_MAX_AGE = 30 * 24 * 3600


@dataclass(frozen=True, slots=True)
class SessionInfo:
    reader_id: int
    email: str
    csrf: str


def _hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode("utf-8")).hexdigest()


def start(session: Session, reader_id: int, now: dt.datetime | None = None) -> tuple[str, str]:
    """A new session of ``reader_id``: ``(session id, CSRF token)``, both in clear only here.
    The reader's ended sessions are deleted on the way. Flushes; the caller commits."""
    now = now or utcnow()
    session.execute(
        sa.delete(WebSession).where(WebSession.reader_id == reader_id, WebSession.expires_at <= now)
    )
    session_id, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
    session.add(
        WebSession(
            id_hash=_hash(session_id),
            reader_id=reader_id,
            csrf=csrf,
            created_at=now,
            expires_at=now + dt.timedelta(seconds=SESSION_MAX_AGE),
        )
    )
    session.flush()
    return session_id, csrf


def lookup(session: Session, session_id: str, now: dt.datetime | None = None) -> SessionInfo | None:
    """The live session with this id, or None (unknown, ended, or expired)."""
    if not session_id or len(session_id) > 128:
        return None
    now = now or utcnow()
    row = session.execute(
        sa.select(WebSession.reader_id, Reader.email, WebSession.csrf)
        .join(Reader, Reader.id == WebSession.reader_id)
        .where(WebSession.id_hash == _hash(session_id), WebSession.expires_at > now)
    ).first()
    return None if row is None else SessionInfo(row[0], row[1], row[2])


def end(session: Session, session_id: str) -> None:
    """End one session (its row goes). Flushes; the caller commits."""
    session.execute(sa.delete(WebSession).where(WebSession.id_hash == _hash(session_id)))


def end_all(session: Session, reader_id: int) -> int:
    """End every session of the reader; returns how many there were. The caller commits."""
    res = session.execute(sa.delete(WebSession).where(WebSession.reader_id == reader_id))
    return int(getattr(res, "rowcount", 0) or 0)


def count(session: Session, reader_id: int, now: dt.datetime | None = None) -> int:
    """Live sessions of the reader (shown on the profile page)."""
    now = now or utcnow()
    return int(
        session.scalar(
            sa.select(sa.func.count())
            .select_from(WebSession)
            .where(WebSession.reader_id == reader_id, WebSession.expires_at > now)
        )
        or 0
    )
