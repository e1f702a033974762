"""Which readers are due for their weekly email (their chosen weekday and hour, in their time
zone), and the ``email_sends`` rows planned for them: one per reader and ISO week, so a send
happens exactly once however many workers plan it."""

from __future__ import annotations

import datetime as dt
import logging
import zoneinfo
from dataclasses import dataclass
from typing import cast

import sqlalchemy as sa
from sqlalchemy.orm import Session

from aggregator.mail.compose import current_week, scheduled_at
from aggregator.store.db import insert, session_factory
from aggregator.store.tables import EmailSend, Reader

log = logging.getLogger(__name__)


def _zone(name: str | None) -> zoneinfo.ZoneInfo:
    try:
        return zoneinfo.ZoneInfo(name or "UTC")
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        return zoneinfo.ZoneInfo("UTC")


@dataclass(frozen=True, slots=True)
class Due:
    reader_id: int
    iso_week: str
    scheduled_at: dt.datetime  # UTC


def due_readers(session: Session, now: dt.datetime) -> list[Due]:
    """Readers due at ``now`` (UTC) for their current ISO week: weekly email on, not bounced,
    address verified (:mod:`aggregator.accounts.links`), and their scheduled time this week
    has passed. Does not look at ``email_sends``."""
    rows = session.execute(
        sa.select(Reader.id, Reader.email_weekday, Reader.email_time, Reader.timezone).where(
            Reader.weekly_email.is_(True),
            Reader.email_bounced.is_(False),
            Reader.email_verified_at.is_not(None),  # no mail to an address nobody confirmed
        )
    ).all()
    out = []
    for rid, weekday, hhmm, tzname in rows:
        tz = _zone(tzname)
        week = current_week(now, tz)
        try:
            at = scheduled_at(week, int(weekday) % 7, hhmm or "08:00", tz)
        except ValueError:
            log.warning("reader %s has an invalid email time %r; using 08:00", rid, hhmm)
            at = scheduled_at(week, int(weekday) % 7, "08:00", tz)
        if now >= at:
            out.append(Due(rid, week, at))
    return out


def plan(engine: sa.Engine, now: dt.datetime) -> int:
    """Insert a ``pending`` row for each due reader that has none for the week. Idempotent
    and safe to run concurrently. Returns rows inserted."""
    with session_factory(engine)() as session:
        due = due_readers(session, now)
    if not due:
        return 0
    table = cast(sa.Table, EmailSend.__table__)
    with engine.begin() as conn:
        existing = {
            tuple(r)
            for r in conn.execute(
                sa.select(table.c.reader_id, table.c.iso_week).where(
                    table.c.iso_week.in_(sorted({d.iso_week for d in due}))
                )
            )
        }
        values = [
            {
                "reader_id": d.reader_id,
                "iso_week": d.iso_week,
                "state": "pending",
                "attempts": 0,
                "next_attempt_at": d.scheduled_at,
                "scheduled_at": d.scheduled_at,
                "created_at": now,
            }
            for d in due
            if (d.reader_id, d.iso_week) not in existing
        ]
        if not values:
            return 0
        stmt = insert(conn, table).on_conflict_do_nothing(index_elements=["reader_id", "iso_week"])
        conn.execute(stmt, values)
    return len(values)
