"""The held read connection of an API process (see :class:`ReadConnection`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

import sqlalchemy as sa

T = TypeVar("T")


class ReadConnection:
    """The connection the request path reads the served digest through: one per process, held
    open in autocommit mode, used from the event loop only (one request at a time).

    A pooled checkout costs a liveness ping (``pool_pre_ping``) and, on PostgreSQL, ``BEGIN``
    and ``ROLLBACK``: three round trips around two queries. A held autocommit connection costs
    none of them, and psycopg prepares the repeated statements on it. When the connection
    fails (the server restarted, a network cut), it is dropped and the call retried once on a
    new one; any other error propagates."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine
        self._conn: sa.Connection | None = None

    def run(self, work: Callable[[sa.Connection], T]) -> T:
        """``work(connection)``, retried once on a fresh connection after a lost one.
        Raises what ``work`` raises (``sqlalchemy.exc.DBAPIError`` for database errors)."""
        for attempt in (1, 2):
            conn = self._conn
            if conn is None or conn.closed or conn.invalidated:
                conn = self._conn = self.engine.connect().execution_options(isolation_level="AUTOCOMMIT")
            try:
                return work(conn)
            except sa.exc.DBAPIError as err:
                if attempt == 2 or not err.connection_invalidated:
                    raise
                self.close()
        raise AssertionError("unreachable")

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()
