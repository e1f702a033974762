"""The served digest: a reader's ranked digest as ready JSON bytes, for ``GET /api/me/digest``.

Everything reader-specific was precomputed by the worker (:mod:`aggregator.personal`: score,
``why``, matched topic filters, followed authors, muted flag in ``scores``), and every item's
public fields are stored once as JSON text (:mod:`aggregator.cards`). Serving is therefore
reads and string joins: two queries of indexed look-ups (the reader with their votes and
subscriptions, by token hash; the reader's rows of the day — one range of
``ix_scores_profile_published`` — joined to the cards, with the muted count as a window
aggregate), a third for the latest day when none is given, the day's item count (cached for
``TOTAL_TTL`` s), and no object per item or field. Nothing is scored, decoded or validated per item
here; the response has exactly the shape of ``aggregator.api.me_schemas.ReaderDigestResponse``
(tests check that the two paths agree item for item).

A reader without precomputed scores in the window (just signed up, or before the first refit)
gets ``None``: the caller serves the default profile's order through
:func:`aggregator.readers.reader_digest`, which also filters muted items as it reads.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from .cards import build_cards, json_text
from .digest import day_window, latest_day
from .store.db import dbapi_datetime
from .store.tables import Feedback, Item, Reader, Score, Subscription, Topic

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
#: (score, why, topics, followed, muted, item id, card, n_muted) of a reader's rows of a window,
#: unmuted first, best first; the muted count is taken over all of the window's rows
_RANKED = (
    sa.select(
        _S.score,
        sa.cast(_S.why, sa.Text),
        sa.cast(_S.topics, sa.Text),
        sa.cast(_S.authors, sa.Text),
        _S.muted,
        _I.id,
        _I.card,
        sa.func.sum(sa.case((_S.muted, _ONE), else_=_ZERO)).over(),
    )
    .select_from(Score.__table__.join(Item.__table__, _I.id == _S.item_id))
    .where(_S.profile == sa.bindparam("profile"), _S.published >= _START, _S.published < _END)
    .order_by(_S.muted, _S.score.desc(), _S.published.desc(), _S.item_id.desc())
    .limit(sa.bindparam("limit"))
)
_R = Reader.__table__.c
_HASH: sa.BindParameter[str] = sa.bindparam("token_hash")
#: the reader, their votes and their subscriptions in one round trip: (kind, number, value, slug)
#: rows with kind 0 = the reader's id, 1 = a vote (item id, value), 2 = a subscribed slug
_READER = sa.union_all(
    sa.select(_ZERO, _R.id, _ZERO, sa.null()).where(_R.token_hash == _HASH),
    sa.select(_ONE, Feedback.item_id, Feedback.value, sa.null())
    .join(Reader, Reader.id == Feedback.reader_id)
    .where(_R.token_hash == _HASH, Feedback.value != _ZERO),
    sa.select(sa.literal_column("2"), sa.null(), _ZERO, Topic.slug)
    .join(Subscription, Subscription.topic_id == Topic.id)
    .join(Reader, Reader.id == Subscription.reader_id)
    .where(_R.token_hash == _HASH),
)


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    names: tuple[str, ...] | None  # parameter order of a positional paramstyle; None: named
    literals: dict[str, Any]  # values of the parameters SQLAlchemy generated for literals


_compiled: dict[tuple[int, str], _Compiled] = {}


def _rows(conn: sa.Connection, stmt: sa.ClauseElement, params: dict[str, Any]) -> list[Any]:
    """The rows (DBAPI tuples) of ``stmt``, compiled once per dialect by SQLAlchemy and run on
    the connection's DBAPI cursor: the request path's two statements skip SQLAlchemy's
    per-execution work (cache key, parameter processing, result wrapping), about a third of
    their cost. ``params`` must be as the driver takes them (datetimes through
    :func:`aggregator.store.db.dbapi_datetime`). A driver error is raised as
    ``sqlalchemy.exc.DBAPIError``, with the connection invalidated when it was lost."""
    dialect = conn.dialect
    key = (id(stmt), dialect.name)
    compiled = _compiled.get(key)
    if compiled is None:
        c: Any = stmt.compile(dialect=dialect)
        names = tuple(c.positiontup or ()) if c.positional else None
        literals = {name: b.value for name, b in c.binds.items() if not b.required}
        compiled = _compiled[key] = _Compiled(str(c), names, literals)
    if compiled.literals:
        params = {**compiled.literals, **params}
    args: Any = params if compiled.names is None else [params[n] for n in compiled.names]
    fairy = conn.connection
    cursor = fairy.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cursor.execute(compiled.sql, args)
        return list(cursor.fetchall())
    except dialect.loaded_dbapi.Error as err:
        lost = dialect.is_disconnect(err, fairy.dbapi_connection, cursor)
        if lost:
            conn.invalidate(err)
        raise sa.exc.DBAPIError.instance(
            compiled.sql, args, err, dialect.loaded_dbapi.Error, connection_invalidated=lost, dialect=dialect
        ) from err
    finally:
        cursor.close()


def reader_for_token_hash(conn: sa.Connection, token_hash: str) -> ReaderKey | None:
    """The reader whose API token has SHA-256 hex digest ``token_hash``, or None: one query
    (three indexed look-ups: reader, votes ≠ 0, subscriptions)."""
    reader_id: int | None = None
    votes: dict[int, int] = {}
    slugs: set[str] = set()
    for kind, number, value, slug in _rows(conn, _READER, {"token_hash": token_hash}):
        if kind == 0:
            reader_id = number
        elif kind == 1:
            votes[number] = value
        else:
            slugs.add(slug)
    return None if reader_id is None else ReaderKey(reader_id, votes, frozenset(slugs))


#: Seconds a window's item count is reused: it changes only when items are ingested, and a
#: count of a day's ~2,000 items costs as much as the rest of the query.
TOTAL_TTL = 10.0
_totals: dict[tuple[sa.Engine, dt.datetime, dt.datetime], tuple[float, int]] = {}


def window_total(conn: sa.Connection, start: dt.datetime, end: dt.datetime) -> int:
    """Items published in [``start``, ``end``), cached per process for ``TOTAL_TTL`` s."""
    key = (conn.engine, start, end)
    now = time.monotonic()
    hit = _totals.get(key)
    if hit is not None and hit[0] > now:
        return hit[1]
    total = int(conn.execute(_TOTAL, {"start": start, "end": end}).scalar_one())
    if len(_totals) > 1000:
        _totals.clear()
    _totals[key] = (now + TOTAL_TTL, total)
    return total


@functools.lru_cache(maxsize=4096)
def _topics(stored: str | None, subscribed: frozenset[str]) -> str:
    """The stored topic slugs (JSON text) still subscribed to, as JSON text (memoised: the
    same few label lists repeat on every item and request)."""
    if not stored or stored in ("[]", "null"):
        return "[]"
    slugs = json.loads(stored)
    kept = [s for s in slugs if s in subscribed]
    return stored if len(kept) == len(slugs) else json_text(kept)


def reader_digest_json(
    conn: sa.Connection,
    reader: ReaderKey,
    tz: ZoneInfo,
    timezone: str,
    day: dt.date | None = None,
    days: int = 1,
    limit: int = 50,
    now: dt.datetime | None = None,
) -> bytes | None:
    """The JSON body of ``reader``'s digest of the ``days`` local days (zone ``tz``, named
    ``timezone`` in the answer) ending ``day`` (default: today, or the latest earlier day with
    items): their best ``limit`` unmuted items by precomputed score, ties to the newer item.
    ``total`` counts the window's items; ``hidden`` the reader's scored items of the window
    left out as muted. Returns None when the reader has no precomputed scores in the window.
    Reads only (a stale card is built in memory, not written)."""
    if day is None:
        day = latest_day(conn, (now or dt.datetime.now(dt.UTC)).astimezone(tz).date(), tz)
    start, end = day_window(day, days, tz)
    name = conn.dialect.name
    params = {
        "start": dbapi_datetime(name, start),
        "end": dbapi_datetime(name, end),
        "profile": f"reader:{reader.id}",
        "limit": limit,
    }
    rows = _rows(conn, _RANKED, params)
    if not rows:
        return None
    stale = [item_id for _, _, _, _, muted, item_id, card, _ in rows if card is None and not muted]
    built = build_cards(Session(bind=conn), stale) if stale else {}
    votes, subscribed = reader.votes, reader.subscribed
    parts = []
    for score, why, topics, followed, muted, item_id, card, _ in rows:
        if muted:
            continue
        card = card or built.get(item_id)
        if card is None:  # the item was deleted meanwhile
            continue
        parts.append(
            f'{card[:-1]},"score":{round(score, 4)!r},"why":{why or "[]"},'
            f'"topics":{_topics(topics, subscribed)},"followed_authors":{followed or "[]"},'
            f'"feedback":{votes.get(item_id, 0)}}}'
        )
    total = window_total(conn, start, end)
    head = (
        f'{{"date":"{day.isoformat()}","days":{days},"timezone":{json_text(timezone)},"total":{total},'
        f'"hidden":{int(rows[0][7] or 0)},"profile":"reader:{reader.id}","items":['
    )
    return (head + ",".join(parts) + '],"groups":null}').encode()


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
) -> Answer:
    """The reader of ``token_hash`` (SHA-256 hex of the API token) and their digest's JSON body
    (:func:`reader_digest_json`): two queries, three with ``day`` None."""
    reader = reader_for_token_hash(conn, token_hash)
    if reader is None:
        return Answer(None, None)
    return Answer(reader, reader_digest_json(conn, reader, tz, timezone, day, days, limit, now))


class ReadConnection:
    """The connection the request path reads the served digest through: one per process, held
    open in autocommit mode, used from the event loop only (one request at a time).

    A pooled checkout costs a liveness ping (``pool_pre_ping``) and, on PostgreSQL, ``BEGIN``
    and ``ROLLBACK``: three round trips around two queries. A held autocommit connection costs
    none of them, and psycopg prepares the repeated statements on it. When the connection
    fails (the server restarted, a network cut), it is dropped and the call retried once on a
    new one; any other error propagates."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._conn: sa.Connection | None = None

    def run(self, work: Callable[[sa.Connection], T]) -> T:
        """``work(connection)``, retried once on a fresh connection after a lost one.
        Raises what ``work`` raises (``sqlalchemy.exc.DBAPIError`` for database errors)."""
        for attempt in (1, 2):
            conn = self._conn
            if conn is None or conn.closed or conn.invalidated:
                conn = self._conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            try:
                return work(conn)
            except sa.exc.DBAPIError as err:
                if attempt == 2 or not err.connection_invalidated:
                    raise
                self.close()
        raise AssertionError("unreachable")

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
