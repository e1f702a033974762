"""items: venues extracted again with the rules revised after the held-out evaluation
(aggregator.feeds.venues; workshops named by acronym, full conference names, years written
before the name); data only

Revision ID: 0042
Revises: 0041
"""

import sqlalchemy as sa
from alembic import op

revision = "0042"
down_revision = "0060"
branch_labels = None
depends_on = None

#: items read per step (keyset over ids)
BATCH = 5000
VENUE_COLUMNS = ("venue", "venue_year", "venue_workshop", "venue_label")


def upgrade() -> None:
    """Re-extract the venue of every item with a comment or journal reference; write and mark
    the card stale only where the venue changed."""
    from aggregator.feeds.venues import extract  # pure: no database or settings

    conn = op.get_bind()
    items = sa.table(
        "items",
        sa.column("id"),
        sa.column("comment"),
        sa.column("journal_ref"),
        sa.column("card"),
        *[sa.column(c) for c in VENUE_COLUMNS],
    )
    update = (
        items.update()
        .where(items.c.id == sa.bindparam("item_id"))
        .values(**{c: sa.bindparam(c) for c in VENUE_COLUMNS}, card=None)
    )
    has_text = sa.or_(items.c.comment.is_not(None), items.c.journal_ref.is_not(None))
    last = 0
    while True:
        rows = conn.execute(
            sa.select(items.c.id, items.c.comment, items.c.journal_ref, *[items.c[c] for c in VENUE_COLUMNS])
            .where(items.c.id > last, has_text)
            .order_by(items.c.id)
            .limit(BATCH)
        ).all()
        if not rows:
            return
        last = rows[-1].id
        changes = []
        for r in rows:
            cols = extract(r.comment, r.journal_ref).columns()
            new = {c: cols[c] for c in VENUE_COLUMNS}
            if new != {
                c: (bool(r.venue_workshop) if c == "venue_workshop" else getattr(r, c)) for c in VENUE_COLUMNS
            }:
                changes.append({"item_id": r.id, **new})
        if changes:
            conn.execute(update, changes)


def downgrade() -> None:
    """Nothing to undo: the columns stay; the venues are those of the newer rules."""
