"""The state of the weekly sends, for ``aggregator email status`` and the operator: counts per
week and state, and the rows still open (pending, failed) with their last error."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from aggregator.clock import utcnow
from aggregator.mail.plan import due_readers
from aggregator.store.tables import EmailSend, Reader


@dataclass(frozen=True, slots=True)
class SendRow:
    id: int
    reader_id: int
    email: str | None
    iso_week: str
    state: str
    attempts: int
    last_error: str | None
    next_attempt_at: dt.datetime | None
    sent_at: dt.datetime | None
    message_id: str | None


@dataclass(frozen=True, slots=True)
class EmailStatus:
    """Rows per state, per ISO week (``counts[week][state]``), and the rows not sent yet or
    failed, with their last error (newest weeks first)."""

    counts: dict[str, dict[str, int]]
    open_rows: list[SendRow]
    due_now: int = 0  # readers due now without a row yet (the next run plans them)


def email_status(session: Session, now: dt.datetime | None = None, limit: int = 50) -> EmailStatus:
    """Sent, pending and failed sends, for ``aggregator email status``."""
    now = now or utcnow()
    counts: dict[str, dict[str, int]] = {}
    for week, state, n in session.execute(
        sa.select(EmailSend.iso_week, EmailSend.state, sa.func.count())
        .group_by(EmailSend.iso_week, EmailSend.state)
        .order_by(EmailSend.iso_week.desc())
    ):
        counts.setdefault(week, {})[state] = n
    rows = session.execute(
        sa.select(EmailSend, Reader.email)
        .outerjoin(Reader, Reader.id == EmailSend.reader_id)
        .where(EmailSend.state != "sent")
        .order_by(EmailSend.iso_week.desc(), EmailSend.id)
        .limit(limit)
    ).all()
    open_rows = [
        SendRow(
            r.id,
            r.reader_id,
            mail,
            r.iso_week,
            r.state,
            r.attempts,
            r.last_error,
            r.next_attempt_at,
            r.sent_at,
            r.message_id,
        )
        for r, mail in rows
    ]
    planned = {tuple(r) for r in session.execute(sa.select(EmailSend.reader_id, EmailSend.iso_week))}
    due = sum(1 for d in due_readers(session, now) if (d.reader_id, d.iso_week) not in planned)
    return EmailStatus(counts, open_rows, due)
