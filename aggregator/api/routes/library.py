"""Reader routes of the library, read state and vote history (issue 13), all under
``/api/me`` with ``Authorization: Bearer TOKEN``; the reader comes from the token only, so no
route can reach another reader's rows.

* ``PUT /api/me/library/{item_id}`` ``{"tags": [...], "note": "..."}`` saves or edits;
  ``DELETE`` removes; ``GET /api/me/library?tag=&cursor=&limit=`` pages newest saved first.
* ``GET /api/me/library.bib`` / ``.ris`` / ``.json`` (CSL-JSON), ``?tag=`` for one tag.
* ``POST /api/me/library/import`` (multipart ``file``; ``?as_seeds=true``).
* ``POST /api/me/items/{item_id}/read`` and ``/unread``.
* ``GET /api/me/feedback?cursor=`` the reader's votes newest first.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Sequence
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, BackgroundTasks, File, HTTPException, Query, Request, Response, UploadFile
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from aggregator.accounts import citations, library, library_io
from aggregator.api.auth import ReaderDep
from aggregator.api.deps import SessionDep, unprocessable
from aggregator.api.routes.digest import ItemId
from aggregator.digest import cards
from aggregator.store.tables import Item

log = logging.getLogger(__name__)
router = APIRouter(tags=["library"])

_AUTH: dict[int | str, dict[str, Any]] = {401: {"description": "missing or invalid bearer token"}}
_BAD: dict[int | str, dict[str, Any]] = {
    422: {"description": "invalid input; `detail` says which field and why"}
}
_404: dict[int | str, dict[str, Any]] = {404: {"description": "no such item (or not in your library)"}}

TagQuery = Annotated[
    str | None, Query(max_length=library.MAX_TAG_LEN, description="only items with this tag")
]
CursorQuery = Annotated[str | None, Query(max_length=200, description="`next_cursor` of the previous page")]
PageLimit = Annotated[int, Query(ge=1, le=library.MAX_PAGE, description="items per page")]


class LibraryIn(BaseModel):
    tags: list[str] | None = Field(
        default=None,
        max_length=200,
        description=f"free tags, at most {library.MAX_TAGS}, each at most {library.MAX_TAG_LEN} characters; "
        "omitted: unchanged",
    )
    note: str | None = Field(
        default=None,
        max_length=20_000,
        description=f"a note, at most {library.MAX_NOTE_LEN} characters; omitted: unchanged",
    )


class LibraryEntry(BaseModel):
    item_id: int
    tags: list[str]
    note: str
    saved_at: dt.datetime
    updated_at: dt.datetime
    read: bool = Field(default=False, description="you read (or were shown) the item")
    item: dict[str, Any] | None = Field(
        default=None, description="the item's digest card (title, url, authors, …)"
    )


class LibraryPage(BaseModel):
    items: list[LibraryEntry]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page; null on the last page")
    tags: list[dict[str, Any]] = Field(description="all your tags with their counts, most used first")


class ReadOut(BaseModel):
    item_id: int
    read: bool


class VoteOut(BaseModel):
    item_id: int
    value: Literal[-1, 1]
    created_at: dt.datetime
    item: dict[str, Any] | None = None


class VotePage(BaseModel):
    items: list[VoteOut]
    next_cursor: str | None


class ImportOut(BaseModel):
    format: str
    entries: int
    imported: int = Field(description="entries saved by their arXiv id")
    matched: int = Field(description="entries without an arXiv id saved by their exact title")
    pending: list[str] = Field(description="arXiv ids not stored yet: fetched from the arXiv API, then saved")
    left_out: list[dict[str, Any]] = Field(description="entries not saved: line, title and reason")
    seeds: list[str] = Field(description="arXiv ids added to your seed papers (as_seeds=true)")


def item_cards(session: Session, ids: Sequence[int]) -> dict[int, dict[str, Any]]:
    """The stored (or freshly built) digest card of each item, as a dict."""
    stored: dict[int, str | None] = {}
    for start in range(0, len(ids), 500):
        stored.update(
            session.execute(
                sa.select(Item.id, Item.card).where(Item.id.in_(list(ids[start : start + 500])))
            ).all()
        )
    built = cards.build_cards(session, [i for i, c in stored.items() if c is None])
    return {i: json.loads(c or built[i]) for i, c in stored.items() if c or i in built}


def _entry(s: library.Saved, read: set[int], found: dict[int, dict[str, Any]]) -> LibraryEntry:
    return LibraryEntry(
        item_id=s.item_id,
        tags=s.tags,
        note=s.note,
        saved_at=s.saved_at,
        updated_at=s.updated_at,
        read=s.item_id in read,
        item=found.get(s.item_id),
    )


@router.put("/api/me/library/{item_id:int}", response_model=LibraryEntry, responses={**_AUTH, **_404, **_BAD})
def save(item_id: ItemId, body: LibraryIn, reader: ReaderDep, session: SessionDep) -> LibraryEntry:
    """Save an item in your library, or change its tags and note (a field left out keeps its
    value). Too many or too long tags, or a too long note, are a 422 saying which bound."""
    saved, _ = library.save_item(session, reader.id, item_id, body.tags, body.note)
    session.commit()
    return _entry(saved, library.read_ids(session, reader.id, [item_id]), item_cards(session, [item_id]))


@router.delete(
    "/api/me/library/{item_id:int}", status_code=204, response_class=Response, responses={**_AUTH, **_404}
)
def remove(item_id: ItemId, reader: ReaderDep, session: SessionDep) -> Response:
    """Take an item out of your library (its tags and note go with it)."""
    if not library.remove_item(session, reader.id, item_id):
        raise HTTPException(status_code=404, detail=f"item {item_id} is not in your library")
    session.commit()
    return Response(status_code=204)


@router.get("/api/me/library", response_model=LibraryPage, responses={**_AUTH, **_BAD})
def list_saved(
    reader: ReaderDep,
    session: SessionDep,
    tag: TagQuery = None,
    cursor: CursorQuery = None,
    limit: PageLimit = 50,
) -> LibraryPage:
    """Your saved items, newest saved first, with their cards, tags, notes and read state;
    ``tag`` keeps those with that tag (ignoring case)."""
    page = library.list_library(session, reader.id, tag, cursor, limit)
    ids = [s.item_id for s in page.items]
    read, found = library.read_ids(session, reader.id, ids), item_cards(session, ids)
    return LibraryPage(
        items=[_entry(s, read, found) for s in page.items],
        next_cursor=page.next_cursor,
        tags=[{"tag": t, "count": n} for t, n in library.tag_counts(session, reader.id)],
    )


def _download(body: str | bytes, media_type: str, name: str) -> Response:
    return Response(
        body, media_type=media_type, headers={"Content-Disposition": f'attachment; filename="{name}"'}
    )


def _file_name(tag: str | None, suffix: str) -> str:
    # ASCII only: the name goes into a latin-1 header (Content-Disposition)
    safe = "".join(ch if (ch.isascii() and ch.isalnum()) or ch in "-_" else "-" for ch in (tag or ""))[:40]
    return f"library{'-' + safe if safe else ''}.{suffix}"


def _export(media_type: str, schema: dict[str, Any] | None = None) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` of an export: the file's media type and body, and the 401."""
    return {200: {"content": {media_type: {"schema": schema or {"type": "string"}}}}, **_AUTH}


@router.get("/api/me/library.bib", response_class=Response, responses=_export("application/x-bibtex"))
def export_bibtex(reader: ReaderDep, session: SessionDep, tag: TagQuery = None) -> Response:
    """Your library (or one tag) as BibTeX: arXiv papers as arXiv writes them (``eprint``,
    ``archivePrefix``, ``primaryClass``, title, authors, year, URL), posts as ``@misc``."""
    text = citations.to_bibtex(library_io.works(session, reader.id, tag))
    return _download(text, "application/x-bibtex; charset=utf-8", _file_name(tag, "bib"))


@router.get(
    "/api/me/library.ris", response_class=Response, responses=_export("application/x-research-info-systems")
)
def export_ris(reader: ReaderDep, session: SessionDep, tag: TagQuery = None) -> Response:
    """Your library (or one tag) as RIS (Zotero, EndNote, Mendeley)."""
    text = citations.to_ris(library_io.works(session, reader.id, tag))
    return _download(text, "application/x-research-info-systems; charset=utf-8", _file_name(tag, "ris"))


@router.get(
    "/api/me/library.json",
    response_class=Response,
    responses=_export(
        "application/vnd.citationstyles.csl+json", {"type": "array", "items": {"type": "object"}}
    ),
)
def export_csl(reader: ReaderDep, session: SessionDep, tag: TagQuery = None) -> Response:
    """Your library (or one tag) as CSL-JSON (citeproc, Pandoc, Zotero)."""
    data = citations.to_csl(library_io.works(session, reader.id, tag))
    return _download(
        json.dumps(data, ensure_ascii=False, indent=1),
        "application/vnd.citationstyles.csl+json",
        _file_name(tag, "json"),
    )


#: bytes of an imported file at most (the app's request-size limit applies too)
MAX_IMPORT_BYTES = 5_000_000


def read_references(raw: bytes, filename: str | None) -> tuple[str, list[citations.Reference]]:
    """``(format, references)`` of an uploaded file; the RequestValidationError of a 422 for a
    file that is not UTF-8, too large, or malformed (naming the line)."""
    if len(raw) > MAX_IMPORT_BYTES:
        raise unprocessable(f"file: at most {MAX_IMPORT_BYTES} bytes", ("body", "file"))
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise unprocessable(f"file: not UTF-8 text (byte {err.start})", ("body", "file")) from err
    fmt = citations.sniff(text, filename)
    try:
        return fmt, citations.parse(text, fmt)
    except citations.CitationError as err:
        raise unprocessable(str(err), ("body", "file")) from err


def fetch_then_save(state: Any, reader_id: int, refs: list[citations.Reference], pending: list[str]) -> None:
    """Background task: fetch the pending papers from the arXiv API (id_list, 100 per request,
    3 s apart), then save them in the reader's library. Errors are logged, never raised."""
    from aggregator.worker import backfill

    try:
        report = backfill.fetch_papers(state.engine, state.settings, pending)
        if report.error:
            log.warning("fetching imported papers failed: %s", report.error)
        with state.sessionmaker() as session:
            library_io.finish_import(session, reader_id, refs)
            session.commit()
    except Exception:
        log.exception("finishing the library import of reader %s failed", reader_id)


@router.post("/api/me/library/import", response_model=ImportOut, responses={**_AUTH, **_BAD})
async def import_file(
    request: Request,
    reader: ReaderDep,
    tasks: BackgroundTasks,
    file: Annotated[UploadFile, File(description="a BibTeX, RIS or CSL-JSON file, e.g. a Zotero export")],
    as_seeds: Annotated[bool, Query(description="also add the arXiv ids to your seed papers")] = False,
) -> ImportOut:
    """Import a citation file: entries with an arXiv id (``eprint``, ``url``, a
    ``10.48550/arXiv.…`` DOI, or ``arXiv:ID`` in a note) are saved; the others are matched on
    their exact normalised title among stored items. Papers not stored yet are fetched from the
    arXiv API in the background, then saved (listed in ``pending``). A malformed file is a 422
    naming the line."""
    fmt, refs = read_references(await file.read(MAX_IMPORT_BYTES + 1), file.filename)
    from starlette.concurrency import run_in_threadpool

    return await run_in_threadpool(_import, request.app.state, reader.id, tasks, fmt, refs, as_seeds)


def _import(
    state: Any,
    reader_id: int,
    tasks: BackgroundTasks,
    fmt: str,
    refs: list[citations.Reference],
    as_seeds: bool,
) -> ImportOut:
    with state.sessionmaker() as session:
        report = library_io.import_references(session, reader_id, refs, as_seeds)
        session.commit()
    if report.pending:
        tasks.add_task(
            fetch_then_save,
            state,
            reader_id,
            [r for r in refs if r.arxiv_id in set(report.pending)],
            report.pending,
        )
    return ImportOut(
        format=fmt,
        entries=len(refs),
        imported=report.imported,
        matched=report.matched,
        pending=report.pending,
        left_out=report.left_out,
        seeds=report.seeds,
    )


@router.post("/api/me/items/{item_id}/read", response_model=ReadOut, responses={**_AUTH, **_404})
def mark_read(item_id: ItemId, reader: ReaderDep, session: SessionDep) -> ReadOut:
    """Mark an item read (again is harmless)."""
    library.set_read(session, reader.id, item_id, True)
    session.commit()
    return ReadOut(item_id=item_id, read=True)


@router.post("/api/me/items/{item_id}/unread", response_model=ReadOut, responses={**_AUTH, **_404})
def mark_unread(item_id: ItemId, reader: ReaderDep, session: SessionDep) -> ReadOut:
    """Mark an item unread."""
    library.set_read(session, reader.id, item_id, False)
    session.commit()
    return ReadOut(item_id=item_id, read=False)


@router.get("/api/me/feedback", response_model=VotePage, responses={**_AUTH, **_BAD})
def list_feedback(
    reader: ReaderDep, session: SessionDep, cursor: CursorQuery = None, limit: PageLimit = 50
) -> VotePage:
    """Your 👍/👎 votes, newest first, each with the item's card."""
    votes, nxt = library.list_votes(session, reader.id, cursor, limit)
    found = item_cards(session, [v.item_id for v in votes])
    return VotePage(
        items=[
            VoteOut(item_id=v.item_id, value=v.value, created_at=v.created_at, item=found.get(v.item_id))
            for v in votes
        ],  # type: ignore[arg-type]
        next_cursor=nxt,
    )
