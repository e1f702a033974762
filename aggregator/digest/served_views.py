"""The reader's page (``/me``) and Atom feed built from the served digest: the same precomputed
score rows and stored item cards as ``GET /api/me/digest`` (:func:`aggregator.digest.served.serve_page`),
read through the app's one row source, so the three show the same items in the same order with
the same labels. What the served digest cannot answer (a reader without precomputed scores in
the window, a page the scores do not fill, filters, a later page of a cursor) goes to the
general path (:mod:`aggregator.digest.paged_reader`, :func:`aggregator.digest.personal.reader_digest`),
as it does for the API.

The routes of the pages are synchronous (they run in a worker thread with a database session);
:func:`served_digest` runs the async row source in the app's event loop from that thread
(``anyio.from_thread``) and returns plain records.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
from collections.abc import Sequence
from typing import Any
from zoneinfo import ZoneInfo

import anyio.from_thread

from aggregator.digest import personal, served
from aggregator.digest.public import Digest, DigestEntry, day_window
from aggregator.digest.row_source import RowSource
from aggregator.types import TopicFilter

#: the DigestEntry fields a card may fill (a card field the entry does not know is left out)
_CARD_FIELDS = frozenset(f.name for f in dataclasses.fields(DigestEntry)) - {"score", "why", "summary"}


def _utc(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.removesuffix("Z")).replace(tzinfo=dt.UTC)


def entry_of(card: bytes, score: float, why: str | None, summary: str) -> DigestEntry:
    """The digest entry of a served card (UTF-8 card text without its closing brace, see
    :mod:`aggregator.digest.cards`) with the reader's ``score`` and ``why`` (JSON text)."""
    fields: dict[str, Any] = {k: v for k, v in json.loads(card + b"}").items() if k in _CARD_FIELDS}
    fields["published"] = _utc(fields["published"])
    return DigestEntry(**fields, score=round(float(score), 4), why=json.loads(why or "[]"), summary=summary)


def reader_digest(
    page: served.ServedPage, tz: ZoneInfo, topics: Sequence[TopicFilter]
) -> personal.ReaderDigest:
    """The :class:`aggregator.digest.personal.ReaderDigest` of a served page (read with
    ``summaries=True``), labelled as the JSON answer is: the topic filters still subscribed
    to, the followed authors and the vote of each item. ``topics``: the reader's subscribed
    topic filters (their names and the grouping of the page)."""
    reader = page.reader
    items = []
    for score, why, topics_json, followed, item_id, _, _, _ in page.rows:
        card = page.cards.get(item_id)
        if card is None:  # deleted since it was ranked
            continue
        entry = entry_of(card, score, why, page.summaries.get(item_id) or "")
        slugs = json.loads(served.topics_text(topics_json, reader.subscribed))
        items.append(
            personal.ReaderEntry(
                entry,
                topics=slugs,
                followed_authors=json.loads(followed or "[]"),
                feedback=reader.votes.get(item_id, 0),
            )
        )
    start, end = day_window(page.day, page.days, tz)
    digest = Digest(page.day, page.days, start, end, page.total, [e.entry for e in items], ranked=True)
    hidden = int(page.rows[0][5] or 0)
    return personal.ReaderDigest(digest, f"reader:{reader.id}", items, hidden, list(topics))


def served_digest(
    source: RowSource,
    token_hash: str,
    tz: ZoneInfo,
    timezone: str,
    day: dt.date,
    days: int,
    limit: int,
    paging: served.Paging | None = None,
) -> served.ServedPage | None:
    """:func:`aggregator.digest.served.serve_page` with the abstracts, called from a worker
    thread of the app (a synchronous route): the page, or None when the general path must
    answer. Raises ``RuntimeError`` outside such a thread, and the row source's database
    errors."""
    _, page = anyio.from_thread.run(
        lambda: served.serve_page(
            source, token_hash, tz, timezone, day, days, limit, paging=paging, summaries=True
        )
    )
    return page
