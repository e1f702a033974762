"""served digest: items.card (the item's digest JSON, NULL when stale); scores.muted and
scores.published (a copy of the item's immutable publication time, so a reader's rows of one
day are one index range)

Revision ID: 0008
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("items") as batch:
        batch.add_column(sa.Column("card", sa.Text(), nullable=True))
    # the items whose card must be (re)built, newest first: every existing item at first
    op.create_index(
        "ix_items_card_missing",
        "items",
        ["published"],
        sqlite_where=sa.text("card IS NULL"),
        postgresql_where=sa.text("card IS NULL"),
    )
    with op.batch_alter_table("scores") as batch:
        batch.add_column(sa.Column("muted", sa.Boolean(), nullable=False, server_default=sa.false()))
        batch.add_column(sa.Column("published", sa.DateTime(timezone=True), nullable=True))
    op.execute(
        "UPDATE scores SET published = (SELECT items.published FROM items WHERE items.id = scores.item_id)"
    )
    with op.batch_alter_table("scores") as batch:
        batch.alter_column("published", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch.drop_index("ix_scores_profile_score")
        batch.create_index("ix_scores_profile_published", ["profile", "published"])


def downgrade() -> None:
    with op.batch_alter_table("scores") as batch:
        batch.drop_index("ix_scores_profile_published")
        batch.create_index("ix_scores_profile_score", ["profile", "score"])
        batch.drop_column("published")
        batch.drop_column("muted")
    op.drop_index("ix_items_card_missing", table_name="items")
    with op.batch_alter_table("items") as batch:
        batch.drop_column("card")
