"""Where the served digest's rows come from: one interface, a synchronous and an async source.

:mod:`aggregator.digest.served` asks a :class:`RowSource` for the rows of a few statements at
a time (``await source.fetch([(statement, params), ...])``); the fast lane and the route of
``GET /api/me/digest`` both serve through the app's one source (``app.state.rows``):

* :class:`SyncRows` — the held autocommit connection of the process
  (:class:`aggregator.store.read_connection.ReadConnection`), statements run one after the
  other (on PostgreSQL in one psycopg pipeline). SQLite's reads are CPU in the process, with
  nothing to overlap, so SQLite always reads this way; PostgreSQL does with
  ``AGGREGATOR_READ_CONNECTIONS=0``.
* :class:`PoolRows` — PostgreSQL: ``psycopg_pool.AsyncConnectionPool`` of
  ``AGGREGATOR_READ_CONNECTIONS`` autocommit connections (opened and closed in the app's
  lifespan). The statements go in one pipeline and are awaited, so the event loop parses and
  answers other requests while the database works.

Both compile each statement once per dialect and hand it to the driver as it is
(:func:`driver_statement`): the request path skips SQLAlchemy's per-execution work. The rare
reads that need SQLAlchemy proper (a cache miss: the default day, a stale card) go through
``run`` on the held synchronous connection in both.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import sqlalchemy as sa

from aggregator.store.read_connection import ReadConnection

T = TypeVar("T")
#: statements with their parameters as the driver takes them (datetimes through
#: :func:`aggregator.store.db.dbapi_datetime`)
Queries = Sequence[tuple[sa.ClauseElement, dict[str, Any]]]


@dataclass(frozen=True, slots=True)
class _Compiled:
    sql: str
    names: tuple[str, ...] | None  # parameter order of a positional paramstyle; None: named
    literals: dict[str, Any]  # values of the parameters SQLAlchemy generated for literals


_compiled: dict[tuple[int, str], _Compiled] = {}


def _compile(dialect: sa.Dialect, stmt: sa.ClauseElement) -> _Compiled:
    key = (id(stmt), dialect.name)
    compiled = _compiled.get(key)
    if compiled is None:
        c: Any = stmt.compile(dialect=dialect)
        names = tuple(c.positiontup or ()) if c.positional else None
        literals = {name: b.value for name, b in c.binds.items() if not b.required}
        compiled = _compiled[key] = _Compiled(str(c), names, literals)
    return compiled


def driver_statement(dialect: sa.Dialect, stmt: sa.ClauseElement, params: dict[str, Any]) -> tuple[str, Any]:
    """``stmt`` as the driver runs it: its SQL (compiled once per dialect; ``stmt`` must be a
    module-level constant, since the cache is keyed by its id) and its arguments (a dict, or a
    list for a positional paramstyle), literals included."""
    compiled = _compile(dialect, stmt)
    if compiled.literals:
        params = {**compiled.literals, **params}
    return compiled.sql, params if compiled.names is None else [params[n] for n in compiled.names]


def fetch_sync(conn: sa.Connection, queries: Queries) -> list[list[Any]]:
    """The rows (DBAPI tuples) of each ``(statement, params)``, run on the connection's DBAPI
    cursor (on PostgreSQL in one psycopg pipeline: one round trip for all). A driver error is
    raised as ``sqlalchemy.exc.DBAPIError``, with the connection invalidated when it was lost."""
    dialect = conn.dialect
    fairy = conn.connection
    raw: Any = fairy.driver_connection
    cursors: list[Any] = []
    sql, args = "", None
    try:
        with raw.pipeline() if dialect.name == "postgresql" else contextlib.nullcontext():
            for stmt, params in queries:
                sql, args = driver_statement(dialect, stmt, params)
                cursors.append(raw.cursor())
                cursors[-1].execute(sql, args)
        return [list(c.fetchall()) for c in cursors]
    except dialect.loaded_dbapi.Error as err:
        lost = dialect.is_disconnect(err, fairy.dbapi_connection, cursors[-1] if cursors else None)
        if lost:
            conn.invalidate(err)
        raise sa.exc.DBAPIError.instance(
            sql, args, err, dialect.loaded_dbapi.Error, connection_invalidated=lost, dialect=dialect
        ) from err
    finally:
        for c in cursors:
            c.close()


class RowSource(Protocol):
    """What the served digest reads through (see the module docstring). ``engine``: the
    database's engine (its dialect names the SQL), ``one_statement``: whether several reads
    are better sent as one statement (a round trip costs more than the statement)."""

    engine: sa.Engine
    one_statement: bool

    async def fetch(self, queries: Queries) -> list[list[Any]]:
        """The rows of each ``(statement, params)``, in order. Raises
        ``sqlalchemy.exc.DBAPIError`` or ``psycopg.Error`` on a database error."""
        ...

    def run(self, work: Callable[[sa.Connection], T]) -> T:
        """``work(connection)`` on the held synchronous connection (SQLAlchemy reads)."""
        ...

    async def open(self) -> None:
        """Make the source ready, in the event loop that will use it."""
        ...

    async def close(self) -> None:
        """Close the source's connections."""
        ...


class SyncRows:
    """Rows read on the process's held synchronous connection (see the module docstring)."""

    one_statement = False

    def __init__(self, engine: sa.Engine, reads: ReadConnection | None = None) -> None:
        self.engine = engine
        self.reads = reads or ReadConnection(engine)

    async def open(self) -> None:
        pass  # the held connection is opened on first use

    async def fetch(self, queries: Queries) -> list[list[Any]]:
        return self.reads.run(lambda conn: fetch_sync(conn, queries))

    def run(self, work: Callable[[sa.Connection], T]) -> T:
        return self.reads.run(work)

    async def close(self) -> None:
        self.reads.close()


class PoolRows:
    """PostgreSQL rows awaited on a ``psycopg_pool.AsyncConnectionPool`` of ``size`` autocommit
    connections (see the module docstring); created closed, :meth:`open` in the running event
    loop. Several statements go in one pipeline, a single one is sent as it is. A request
    finding its connection lost (the server restarted, a network cut) is retried once on
    another; requests beyond ``size`` wait their turn, first come first served, at most
    ``timeout`` seconds (then ``psycopg_pool.PoolTimeout``)."""

    one_statement = True

    def __init__(
        self, engine: sa.Engine, size: int, reads: ReadConnection | None = None, timeout: float = 30.0
    ) -> None:
        from psycopg_pool import AsyncConnectionPool

        self.engine = engine
        self.reads = reads or ReadConnection(engine)
        url = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        self.pool = AsyncConnectionPool(
            url,
            min_size=size,
            max_size=size,
            kwargs={"autocommit": True},
            open=False,
            timeout=timeout,
            name="served-digest",
        )

    async def open(self) -> None:
        """Open the pool (its connections are made in the background)."""
        await self.pool.open()

    async def fetch(self, queries: Queries) -> list[list[Any]]:
        import psycopg

        statements = [driver_statement(self.engine.dialect, stmt, params) for stmt, params in queries]
        for attempt in (1, 2):
            conn = None
            try:
                async with self.pool.connection() as conn:
                    if len(statements) == 1:  # no pipeline to enter and sync for one statement
                        cursor = await conn.execute(*statements[0])
                        return [list(await cursor.fetchall())]
                    cursors = []
                    async with conn.pipeline():
                        for sql, args in statements:
                            cursors.append(conn.cursor())
                            await cursors[-1].execute(sql, args)
                    return [list(await c.fetchall()) for c in cursors]
            except psycopg.OperationalError:
                if attempt == 2 or conn is None or not conn.closed and not conn.broken:
                    raise  # the pool drops a lost connection when it comes back
        raise AssertionError("unreachable")

    def run(self, work: Callable[[sa.Connection], T]) -> T:
        return self.reads.run(work)

    async def close(self) -> None:
        await self.pool.close()
        self.reads.close()


def row_source(engine: sa.Engine, read_connections: int) -> SyncRows | PoolRows:
    """The app's row source: :class:`PoolRows` of ``read_connections`` on PostgreSQL when that
    is above 0, else :class:`SyncRows`."""
    if engine.dialect.name == "postgresql" and read_connections > 0:
        return PoolRows(engine, read_connections)
    return SyncRows(engine)
