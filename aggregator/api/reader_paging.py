"""The general path of ``GET /api/me/digest``: a page of the reader's whole-day digest.

Taken for a ``cursor``, any filter, ``group=topic``, or a page the reader's precomputed rows do
not fill (see :mod:`aggregator.digest.paged_reader`); plain first pages are served from
stored JSON (:mod:`aggregator.digest.served`) with the same items and the same ``next_cursor``.
"""

from __future__ import annotations

import datetime as dt

from fastapi import Request

from aggregator.accounts import library
from aggregator.api.me_schemas import ReaderDigestResponse, ReaderItem, TopicGroupOut
from aggregator.api.paging import next_cursor, open_cursor, reader_query
from aggregator.api.routes.digest import digest_item
from aggregator.config import Settings
from aggregator.digest import personal
from aggregator.digest.filters import DigestFilters
from aggregator.digest.paged_reader import reader_page
from aggregator.digest.public import default_day


def _item(e: personal.ReaderEntry, read: bool) -> ReaderItem:
    base = digest_item(e.entry, True).model_dump()
    return ReaderItem(
        **base, topics=e.topics, followed_authors=e.followed_authors, feedback=e.feedback, read=read
    )


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
        at = open_cursor(request, cursor, reader_query(reader_id, day, days, filters), session)
        page = reader_page(session, settings.tz, reader_id, day, days, limit, at, filters)
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
