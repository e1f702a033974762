"""The daily digest: the items of a day (or of N days), best first, read from precomputed scores.

An item's date is its announcement date (papers) or published date (posts) in the configured
time zone. Nothing here fits or scores: the request path only reads (see :mod:`aggregator.rank`).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from .links import discussed_in
from .store.tables import Feed, Item, ItemSource, Score

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
    discussed_in: int = 0  # blog posts linking this paper (aggregator.links)


@dataclass(frozen=True, slots=True)
class Digest:
    date: dt.date
    days: int
    start: dt.datetime
    end: dt.datetime
    total: int
    items: list[DigestEntry]


def day_window(day: dt.date, days: int, tz: ZoneInfo) -> tuple[dt.datetime, dt.datetime]:
    """UTC [start, end) of the ``days`` local days ending with ``day`` in ``tz``."""
    start_local = dt.datetime.combine(day - dt.timedelta(days=days - 1), dt.time(0, 0), tz)
    end_local = dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0, 0), tz)
    return start_local.astimezone(dt.UTC), end_local.astimezone(dt.UTC)


def latest_day(session: Session, today: dt.date, tz: ZoneInfo) -> dt.date:
    """``today`` if it has items, else the latest earlier local date that has some (or today)."""
    _, end = day_window(today, 1, tz)
    latest = session.scalar(sa.select(sa.func.max(Item.published)).where(Item.published < end))
    if latest is None:
        return today
    if latest.tzinfo is None:
        latest = latest.replace(tzinfo=dt.UTC)
    return latest.astimezone(tz).date()


def build_digest(
    session: Session,
    tz: ZoneInfo,
    day: dt.date | None = None,
    days: int = 1,
    limit: int = 50,
    offset: int = 0,
    profile: str = DEFAULT_PROFILE,
    now: dt.datetime | None = None,
) -> Digest:
    """The ranked digest: items of the ``days`` local days ending ``day`` (default: today, or
    the latest day with items), ordered by score, ties broken by recency."""
    if day is None:
        day = latest_day(session, (now or dt.datetime.now(dt.UTC)).astimezone(tz).date(), tz)
    start, end = day_window(day, days, tz)
    in_window = sa.and_(Item.published >= start, Item.published < end)
    total = session.scalar(sa.select(sa.func.count()).select_from(Item).where(in_window)) or 0
    score = sa.func.coalesce(Score.score, 0.0)
    rows = session.execute(
        sa.select(Item, score.label("score"), Score.why)
        .outerjoin(Score, sa.and_(Score.item_id == Item.id, Score.profile == profile))
        .where(in_window)
        .order_by(score.desc(), Item.published.desc(), Item.id.desc())
        .limit(limit)
        .offset(offset)
    ).all()
    sources = item_sources(session, [r.Item.id for r in rows])
    discussed = discussed_in(session, [r.Item.id for r in rows])
    entries = [
        DigestEntry(
            id=r.Item.id,
            title=r.Item.title,
            url=r.Item.url,
            authors=list(r.Item.authors),
            source=(sources.get(r.Item.id) or ["unknown"])[0],
            sources=sources.get(r.Item.id, []),
            kind=r.Item.kind,
            categories=list(r.Item.categories),
            published=r.Item.published,
            score=round(float(r.score), 4),
            why=list(r.why or []),
            summary=r.Item.summary,
            arxiv_id=r.Item.arxiv_id,
            discussed_in=discussed.get(r.Item.id, 0),
        )
        for r in rows
    ]
    return Digest(day, days, start, end, total, entries)


def item_sources(session: Session, item_ids: list[int]) -> dict[int, list[str]]:
    """Feed names that announced each item: primary ("new") announcements before cross-lists,
    then in order of arrival."""
    out: dict[int, list[str]] = {}
    if not item_ids:
        return out
    rows = session.execute(
        sa.select(ItemSource.item_id, Feed.name)
        .join(Feed, Feed.id == ItemSource.feed_id)
        .where(ItemSource.item_id.in_(item_ids))
        .order_by(
            ItemSource.item_id, (ItemSource.announce_type == "cross"), ItemSource.seen_at, ItemSource.id
        )
    )
    for item_id, name in rows:
        names = out.setdefault(item_id, [])
        if name not in names:
            names.append(name)
    return out
