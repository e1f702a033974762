"""The weekly email's exactly-once guarantee under faults, against a real SMTP server
(aiosmtpd on loopback) on SQLite and PostgreSQL: the server down then back (retried once,
with backoff), a recipient refused with 550 (bounced, the others sent) or 451 (retried), an
invalid address, the sender SIGKILLed mid-batch then restarted, and two senders at once (two
processes). Every reader must get exactly one message per week."""

from __future__ import annotations

import collections
import datetime as dt
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from test_email import NOW, SmtpServer, add_reader, free_port, mail_settings

from aggregator.mail import send
from aggregator.mail import status as send_status
from aggregator.store.db import session_factory
from aggregator.store.tables import EmailSend, Reader

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


def rows(engine: sa.Engine) -> dict[str, EmailSend]:
    with session_factory(engine)() as s:
        return {
            r.email: e
            for e, r in s.execute(sa.select(EmailSend, Reader).join(Reader, Reader.id == EmailSend.reader_id))
        }


def test_server_down_then_back_sends_each_once(engine: sa.Engine, database_url: str, tmp_path: Path) -> None:
    addresses = ["a@example.com", "b@example.com", "c@example.com"]
    for a in addresses:
        add_reader(engine, a)
    port = free_port()  # nothing listens yet
    settings = mail_settings(database_url, tmp_path, port, smtp_timeout_seconds=5.0)

    down = send.send_due(engine, settings, now=NOW)
    assert down.aborted and down.sent == 0 and down.retrying == 1 and "connect" in down.errors[0]
    state = rows(engine)
    failed = [a for a, r in state.items() if r.state == "failed"]
    assert len(failed) == 1 and sorted(r.state for r in state.values()) == ["failed", "pending", "pending"]
    first = state[failed[0]]
    assert first.attempts == 1 and first.next_attempt_at == NOW + dt.timedelta(seconds=60)
    assert first.message_id and "ConnectionRefusedError" in (first.last_error or "")

    server = SmtpServer(port).start()
    try:
        # the two never tried go at once; the failed one waits for its backoff
        soon = send.send_due(engine, settings, now=NOW + dt.timedelta(seconds=30))
        assert soon.sent == 2 and failed[0] not in server.handler.recipients()
        later = send.send_due(engine, settings, now=NOW + dt.timedelta(seconds=61))
        assert later.sent == 1
        assert send.send_due(engine, settings, now=NOW + dt.timedelta(hours=2)).sent == 0
        assert sorted(server.handler.recipients()) == addresses
        retried = next(m for m in server.handler.parsed() if m["To"] == failed[0])
        assert retried["Message-ID"] == first.message_id  # the retry reuses the recorded Message-ID
        state = rows(engine)
        assert {r.state for r in state.values()} == {"sent"} and state[failed[0]].attempts == 2
    finally:
        server.stop()


def test_refused_recipient_bounces_deferred_one_retries(
    engine: sa.Engine, database_url: str, tmp_path: Path, smtp: SmtpServer
) -> None:
    for a in ("ok@example.com", "gone@example.com", "grey@example.com", "bad@example.com"):
        add_reader(engine, a)
    with session_factory(engine)() as s, s.begin():  # stored before validation existed, say
        s.execute(sa.update(Reader).where(Reader.email == "bad@example.com").values(email="bad@@example"))
    smtp.handler.reject = {"gone@example.com"}
    smtp.handler.defer = {"grey@example.com"}
    settings = mail_settings(database_url, tmp_path, smtp.port)

    report = send.send_due(engine, settings, now=NOW)
    assert (report.sent, report.bounced, report.retrying, report.aborted) == (1, 2, 1, False)
    state = rows(engine)
    assert state["gone@example.com"].state == "bounced" and "550" in (
        state["gone@example.com"].last_error or ""
    )
    assert state["bad@@example"].state == "bounced" and "invalid address" in (
        state["bad@@example"].last_error or ""
    )
    assert state["grey@example.com"].state == "failed" and "451" in (
        state["grey@example.com"].last_error or ""
    )
    with session_factory(engine)() as s:
        bounced = set(s.scalars(sa.select(Reader.email).where(Reader.email_bounced.is_(True))))
    assert bounced == {"gone@example.com", "bad@@example"}

    assert send.send_due(engine, settings, now=NOW + dt.timedelta(minutes=2)).sent == 1  # grey, retried
    assert sorted(smtp.handler.recipients()) == ["grey@example.com", "ok@example.com"]
    # the next week: bounced readers are skipped, the others get W26
    nxt = send.send_due(engine, settings, now=NOW + dt.timedelta(days=7))
    assert nxt.planned == 2 and nxt.sent == 2
    counts = collections.Counter(smtp.handler.recipients())
    assert counts == {"ok@example.com": 2, "grey@example.com": 2}


def test_gives_up_after_max_attempts(engine: sa.Engine, database_url: str, tmp_path: Path) -> None:
    add_reader(engine, "a@example.com")
    settings = mail_settings(database_url, tmp_path, free_port(), email_max_attempts=2)
    assert send.send_due(engine, settings, now=NOW).retrying == 1
    assert (
        send.retry_delay(1, 60) == 60 and send.retry_delay(3, 60) == 240 and send.retry_delay(30, 60) == 3600
    )
    assert send.send_due(engine, settings, now=NOW + dt.timedelta(minutes=1)).gave_up == 1
    row = rows(engine)["a@example.com"]
    assert (row.state, row.attempts, row.next_attempt_at) == ("failed", 2, None)
    assert send.send_due(engine, settings, now=NOW + dt.timedelta(days=1)).errors == []  # left alone
    with session_factory(engine)() as s:
        status = send_status.email_status(s, now=NOW)
    assert status.counts == {"2026-W25": {"failed": 1}} and status.open_rows[0].last_error


# --- processes ----------------------------------------------------------------------------------


def sender_env(database_url: str, port: int, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGGREGATOR_")}
    env.update(
        {
            "AGGREGATOR_DATABASE_URL": database_url,
            "AGGREGATOR_SMTP_HOST": "127.0.0.1",
            "AGGREGATOR_SMTP_PORT": str(port),
            "AGGREGATOR_SMTP_SECURITY": "none",
            "AGGREGATOR_MAIL_FROM": "digest@mail.example.org",
            "AGGREGATOR_PUBLIC_BASE_URL": "http://testserver",
            "AGGREGATOR_LOG_LEVEL": "WARNING",
            "PYTHONPATH": str(ROOT),
            **extra,
        }
    )
    return env


def start_sender(env: dict[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "aggregator", "email", "send-weekly"],
        env=env,
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def due_now_readers(engine: sa.Engine, n: int) -> list[str]:
    """``n`` readers due now, whatever the day: Monday 00:00 UTC has passed in every week."""
    addresses = [f"r{i}@example.com" for i in range(n)]
    for a in addresses:
        add_reader(engine, a, weekday=0, at="00:00")
    return addresses


@pytest.mark.slow
def test_killed_mid_batch_then_restarted(
    engine: sa.Engine, database_url: str, tmp_path: Path, smtp: SmtpServer
) -> None:
    addresses = due_now_readers(engine, 4)
    smtp.handler.block_at = 2  # the second message hangs in DATA: kill the sender there
    env = sender_env(database_url, smtp.port, AGGREGATOR_EMAIL_LEASE_SECONDS="1")
    proc = start_sender(env, tmp_path)
    try:
        assert smtp.handler.blocked.wait(60), (
            proc.communicate(timeout=5)[0] if proc.poll() is not None else ""
        )
        proc.kill()  # SIGKILL: no cleanup, no finally blocks
        proc.wait(10)
    finally:
        smtp.handler.release.set()
        if proc.poll() is None:
            proc.kill()
    assert len(smtp.handler.messages) == 1
    state = rows(engine)
    by_state = collections.Counter(r.state for r in state.values())
    assert by_state == {"sent": 1, "sending": 1, "pending": 2}
    hung = next(r for r in state.values() if r.state == "sending")
    assert hung.message_id  # recorded before the SMTP transaction

    time.sleep(1.3)  # the dead sender's lease expires
    done = subprocess.run(
        [sys.executable, "-m", "aggregator", "email", "send-weekly"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 sent" in done.stdout
    assert sorted(smtp.handler.recipients()) == addresses  # every reader exactly once
    assert {r.state for r in rows(engine).values()} == {"sent"}
    resent = next(m for m in smtp.handler.parsed() if m["Message-ID"] == hung.message_id)
    assert resent["To"] == next(a for a, r in state.items() if r.state == "sending")


@pytest.mark.slow
def test_two_senders_at_once_send_each_reader_once(
    engine: sa.Engine, database_url: str, tmp_path: Path, smtp: SmtpServer
) -> None:
    addresses = due_now_readers(engine, 8)
    smtp.handler.delay = 0.05
    env = sender_env(database_url, smtp.port)
    procs = [start_sender(env, tmp_path) for _ in range(2)]
    outputs = [p.communicate(timeout=120)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs
    assert sorted(smtp.handler.recipients()) == addresses
    assert {r.state for r in rows(engine).values()} == {"sent"} and len(rows(engine)) == 8
    sent = [int(o.split(" sent")[0].rsplit(" ", 1)[-1]) for o in outputs]
    assert sum(sent) == 8
