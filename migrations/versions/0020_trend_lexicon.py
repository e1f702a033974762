"""trend_lexicon: the learned lexicon of reportable trend terms (issue 16)

Revision ID: 0020
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0020"
down_revision = "0013"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "trend_lexicon",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("n_docs", sa.Integer(), nullable=False),
        sa.Column("through", sa.Date(), nullable=False),
        sa.Column("learned_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("trend_lexicon")
