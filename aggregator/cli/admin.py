"""``aggregator db``, ``users`` and ``email``: maintenance, accounts and the weekly email."""

from __future__ import annotations

import datetime as dt
import sys
from typing import Annotated

import sqlalchemy as sa
import typer
from rich.markup import escape
from rich.table import Table
from sqlalchemy.orm import Session

from aggregator.cli.common import (
    _engine,
    _fail,
    _settings,
    console,
    db_app,
    email_app,
    err_console,
    users_app,
)
from aggregator.store.db import make_engine, session_factory


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Run the Alembic migrations up to head."""
    settings = _settings()
    _engine(settings)
    url = make_engine(settings.database_url).url.render_as_string(hide_password=True)
    console.print(f"database at head: {escape(url)}", soft_wrap=True)


@users_app.command("add")
def users_add(email: Annotated[str, typer.Argument(help="the reader's email address")]) -> None:
    """Create a reader and print their API token and feed token (shown only this once). The
    address counts as verified: the operator vouches for it, so the weekly email may go there."""
    from aggregator import errors
    from aggregator.accounts import builtin_topics, readers

    settings = _settings()
    engine = _engine(settings)
    try:
        with session_factory(engine)() as session, session.begin():
            builtin_topics.ensure_default_topics(session)
            new = readers.create_reader(session, email, verified=True)
    except (errors.ReaderError, errors.Conflict) as err:
        raise _fail(str(err)) from err
    console.print(f"reader {new.reader_id} created: {escape(new.email)}", soft_wrap=True)
    console.print(
        "API token (shown only now; send 'Authorization: Bearer TOKEN'; pages: sign in by email):",
        soft_wrap=True,
    )
    print(new.token)
    console.print(
        "feed token (/api/me/digest.atom?token=…; rotate: POST /api/me/feed-token):", soft_wrap=True
    )
    print(new.feed_token)


def _reader_id(session: Session, email: str) -> int:
    from aggregator.accounts import readers

    reader = readers.reader_by_email(session, email)
    if reader is None:
        raise _fail(f"no reader with address {email}")
    return reader.id


@users_app.command("token")
def users_token(email: Annotated[str, typer.Argument(help="the reader's email address")]) -> None:
    """Make a new API token for a reader and print it (shown only this once); the old token is
    refused from now on."""
    from aggregator.accounts import readers

    engine = _engine(_settings())
    with session_factory(engine)() as session, session.begin():
        token = readers.reissue_token(session, _reader_id(session, email))
    console.print("new API token (shown only now; the old one no longer works):", soft_wrap=True)
    print(token)


@users_app.command("link")
def users_link(email: Annotated[str, typer.Argument(help="the reader's email address")]) -> None:
    """Print a sign-in link for a reader (15 minutes, once) instead of mailing it: for an
    instance without SMTP, or a reader whose mail does not arrive. Opening it verifies the address."""
    from aggregator.accounts import links
    from aggregator.mail.account_mail import link_url
    from aggregator.mail.tokens import signing_key

    settings = _settings()
    engine = _engine(settings)
    with session_factory(engine)() as session:
        reader_id = _reader_id(session, email)
        key = signing_key(session, settings)
        token = links.issue_link(session, reader_id, "signin", key, per_hour=1_000_000)
        session.commit()
    assert token is not None
    console.print("sign-in link (works once, within 15 minutes):", soft_wrap=True)
    print(link_url(settings.public_base_url, token))


@users_app.command("delete")
def users_delete(
    email: Annotated[str, typer.Argument(help="the reader's email address")],
    yes: Annotated[bool, typer.Option("--yes", help="delete without asking")] = False,
) -> None:
    """Delete a reader and all their data (as ``DELETE /api/me`` does)."""
    from aggregator.accounts import deletion

    engine = _engine(_settings())
    with session_factory(engine)() as session, session.begin():
        reader_id = _reader_id(session, email)
        if not yes and not typer.confirm(f"delete reader {reader_id} ({email}) and all their data?"):
            raise _fail("nothing deleted", 1)
        done = deletion.delete_reader(session, reader_id)
    console.print(
        f"reader {done.reader_id} deleted: {escape(done.email)} ({done.scores} scores, "
        f"{done.topics_deleted} topic filters deleted, {done.topics_kept} kept for their subscribers, "
        f"{done.feeds_deleted + done.feeds_stopped} added feeds stopped or deleted)",
        soft_wrap=True,
    )


@users_app.command("list")
def users_list() -> None:
    """List the readers (never their tokens: only digests are stored)."""
    from aggregator.accounts import readers

    settings = _settings()
    engine = _engine(settings)
    with session_factory(engine)() as session:
        rows = readers.list_readers(session)
    table = Table(title=f"{len(rows)} readers")
    for col in ("id", "email", "verified", "created", "topic subscriptions"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            str(r.id),
            escape(r.email),
            "yes" if r.verified else "no",
            r.created_at.strftime("%Y-%m-%d %H:%M UTC"),
            str(r.subscriptions),
        )
    console.print(table)


@email_app.command("send-weekly")
def email_send_weekly(
    limit: Annotated[int | None, typer.Option(help="send at most this many messages")] = None,
) -> None:
    """Send the weekly emails due now (the scheduler runs this every few minutes). Exactly
    once per reader and ISO week, also with several instances or after a crash."""
    from aggregator.mail import send

    settings = _settings()
    engine = _engine(settings)
    report = send.send_due(engine, settings, limit=limit)
    console.print(
        f"weekly email: {report.planned} planned, {report.sent} sent, {report.retrying} to retry, "
        f"{report.gave_up} given up, {report.bounced} bounced, {report.cancelled} cancelled",
        soft_wrap=True,
    )
    for error in report.errors[:20]:
        err_console.print(f"  {error}", soft_wrap=True, markup=False)
    if report.aborted:
        raise _fail(f"SMTP server {settings.smtp_host}:{settings.smtp_port} unreachable; will retry", 1)


@email_app.command("preview")
def email_preview(
    reader: Annotated[str, typer.Option("--reader", help="the reader's email address")],
    week: Annotated[str | None, typer.Option(help="ISO week like 2026-W25; default: this week")] = None,
    text: Annotated[bool, typer.Option("--text", help="print the text part instead of the HTML")] = False,
) -> None:
    """Print the HTML part (or the text part) of a reader's weekly email; nothing is sent."""
    import zoneinfo

    from aggregator.mail.compose import compose_week, current_week, week_monday
    from aggregator.mail.render import render_week
    from aggregator.mail.tokens import EmailLinks, LinkSigner, signing_key
    from aggregator.store.tables import Reader

    settings = _settings()
    engine = _engine(settings)
    with session_factory(engine)() as session:
        row = session.scalar(sa.select(Reader).where(sa.func.lower(Reader.email) == reader.strip().lower()))
        if row is None:
            raise _fail(f"no reader with address {reader}")
        week = week or current_week(dt.datetime.now(dt.UTC), zoneinfo.ZoneInfo(row.timezone or "UTC"))
        try:
            week_monday(week)
        except ValueError as err:
            raise _fail(str(err)) from err
        content = compose_week(session, row.id, week)
        links = EmailLinks(settings.public_base_url, LinkSigner(signing_key(session, settings)))
        rendered = render_week(content, links, row.email_weekday, row.email_time)
    sys.stdout.write(rendered.text if text else rendered.html)


@email_app.command("status")
def email_status() -> None:
    """Weekly emails sent, pending and failed per ISO week, and the open ones with their last error."""
    from aggregator.mail import send
    from aggregator.mail import status as send_status

    settings = _settings()
    engine = _engine(settings)
    with session_factory(engine)() as session:
        status = send_status.email_status(session)
    table = Table(title="weekly email sends")
    for col in ("week", *send.STATES):
        table.add_column(col, justify="right")
    for week, counts in status.counts.items():
        table.add_row(week, *(str(counts.get(s, 0)) for s in send.STATES))
    console.print(table)
    console.print(f"due now, not planned yet: {status.due_now}")
    if status.open_rows:
        rows = Table(title="not sent")
        for col in ("week", "reader", "state", "attempts", "next attempt (UTC)", "last error"):
            rows.add_column(col)
        for r in status.open_rows:
            nxt = r.next_attempt_at.strftime("%Y-%m-%d %H:%M") if r.next_attempt_at else "-"
            if r.state == "failed" and r.next_attempt_at is None:
                nxt = "gave up"
            rows.add_row(
                r.iso_week,
                escape(r.email or str(r.reader_id)),
                r.state,
                str(r.attempts),
                nxt,
                escape(r.last_error or ""),
            )
        console.print(rows)
