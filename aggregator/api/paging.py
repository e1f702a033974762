"""Query parameters shared by the paged digests and search: ``cursor`` and the filters.

``cursor`` is the ``next_cursor`` of the previous answer (opaque, signed, see
:mod:`aggregator.digest.cursor`); a cursor that is not one, or that was made for other
parameters, is a 422. The filters (:class:`aggregator.digest.filters.DigestFilters`):
``category`` (repeatable), ``source`` (feed id, repeatable), ``kind``, ``venue``, ``has_code``,
``unread`` (signed-in readers).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import Depends, Query, Request
from pydantic import Field
from sqlalchemy.orm import Session

from aggregator.api.deps import unprocessable
from aggregator.config import Settings
from aggregator.digest import cursor as cursors
from aggregator.digest import served
from aggregator.digest.filters import DigestFilters
from aggregator.digest.paging import max_item_id

CursorQuery = Annotated[
    str | None,
    Query(
        max_length=cursors.MAX_CURSOR_CHARS,
        description="`next_cursor` of the previous page; omit for the first",
    ),
]

FeedId = Annotated[int, Field(ge=1, le=2**31 - 1)]
_keys: dict[int, bytes] = {}


def cursor_key(engine: sa.Engine, settings: Settings) -> bytes:
    """The key cursors are signed with: SHA-256 of the app's secret key (the configured one or
    the stored one), under the purpose label ``cursor``; read once per engine."""
    key = _keys.get(id(engine))
    if key is None:
        from aggregator.mail.tokens import signing_key

        with Session(engine) as session:
            secret = signing_key(session, settings)
            session.commit()
        key = _keys[id(engine)] = hashlib.sha256(b"cursor:" + secret.encode()).digest()
    return key


def filters_query(
    category: Annotated[
        list[str] | None,
        Query(max_length=64, description="arXiv category, e.g. cs.LG (repeatable; cross-lists match)"),
    ] = None,
    source: Annotated[list[FeedId] | None, Query(description="feed id (repeatable)")] = None,
    kind: Annotated[Literal["paper", "post"] | None, Query(description="only papers or only posts")] = None,
    venue: Annotated[
        str | None, Query(max_length=64, description="venue, e.g. NeurIPS (case-insensitive)")
    ] = None,
    has_code: Annotated[bool, Query(description="only items with a code link")] = False,
    unread: Annotated[bool, Query(description="signed-in readers: only items not marked read")] = False,
) -> DigestFilters:
    """The filters of a request (FastAPI dependency)."""
    if category is not None and len(category) > 20:
        raise unprocessable("at most 20 categories", ("query", "category"))
    if source is not None and len(source) > 20:
        raise unprocessable("at most 20 sources", ("query", "source"))
    return DigestFilters(
        categories=tuple(category or ()),
        sources=tuple(source or ()),
        kind=kind,
        venue=venue or None,
        has_code=has_code,
        unread=unread,
    )


FiltersDep = Annotated[DigestFilters, Depends(filters_query)]


def open_cursor(
    request: Request, text: str | None, query: str, session: Session, loc: str = "cursor"
) -> cursors.Cursor:
    """The decoded ``cursor`` parameter, or when absent a fresh cursor whose snapshot bound is
    the largest item id now. Raises a 422 (FastAPI's shape) for a bad one."""
    state = request.app.state
    if text is None:
        return cursors.Cursor(query=query, max_id=max_item_id(session), run=None)
    try:
        return cursors.decode(text, cursor_key(state.engine, state.settings), query)
    except cursors.CursorError as err:
        raise unprocessable(str(err), ("query", loc)) from err


def next_cursor(request: Request, cursor: cursors.Cursor | None) -> str | None:
    """The ``next_cursor`` text of ``cursor`` (None on the last page)."""
    if cursor is None:
        return None
    state = request.app.state
    return cursors.encode(cursor, cursor_key(state.engine, state.settings))


@functools.lru_cache(maxsize=4096)  # the served digest asks for it on every request
def reader_query(reader_id: int, day: dt.date, days: int, filters: DigestFilters) -> str:
    """The fingerprint of a reader's digest request (what its cursors are valid for)."""
    return cursors.fingerprint("me", reader_id, day, days, filters.key())


class ServedPaging:
    """The ``next_cursor`` of a plain ``GET /api/me/digest`` served from stored JSON
    (:class:`aggregator.digest.served.Paging`): the same cursor the general path
    (:mod:`aggregator.digest.paged_reader`) would give after these rows, all of tier 1, from
    what the served digest read (no query of its own)."""

    def __init__(self, engine: sa.Engine, settings: Settings, days: int, limit: int) -> None:
        self.engine, self.settings, self.days, self.limit = engine, settings, days, limit

    def next_cursor(
        self,
        reader: served.ReaderKey,
        rows: list[Any],
        day: dt.date,
        window: tuple[dt.datetime, dt.datetime],
        state: served.PageState,
    ) -> str | None:
        n_muted = int(rows[0][5] or 0)
        if state.total <= len(rows) + n_muted:
            return None
        score, item_id, published = rows[-1][0], rows[-1][4], rows[-1][6]
        ids = tuple(r[4] for r in rows)
        query = reader_query(reader.id, day, self.days, DigestFilters())
        key = cursor_key(self.engine, self.settings)
        return _served_cursor(key, query, state.max_id, state.run, score, published, item_id, ids)


@functools.lru_cache(maxsize=4096)  # a reader reloading the same page gets the same cursor
def _served_cursor(
    key: bytes,
    query: str,
    max_id: int,
    run: int | None,
    score: float,
    published: dt.datetime | str,
    item_id: int,
    ids: tuple[int, ...],
) -> str:
    """The signed cursor after a served page whose last row is (``score``, ``published``,
    ``item_id``) and whose item ids are ``ids``: encoding (JSON, zlib, HMAC) costs as much as a
    tenth of a served request, and the same page is asked for again and again."""
    if isinstance(published, str):  # SQLite's driver: naive UTC text
        published = dt.datetime.fromisoformat(published)
    if published.tzinfo is None:
        published = published.replace(tzinfo=dt.UTC)
    cursor = cursors.Cursor(
        query=query,
        max_id=max_id,
        run=run,
        key=[1, score, ["d", published.astimezone(dt.UTC).isoformat()], item_id],
    )
    cursor.mark(ids)
    return cursors.encode(cursor, key)
