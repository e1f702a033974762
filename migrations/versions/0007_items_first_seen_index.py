"""items: index on first_seen_at (the scheduler asks for the newest one every tick)

Revision ID: 0007
Revises: 0006
"""

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_items_first_seen_at", "items", ["first_seen_at"])


def downgrade() -> None:
    op.drop_index("ix_items_first_seen_at", table_name="items")
