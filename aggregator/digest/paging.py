"""Keyset paging over a ranked query, exact across ingests and rescores (see :mod:`.cursor`).

A ranked query orders rows by a tuple of key expressions, all descending, the last one
``items.id`` (unique, so the order is total). A page is read after the cursor's key
(``(k1, …, kn) < (v1, …, vn)``, one index range or one sort of the window), bounded by the
snapshot (``items.id <= max_id``), leaving out ids already shown. When the scores fingerprint
changed since the previous page (a rescore committed in between), the key no longer marks a
position, so the page is read from the top instead, still leaving out what was shown: every
item of the snapshot is shown exactly once, in the order of the scores current when it was
shown. Rows are read in batches, so a Python visibility test (a reader's muted phrases) can
drop rows and the page still fills.

Also here: the public digest, paged (:func:`public_page`).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from aggregator.digest import public
from aggregator.digest.cursor import Cursor
from aggregator.digest.filters import DigestFilters, conditions
from aggregator.digest.public import ITEM_COLUMNS, entries
from aggregator.store.tables import Item, ItemLink, Score

#: Rows read per batch beyond the page's own size.
BATCH_EXTRA = 20


def _key_value(value: Any) -> Any:
    return ["d", value.isoformat()] if isinstance(value, dt.datetime) else value


def _key_param(value: Any, expr: sa.ColumnElement[Any]) -> Any:
    if isinstance(value, list):  # a datetime, see _key_value
        return sa.literal(dt.datetime.fromisoformat(value[1]), type_=expr.type)
    return sa.literal(value, type_=expr.type)


def row_key(row: Any, n_keys: int) -> list[Any]:
    """The cursor key of a row whose first ``n_keys`` columns are the sort key."""
    return [_key_value(v) for v in tuple(row)[:n_keys]]


def read_page(
    session: Session,
    query: sa.Select[Any],
    keys: Sequence[sa.ColumnElement[Any]],
    cursor: Cursor,
    limit: int,
    restart: bool = False,
    visible: Callable[[Any], bool] | None = None,
) -> tuple[list[Any], bool]:
    """Up to ``limit`` rows of ``query`` after ``cursor`` (see the module docstring) and whether
    more follow. ``query`` must select the key columns first, ``keys`` in order, and
    ``items.id`` labelled ``id``; ``restart`` reads from the top (a rescore ran). Updates
    ``cursor`` (key, shown ids) to after the page."""
    seen = cursor.seen or set()
    query = query.where(Item.id <= cursor.max_id).order_by(*(k.desc() for k in keys))
    after = None if restart else cursor.key
    out: list[Any] = []
    batch = limit + 1 + BATCH_EXTRA
    while True:
        q = query
        if after is not None:
            q = q.where(
                sa.tuple_(*keys) < sa.tuple_(*(_key_param(v, k) for v, k in zip(after, keys, strict=True)))
            )
        rows = session.execute(q.limit(batch)).all()
        for row in rows:
            if row.id in seen or (visible is not None and not visible(row)):
                continue
            out.append(row)
            if len(out) > limit:
                break
        if len(out) > limit or len(rows) < batch:
            break
        after = row_key(rows[-1], len(keys))
        batch *= 2
    more = len(out) > limit
    out = out[:limit]
    if out:
        cursor.key = row_key(out[-1], len(keys))
        cursor.mark(r.id for r in out)
    return out, more


def max_item_id(session: Session | sa.Connection) -> int:
    """The snapshot bound: the largest ``items.id`` now (0 when there are none)."""
    return int(session.scalar(sa.select(sa.func.max(Item.id))) or 0)


def scores_run(
    session: Session | sa.Connection, profiles: Sequence[str], start: dt.datetime, end: dt.datetime
) -> int | None:
    """The scores fingerprint of a window: the newest ``scores.run`` of ``profiles`` there
    (each precompute run writes a larger ``time.time_ns()``), with the row count so that a run
    that only deletes rows changes it too."""
    found = session.execute(
        sa.select(sa.func.max(Score.run), sa.func.count()).where(
            Score.profile.in_(list(profiles)), Score.published >= start, Score.published < end
        )
    ).one()
    return None if found[0] is None and not found[1] else int(found[0] or 0) * 1_000_003 + int(found[1])


@dataclass(frozen=True, slots=True)
class Page:
    """A page of a digest: the digest (its ``items`` this page's) and the cursor after it
    (None on the last page)."""

    digest: public.Digest
    cursor: Cursor | None


def public_page(
    session: Session,
    tz: ZoneInfo,
    day: dt.date | None,
    days: int,
    limit: int,
    cursor: Cursor,
    filters: DigestFilters = DigestFilters(),
    profile: str = public.DEFAULT_PROFILE,
) -> Page:
    """A page of the public digest (order as :func:`aggregator.digest.public.build_digest`:
    by ``profile``'s score, or unranked by blog posts discussing the item; ties to the newer
    item, then the larger id), after ``cursor`` (a fresh one: ``Cursor(query, max_id, run)``
    with ``key`` None), filtered by ``filters``. ``total`` counts the window's items matching
    the filters (within the snapshot)."""
    if day is None:
        day = public.default_day(session, tz)
    start, end = public.day_window(day, days, tz)
    run = scores_run(session, [profile], start, end)
    restart = cursor.key is not None and run != cursor.run
    cursor.run = run
    where = [Item.published >= start, Item.published < end, *conditions(filters, session.bind.dialect.name)]  # type: ignore[union-attr]
    ranked = public.is_ranked(session, profile, start, end)
    on_profile = sa.and_(Score.item_id == Item.id, Score.profile == profile)
    if ranked:
        first: sa.ColumnElement[Any] = sa.func.coalesce(Score.score, 0.0)
    else:
        first = sa.select(sa.func.count()).where(ItemLink.paper_id == Item.id).scalar_subquery()
    keys = [first.label("k0"), Item.published.label("k1"), Item.id.label("k2")]
    exprs: list[Any] = [first, Item.published, Item.id]
    score = sa.func.coalesce(Score.score, 0.0).label("score")
    query = sa.select(*keys, *ITEM_COLUMNS, score, Score.why).outerjoin(Score, on_profile).where(*where)
    rows, more = read_page(session, query, exprs, cursor, limit, restart)
    total = (
        session.scalar(sa.select(sa.func.count()).select_from(Item).where(*where, Item.id <= cursor.max_id))
        or 0
    )
    digest = public.Digest(day, days, start, end, total, entries(session, rows), ranked)
    return Page(digest, cursor if more else None)
