"""The fast path of :mod:`aggregator.feeds.snapshot`: snapshot lines straight to database rows.

:func:`paper_row` turns one snapshot line into the ``items`` row that
:func:`aggregator.feeds.ingest.write_entries` would store for :func:`snapshot.paper_entry`'s
entry (same key, text, authors, date, version, content hash; JSON columns serialised as
SQLAlchemy's ``sa.JSON`` does, with :func:`json.dumps`), decoding with orjson and building a
plain tuple instead of a :class:`ParsedEntry`. It reads the one shape the snapshot has (a JSON
object, a new- or old-style id, ``authors_parsed`` as ``[last, first, suffix]`` lists, RFC 5322
GMT stamps); any other line goes through ``paper_entry`` itself, so odd lines and the reasons of
bad ones are exactly the slow path's (``tests/test_snapshot.py`` compares both on every line).

:func:`store_rows` writes one batch through the DBAPI cursor (no SQLAlchemy type processing):
one ``SELECT key … IN (…)`` per 500 keys, then ``executemany`` of ``INSERT … ON CONFLICT DO
NOTHING`` for the absent papers and of ``INSERT INTO item_sources … SELECT id FROM items WHERE
key = ?`` for their source rows. Papers already stored (a re-import, a paper an RSS feed
announced first, a newer version) go through ``write_entries`` unchanged, so the storage rules
(one item per arXiv id, a newer version updates it, an ``item_sources`` row) stay in one place.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from sqlalchemy.orm import Session

from aggregator.feeds.arxiv import split_arxiv_id
from aggregator.feeds.html_text import clean_text
from aggregator.feeds.ingest import write_entries
from aggregator.types import ParsedEntry

#: ``items`` columns a snapshot row fills, in the order of :attr:`PaperRow.values`
ITEM_COLUMNS = (
    "key", "kind", "arxiv_id", "version", "title", "url", "authors", "summary", "categories",
    "primary_category", "comment", "guid", "published", "date_from_fetch", "content_hash",
    "first_seen_at", "updated_at",
)  # fmt: skip
_REQUIRED = ("id", "title", "abstract", "authors", "categories", "versions")
_MONTHS = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}
_KEY_CHUNK = 500


@dataclass(slots=True)
class PaperRow:
    """One kept line: ``key`` (``arxiv:<id>``), the first-version ``day`` and ``categories``
    (for :class:`snapshot.SnapshotFilter`), ``version``, the ``items`` column ``values`` without
    the two timestamps of the write (``first_seen_at``, ``updated_at``), and the ``raw`` line
    (read again by ``paper_entry`` when the paper is already stored)."""

    key: str
    day: dt.date
    categories: tuple[str, ...]
    version: int
    values: tuple[Any, ...]
    raw: bytes


def _new_id(text: str) -> bool:
    """``text`` (ASCII, 9 or 10 characters, a dot at 4) is a whole new-style id without version,
    ``YYMM.NNNN(N)`` with month 01-12: what ``arxiv._ID_RE`` matches as ``new`` over all of it."""
    return text[:4].isdigit() and text[5:].isdigit() and "01" <= text[2:4] <= "12"


def _hash(parts: Sequence[str]) -> str:
    """:func:`aggregator.feeds.ingest.content_hash` of these six parts (same bytes hashed)."""
    return hashlib.sha1(("\x1e".join(parts) + "\x1e").encode("utf-8", "replace")).hexdigest()


def _stamp(created: object) -> tuple[int, int, int, int, int, int] | None:
    """``(year, month, day, h, m, s)`` of the one stamp form of the snapshot (read as
    ``snapshot.first_version_date`` reads it), else ``None``."""
    if type(created) is not str:
        return None
    parts = created.split()
    if len(parts) != 6 or parts[5] != "GMT" or parts[2] not in _MONTHS:
        return None
    hms = parts[4].split(":")
    try:
        return int(parts[3]), _MONTHS[parts[2]], int(parts[1]), int(hms[0]), int(hms[1]), int(hms[2])
    except (ValueError, IndexError):
        return None


def _collapse(text: str) -> str:
    """:func:`clean_text` of ``text``, without splitting it into words in the common case: a text
    whose only whitespace is single spaces and line breaks between words (the snapshot's
    wrapped abstracts) and that has no control character is joined by replacing the breaks."""
    one = text.strip().replace("\n", " ")
    if "  " not in one and one.isprintable():  # no other whitespace or control character left
        return one
    return clean_text(text)


def _names(parsed: object) -> list[str] | None:
    """Names from ``authors_parsed`` when every entry is ``[last, first, suffix]`` or
    ``[last, first, suffix, affiliation]`` text (the real file has both), each ``first last
    suffix`` with whitespace collapsed (empty names dropped), as ``snapshot._authors`` gives
    them; else ``None``."""
    if type(parsed) is not list or not parsed or set(map(type, parsed)) != {list}:
        return None
    if not set(map(len, parsed)) <= {3, 4}:
        return None
    try:  # a value that is not text raises TypeError (``x[:0]`` is "" for text only)
        names = [
            p[1] + " " + p[0] + (" " + p[2] if p[2] != "" else "") + (p[3][:0] if len(p) == 4 else "")
            for p in parsed
        ]
    except TypeError:
        return None
    joined = "\x00".join(names)
    if (
        joined.count("\x00") == len(names) - 1  # no name holds the separator
        and "  " not in joined
        and " \x00" not in joined
        and "\x00 " not in joined
        and joined[0] != " "
        and joined[-1] != " "
        and joined.replace("\x00", "").isprintable()  # no other whitespace or control character
    ):
        return names
    names = [n for n in (" ".join(n.split()) for n in names) if n]
    return names or None


def _json_list(values: Sequence[str], joined: str) -> str:
    """``json.dumps(list(values))`` (what ``sa.JSON`` stores); ``joined`` is ``values`` joined by
    any one character, to check in one pass that no value needs escaping."""
    if joined.isascii() and joined.isprintable() and '"' not in joined and "\\" not in joined:
        return '["' + '", "'.join(values) + '"]' if values else "[]"
    return json.dumps(list(values))


def _fast(line: bytes, sqlite: bool) -> PaperRow | None:
    """The row of a line of the common shape, else ``None``. Long because it is one straight
    pass over the fields of a line (kept in one function: this runs a million times)."""
    try:
        p = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    if type(p) is not dict:
        return None
    for name in _REQUIRED:
        if p.get(name) is None:
            return None
    raw_id, title, abstract, cats = p["id"], p["title"], p["abstract"], p["categories"]
    if not (type(raw_id) is str and type(title) is str and type(abstract) is str and type(cats) is str):
        return None
    raw_id = raw_id.strip()
    if len(raw_id) in (9, 10) and raw_id[4] == "." and raw_id.isascii() and _new_id(raw_id):
        found: tuple[str, int | None] = (raw_id, None)  # what split_arxiv_id gives, sooner
    else:
        got = split_arxiv_id(raw_id)
        if got is None or raw_id not in (got[0], f"{got[0]}v{got[1]}"):
            return None
        found = got
    versions = p["versions"]
    if type(versions) is not list or not versions or type(versions[0]) is not dict:
        return None
    when = _stamp(versions[0].get("created"))
    names = _names(p.get("authors_parsed"))
    title = _collapse(title)
    if when is None or names is None or not title:
        return None
    last = versions[-1].get("version") if type(versions[-1]) is dict else None
    version = int(last[1:]) if type(last) is str and last[1:].isdigit() else len(versions)
    try:
        day = dt.date(*when[:3])
        published: Any = dt.datetime(*when, tzinfo=dt.UTC)
    except ValueError:
        return None
    if sqlite:
        y, mo, d, h, mi, sec = when
        published = f"{y:04d}-{mo:02d}-{d:02d} {h:02d}:{mi:02d}:{sec:02d}.000000"
    categories = tuple(dict.fromkeys(cats.split()))
    comment = p.get("comments")
    comment = (_collapse(comment) or None) if type(comment) is str else None
    arxiv_id = found[0]
    url = f"https://arxiv.org/abs/{arxiv_id}"
    summary = _collapse(abstract)
    names_joined, cats_joined = "\x1f".join(names), " ".join(categories)
    digest = _hash((title, url, names_joined, summary, str(version), cats_joined))
    key = f"arxiv:{arxiv_id}"
    values = (
        key, "paper", arxiv_id, version, title, url, _json_list(names, names_joined.replace("\x1f", " ")),
        summary, _json_list(categories, cats_joined), categories[0] if categories else None, comment,
        f"oai:arXiv.org:{arxiv_id}", published, False, digest,
    )  # fmt: skip
    return PaperRow(key, day, categories, version, values, line)


def paper_row(line: bytes, sqlite: bool, slow: Callable[[bytes], ParsedEntry]) -> PaperRow:
    """The :class:`PaperRow` of one snapshot line, for SQLite (``published`` as the text
    SQLAlchemy stores) or PostgreSQL (an aware UTC datetime). Lines of another shape go through
    ``slow`` (``snapshot.paper_entry``), which raises ``snapshot.BadLine`` for a bad line."""
    row = _fast(line, sqlite)
    return row if row is not None else entry_row(slow(line), line, sqlite)


def entry_row(entry: ParsedEntry, raw: bytes, sqlite: bool) -> PaperRow:
    """The :class:`PaperRow` of an entry built by ``paper_entry`` (the slow path)."""
    when = entry.published.astimezone(dt.UTC)
    published: Any = when.replace(tzinfo=None).isoformat(" ", "microseconds") if sqlite else when
    version = entry.version or 0
    digest = _hash(
        (entry.title, entry.url or "", "\x1f".join(entry.authors), entry.summary, str(version),
         " ".join(entry.categories))
    )  # fmt: skip
    values = (
        entry.key, entry.kind, entry.arxiv_id, entry.version, entry.title, entry.url,
        json.dumps(list(entry.authors)), entry.summary, json.dumps(list(entry.categories)),
        entry.primary_category, entry.comment, entry.guid, published, entry.date_from_fetch, digest,
    )  # fmt: skip
    return PaperRow(entry.key, when.date(), entry.categories, version, values, raw)


def _sql(sqlite: bool) -> tuple[str, str, str]:
    """``(select stored keys, insert item, insert item source)`` for the dialect's paramstyle."""
    mark = "?" if sqlite else "%s"
    marks = [mark] * len(ITEM_COLUMNS)
    if not sqlite:  # the JSON columns take their text cast to json
        for name in ("authors", "categories"):
            marks[ITEM_COLUMNS.index(name)] = "CAST(%s AS json)"
    insert_item = (
        f"INSERT INTO items ({', '.join(ITEM_COLUMNS)}) VALUES ({', '.join(marks)}) ON CONFLICT DO NOTHING"
    )
    insert_source = (
        "INSERT INTO item_sources (item_id, feed_id, announce_type, version, seen_at) "
        f"SELECT id, {mark}, '', {mark}, {mark} FROM items WHERE key = {mark} ON CONFLICT DO NOTHING"
    )
    return f"SELECT key FROM items WHERE key IN ({{}})", insert_item, insert_source  # noqa: F541


def store_rows(
    session: Session,
    feed_id: int,
    rows: Sequence[PaperRow],
    now: dt.datetime,
    slow: Callable[[bytes], ParsedEntry],
) -> tuple[int, int, int]:
    """Store one batch in the session's transaction; returns ``(new, updated, unchanged)``.

    A key repeated in the batch is stored once (its first line), as ``write_entries`` does.
    Papers already stored go through ``write_entries`` (entries re-read with ``slow``)."""
    conn = session.connection()
    sqlite = conn.dialect.name == "sqlite"
    select, insert_item, insert_source = _sql(sqlite)
    mark = "?" if sqlite else "%s"
    first: dict[str, PaperRow] = {}
    for row in rows:
        first.setdefault(row.key, row)
    keys = list(first)
    cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        stored: set[str] = set()
        for start in range(0, len(keys), _KEY_CHUNK):
            chunk = keys[start : start + _KEY_CHUNK]
            cur.execute(select.format(", ".join([mark] * len(chunk))), chunk)
            stored.update(r[0] for r in cur.fetchall())
        stamp: Any = now.astimezone(dt.UTC)
        if sqlite:
            stamp = stamp.replace(tzinfo=None).isoformat(" ", "microseconds")
        fresh = [r for k, r in first.items() if k not in stored]
        new = 0
        if fresh:
            cur.executemany(insert_item, [(*r.values, stamp, stamp) for r in fresh])
            new = max(cur.rowcount, 0)
            cur.executemany(insert_source, [(feed_id, r.version, stamp, r.key) for r in fresh])
    finally:
        cur.close()
    if not stored:
        return new, 0, 0
    summary = write_entries(session, feed_id, [slow(first[k].raw) for k in keys if k in stored], now)
    return new + summary.new, summary.updated, summary.unchanged
