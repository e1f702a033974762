"""The served digest: a reader's ranked digest as ready JSON bytes, for ``GET /api/me/digest``.

Everything reader-specific was precomputed by the worker (:mod:`aggregator.ranking.personal`: score,
``why``, matched topic filters, followed authors, muted flag in ``scores``), and every item's
public fields are stored once as JSON text (:mod:`aggregator.digest.cards`). Serving is therefore
reads and string joins, all through the app's one :class:`aggregator.digest.row_source.RowSource`
(the fast lane and the route alike): the reader with their votes and subscriptions, by token
hash, with the page state a ``next_cursor`` needs (the snapshot bound and the reader's scores
fingerprint of the window), and the reader's unmuted rows of the day — one range of
``ix_scores_profile_published``, each with its read mark — with the muted count, in one round
trip; a second only for what the per-process caches (:mod:`aggregator.digest.served_cache`)
miss: cards not read in the last ``CARD_TTL`` s, the window's item count and the default
profile's scores state when not read in the last ``CACHE_TTL`` s (the default day too). A body
already served whose stamp (the reader, votes, subscriptions, read marks, snapshot bound and
scores run of the window) is unchanged is answered again without reading the ranked rows; the
state reads of requests made at the same time for the same window go out as one statement
(:func:`reader_states`, request coalescing: on PostgreSQL one round trip then answers several
requests). No
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
import weakref
from dataclasses import dataclass
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from aggregator.digest import public as digest
from aggregator.digest.cards import build_cards, json_text
from aggregator.digest.coalesce import Coalescer
from aggregator.digest.public import day_window
from aggregator.digest.row_source import RowSource
from aggregator.digest.served_cache import (
    MISSING,
    bodies,
    cache_get,
    cache_put,
    cached_cards,
    keep_cards,
    opened,
)
from aggregator.digest.served_sql import (
    RANKED,
    READER,
    READER_AND_RANKED,
    READER_STATE,
    READER_STATES,
    SITE_STATE,
    TOTAL,
    array_param,
    split_all,
)
from aggregator.metrics import READER_STATE_LOOKUPS, READER_STATE_READS
from aggregator.store.db import dbapi_datetime


@dataclass(frozen=True, slots=True)
class ReaderKey:
    """The reader of an API token, with what the served digest needs live: their votes
    (item id → 1 or -1) and the slugs of the topic filters they follow."""

    id: int
    votes: dict[int, int]
    subscribed: frozenset[str]


def _reader_key(rows: list[Any]) -> ReaderKey | None:
    """The reader of :data:`READER` (or :data:`READER_STATES`) rows, None when there is none."""
    reader_id: int | None = None
    votes: dict[int, int] = {}
    slugs: set[str] = set()
    for kind, number, value, slug, *_ in rows:
        if kind == 0:
            reader_id = number
        elif kind == 1:
            votes[number] = value
        elif kind == 2:
            slugs.add(slug)
    return None if reader_id is None else ReaderKey(reader_id, votes, frozenset(slugs))


async def reader_for_token_hash(source: RowSource, token_hash: str) -> ReaderKey | None:
    """The reader whose API token has SHA-256 hex digest ``token_hash``, or None: one query
    (three indexed look-ups: reader, votes ≠ 0, subscriptions)."""
    return _reader_key((await source.fetch([(READER, {"token_hash": token_hash})]))[0])


def default_day(source: RowSource, tz: ZoneInfo, now: dt.datetime | None = None) -> dt.date:
    """The digest's day when none is asked for: :func:`aggregator.digest.public.default_day` (the
    newest day with papers, see :func:`aggregator.digest.public.latest_day`), cached per process for
    ``CACHE_TTL`` s per local date (``now``: default the current UTC time)."""
    today = (now or dt.datetime.now(dt.UTC)).astimezone(tz).date()
    key = ("latest", source.engine, today, tz.key)
    found = cache_get(key)
    if found is MISSING:
        found = cache_put(key, source.run(lambda conn: digest.latest_day(conn, today, tz)))
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


@dataclass(frozen=True, slots=True)
class _Reader:
    """What the first statement of a served digest read: the reader (None: unknown token), the
    body's stamp (see :class:`served_cache.Bodies`), the reader's read items of the window, and
    the ranked rows when they were asked for in the same statement (else None)."""

    reader: ReaderKey | None
    stamp: tuple[Any, ...]
    read: frozenset[int]
    mine: tuple[Any, ...]
    rows: list[Any] | None


#: each row source's coalescer of reader states (:func:`reader_states`)
_states: weakref.WeakKeyDictionary[RowSource, Coalescer[str, list[Any]]] = weakref.WeakKeyDictionary()


def reader_states(source: RowSource) -> Coalescer[str, list[Any]]:
    """The coalescer of ``source`` that reads readers' states, :data:`READER_STATES` rows by
    token hash (without it), grouped by window ``(start, end)``: the state reads of
    concurrent requests for the same window go out as one statement
    (:mod:`aggregator.digest.coalesce`)."""
    found = _states.get(source)
    if found is None:
        name = source.engine.dialect.name

        async def read(window: Any, hashes: list[str]) -> dict[str, list[Any]]:
            start, end = window
            READER_STATE_READS.inc()
            READER_STATE_LOOKUPS.inc(len(hashes))
            if len(hashes) == 1:  # a lone reader: the statement costs the server least
                params = {"start": start, "end": end, "token_hash": hashes[0]}
                return {hashes[0]: (await source.fetch([(READER_STATE, params)]))[0]}
            params = {"start": start, "end": end, "hashes": array_param(name, hashes)}
            out: dict[str, list[Any]] = {}
            for token_hash, *row in (await source.fetch([(READER_STATES[name], params)]))[0]:
                out.setdefault(token_hash, []).append(tuple(row))
            return out

        found = _states[source] = Coalescer(read, list)
    return found


async def _read_reader(source: RowSource, params: dict[str, Any], ranked: bool) -> _Reader:
    """The reader's state (:func:`reader_states`), or with the ranked rows in one statement
    (:data:`READER_AND_RANKED`) when ``ranked`` and the source sends one statement per round
    trip."""
    if ranked and source.one_statement:
        who, rows = split_all((await source.fetch([(READER_AND_RANKED, params)]))[0])
    else:
        window = (params["start"], params["end"])
        who, rows = await reader_states(source).get(window, params["token_hash"]), None
    reader = _reader_key(who)
    if reader is None:
        return _Reader(None, (), frozenset(), (), rows)
    mine = next(tuple(row[4:]) for row in who if row[0] == 0)  # (max_id, run, n)
    read = frozenset(row[1] for row in who if row[0] == 4)
    stamp = (reader.id, mine, read, reader.subscribed, frozenset(reader.votes.items()))
    return _Reader(reader, stamp, read, mine, rows)


async def _ranked(source: RowSource, first: _Reader, params: dict[str, Any]) -> list[Any]:
    """The ranked rows (:data:`RANKED`), read now unless ``first`` has them, each with its read
    mark appended: (score, why, topics, followed, item id, n_muted, published, read)."""
    rows = first.rows if first.rows is not None else (await source.fetch([(RANKED, params)]))[0]
    return [(*row, row[4] in first.read) for row in rows]


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
    rows do not fill the page (the general path then ranks the rest of the window). A body
    whose stamp is unchanged is answered again without the ranked rows, and once expired is
    written again from the rows it was written from (:class:`served_cache.Bodies`).
    Reads only (a stale card is built in memory, not written): the queries are in the module
    docstring. Raises ``sqlalchemy.exc.DBAPIError`` or ``psycopg.Error`` on a database error."""
    if day is None:
        day = default_day(source, tz, now)
    window = day_window(day, days, tz)
    params = ranked_params(source.engine.dialect.name, token_hash, window, limit)
    key = (source.engine, token_hash, day, days, limit, tz.key, timezone, paging is not None)
    first = await _read_reader(source, params, ranked=not bodies.known(key))
    if first.reader is None:
        return Answer(None, None)
    body = bodies.get(key, first.stamp)
    if body is None:
        kept = bodies.rows(key, first.stamp) if first.rows is None else None
        rows = kept if kept is not None else await _ranked(source, first, params)
        page = await _full_page(source, first, rows, (day, days, timezone, window), params, paging, False)
        if page is None:
            return Answer(first.reader, None)
        body = _body(page)
        bodies.put(key, first.stamp, body, rows)
    return Answer(first.reader, body)


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
    first = await _read_reader(source, params, ranked=True)
    if first.reader is None:
        return None, None
    rows = await _ranked(source, first, params)
    asked = (day, days, timezone, window)
    return first.reader, await _full_page(source, first, rows, asked, params, paging, summaries)


async def _full_page(
    source: RowSource,
    first: _Reader,
    rows: list[Any],
    asked: tuple[dt.date, int, str, tuple[dt.datetime, dt.datetime]],
    params: dict[str, Any],
    paging: Paging | None,
    summaries: bool,
) -> ServedPage | None:
    """The served page of ``rows``, or None when they do not fill it (the general path ranks
    the rest of the window) or there are none."""
    if first.reader is None or not rows or (paging is not None and len(rows) < paging.limit):
        return None
    return await _served_page(source, first.reader, rows, first.mine, asked, params, paging, summaries)


async def _served_page(
    source: RowSource,
    reader: ReaderKey,
    rows: list[Any],
    mine: tuple[Any, ...],
    asked: tuple[dt.date, int, str, tuple[dt.datetime, dt.datetime]],
    params: dict[str, Any],
    paging: Paging | None,
    summaries: bool,
) -> ServedPage:
    """A full page of ``rows``: one more round trip only for what the caches miss (cards, the
    window's item count, the default profile's scores state) and the abstracts when
    ``summaries``; with ``paging``, the ``next_cursor`` from ``mine`` (the reader's page state
    read with the rows: largest item id, newest run, row count). ``asked``: day, days, time
    zone name and the window; ``params``: those of :data:`RANKED`."""
    engine, name = source.engine, source.engine.dialect.name
    day, days, timezone, window = asked
    ids = [row[4] for row in rows]
    cards, missing = cached_cards(engine, ids)
    total_key = ("total", engine, params["start"], params["end"])
    total = cache_get(total_key)
    bounds = {"start": params["start"], "end": params["end"]}
    queries: list[Any] = []
    if missing:
        queries.append((_CARDS[name], {"ids": array_param(name, missing)}))
    if summaries:
        queries.append((_SUMMARIES[name], {"ids": array_param(name, ids)}))
    if total is MISSING:
        queries.append((TOTAL, bounds))
    # with the window's count known, a page that holds the whole window needs no cursor
    cursor = paging is not None and (total is MISSING or total > len(rows) + int(rows[0][5] or 0))
    site_key = ("site", engine, params["start"], params["end"])
    site: Any = cache_get(site_key) if cursor else ()
    if cursor and site is MISSING:
        queries.append((SITE_STATE, bounds))
    found = list(await source.fetch(queries)) if queries else []
    if missing:
        keep_cards(engine, found.pop(0), cards)
    abstracts = dict(found.pop(0)) if summaries else {}
    if total is MISSING:
        total = cache_put(total_key, int(found.pop(0)[0][0]))
    stale = [item_id for item_id, card in cards.items() if card is None]
    if stale:
        built = source.run(lambda conn: build_cards(Session(bind=conn), stale))
        cards.update((i, opened(card)) for i, card in built.items())
    more = None
    if paging is not None and cursor:
        if site is MISSING:
            site = cache_put(site_key, tuple(found.pop(0)[0]))
        state = _page_state(total, (*mine, *site))
        more = paging.next_cursor(reader, rows, day, window, state)
    ready = {i: c for i, c in cards.items() if c is not None}
    return ServedPage(reader, rows, ready, abstracts, day, days, timezone, total, more)
