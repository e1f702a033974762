"""The served digest: a reader's ranked digest as ready JSON bytes, for ``GET /api/me/digest``.

Everything reader-specific was precomputed by the worker (:mod:`aggregator.ranking.personal`: score,
``why``, matched topic filters, followed authors, muted flag in ``scores``), and every item's
public fields are stored once as JSON text (:mod:`aggregator.digest.cards`). Serving is therefore
reads and string joins, all through the app's one :class:`aggregator.digest.row_source.RowSource`
(the fast lane and the route alike): the reader with their votes and subscriptions, by token
hash, and the reader's unmuted rows of the day — one range of ``ix_scores_profile_published``,
each with its read mark — with the muted count, in one round trip; then, for a page that has
more after it, the snapshot bound and the scores fingerprint of the window (the ``next_cursor``)
in a second, with any cards not read in the last ``CARD_TTL`` s and the window's item count
when not read in the last ``CACHE_TTL`` s (both per-process caches; the default day too). No
object per item or field: nothing is scored, decoded or validated per item here; the response
has exactly the shape of ``aggregator.api.me_schemas.ReaderDigestResponse`` (tests check that
the two paths agree item for item).

A reader without precomputed scores in the window (just signed up, or before the first refit)
gets no body: the caller serves the general path
(:func:`aggregator.api.reader_paging.paged_reader_response`).
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import time
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from aggregator.digest import public as digest
from aggregator.digest.cards import build_cards, json_text
from aggregator.digest.public import day_window
from aggregator.digest.row_source import RowSource
from aggregator.digest.served_sql import (
    PAGE_STATE,
    RANKED,
    READER,
    READER_AND_RANKED,
    SITE_STATE,
    TOTAL,
    split_all,
)
from aggregator.store.db import dbapi_datetime

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ReaderKey:
    """The reader of an API token, with what the served digest needs live: their votes
    (item id → 1 or -1) and the slugs of the topic filters they follow."""

    id: int
    votes: dict[int, int]
    subscribed: frozenset[str]


def _reader_key(rows: list[Any]) -> ReaderKey | None:
    reader_id: int | None = None
    votes: dict[int, int] = {}
    slugs: set[str] = set()
    for kind, number, value, slug in rows:
        if kind == 0:
            reader_id = number
        elif kind == 1:
            votes[number] = value
        else:
            slugs.add(slug)
    return None if reader_id is None else ReaderKey(reader_id, votes, frozenset(slugs))


async def reader_for_token_hash(source: RowSource, token_hash: str) -> ReaderKey | None:
    """The reader whose API token has SHA-256 hex digest ``token_hash``, or None: one query
    (three indexed look-ups: reader, votes ≠ 0, subscriptions)."""
    return _reader_key((await source.fetch([(READER, {"token_hash": token_hash})]))[0])


#: Seconds a window's item count and the default day are reused: both change only
#: when items are ingested, and counting a day's ~2,000 items costs as much as the rest.
CACHE_TTL = 10.0
_clock = time.monotonic  # the caches' clock (seconds); tests move it on
_cache: dict[tuple[Any, ...], tuple[float, Any]] = {}
_MISSING = object()


def _cache_get(key: tuple[Any, ...]) -> Any:
    hit = _cache.get(key)
    return hit[1] if hit is not None and hit[0] > _clock() else _MISSING


def _cache_put(key: tuple[Any, ...], value: T) -> T:
    if len(_cache) > 1000:
        _cache.clear()
    _cache[key] = (_clock() + CACHE_TTL, value)
    return value


def default_day(source: RowSource, tz: ZoneInfo, now: dt.datetime | None = None) -> dt.date:
    """The digest's day when none is asked for: :func:`aggregator.digest.public.default_day` (the
    newest day with papers, see :func:`aggregator.digest.public.latest_day`), cached per process for
    ``CACHE_TTL`` s per local date (``now``: default the current UTC time)."""
    today = (now or dt.datetime.now(dt.UTC)).astimezone(tz).date()
    key = ("latest", source.engine, today, tz.key)
    found = _cache_get(key)
    if found is _MISSING:
        found = _cache_put(key, source.run(lambda conn: digest.latest_day(conn, today, tz)))
    return found  # type: ignore[no-any-return]


#: (item id, card) of the items whose ids are bound as ``ids``: a JSON array text on SQLite,
#: a list (an array parameter) on PostgreSQL
_CARDS = {
    "sqlite": sa.text("SELECT id, card FROM items WHERE id IN (SELECT value FROM json_each(:ids))"),
    "postgresql": sa.text("SELECT id, card FROM items WHERE id = ANY(:ids)"),
}
#: (item id, abstract) of the items bound as ``ids`` (as in :data:`_CARDS`), for the pages
_SUMMARIES = {
    "sqlite": sa.text("SELECT id, summary FROM items WHERE id IN (SELECT value FROM json_each(:ids))"),
    "postgresql": sa.text("SELECT id, summary FROM items WHERE id = ANY(:ids)"),
}
#: Seconds this process reuses a stored card before reading it again. A card changes only when
#: its item does (a new version, one more announcing feed, a new paper ↔ post link, a renamed
#: feed), so a change shows in the served digest within this many seconds; the newest days'
#: cards are shared by every reader, so nearly every request finds all of its cards here.
CARD_TTL = CACHE_TTL
#: Cards kept per process at most (about 0.4 KB each on real arXiv data); the cache is emptied
#: when it would grow past this
CARD_CACHE_SIZE = 20_000
#: per engine: item id → (expiry on the monotonic clock, the card's UTF-8 bytes without its
#: closing brace, ready for the reader's fields to be appended)
_card_cache: dict[sa.Engine, dict[int, tuple[float, bytes]]] = {}


def _opened(card: str) -> bytes:
    return card[:-1].encode()


def _cached_cards(engine: sa.Engine, ids: list[int]) -> tuple[dict[int, bytes | None], list[int]]:
    """The cards of ``ids`` read in the last ``CARD_TTL`` s, and the ids to read."""
    now = _clock()
    cache = _card_cache.setdefault(engine, {})
    out: dict[int, bytes | None] = {}
    missing = []
    for item_id in ids:
        hit = cache.get(item_id)
        if hit is not None and hit[0] > now:
            out[item_id] = hit[1]
        else:
            missing.append(item_id)
    return out, missing


def _keep_cards(engine: sa.Engine, rows: list[Any], out: dict[int, bytes | None]) -> None:
    """Add the read ``(id, card)`` rows to ``out`` (None while a card is stale) and the cache."""
    cache = _card_cache.setdefault(engine, {})
    if len(cache) + len(rows) > CARD_CACHE_SIZE:
        cache.clear()
    expires = _clock() + CARD_TTL
    for item_id, card in rows:
        if card is None:
            out[item_id] = None
        else:
            out[item_id] = opened = _opened(card)
            cache[item_id] = (expires, opened)


@functools.lru_cache(maxsize=4096)
def topics_text(stored: str | None, subscribed: frozenset[str]) -> str:
    """The stored topic slugs (JSON text) still subscribed to, as JSON text (memoised: the
    same few label lists repeat on every item and request)."""
    if not stored or stored in ("[]", "null"):
        return "[]"
    slugs = json.loads(stored)
    kept = [s for s in slugs if s in subscribed]
    return stored if len(kept) == len(slugs) else json_text(kept)


def _body(page: ServedPage) -> bytes:
    """The JSON answer of a served page: each card with the reader's score, why, topics still
    subscribed, followed authors, vote and read mark appended."""
    votes, subscribed = page.reader.votes, page.reader.subscribed
    parts = []
    for score, why, topics, followed, item_id, _, _, read in page.rows:
        card = page.cards.get(item_id)
        if card is None:  # the item was deleted meanwhile
            continue
        parts.append(card)  # bytes: a card is often not ASCII, the reader's fields nearly always are
        parts.append(
            f',"score":{round(score, 4)!r},"why":{why or "[]"},'
            f'"topics":{topics_text(topics, subscribed)},"followed_authors":{followed or "[]"},'
            f'"feedback":{votes.get(item_id, 0)},"read":{"true" if read else "false"}}},'.encode()
        )
    if parts:
        parts[-1] = parts[-1][:-1]  # no comma after the last item
    start = (
        f'{{"date":"{page.day.isoformat()}","days":{page.days},"timezone":{json_text(page.timezone)},'
        f'"total":{page.total},"hidden":{int(page.rows[0][5] or 0)},"profile":"reader:{page.reader.id}",'
        '"items":['
    )
    tail = f'],"groups":null,"next_cursor":{json_text(page.next_cursor)}}}'.encode()
    return start.encode() + b"".join(parts) + tail


@dataclass(frozen=True, slots=True)
class PageState:
    """What a served page's ``next_cursor`` needs beyond its rows: the window's item count,
    the snapshot bound (the largest ``items.id`` now) and the scores fingerprint of the
    reader's and the default profile's rows of the window (as
    :func:`aggregator.digest.paging.scores_run` computes it)."""

    total: int
    max_id: int
    run: int | None


class Paging(Protocol):
    """How a served page gets its ``next_cursor`` (:mod:`aggregator.api.paging`): ``limit`` the
    page size, ``next_cursor(reader, rows, day, window, state)`` the cursor after the full
    page ``rows`` (None when nothing follows). Reads nothing."""

    limit: int

    def next_cursor(
        self,
        reader: ReaderKey,
        rows: list[Any],
        day: dt.date,
        window: tuple[dt.datetime, dt.datetime],
        state: PageState,
    ) -> str | None: ...


def _page_state(total: int, found: Any) -> PageState:
    max_id, mine_run, mine_n, site_run, site_n = found
    runs = [r for r in (mine_run, site_run) if r is not None]
    n = int(mine_n) + int(site_n)
    run = None if not runs and not n else int(max(runs, default=0)) * 1_000_003 + n
    return PageState(total, int(max_id or 0), run)


@dataclass(frozen=True, slots=True)
class Answer:
    """What :func:`serve_digest` found: ``reader`` None for an unknown token; ``body`` None
    when the digest is not served here (unknown token, or no precomputed scores)."""

    reader: ReaderKey | None
    body: bytes | None


@dataclass(frozen=True, slots=True)
class ServedPage:
    """A full page of a reader's served digest before it is written out: the ranked ``rows``
    of :data:`aggregator.digest.served_sql.RANKED` — (score, why JSON, topics JSON, followed
    JSON, item id, muted count, published, read) — with each item's ``cards`` (UTF-8 card
    text without its closing brace), ``summaries`` (item id → abstract; only when asked for),
    the window's item ``total`` and the ``next_cursor`` (None on the last page)."""

    reader: ReaderKey
    rows: list[Any]
    cards: dict[int, bytes]
    summaries: dict[int, str]
    day: dt.date
    days: int
    timezone: str
    total: int
    next_cursor: str | None


def ranked_params(
    dialect: str, token_hash: str, window: tuple[dt.datetime, dt.datetime], limit: int
) -> dict[str, Any]:
    """The parameters of :data:`RANKED` (and :data:`READER_AND_RANKED`) as the driver takes
    them."""
    start, end = window
    return {
        "token_hash": token_hash,
        "start": dbapi_datetime(dialect, start),
        "end": dbapi_datetime(dialect, end),
        "limit": limit,
    }


async def serve_digest(
    source: RowSource,
    token_hash: str,
    tz: ZoneInfo,
    timezone: str,
    day: dt.date | None = None,
    days: int = 1,
    limit: int = 50,
    now: dt.datetime | None = None,
    paging: Paging | None = None,
) -> Answer:
    """The reader of ``token_hash`` (SHA-256 hex of the API token) and the JSON body of their
    digest of the ``days`` local days (zone ``tz``, named ``timezone`` in the answer) ending
    ``day`` (default: :func:`default_day`): their best ``limit`` unmuted items by precomputed
    score, ties to the newer item. ``total`` counts the window's items; ``hidden`` the
    reader's scored items of the window left out as muted. The body is None when the reader
    has no unmuted precomputed scores in the window, or (with ``paging``, issue 13) when the
    rows do not fill the page (the general path then ranks the rest of the window). Reads
    only (a stale card is built in memory, not written): the queries are in the module
    docstring. Raises ``sqlalchemy.exc.DBAPIError`` or ``psycopg.Error`` on a database error."""
    reader, page = await serve_page(source, token_hash, tz, timezone, day, days, limit, now, paging)
    return Answer(reader, None if page is None else _body(page))


async def serve_page(
    source: RowSource,
    token_hash: str,
    tz: ZoneInfo,
    timezone: str,
    day: dt.date | None = None,
    days: int = 1,
    limit: int = 50,
    now: dt.datetime | None = None,
    paging: Paging | None = None,
    summaries: bool = False,
) -> tuple[ReaderKey | None, ServedPage | None]:
    """What :func:`serve_digest` writes out, as a :class:`ServedPage` (None when the general
    path must answer), with the reader of ``token_hash`` (None: unknown token). The pages and
    the Atom feed render the same page (:mod:`aggregator.digest.served_views`); ``summaries``:
    also read the items' abstracts, in the same round trip as the cards."""
    if day is None:
        day = default_day(source, tz, now)
    window = day_window(day, days, tz)
    params = ranked_params(source.engine.dialect.name, token_hash, window, limit)
    if source.one_statement:
        who, rows = split_all((await source.fetch([(READER_AND_RANKED, params)]))[0])
    else:
        who, rows = await source.fetch([(READER, {"token_hash": token_hash}), (RANKED, params)])
    reader = _reader_key(who)
    if reader is None or not rows or (paging is not None and len(rows) < paging.limit):
        return reader, None  # a short page: the general path ranks the rest of the day
    asked = (day, days, timezone, window)
    return reader, await _served_page(source, reader, rows, asked, params, paging, summaries)


def _ids_param(dialect: str, ids: list[int]) -> dict[str, Any]:
    return {"ids": json_text(ids) if dialect == "sqlite" else ids}


async def _served_page(
    source: RowSource,
    reader: ReaderKey,
    rows: list[Any],
    asked: tuple[dt.date, int, str, tuple[dt.datetime, dt.datetime]],
    params: dict[str, Any],
    paging: Paging | None,
    summaries: bool,
) -> ServedPage:
    """A full page of ``rows``: one more round trip for what the caches miss (cards, the
    window's item count, the default profile's scores state), the abstracts
    when ``summaries`` and, with ``paging``, the page state (``asked``: day, days, time zone
    name and the window; ``params``: those of :data:`RANKED`)."""
    engine, name = source.engine, source.engine.dialect.name
    day, days, timezone, window = asked
    ids = [row[4] for row in rows]
    cards, missing = _cached_cards(engine, ids)
    total_key = ("total", engine, params["start"], params["end"])
    total = _cache_get(total_key)
    bounds = {"start": params["start"], "end": params["end"]}
    queries: list[Any] = []
    if missing:
        queries.append((_CARDS[name], _ids_param(name, missing)))
    if summaries:
        queries.append((_SUMMARIES[name], _ids_param(name, ids)))
    if total is _MISSING:
        queries.append((TOTAL, bounds))
    # with the window's count known, a page that holds the whole window needs no cursor
    cursor = paging is not None and (total is _MISSING or total > len(rows) + int(rows[0][5] or 0))
    site_key = ("site", engine, params["start"], params["end"])
    site: Any = _cache_get(site_key) if cursor else ()
    if cursor:
        queries.append((PAGE_STATE, {**bounds, "profile": f"reader:{reader.id}"}))
        if site is _MISSING:
            queries.append((SITE_STATE, bounds))
    found = list(await source.fetch(queries)) if queries else []
    if missing:
        _keep_cards(engine, found.pop(0), cards)
    abstracts = dict(found.pop(0)) if summaries else {}
    if total is _MISSING:
        total = _cache_put(total_key, int(found.pop(0)[0][0]))
    stale = [item_id for item_id, card in cards.items() if card is None]
    if stale:
        built = source.run(lambda conn: build_cards(Session(bind=conn), stale))
        cards.update((i, _opened(card)) for i, card in built.items())
    more = None
    if paging is not None and cursor:
        mine = tuple(found.pop(0)[0])
        if site is _MISSING:
            site = _cache_put(site_key, tuple(found.pop(0)[0]))
        state = _page_state(total, (*mine, *site))
        more = paging.next_cursor(reader, rows, day, window, state)
    ready = {i: c for i, c in cards.items() if c is not None}
    return ServedPage(reader, rows, ready, abstracts, day, days, timezone, total, more)
