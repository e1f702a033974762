"""topics.shared: a reader's topic filter is private to its owner until shared; the filters
stored before (built-in ones and readers' ones, all public until now) stay shared

Revision ID: 0080
Revises: 0042
"""

import sqlalchemy as sa
from alembic import op

revision = "0080"
down_revision = "0042"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("topics", sa.Column("shared", sa.Boolean(), nullable=False, server_default=sa.true()))


def downgrade() -> None:
    # not batch mode: copying topics would cascade the drop of the old table into subscriptions
    op.execute("ALTER TABLE topics DROP COLUMN shared")  # SQLite >= 3.35 and PostgreSQL
