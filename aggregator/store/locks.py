"""Job leases shared through the database, so several workers never run the same job at once.

A lease is a row of ``job_locks``: taken by an atomic conditional ``UPDATE`` (or the first
``INSERT``), valid until ``lease_until``, and free for anyone once expired, so a worker that
died holding it blocks the job for at most one lease. Works the same on SQLite and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa

from aggregator.store.db import insert
from aggregator.store.tables import JobLock

#: Identifies this process in ``job_locks.holder``.
HOLDER = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


def try_acquire(engine: sa.Engine, name: str, seconds: float, holder: str = HOLDER) -> bool:
    """Take the lease ``name`` for ``seconds`` if it is free, expired, or already ours."""
    now = dt.datetime.now(dt.UTC)
    until = now + dt.timedelta(seconds=seconds)
    with engine.begin() as conn:
        conn.execute(
            insert(conn, JobLock.__table__)
            .values(name=name, holder="", lease_until=now - dt.timedelta(seconds=1))
            .on_conflict_do_nothing()
        )
        res = conn.execute(
            sa.update(JobLock)
            .where(JobLock.name == name, sa.or_(JobLock.lease_until < now, JobLock.holder == holder))
            .values(holder=holder, lease_until=until)
        )
        return bool(res.rowcount)


def release(engine: sa.Engine, name: str, holder: str = HOLDER) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.update(JobLock)
            .where(JobLock.name == name, JobLock.holder == holder)
            .values(lease_until=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        )


@contextmanager
def lease(engine: sa.Engine, name: str, seconds: float) -> Iterator[bool]:
    """``with lease(engine, "rank", 600) as held:`` — ``held`` is False when another worker
    has the job; the lease is released on exit when it was taken."""
    held = try_acquire(engine, name, seconds)
    try:
        yield held
    finally:
        if held:
            release(engine, name)


# -- turns: a row holding the earliest time the next request may start ---------------------------


def try_take_turn(engine: sa.Engine, name: str, busy_seconds: float, holder: str = HOLDER) -> float:
    """Take the turn ``name`` if its ``lease_until`` (the earliest next start, UTC) has passed,
    marking it busy for ``busy_seconds``; returns 0.0 when taken, else the seconds to wait.

    Unlike a lease, a turn is never re-entrant: the holder waits like anyone else, so the row
    spaces requests of every process alike (see :mod:`aggregator.feeds.pacing`)."""
    now = dt.datetime.now(dt.UTC)
    with engine.begin() as conn:
        conn.execute(
            insert(conn, JobLock.__table__)
            .values(name=name, holder="", lease_until=now - dt.timedelta(seconds=1))
            .on_conflict_do_nothing()
        )
        res = conn.execute(
            sa.update(JobLock)
            .where(JobLock.name == name, JobLock.lease_until <= now)
            .values(holder=holder, lease_until=now + dt.timedelta(seconds=busy_seconds))
        )
        if res.rowcount:
            return 0.0
        until = conn.execute(sa.select(JobLock.lease_until).where(JobLock.name == name)).scalar_one()
    if until.tzinfo is None:  # SQLite keeps no zone; written as UTC
        until = until.replace(tzinfo=dt.UTC)
    return max((until - now).total_seconds(), 0.001)


def end_turn(engine: sa.Engine, name: str, spacing: float, holder: str = HOLDER) -> None:
    """End ``holder``'s turn ``name``: the next may start ``spacing`` seconds from now. No
    effect when the turn ran out and another holder took it meanwhile."""
    with engine.begin() as conn:
        conn.execute(
            sa.update(JobLock)
            .where(JobLock.name == name, JobLock.holder == holder)
            .values(lease_until=dt.datetime.now(dt.UTC) + dt.timedelta(seconds=spacing))
        )
