"""items.content_html: an entry's full content, kept beside its summary (issue 15)

A post with both a summary and full content keeps the summary in ``summary``/``summary_html``
(the digest) and the sanitised full content here (item page, search).

Revision ID: 0030
Revises: 0020
"""

import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # plain ADD/DROP COLUMN (SQLite has both since 3.35): batch mode would copy the table, and
    # dropping the old items table cascades into every table referencing it (item_sources, ...)
    op.add_column("items", sa.Column("content_html", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("items", "content_html")
