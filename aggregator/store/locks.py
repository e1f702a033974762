"""Job leases shared through the database, so several workers never run the same job at once.

A lease is a row of ``job_locks``: taken by an atomic conditional ``UPDATE`` (or the first
``INSERT``), valid until ``lease_until``, and free for anyone once expired, so a worker that
died holding it blocks the job for at most one lease. Works the same on SQLite and PostgreSQL.

:func:`lock_reader` serialises the writes of one reader that a per-reader limit counts;
:func:`lock_name` the transactions that name the same critical section.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.orm import Session

from aggregator.store.db import insert
from aggregator.store.tables import JobLock, Reader

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


def lock_reader(session: Session, reader_id: int) -> None:
    """Hold the ``readers`` row of ``reader_id`` until the session's transaction ends, so that
    a per-reader limit counted after this call cannot be passed by concurrent requests of the
    same reader (count, then insert, in one critical section).

    PostgreSQL: ``SELECT ... FOR UPDATE`` of the row; a second transaction waits at this call
    until the first commits or rolls back, and (READ COMMITTED) then counts what it wrote.
    SQLite: a no-op ``UPDATE`` of the row, which opens the write transaction at once (the
    database's single writer lock, waited for up to the busy timeout); the counts that follow
    read the latest committed state. Call it before the count and before any other read of
    the transaction. Nothing happens for an unknown reader."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(sa.select(Reader.id).where(Reader.id == reader_id).with_for_update())
    else:
        session.execute(sa.update(Reader).where(Reader.id == reader_id).values(email=Reader.email))


def lock_name(session: Session, name: str) -> None:
    """Serialise, until the session's transaction ends, every transaction that calls this with
    the same ``name`` (e.g. ``"feed-names"``: one reader's feed named at a time, so two look-alike
    names added at once cannot both pass the check).

    PostgreSQL: ``pg_advisory_xact_lock`` on a 63-bit hash of ``name``. SQLite: an ``UPDATE``
    of no row, which takes the database's single write lock at once (every writer is then
    serialised, which SQLite does anyway)."""
    if session.get_bind().dialect.name == "postgresql":
        key = int.from_bytes(hashlib.sha256(name.encode()).digest()[:8], "big") >> 1
        session.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))
    else:
        session.execute(sa.update(JobLock).where(sa.false()).values(holder=JobLock.holder))
