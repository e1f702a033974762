"""A reader's subscriptions to topic filters. Functions take a ``Session`` and never commit;
an unknown slug, like another reader's private filter, raises :class:`aggregator.errors.NotFound`."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from aggregator.accounts.topic_filters import TopicInfo, _info, _subscriber_counts, _topic_row
from aggregator.clock import utcnow
from aggregator.errors import NotFound
from aggregator.store.db import insert
from aggregator.store.tables import Subscription, Topic


def list_subscriptions(session: Session, reader_id: int) -> list[TopicInfo]:
    """The topic filters the reader follows, in order of subscription."""
    counts = _subscriber_counts(session)
    rows = session.scalars(
        sa.select(Topic)
        .join(Subscription, Subscription.topic_id == Topic.id)
        .where(Subscription.reader_id == reader_id)
        .order_by(Subscription.created_at, Topic.id)
    )
    return [_info(r, counts.get(r.id, 0)) for r in rows]


def subscribe(session: Session, reader_id: int, slug: str, now: dt.datetime | None = None) -> TopicInfo:
    """Follow a topic filter (again is a no-op). Raises :class:`NotFound` for an unknown slug
    or another reader's private filter."""
    row = _topic_row(session, slug, reader_id)
    if session.get(Subscription, (reader_id, row.id)) is None:  # ON CONFLICT: the same, at once
        conn = session.connection()
        values = {"reader_id": reader_id, "topic_id": row.id, "created_at": now or utcnow()}
        conn.execute(insert(conn, Subscription.__table__).values(**values).on_conflict_do_nothing())
    return _info(row, _subscriber_counts(session).get(row.id, 0))


def unsubscribe(session: Session, reader_id: int, slug: str) -> None:
    """Stop following a topic filter. Raises :class:`NotFound` when the reader does not follow
    it (whoever else does: a reader only ever removes their own subscription)."""
    row = _topic_row(session, slug, reader_id)
    sub = session.get(Subscription, (reader_id, row.id))
    if sub is None:
        raise NotFound(f"you are not subscribed to {slug!r}")
    session.delete(sub)
    session.flush()
