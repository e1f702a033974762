"""similar_items: stored "more like this" neighbours per item, computed by a worker

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "similar_items",
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.Integer(), nullable=True),
        sa.Column("neighbours", sa.JSON(), nullable=True),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("item_id"),
    )
    op.create_index(
        "ix_similar_items_requested",
        "similar_items",
        ["requested_at"],
        sqlite_where=sa.text("requested_at IS NOT NULL"),
        postgresql_where=sa.text("requested_at IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_similar_items_requested", table_name="similar_items")
    op.drop_table("similar_items")
