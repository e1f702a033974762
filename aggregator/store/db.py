"""Engine set-up and migrations, for SQLite (embedded default, WAL mode) and PostgreSQL."""

from __future__ import annotations

import datetime as dt
import functools
import importlib.resources
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import make_url
from sqlalchemy.orm import Session, sessionmaker


class DatabaseError(RuntimeError):
    """The database cannot be reached or migrated; the message names the URL (without password)."""


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.close()


def normalise_url(url: str) -> str:
    """Accept ``postgresql://`` and ``postgres://`` URLs and use the psycopg 3 driver for them."""
    for prefix in ("postgres://", "postgresql://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix) :]
    return url


def make_engine(url: str, **kwargs: Any) -> sa.Engine:
    """Create an engine. SQLite gets WAL mode, foreign keys and a 30 s busy timeout.

    The pool keeps 5 connections (40 for SQLite, where they are cheap and reopening one costs
    its PRAGMAs) and opens more when needed, without a cap
    (``max_overflow=-1``): FastAPI runs a sync endpoint and then its response validation in
    separate trips to a 40-thread pool, so a capped pool deadlocks under load once every thread
    waits for a connection held by a request that waits for a thread (seen under wrk at 64
    connections). On PostgreSQL the server's ``max_connections`` is then the limit to size.
    The parent folder of a SQLite file is created when missing.
    """
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).expanduser().parent.mkdir(parents=True, exist_ok=True)
        kwargs.setdefault("pool_size", 40)  # one per FastAPI worker thread: reused, not reopened
        kwargs.setdefault("max_overflow", -1)  # see below
        engine = sa.create_engine(url, connect_args={"check_same_thread": False}, **kwargs)
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    else:
        kwargs.setdefault("pool_pre_ping", True)
        kwargs.setdefault("max_overflow", -1)
        engine = sa.create_engine(url, **kwargs)
    return engine


def session_factory(engine: sa.Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def migrations_dir() -> Path:
    """The Alembic script folder: shipped inside the wheel, or ``migrations/`` of a checkout."""
    shipped = importlib.resources.files("aggregator") / "_migrations"
    if shipped.is_dir():
        return Path(str(shipped))
    checkout = Path(__file__).resolve().parents[2] / "migrations"
    if checkout.is_dir():
        return checkout
    raise DatabaseError("Alembic migrations not found (neither aggregator/_migrations nor ./migrations)")


def alembic_config(engine: sa.Engine) -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(migrations_dir()))
    cfg.attributes["engine"] = engine
    return cfg


@functools.cache
def _heads() -> frozenset[str]:
    """The head revisions of :func:`migrations_dir`'s scripts (read once per process)."""
    from alembic.script import ScriptDirectory

    return frozenset(ScriptDirectory(str(migrations_dir())).get_heads())


def at_head(engine: sa.Engine) -> bool:
    """Whether ``engine``'s database is at the newest migration (one read of
    ``alembic_version``). Raises :class:`sqlalchemy.exc.OperationalError` when unreachable."""
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        current = frozenset(MigrationContext.configure(conn).get_current_heads())
    return current == _heads()


def upgrade(engine: sa.Engine, revision: str = "head") -> None:
    """Run ``alembic upgrade`` to ``revision`` on ``engine``; a database already at head is
    only read (every app, worker and command start calls this: Alembic's own no-op upgrade
    loads every migration script, ~15 ms). Raises :class:`DatabaseError`."""
    from alembic import command

    try:
        if revision == "head" and at_head(engine):
            return
        command.upgrade(alembic_config(engine), revision)
    except sa.exc.OperationalError as err:
        url = engine.url.render_as_string(hide_password=True)
        raise DatabaseError(f"cannot migrate database {url}: {err.orig}") from err


def insert(engine_or_conn: sa.Engine | sa.Connection, table: Any) -> Any:
    """A dialect ``INSERT`` into ``table`` (a ``Table``, e.g. ``Model.__table__``) that supports
    ``on_conflict_do_nothing``/``on_conflict_do_update``. Raises :class:`DatabaseError` for a
    dialect other than SQLite or PostgreSQL."""
    dialect = engine_or_conn.dialect.name
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise DatabaseError(f"unsupported database dialect {dialect}")


def dbapi_datetime(dialect: str, value: dt.datetime) -> Any:
    """An aware datetime as the DBAPI driver takes it for a ``UTCDateTime`` column, for the few
    statements run on a raw cursor: on SQLite the text SQLAlchemy stores
    (``YYYY-MM-DD HH:MM:SS.ffffff``, UTC); on PostgreSQL the datetime itself (UTC)."""
    value = value.astimezone(dt.UTC)
    return value.replace(tzinfo=None).isoformat(" ", "microseconds") if dialect == "sqlite" else value
