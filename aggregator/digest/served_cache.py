"""The served digest's per-process caches (:mod:`aggregator.digest.served`), with their clock.

* small values (the window's item count, the default day, the default profile's scores state),
  reused for ``CACHE_TTL`` seconds: :func:`cache_get`, :func:`cache_put`;
* item cards (UTF-8 JSON text), reused for at most ``CARD_TTL`` seconds: :func:`cached_cards`,
  :func:`keep_cards`;
* served bodies, answered again while their stamp is unchanged: :class:`Bodies`.

Nothing here reads the database. Tests move :data:`clock` on.
"""

from __future__ import annotations

import random
import time
from collections import OrderedDict
from typing import Any, TypeVar

import sqlalchemy as sa

T = TypeVar("T")

#: Seconds a window's item count and the default day are reused: both change only
#: when items are ingested, and counting a day's ~2,000 items costs as much as the rest.
CACHE_TTL = 10.0
clock = time.monotonic  # the caches' clock (seconds); tests move it on
cache: dict[tuple[Any, ...], tuple[float, Any]] = {}
MISSING = object()


def _spread() -> float:
    """A factor in [0.5, 1) for a cached card's or body's lifetime: what one request read
    together then expires at different times, not all in the same request (a burst of re-reads
    that every waiting request would queue behind)."""
    return 0.5 + random.random() / 2


def cache_get(key: tuple[Any, ...]) -> Any:
    """The value kept under ``key`` in the last ``CACHE_TTL`` s, or :data:`MISSING`."""
    hit = cache.get(key)
    return hit[1] if hit is not None and hit[0] > clock() else MISSING


def cache_put(key: tuple[Any, ...], value: T) -> T:
    """Keep ``value`` under ``key`` for ``CACHE_TTL`` s (at most 1,000 keys); returns it."""
    if len(cache) > 1000:
        cache.clear()
    cache[key] = (clock() + CACHE_TTL, value)
    return value


#: Seconds this process reuses a stored card before reading it again. A card changes only when
#: its item does (a new version, one more announcing feed, a new paper ↔ post link, a renamed
#: feed), so a change shows in the served digest within this many seconds; the newest days'
#: cards are shared by every reader, so nearly every request finds all of its cards here.
CARD_TTL = CACHE_TTL
#: Cards kept per process at most (about 0.4 KB each on real arXiv data); the cache is emptied
#: when it would grow past this
CARD_CACHE_SIZE = 20_000
#: per engine: item id → (expiry on the monotonic clock, the card's UTF-8 bytes without its
#: closing brace, ready for the reader's fields to be appended)
card_cache: dict[sa.Engine, dict[int, tuple[float, bytes]]] = {}


def opened(card: str) -> bytes:
    """A card's JSON text as UTF-8 bytes without its closing brace."""
    return card[:-1].encode()


def cached_cards(engine: sa.Engine, ids: list[int]) -> tuple[dict[int, bytes | None], list[int]]:
    """The cards of ``ids`` read in the last ``CARD_TTL`` s, and the ids to read."""
    now = clock()
    kept = card_cache.setdefault(engine, {})
    out: dict[int, bytes | None] = {}
    missing = []
    for item_id in ids:
        hit = kept.get(item_id)
        if hit is not None and hit[0] > now:
            out[item_id] = hit[1]
        else:
            missing.append(item_id)
    return out, missing


def keep_cards(engine: sa.Engine, rows: list[Any], out: dict[int, bytes | None]) -> None:
    """Add the read ``(id, card)`` rows to ``out`` (None while a card is stale) and the cache."""
    kept = card_cache.setdefault(engine, {})
    if len(kept) + len(rows) > CARD_CACHE_SIZE:
        kept.clear()
    expires = clock() + CARD_TTL * _spread()
    for item_id, card in rows:
        if card is None:
            out[item_id] = None
        else:
            out[item_id] = text = opened(card)
            kept[item_id] = (expires, text)


#: Bytes of served bodies and their rows kept per process at most (:class:`Bodies`); about
#: 45 KB and 20 KB each for 50 items of real arXiv data
BODY_CACHE_BYTES = 96 * 1024 * 1024
#: bytes counted per ranked row kept beside its texts (the tuple, its numbers and datetime)
ROW_BYTES = 200


def _size(body: bytes, rows: list[Any]) -> int:
    """The bytes counted for a kept body and its ranked rows (texts by length)."""
    texts = sum(len(t) for row in rows for t in row[1:4] if isinstance(t, str))
    return len(body) + texts + ROW_BYTES * len(rows)


class Bodies:
    """Served bodies by request — (engine, token hash, day, days, limit, time zone, paged) — each
    with its stamp, expiry (monotonic seconds) and the ranked rows it was written from. A body
    is served again only while its stamp is the one just read: everything the body depends on
    besides the per-process caches (the reader, their votes, subscriptions and read marks in
    the window, the largest item id, and their scores rows' newest run and count: every write
    of a reader's scores sets a new run,
    :func:`aggregator.ranking.personal.precompute.precompute_all`), and for ``CACHE_TTL``
    seconds at most (the cards, the window's count and the default profile's state it was
    written from may then have changed). Past that, while the stamp is unchanged, its ranked
    rows are still the reader's (:meth:`rows`): the body is written again from them and the
    caches, without reading the rows. Least recently used first out past
    :data:`BODY_CACHE_BYTES` (:func:`_size`)."""

    def __init__(self) -> None:
        self.entries: OrderedDict[tuple[Any, ...], tuple[tuple[Any, ...], float, bytes, list[Any], int]] = (
            OrderedDict()
        )
        self.size = 0

    def known(self, key: tuple[Any, ...]) -> bool:
        """Whether a body is kept for ``key``, expired or not (its stamp is not checked)."""
        return key in self.entries

    def get(self, key: tuple[Any, ...], stamp: tuple[Any, ...]) -> bytes | None:
        """The body kept for ``key`` if its stamp is ``stamp`` and it has not expired."""
        hit = self.entries.get(key)
        if hit is None or hit[0] != stamp or hit[1] <= clock():
            return None
        self.entries.move_to_end(key)
        return hit[2]

    def rows(self, key: tuple[Any, ...], stamp: tuple[Any, ...]) -> list[Any] | None:
        """The ranked rows the body kept for ``key`` was written from, if its stamp is
        ``stamp`` (expired or not)."""
        hit = self.entries.get(key)
        return hit[3] if hit is not None and hit[0] == stamp else None

    def put(self, key: tuple[Any, ...], stamp: tuple[Any, ...], body: bytes, rows: list[Any]) -> None:
        """Keep ``body`` and its ``rows`` for ``key`` with ``stamp``, evicting the least recently
        used."""
        old = self.entries.pop(key, None)
        size = _size(body, rows)
        self.size += size - (old[4] if old else 0)
        self.entries[key] = (stamp, clock() + CACHE_TTL * _spread(), body, rows, size)
        while self.size > BODY_CACHE_BYTES and self.entries:
            self.size -= self.entries.popitem(last=False)[1][4]


bodies = Bodies()


def clear_caches() -> None:
    """Forget everything this process's served digest keeps (counts, default days, cards,
    bodies): the next request reads all it needs."""
    cache.clear()
    card_cache.clear()
    bodies.entries.clear()
    bodies.size = 0
