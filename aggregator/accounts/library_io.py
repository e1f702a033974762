"""Export a reader's library and import citation files into it (the database side of
:mod:`aggregator.accounts.citations`).

Import rule (issue 13): an entry with an arXiv id becomes a library item (the paper is fetched
from the arXiv API first when not stored: the caller does that with :func:`missing_ids` and
:func:`finish_import`); an entry without one is matched on its exact normalised title
(:func:`aggregator.accounts.citations.normalise_title`) among stored items; anything else is
left out with the reason. ``as_seeds`` also adds the arXiv ids to the profile's seed papers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session

from aggregator import errors
from aggregator.accounts import library, profiles
from aggregator.accounts.citations import Reference, Work, normalise_title
from aggregator.store.locks import lock_reader
from aggregator.store.queries import item_sources
from aggregator.store.tables import Item, LibraryItem

#: entries read from one file at most
MAX_ENTRIES = 5000


def works(session: Session, reader_id: int, tag: str | None = None) -> list[Work]:
    """The reader's saved items (or those tagged ``tag``) as :class:`Work`, newest saved first."""
    saved = library.all_saved(session, reader_id, tag)
    ids = [s.item_id for s in saved]
    rows: dict[int, Item] = {}
    for start in range(0, len(ids), 500):
        rows.update(
            (i.id, i) for i in session.scalars(sa.select(Item).where(Item.id.in_(ids[start : start + 500])))
        )
    sources = item_sources(session, ids)
    out = []
    for s in saved:
        item = rows.get(s.item_id)
        if item is None:
            continue
        names = sources.get(item.id) or ["unknown"]
        out.append(
            Work(
                item_id=item.id,
                title=item.title,
                authors=list(item.authors or []),
                published=item.published,
                url=item.url,
                arxiv_id=item.arxiv_id,
                primary_category=item.primary_category,
                source=names[0],
                tags=s.tags,
                note=s.note,
                venue=getattr(item, "venue", None),
            )
        )
    return out


@dataclass(slots=True)
class ImportReport:
    """What an import did: ``imported`` entries saved by arXiv id, ``matched`` saved by title,
    ``pending`` arXiv ids not stored yet (being fetched), ``left_out`` ``[{line, title, reason}]``
    and ``seeds`` the arXiv ids added to the profile's seed papers."""

    imported: int = 0
    matched: int = 0
    pending: list[str] = field(default_factory=list)
    left_out: list[dict[str, object]] = field(default_factory=list)
    seeds: list[str] = field(default_factory=list)


def missing_ids(session: Session, refs: Sequence[Reference]) -> list[str]:
    """The arXiv ids of ``refs`` that are not stored as items."""
    wanted = list(dict.fromkeys(r.arxiv_id for r in refs if r.arxiv_id))
    have: set[str] = set()
    for start in range(0, len(wanted), 500):
        have.update(
            session.scalars(sa.select(Item.arxiv_id).where(Item.arxiv_id.in_(wanted[start : start + 500])))
        )  # type: ignore[arg-type]
    return [i for i in wanted if i not in have]


def _by_title(session: Session, titles: list[str]) -> dict[str, int]:
    """Normalised title → item id of stored items whose lower-cased, whitespace-collapsed
    title is among ``titles``' (candidates by ``lower(title)``, then compared normalised)."""
    keys = {normalise_title(t): t for t in titles if normalise_title(t)}
    lowered = list({" ".join(t.split()).lower() for t in keys.values()})
    found: dict[str, int] = {}
    for start in range(0, len(lowered), 200):
        rows = session.execute(
            sa.select(Item.id, Item.title).where(sa.func.lower(Item.title).in_(lowered[start : start + 200]))
        ).all()
        for item_id, title in rows:
            found.setdefault(normalise_title(title), item_id)
    return {k: found[k] for k in keys if k in found}


def import_references(
    session: Session, reader_id: int, refs: Sequence[Reference], as_seeds: bool = False
) -> ImportReport:
    """Save the entries that name a stored paper (by arXiv id, else by title) with their
    keywords as tags; report the rest. Raises ReaderError for more than MAX_ENTRIES entries.
    Flushes; the caller commits."""
    if len(refs) > MAX_ENTRIES:
        raise errors.ReaderError(f"file: at most {MAX_ENTRIES} entries ({len(refs)} found)")
    report = ImportReport()
    ids = [r.arxiv_id for r in refs if r.arxiv_id]
    stored: dict[str, int] = {}
    for start in range(0, len(ids), 500):
        stored.update(
            session.execute(
                sa.select(Item.arxiv_id, Item.id).where(Item.arxiv_id.in_(ids[start : start + 500]))
            ).all()  # type: ignore[arg-type]
        )
    titled = _by_title(session, [r.title for r in refs if not r.arxiv_id and r.title])
    for ref in refs:
        if ref.arxiv_id:
            item_id = stored.get(ref.arxiv_id)
            if item_id is None:
                if ref.arxiv_id not in report.pending:
                    report.pending.append(ref.arxiv_id)
                continue
            if _save(session, reader_id, item_id, ref, report):
                report.imported += 1
        elif not ref.title:
            report.left_out.append({"line": ref.line, "title": "", "reason": "no title and no arXiv id"})
        elif (item_id := titled.get(normalise_title(ref.title))) is not None:
            if _save(session, reader_id, item_id, ref, report):
                report.matched += 1
        else:
            report.left_out.append(
                {
                    "line": ref.line,
                    "title": ref.title[:200],
                    "reason": "no arXiv id, and no stored item has this title",
                }
            )
    if as_seeds:
        report.seeds = list(dict.fromkeys(ids))
        if report.seeds:  # read, merge and write the seed list as one step per reader
            lock_reader(session, reader_id)
            current = profiles.get_profile(session, reader_id).seed_papers
            profiles.update_profile(
                session, reader_id, seed_papers=list(dict.fromkeys([*current, *report.seeds]))
            )
    return report


def _save(session: Session, reader_id: int, item_id: int, ref: Reference, report: ImportReport) -> bool:
    """Save one entry, keeping tags already given; a bad keyword list is left out, not fatal."""
    existing = session.get(LibraryItem, (reader_id, item_id))
    tags = list(dict.fromkeys([*(existing.tags if existing else []), *ref.tags]))
    try:
        library.save_item(session, reader_id, item_id, tags=tags[: library.MAX_TAGS])
    except errors.ReaderError as err:
        try:
            library.save_item(session, reader_id, item_id)
        except errors.ReaderError as again:
            report.left_out.append({"line": ref.line, "title": ref.title[:200], "reason": str(again)})
            return False
        report.left_out.append(
            {"line": ref.line, "title": ref.title[:200], "reason": f"saved without its keywords: {err}"}
        )
    return True


def finish_import(session: Session, reader_id: int, refs: Sequence[Reference]) -> ImportReport:
    """After the pending papers were fetched: save the entries whose arXiv id is now stored."""
    return import_references(session, reader_id, [r for r in refs if r.arxiv_id])
