"""A reader's votes (👍 = 1, 👎 = −1) on items, table ``feedback``. Functions never commit;
an unknown item raises :class:`aggregator.errors.NotFound`."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session

from aggregator.clock import utcnow
from aggregator.errors import NotFound, ReaderError
from aggregator.store.tables import Feedback, Item


def set_feedback(
    session: Session, reader_id: int, item_id: int, value: int, now: dt.datetime | None = None
) -> dt.datetime:
    """Record 👍 (``1``) or 👎 (``-1``) on an item; ``0`` removes the vote. Returns the item's
    publication time (UTC), the reference for rescoring around it. Raises
    :class:`ReaderError` for another value, :class:`NotFound` for an unknown item."""
    if value not in (-1, 0, 1):
        raise ReaderError("value: 1 (👍), -1 (👎) or 0 (remove)")
    item = session.get(Item, item_id)
    if item is None:
        raise NotFound(f"no item with id {item_id}")
    row = session.get(Feedback, (reader_id, item_id))
    if value == 0:
        if row is not None:
            session.delete(row)
    elif row is None:
        session.add(Feedback(reader_id=reader_id, item_id=item_id, value=value, created_at=now or utcnow()))
    else:
        row.value, row.created_at = value, now or utcnow()
    session.flush()
    return item.published


def feedback_of(session: Session, reader_id: int, item_ids: Sequence[int] | None = None) -> dict[int, int]:
    """The reader's votes: item id → 1 or -1 (only for ``item_ids`` when given)."""
    query = sa.select(Feedback.item_id, Feedback.value).where(Feedback.reader_id == reader_id)
    if item_ids is not None:
        if not item_ids:
            return {}
        query = query.where(Feedback.item_id.in_(list(item_ids)))
    return dict(session.execute(query).all())
