"""The Alembic migrations build exactly the schema the models declare, on SQLite and on
PostgreSQL: same tables, columns, types, indexes and foreign keys (autogenerate finds nothing
to add or drop), and they downgrade to nothing and upgrade again."""

from __future__ import annotations

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from aggregator.store import account_tables, trends_tables  # noqa: F401  (its tables are part of the schema)
from aggregator.store.tables import Base


def _sqlite_inline_reference(diff: tuple) -> bool:
    """Migration 0010 declares ``feeds.added_by`` inline in ``ADD COLUMN`` on SQLite (see its
    docstring); SQLAlchemy's SQLite reflection does not read ``ON DELETE`` from an inline
    reference, so autogenerate reports it as a different foreign key. The test checks the real
    action with ``PRAGMA foreign_key_list`` instead."""
    if diff[0] not in ("add_fk", "remove_fk"):
        return False
    fk = diff[1]
    return fk.table.name == "feeds" and [c.name for c in fk.columns] == ["added_by"]


def _search_object(diff: object) -> bool:
    """The engine-specific full-text objects of migration 0050, not declared in the models:
    SQLite's ``items_fts`` FTS5 table (and its shadow tables), PostgreSQL's ``items.search``."""
    text = repr(diff)
    return "items_fts" in text or "ix_items_search" in text or ("'items'" in text and "'search'" in text)


def _sqlite_expression_index(diff: object) -> bool:
    """SQLAlchemy does not reflect SQLite's expression indexes (it warns and skips them), so
    autogenerate reports the model's ``uq_readers_email_lower`` (on ``lower(email)``) as
    missing; the test reads it from ``sqlite_master`` instead."""
    return "uq_readers_email_lower" in repr(diff)


@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based index")
def test_migrations_match_the_models(engine: sa.Engine) -> None:
    with engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True})
        diffs = compare_metadata(ctx, Base.metadata)
        diffs = [d for d in diffs if not _search_object(d)]
        if engine.dialect.name == "sqlite":
            diffs = [d for d in diffs if not _sqlite_inline_reference(d) and not _sqlite_expression_index(d)]
            index_sql = conn.exec_driver_sql(
                "SELECT sql FROM sqlite_master WHERE name = 'uq_readers_email_lower'"
            ).scalar_one()
            assert "UNIQUE" in index_sql and "lower(email)" in index_sql
            actions = conn.exec_driver_sql("PRAGMA foreign_key_list(feeds)").all()
            assert [(a[2], a[3], a[6]) for a in actions if a[3] == "added_by"] == [
                ("readers", "added_by", "SET NULL")
            ]
    assert diffs == []


def test_migrations_downgrade_and_upgrade_again(engine: sa.Engine) -> None:
    from alembic import command

    from aggregator.store.db import alembic_config, at_head, upgrade

    assert at_head(engine)
    command.downgrade(alembic_config(engine), "-1")
    assert not at_head(engine)  # one step behind: the start-up upgrade must run, not skip
    command.downgrade(alembic_config(engine), "base")
    assert set(sa.inspect(engine).get_table_names()) <= {"alembic_version"}
    assert not at_head(engine)
    upgrade(engine)
    assert at_head(engine)
    assert "scores" in sa.inspect(engine).get_table_names()
    assert {c["name"] for c in sa.inspect(engine).get_columns("scores")} >= {"run", "published"}
