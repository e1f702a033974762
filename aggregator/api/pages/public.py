"""HTML pages, rendered on the server with Jinja2; no JavaScript needed: the digest at ``/``
and the feed status at ``/feeds``."""

from __future__ import annotations

import datetime as dt
from http import HTTPStatus
from typing import Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from aggregator.api.auth import WebSessionDep
from aggregator.api.deps import SessionDep, SettingsDep
from aggregator.api.errors import HTML_422
from aggregator.api.html import templates
from aggregator.api.paging import CursorQuery, FiltersDep, next_cursor, open_cursor
from aggregator.api.routes.digest import DateQuery, DaysQuery, LimitQuery
from aggregator.digest.cursor import fingerprint
from aggregator.digest.filters import DigestFilters
from aggregator.digest.paging import public_page
from aggregator.digest.public import default_day
from aggregator.feeds.status import (
    FeedState,
    ago,
    as_seen_by,
    describe,
    failing_feeds,
    feed_states,
    state_of,
    until,
)

router = APIRouter()


@router.get("/", response_class=HTMLResponse, tags=["pages"], responses=HTML_422)
def digest_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    ws: WebSessionDep,
    date: DateQuery = None,
    days: DaysQuery = 1,
    limit: LimitQuery = 50,
    cursor: CursorQuery = None,
    filters: FiltersDep = DigestFilters(),
) -> HTMLResponse:
    """The ranked daily digest as a page readable on a phone (without ``date``: the newest day
    with papers). Unranked when no interests are set (then it says so and shows no scores),
    with a notice at the top when most feeds failed on their last fetch. Paged: a "more" link
    at the bottom (``cursor``); the filters of ``GET /api/digest``."""
    date = date or default_day(session, settings.tz)
    at = open_cursor(request, cursor, fingerprint("digest", date, days, filters.key()), session)
    page = public_page(session, settings.tz, date, days, limit, at, filters)
    digest = page.digest
    token = next_cursor(request, page.cursor)
    more = (
        None if token is None else str(request.url.include_query_params(cursor=token, date=date.isoformat()))
    )
    return templates.TemplateResponse(
        request,
        "digest.html",
        {
            "digest": digest,
            "timezone": settings.timezone,
            "prev_day": digest.date - dt.timedelta(days=1),
            "next_day": digest.date + dt.timedelta(days=1),
            "limit": limit,
            "more": more,
            "first": 0 if cursor is None else None,
            "rising": rising_terms(session),
            "failing": failing_feeds(session),
            "ws": ws,
        },
    )


def rising_terms(session: SessionDep, limit: int = 5) -> list[dict[str, object]]:
    """The top rising terms of all scopes (stored 7 d / 56 d result) for the page header; when
    none rises, the week's leading topics, each marked ``"leading": True``."""
    from aggregator.trends import stored_payload

    payload = stored_payload(session)
    if payload is None:
        return []
    if payload["terms"]:
        return [{**t, "leading": False} for t in payload["terms"][:limit]]
    return [{**t, "leading": True} for t in payload.get("leading", [])[:limit]]


#: the order of the feed page: what needs attention first
_STATE_ORDER = {"failed": 0, "stopped": 1, "new": 2, "ok": 3, "unfollowed": 4}
_STATE_LABELS = {
    "failed": "failing",
    "stopped": "stopped",
    "new": "not fetched yet",
    "ok": "OK",
    "unfollowed": "not followed",
}


def _status_words(feed: FeedState) -> str:
    """``"HTTP 304 Not Modified"``, ``"no answer"`` (a network error), ``"–"`` (never fetched)."""
    if feed.last_status is None:
        return "no answer" if feed.last_fetch_at is not None else "–"
    try:
        return f"HTTP {feed.last_status} {HTTPStatus(feed.last_status).phrase}"
    except ValueError:
        return f"HTTP {feed.last_status}"


def _local(when: dt.datetime | None, tz: ZoneInfo) -> str:
    return "" if when is None else when.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def feed_rows(feeds: list[FeedState], now: dt.datetime, tz: ZoneInfo) -> list[dict[str, Any]]:
    """What the ``/feeds`` page shows of each feed, failing ones first, then by name. The URL
    is None for feeds readers added: the page is public and does not reveal them."""
    rows: list[dict[str, Any]] = []
    for f in feeds:
        state = state_of(f)
        rows.append(
            {
                "id": f.id,
                "name": f.name,
                "kind": f.kind or "not known yet",
                "url": None if f.reader_added else f.url,  # also for its reader: the page is public
                "reader_added": f.reader_added,
                "state": state,
                "label": _STATE_LABELS[state],
                "sentence": describe(f, now),
                "status": _status_words(f),
                "last_fetch": ago(f.last_fetch_at, now),
                "last_fetch_at": _local(f.last_fetch_at, tz),
                "last_success": ago(f.last_success_at, now),
                "error_count": f.error_count,
                "last_error": f.last_error,
                "next_check": until(f.next_check_at, now) if f.scheduled and not f.disabled else "never",
                "next_check_at": _local(f.next_check_at, tz) if f.scheduled and not f.disabled else "",
                "item_count": f.items,
                "problems": f.parse_problems,
            }
        )
    rows.sort(key=lambda r: (_STATE_ORDER[r["state"]], r["name"].casefold(), r["id"]))
    return rows


@router.get("/feeds", response_class=HTMLResponse, tags=["pages"], name="feeds_page")
def feeds_page(
    request: Request, session: SessionDep, settings: SettingsDep, ws: WebSessionDep
) -> HTMLResponse:
    """Each feed's fetch state in plain words (the data of ``GET /api/feeds``): name, kind,
    last status, last fetch, last error, failures in a row and next check, failing feeds
    first, with a hint when most failed. Feeds readers added are shown by name only."""
    now = dt.datetime.now(dt.UTC)
    rows = feed_rows(as_seen_by(feed_states(session), None), now, settings.tz)
    counts: dict[str, int] = {}
    for r in rows:
        counts[r["state"]] = counts.get(r["state"], 0) + 1
    return templates.TemplateResponse(
        request,
        "feeds.html",
        {
            "rows": rows,
            "counts": counts,
            "ws": ws,
            "labels": _STATE_LABELS,
            "followed": sum(n for s, n in counts.items() if s not in ("unfollowed", "stopped")),
            "timezone": settings.timezone,
            "failing": failing_feeds(session),
        },
    )
