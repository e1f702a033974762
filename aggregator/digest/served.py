"""The served digest: a reader's ranked digest as ready JSON bytes, for ``GET /api/me/digest``.

Everything reader-specific was precomputed by the worker (:mod:`aggregator.ranking.personal`: score,
``why``, matched topic filters, followed authors, muted flag in ``scores``), and every item's
public fields are stored once as JSON text (:mod:`aggregator.digest.cards`). Serving is therefore
reads and string joins: two queries of indexed look-ups sent in one round trip (the reader
with their votes and subscriptions, by token hash; the reader's unmuted rows of the day — one
range of ``ix_scores_profile_published`` — with the muted count), the cards from a
per-process cache (a third query reads those not read in the last ``CARD_TTL`` s), the default
day and the day's item count from a per-process cache (``CACHE_TTL`` s), and no object per
item or field. Nothing is scored, decoded or validated per item here; the response has exactly
the shape of ``aggregator.api.me_schemas.ReaderDigestResponse`` (tests check that the two
paths agree item for item).

A reader without precomputed scores in the window (just signed up, or before the first refit)
gets no body: the caller serves the default profile's order through
:func:`aggregator.digest.personal.reader_digest`, which also filters muted items as it reads.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import functools
import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from aggregator.digest import public as digest
from aggregator.digest.cards import build_cards, json_text
from aggregator.digest.public import day_window
from aggregator.store.db import dbapi_datetime
from aggregator.store.tables import Feedback, Item, Reader, Score, Subscription, Topic

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class ReaderKey:
    """The reader of an API token, with what the served digest needs live: their votes
    (item id → 1 or -1) and the slugs of the topic filters they follow."""

    id: int
    votes: dict[int, int]
    subscribed: frozenset[str]


_S, _I = Score.__table__.c, Item.__table__.c
_START: sa.BindParameter[dt.datetime] = sa.bindparam("start")
_END: sa.BindParameter[dt.datetime] = sa.bindparam("end")
_TOTAL = sa.select(sa.func.count()).where(_I.published >= _START, _I.published < _END)
_ONE: sa.ColumnClause[int] = sa.literal_column("1")  # inline literals: no generated parameters
_ZERO: sa.ColumnClause[int] = sa.literal_column("0")
_R = Reader.__table__.c
_HASH: sa.BindParameter[str] = sa.bindparam("token_hash")
#: the score key (``ReaderProfile.score_key``) of the token's reader, so that the ranked rows
#: can be asked for in the same round trip as the reader
_PROFILE = (
    sa.select(sa.literal_column("'reader:'") + sa.cast(_R.id, sa.String))
    .where(_R.token_hash == _HASH)
    .scalar_subquery()
)
_M = Score.__table__.alias("muted_scores").c  # the muted count's own scan (not correlated)
_IN_WINDOW = sa.and_(_S.profile == _PROFILE, _S.published >= _START, _S.published < _END)
_BEST_FIRST = (_S.score.desc(), _S.published.desc(), _S.item_id.desc())  # ties: the newer item
#: (score, why, topics, followed, item id, n_muted) of a token's reader's unmuted rows of a
#: window, best first; ``n_muted`` (the same on every row: a scalar subquery, run once) counts
#: the window's muted rows. The cards are not joined: they come from :func:`_cards`.
_RANKED = (
    sa.select(
        _S.score,
        sa.cast(_S.why, sa.Text),
        sa.cast(_S.topics, sa.Text),
        sa.cast(_S.authors, sa.Text),
        _S.item_id,
        sa.select(sa.func.count())
        .where(_M.profile == _PROFILE, _M.published >= _START, _M.published < _END, _M.muted)
        .scalar_subquery()
        .label("n_muted"),
    )
    .where(_IN_WINDOW, sa.not_(_S.muted))
    .order_by(*_BEST_FIRST)
    .limit(sa.bindparam("limit"))
)
_NULL = sa.null()


def _reader_selects(padded: bool) -> list[sa.Select[Any]]:
    """The three parts of :data:`_READER`; ``padded``: with the columns of :data:`READER_AND_RANKED`."""

    def columns(kind: Any, number: Any, value: Any, slug: Any) -> tuple[Any, ...]:
        if not padded:
            return (kind, number, value, slug)
        no_score = sa.cast(_NULL, sa.Float)  # typed: PostgreSQL would read a bare NULL as text
        return (kind, _ZERO.label("position"), no_score, _NULL, _NULL, _NULL, number, value, slug)

    return [
        sa.select(*columns(_ZERO, _R.id, _ZERO, _NULL)).where(_R.token_hash == _HASH),
        sa.select(*columns(_ONE, Feedback.item_id, Feedback.value, _NULL))
        .join(Reader, Reader.id == Feedback.reader_id)
        .where(_R.token_hash == _HASH, Feedback.value != _ZERO),
        sa.select(*columns(sa.literal_column("2"), _NULL, _ZERO, Topic.slug))
        .join(Subscription, Subscription.topic_id == Topic.id)
        .join(Reader, Reader.id == Subscription.reader_id)
        .where(_R.token_hash == _HASH),
    ]


#: the reader, their votes and their subscriptions in one round trip: (kind, number, value, slug)
#: rows with kind 0 = the reader's id, 1 = a vote (item id, value), 2 = a subscribed slug
_READER = sa.union_all(*_reader_selects(padded=False))
_RANKED_AT = _RANKED.add_columns(sa.func.row_number().over(order_by=_BEST_FIRST).label("position")).subquery(
    "ranked"
)
#: :data:`_READER` and :data:`_RANKED` as one statement, for a database with a round trip
#: (on PostgreSQL one statement costs the client about 0.1 ms less than two in a pipeline):
#: (kind, position, score, why, topics, followed, number, value, slug) rows, kind 0–2 as in
#: ``_READER`` and 3 = a ranked row (number = item id, value = the muted count), ordered by
#: kind and rank
READER_AND_RANKED = sa.union_all(
    *_reader_selects(padded=True),
    sa.select(
        sa.literal_column("3"),
        _RANKED_AT.c.position,
        _RANKED_AT.c.score,
        _RANKED_AT.c.why,
        _RANKED_AT.c.topics,
        _RANKED_AT.c.authors,
        _RANKED_AT.c.item_id,
        _RANKED_AT.c.n_muted,
        _NULL,
    ),
).order_by(sa.literal_column("1"), sa.literal_column("2"))


def split_all(found: list[Any]) -> tuple[list[Any], list[Any]]:
    """The rows of :data:`READER_AND_RANKED` as those of :data:`_READER` and of :data:`_RANKED`."""
    who, rows = [], []
    for kind, _, score, why, topics, followed, number, value, slug in found:
        if kind == 3:
            rows.append((score, why, topics, followed, number, value))
        else:
            who.append((kind, number, value, slug))
    return who, rows


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    names: tuple[str, ...] | None  # parameter order of a positional paramstyle; None: named
    literals: dict[str, Any]  # values of the parameters SQLAlchemy generated for literals


_compiled: dict[tuple[int, str], _Compiled] = {}


def _compile(dialect: sa.Dialect, stmt: sa.ClauseElement) -> _Compiled:
    key = (id(stmt), dialect.name)
    compiled = _compiled.get(key)
    if compiled is None:
        c: Any = stmt.compile(dialect=dialect)
        names = tuple(c.positiontup or ()) if c.positional else None
        literals = {name: b.value for name, b in c.binds.items() if not b.required}
        compiled = _compiled[key] = _Compiled(str(c), names, literals)
    return compiled


def driver_statement(dialect: sa.Dialect, stmt: sa.ClauseElement, params: dict[str, Any]) -> tuple[str, Any]:
    """``stmt`` as the driver runs it: its SQL (compiled once per dialect) and its arguments
    (a dict, or a list for a positional paramstyle), literals included."""
    compiled = _compile(dialect, stmt)
    if compiled.literals:
        params = {**compiled.literals, **params}
    return compiled.sql, params if compiled.names is None else [params[n] for n in compiled.names]


def _fetch(
    conn: sa.Connection, queries: Sequence[tuple[sa.ClauseElement, dict[str, Any]]]
) -> list[list[Any]]:
    """The rows (DBAPI tuples) of each ``(statement, params)``, the statements compiled once per
    dialect by SQLAlchemy and run on the connection's DBAPI cursor: the request path skips
    SQLAlchemy's per-execution work (cache key, parameter processing, result wrapping), about a
    third of the statements' cost. On PostgreSQL they are sent in one psycopg pipeline: one
    round trip for all. ``params`` must be as the driver takes them (datetimes through
    :func:`aggregator.store.db.dbapi_datetime`). A driver error is raised as
    ``sqlalchemy.exc.DBAPIError``, with the connection invalidated when it was lost."""
    dialect = conn.dialect
    fairy = conn.connection
    raw: Any = fairy.driver_connection
    cursors: list[Any] = []
    sql, args = "", None
    try:
        with raw.pipeline() if dialect.name == "postgresql" else contextlib.nullcontext():
            for stmt, params in queries:
                sql, args = driver_statement(dialect, stmt, params)
                cursors.append(raw.cursor())
                cursors[-1].execute(sql, args)
        return [list(c.fetchall()) for c in cursors]
    except dialect.loaded_dbapi.Error as err:
        lost = dialect.is_disconnect(err, fairy.dbapi_connection, cursors[-1] if cursors else None)
        if lost:
            conn.invalidate(err)
        raise sa.exc.DBAPIError.instance(
            sql, args, err, dialect.loaded_dbapi.Error, connection_invalidated=lost, dialect=dialect
        ) from err
    finally:
        for c in cursors:
            c.close()


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


def reader_for_token_hash(conn: sa.Connection, token_hash: str) -> ReaderKey | None:
    """The reader whose API token has SHA-256 hex digest ``token_hash``, or None: one query
    (three indexed look-ups: reader, votes ≠ 0, subscriptions)."""
    return _reader_key(_fetch(conn, [(_READER, {"token_hash": token_hash})])[0])


#: Seconds a window's item count and the default day are reused: both change only
#: when items are ingested, and counting a day's ~2,000 items costs as much as the rest.
CACHE_TTL = 10.0
_clock = time.monotonic  # the caches' clock (seconds); tests move it on
_cache: dict[tuple[Any, ...], tuple[float, Any]] = {}


def _cached(key: tuple[Any, ...], compute: Callable[[], T]) -> T:
    now = _clock()
    hit = _cache.get(key)
    if hit is not None and hit[0] > now:
        return hit[1]  # type: ignore[no-any-return]
    value = compute()
    if len(_cache) > 1000:
        _cache.clear()
    _cache[key] = (now + CACHE_TTL, value)
    return value


def window_total(conn: sa.Connection, start: dt.datetime, end: dt.datetime) -> int:
    """Items published in [``start``, ``end``), cached per process for ``CACHE_TTL`` s."""
    return _cached(
        ("total", conn.engine, start, end),
        lambda: int(conn.execute(_TOTAL, {"start": start, "end": end}).scalar_one()),
    )


#: (item id, card) of the items whose ids are bound as ``ids``: a JSON array text on SQLite,
#: a list (an array parameter) on PostgreSQL
_CARDS = {
    "sqlite": sa.text("SELECT id, card FROM items WHERE id IN (SELECT value FROM json_each(:ids))"),
    "postgresql": sa.text("SELECT id, card FROM items WHERE id = ANY(:ids)"),
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


def _cards(conn: sa.Connection, ids: list[int]) -> dict[int, bytes | None]:
    """The stored card of each of ``ids`` that exists, as UTF-8 bytes without the closing
    brace (None while the card is stale): from the per-process cache when read in the last
    ``CARD_TTL`` s, else in one query."""
    now = _clock()
    cache = _card_cache.setdefault(conn.engine, {})
    out: dict[int, bytes | None] = {}
    missing = []
    for item_id in ids:
        hit = cache.get(item_id)
        if hit is not None and hit[0] > now:
            out[item_id] = hit[1]
        else:
            missing.append(item_id)
    if missing:
        name = conn.dialect.name
        param = json_text(missing) if name == "sqlite" else missing
        rows = _fetch(conn, [(_CARDS[name], {"ids": param})])[0]
        if len(cache) + len(rows) > CARD_CACHE_SIZE:
            cache.clear()
        expires = now + CARD_TTL
        for item_id, card in rows:
            if card is None:
                out[item_id] = None
            else:
                out[item_id] = opened = _opened(card)
                cache[item_id] = (expires, opened)
    return out


def default_day(conn: sa.Connection, tz: ZoneInfo, now: dt.datetime | None = None) -> dt.date:
    """The digest's day when none is asked for: :func:`aggregator.digest.public.default_day` (the
    newest day with papers, see :func:`aggregator.digest.public.latest_day`), cached per process for
    ``CACHE_TTL`` s per local date (``now``: default the current UTC time)."""
    today = (now or dt.datetime.now(dt.UTC)).astimezone(tz).date()
    return _cached(("latest", conn.engine, today, tz.key), lambda: digest.latest_day(conn, today, tz))


@functools.lru_cache(maxsize=4096)
def _topics(stored: str | None, subscribed: frozenset[str]) -> str:
    """The stored topic slugs (JSON text) still subscribed to, as JSON text (memoised: the
    same few label lists repeat on every item and request)."""
    if not stored or stored in ("[]", "null"):
        return "[]"
    slugs = json.loads(stored)
    kept = [s for s in slugs if s in subscribed]
    return stored if len(kept) == len(slugs) else json_text(kept)


def _body(
    conn: sa.Connection,
    reader: ReaderKey,
    rows: list[Any],
    day: dt.date,
    days: int,
    window: tuple[dt.datetime, dt.datetime],
    timezone: str,
    next_cursor: str | None = None,
) -> bytes:
    """The JSON answer of the ranked ``rows`` (see :data:`_RANKED`): each card with the
    reader's score, why, topics still subscribed, followed authors and vote appended."""
    cards = _cards(conn, [row[4] for row in rows])
    stale = [item_id for item_id, card in cards.items() if card is None]
    if stale:
        cards.update((i, _opened(card)) for i, card in build_cards(Session(bind=conn), stale).items())
    votes, subscribed = reader.votes, reader.subscribed
    read = read_marks(conn, reader.id, [row[4] for row in rows])
    parts = []
    for score, why, topics, followed, item_id, _ in rows:
        card = cards.get(item_id)
        if card is None:  # the item was deleted meanwhile
            continue
        parts.append(card)  # bytes: a card is often not ASCII, the reader's fields nearly always are
        parts.append(
            f',"score":{round(score, 4)!r},"why":{why or "[]"},'
            f'"topics":{_topics(topics, subscribed)},"followed_authors":{followed or "[]"},'
            f'"feedback":{votes.get(item_id, 0)},"read":{"true" if item_id in read else "false"}}},'.encode()
        )
    if parts:
        parts[-1] = parts[-1][:-1]  # no comma after the last item
    total = window_total(conn, *window)
    head = (
        f'{{"date":"{day.isoformat()}","days":{days},"timezone":{json_text(timezone)},"total":{total},'
        f'"hidden":{int(rows[0][5] or 0)},"profile":"reader:{reader.id}","items":['
    )
    tail = f'],"groups":null,"next_cursor":{json_text(next_cursor)}}}'.encode()
    return head.encode() + b"".join(parts) + tail


class Paging(Protocol):
    """How a served page gets its ``next_cursor`` (:mod:`aggregator.api.paging`): ``limit`` the
    page size, ``next_cursor(conn, reader, rows, day, window)`` the cursor after the full page
    ``rows`` (None when nothing follows)."""

    limit: int

    def next_cursor(
        self,
        conn: sa.Connection,
        reader: ReaderKey,
        rows: list[Any],
        day: dt.date,
        window: tuple[dt.datetime, dt.datetime],
    ) -> str | None: ...


_READ = {
    "sqlite": sa.text(
        "SELECT item_id FROM read_marks WHERE reader_id = :r"
        " AND item_id IN (SELECT value FROM json_each(:ids))"
    ),
    "postgresql": sa.text("SELECT item_id FROM read_marks WHERE reader_id = :r AND item_id = ANY(:ids)"),
}


def read_marks(conn: sa.Connection, reader_id: int, ids: list[int]) -> set[int]:
    """Which of ``ids`` the reader has read or seen (``read_marks``, issue 13): one query on
    its primary key, none when ``ids`` is empty."""
    if not ids:
        return set()
    name = conn.dialect.name
    params = {"r": reader_id, "ids": json_text(ids) if name == "sqlite" else ids}
    rows = _fetch(conn, [(_READ[name], params)])[0]
    return {row[0] for row in rows}


@dataclass(frozen=True, slots=True)
class Answer:
    """What :func:`serve_digest` found: ``reader`` None for an unknown token; ``body`` None
    when the digest is not served here (unknown token, or no precomputed scores)."""

    reader: ReaderKey | None
    body: bytes | None


def serve_digest(
    conn: sa.Connection,
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
    ``day`` (default: :func:`default_day`): their best ``limit``
    unmuted items by precomputed score, ties to the newer item. ``total`` counts the window's
    items; ``hidden`` the reader's scored items of the window left out as muted. The body is
    None when the reader has no unmuted precomputed scores in the window. Both queries go in
    one round trip; the cards (up to ``CARD_TTL`` s old), the default day and the window's count
    come from per-process caches. Reads only (a stale card is built in memory, not written).
    Raises ``sqlalchemy.exc.DBAPIError`` on a database error."""
    if day is None:
        day = default_day(conn, tz, now)
    window = day_window(day, days, tz)
    who, rows = _fetch(conn, digest_queries(conn.dialect.name, token_hash, window, limit))
    return answer(conn, who, rows, day, days, window, timezone, paging)


def ranked_params(
    dialect: str, token_hash: str, window: tuple[dt.datetime, dt.datetime], limit: int
) -> dict[str, Any]:
    """The parameters of :data:`_RANKED` (and :data:`READER_AND_RANKED`) as the driver takes
    them."""
    start, end = window
    return {
        "token_hash": token_hash,
        "start": dbapi_datetime(dialect, start),
        "end": dbapi_datetime(dialect, end),
        "limit": limit,
    }


def digest_queries(
    dialect: str, token_hash: str, window: tuple[dt.datetime, dt.datetime], limit: int
) -> list[tuple[sa.ClauseElement, dict[str, Any]]]:
    """The two statements of :func:`serve_digest` with their parameters as the driver takes
    them: the reader (:data:`_READER`) and their ranked rows of ``window`` (:data:`_RANKED`)."""
    return [
        (_READER, {"token_hash": token_hash}),
        (_RANKED, ranked_params(dialect, token_hash, window, limit)),
    ]


def answer(
    conn: sa.Connection,
    who: list[Any],
    rows: list[Any],
    day: dt.date,
    days: int,
    window: tuple[dt.datetime, dt.datetime],
    timezone: str,
    paging: Paging | None = None,
) -> Answer:
    """The :class:`Answer` of the rows of :func:`digest_queries` (``conn`` is read only on a
    cache miss: cards, the window's count). With ``paging`` (issue 13): no body when the rows
    do not fill the page (the general path then ranks the rest of the window), and the body
    ends with ``next_cursor``."""
    reader = _reader_key(who)
    if reader is None or not rows or (paging is not None and len(rows) < paging.limit):
        return Answer(reader, None)  # a short page: the general path ranks the rest of the day
    more = None if paging is None else paging.next_cursor(conn, reader, rows, day, window)
    return Answer(reader, _body(conn, reader, rows, day, days, window, timezone, more))
