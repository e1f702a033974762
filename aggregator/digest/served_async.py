"""The served digest's two queries on asyncio psycopg connections, for PostgreSQL.

On PostgreSQL a digest request waits for the database server for about a fifth of its time.
Run synchronously (:func:`aggregator.digest.served.serve_digest`), that wait blocks the event
loop. Here the digest's two
queries, made one statement (:data:`aggregator.digest.served.READER_AND_RANKED`: a single statement costs the
client about 0.1 ms less than two in a pipeline), are awaited on a ``psycopg.AsyncConnection``,
so the event loop parses and answers other requests while one waits. Everything after the rows
arrive (the body, the card and count caches, a rare cache miss) is
:func:`aggregator.digest.served.answer` on the held synchronous connection.

A few connections are held open in autocommit mode (``AGGREGATOR_READ_CONNECTIONS``,
default ``CONNECTIONS``), each used by one request at a time; psycopg prepares the repeated
statements on each. A lost connection is dropped and the request retried once on a new one.
SQLite does not use this module: its reads are CPU in the process, with nothing to overlap.
"""

from __future__ import annotations

import asyncio
import collections
import datetime as dt
from typing import Any
from zoneinfo import ZoneInfo

import sqlalchemy as sa

from aggregator.digest import served
from aggregator.digest.public import day_window
from aggregator.store import read_connection

#: Connections held per API worker by default (``AGGREGATOR_READ_CONNECTIONS``): requests
#: beyond this many wait for one to be free.
CONNECTIONS = 4


class AsyncReads:
    """Held ``psycopg.AsyncConnection`` s to the engine's PostgreSQL database, opened on first
    use in the running event loop (see the module docstring)."""

    def __init__(
        self, engine: sa.Engine, sync: read_connection.ReadConnection, size: int = CONNECTIONS
    ) -> None:
        self.engine, self.sync, self.size = engine, sync, size
        self._idle: list[Any] | None = None  # free slots: a connection, or None (not opened yet)
        self._waiting: collections.deque[asyncio.Future[Any]] = collections.deque()
        self._opened: list[Any] = []

    async def _acquire(self) -> Any:
        """A free slot, first come first served. (``asyncio.Queue`` lets a newcomer take a slot
        that was freed for a waiter, which sends the waiter to the back: under load some
        requests waited 0.5 s while others never did.)"""
        if self._idle is None:
            self._idle = [None] * self.size
        if self._idle and not self._waiting:
            return self._idle.pop()
        waiter = asyncio.get_running_loop().create_future()
        self._waiting.append(waiter)
        try:
            return await waiter
        except asyncio.CancelledError:
            if waiter.done() and not waiter.cancelled():  # handed a slot, then cancelled
                self._release(waiter.result())
            else:
                self._waiting.remove(waiter)
            raise

    def _release(self, slot: Any) -> None:
        """Hand ``slot`` to the longest waiting request, or make it free."""
        while self._waiting:
            waiter = self._waiting.popleft()
            if not waiter.done():
                waiter.set_result(slot)
                return
        assert self._idle is not None
        self._idle.append(slot)

    async def _connect(self) -> Any:
        import psycopg

        url = self.engine.url.set(drivername="postgresql")
        conn = await psycopg.AsyncConnection.connect(
            url.render_as_string(hide_password=False), autocommit=True
        )
        self._opened.append(conn)
        return conn

    async def fetch(self, stmt: sa.ClauseElement, params: dict[str, Any]) -> list[Any]:
        """The rows of ``stmt`` with ``params`` (as the driver takes them). Raises
        ``psycopg.Error`` when the retry on a new connection fails too."""
        import psycopg

        sql, args = served.driver_statement(self.engine.dialect, stmt, params)
        slot = await self._acquire()
        try:
            for attempt in (1, 2):
                conn = slot if slot is not None and not slot.closed else await self._connect()
                slot = conn
                try:
                    async with conn.cursor() as cur:
                        await cur.execute(sql, args)
                        return list(await cur.fetchall())
                except psycopg.OperationalError:
                    if attempt == 2 or not conn.closed and not conn.broken:
                        raise
                    self._opened.remove(conn)
                    slot = None  # lost: the retry opens a new connection
            raise AssertionError("unreachable")
        finally:
            self._release(slot)

    async def serve_digest(
        self,
        token_hash: str,
        tz: ZoneInfo,
        timezone: str,
        day: dt.date | None = None,
        days: int = 1,
        limit: int = 50,
        paging: served.Paging | None = None,
    ) -> served.Answer:
        """:func:`aggregator.digest.served.serve_digest`, its two queries made one
        (:data:`aggregator.digest.served.READER_AND_RANKED`) and awaited on an async connection. Raises
        ``psycopg.Error`` or ``sqlalchemy.exc.DBAPIError`` on database errors."""
        if day is None:
            day = self.sync.run(lambda conn: served.default_day(conn, tz))
        window = day_window(day, days, tz)
        params = served.ranked_params("postgresql", token_hash, window, limit)
        who, rows = served.split_all(await self.fetch(served.READER_AND_RANKED, params))
        return self.sync.run(lambda conn: served.answer(conn, who, rows, day, days, window, timezone, paging))

    async def close(self) -> None:
        """Close every connection opened."""
        opened, self._opened = self._opened, []
        for conn in opened:
            await conn.close()
        self._idle, self._waiting = None, collections.deque()
