"""The rescore queue (table ``rescore_requests``): the API asks, a worker rescores. A request
names a reader and optionally the day around which to rescore; ``rescore_pending`` says
whether the reader still waits for one. Functions never commit."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Session

from aggregator.clock import utcnow
from aggregator.store.db import insert
from aggregator.store.tables import RescoreRequest


def request_rescore(
    session: Session,
    reader_id: int,
    around: dt.datetime | None = None,
    seeds: bool = False,
    now: dt.datetime | None = None,
) -> dt.datetime:
    """Queue the reader for a worker's rescore (``rescore_requests``), replacing a queued
    request (``seeds`` is kept if either asked for it). Runs in the caller's transaction;
    returns the request time (UTC). Used by API processes that do not score themselves."""
    when = now or utcnow()
    conn = session.connection()
    table = RescoreRequest.__table__
    stmt = insert(conn, table).values(reader_id=reader_id, requested_at=when, around=around, seeds=seeds)
    stmt = stmt.on_conflict_do_update(
        index_elements=["reader_id"],
        set_={
            "requested_at": stmt.excluded.requested_at,
            "around": stmt.excluded.around,
            "seeds": sa.or_(table.c.seeds, stmt.excluded.seeds),
        },
    )
    conn.execute(stmt)
    return when


def rescore_pending(session: Session, reader_id: int) -> bool:
    """Whether a rescore of the reader is still queued for the workers."""
    found = session.scalar(sa.select(RescoreRequest.reader_id).where(RescoreRequest.reader_id == reader_id))
    return found is not None
