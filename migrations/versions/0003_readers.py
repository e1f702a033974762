"""readers, profiles, topic filters, subscriptions, feedback

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-21 13:04:31.225036
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "readers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False),
        sa.Column("feed_token_hash", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("weekly_email", sa.Boolean(), nullable=False),
        sa.Column("email_weekday", sa.Integer(), nullable=False),
        sa.Column("email_time", sa.String(length=5), nullable=False),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("email_bounced", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("email"),
        sa.UniqueConstraint("feed_token_hash"),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_table(
        "feedback",
        sa.Column("reader_id", sa.Integer(), nullable=False),
        sa.Column("item_id", sa.Integer(), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["item_id"], ["items.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["reader_id"], ["readers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("reader_id", "item_id"),
    )
    op.create_table(
        "profiles",
        sa.Column("reader_id", sa.Integer(), nullable=False),
        sa.Column("interests", sa.Text(), nullable=False),
        sa.Column("keywords", sa.JSON(), nullable=False),
        sa.Column("muted", sa.JSON(), nullable=False),
        sa.Column("followed_authors", sa.JSON(), nullable=False),
        sa.Column("include_categories", sa.JSON(), nullable=False),
        sa.Column("exclude_categories", sa.JSON(), nullable=False),
        sa.Column("include_sources", sa.JSON(), nullable=False),
        sa.Column("exclude_sources", sa.JSON(), nullable=False),
        sa.Column("seed_papers", sa.JSON(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["reader_id"], ["readers.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("reader_id"),
    )
    op.create_table(
        "topics",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("slug", sa.String(length=100), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("phrases", sa.JSON(), nullable=False),
        sa.Column("categories", sa.JSON(), nullable=False),
        sa.Column("authors", sa.JSON(), nullable=False),
        sa.Column("sources", sa.JSON(), nullable=False),
        sa.Column("negative", sa.JSON(), nullable=False),
        sa.Column("match", sa.String(length=3), nullable=False),
        sa.Column("created_by", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["created_by"], ["readers.id"], ondelete="SET NULL"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("slug"),
    )
    op.create_table(
        "subscriptions",
        sa.Column("reader_id", sa.Integer(), nullable=False),
        sa.Column("topic_id", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["reader_id"], ["readers.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["topic_id"], ["topics.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("reader_id", "topic_id"),
    )
    with op.batch_alter_table("scores", schema=None) as batch_op:
        batch_op.add_column(sa.Column("topics", sa.JSON(), nullable=True))
        batch_op.add_column(sa.Column("authors", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("scores", schema=None) as batch_op:
        batch_op.drop_column("authors")
        batch_op.drop_column("topics")

    op.drop_table("subscriptions")
    op.drop_table("topics")
    op.drop_table("profiles")
    op.drop_table("feedback")
    op.drop_table("readers")
