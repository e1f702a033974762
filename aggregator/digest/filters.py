"""Filters shared by every digest and by search: category, source, kind, venue, code, unread.

Each filter is one SQL condition on ``items`` (no Python pass over rows):

* ``categories`` — any of them among the item's arXiv categories, cross-lists included
  (``items.categories`` holds the primary and every cross-listed category);
* ``sources`` — announced by any of these feeds (``feeds.id``), through ``item_sources``;
* ``kind`` — ``paper`` or ``post``;
* ``venue`` — the extracted venue (``items.venue``, case-insensitive) and ``has_code`` — a code
  link was found (``items.has_code``): both columns come with the library work (issue 13); on a
  database without them a venue filter matches nothing and ``has_code`` matches nothing;
* ``unread`` — not marked read by the reader (the read-state table of issue 13's library work,
  see :data:`READ_TABLES`); without that table every item is unread.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa

from aggregator.store.tables import Base, Item, ItemSource

#: The read-state table of the library work (``read_marks``: ``reader_id``, ``item_id``; issue 13 part A).
READ_TABLES = ("read_marks",)


@dataclass(frozen=True, slots=True)
class DigestFilters:
    """What to keep; empty fields keep everything."""

    categories: tuple[str, ...] = ()
    sources: tuple[int, ...] = ()
    kind: str | None = None
    venue: str | None = None
    has_code: bool = False
    unread: bool = False

    def active(self) -> bool:
        return bool(
            self.categories or self.sources or self.kind or self.venue or self.has_code or self.unread
        )

    def key(self) -> tuple[object, ...]:
        """A JSON-able identity of the filters (part of a cursor's fingerprint)."""
        return (
            sorted(self.categories),
            sorted(self.sources),
            self.kind,
            self.venue,
            self.has_code,
            self.unread,
        )


def _categories_condition(categories: tuple[str, ...], dialect: str) -> sa.ColumnElement[bool]:
    cats = sorted(set(categories))
    if dialect == "postgresql":
        return sa.text("CAST(items.categories AS JSONB) ?| CAST(:filter_cats AS TEXT[])").bindparams(
            sa.bindparam("filter_cats", cats)
        )  # type: ignore[return-value]
    return sa.text(
        "EXISTS (SELECT 1 FROM json_each(items.categories) WHERE json_each.value IN :filter_cats)"
    ).bindparams(sa.bindparam("filter_cats", cats, expanding=True))  # type: ignore[return-value]


def read_table() -> sa.Table | None:
    """The read-state table, when this schema has one (see :data:`READ_TABLES`)."""
    for name in READ_TABLES:
        table = Base.metadata.tables.get(name)
        if table is not None and "reader_id" in table.c and "item_id" in table.c:
            return table
    return None


def conditions(
    filters: DigestFilters, dialect: str, reader_id: int | None = None
) -> list[sa.ColumnElement[bool]]:
    """The SQL conditions on ``items`` of ``filters`` (``reader_id``: whose read state
    ``unread`` means; ignored without a reader)."""
    out: list[sa.ColumnElement[bool]] = []
    if filters.categories:
        out.append(_categories_condition(filters.categories, dialect))
    if filters.sources:
        out.append(
            sa.exists().where(
                ItemSource.item_id == Item.id, ItemSource.feed_id.in_(sorted(set(filters.sources)))
            )
        )
    if filters.kind:
        out.append(Item.kind == filters.kind)
    venue = getattr(Item, "venue", None)
    if filters.venue:
        out.append(sa.false() if venue is None else sa.func.lower(venue) == filters.venue.lower())
    has_code = getattr(Item, "has_code", None)
    if filters.has_code:
        out.append(sa.false() if has_code is None else has_code.is_(True))
    reads = read_table()
    if filters.unread and reader_id is not None and reads is not None:
        out.append(~sa.exists().where(reads.c.item_id == Item.id, reads.c.reader_id == reader_id))
    return out
