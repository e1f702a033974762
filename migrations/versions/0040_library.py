"""library_items, library_tags and read_marks: a reader's saved items, tags, notes and read state

Revision ID: 0040
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

revision = "0040"
down_revision = "0031"
branch_labels = None
depends_on = None

UTC = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "library_items",
        sa.Column(
            "reader_id", sa.Integer(), sa.ForeignKey("readers.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("item_id", sa.Integer(), sa.ForeignKey("items.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("tags", sa.JSON(), nullable=False),
        sa.Column("note", sa.Text(), nullable=False),
        sa.Column("saved_at", UTC, nullable=False),
        sa.Column("updated_at", UTC, nullable=False),
    )
    op.create_index("ix_library_items_reader_saved", "library_items", ["reader_id", "saved_at", "item_id"])
    op.create_table(
        "library_tags",
        sa.Column("reader_id", sa.Integer(), primary_key=True),
        sa.Column("item_id", sa.Integer(), primary_key=True),
        sa.Column("tag", sa.String(64), primary_key=True),
        sa.ForeignKeyConstraint(
            ["reader_id", "item_id"],
            ["library_items.reader_id", "library_items.item_id"],
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_library_tags_reader_tag", "library_tags", ["reader_id", "tag"])
    op.create_table(
        "read_marks",
        sa.Column(
            "reader_id", sa.Integer(), sa.ForeignKey("readers.id", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("item_id", sa.Integer(), sa.ForeignKey("items.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("how", sa.String(8), nullable=False),
        sa.Column("read_at", UTC, nullable=False),
        sa.Column("published", UTC, nullable=False),
    )
    op.create_index("ix_read_marks_reader_published", "read_marks", ["reader_id", "published"])


def downgrade() -> None:
    op.drop_table("read_marks")
    op.drop_table("library_tags")
    op.drop_table("library_items")
