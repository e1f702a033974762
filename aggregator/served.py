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
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from .cards import build_cards, json_text
from .digest import day_window, latest_day
from .store.tables import Feedback, Item, Reader, Score, Subscription, Topic


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
_RANKED = (
    sa.select(
        _S.score,
        sa.cast(_S.why, sa.Text).label("why"),
        sa.cast(_S.topics, sa.Text).label("topics"),
        sa.cast(_S.authors, sa.Text).label("followed"),
        _S.muted,
        _I.id,
        _I.card,
        sa.func.sum(sa.case((_S.muted, 1), else_=0)).over().label("n_muted"),
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
    sa.select(sa.literal(0), _R.id, sa.literal(0), sa.null()).where(_R.token_hash == _HASH),
    sa.select(sa.literal(1), Feedback.item_id, Feedback.value, sa.null())
    .join(Reader, Reader.id == Feedback.reader_id)
    .where(_R.token_hash == _HASH, Feedback.value != 0),
    sa.select(sa.literal(2), sa.null(), sa.literal(0), Topic.slug)
    .join(Subscription, Subscription.topic_id == Topic.id)
    .join(Reader, Reader.id == Subscription.reader_id)
    .where(_R.token_hash == _HASH),
)


def reader_for_token_hash(conn: sa.Connection, token_hash: str) -> ReaderKey | None:
    """The reader whose API token has SHA-256 hex digest ``token_hash``, or None: one query
    (three indexed look-ups: reader, votes ≠ 0, subscriptions)."""
    reader_id: int | None = None
    votes: dict[int, int] = {}
    slugs: set[str] = set()
    for kind, number, value, slug in conn.execute(_READER, {"token_hash": token_hash}):
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
    window = {"start": start, "end": end}
    rows = conn.execute(_RANKED, {**window, "profile": f"reader:{reader.id}", "limit": limit}).all()
    if not rows:
        return None
    stale = [r.id for r in rows if r.card is None and not r.muted]
    built = build_cards(Session(bind=conn), stale) if stale else {}
    votes, subscribed = reader.votes, reader.subscribed
    parts = []
    for r in rows:
        if r.muted:
            continue
        card = r.card or built.get(r.id)
        if card is None:  # the item was deleted meanwhile
            continue
        parts.append(
            f'{card[:-1]},"score":{round(float(r.score), 4)!r},"why":{r.why or "[]"},'
            f'"topics":{_topics(r.topics, subscribed)},"followed_authors":{r.followed or "[]"},'
            f'"feedback":{votes.get(r.id, 0)}}}'
        )
    total = window_total(conn, start, end)
    head = (
        f'{{"date":"{day.isoformat()}","days":{days},"timezone":{json_text(timezone)},"total":{total},'
        f'"hidden":{int(rows[0].n_muted or 0)},"profile":"reader:{reader.id}","items":['
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
