"""The general path of ``GET /api/me/digest``: a page of the reader's whole-day digest.

Taken for a ``cursor``, any filter, ``group=topic``, or a page the reader's precomputed rows do
not fill (see :mod:`aggregator.digest.paged_reader`); plain first pages are served from
stored JSON (:mod:`aggregator.digest.served`) with the same items and the same ``next_cursor``.
"""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from fastapi import Request
from sqlalchemy.orm import Session

from aggregator.accounts import library
from aggregator.accounts.profiles import load_profile
from aggregator.api import rescoring
from aggregator.api.me_schemas import ReaderDigestResponse, ReaderItem, TopicGroupOut
from aggregator.api.paging import ServedPaging, next_cursor, open_cursor, reader_query
from aggregator.api.routes.digest import digest_item
from aggregator.config import Settings
from aggregator.digest import personal, served_views
from aggregator.digest.filters import DigestFilters
from aggregator.digest.paged_reader import reader_page
from aggregator.digest.public import day_window, default_day
from aggregator.store.tables import Reader
from aggregator.types import ReaderProfile


def _item(e: personal.ReaderEntry, read: bool) -> ReaderItem:
    base = digest_item(e.entry, True).model_dump()
    return ReaderItem(
        **base, topics=e.topics, followed_authors=e.followed_authors, feedback=e.feedback, read=read
    )


def _own_scores(
    request: Request, session: Session, reader_id: int, day: dt.date, days: int
) -> tuple[ReaderProfile, str]:
    """The reader's profile and the scores their digest of these days reads: their own
    key, ``default``, or :data:`aggregator.digest.personal.PENDING_PROFILE` while their scores
    are still being made (the rule of :func:`aggregator.digest.personal.reader_digest`: scored
    now, or asked of a worker and waited for; never the default order under the name of a
    reader who has preferences)."""
    settings: Settings = request.app.state.settings
    start, end = day_window(day, days, settings.tz)
    profile = load_profile(session, reader_id)
    ensure = rescoring.ensure_scores(request.app.state)
    return profile, personal._own_scores(session, profile, start, end, ensure)


def paged_reader_response(
    request: Request,
    reader_id: int,
    day: dt.date | None,
    days: int,
    limit: int,
    group: str | None,
    cursor: str | None,
    filters: DigestFilters,
) -> ReaderDigestResponse:
    """The reader's digest page as the API answers it (run in a worker thread). Raises a 422
    for a bad ``cursor``."""
    state = request.app.state
    settings: Settings = state.settings
    with state.sessionmaker() as session:
        day = day or default_day(session, settings.tz)
        known = None
        if cursor is None:
            profile, own = _own_scores(request, session, reader_id, day, days)
            if own == personal.PENDING_PROFILE:
                return ReaderDigestResponse(
                    date=day, days=days, timezone=settings.timezone, total=0, hidden=0,
                    profile=personal.PENDING_PROFILE, items=[], groups=None, next_cursor=None,
                )  # fmt: skip
            known = (profile, own == profile.score_key)
        at = open_cursor(request, cursor, reader_query(reader_id, day, days, filters), session)
        page = reader_page(session, settings.tz, reader_id, day, days, limit, at, filters, known)
        read = library.read_ids(session, reader_id, [e.entry.id for e in page.digest.items])
    d = page.digest
    items = {e.entry.id: _item(e, e.entry.id in read) for e in d.items}
    groups = None
    if group == "topic":
        groups = [
            TopicGroupOut(topic=g.slug, name=g.name, items=[items[e.entry.id] for e in g.items])
            for g in d.groups()
        ]
    return ReaderDigestResponse(
        date=d.digest.date,
        days=days,
        timezone=settings.timezone,
        total=d.digest.total,
        hidden=d.hidden,
        profile=d.profile,
        items=list(items.values()),
        groups=groups,
        next_cursor=next_cursor(request, page.cursor),
    )


def served_reader_page(
    request: Request, session: Session, reader_id: int, day: dt.date, days: int, limit: int
) -> tuple[personal.ReaderDigest, str | None] | None:
    """The first page of the reader's digest read as ``GET /api/me/digest`` serves it (the
    same score rows and cards, :mod:`aggregator.digest.served_views`), for the pages: the
    digest and the encoded ``next_cursor``, or None when the general path must answer (no
    precomputed scores in the window, or a short page). Run in a worker thread."""
    state = request.app.state
    settings: Settings = state.settings
    token_hash = session.scalar(sa.select(Reader.token_hash).where(Reader.id == reader_id))
    if token_hash is None:
        return None
    paging = ServedPaging(state.engine, settings, days, limit)
    page = served_views.served_digest(
        state.rows, token_hash, settings.tz, settings.timezone, day, days, limit, paging
    )
    if page is None:
        return None
    topics = load_profile(session, reader_id).topics
    return served_views.reader_digest(page, settings.tz, topics), page.next_cursor
