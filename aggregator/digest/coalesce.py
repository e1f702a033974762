"""Request coalescing: look-ups made while an earlier one is being read go out together.

The served digest reads, on every request, the reader's state (the stamp of a stored body,
:mod:`aggregator.digest.served`). On PostgreSQL each such read is a round trip whose client
side (psycopg's statement, the socket write that wakes the server, the wait) costs the API
process more than the statement costs the server. :class:`Coalescer` sends the look-ups that
arrive while a look-up of the same group (the same window) is in flight as one statement when
it returns, as a DataLoader does: a lone request is read at once, exactly as before; under load
one round trip answers several requests. Every answer still comes from a read that started
after its request arrived, so nothing read is older than the request.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")
#: ``read(group, keys) -> {key: value}``: one statement for all ``keys`` of ``group``; a key
#: missing from the answer gets the coalescer's ``missing`` value
Read = Callable[[Hashable, list[K]], Awaitable[dict[K, V]]]


class Coalescer(Generic[K, V]):
    """Look-ups of ``key`` in ``group`` (:meth:`get`), read by ``read`` (see :data:`Read`) at
    most ``limit`` keys at a time, one read in flight per group. Used from one event loop."""

    def __init__(self, read: Read[K, V], missing: Callable[[], V], limit: int = 100) -> None:
        self._read, self._missing, self.limit = read, missing, limit
        self._waiting: dict[Hashable, dict[K, list[asyncio.Future[V]]]] = {}
        self._busy: set[Hashable] = set()
        self._tasks: set[asyncio.Task[None]] = set()

    async def get(self, group: Hashable, key: K) -> V:
        """The value of ``key``: read now when no read of ``group`` is in flight, else in the
        next read of ``group``, together with every key asked for meanwhile. Raises what
        ``read`` raises (each waiter of a failed read gets its exception)."""
        if group in self._busy:
            future: asyncio.Future[V] = asyncio.get_running_loop().create_future()
            self._waiting.setdefault(group, {}).setdefault(key, []).append(future)
            return await future
        self._busy.add(group)
        try:
            return (await self._read_keys(group, [key]))[key]
        finally:
            self._next(group)

    async def _read_keys(self, group: Hashable, keys: list[K]) -> dict[K, V]:
        found = await self._read(group, keys)
        return {key: found[key] if key in found else self._missing() for key in keys}

    def _next(self, group: Hashable) -> None:
        """Start the read of what waits on ``group`` (the group stays busy), or free it."""
        waiting = self._waiting.get(group)
        if not waiting:
            self._waiting.pop(group, None)
            self._busy.discard(group)
            return
        batch = {key: waiting.pop(key) for key in list(waiting)[: self.limit]}
        task = asyncio.get_running_loop().create_task(self._serve(group, batch))
        self._tasks.add(task)  # a reference, so that the task is not collected mid-way
        task.add_done_callback(self._tasks.discard)

    async def _serve(self, group: Hashable, batch: dict[K, list[asyncio.Future[V]]]) -> None:
        try:
            found = await self._read_keys(group, list(batch))
        except BaseException as err:  # noqa: BLE001 - handed to every waiter, cancellation too
            for futures in batch.values():
                for future in futures:
                    if future.done():
                        continue
                    if isinstance(err, Exception):
                        future.set_exception(err)
                    else:
                        future.cancel()
            if not isinstance(err, Exception):
                raise
        else:
            for key, futures in batch.items():
                for future in futures:
                    if not future.done():  # a waiter cancelled meanwhile (its client left)
                        future.set_result(found[key])
        finally:
            self._next(group)
