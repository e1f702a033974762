"""``GET /api/search``: full-text search over titles, abstracts, authors and arXiv ids."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from aggregator.api.auth import OptionalReaderDep
from aggregator.api.deps import OPTIONAL_AUTH, SessionDep, SettingsDep, unprocessable
from aggregator.api.paging import CursorQuery, FiltersDep, next_cursor, open_cursor
from aggregator.api.routes.digest import IsoDate, digest_item
from aggregator.api.schemas import DigestItem
from aggregator.digest.cursor import fingerprint
from aggregator.digest.filters import DigestFilters
from aggregator.digest.public import day_window
from aggregator.search.engine import SearchPage, search_page
from aggregator.search.query import BadQuery, parse

router = APIRouter()

#: Most results per page.
MAX_LIMIT = 100


class SearchResponse(BaseModel):
    query: str = Field(description="the query as searched")
    items: list[DigestItem] = Field(description="best first; `score` is the relevance (larger is better)")
    next_cursor: str | None = Field(None, description="pass as `cursor` for the next page; null on the last")


def run_search(
    request: Request,
    session: SessionDep,
    q: str,
    limit: int,
    cursor: str | None,
    filters: DigestFilters,
    since: dt.date | None,
    until: dt.date | None,
    reader_id: int | None,
    personal: bool,
) -> SearchPage:
    """A page of search results (the API's and the /search page's). Raises a 422 for a bad
    query or cursor, and for ``personal`` without a signed-in reader."""
    try:
        query = parse(q)
    except BadQuery as err:
        raise unprocessable(str(err), ("query", "q")) from err
    if personal and reader_id is None:
        raise unprocessable("personal=true needs a signed-in reader", ("query", "personal"))
    if since and until and since > until:
        raise unprocessable("`from` is after `to`", ("query", "from"))
    tz = request.app.state.settings.tz
    start = day_window(since, 1, tz)[0] if since else None
    end = day_window(until, 1, tz)[1] if until else None
    who = reader_id if (personal or filters.unread) else None
    key = fingerprint("search", query.key(), filters.key(), since, until, personal, who)
    at = open_cursor(request, cursor, key, session)
    profile = f"reader:{reader_id}" if personal else None
    return search_page(session, query, limit, at, filters, start, end, profile, reader_id)


@router.get("/api/search", response_model=SearchResponse, tags=["search"], openapi_extra=OPTIONAL_AUTH)
def search(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    reader: OptionalReaderDep,
    q: Annotated[
        str, Query(max_length=20_000, description='words, "phrases", author:"Name", arXiv ids or links')
    ],
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="at most this many results")] = 20,
    cursor: CursorQuery = None,
    filters: FiltersDep = DigestFilters(),
    since: Annotated[
        IsoDate | None, Query(alias="from", description="published on or after (YYYY-MM-DD)")
    ] = None,
    until: Annotated[
        IsoDate | None, Query(alias="to", description="published on or before (YYYY-MM-DD)")
    ] = None,
    personal: Annotated[bool, Query(description="signed-in readers: blend in your profile's score")] = False,
) -> SearchResponse:
    """Search titles, abstracts, authors and arXiv ids, best match first (BM25 on SQLite,
    ``ts_rank_cd`` on PostgreSQL). Words must all match; ``"quoted phrases"`` match as phrases;
    ``author:"Name"`` matches an author; an arXiv id or abs/PDF link finds that paper. Filters
    as on the digests, and ``from``/``to`` dates (local, inclusive). Paged with
    ``cursor``/``next_cursor``. A query that is empty, unbalanced, of stop words only or over
    300 characters is a 422 that says why.
    \f
    The engine: :mod:`aggregator.search.engine`."""
    page = run_search(
        request, session, q, limit, cursor, filters, since, until, reader.id if reader else None, personal
    )
    return SearchResponse(
        query=q.strip(),
        items=[digest_item(e) for e in page.items],
        next_cursor=next_cursor(request, page.cursor),
    )
