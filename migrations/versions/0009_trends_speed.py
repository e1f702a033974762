"""trends: trend_results.inputs, so that a refresh skips the scopes whose inputs did not change

Revision ID: 0009
Revises: 0008

``trend_results.inputs`` is a digest of what a stored result was computed from (the scope's day
totals over the window and baseline, the paper-post links, the window items' last update, the
algorithm's version); ``aggregator.trends.refresh_results``, run after every ingest, recomputes a
scope only when the digest of its latest result differs. NULL for results stored before this
revision (they are recomputed on the next refresh).
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("trend_results") as batch:
        batch.add_column(sa.Column("inputs", sa.String(length=64), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("trend_results") as batch:
        batch.drop_column("inputs")
