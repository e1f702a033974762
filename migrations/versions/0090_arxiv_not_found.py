"""arxiv_not_found: arXiv ids the API returned no entry for, so a save naming them again does
not ask again for a day (issue 14 finding 7)

Revision ID: 0090
Revises: 0042
"""

import sqlalchemy as sa
from alembic import op

revision = "0090"
down_revision = "0070"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "arxiv_not_found",
        sa.Column("arxiv_id", sa.String(length=64), nullable=False),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("arxiv_id"),
    )


def downgrade() -> None:
    op.drop_table("arxiv_not_found")
