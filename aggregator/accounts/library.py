"""A reader's library (saved items with free tags and a note), read state, and vote history.

Every function takes the reader's id from the caller's authentication and filters on it, so a
reader can never read or change another reader's rows. Errors: :class:`ReaderError` (bad input,
a 422), :class:`NotFound` (unknown item, or not in the library: a 404), both from
:mod:`aggregator.accounts.readers`.

Bounds (a saved item is a few hundred bytes; a library stays small enough to export at once):
:data:`MAX_TAGS` tags per item, each 1..:data:`MAX_TAG_LEN` characters, a note of at most
:data:`MAX_NOTE_LEN` characters, at most :data:`MAX_ITEMS` saved items per reader.

Paging (library, votes) is keyset paging on ``(time, item id)`` newest first; a cursor is that
pair as URL-safe base64 text, opaque to clients, and ``next_cursor`` is None on the last page.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from aggregator.errors import NotFound, ReaderError
from aggregator.store.db import insert
from aggregator.store.locks import lock_reader
from aggregator.store.tables import Feedback, Item, ItemSource, LibraryItem, LibraryTag, ReadMark, Score

MAX_TAGS = 20
MAX_TAG_LEN = 64
MAX_NOTE_LEN = 2000
MAX_ITEMS = 10_000
#: items per page of the library and of the vote history at most
MAX_PAGE = 200
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --- cursors ---------------------------------------------------------------------------------


def encode_cursor(when: dt.datetime, item_id: int) -> str:
    """The opaque cursor after the row ``(when, item_id)``."""
    text = f"{when.astimezone(dt.UTC).isoformat()}|{item_id}"
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[dt.datetime, int]:
    """``(time, item id)`` of a cursor made by :func:`encode_cursor`; ReaderError when malformed."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        when, item_id = raw.split("|")
        parsed = dt.datetime.fromisoformat(when)
        if parsed.tzinfo is None:
            raise ValueError("no zone")
        return parsed, int(item_id)
    except (ValueError, UnicodeDecodeError) as err:
        raise ReaderError("cursor: not a cursor this server returned") from err


# --- tags and notes ------------------------------------------------------------------------


def clean_tags(values: Iterable[Any] | None) -> list[str]:
    """Tags as stored: whitespace collapsed, duplicates (ignoring case) dropped, order kept.
    Raises ReaderError for a non-string, an empty or control-character tag, one longer than
    ``MAX_TAG_LEN`` or more than ``MAX_TAGS`` tags."""
    out: list[str] = []
    seen: set[str] = set()
    for value in values or []:
        if not isinstance(value, str):
            raise ReaderError("tags: each tag must be a string")
        tag = " ".join(value.split())
        if not tag or _CONTROL.search(tag):
            raise ReaderError("tags: a tag must not be empty or hold control characters")
        if len(tag) > MAX_TAG_LEN:
            raise ReaderError(f"tags: {tag[:20]!r}… is longer than {MAX_TAG_LEN} characters")
        if tag.casefold() not in seen:
            seen.add(tag.casefold())
            out.append(tag)
    if len(out) > MAX_TAGS:
        raise ReaderError(f"tags: at most {MAX_TAGS} tags per item ({len(out)} given)")
    return out


def clean_note(note: str | None) -> str:
    """The note stripped; ReaderError when longer than ``MAX_NOTE_LEN`` characters."""
    text = (note or "").strip()
    if len(text) > MAX_NOTE_LEN:
        raise ReaderError(f"note: at most {MAX_NOTE_LEN} characters ({len(text)} given)")
    return text


# --- the library -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Saved:
    """A saved item: its id, the reader's tags and note, when saved and last changed (UTC)."""

    item_id: int
    tags: list[str]
    note: str
    saved_at: dt.datetime
    updated_at: dt.datetime


def _saved(row: LibraryItem) -> Saved:
    return Saved(row.item_id, list(row.tags or []), row.note or "", row.saved_at, row.updated_at)


def save_item(
    session: Session,
    reader_id: int,
    item_id: int,
    tags: Iterable[Any] | None = None,
    note: str | None = None,
    now: dt.datetime | None = None,
) -> tuple[Saved, bool]:
    """Save ``item_id`` (or change its tags and note: ``None`` keeps the stored value).
    Returns ``(saved, created)``. Raises NotFound for an unknown item, ReaderError for bad tags
    or note, or a full library (:data:`MAX_ITEMS`, counted under
    :func:`aggregator.store.locks.lock_reader`, so concurrent saves cannot pass it). Flushes;
    the caller commits."""
    if session.get(Item, item_id) is None:
        raise NotFound(f"no item with id {item_id}")
    now = now or utcnow()
    row = session.get(LibraryItem, (reader_id, item_id))
    if row is None:  # the count below must hold against concurrent saves: one at a time
        lock_reader(session, reader_id)
        row = session.get(LibraryItem, (reader_id, item_id))
    created = row is None
    if row is None:
        count = session.scalar(
            sa.select(sa.func.count()).select_from(LibraryItem).where(LibraryItem.reader_id == reader_id)
        )
        if (count or 0) >= MAX_ITEMS:
            raise ReaderError(f"library: at most {MAX_ITEMS} saved items; remove some first")
        row = LibraryItem(
            reader_id=reader_id, item_id=item_id, tags=[], note="", saved_at=now, updated_at=now
        )
        session.add(row)
    if tags is not None:
        row.tags = clean_tags(tags)
    if note is not None:
        row.note = clean_note(note)
    row.updated_at = now
    session.flush()
    if tags is not None or created:
        _write_tags(session, reader_id, item_id, list(row.tags or []))
    return _saved(row), created


def _write_tags(session: Session, reader_id: int, item_id: int, tags: list[str]) -> None:
    session.execute(
        sa.delete(LibraryTag).where(LibraryTag.reader_id == reader_id, LibraryTag.item_id == item_id)
    )
    if tags:
        session.execute(
            sa.insert(LibraryTag), [{"reader_id": reader_id, "item_id": item_id, "tag": t} for t in tags]
        )


def remove_item(session: Session, reader_id: int, item_id: int) -> bool:
    """Take ``item_id`` out of the library; False when it was not in it."""
    session.execute(
        sa.delete(LibraryTag).where(LibraryTag.reader_id == reader_id, LibraryTag.item_id == item_id)
    )
    done = session.execute(
        sa.delete(LibraryItem).where(LibraryItem.reader_id == reader_id, LibraryItem.item_id == item_id)
    )
    return bool(getattr(done, "rowcount", 0))


@dataclass(slots=True)
class Page:
    """One page of saved items (newest first) and the cursor of the next (None: last page)."""

    items: list[Saved] = field(default_factory=list)
    next_cursor: str | None = None


def list_library(
    session: Session, reader_id: int, tag: str | None = None, cursor: str | None = None, limit: int = 50
) -> Page:
    """The reader's saved items, newest saved first, optionally only those tagged ``tag``
    (exact, ignoring case), ``limit`` (1..MAX_PAGE) per page after ``cursor``."""
    limit = max(1, min(limit, MAX_PAGE))
    query = sa.select(LibraryItem).where(LibraryItem.reader_id == reader_id)
    if tag:
        tagged = sa.select(LibraryTag.item_id).where(
            LibraryTag.reader_id == reader_id, sa.func.lower(LibraryTag.tag) == " ".join(tag.split()).lower()
        )
        query = query.where(LibraryItem.item_id.in_(tagged))
    if cursor:
        when, last_id = decode_cursor(cursor)
        query = query.where(
            sa.or_(
                LibraryItem.saved_at < when,
                sa.and_(LibraryItem.saved_at == when, LibraryItem.item_id < last_id),
            )
        )
    rows = session.scalars(
        query.order_by(LibraryItem.saved_at.desc(), LibraryItem.item_id.desc()).limit(limit + 1)
    ).all()
    page = Page([_saved(r) for r in rows[:limit]])
    if len(rows) > limit:
        last = rows[limit - 1]
        page.next_cursor = encode_cursor(last.saved_at, last.item_id)
    return page


def all_saved(session: Session, reader_id: int, tag: str | None = None) -> list[Saved]:
    """Every saved item (for exports), newest first."""
    out: list[Saved] = []
    cursor = None
    while True:
        page = list_library(session, reader_id, tag, cursor, MAX_PAGE)
        out.extend(page.items)
        if page.next_cursor is None:
            return out
        cursor = page.next_cursor


def tag_counts(session: Session, reader_id: int) -> list[tuple[str, int]]:
    """The reader's tags with how many items carry each, most used first."""
    rows = session.execute(
        sa.select(LibraryTag.tag, sa.func.count())
        .where(LibraryTag.reader_id == reader_id)
        .group_by(LibraryTag.tag)
        .order_by(sa.func.count().desc(), LibraryTag.tag)
    ).all()
    return [(t, n) for t, n in rows]


def saved_ids(session: Session, reader_id: int, item_ids: Sequence[int]) -> set[int]:
    """Which of ``item_ids`` the reader saved."""
    if not item_ids:
        return set()
    return set(
        session.scalars(
            sa.select(LibraryItem.item_id).where(
                LibraryItem.reader_id == reader_id, LibraryItem.item_id.in_(list(item_ids))
            )
        )
    )


# --- read state ----------------------------------------------------------------------------------


def set_read(
    session: Session,
    reader_id: int,
    item_id: int,
    read: bool = True,
    how: str = "marked",
    now: dt.datetime | None = None,
) -> Item:
    """Mark ``item_id`` read (``how``: ``marked`` or ``opened``) or unread. Returns the item.
    Raises NotFound for an unknown item."""
    item = session.get(Item, item_id)
    if item is None:
        raise NotFound(f"no item with id {item_id}")
    if not read:
        session.execute(
            sa.delete(ReadMark).where(ReadMark.reader_id == reader_id, ReadMark.item_id == item_id)
        )
        return item
    conn = session.connection()
    stmt = insert(conn, ReadMark.__table__).on_conflict_do_nothing()
    conn.execute(
        stmt,
        {
            "reader_id": reader_id,
            "item_id": item_id,
            "how": how,
            "read_at": now or utcnow(),
            "published": item.published,
        },
    )
    return item


def read_ids(conn: sa.Connection | Session, reader_id: int, item_ids: Sequence[int]) -> set[int]:
    """Which of ``item_ids`` the reader has read or seen (one indexed query per 500 ids)."""
    ids = list(item_ids)
    out: set[int] = set()
    for start in range(0, len(ids), 500):
        out.update(
            conn.execute(
                sa.select(ReadMark.item_id).where(
                    ReadMark.reader_id == reader_id, ReadMark.item_id.in_(ids[start : start + 500])
                )
            ).scalars()
        )
    return out


def unread_clause(reader_id: int, item_id: Any = Item.id) -> sa.ColumnElement[bool]:
    """A SQL condition true for items the reader has neither read nor seen (for ``unread=true``
    filters): ``NOT EXISTS`` on the ``read_marks`` primary key."""
    return ~sa.exists().where(ReadMark.reader_id == reader_id, ReadMark.item_id == item_id)


#: announce types that bring back an item announced before (arXiv RSS, https://info.arxiv.org/help/rss.html)
AGAIN = ("cross", "replace", "replace-cross")
#: an announcement this long after the first is on a later day (arXiv announces once a day)
LATER_DAY = dt.timedelta(hours=20)


def mark_reannounced_seen(session: Session, since: dt.datetime, now: dt.datetime | None = None) -> int:
    """Mark as ``seen`` the items announced again since ``since`` (UTC: a cross-list or a
    replacement, at least :data:`LATER_DAY` after the item was first seen) for every reader who
    was shown them on the earlier day (the reader has a precomputed score row for the item:
    it was in their ranked digest). Already read items stay as they are. Returns the marks
    written. Run by the worker after each ingest."""
    rows = session.execute(
        sa.select(ItemSource.item_id, ItemSource.seen_at, Item.first_seen_at, Item.published)
        .join(Item, Item.id == ItemSource.item_id)
        .where(ItemSource.seen_at >= since, ItemSource.announce_type.in_(AGAIN))
    ).all()
    again = {r.item_id: r.published for r in rows if r.seen_at - r.first_seen_at >= LATER_DAY}
    if not again:
        return 0
    now = now or utcnow()
    marks = []
    ids = sorted(again)
    for start in range(0, len(ids), 500):
        shown = session.execute(
            sa.select(Score.profile, Score.item_id).where(
                Score.item_id.in_(ids[start : start + 500]), Score.profile.like("reader:%")
            )
        ).all()
        for profile, item_id in shown:
            marks.append(
                {
                    "reader_id": int(profile.split(":", 1)[1]),
                    "item_id": item_id,
                    "how": "seen",
                    "read_at": now,
                    "published": again[item_id],
                }
            )
    if not marks:
        return 0
    conn = session.connection()
    table = ReadMark.__table__
    # RETURNING counts the rows written (an executemany's rowcount is -1 on psycopg)
    stmt = insert(conn, table).on_conflict_do_nothing().returning(table.c.item_id)
    written = 0
    for start in range(0, len(marks), 1000):
        written += len(conn.execute(stmt, marks[start : start + 1000]).all())
    return written


# --- vote history --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Vote:
    item_id: int
    value: int
    created_at: dt.datetime


def list_votes(
    session: Session, reader_id: int, cursor: str | None = None, limit: int = 50
) -> tuple[list[Vote], str | None]:
    """The reader's 👍/👎, newest first, ``limit`` (1..MAX_PAGE) after ``cursor``; returns the
    votes and the next cursor (None on the last page)."""
    limit = max(1, min(limit, MAX_PAGE))
    query = sa.select(Feedback).where(Feedback.reader_id == reader_id, Feedback.value != 0)
    if cursor:
        when, last_id = decode_cursor(cursor)
        query = query.where(
            sa.or_(
                Feedback.created_at < when, sa.and_(Feedback.created_at == when, Feedback.item_id < last_id)
            )
        )
    rows = session.scalars(
        query.order_by(Feedback.created_at.desc(), Feedback.item_id.desc()).limit(limit + 1)
    ).all()
    votes = [Vote(r.item_id, r.value, r.created_at) for r in rows[:limit]]
    nxt = encode_cursor(rows[limit - 1].created_at, rows[limit - 1].item_id) if len(rows) > limit else None
    return votes, nxt


def marks_for_page(session: Session, reader_id: int, item_ids: Sequence[int]) -> dict[str, set[int]]:
    """``{"saved": ids saved, "read": ids read or seen}`` among ``item_ids``, for a page's context."""
    return {"saved": saved_ids(session, reader_id, item_ids), "read": read_ids(session, reader_id, item_ids)}
