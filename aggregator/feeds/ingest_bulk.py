"""The two bulk inserts of :func:`aggregator.feeds.ingest.write_entries`, through the DBAPI
cursor: ``INSERT … ON CONFLICT DO NOTHING RETURNING …``, multi-row ``VALUES`` on SQLite, and
one single-row statement pipelined by psycopg's ``executemany(returning=True)`` on PostgreSQL.

The same statements SQLAlchemy Core compiles for ``insert().on_conflict_do_nothing()
.returning()``, without its per-row bind processing (a third of a first fetch's CPU time on an
arXiv listing): datetimes are given as :func:`aggregator.store.db.dbapi_datetime` gives them
(the text SQLAlchemy stores on SQLite), JSON columns as the text ``sa.JSON`` stores
(:func:`json.dumps`; cast to ``json`` on PostgreSQL). ``RETURNING`` gives only the rows this
statement inserted, as before. SQLite ≥ 3.35 and PostgreSQL.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa

from aggregator.store.db import dbapi_datetime

#: rows per statement: 19 columns × 400 = 7,600 parameters, well under SQLite's 32,766
_ROWS = 400
_JSON = frozenset({"authors", "categories"})


def _marks(conn: sa.Connection, columns: Sequence[str]) -> str:
    if conn.dialect.name == "sqlite":
        return "(" + ", ".join("?" for _ in columns) + ")"
    return "(" + ", ".join("CAST(%s AS json)" if c in _JSON else "%s" for c in columns) + ")"


def _value(dialect: str, column: str, value: Any) -> Any:
    if column in _JSON:
        return json.dumps(value)
    if isinstance(value, dt.datetime):
        return dbapi_datetime(dialect, value)
    return value


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
    marks = _marks(conn, columns)
    head = f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
    tail = f" ON CONFLICT DO NOTHING RETURNING {returning}"
    cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    out: list[Any] = []
    try:
        if dialect == "postgresql":  # one statement, pipelined: psycopg parses a long query in Python
            params = [[_value(dialect, c, r[c]) for c in columns] for r in rows]
            cur.executemany(head + marks + tail, params, returning=True)
            while True:
                out.extend(r[0] for r in cur.fetchall())
                if not cur.nextset():
                    break
            return out
        for start in range(0, len(rows), _ROWS):
            chunk = rows[start : start + _ROWS]
            params = [_value(dialect, c, r[c]) for r in chunk for c in columns]
            cur.execute(head + ", ".join([marks] * len(chunk)) + tail, params)
            out.extend(r[0] for r in cur.fetchall())
    finally:
        cur.close()
    return out
