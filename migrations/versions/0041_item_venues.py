"""items: venue, venue_year, venue_workshop, venue_label, has_code, links, journal_ref,
enriched_at (aggregator.feeds.venues); filled for the stored items from their comments and abstracts

Revision ID: 0041
Revises: 0040
"""

import sqlalchemy as sa
from alembic import op

revision = "0041"
down_revision = "0040"
branch_labels = None
depends_on = None

#: items read and updated per step of the backfill
BATCH = 5000


def upgrade() -> None:
    # plain ADD COLUMN (SQLite supports it): batch mode would copy the table, and dropping the
    # old items table would cascade into every table referencing it (scores, feedback, …)
    for column in (
        sa.Column("venue", sa.String(32), nullable=True),
        sa.Column("venue_year", sa.Integer(), nullable=True),
        sa.Column("venue_workshop", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("venue_label", sa.String(80), nullable=True),
        sa.Column("has_code", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column("links", sa.JSON(), nullable=True),
        sa.Column("journal_ref", sa.Text(), nullable=True),
        sa.Column("enriched_at", sa.DateTime(timezone=True), nullable=True),
    ):
        op.add_column("items", column)
    op.create_index("ix_items_venue", "items", ["venue"])
    backfill(op.get_bind())


def backfill(conn: sa.Connection) -> None:
    """Extract venues and code links of every stored item (keyset over ids, BATCH at a time);
    the cards of changed items are marked stale so that the worker rebuilds them."""
    from aggregator.feeds.venues import extract  # pure: no database or settings

    items = sa.table(
        "items",
        sa.column("id"),
        sa.column("comment"),
        sa.column("summary"),
        sa.column("card"),
        *[sa.column(c) for c in ("venue", "venue_year", "venue_workshop", "venue_label", "has_code")],
        sa.column("links", sa.JSON()),
    )
    update = (
        items.update()
        .where(items.c.id == sa.bindparam("item_id"))
        .values(
            **{
                c: sa.bindparam(c)
                for c in ("venue", "venue_year", "venue_workshop", "venue_label", "has_code", "links")
            },
            card=None,
        )
    )
    last = 0
    while True:
        rows = conn.execute(
            sa.select(items.c.id, items.c.comment, items.c.summary)
            .where(items.c.id > last)
            .order_by(items.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        last = rows[-1].id
        changes = []
        for r in rows:
            cols = extract(r.comment, None, r.summary).columns()
            if cols["venue"] or cols["links"]:
                changes.append({"item_id": r.id, **cols})
        if changes:
            conn.execute(update, changes)


def downgrade() -> None:
    op.drop_index("ix_items_venue", "items")
    for name in (
        "enriched_at",
        "journal_ref",
        "links",
        "has_code",
        "venue_label",
        "venue_workshop",
        "venue_year",
        "venue",
    ):
        op.execute(f"ALTER TABLE items DROP COLUMN {name}")  # SQLite >= 3.35 and PostgreSQL
