"""rescore_requests: readers whose scores the workers must recompute (``aggregator api`` never
scores: it queues the reader after a vote, a subscription or a profile change)

Revision ID: 0011
Revises: 0010
"""

import sqlalchemy as sa
from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rescore_requests",
        sa.Column("reader_id", sa.Integer(), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("around", sa.DateTime(timezone=True), nullable=True),
        sa.Column("seeds", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.ForeignKeyConstraint(["reader_id"], ["readers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("reader_id"),
    )


def downgrade() -> None:
    op.drop_table("rescore_requests")
