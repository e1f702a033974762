"""The arXiv request spacing, shared by every caller of the process and, through the database,
by every process of the instance.

arXiv API Terms of Use (https://info.arxiv.org/help/api/tou.html): "make no more than one
request every three seconds, and limit requests to a single connection at a time"
(:data:`aggregator.feeds.arxiv.ARXIV_REQUEST_INTERVAL`, ``settings.arxiv_delay_seconds``).

Two levels, taken in this order for every request to an arXiv host:

1. :class:`HostPacer`, one per host for the whole process (:func:`pacer_for`): one request at
   a time, each starting at least ``interval`` seconds after the previous one ended. It is
   guarded by a :class:`threading.Lock`, never an asyncio primitive, so callers in different
   threads and event loops (API background tasks each run ``asyncio.run`` in a worker thread,
   the scheduler has its own loop) share it. Waiting is an ``asyncio.sleep`` poll, so no loop
   is ever blocked.
2. :class:`DatabaseTurn` (when the fetcher was given an engine): a ``job_locks`` row named
   ``arxiv:<host>`` whose ``lease_until`` is the earliest time (UTC) the next request to the host
   may start. A process takes its turn with an atomic conditional ``UPDATE``
   (:func:`aggregator.store.locks.try_take_turn`), marking it busy (renewed while the request
   runs); when the request ends it sets the row to ``end + interval``
   (:func:`aggregator.store.locks.end_turn`). A process killed mid-request frees the host within
   :data:`TURN_BUSY_SECONDS`. Clocks of the hosts sharing a database are assumed in sync (NTP).
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import threading
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import sqlalchemy as sa

from aggregator.store import locks

__all__ = ["DatabaseTurn", "HostPacer", "pacer_for"]

#: Seconds between two looks at a busy pacer or database row (the wait is otherwise exact).
POLL_SECONDS = 0.05


class HostPacer:
    """One request at a time to one host, each starting ``interval`` s after the previous one
    ended; safe across threads and event loops (see the module doc)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._busy = False
        self._ended_at = -math.inf  # time.monotonic() when the previous request ended

    async def _acquire(self, interval: float) -> None:
        while True:
            with self._lock:
                wait = POLL_SECONDS if self._busy else self._ended_at + interval - time.monotonic()
                if wait <= 0:
                    self._busy = True
                    return
            await asyncio.sleep(min(wait, POLL_SECONDS) if self._busy else wait)

    def _release(self) -> None:
        with self._lock:
            self._busy = False
            self._ended_at = time.monotonic()

    @asynccontextmanager
    async def turn(self, interval: float, database: DatabaseTurn | None = None) -> AsyncIterator[None]:
        """Hold the host for one request: ``async with pacer.turn(3.0, db):``, starting
        ``interval`` seconds after the previous request (of any caller) ended; ``database``
        adds the instance-wide turn."""
        await self._acquire(interval)
        try:
            if database is None:
                yield
            else:
                await database.take()
                try:
                    yield
                finally:
                    await asyncio.shield(database.end(interval))
        finally:
            self._release()


_PACERS: dict[str, HostPacer] = {}
_PACERS_LOCK = threading.Lock()


def pacer_for(host: str) -> HostPacer:
    """The process's pacer of ``host`` (``host[:port]``), made on first use."""
    with _PACERS_LOCK:
        pacer = _PACERS.get(host)
        if pacer is None:
            pacer = _PACERS[host] = HostPacer()
        return pacer


#: Seconds a process's turn stays busy unrenewed: renewed every third while its request runs,
#: so a process killed mid-request blocks the host for this long at most.
TURN_BUSY_SECONDS = 15.0


class DatabaseTurn:
    """The instance-wide turn of one host in ``job_locks`` (see the module doc).

    While the request runs, the turn is marked busy for :data:`TURN_BUSY_SECONDS` and renewed
    every third of that by a task of the caller's loop. Database calls run in a thread."""

    def __init__(self, engine: sa.Engine, host: str) -> None:
        self.engine = engine
        self.name = f"arxiv:{host}"[:100]
        self._renewing: asyncio.Task[None] | None = None

    async def take(self) -> None:
        """Wait until the row allows a request, then take it."""
        take = locks.try_take_turn
        while (wait := await asyncio.to_thread(take, self.engine, self.name, TURN_BUSY_SECONDS)) > 0:
            await asyncio.sleep(min(wait, 1.0))
        self._renewing = asyncio.create_task(self._keep())

    async def _keep(self) -> None:
        while True:
            await asyncio.sleep(TURN_BUSY_SECONDS / 3)
            await asyncio.to_thread(locks.renew, self.engine, self.name, TURN_BUSY_SECONDS)

    async def end(self, interval: float) -> None:
        """The request ended: the next one (any process) may start ``interval`` s from now."""
        if self._renewing is not None:
            self._renewing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._renewing
        await asyncio.to_thread(locks.end_turn, self.engine, self.name, interval)
