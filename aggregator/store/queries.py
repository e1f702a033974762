"""Reads and small writes shared by several stages (ingest, digest, cards, pages).

They take a SQLAlchemy ``Session`` and never commit: the caller owns the transaction.
Living here, below every stage, they keep the imports one-way (``feeds`` and ``digest``
both use them without importing each other)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session

from aggregator.store.tables import Feed, Item, ItemLink, ItemSource


def item_sources(session: Session, item_ids: list[int]) -> dict[int, list[str]]:
    """Feed names that announced each item: scheduled feeds before the arXiv API backfill,
    primary ("new") announcements before replacements and cross-lists, then by arrival."""
    out: dict[int, list[str]] = {}
    if not item_ids:
        return out
    rows = session.execute(
        sa.select(ItemSource.item_id, Feed.name)
        .join(Feed, Feed.id == ItemSource.feed_id)
        .where(ItemSource.item_id.in_(item_ids))
        .order_by(
            ItemSource.item_id,
            Feed.scheduled.desc(),
            sa.case({"new": 0, "cross": 2}, value=ItemSource.announce_type, else_=1),
            ItemSource.seen_at,
            ItemSource.id,
        )
    )
    for item_id, name in rows:
        names = out.setdefault(item_id, [])
        if name not in names:
            names.append(name)
    return out


def discussed_in(session: Session, paper_ids: Sequence[int]) -> dict[int, int]:
    """Number of linked posts per paper id (papers without links are absent)."""
    out: dict[int, int] = {}
    for i in range(0, len(paper_ids), 500):
        rows = session.execute(
            sa.select(ItemLink.paper_id, sa.func.count())
            .where(ItemLink.paper_id.in_(paper_ids[i : i + 500]))
            .group_by(ItemLink.paper_id)
        )
        out.update((paper_id, n) for paper_id, n in rows)
    return out


def invalidate(session: Session, item_ids: Iterable[int]) -> None:
    """Mark the cards of ``item_ids`` stale (``card = NULL``), in the caller's transaction."""
    ids = sorted({int(i) for i in item_ids})
    for start in range(0, len(ids), 500):
        session.execute(sa.update(Item).where(Item.id.in_(ids[start : start + 500])).values(card=None))


def invalidate_feed(session: Session, feed_id: int) -> None:
    """Mark stale the cards of every item ``feed_id`` announced (after the feed is renamed)."""
    announced = sa.select(ItemSource.item_id).where(ItemSource.feed_id == feed_id)
    session.execute(sa.update(Item).where(Item.id.in_(announced)).values(card=None))
