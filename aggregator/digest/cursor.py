"""Opaque, signed page cursors for the digests and search (``cursor`` / ``next_cursor``).

A cursor is URL-safe base64 of ``payload || tag``: ``payload`` is zlib-compressed JSON, ``tag``
the first 16 bytes of HMAC-SHA256 over it with the app's secret key (``AGGREGATOR_SECRET_KEY``
or the stored one). The payload holds:

* ``q`` — a fingerprint of what was asked (endpoint, day, days, filters, reader, query): a
  cursor is refused (422) on a request that asks for something else;
* ``m`` — the snapshot bound: the largest ``items.id`` when the first page was read. Later pages
  leave out items with a larger id, so an ingest that runs while a reader pages adds nothing
  to pages after the first;
* ``r`` — the scores fingerprint (the newest ``scores.run`` of the ranking profile(s) in the
  window): when it changed between two pages (a rescore ran) the keyset is no longer a valid
  position, and the next page is read from the top, leaving out what was already shown;
* ``k`` — the keyset: the sort key of the last item shown (all components sorted descending);
* ``s`` — the items already shown, as a bitmap over item ids ``[lo, lo + 8·len)`` (so that
  every item is shown exactly once even across a rescore). Omitted when it would exceed
  :data:`MAX_SEEN_BYTES` (a window of over ~100,000 id positions); then paging across a rescore
  may repeat or skip items, and paging without one is still exact.

Nothing here touches the database.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import zlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

#: Largest bitmap of shown items carried in a cursor, in bytes before compression (the id
#: range of one day is about 2,000 on real arXiv data: 250 bytes).
MAX_SEEN_BYTES = 12_000
#: Longest cursor text accepted (characters).
MAX_CURSOR_CHARS = 8_000
_TAG = 16


class CursorError(ValueError):
    """A cursor that is malformed, forged, or made for another request (HTTP 422)."""


@dataclass(slots=True)
class Cursor:
    """A decoded cursor: ``key`` the sort key of the last item shown (``None`` before the first
    page), ``max_id`` the snapshot bound, ``run`` the scores fingerprint, ``seen`` the ids shown
    so far (None when too many to carry)."""

    query: str
    max_id: int
    run: int | None
    key: list[Any] | None = None
    seen: set[int] | None = field(default_factory=set)

    def mark(self, ids: Iterable[int]) -> None:
        """Add ``ids`` to the shown set (kept only while it fits in :data:`MAX_SEEN_BYTES`)."""
        if self.seen is None:
            return
        self.seen.update(ids)
        if self.seen and (max(self.seen) - min(self.seen)) // 8 + 1 > MAX_SEEN_BYTES:
            self.seen = None


def fingerprint(*parts: object) -> str:
    """A short, stable digest of a request's parameters (what a cursor is valid for)."""
    text = json.dumps(parts, sort_keys=True, default=str, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _bitmap(ids: set[int]) -> list[Any]:
    lo = min(ids)
    bits = bytearray((max(ids) - lo) // 8 + 1)
    for i in ids:
        d = i - lo
        bits[d >> 3] |= 1 << (d & 7)
    return [lo, base64.b64encode(bytes(bits)).decode()]


def _unbitmap(lo: int, packed: str) -> set[int]:
    bits = base64.b64decode(packed, validate=True)
    if len(bits) > MAX_SEEN_BYTES:
        raise CursorError("cursor: shown-items bitmap too large")
    return {lo + 8 * n + b for n, byte in enumerate(bits) if byte for b in range(8) if byte >> b & 1}


def encode(cursor: Cursor, key: bytes) -> str:
    """The cursor as signed URL-safe text (see the module docstring)."""
    body: dict[str, Any] = {"q": cursor.query, "m": cursor.max_id, "r": cursor.run, "k": cursor.key}
    if cursor.seen:
        body["s"] = _bitmap(cursor.seen)
    elif cursor.seen is None:
        body["s"] = None
    packer = zlib.compressobj(6, zlib.DEFLATED, 9, 1)  # a small window: cursors are short
    payload = packer.compress(json.dumps(body, separators=(",", ":")).encode()) + packer.flush()
    tag = hmac.new(key, payload, hashlib.sha256).digest()[:_TAG]
    return base64.urlsafe_b64encode(payload + tag).decode().rstrip("=")


def decode(text: str, key: bytes, query: str) -> Cursor:
    """The cursor in ``text``, checked against ``key`` and the request fingerprint ``query``.
    Raises :class:`CursorError` when it is malformed, forged or made for another request."""
    if len(text) > MAX_CURSOR_CHARS:
        raise CursorError("cursor too long")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError) as err:
        raise CursorError("cursor is not valid base64") from err
    payload, tag = raw[:-_TAG], raw[-_TAG:]
    if len(raw) <= _TAG or not hmac.compare_digest(
        tag, hmac.new(key, payload, hashlib.sha256).digest()[:_TAG]
    ):
        raise CursorError("cursor signature does not match: use the next_cursor of an answer as it is")
    try:
        body = json.loads(zlib.decompressobj().decompress(payload, 200_000))
        seen = body.get("s", [])
        cursor = Cursor(
            query=str(body["q"]),
            max_id=int(body["m"]),
            run=None if body["r"] is None else int(body["r"]),
            key=body["k"],
            seen=None if seen is None else (_unbitmap(int(seen[0]), str(seen[1])) if seen else set()),
        )
    except (KeyError, TypeError, ValueError, IndexError, zlib.error) as err:
        raise CursorError("cursor payload is malformed") from err
    if cursor.query != query:
        raise CursorError("cursor was made for another request: keep the same parameters while paging")
    return cursor
