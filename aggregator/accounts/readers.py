"""Reader accounts: sign-up, tokens, verified addresses, per-reader settings (time zone, email
day and hour). Sign-in links: :mod:`.links`; sessions: :mod:`.web_sessions`; deletion:
:mod:`.deletion`.

Functions take a SQLAlchemy ``Session`` and never commit (the caller owns the transaction).
Bad input raises :class:`aggregator.errors.ReaderError` with a message a person can act on;
a missing row :class:`~aggregator.errors.NotFound`; a taken address
:class:`~aggregator.errors.Conflict`.

Tokens: an API token and a feed token per reader, each ``secrets.token_urlsafe(32)`` (32
random bytes, 43 characters). Only their SHA-256 hex digests are stored, so a token is shown
once, when it is made (and the feed token again when it is rotated).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import secrets
import zoneinfo
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from aggregator.clock import utcnow
from aggregator.errors import Conflict, NotFound, ReaderError
from aggregator.store.tables import Profile, Reader, Subscription

log = logging.getLogger(__name__)

#: Random bytes in a token (``secrets.token_urlsafe``): 256 bits, as in Python's ``secrets`` docs.
TOKEN_BYTES = 32

_HHMM_RE = re.compile(r"\A(?:[01]\d|2[0-3]):[0-5]\d\Z")


# --- tokens and accounts ------------------------------------------------------------------------


def new_token() -> str:
    """A fresh random token: ``secrets.token_urlsafe(TOKEN_BYTES)`` (43 URL-safe characters)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    """SHA-256 hex digest (64 characters) of a token, as stored in ``readers``."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def normalise_email(email: str) -> str:
    """The normalised form of an email address (email-validator, syntax only, no DNS lookup).

    Raises :class:`ReaderError` saying why the address is not valid."""
    from email_validator import EmailNotValidError, validate_email

    if not isinstance(email, str) or not email.strip():
        raise ReaderError("email: an email address is required")
    try:
        return str(validate_email(email.strip(), check_deliverability=False).normalized)
    except EmailNotValidError as err:
        raise ReaderError(f"email: {email.strip()!r} is not a valid email address: {err}") from err


@dataclass(frozen=True, slots=True)
class NewReader:
    """A just-created reader with its two tokens in clear, the only time they exist in clear."""

    reader_id: int
    email: str
    token: str
    feed_token: str


@dataclass(frozen=True, slots=True)
class ReaderInfo:
    id: int
    email: str
    created_at: dt.datetime
    subscriptions: int = 0
    verified: bool = False


def create_reader(
    session: Session, email: str, now: dt.datetime | None = None, *, verified: bool = False
) -> NewReader:
    """Create a reader with an empty interest profile and fresh API and feed tokens.
    ``verified``: the address counts as verified at once (readers the operator makes with
    ``aggregator users add``); otherwise no mail but a verification link goes to it until its
    owner opens one (:mod:`aggregator.accounts.links`).

    Raises :class:`ReaderError` for an invalid address, :class:`Conflict` when a reader with
    that address (compared case-insensitively) exists -- also when another transaction adds it
    at the same moment: the database's unique index on ``lower(email)`` refuses the second,
    and this function then rolls ``session`` back before raising."""
    now = now or utcnow()
    address = normalise_email(email)
    conflict = Conflict(f"email: a reader with address {address} already exists")
    if reader_by_email(session, address) is not None:
        raise conflict
    token, feed_token = new_token(), new_token()
    reader = Reader(
        email=address,
        token_hash=hash_token(token),
        feed_token_hash=hash_token(feed_token),
        created_at=now,
        weekly_email=False,
        email_weekday=0,
        email_time="08:00",
        timezone="UTC",
        email_bounced=False,
        email_verified_at=now if verified else None,
    )
    session.add(reader)
    try:
        session.flush()
    except IntegrityError as err:  # a concurrent sign-up of the same address won the race
        session.rollback()
        raise conflict from err
    session.add(_empty_profile(reader.id, now))
    session.flush()
    return NewReader(reader.id, address, token, feed_token)


def reader_by_email(session: Session, email: str) -> Reader | None:
    """The reader with this address, compared case-insensitively (the index on
    ``lower(email)``), or None. ``email`` is used as given: normalise it first."""
    return session.scalar(sa.select(Reader).where(sa.func.lower(Reader.email) == email.strip().lower()))


def mark_verified(session: Session, reader_id: int, now: dt.datetime | None = None) -> bool:
    """Record that the owner of the reader's address opened a link mailed to it (kept once set).
    True when the address was not verified before."""
    reader = session.get(Reader, reader_id)
    if reader is None:
        raise NotFound(f"no reader with id {reader_id}")
    if reader.email_verified_at is not None:
        return False
    reader.email_verified_at = now or utcnow()
    session.flush()
    return True


def reset_for_owner(session: Session, reader_id: int) -> None:
    """The owner of an address claims an account somebody else may have made with it: new API
    and feed tokens (shown to nobody: whoever signed up by the API loses access; the owner makes
    new ones on the profile page) and the weekly email off until the owner turns it on."""
    reader = session.get(Reader, reader_id)
    if reader is None:
        raise NotFound(f"no reader with id {reader_id}")
    reader.token_hash, reader.feed_token_hash = hash_token(new_token()), hash_token(new_token())
    reader.weekly_email = False
    session.flush()


def reissue_token(session: Session, reader_id: int) -> str:
    """Replace a reader's API token: the old one is refused (401) from the commit on. Returns
    the new token, the only time it exists in clear."""
    reader = session.get(Reader, reader_id)
    if reader is None:
        raise NotFound(f"no reader with id {reader_id}")
    token = new_token()
    reader.token_hash = hash_token(token)
    session.flush()
    return token


def _empty_profile(reader_id: int, now: dt.datetime) -> Profile:
    return Profile(
        reader_id=reader_id,
        interests="",
        keywords=[],
        muted=[],
        followed_authors=[],
        include_categories=[],
        exclude_categories=[],
        include_sources=[],
        exclude_sources=[],
        seed_papers=[],
        updated_at=now,
    )


def list_readers(session: Session) -> list[ReaderInfo]:
    """Every reader, oldest first, with their number of topic subscriptions."""
    counts = dict(
        session.execute(
            sa.select(Subscription.reader_id, sa.func.count()).group_by(Subscription.reader_id)
        ).all()
    )
    return [
        ReaderInfo(r.id, r.email, r.created_at, counts.get(r.id, 0), r.email_verified_at is not None)
        for r in session.scalars(sa.select(Reader).order_by(Reader.id))
    ]


def reader_for_token(session: Session, token: str | None) -> Reader | None:
    """The reader whose API token this is, or None (empty, malformed or unknown token)."""
    if not token or len(token) > 256:
        return None
    return session.scalar(sa.select(Reader).where(Reader.token_hash == hash_token(token)))


def reader_for_feed_token(session: Session, token: str | None) -> Reader | None:
    """The reader whose feed token this is, or None. An API token is not a feed token."""
    if not token or len(token) > 256:
        return None
    return session.scalar(sa.select(Reader).where(Reader.feed_token_hash == hash_token(token)))


def rotate_feed_token(session: Session, reader_id: int) -> str:
    """Replace a reader's feed token; the old feed URL stops working. Returns the new token."""
    reader = session.get(Reader, reader_id)
    if reader is None:
        raise NotFound(f"no reader with id {reader_id}")
    token = new_token()
    reader.feed_token_hash = hash_token(token)
    session.flush()
    return token


# --- interest profile -----------------------------------------------------------------------------


# --- email settings -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReaderSettings:
    """Weekly email settings: ``email_weekday`` 0 = Monday … 6 = Sunday, ``email_time`` HH:MM
    in the reader's IANA ``timezone``."""

    weekly_email: bool
    email_weekday: int
    email_time: str
    timezone: str


def get_reader_settings(session: Session, reader_id: int) -> ReaderSettings:
    reader = session.get(Reader, reader_id)
    if reader is None:
        raise NotFound(f"no reader with id {reader_id}")
    return ReaderSettings(reader.weekly_email, reader.email_weekday, reader.email_time, reader.timezone)


def update_reader_settings(
    session: Session,
    reader_id: int,
    *,
    weekly_email: bool | None = None,
    email_weekday: int | None = None,
    email_time: str | None = None,
    timezone: str | None = None,
) -> ReaderSettings:
    """Change the given email settings. Raises :class:`ReaderError` for a weekday outside
    0..6, a time not HH:MM (24 h), or an unknown IANA time zone."""
    reader = session.get(Reader, reader_id)
    if reader is None:
        raise NotFound(f"no reader with id {reader_id}")
    if email_weekday is not None:
        if not 0 <= email_weekday <= 6:
            raise ReaderError("email_weekday: 0 (Monday) to 6 (Sunday)")
        reader.email_weekday = email_weekday
    if email_time is not None:
        if not _HHMM_RE.match(email_time):
            raise ReaderError(f"email_time: {email_time!r} is not a 24-hour time HH:MM")
        reader.email_time = email_time
    if timezone is not None:
        check_timezone(timezone)
        reader.timezone = timezone
    if weekly_email is not None:
        reader.weekly_email = weekly_email
    session.flush()
    return get_reader_settings(session, reader_id)


def check_timezone(name: str) -> str:
    """``name`` when it is a known IANA time zone; raises :class:`ReaderError` otherwise."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as err:
        raise ReaderError(f"timezone: unknown IANA time zone {name!r}") from err
    return name


# --- topic filters --------------------------------------------------------------------------------


# --- subscriptions ---------------------------------------------------------------------------------


# --- feedback -----------------------------------------------------------------------------------


# --- the ranker's view and rescoring ----------------------------------------------------------


# --- the reader's digest --------------------------------------------------------------------------
