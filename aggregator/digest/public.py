"""The daily digest: the items of a day (or of N days), best first, read from precomputed scores.

An item's date is its announcement date (papers) or published date (posts) in the configured
time zone. Nothing here fits or scores: the request path only reads (see :mod:`aggregator.ranking.tfidf`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from aggregator.digest.cards import CARD_COLUMNS, links_fields
from aggregator.store.queries import discussed_in, item_sources
from aggregator.store.tables import Item, ItemLink, Score

#: The public columns of an item, as :func:`entries` reads them: a card's and the abstract.
ITEM_COLUMNS = (*CARD_COLUMNS, Item.summary)

DEFAULT_PROFILE = "default"


@dataclass(frozen=True, slots=True)
class DigestEntry:
    id: int
    title: str
    url: str | None
    authors: list[str]
    source: str
    sources: list[str]
    kind: str
    categories: list[str]
    published: dt.datetime
    score: float
    why: list[dict[str, object]]
    summary: str
    arxiv_id: str | None
    discussed_in: int = 0  # blog posts linking this paper (aggregator.feeds.paper_links)
    stored_topics: list[str] | None = None  # topic slugs precomputed with a reader's score
    stored_authors: list[str] | None = None  # followed authors precomputed with a reader's score
    # links and venue (issue 13; aggregator.digest.cards.links_fields)
    abs_url: str | None = None
    pdf_url: str | None = None
    venue: str | None = None
    venue_year: int | None = None
    venue_workshop: bool = False
    venue_label: str | None = None
    has_code: bool = False
    links: list[dict[str, str]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Digest:
    date: dt.date
    days: int
    start: dt.datetime
    end: dt.datetime
    total: int
    items: list[DigestEntry]
    #: False when the profile's scores do not rank this window (no interests set): the items
    #: are then ordered by attention from blog posts (``discussed_in``), then newest first,
    #: and their ``score`` (0) means nothing
    ranked: bool = True


def entries(session: Session, rows: Sequence[Any]) -> list[DigestEntry]:
    """Digest entries of rows with :data:`ITEM_COLUMNS`, ``score`` and ``why`` (``topics`` and
    ``followed`` when selected): sources and blog links read for the page at once."""
    ids = [r.id for r in rows]
    sources = item_sources(session, ids)
    discussed = discussed_in(session, ids)
    return [
        DigestEntry(
            id=r.id,
            title=r.title,
            url=r.url,
            authors=list(r.authors),
            source=(sources.get(r.id) or ["unknown"])[0],
            sources=sources.get(r.id, []),
            kind=r.kind,
            categories=list(r.categories),
            published=r.published,
            score=round(float(r.score or 0.0), 4),
            why=list(r.why or []),
            summary=r.summary,
            arxiv_id=r.arxiv_id,
            discussed_in=discussed.get(r.id, 0),
            stored_topics=getattr(r, "topics", None),
            stored_authors=getattr(r, "followed", None),
            **links_fields(r),
        )
        for r in rows
    ]


def day_window(day: dt.date, days: int, tz: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """UTC [start, end) of the ``days`` local days ending with ``day`` in ``tz``."""
    start_local = dt.datetime.combine(day - dt.timedelta(days=days - 1), dt.time(0, 0), tz)
    end_local = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0, 0), tz)
    return start_local.astimezone(dt.UTC), end_local.astimezone(dt.UTC)


def latest_day(session: Session | sa.Connection, today: dt.date, tz: ZoneInfo) -> dt.date:
    """The digest's default day: the newest local date (zone ``tz``), not after ``today``, on
    which papers (``kind = 'paper'``) were announced. Without any paper: the newest date of
    an item that carries its own date, then ``today``. Items dated by their fetch time
    (``date_from_fetch``, e.g. an undated "FAQ" page) never decide it.

    At most two look-ups, each a backward walk of ``ix_items_published`` from the end of
    ``today`` that stops at the first matching row (papers are nearly every row, so that is
    at once; the second runs only when there is no paper at all)."""
    _, end = day_window(today, 1, tz)
    newest = (
        sa.select(Item.published)
        .where(Item.published < end, Item.date_from_fetch.is_(False))
        .order_by(Item.published.desc())
        .limit(1)
    )
    latest = session.scalar(newest.where(Item.kind == "paper"))
    if latest is None:
        latest = session.scalar(newest)
    if latest is None:
        return today
    if latest.tzinfo is None:
        latest = latest.replace(tzinfo=dt.UTC)
    return latest.astimezone(tz).date()


def default_day(session: Session | sa.Connection, tz: ZoneInfo, now: dt.datetime | None = None) -> dt.date:
    """The day every digest shows when none is asked for (the pages, ``/api/digest``, the
    reader's digest, the Atom feed, the served digest): :func:`latest_day` of today in ``tz``
    (``now``: default the current time)."""
    return latest_day(session, (now or dt.datetime.now(dt.UTC)).astimezone(tz).date(), tz)


def is_ranked(session: Session, profile: str, start: dt.datetime, end: dt.datetime) -> bool:
    """Whether ``profile`` ranks the items of [``start``, ``end``): some item there has a
    positive score. Without interests (no ``[interests]`` in feeds.toml) the default profile's
    scores are all 0 or absent, and a digest ordered by them would be fetch order. One range
    of ``ix_scores_profile_published``, stopping at the first positive score."""
    found = session.scalar(
        sa.select(Score.item_id)
        .where(Score.profile == profile, Score.published >= start, Score.published < end, Score.score > 0)
        .limit(1)
    )
    return found is not None


def build_digest(
    session: Session,
    tz: ZoneInfo,
    day: dt.date | None = None,
    days: int = 1,
    limit: int = 50,
    offset: int = 0,
    profile: str = DEFAULT_PROFILE,
    now: dt.datetime | None = None,
    scored_only: bool = False,
    hide_muted: bool = False,
) -> Digest:
    """The ranked digest: items of the ``days`` local days ending ``day`` (default:
    :func:`default_day`), ordered by the precomputed score of ``profile``, ties broken by
    recency. When nothing in the window has a positive score (:func:`is_ranked`: no interests
    are set), the digest is unranked (``ranked`` False) and ordered by the number of blog
    posts that discuss each item, then newest first. ``scored_only`` keeps only items that
    have a score row (a reader's scores hold their top items of the window, see
    :mod:`aggregator.ranking.personal`), which lets the query walk the ``(profile, item)`` rows
    instead of every item of the window; ``hide_muted`` leaves out rows the reader's muted
    phrases or authors matched. Reads only: one count, one look for a positive score, one
    ranked page of columns (no ORM objects), then sources and links of that page.

    Long because it is one query and its assembly into entries, and the two share the day's window.
    """
    if day is None:
        day = default_day(session, tz, now)
    start, end = day_window(day, days, tz)
    in_window = sa.and_(Item.published >= start, Item.published < end)
    total = session.scalar(sa.select(sa.func.count()).select_from(Item).where(in_window)) or 0
    columns = (*ITEM_COLUMNS, Score.why, Score.topics, Score.authors.label("followed"))
    on_profile = sa.and_(Score.item_id == Item.id, Score.profile == profile)
    ranked = scored_only or is_ranked(session, profile, start, end)
    if scored_only:  # the reader's rows of the window: one range of ix_scores_profile_published
        query = sa.select(Score.score.label("score"), *columns).join(Item, on_profile)
        query = query.where(Score.published >= start, Score.published < end)
        order = (Score.score.desc(), Item.published.desc(), Item.id.desc())
    else:
        score = sa.func.coalesce(Score.score, 0.0)
        query = sa.select(score.label("score"), *columns).outerjoin(Score, on_profile)
        if ranked:
            order = (score.desc(), Item.published.desc(), Item.id.desc())
        else:  # posts linking each item: one look-up of ix_item_links_paper per item of the window
            posts = sa.select(sa.func.count()).where(ItemLink.paper_id == Item.id).scalar_subquery()
            order = (posts.desc(), Item.published.desc(), Item.id.desc())
    if hide_muted:
        query = query.where(Score.muted.is_(False))
    rows = session.execute(query.where(in_window).order_by(*order).limit(limit).offset(offset)).all()
    return Digest(day, days, start, end, total, entries(session, rows), ranked)
