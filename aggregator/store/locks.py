"""Job leases shared through the database, so several workers never run the same job at once.

A lease is a row of ``job_locks``: taken by an atomic conditional ``UPDATE`` (or the first
``INSERT``), valid until ``lease_until``, and free for anyone once expired. Leases are short
(``settings.job_lease_seconds``, 60 s) and renewed by a :class:`Heartbeat` thread while the job
runs, so a worker killed holding one (SIGKILL, OOM, power) blocks the job for at most one short
lease, while a job that runs for an hour keeps it. Works the same on SQLite and PostgreSQL.

:func:`lock_reader` serialises the writes of one reader that a per-reader limit counts;
:func:`lock_name` the transactions that name the same critical section.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from sqlalchemy.orm import Session

from aggregator.store.db import insert
from aggregator.store.tables import JobLock, Reader

log = logging.getLogger(__name__)

#: Identifies this process in ``job_locks.holder``.
HOLDER = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"


class LeaseLost(RuntimeError):
    """Another holder took over a lease (or claim) this process was still using: the job must
    stop without committing, the other holder does it."""


class Heartbeat:
    """Calls ``renew()`` every ``every`` seconds in a daemon thread until :meth:`stop`.

    ``renew`` returns False when the lease is lost (another holder has it): that is logged as
    an error, :attr:`lost` is set and :meth:`check` raises :class:`LeaseLost` from then on. A
    renewal that raises (database unreachable, SQLite busy) is logged and tried again at the
    next beat. Use as a context manager: ``with Heartbeat(renew, 20, "lease rank"):``."""

    def __init__(self, renew: Callable[[], bool], every: float, what: str) -> None:
        self.renew = renew
        self.every = every
        self.what = what
        self.lost = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=f"heartbeat {what}", daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.every):
            try:
                kept = self.renew()
            except Exception as err:  # e.g. SQLite busy behind the job's own write transaction
                log.warning("renewing %s failed (%s); trying again in %g s", self.what, err, self.every)
                continue
            if not kept:
                log.error("%s was lost: another process took it over; this job stops", self.what)
                self.lost.set()
                return

    def check(self) -> None:
        """Raise :class:`LeaseLost` when a renewal found the lease taken over."""
        if self.lost.is_set():
            raise LeaseLost(f"{self.what} was lost: another process took it over")

    def start(self) -> Heartbeat:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join()

    def __enter__(self) -> Heartbeat:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


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


def renew(engine: sa.Engine, name: str, seconds: float, holder: str = HOLDER) -> bool:
    """Extend ``holder``'s lease ``name`` to ``seconds`` from now; False when another holder
    has taken it over (an expired lease nobody took is still ours)."""
    until = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
    with engine.begin() as conn:
        res = conn.execute(
            sa.update(JobLock).where(JobLock.name == name, JobLock.holder == holder).values(lease_until=until)
        )
        return bool(res.rowcount)


def release(engine: sa.Engine, name: str, holder: str = HOLDER) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.update(JobLock)
            .where(JobLock.name == name, JobLock.holder == holder)
            .values(lease_until=dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1))
        )


class Lease:
    """The outcome of :func:`lease`: true when held. :meth:`check` raises :class:`LeaseLost`
    once a renewal found it taken over; long jobs call it before committing."""

    def __init__(self, name: str, heartbeat: Heartbeat | None) -> None:
        self.name = name
        self.heartbeat = heartbeat

    def __bool__(self) -> bool:
        return self.heartbeat is not None

    def check(self) -> None:
        if self.heartbeat is not None:
            self.heartbeat.check()


@contextmanager
def lease(engine: sa.Engine, name: str, seconds: float, holder: str = HOLDER) -> Iterator[Lease]:
    """``with lease(engine, "rank", 60) as held:`` — ``held`` is false when another worker has
    the job. While held, a :class:`Heartbeat` renews it every ``seconds / 3`` s; it is
    released on exit (unless lost). ``seconds`` is how long a dead holder blocks the job."""
    if not try_acquire(engine, name, seconds, holder):
        yield Lease(name, None)
        return
    beat = Heartbeat(lambda: renew(engine, name, seconds, holder), seconds / 3, f"the {name!r} lease")
    with beat:
        try:
            yield Lease(name, beat)
        finally:
            beat.stop()
            if not beat.lost.is_set():
                release(engine, name, holder)


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
