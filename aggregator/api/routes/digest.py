"""JSON routes: thin wrappers over :mod:`aggregator.digest.public` and the store."""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated

import sqlalchemy as sa
from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BeforeValidator

from aggregator.api.auth import OptionalReaderDep
from aggregator.api.deps import OPTIONAL_AUTH, SessionDep, SettingsDep
from aggregator.api.paging import CursorQuery, FiltersDep, next_cursor, open_cursor
from aggregator.api.schemas import DigestItem, DigestResponse, FeedStatus, Health, ItemDetail, ItemSourceOut
from aggregator.digest.cursor import fingerprint
from aggregator.digest.filters import DigestFilters
from aggregator.digest.paging import public_page
from aggregator.digest.public import DigestEntry, default_day
from aggregator.digest.remote_images import without_remote_images
from aggregator.feeds.status import as_seen_by, feed_states
from aggregator.store.queries import item_sources
from aggregator.store.tables import Feed, Item, ItemSource, Score

router = APIRouter()


#: Database ids are 32-bit on every backend we run; larger numbers are a 422, not an overflow.
ItemId = Annotated[int, Path(ge=1, le=2**31 - 1, description="item id")]


def iso_date_only(value: object) -> object:
    """Accept only ``YYYY-MM-DD`` text from 1900 to 2999 (pydantic's lax mode would take ``0`` as
    1970-01-01, and year 1 would overflow the day-window arithmetic)."""
    if value is None or isinstance(value, dt.date):
        return value
    if isinstance(value, str) and _ISO_DATE.fullmatch(value):
        if not "1900" <= value[:4] <= "2999":
            raise ValueError("a date must lie between 1900-01-01 and 2999-12-31")
        return value
    raise ValueError("a date must be written YYYY-MM-DD")


_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
IsoDate = Annotated[dt.date, BeforeValidator(iso_date_only)]
DateQuery = Annotated[
    IsoDate | None, Query(description="local date YYYY-MM-DD; default: the newest day with papers")
]
DaysQuery = Annotated[int, Query(ge=1, le=31, description="widen to the N days ending at `date`")]
LimitQuery = Annotated[int, Query(ge=1, le=500, description="at most this many items")]


def digest_item(entry: DigestEntry, ranked: bool = True) -> DigestItem:
    """The JSON item of a digest entry; ``score`` null when the digest is unranked."""
    item = DigestItem.model_validate(entry, from_attributes=True)
    if not ranked:
        item.score = None
    return item


@router.get("/api/digest", response_model=DigestResponse, tags=["digest"])
def get_digest(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    date: DateQuery = None,
    days: DaysQuery = 1,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
    filters: FiltersDep = DigestFilters(),
) -> DigestResponse:
    """The ranked daily digest for the configured interests, best first. Without ``date``:
    the newest day with papers (items dated by their fetch time never decide it). When no
    interests are set, ``ranked`` is false, every ``score`` null, and the items are ordered by
    the blog posts discussing them (``discussed_in``), then newest first.

    Paged: ``next_cursor`` gives the next page (``cursor``); paging with any ``limit`` shows
    every item of the window exactly once, also while an ingest or a rescore runs. Filters:
    ``category`` (repeatable, cross-lists match), ``source`` (feed id), ``kind``, ``venue``,
    ``has_code``.
    \f
    Paging and filters: :mod:`aggregator.api.paging`."""
    if date is None:
        date = default_day(session, settings.tz)
    at = open_cursor(request, cursor, fingerprint("digest", date, days, filters.key()), session)
    page = public_page(session, settings.tz, date, days, limit, at, filters)
    digest = page.digest
    return DigestResponse(
        date=digest.date,
        days=days,
        timezone=settings.timezone,
        total=digest.total,
        ranked=digest.ranked,
        items=[digest_item(e, digest.ranked) for e in digest.items],
        next_cursor=next_cursor(request, page.cursor),
    )


@router.get(
    "/api/items/{item_id}",
    response_model=ItemDetail,
    tags=["items"],
    responses={404: {"description": "no such item"}},
)
def get_item(item_id: ItemId, session: SessionDep) -> ItemDetail:
    """One paper or post, with every announcement of it (feed, announce type, version)."""
    item = session.get(Item, item_id)
    if item is None:
        raise HTTPException(status_code=404, detail=f"no item with id {item_id}")
    score = session.get(Score, ("default", item_id))
    rows = session.execute(
        sa.select(Feed.name, ItemSource.announce_type, ItemSource.version, ItemSource.seen_at)
        .join(Feed, Feed.id == ItemSource.feed_id)
        .where(ItemSource.item_id == item_id)
        .order_by(ItemSource.id)
    ).all()
    names = item_sources(session, [item_id]).get(item_id, [])
    return ItemDetail(
        id=item.id,
        title=item.title,
        url=item.url,
        authors=item.authors,
        source=names[0] if names else "unknown",
        sources=names,
        kind=item.kind,
        categories=item.categories,
        published=item.published,
        score=round(score.score, 4) if score else 0.0,
        why=score.why if score else [],
        arxiv_id=item.arxiv_id,
        summary=item.summary,
        summary_html=without_remote_images(item.summary_html),  # no tracking pixels
        version=item.version,
        primary_category=item.primary_category,
        comment=item.comment,
        date_from_fetch=item.date_from_fetch,
        first_seen_at=item.first_seen_at,
        announcements=[
            ItemSourceOut(
                feed=r.name,
                announce_type=r.announce_type or None,
                version=r.version or None,
                seen_at=r.seen_at,
            )
            for r in rows
        ],
    )


@router.get(
    "/api/feeds",
    response_model=list[FeedStatus],
    tags=["feeds"],
    responses={401: {"description": "an invalid bearer token (none is fine)"}},
    openapi_extra=OPTIONAL_AUTH,
)
def get_feeds(session: SessionDep, reader: OptionalReaderDep) -> list[FeedStatus]:
    """Every feed with its fetch state: last status, last fetch, last error and next check
    (the ``/feeds`` page shows the same, in words). The URL of a feed a reader added is shown
    to that reader only (send their API token); it is null for everyone else."""
    states = as_seen_by(feed_states(session), None if reader is None else reader.id)
    return [FeedStatus.model_validate(f, from_attributes=True) for f in states]


@router.get("/healthz", response_model=Health, tags=["health"], responses={503: {"model": Health}})
def healthz(session: SessionDep) -> Health | JSONResponse:
    """Liveness and database reachability."""
    try:
        items = session.scalar(sa.select(sa.func.count()).select_from(Item)) or 0
        feeds = session.scalar(sa.select(sa.func.count()).select_from(Feed)) or 0
    except sa.exc.SQLAlchemyError as err:
        body = Health(status="error", database=f"unreachable: {type(err).__name__}", items=0, feeds=0)
        return JSONResponse(body.model_dump(), status_code=503)
    return Health(status="ok", database="ok", items=items, feeds=feeds)


@router.get("/metrics", include_in_schema=False)
def metrics() -> Response:
    """Prometheus exposition of this process's counters (see aggregator.metrics)."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

    from aggregator import metrics  # noqa: F401  (registers the metrics)

    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
