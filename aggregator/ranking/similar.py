"""More like this: the items closest to an item by cosine similarity of their TF-IDF vectors,
among the personal ranking's window (the ``personal.WINDOW_DAYS`` days before the newest paper, on),
with the terms that make them close (``why``).

Computing needs the model and the window's item matrix, which live in the worker (and in
``aggregator run``); an API process that does not score (``settings.score_in_api`` off, as
``aggregator api`` runs) never loads them (on 1 million items they cost a fresh API process about 4.7 s
and 120 MB: docs/performance.md). So results are
stored in ``similar_items`` — the best :data:`NEIGHBOURS` neighbours with their scores and why,
and the model they were computed with — and the API serves them: when there are none, or they
come from an older model, it asks (``requested_at``) and a worker computes them within
``settings.rescore_poll_seconds`` seconds (:func:`aggregator.worker.tasks.similar_requested`); stale results
are served meanwhile.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from aggregator.store.db import insert
from aggregator.store.tables import Item, RankModel, SimilarItems

if TYPE_CHECKING:
    from aggregator.ranking.tfidf import TfidfModel

#: Neighbours stored per item (the API's ``limit`` is at most this).
NEIGHBOURS = 100


@dataclass(frozen=True, slots=True)
class Neighbour:
    item_id: int
    score: float  # cosine similarity, 0..1
    why: list[dict[str, Any]]  # the terms contributing most, {"term", "weight"}


@dataclass(frozen=True, slots=True)
class Stored:
    model_id: int | None  # None: never computed
    neighbours: list[Neighbour]
    requested: bool  # a (re)computation is asked for


def current_model_id(session: Session) -> int | None:
    """Id of the newest fitted model (no deserialising, no scikit-learn)."""
    return session.scalar(sa.select(sa.func.max(RankModel.id)))


def stored(session: Session, item_id: int) -> Stored | None:
    """The stored neighbours of ``item_id``, or None when never asked for."""
    row = session.get(SimilarItems, item_id)
    if row is None:
        return None
    neighbours = [Neighbour(int(i), float(s), list(w)) for i, s, w in (row.neighbours or [])]
    return Stored(row.model_id, neighbours, row.requested_at is not None)


def request(session: Session, item_id: int, now: dt.datetime | None = None) -> None:
    """Ask a worker to (re)compute the neighbours of ``item_id``; in the caller's transaction."""
    conn = session.connection()
    when = now or dt.datetime.now(dt.UTC)
    stmt = insert(conn, SimilarItems.__table__).values(item_id=item_id, requested_at=when)
    conn.execute(stmt.on_conflict_do_update(index_elements=["item_id"], set_={"requested_at": when}))


#: An item older than the ranking's window is compared with the items published this many
#: days either side of it (at most ``AROUND_ITEMS`` of them, the newest), read for the purpose.
AROUND_DAYS = 15
AROUND_ITEMS = 10_000


def _window_of(session: Session, model: TfidfModel, item: Item) -> Any:
    """The ranking's window (cached by :func:`aggregator.ranking.personal.item_window`) when it holds
    ``item``; else the items around it, read and transformed for this call."""
    from aggregator.ranking import personal

    bounds = personal.window_bounds(session, None, personal.WINDOW_DAYS)
    if bounds is not None:
        window = personal.item_window(session, model, bounds[0])
        if item.id in window.position:
            return window
    span = dt.timedelta(days=AROUND_DAYS)
    ids = session.scalars(
        sa.select(Item.id)
        .where(Item.published >= item.published - span, Item.published <= item.published + span)
        .order_by(Item.published.desc())
        .limit(AROUND_ITEMS)
    ).all()
    return personal.load_items(session, model, sorted({*ids, item.id}))


def compute(session: Session, model: TfidfModel, item_id: int, k: int = NEIGHBOURS) -> list[Neighbour]:
    """The ``k`` items closest to ``item_id`` (itself left out, only similarities > 0) among
    the ranking's window — or, for an item older than it, among the items published within
    ``AROUND_DAYS`` days of it — best first, each with its ``why`` (``personal.WHY_TERMS``
    terms). Raises ``LookupError`` for an unknown item."""
    from aggregator.ranking import personal

    item = session.get(Item, item_id)
    if item is None:
        raise LookupError(f"no item with id {item_id}")
    window = _window_of(session, model, item)
    row = window.position[item_id]
    vec = window.matrix[row]
    sims = np.asarray(window.matrix @ vec.T.toarray(), dtype=np.float32).ravel()
    sims[row] = -1.0
    top = np.argsort(-sims, kind="stable")[:k]
    top = top[sims[top] > 0]
    whys = personal.explain_rows(window, top.tolist(), vec, model.terms)
    return [
        Neighbour(int(window.ids[r]), round(float(sims[r]), 4), why)
        for r, why in zip(top.tolist(), whys, strict=True)
    ]


def save(
    session: Session,
    item_id: int,
    model_id: int | None,
    neighbours: list[Neighbour],
    seen: dt.datetime | None = None,
    now: dt.datetime | None = None,
) -> None:
    """Store the neighbours of ``item_id``; the request is cleared unless a newer one (made
    after ``seen``) is waiting. In the caller's transaction."""
    when = now or dt.datetime.now(dt.UTC)
    values = {
        "model_id": model_id,
        "neighbours": [[n.item_id, n.score, n.why] for n in neighbours],
        "computed_at": when,
    }
    conn = session.connection()
    table = SimilarItems.__table__
    stmt = insert(conn, table).values(item_id=item_id, requested_at=None, **values)
    keep_newer = sa.case((table.c.requested_at > seen, table.c.requested_at), else_=None) if seen else None
    conn.execute(
        stmt.on_conflict_do_update(index_elements=["item_id"], set_={**values, "requested_at": keep_newer})
    )
