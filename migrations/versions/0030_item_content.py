"""items.content_html: an entry's full content, kept beside its summary (issue 15)

A post with both a summary and full content keeps the summary in ``summary``/``summary_html``
(the digest) and the sanitised full content here (item page, search).

Revision ID: 0030
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision = "0020"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("content_html", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.drop_column("content_html")
