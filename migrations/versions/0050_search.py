"""Full-text search over items (issue 13): SQLite FTS5, PostgreSQL tsvector + GIN.

SQLite: an external-content FTS5 table ``items_fts`` (title, summary, authors, arxiv_id;
tokenizer ``porter unicode61 remove_diacritics 2``) over ``items``, kept in sync by triggers
on insert, delete and on updates of those columns, and filled here from the existing rows.

PostgreSQL: a stored generated column ``items.search``: the title (weight A, English),
the authors (weight B, ``simple``: names are not stemmed), the arXiv id (weight A,
``simple``) and the abstract (weight C, English), with a GIN index. Generated columns are
computed by the server on every insert and update, and for the existing rows when added.

Neither is declared in :mod:`aggregator.store.tables` (they are engine-specific); see
:mod:`aggregator.search.engine`.

Revision ID: 0050
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0050"
down_revision = "0041"
branch_labels = None
depends_on = None

FTS_COLUMNS = "title, summary, authors, arxiv_id"

PG_DOCUMENT = (
    "setweight(to_tsvector('english'::regconfig, coalesce(title, '')), 'A') || "
    "setweight(to_tsvector('simple'::regconfig, coalesce(arxiv_id, '')), 'A') || "
    "setweight(to_tsvector('simple'::regconfig, coalesce(authors::text, '')), 'B') || "
    "setweight(to_tsvector('english'::regconfig, coalesce(summary, '')), 'C')"
)


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute(f"ALTER TABLE items ADD COLUMN search tsvector GENERATED ALWAYS AS ({PG_DOCUMENT}) STORED")
        op.execute("CREATE INDEX ix_items_search ON items USING gin (search)")
        return
    op.execute(
        f"CREATE VIRTUAL TABLE items_fts USING fts5({FTS_COLUMNS}, content='items', content_rowid='id', "
        "tokenize='porter unicode61 remove_diacritics 2')"
    )
    new = "new.title, new.summary, new.authors, new.arxiv_id"
    old = "old.title, old.summary, old.authors, old.arxiv_id"
    op.execute(
        "CREATE TRIGGER items_fts_insert AFTER INSERT ON items BEGIN "
        f"INSERT INTO items_fts(rowid, {FTS_COLUMNS}) VALUES (new.id, {new}); END"
    )
    op.execute(
        "CREATE TRIGGER items_fts_delete AFTER DELETE ON items BEGIN "
        f"INSERT INTO items_fts(items_fts, rowid, {FTS_COLUMNS}) VALUES ('delete', old.id, {old}); END"
    )
    op.execute(
        f"CREATE TRIGGER items_fts_update AFTER UPDATE OF {FTS_COLUMNS} ON items BEGIN "
        f"INSERT INTO items_fts(items_fts, rowid, {FTS_COLUMNS}) VALUES ('delete', old.id, {old}); "
        f"INSERT INTO items_fts(rowid, {FTS_COLUMNS}) VALUES (new.id, {new}); END"
    )
    op.execute("INSERT INTO items_fts(items_fts) VALUES ('rebuild')")


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        op.execute("DROP INDEX IF EXISTS ix_items_search")
        op.execute("ALTER TABLE items DROP COLUMN IF EXISTS search")
        return
    for trigger in ("items_fts_insert", "items_fts_delete", "items_fts_update"):
        op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
    op.execute("DROP TABLE IF EXISTS items_fts")
    _ = sa  # the module imports sqlalchemy like every migration
