"""The two bulk inserts of :func:`aggregator.feeds.ingest.write_entries`, through the DBAPI
cursor: ``INSERT … ON CONFLICT DO NOTHING RETURNING …``, multi-row ``VALUES`` on SQLite, and
one single-row statement pipelined by psycopg's ``executemany(returning=True)`` on PostgreSQL.

The same statements SQLAlchemy Core compiles for ``insert().on_conflict_do_nothing()
.returning()``, without its per-row bind processing (a third of a first fetch's CPU time on an
arXiv listing): datetimes are given as :func:`aggregator.store.db.dbapi_datetime` gives them
(the text SQLAlchemy stores on SQLite), JSON columns as the text ``sa.JSON`` stores
(:func:`json.dumps`; cast to ``json`` on PostgreSQL). ``RETURNING`` gives only the rows this
statement inserted (a row another writer inserted first is not returned). SQLite ≥ 3.35 and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from aggregator.store.db import dbapi_datetime
from aggregator.store.tables import Base, UTCDateTime

#: rows per statement: 19 columns × 400 = 7,600 parameters, well under SQLite's 32,766
_ROWS = 400


def _kinds(table: str) -> tuple[frozenset[str], frozenset[str]]:
    """The JSON and the UTC-datetime columns of ``table``, read from the ORM's metadata (one
    source for the column types, so a new column cannot be missed here)."""
    columns = Base.metadata.tables[table].columns
    json_cols = frozenset(c.name for c in columns if isinstance(c.type, sa.JSON))
    dt_cols = frozenset(c.name for c in columns if isinstance(c.type, UTCDateTime))
    return json_cols, dt_cols


def _marks(conn: sa.Connection, columns: Sequence[str], json_cols: frozenset[str]) -> str:
    if conn.dialect.name == "sqlite":
        return "(" + ", ".join("?" for _ in columns) + ")"
    return "(" + ", ".join("CAST(%s AS json)" if c in json_cols else "%s" for c in columns) + ")"


def _params(
    dialect: str, columns: Sequence[str], rows: Sequence[dict[str, Any]], table: str
) -> list[list[Any]]:
    """Each row's values in ``columns`` order, JSON columns as text (None stays NULL),
    datetime columns as the driver takes them (each distinct datetime converted once)."""
    json_cols, dt_cols = _kinds(table)
    json_at = [i for i, c in enumerate(columns) if c in json_cols]
    dt_at = [i for i, c in enumerate(columns) if c in dt_cols]
    done: dict[dt.datetime, Any] = {}
    out = []
    for r in rows:
        values = [r[c] for c in columns]
        for i in json_at:
            if values[i] is not None:
                values[i] = json.dumps(values[i])
        for i in dt_at:
            when = values[i]
            if when is not None:
                if when not in done:
                    done[when] = dbapi_datetime(dialect, when)
                values[i] = done[when]
        out.append(values)
    return out


def insert_returning(
    conn: sa.Connection, table: str, rows: Sequence[dict[str, Any]], returning: str
) -> list[Any]:
    """Insert ``rows`` (dicts with the same keys, Python values as the ORM takes them) into
    ``table`` with ``ON CONFLICT DO NOTHING``; returns the ``returning`` column of the rows
    inserted. Runs in the connection's transaction."""
    if not rows:
        return []
    columns = list(rows[0])
    dialect = conn.dialect.name
    marks = _marks(conn, columns, _kinds(table)[0])
    head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
    tail = f" ON CONFLICT DO NOTHING RETURNING {returning}"
    cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    out: list[Any] = []
    try:
        if dialect == "postgresql":  # one statement, pipelined: psycopg parses a long query in Python
            cur.executemany(head + marks + tail, _params(dialect, columns, rows, table), returning=True)
            while True:
                out.extend(r[0] for r in cur.fetchall())
                if not cur.nextset():
                    break
            return out
        params = _params(dialect, columns, rows, table)
        for start in range(0, len(rows), _ROWS):
            chunk = params[start : start + _ROWS]
            cur.execute(head + ", ".join([marks] * len(chunk)) + tail, [v for r in chunk for v in r])
            out.extend(r[0] for r in cur.fetchall())
    finally:
        cur.close()
    return out
