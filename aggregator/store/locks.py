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
