"""feeds added by readers: feeds.added_by and feeds.reader_added

Revision ID: 0010
Revises: 0009

``added_by`` is the reader who added the feed (``POST /api/me/feeds``), set to NULL if that
reader account is deleted; ``reader_added`` stays true for such a feed, which is fetched
through the SSRF guard and kept scheduled when ``feeds.toml`` is synced.

SQLite cannot add a foreign key with ``ALTER TABLE ... ADD CONSTRAINT``, and a batch copy of
``feeds`` would drop the table, which (foreign keys on) cascades to ``item_sources``. So on
SQLite the reference is declared inline in ``ADD COLUMN`` (allowed for a column whose default
is NULL); PostgreSQL gets an ordinary named constraint.
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("ALTER TABLE feeds ADD COLUMN added_by INTEGER REFERENCES readers (id) ON DELETE SET NULL")
    else:
        op.add_column("feeds", sa.Column("added_by", sa.Integer(), nullable=True))
        op.create_foreign_key(
            "feeds_added_by_fkey", "feeds", "readers", ["added_by"], ["id"], ondelete="SET NULL"
        )
    op.add_column("feeds", sa.Column("reader_added", sa.Boolean(), nullable=False, server_default=sa.false()))
    op.create_index("ix_feeds_added_by", "feeds", ["added_by"])


def downgrade() -> None:
    op.drop_index("ix_feeds_added_by", table_name="feeds")
    op.drop_column("feeds", "reader_added")
    if op.get_bind().dialect.name != "sqlite":
        op.drop_constraint("feeds_added_by_fkey", "feeds", type_="foreignkey")
    op.drop_column("feeds", "added_by")  # SQLite 3.35+ drops a column with an inline reference
