"""Sign-in links: the links mailed to a reader's address after sign-up (``verify``) or when they
ask to sign in on ``/signin`` (``signin``). Opening one signs the reader in and marks the address
verified (:func:`aggregator.accounts.readers.mark_verified`).

A link's token is an itsdangerous ``URLSafeTimedSerializer`` payload (HMAC over the JSON and a
timestamp; salt ``signin-link``) holding a random nonce (``secrets.token_urlsafe(32)``) and the
purpose. The table ``signin_links`` keeps the nonce's SHA-256 only, with ``expires_at`` and
``used_at``. A token is accepted once: :func:`consume_link` sets ``used_at`` with a conditional
``UPDATE … WHERE used_at IS NULL AND expires_at > now`` that only one request can win, also
when two open the same link at the same moment. Lifetimes: :data:`MAX_AGE` (sign-in 15 minutes,
as the OWASP Forgot Password Cheat Sheet advises for single-use tokens; verification 24 hours).

A sign-in link that verifies an address (its verification link was never used) means the owner
of the address claims an account that someone else may have made with it: the API and feed
tokens are replaced, other sessions end and the weekly email is turned off
(:func:`aggregator.accounts.readers.reset_for_owner`), so whoever signed up with the address
loses access to it.

Mails per address are bounded: :func:`issue_link` makes no link (and so no mail goes out) when
``per_hour`` links were made for the reader in the past hour, so nobody can flood an inbox
through sign-up or sign-in.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
from dataclasses import dataclass
from typing import Any, Literal

import sqlalchemy as sa
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer
from sqlalchemy.orm import Session

from aggregator.accounts.readers import mark_verified, reset_for_owner
from aggregator.clock import utcnow
from aggregator.errors import ReaderError
from aggregator.store.account_tables import SignInLink, WebSession
from aggregator.store.tables import Reader

Purpose = Literal["verify", "signin"]
SALT = "signin-link"
#: Seconds a link works, per purpose.
MAX_AGE: dict[str, int] = {"signin": 15 * 60, "verify": 24 * 3600}
#: Characters of a token read at most (a real one is about 110).
MAX_TOKEN = 512


class LinkError(ReaderError):
    """A link that cannot be used (base class); the message says why in words."""


class LinkInvalid(LinkError):
    """Tampered, truncated, or signed with another key (HTTP 400)."""


class LinkGone(LinkError):
    """Correctly signed but expired or used already (HTTP 410)."""


@dataclass(frozen=True, slots=True)
class LinkClaim:
    """What a valid, unused link stands for."""

    reader_id: int
    email: str
    purpose: str


def _hash(nonce: str) -> str:
    return hashlib.sha256(nonce.encode("utf-8")).hexdigest()


def _serializer(key: str) -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(key, salt=SALT)


def links_in_last_hour(session: Session, reader_id: int, now: dt.datetime) -> int:
    """Links made for the reader in the hour before ``now`` (UTC)."""
    since = now - dt.timedelta(hours=1)
    return int(
        session.scalar(
            sa.select(sa.func.count())
            .select_from(SignInLink)
            .where(SignInLink.reader_id == reader_id, SignInLink.created_at > since)
        )
        or 0
    )


def issue_link(
    session: Session,
    reader_id: int,
    purpose: Purpose,
    key: str,
    per_hour: int,
    now: dt.datetime | None = None,
) -> str | None:
    """A new link token for the reader, or None when ``per_hour`` links were made for them in
    the past hour (then nothing may be mailed). Locks the reader's row on PostgreSQL so that
    concurrent requests count one after the other; flushes, never commits. Old links (expired
    and older than an hour) of the reader are deleted on the way."""
    now = now or utcnow()
    session.get(Reader, reader_id, with_for_update=True)
    if links_in_last_hour(session, reader_id, now) >= per_hour:
        return None
    session.execute(
        sa.delete(SignInLink).where(
            SignInLink.reader_id == reader_id,
            SignInLink.expires_at < now,
            SignInLink.created_at < now - dt.timedelta(hours=1),
        )
    )
    nonce = secrets.token_urlsafe(32)
    session.add(
        SignInLink(
            reader_id=reader_id,
            nonce_hash=_hash(nonce),
            purpose=purpose,
            created_at=now,
            expires_at=now + dt.timedelta(seconds=MAX_AGE[purpose]),
        )
    )
    session.flush()
    return str(_serializer(key).dumps({"n": nonce, "p": purpose}))


def _nonce_of(token: str, key: str) -> str:
    if not token or len(token) > MAX_TOKEN:
        raise LinkInvalid("this link is incomplete; open the whole link from the email")
    try:
        data: Any = _serializer(key).loads(token, max_age=max(MAX_AGE.values()))
        nonce, purpose = str(data["n"]), str(data["p"])
    except SignatureExpired as err:
        raise LinkGone("this link has expired; ask for a new one on the sign-in page") from err
    except (BadSignature, KeyError, TypeError) as err:
        raise LinkInvalid("this link is not valid (it may have been cut or changed)") from err
    if purpose not in MAX_AGE:
        raise LinkInvalid("this link is not valid")
    return nonce


def _claim(session: Session, nonce: str, now: dt.datetime) -> LinkClaim:
    row = session.execute(
        sa.select(SignInLink, Reader.email)
        .join(Reader, Reader.id == SignInLink.reader_id)
        .where(SignInLink.nonce_hash == _hash(nonce))
    ).first()
    if row is None:
        raise LinkGone("this link is no longer valid; ask for a new one on the sign-in page")
    link, email = row
    if link.used_at is not None:
        raise LinkGone("this link was used already; ask for a new one on the sign-in page")
    if link.expires_at <= now:
        raise LinkGone("this link has expired; ask for a new one on the sign-in page")
    return LinkClaim(link.reader_id, email, link.purpose)


def check_link(session: Session, token: str, key: str, now: dt.datetime | None = None) -> LinkClaim:
    """What a link stands for, without using it (the confirmation page). Raises
    :class:`LinkInvalid` or :class:`LinkGone`."""
    return _claim(session, _nonce_of(token, key), now or utcnow())


def consume_link(session: Session, token: str, key: str, now: dt.datetime | None = None) -> LinkClaim:
    """Use a link: mark it used (once, atomically) and the reader's address verified. Returns
    what it stood for; raises :class:`LinkInvalid` or :class:`LinkGone` (expired, used, or
    used by a concurrent request first). Flushes; the caller commits."""
    now = now or utcnow()
    nonce = _nonce_of(token, key)
    claim = _claim(session, nonce, now)
    won = session.execute(
        sa.update(SignInLink)
        .where(
            SignInLink.nonce_hash == _hash(nonce),
            SignInLink.used_at.is_(None),
            SignInLink.expires_at > now,
        )
        .values(used_at=now)
    )
    if getattr(won, "rowcount", 0) != 1:
        raise LinkGone("this link was used already; ask for a new one on the sign-in page")
    if mark_verified(session, claim.reader_id, now) and claim.purpose == "signin":
        # The owner signs in to an account whose verification link was never used: somebody
        # else may have made it (and holds its API token). It becomes the owner's alone.
        reset_for_owner(session, claim.reader_id)
        session.execute(sa.delete(WebSession).where(WebSession.reader_id == claim.reader_id))
    return claim
