"""Item cards: each item's public digest fields, stored once as JSON text in ``items.card``.

A card is the JSON object a digest shows for an item before anything reader-specific is added:
``id``, ``title``, ``url``, ``authors``, ``source`` (the feed that announced it first),
``sources`` (every feed that announced it), ``kind``, ``categories``, ``published`` (UTC,
ISO 8601 with ``Z``), ``arxiv_id`` and ``discussed_in`` (blog posts linking the paper) — the
fields of ``aggregator.api.schemas.DigestItem`` other than ``score`` and ``why``, in the same
encoding as pydantic's. The request path (:mod:`aggregator.digest.served`) appends a reader's score,
``why``, topics and vote to the card's text, so serving a digest costs string joins, not one
object per field.

``card IS NULL`` means "stale": whatever changes what a card shows sets it to NULL
(:func:`invalidate`) — ingest for new and updated items and for items announced by one more
feed, the paper ↔ post linker for papers that gained a post, a renamed feed for its items —
and :func:`fill_missing` (the worker, after each ingest) rebuilds the missing ones, newest
first, through the partial index ``ix_items_card_missing``. Readers of a NULL card build it on
the fly (:func:`build_cards`) without writing, so a stale card is never served.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from aggregator.store.tables import Item

#: the items columns :func:`links_fields` reads
LINK_COLUMNS = (Item.venue, Item.venue_year, Item.venue_workshop, Item.venue_label, Item.has_code, Item.links)
#: the items columns a card shows (the digest entries add ``summary``:
#: :data:`aggregator.digest.public.ITEM_COLUMNS`)
CARD_COLUMNS = (
    Item.id,
    Item.title,
    Item.url,
    Item.authors,
    Item.kind,
    Item.categories,
    Item.published,
    Item.arxiv_id,
    *LINK_COLUMNS,
)

#: Items per batch when filling cards: one read of items, sources and links, one UPDATE.
FILL_BATCH = 2000


def json_text(value: Any) -> str:
    """Compact JSON text (UTF-8 kept as is), as the served digest is written."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def utc_text(value: dt.datetime) -> str:
    """``2026-06-30T04:00:00Z``: UTC in ISO 8601, as pydantic writes an aware datetime."""
    return value.astimezone(dt.UTC).replace(tzinfo=None).isoformat() + "Z"


def card_text(
    *,
    id: int,
    title: str,
    url: str | None,
    authors: Sequence[str],
    sources: Sequence[str],
    kind: str,
    categories: Sequence[str],
    published: dt.datetime,
    arxiv_id: str | None,
    discussed_in: int,
    extra: dict[str, Any] | None = None,
) -> str:
    """The card of one item (a JSON object as text). ``published`` must be timezone-aware."""
    return json_text(
        {
            "id": id,
            "title": title,
            "url": url,
            "authors": list(authors),
            "source": sources[0] if sources else "unknown",
            "sources": list(sources),
            "kind": kind,
            "categories": list(categories),
            "published": utc_text(published),
            "arxiv_id": arxiv_id,
            "discussed_in": discussed_in,
            **(extra or {}),
        }
    )


def build_cards(session: Session, item_ids: Sequence[int]) -> dict[int, str]:
    """Cards of the given items, built from ``items``, ``item_sources``/``feeds`` and
    ``item_links`` (unknown ids are absent). Reads only: three queries per 500 ids."""
    from aggregator.store.queries import discussed_in, item_sources

    out: dict[int, str] = {}
    ids = list(dict.fromkeys(int(i) for i in item_ids))
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        rows = session.execute(sa.select(*CARD_COLUMNS).where(Item.id.in_(chunk))).all()
        sources = item_sources(session, chunk)
        discussed = discussed_in(session, chunk)
        for r in rows:
            out[r.id] = card_text(
                id=r.id,
                title=r.title,
                url=r.url,
                authors=r.authors or [],
                sources=sources.get(r.id, []),
                kind=r.kind,
                categories=r.categories or [],
                published=r.published,
                arxiv_id=r.arxiv_id,
                discussed_in=discussed.get(r.id, 0),
                extra=links_fields(r),
            )
    return out


def _claim_stale(session: Session, n: int) -> list[int]:
    """Ids of up to ``n`` items with a stale card, newest first, locked against a concurrent
    invalidation until the caller commits: ``FOR UPDATE SKIP LOCKED`` on PostgreSQL (rows
    another filler holds are skipped); on SQLite the database's write lock, taken first by a
    no-op ``UPDATE``. Without the lock, an ingest committing between our read and our write
    would have its ``card = NULL`` overwritten by a card built from the old row."""
    query = (
        sa.select(Item.id).where(Item.card.is_(None)).order_by(Item.published.desc(), Item.id.desc()).limit(n)
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    else:
        session.execute(sa.text("UPDATE items SET card = NULL WHERE 0"))
    return list(session.scalars(query))


def fill_missing(session: Session, limit: int | None = 20_000, batch: int = FILL_BATCH) -> int:
    """Build and store the missing (stale) cards, newest items first, at most ``limit`` (None:
    all). Each batch is its own transaction (committed here), with its rows locked while their
    cards are built (:func:`_claim_stale`), so a large backlog — every item after the
    migration that added cards — is worked off in steps, and several workers can fill at once.
    Returns how many cards were written."""
    write = (
        sa.update(Item)
        .where(Item.id == sa.bindparam("item_id"), Item.card.is_(None))
        .values(card=sa.bindparam("card_text"))
    )
    written = 0
    while limit is None or written < limit:
        n = batch if limit is None else min(batch, limit - written)
        ids = _claim_stale(session, n)
        if not ids:
            session.rollback()
            break
        cards = build_cards(session, ids)
        if cards:
            session.connection().execute(
                write, [{"item_id": i, "card_text": text} for i, text in cards.items()]
            )
        session.commit()
        written += len(cards)
        if len(ids) < n:
            break
    return written


def links_fields(r: Any) -> dict[str, Any]:
    """The card fields of issue 13: ``abs_url``/``pdf_url`` (arXiv papers), ``venue``,
    ``venue_year``, ``venue_workshop``, ``venue_label``, ``has_code`` and ``links``
    (``[{"kind": "code"|"project", "url"}]``), from a row with the ``items`` columns."""
    abs_url = f"https://arxiv.org/abs/{r.arxiv_id}" if r.arxiv_id else None
    return {
        "abs_url": abs_url,
        "pdf_url": f"https://arxiv.org/pdf/{r.arxiv_id}" if r.arxiv_id else None,
        "venue": r.venue,
        "venue_year": r.venue_year,
        "venue_workshop": bool(r.venue_workshop),
        "venue_label": r.venue_label,
        "has_code": bool(r.has_code),
        "links": r.links or [],
    }
