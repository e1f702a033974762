"""The term explorer: one term's share of items over time, and the items behind a point.

:func:`parse_phrase` turns what a reader typed into the term as counted (the ingest
normalisation of :mod:`.terms`), or says why it can never be one. :func:`term_series` reads
the scope's packed day rows and day totals over a range and sums them per day, ISO week
(starting Monday) or calendar month (UTC). :func:`point_items` finds the papers and posts of
one point that contain the term.
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from aggregator.store.tables import Item
from aggregator.store.trends_tables import DayTotal, Term, TermCount
from aggregator.trends.counts import item_scopes, unpack_counts
from aggregator.trends.report import TrendItem
from aggregator.trends.terms import _BREAK, CONNECTORS, MAX_N, _tokens, item_text

INTERVALS = ("day", "week", "month")
#: Default range by interval when ``from`` is not given (days before ``to``).
DEFAULT_SPAN = {"day": 90, "week": 365, "month": 730}
#: Longest range a series may cover (two years).
MAX_SPAN_DAYS = 731


def parse_phrase(text: str) -> str:
    """The normalised term of a typed phrase (``"Mixture-of-Experts"`` → ``"mixture of
    expert"``), exactly as ingest counts it. Raises ``ValueError`` saying why a phrase can
    never be a term: empty; only stop words, numbers or one-letter words; a stop word or
    punctuation inside (terms never span them); beginning or ending with a connector ("of",
    "the", "to", "for", "and"); more than :data:`MAX_N` words."""
    raw = " ".join((text or "").split())
    if not raw:
        raise ValueError("the phrase is empty")
    tokens = _tokens(raw)
    while tokens and tokens[0] == _BREAK:
        tokens.pop(0)
    while tokens and tokens[-1] == _BREAK:
        tokens.pop()
    if not tokens:
        raise ValueError(f"{raw!r} has only stop words, numbers or one-letter words, which are never counted")
    if _BREAK in tokens:
        raise ValueError(
            f"{raw!r} has a stop word, number or punctuation inside; terms never span them "
            f"(ask for {' / '.join(repr(p) for p in _parts(tokens))} instead)"
        )
    if tokens[0] in CONNECTORS or tokens[-1] in CONNECTORS:
        raise ValueError(f"{raw!r} begins or ends with a connector word ({', '.join(sorted(CONNECTORS))})")
    if len(tokens) > MAX_N:
        raise ValueError(f"{raw!r} has {len(tokens)} words; terms have at most {MAX_N}")
    return " ".join(tokens)


def _parts(tokens: list[str]) -> list[str]:
    return [p.strip() for p in " ".join(tokens).split(_BREAK) if p.strip()]


def bucket_start(day: dt.date, interval: str) -> dt.date:
    """The first day of the point ``day`` falls in: itself, its ISO week's Monday, or the
    first of its month."""
    if interval == "week":
        return day - dt.timedelta(days=day.weekday())
    if interval == "month":
        return day.replace(day=1)
    return day


def bucket_end(start: dt.date, interval: str) -> dt.date:
    """The last day (inclusive) of the point starting ``start``."""
    if interval == "week":
        return start + dt.timedelta(days=6)
    if interval == "month":
        nxt = (start.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
        return nxt - dt.timedelta(days=1)
    return start


#: Unpacked day rows, most recently used last: (database, scope, day, n_terms, n_docs) →
#: (ids, dfs). A row changes only when items are counted into its day, which changes the day's
#: n_docs; term ids differ between databases, so the database (its URL and newest term id) is
#: part of the key (a process reading two, as the tests do, must not read one's rows for the
#: other). At most :data:`CACHE_TERMS` (term, df) pairs are kept per process (16 bytes each).
_ROWS: OrderedDict[tuple[str, str, dt.date, int, int], tuple[np.ndarray, np.ndarray]] = OrderedDict()
CACHE_TERMS = 4_000_000
_cached = [0]


def _day_df(key: tuple[str, str, dt.date, int, int], data: bytes | None, term_id: int) -> int:
    row = _ROWS.get(key)
    if row is None:
        if data is None:
            return -1
        row = unpack_counts(key[3], data)
        _ROWS[key] = row
        _cached[0] += key[3]
        while _cached[0] > CACHE_TERMS and len(_ROWS) > 1:
            old_key, _ = _ROWS.popitem(last=False)
            _cached[0] -= old_key[3]
    else:
        _ROWS.move_to_end(key)
    ids, dfs = row
    j = int(np.searchsorted(ids, term_id))
    return int(dfs[j]) if j < len(ids) and ids[j] == term_id else 0


def term_series(
    session: Session, term: str, scope: str, interval: str, start: dt.date, end: dt.date
) -> dict[str, Any]:
    """``{"term", "scope", "interval", "points": [{"start", "count", "total", "share"}]}``:
    for every point from ``start``'s to ``end``'s (UTC days, inclusive), the items of the
    scope containing ``term`` (already normalised, :func:`parse_phrase`), all items counted,
    and their ratio (0 when nothing was counted). A term never counted has zero counts. Reads
    the day totals and, for days with items, the packed rows (cached unpacked per process)."""
    if interval not in INTERVALS:
        raise ValueError(f"interval must be one of {', '.join(INTERVALS)}")
    term_id = session.scalar(sa.select(Term.id).where(Term.term == term))
    totals = dict(
        session.execute(
            sa.select(DayTotal.day, DayTotal.n_docs).where(
                DayTotal.scope == scope, DayTotal.day >= start, DayTotal.day <= end
            )
        ).all()
    )
    counts: dict[dt.date, int] = {}
    if term_id is not None and totals:
        tc: Any = TermCount.__table__
        sizes = session.execute(
            sa.select(tc.c.day, tc.c.n_terms).where(tc.c.scope == scope, tc.c.day >= start, tc.c.day <= end)
        ).all()
        # the database's URL and its newest term id: a database recreated under the same URL
        # (tests) numbers its terms anew; the day's item count: a day counted again with no new
        # term keeps n_terms but not its dfs
        newest_term = session.scalar(sa.select(sa.func.max(Term.id))) or 0
        database = f"{session.connection().engine.url}#{newest_term}"
        missing = [d for d, n in sizes if (database, scope, d, n, totals.get(d, 0)) not in _ROWS]
        blobs: dict[dt.date, bytes] = (
            dict(
                session.execute(
                    sa.select(tc.c.day, tc.c.data).where(tc.c.scope == scope, tc.c.day.in_(missing))
                ).all()
            )
            if missing
            else {}
        )
        for d, n in sizes:
            counts[d] = max(_day_df((database, scope, d, n, totals.get(d, 0)), blobs.get(d), term_id), 0)
    points: dict[dt.date, list[int]] = {}
    s = bucket_start(start, interval)
    while s <= end:
        points[s] = [0, 0]
        s = bucket_end(s, interval) + dt.timedelta(days=1)
    for d, n in totals.items():
        p = points[bucket_start(d, interval)]
        p[0] += counts.get(d, 0)
        p[1] += n
    return {
        "term": term,
        "scope": scope,
        "interval": interval,
        "points": [
            {"start": s, "count": c, "total": n, "share": round(c / n, 6) if n else 0.0}
            for s, (c, n) in points.items()
        ],
    }


def point_items(
    session: Session, term: str, scope: str, start: dt.date, end: dt.date, limit: int = 20
) -> tuple[list[TrendItem], int]:
    """The items of ``scope`` published from ``start`` to ``end`` (UTC days, inclusive) that
    contain ``term`` where ingest counted it (posts first, then newest), at most ``limit``, and
    how many there are. A SQL substring filter on the term's longest word narrows the read;
    the normalised texts decide."""
    lo = dt.datetime.combine(start, dt.time(0), dt.UTC)
    hi = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(0), dt.UTC)
    word = max(term.split(), key=len)
    stem = word[:-1] if len(word) > 4 else word
    like = f"%{stem}%"
    rows = session.execute(
        sa.select(Item.id, Item.kind, Item.title, Item.url, Item.summary, Item.categories, Item.published)
        .where(Item.published >= lo, Item.published < hi)
        .where(sa.or_(sa.func.lower(Item.title).like(like), sa.func.lower(Item.summary).like(like)))
    ).all()
    needle = f" {term} "
    found = [
        r
        for r in rows
        if scope in item_scopes(r.kind, r.categories or ())
        and needle in f" {' '.join(_tokens(item_text(r.title, r.summary or '')))} "
    ]
    found.sort(key=lambda r: (r.kind != "post", -r.published.timestamp()))
    return [TrendItem(r.id, r.title, r.url, r.kind) for r in found[:limit]], len(found)
