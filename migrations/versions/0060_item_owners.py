"""item_owners: the feed that owns each item (trust model, issue 14 finding 1)

Existing items are given to the feed that announced them first (lowest item_sources.id).

Revision ID: 0060
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0060"
down_revision = "0050"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "item_owners",
        sa.Column("item_id", sa.Integer(), sa.ForeignKey("items.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("feed_id", sa.Integer(), sa.ForeignKey("feeds.id", ondelete="SET NULL"), nullable=True),
    )
    op.create_index("ix_item_owners_feed_id", "item_owners", ["feed_id"])
    op.execute(
        "INSERT INTO item_owners (item_id, feed_id) "
        "SELECT s.item_id, s.feed_id FROM item_sources s "
        "WHERE s.id = (SELECT MIN(t.id) FROM item_sources t WHERE t.item_id = s.item_id)"
    )


def downgrade() -> None:
    op.drop_index("ix_item_owners_feed_id", table_name="item_owners")
    op.drop_table("item_owners")
