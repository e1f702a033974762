"""Years of arXiv history from arXiv's metadata snapshot (the JSON-lines file Kaggle distributes
as ``arxiv-metadata-oai-snapshot.json``, https://www.kaggle.com/datasets/Cornell-University/arxiv).

One line is one paper: ``id``, ``authors``, ``title``, ``comments``, ``journal-ref``,
``categories`` (space-separated, primary first), ``abstract``, ``versions``
(``[{"version": "v1", "created": "Mon, 2 Apr 2007 19:18:42 GMT"}, …]``), ``update_date`` and,
in the real file, ``authors_parsed`` (``[[last, first, suffix], …]``, accents as Unicode).

:func:`import_snapshot` streams the file (memory flat in its size: one batch of lines at a
time), turns each kept line into the ``items`` row of the :class:`ParsedEntry` the arXiv RSS
path would give (:func:`paper_entry`; the fast path :mod:`aggregator.feeds.snapshot_bulk` gives
the same rows), and stores each batch (the same rules as ingest: one item per arXiv id, a newer
version updates it, an ``item_sources`` row for the "Kaggle snapshot" feed) in one transaction
with the checkpoint (:class:`SnapshotImport`), so a stopped
import resumes at the first line not stored and a finished one is not read again. A bad line
(broken JSON, a required field missing or unusable) is counted and reported with its line
number; it never stops the import.
"""

from __future__ import annotations

import datetime as dt
import email.utils
import gc
import hashlib
import json
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.orm import Session

from aggregator.clock import utcnow
from aggregator.feeds.arxiv import split_arxiv_id
from aggregator.feeds.html_text import clean_text
from aggregator.feeds.snapshot_bulk import PaperRow, paper_row, store_rows
from aggregator.store.db import insert, session_factory
from aggregator.store.tables import Feed, Item, ItemSource, SnapshotImport
from aggregator.store.trends_tables import TrendCounted
from aggregator.types import ParsedEntry

#: the feed row that records papers read from a snapshot (never fetched: not scheduled)
SNAPSHOT_FEED_URL = "snapshot:arxiv-metadata-oai"
SNAPSHOT_FEED_NAME = "Kaggle snapshot"
#: fields a line must have (``comments`` and ``journal-ref`` may be null or absent)
REQUIRED = ("id", "title", "abstract", "authors", "categories", "versions")
#: bad lines kept with their reason (all are counted)
MAX_BAD_LINES = 100
_HEAD_BYTES = 64 * 1024
_MONTHS = {
    m: i
    for i, m in enumerate(
        ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"), 1
    )
}


class BadLine(ValueError):
    """A line that is no usable paper; ``str()`` is the reason, e.g. ``missing field 'versions'``."""


@dataclass(frozen=True, slots=True)
class SnapshotFilter:
    """Which papers to keep: any of ``categories`` (a category such as ``cs.LG``, or an archive
    such as ``cs`` for all of its categories; empty = all), first version on or after ``since``
    (UTC day; ``None`` = all)."""

    categories: frozenset[str] = frozenset()
    since: dt.date | None = None

    def key(self) -> str:
        """The canonical text of the filter, stored with the checkpoint."""
        since = self.since.isoformat() if self.since else ""
        return f"categories={','.join(sorted(self.categories))};since={since}"

    def keeps(self, entry: ParsedEntry) -> bool:
        return self.keeps_paper(entry.published.date(), entry.categories)

    def keeps_paper(self, day: dt.date, categories: Iterable[str]) -> bool:
        """Whether a paper first submitted on ``day`` (UTC) in ``categories`` is kept."""
        if self.since is not None and day < self.since:
            return False
        if not self.categories:
            return True
        cats = self.categories
        return any(c in cats or c.partition(".")[0] in cats for c in categories)


@dataclass(slots=True)
class ImportReport:
    """What :func:`import_snapshot` did. Counts of this run: ``lines`` read (from line
    ``first_line``), ``kept`` by the filter and well-formed, ``new`` items stored, ``updated``
    (a newer version than stored), ``unchanged``, ``bad`` lines (the first ones with their
    reasons in ``bad_lines`` as ``(line number, reason)``). ``offset`` is the byte offset reached
    of ``size`` bytes; ``done`` when the end of the file was stored; ``resumed`` when the run
    started from a checkpoint; ``seconds`` is wall-clock time. ``total_*`` are the counts
    over every run of this file and filter."""

    path: str
    size: int
    first_line: int = 1
    offset: int = 0
    lines: int = 0
    kept: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    bad: int = 0
    bad_lines: list[tuple[int, str]] = field(default_factory=list)
    done: bool = False
    resumed: bool = False
    seconds: float = 0.0
    total_kept: int = 0
    total_new: int = 0
    total_bad: int = 0


def first_version_date(created: str) -> dt.datetime:
    """The UTC datetime of a snapshot version stamp (``Mon, 2 Apr 2007 19:18:42 GMT``, RFC 5322).
    Raises :class:`BadLine` when it is not one."""
    parts = created.split()
    if len(parts) == 6 and parts[5] == "GMT" and parts[2] in _MONTHS:  # the snapshot's one form
        try:
            h, m, s = parts[4].split(":")
            return dt.datetime(
                int(parts[3]), _MONTHS[parts[2]], int(parts[1]), int(h), int(m), int(s), tzinfo=dt.UTC
            )
        except ValueError:
            pass
    try:
        when = email.utils.parsedate_to_datetime(created)
    except (TypeError, ValueError, IndexError):
        raise BadLine(f"unreadable version date {created[:40]!r}") from None
    return when.replace(tzinfo=dt.UTC) if when.tzinfo is None else when.astimezone(dt.UTC)


def _authors(paper: dict[str, object]) -> tuple[str, ...]:
    """``authors_parsed`` as ``first last suffix`` names when present (Unicode accents), else
    the ``authors`` text split on commas and `` and ``."""
    parsed = paper.get("authors_parsed")
    if isinstance(parsed, list) and parsed:
        names = []
        for p in parsed:
            if isinstance(p, list) and p and all(isinstance(x, str) for x in p):
                last, first, suffix = (list(p) + ["", ""])[:3]
                names.append(" ".join(f"{first} {last} {suffix}".split()))
        if names:
            return tuple(n for n in names if n)
    text = paper["authors"]
    if not isinstance(text, str):
        raise BadLine("field 'authors' is not text")
    return tuple(n for n in (clean_text(a) for a in text.replace(" and ", ", ").split(",")) if n)


def _text(paper: dict[str, object], name: str) -> str:
    value = paper[name]
    if not isinstance(value, str):
        raise BadLine(f"field {name!r} is not text")
    return value


def paper_entry(line: bytes) -> ParsedEntry:
    """The :class:`ParsedEntry` of one snapshot line, as the arXiv RSS path builds a paper (key
    ``arxiv:<id>``, abs URL without version, whitespace collapsed); its date is the first
    version's ``created`` and its version the number of the last one. Raises :class:`BadLine`
    with the reason when the line is not a usable paper."""
    try:
        paper = json.loads(line)
    except UnicodeDecodeError:
        raise BadLine("not UTF-8 text") from None
    except ValueError as err:
        raise BadLine(f"broken JSON: {err}") from None
    if not isinstance(paper, dict):
        raise BadLine("not a JSON object")
    for name in REQUIRED:
        if paper.get(name) is None:
            raise BadLine(f"missing field {name!r}")
    raw_id = _text(paper, "id").strip()
    found = split_arxiv_id(raw_id)
    if found is None or raw_id not in (found[0], f"{found[0]}v{found[1]}"):
        raise BadLine(f"not an arXiv id: {raw_id[:40]!r}")
    arxiv_id = found[0]
    versions = paper["versions"]
    if not isinstance(versions, list) or not versions or not isinstance(versions[0], dict):
        raise BadLine("field 'versions' is empty")
    created = versions[0].get("created")
    if not isinstance(created, str):
        raise BadLine("first version has no 'created' date")
    last = versions[-1].get("version") if isinstance(versions[-1], dict) else None
    version = int(last[1:]) if isinstance(last, str) and last[1:].isdigit() else len(versions)
    categories = tuple(dict.fromkeys(_text(paper, "categories").split()))
    title = clean_text(_text(paper, "title"))
    if not title:
        raise BadLine("empty title")
    comment = paper.get("comments")
    return ParsedEntry(
        kind="paper",
        key=f"arxiv:{arxiv_id}",
        title=title,
        url=f"https://arxiv.org/abs/{arxiv_id}",
        authors=_authors(paper),
        summary=clean_text(_text(paper, "abstract")),
        published=first_version_date(created),
        guid=f"oai:arXiv.org:{arxiv_id}",
        categories=categories,
        primary_category=categories[0] if categories else None,
        arxiv_id=arxiv_id,
        version=version,
        comment=(clean_text(comment) or None) if isinstance(comment, str) else None,
    )


def fingerprint(path: Path) -> tuple[str, int]:
    """``(fingerprint, size)`` of a snapshot file: its size in bytes and the SHA-1 of its first
    64 KiB. A new weekly snapshot differs in size, so it is imported from line 1 again."""
    size = path.stat().st_size
    with path.open("rb") as f:
        head = f.read(_HEAD_BYTES)
    return f"{size}:{hashlib.sha1(head).hexdigest()}", size


def snapshot_feed(session: Session, now: dt.datetime) -> int:
    """The id of the "Kaggle snapshot" feed row (created when missing; never scheduled)."""
    session.execute(
        insert(session.connection(), Feed.__table__)
        .values(
            url=SNAPSHOT_FEED_URL,
            name=SNAPSHOT_FEED_NAME,
            kind="arxiv",
            interval_minutes=24 * 60,
            tags=["arxiv", "snapshot"],
            scheduled=False,
            created_at=now,
            error_count=0,
            disabled=False,
            reader_added=False,
        )
        .on_conflict_do_nothing(index_elements=["url"])
    )
    return int(session.scalars(sa.select(Feed.id).where(Feed.url == SNAPSHOT_FEED_URL)).one())


def _checkpoint(
    session: Session, path: Path, filt: SnapshotFilter, restart: bool, now: dt.datetime
) -> SnapshotImport:
    digest, size = fingerprint(path)
    key = filt.key()
    session.execute(
        insert(session.connection(), SnapshotImport.__table__)
        .values(
            fingerprint=digest, filter=key, path=str(path), size=size, offset=0, line=0, kept=0,
            new=0, bad=0, bad_lines=[], done=False, started_at=now, updated_at=now,
        )
        .on_conflict_do_nothing(index_elements=["fingerprint", "filter"])
    )  # fmt: skip
    cp = session.scalars(
        sa.select(SnapshotImport).where(SnapshotImport.fingerprint == digest, SnapshotImport.filter == key)
    ).one()
    if restart:
        cp.offset = cp.line = cp.kept = cp.new = cp.bad = 0
        cp.bad_lines, cp.done, cp.started_at = [], False, now
    cp.path = str(path)
    return cp


def _lines(path: Path, offset: int, line: int) -> Iterable[tuple[int, int, bytes]]:
    """``(line number, byte offset after it, bytes)`` of each line from ``offset`` (the start of
    line ``line + 1``). Starts from the top when ``offset`` is not at the start of a line."""
    with path.open("rb", buffering=1 << 20) as f:
        if offset:
            f.seek(offset - 1)
            if f.read(1) != b"\n":
                f.seek(0)
                offset = line = 0
        for raw in f:
            line += 1
            offset += len(raw)
            yield line, offset, raw


def _store(
    engine: sa.Engine, cp_id: int, feed_id: int, batch: list[PaperRow], state: dict[str, object]
) -> tuple[int, int, int]:
    """Write one batch (:func:`snapshot_bulk.store_rows`) and move the checkpoint to ``state``
    in one transaction; returns ``(new, updated, unchanged)``."""
    now = utcnow()
    with session_factory(engine)() as session, session.begin():
        counts = store_rows(session, feed_id, batch, now, paper_entry) if batch else (0, 0, 0)
        state = {**state, "updated_at": now}
        session.execute(
            sa.update(SnapshotImport)
            .where(SnapshotImport.id == cp_id)
            .values(new=SnapshotImport.new + counts[0], **state)
        )
    return counts


def import_snapshot(
    engine: sa.Engine,
    path: Path,
    filt: SnapshotFilter | None = None,
    *,
    batch_size: int = 20_000,
    restart: bool = False,
    max_lines: int | None = None,
    progress: Callable[[ImportReport], None] | None = None,
) -> ImportReport:
    """Import a snapshot file from its checkpoint (see the module docstring).

    ``batch_size`` lines are read, then stored in one transaction with the checkpoint;
    ``progress`` is called after each batch. ``max_lines`` stops after that many lines (resume
    later); ``restart`` forgets the checkpoint. Raises :class:`OSError` when the file cannot
    be read. Long because it is the one streaming loop: read, filter, store, checkpoint.
    """
    filt = filt or SnapshotFilter()
    started = time.monotonic()
    with session_factory(engine)() as session, session.begin():
        now = utcnow()
        feed_id = snapshot_feed(session, now)
        cp = _checkpoint(session, path, filt, restart, now)
        cp_id, offset, line = cp.id, cp.offset, cp.line
        report = ImportReport(str(path), cp.size, first_line=line + 1, offset=offset, resumed=offset > 0)
        report.total_kept, report.total_new, report.total_bad = cp.kept, cp.new, cp.bad
        bad_lines = [(int(n), str(r)) for n, r in cp.bad_lines]
        finished = cp.done
    batch: list[PaperRow] = []
    sqlite = engine.dialect.name == "sqlite"
    batch_bad: list[tuple[int, str]] = []
    batch_lines = batch_bad_count = 0

    def flush(end_offset: int, end_line: int, done: bool) -> None:
        nonlocal batch_lines, batch_bad_count
        bad_lines.extend(batch_bad[: max(0, MAX_BAD_LINES - len(bad_lines))])
        report.total_kept += len(batch)
        report.total_bad += batch_bad_count
        state = {
            "offset": end_offset, "line": end_line, "kept": report.total_kept, "bad": report.total_bad,
            "bad_lines": [list(b) for b in bad_lines], "done": done,
        }  # fmt: skip
        new, updated, unchanged = _store(engine, cp_id, feed_id, batch, state)
        report.new += new
        report.total_new += new
        report.updated += updated
        report.unchanged += unchanged
        report.kept += len(batch)
        report.bad += batch_bad_count
        report.bad_lines.extend(batch_bad[: max(0, MAX_BAD_LINES - len(report.bad_lines))])
        report.offset, report.done = end_offset, done
        report.seconds = time.monotonic() - started
        batch.clear()
        batch_bad.clear()
        batch_lines = batch_bad_count = 0
        if progress is not None:
            progress(report)

    if finished:
        report.done = True
        report.seconds = time.monotonic() - started
        return report
    stopped = False
    collecting = gc.isenabled()
    gc.disable()  # ~10 % of the CPU time: rows and decoded lines make no reference cycles
    try:
        for number, end, raw in _lines(path, offset, line):
            if max_lines is not None and report.lines >= max_lines:
                stopped = True
                break
            report.lines += 1
            offset, line = end, number
            batch_lines += 1
            if raw.strip():
                try:
                    row = paper_row(raw, sqlite, paper_entry)
                except BadLine as err:
                    batch_bad_count += 1
                    if len(batch_bad) < MAX_BAD_LINES:
                        batch_bad.append((number, str(err)[:200]))
                else:
                    if filt.keeps_paper(row.day, row.categories):
                        batch.append(row)
            if batch_lines >= batch_size:
                flush(offset, line, False)
        flush(offset, line, not stopped)
    finally:
        if collecting:
            gc.enable()
    return report


def uncounted_ids(engine: sa.Engine, chunk: int = 20_000) -> Iterator[list[int]]:
    """Ids of the snapshot's dated items not yet in the trend counts, oldest first, in lists of
    at most ``chunk`` (so the counts can be added a bounded piece at a time; memory flat)."""
    query = (
        sa.select(Item.id)
        .join(ItemSource, ItemSource.item_id == Item.id)
        .join(Feed, Feed.id == ItemSource.feed_id)
        .outerjoin(TrendCounted, TrendCounted.item_id == Item.id)
        .where(Feed.url == SNAPSHOT_FEED_URL, TrendCounted.item_id.is_(None), Item.date_from_fetch.is_(False))
        .order_by(Item.published, Item.id)
    )
    last: tuple[dt.datetime, int] | None = None
    while True:
        page = query if last is None else query.where(sa.tuple_(Item.published, Item.id) > last)
        with engine.connect() as conn:
            rows = conn.execute(page.add_columns(Item.published).limit(chunk)).all()
        if not rows:
            return
        last = (rows[-1].published, rows[-1].id)
        yield [r.id for r in rows]
