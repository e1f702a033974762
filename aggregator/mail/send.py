"""Send the weekly emails that are due, exactly once per reader and ISO week.

State machine (table ``email_sends``, one row per reader and week, ``UNIQUE(reader_id,
iso_week)``)::

    pending ──claim──► sending ──SMTP 250──► sent
       ▲                  │
       │                  ├── 4xx / connection error ──► failed ──(next_attempt_at)──► claim again
       │                  ├── 5xx for the recipient (RCPT) / invalid address ──► bounced
       │                  └── crash (lease expires) ──► claimed again by the next run
       └── planned: the reader is due this week (INSERT … ON CONFLICT DO NOTHING)

1. **Plan.** A reader with the weekly email on, a verified address and no bounce is *due*
   for ISO week W (W read on their own clock) once now (UTC) ≥ their weekday and local time in W
   (:func:`~aggregator.mail.compose.scheduled_at`). A ``pending`` row is inserted for each
   due reader; the unique constraint makes this idempotent and safe when several instances
   plan at once. Only the current week is planned: weeks missed while nothing ran are not
   backfilled.
2. **Claim.** One row at a time, right before sending it, by an atomic conditional
   ``UPDATE … SET state='sending', lease_until=now+lease, claimed_by=<this run>, attempts=
   attempts+1 WHERE id=? AND ((state IN ('pending','failed') AND next_attempt_at <= now) OR
   (state='sending' AND lease_until < now))``. Exactly one instance sees ``rowcount = 1``
   (SQLite serialises writers; PostgreSQL re-checks the ``WHERE`` on the locked row under
   READ COMMITTED), so two instances never send the same row. The lease
   (``settings.email_lease_seconds``, 60 s) is renewed every third of it while the row is
   composed and sent (:func:`renew_claim`, a :class:`~aggregator.store.locks.Heartbeat`), so
   a slow SMTP server never loses it and a killed sender's row is free within one lease.
3. **Record the Message-ID** (RFC 5322 §3.6.4) in the row (only while the claim is still
   ours) and commit, *then* run the SMTP transaction. A retry reuses the stored Message-ID.
4. **Mark sent** in its own short transaction as soon as the server answers 250 to DATA,
   before anything else happens (even before the next message or QUIT).

Failures: a 4xx reply or a connection error sets ``failed`` with ``next_attempt_at = now +
min(retry × 2^(attempts−1), 1 h)`` (exponential backoff); after ``email_max_attempts`` the
row stays ``failed`` with ``next_attempt_at`` NULL (given up; ``aggregator email status``
shows it). A 5xx to ``RCPT TO`` (or an address email-validator rejects) sets ``bounced`` and
``readers.email_bounced``, and the reader is skipped from then on. A 5xx to ``DATA`` (the
message itself refused) gives up at once.

The one unavoidable window (honestly): if the process dies after the SMTP server accepted
the message (250 after DATA) but before the "sent" commit — a single ``UPDATE`` of a few
milliseconds — the row is still ``sending`` with a Message-ID. Once its lease expires the
next run cannot tell whether the server accepted it (SMTP has no way to ask; RFC 5321
§4.1.1.4 and RFC 1047 describe the same ambiguity when the 250 is lost), and it sends
again, reusing the same Message-ID, so clients and servers that deduplicate by Message-ID
show one copy. We prefer a rare duplicate to a lost email. A crash at any other point (before
the claim, before or during the SMTP transaction) causes neither a loss nor a duplicate: the
row is sent exactly once, by the next run after the lease expires.
"""

from __future__ import annotations

import datetime as dt
import functools
import logging
import os
import smtplib
import socket
import uuid
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from aggregator.clock import utcnow
from aggregator.config import Settings
from aggregator.mail.compose import RisingTerm, compose_week, rising_terms
from aggregator.mail.compose import content_days as _content_days
from aggregator.mail.plan import plan
from aggregator.mail.render import build_message, new_message_id, render_week
from aggregator.mail.smtp import SmtpFactory, _Connection, _error_text, _valid_address, smtp_connect
from aggregator.mail.tokens import EmailLinks, LinkSigner, signing_key
from aggregator.store.db import session_factory
from aggregator.store.locks import Heartbeat
from aggregator.store.tables import EmailSend, Reader

log = logging.getLogger(__name__)

STATES = ("pending", "sending", "sent", "failed", "bounced")
#: Cap of the retry delay, seconds.
MAX_RETRY_DELAY = 3600.0


# --- planning --------------------------------------------------------------------------------


# --- claiming ---------------------------------------------------------------------------------


def _claimable(now: dt.datetime) -> Any:
    return sa.or_(
        sa.and_(
            EmailSend.state.in_(("pending", "failed")),
            EmailSend.next_attempt_at.is_not(None),
            EmailSend.next_attempt_at <= now,
            sa.or_(EmailSend.lease_until.is_(None), EmailSend.lease_until < now),
        ),
        sa.and_(EmailSend.state == "sending", EmailSend.lease_until < now),
    )


def claim_next(
    engine: sa.Engine, now: dt.datetime, holder: str, lease_seconds: float, skip: set[int]
) -> int | None:
    """Claim the next sendable row for ``holder`` until ``now + lease_seconds``; its id, or
    None when there is nothing left. A row another instance claims first is passed over."""
    until = now + dt.timedelta(seconds=lease_seconds)
    while True:
        with engine.begin() as conn:
            query = (
                sa.select(EmailSend.id)
                .where(_claimable(now))
                .order_by(EmailSend.next_attempt_at, EmailSend.id)
                .limit(20)
            )
            if skip:
                query = query.where(EmailSend.id.not_in(sorted(skip)))
            candidates = list(conn.scalars(query))
        if not candidates:
            return None
        for row_id in candidates:
            with engine.begin() as conn:
                res = conn.execute(
                    sa.update(EmailSend)
                    .where(EmailSend.id == row_id, _claimable(now))
                    .values(
                        state="sending",
                        lease_until=until,
                        claimed_by=holder,
                        attempts=EmailSend.attempts + 1,
                    )
                )
            if res.rowcount == 1:
                return row_id
            skip.add(row_id)  # another instance got it


def renew_claim(engine: sa.Engine, row_id: int, holder: str, lease_seconds: float) -> bool:
    """Heartbeat of a claimed row while it is composed and sent: its lease moves to
    ``lease_seconds`` from now (never earlier). False when another run has claimed it since."""
    until = utcnow() + dt.timedelta(seconds=lease_seconds)
    with engine.begin() as conn:
        conn.execute(
            sa.update(EmailSend)
            .where(
                EmailSend.id == row_id,
                EmailSend.claimed_by == holder,
                EmailSend.state == "sending",
                EmailSend.lease_until < until,
            )
            .values(lease_until=until)
        )
        owner = conn.execute(sa.select(EmailSend.claimed_by).where(EmailSend.id == row_id)).scalar()
    return owner is None or owner == holder


def _finish(engine: sa.Engine, row_id: int, holder: str | None, **values: Any) -> bool:
    """Update a claimed row (only while ``holder`` still holds it, unless None); True if done."""
    with engine.begin() as conn:
        stmt = sa.update(EmailSend).where(EmailSend.id == row_id)
        if holder is not None:
            stmt = stmt.where(EmailSend.claimed_by == holder, EmailSend.state == "sending")
        return bool(conn.execute(stmt.values(**values)).rowcount)


def retry_delay(attempts: int, base: float) -> float:
    """Seconds before attempt ``attempts + 1``: ``base × 2^(attempts−1)``, at most 1 h."""
    return float(min(base * 2 ** max(0, attempts - 1), MAX_RETRY_DELAY))


# --- SMTP -------------------------------------------------------------------------------------


# --- sending ----------------------------------------------------------------------------------


@dataclass
class SendReport:
    """What one :func:`send_due` run did, in rows (readers)."""

    planned: int = 0
    sent: int = 0
    retrying: int = 0
    gave_up: int = 0
    bounced: int = 0
    cancelled: int = 0
    lost_lease: int = 0
    aborted: bool = False  # stopped early: the SMTP server could not be reached
    errors: list[str] = field(default_factory=list)


def default_holder() -> str:
    """Identifies one send run in ``email_sends.claimed_by``: host, pid and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def send_due(
    engine: sa.Engine,
    settings: Settings,
    *,
    now: dt.datetime | None = None,
    smtp_factory: SmtpFactory | None = None,
    limit: int | None = None,
    holder: str | None = None,
) -> SendReport:
    """Plan and send every weekly email due at ``now`` (UTC, default the clock), at most
    ``limit`` messages. Safe to run in several processes at once and after a crash (see the
    module doc). Never raises for SMTP or per-reader problems; they are recorded in the rows
    and counted in the report."""
    now = now or utcnow()
    holder = holder or default_holder()
    factory = smtp_factory or smtp_connect
    report = SendReport(planned=plan(engine, now))
    conn = _Connection(settings, factory)
    make_session = session_factory(engine)
    with make_session() as session:
        signer = LinkSigner(signing_key(session, settings))
    links = EmailLinks(settings.public_base_url, signer)
    rising_cache: dict[dt.date, list[RisingTerm]] = {}
    skip: set[int] = set()
    try:
        while limit is None or report.sent < limit:
            row_id = claim_next(engine, now, holder, settings.email_lease_seconds, skip)
            if row_id is None:
                break
            skip.add(row_id)
            lease = settings.email_lease_seconds
            renew = functools.partial(renew_claim, engine, row_id, holder, lease)
            with Heartbeat(renew, lease / 3, f"the claim on weekly email row {row_id}"):
                sent = _send_one(
                    engine, make_session, settings, conn, links, row_id, holder, now, report, rising_cache
                )
            if not sent:
                report.aborted = True
                break
    finally:
        conn.quit()
    return report


def _fail(
    engine: sa.Engine,
    settings: Settings,
    row_id: int,
    holder: str,
    attempts: int,
    error: str,
    now: dt.datetime,
    report: SendReport,
    permanent: bool = False,
) -> None:
    give_up = permanent or attempts >= settings.email_max_attempts
    next_at = (
        None if give_up else now + dt.timedelta(seconds=retry_delay(attempts, settings.email_retry_seconds))
    )
    _finish(
        engine,
        row_id,
        holder,
        state="failed",
        last_error=error[:2000],
        next_attempt_at=next_at,
        lease_until=None,
    )
    if give_up:
        report.gave_up += 1
    else:
        report.retrying += 1
    report.errors.append(error)


def _bounce(
    engine: sa.Engine, row_id: int, holder: str, reader_id: int, error: str, report: SendReport
) -> None:
    with engine.begin() as c:
        c.execute(
            sa.update(EmailSend)
            .where(EmailSend.id == row_id, EmailSend.claimed_by == holder)
            .values(state="bounced", last_error=error[:2000], next_attempt_at=None, lease_until=None)
        )
        c.execute(sa.update(Reader).where(Reader.id == reader_id).values(email_bounced=True))
    report.bounced += 1
    report.errors.append(error)


def _send_one(
    engine: sa.Engine,
    make_session: Any,
    settings: Settings,
    conn: _Connection,
    links: EmailLinks,
    row_id: int,
    holder: str,
    now: dt.datetime,
    report: SendReport,
    rising_cache: dict[dt.date, list[RisingTerm]],
) -> bool:
    """Send one claimed row. False when the SMTP server cannot be reached (stop the run).

    Long because it is the state machine of one send (claim, render, SMTP, record), whose error
    branches must stay next to the step they handle.
    """
    with make_session() as session:
        row = session.get(EmailSend, row_id)
        assert row is not None
        reader = session.get(Reader, row.reader_id)
        if (
            reader is None
            or not reader.weekly_email
            or reader.email_bounced
            or reader.email_verified_at is None
        ):
            session.execute(
                sa.delete(EmailSend).where(EmailSend.id == row_id, EmailSend.claimed_by == holder)
            )
            session.commit()
            report.cancelled += 1
            return True
        attempts, address, reader_id = row.attempts, reader.email, reader.id
        weekday, send_time = reader.email_weekday, reader.email_time
        problem = _valid_address(address)
        if problem is not None:
            _bounce(engine, row_id, holder, reader_id, f"invalid address {address!r}: {problem}", report)
            return True
        try:
            last = _content_days(row.iso_week, weekday)[1]
            if last not in rising_cache:
                rising_cache[last] = rising_terms(session, last)
            week = compose_week(session, reader_id, row.iso_week, rising=rising_cache[last])
            rendered = render_week(week, links, weekday, send_time)
            message_id = row.message_id or new_message_id(settings.mail_from)
            msg = build_message(rendered, mail_from=settings.mail_from, to=address, message_id=message_id)
        except Exception as err:  # a bug or bad data for this reader must not stop the others
            log.exception("composing the weekly email of reader %s failed", reader_id)
            _fail(engine, settings, row_id, holder, attempts, f"compose: {_error_text(err)}", now, report)
            return True
    if not _finish(engine, row_id, holder, message_id=message_id):
        report.lost_lease += 1  # our lease expired and another run took the row: leave it to them
        return True
    try:
        smtp = conn.get()
    except (OSError, smtplib.SMTPException) as err:
        conn.drop()
        _fail(engine, settings, row_id, holder, attempts, f"connect: {_error_text(err)}", now, report)
        return False
    try:
        smtp.send_message(msg, to_addrs=[address])
    except smtplib.SMTPRecipientsRefused as err:
        codes = [code for code, _ in err.recipients.values()]
        if codes and all(500 <= c < 600 for c in codes):
            _bounce(engine, row_id, holder, reader_id, _error_text(err), report)
        else:
            _fail(engine, settings, row_id, holder, attempts, _error_text(err), now, report)
        return True
    except smtplib.SMTPDataError as err:
        _fail(
            engine,
            settings,
            row_id,
            holder,
            attempts,
            _error_text(err),
            now,
            report,
            permanent=500 <= err.smtp_code < 600,
        )
        return True
    except (OSError, smtplib.SMTPException) as err:
        conn.drop()  # e.g. disconnected mid-transaction: not accepted, retry later
        _fail(engine, settings, row_id, holder, attempts, _error_text(err), now, report)
        return True
    # Accepted (250 after DATA). Record it at once: this commit is the unavoidable window.
    _finish(
        engine,
        row_id,
        None,
        state="sent",
        sent_at=utcnow(),
        lease_until=None,
        last_error=None,
        next_attempt_at=None,
    )
    report.sent += 1
    log.info("weekly email %s sent to reader %s (%s)", message_id, reader_id, row_id)
    return True


# --- status -----------------------------------------------------------------------------------
