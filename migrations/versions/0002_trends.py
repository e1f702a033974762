"""trends: term statistics, trend results, paper-post links

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "terms",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("term", sa.String(length=200), nullable=False),
        sa.Column("first_all", sa.Integer(), nullable=True),
        sa.Column("first_cs_lg", sa.Integer(), nullable=True),
        sa.Column("first_cs_cv", sa.Integer(), nullable=True),
        sa.Column("first_cs_cl", sa.Integer(), nullable=True),
        sa.Column("first_blogs", sa.Integer(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("term"),
    )
    op.create_table(
        "term_counts",
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("n_terms", sa.Integer(), nullable=False),
        sa.Column("data", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "day"),
    )
    op.create_table(
        "trend_day_totals",
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("n_docs", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "day"),
    )
    op.create_table(
        "trend_counted",
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("item_id"),
    )
    op.create_table(
        "trend_results",
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("window_days", sa.Integer(), nullable=False),
        sa.Column("baseline_days", sa.Integer(), nullable=False),
        sa.Column("end_day", sa.Date(), nullable=False),
        sa.Column("is_latest", sa.Boolean(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.PrimaryKeyConstraint("scope", "window_days", "baseline_days", "end_day"),
    )
    op.create_table(
        "item_links",
        sa.Column("post_id", sa.Integer(), nullable=False),
        sa.Column("paper_id", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(length=8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["paper_id"], ["items.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["post_id"], ["items.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("post_id", "paper_id"),
    )
    with op.batch_alter_table("item_links", schema=None) as batch_op:
        batch_op.create_index("ix_item_links_paper", ["paper_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("item_links", schema=None) as batch_op:
        batch_op.drop_index("ix_item_links_paper")
    op.drop_table("item_links")
    op.drop_table("trend_results")
    op.drop_table("trend_counted")
    op.drop_table("trend_day_totals")
    op.drop_table("term_counts")
    op.drop_table("terms")
