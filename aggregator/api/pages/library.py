"""The reader's library page and the form endpoints of the ☆ save and mark-read buttons.

* ``GET /library?tag=&cursor=``: saved items with their tags and notes, a tag filter, an
  edit form per item, export links and the import form. Works without JavaScript.
* ``POST /me/library/{item_id}/save`` (``remove=true|false``, optional ``tags`` — comma
  separated — and ``note``), ``POST /me/items/{item_id}/read`` (``unread=true|false``),
  ``POST /me/library/import`` (multipart ``file``, checkbox ``as_seeds``).
* ``GET /me/items/{item_id}/open``: marks the item read, then redirects to its URL.

Forms carry the session's CSRF token and answer 303 back to ``next``; a request with
``Accept: application/json`` gets ``{"item_id", "saved"|"read"}`` instead (the keyboard script).
"""

from __future__ import annotations

import urllib.parse
from typing import Annotated, Any

from fastapi import APIRouter, BackgroundTasks, File, Form, HTTPException, Query, Request, UploadFile
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response

from aggregator import errors
from aggregator.accounts import library, library_io
from aggregator.api.auth import WebSessionDep
from aggregator.api.deps import SessionDep
from aggregator.api.html import templates
from aggregator.api.pages.account import CsrfForm, _require, _see_other, _signin_redirect
from aggregator.api.pages.signin import safe_next
from aggregator.api.routes.digest import ItemId
from aggregator.api.routes.library import fetch_then_save, item_cards, read_references
from aggregator.store.tables import Item

router = APIRouter(tags=["pages"])


def _wants_json(request: Request) -> bool:
    return "application/json" in request.headers.get("accept", "")


def _tags(text: str | None) -> list[str] | None:
    return None if text is None else [t for t in (p.strip() for p in text.split(",")) if t]


@router.get("/library", response_class=HTMLResponse, name="library_page")
def library_page(
    request: Request,
    ws: WebSessionDep,
    session: SessionDep,
    tag: Annotated[str | None, Query(max_length=library.MAX_TAG_LEN)] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    imported: Annotated[str | None, Query(max_length=200)] = None,
    error: Annotated[str | None, Query(max_length=300)] = None,
) -> Response:
    """Your saved items, newest first, with their tags and notes; filter by a tag."""
    if ws is None:
        return _signin_redirect(request)
    try:
        page = library.list_library(session, ws.reader_id, tag or None, cursor, 50)
    except errors.ReaderError as err:
        raise HTTPException(status_code=422, detail=str(err)) from err
    ids = [s.item_id for s in page.items]
    found, read = item_cards(session, ids), library.read_ids(session, ws.reader_id, ids)
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    more = None
    if page.next_cursor:
        more = "/library?" + urllib.parse.urlencode(
            {k: v for k, v in (("tag", tag), ("cursor", page.next_cursor)) if v}
        )
    return templates.TemplateResponse(
        request,
        "library.html",
        {
            "ws": ws,
            "entries": [(s, found.get(s.item_id)) for s in page.items if s.item_id in found],
            "read": read,
            "tags": library.tag_counts(session, ws.reader_id),
            "tag": tag,
            "more": more,
            "here": here,
            "imported": imported,
            "error": error,
            "limits": {"tags": library.MAX_TAGS, "tag": library.MAX_TAG_LEN, "note": library.MAX_NOTE_LEN},
        },
    )


@router.post("/me/library/{item_id}/save")
def save_form(
    request: Request,
    item_id: ItemId,
    ws: WebSessionDep,
    session: SessionDep,
    csrf_token: CsrfForm = "",
    remove: Annotated[bool, Form()] = False,
    tags: Annotated[str | None, Form(max_length=5000)] = None,
    note: Annotated[str | None, Form(max_length=20_000)] = None,
    next: Annotated[str, Form()] = "/library",
) -> Response:
    """☆ save (or ``remove=true``: unsave) an item; with ``tags``/``note``, edit them."""
    ws = _require(ws, csrf_token)
    try:
        if remove:
            library.remove_item(session, ws.reader_id, item_id)
        else:
            library.save_item(session, ws.reader_id, item_id, _tags(tags), note)
    except errors.NotFound as err:
        raise HTTPException(status_code=404, detail=str(err)) from err
    except errors.ReaderError as err:
        session.rollback()
        if _wants_json(request):
            return JSONResponse({"detail": str(err)}, status_code=422)
        return _see_other("/library?" + urllib.parse.urlencode({"error": str(err)[:300]}))
    session.commit()
    if _wants_json(request):
        return JSONResponse({"item_id": item_id, "saved": not remove})
    return _see_other(safe_next(next, "/library").split("#")[0] + f"#item-{item_id}")


@router.post("/me/items/{item_id}/read")
def read_form(
    request: Request,
    item_id: ItemId,
    ws: WebSessionDep,
    session: SessionDep,
    csrf_token: CsrfForm = "",
    unread: Annotated[bool, Form()] = False,
    next: Annotated[str, Form()] = "/me",
) -> Response:
    """Mark an item read (``unread=true``: unread)."""
    ws = _require(ws, csrf_token)
    try:
        library.set_read(session, ws.reader_id, item_id, not unread)
    except errors.NotFound as err:
        raise HTTPException(status_code=404, detail=str(err)) from err
    session.commit()
    if _wants_json(request):
        return JSONResponse({"item_id": item_id, "read": not unread})
    return _see_other(safe_next(next).split("#")[0] + f"#item-{item_id}")


@router.get("/me/items/{item_id}/open", name="open_item")
def open_item(request: Request, item_id: ItemId, ws: WebSessionDep, session: SessionDep) -> Response:
    """Mark the item read (when signed in) and go to it: its arXiv abstract page or post URL.
    A GET with a side effect on purpose (a plain link must do it); it only ever marks read."""
    item = session.get(Item, item_id)
    if item is None:
        raise HTTPException(status_code=404, detail=f"no item with id {item_id}")
    if ws is not None:
        library.set_read(session, ws.reader_id, item_id, True, how="opened")
        session.commit()
    target = f"https://arxiv.org/abs/{item.arxiv_id}" if item.arxiv_id else item.url
    if not target or not target.startswith(("http://", "https://")):
        target = f"/api/items/{item_id}"
    return RedirectResponse(target, status_code=303)


@router.post("/me/library/import")
async def import_form(
    request: Request,
    ws: WebSessionDep,
    session: SessionDep,
    tasks: BackgroundTasks,
    file: Annotated[UploadFile, File()],
    csrf_token: CsrfForm = "",
    as_seeds: Annotated[bool, Form()] = False,
) -> Response:
    """Import a BibTeX, RIS or CSL-JSON file from the profile page. Answers a page with the
    counts and every left-out entry (line, title, reason); a malformed file goes back to
    /library with the error."""
    ws = _require(ws, csrf_token)
    try:
        _, refs = read_references(await file.read(), file.filename)
    except RequestValidationError as err:  # shown on the page, not as JSON
        errors: Any = err.errors()
        return _see_other("/library?" + urllib.parse.urlencode({"error": str(errors[0]["msg"])[:300]}))
    try:
        report = library_io.import_references(session, ws.reader_id, refs, as_seeds)
    except errors.ReaderError as err:
        session.rollback()
        return _see_other("/library?" + urllib.parse.urlencode({"error": str(err)[:300]}))
    session.commit()
    if report.pending:
        wanted = set(report.pending)
        tasks.add_task(
            fetch_then_save,
            request.app.state,
            ws.reader_id,
            [r for r in refs if r.arxiv_id in wanted],
            report.pending,
        )
    return templates.TemplateResponse(  # the outcome itself, each left-out entry with its reason
        request,
        "library_import.html",
        {"ws": ws, "filename": file.filename or "the file", "entries": len(refs), "report": report},
    )


@router.get("/me/library.{suffix}", name="library_export_page")
def export_page(
    request: Request,
    suffix: str,
    ws: WebSessionDep,
    session: SessionDep,
    tag: Annotated[str | None, Query(max_length=library.MAX_TAG_LEN)] = None,
) -> Response:
    """The export links of /library (session cookie instead of a bearer token): ``bib``,
    ``ris`` or ``json`` (CSL-JSON), as ``GET /api/me/library.<suffix>``."""
    from aggregator.accounts import citations
    from aggregator.api.routes import library as api

    if ws is None:
        return _signin_redirect(request)
    works = library_io.works(session, ws.reader_id, tag)
    if suffix == "bib":
        return api._download(
            citations.to_bibtex(works), "application/x-bibtex; charset=utf-8", api._file_name(tag, "bib")
        )
    if suffix == "ris":
        return api._download(
            citations.to_ris(works),
            "application/x-research-info-systems; charset=utf-8",
            api._file_name(tag, "ris"),
        )
    if suffix == "json":
        import json

        body = json.dumps(citations.to_csl(works), ensure_ascii=False, indent=1)
        return api._download(body, "application/vnd.citationstyles.csl+json", api._file_name(tag, "json"))
    raise HTTPException(status_code=404, detail="export as .bib, .ris or .json")


@router.get("/similar/{item_id}", response_class=HTMLResponse, name="similar_page")
def similar_page(request: Request, item_id: ItemId, ws: WebSessionDep, session: SessionDep) -> Response:
    """More like this, as a page: the items closest to this one (``GET /api/items/{id}/similar``)."""
    from aggregator.api.routes.items import similar_items

    item = session.get(Item, item_id)
    if item is None:
        raise HTTPException(status_code=404, detail=f"no item with id {item_id}")
    try:
        found = similar_items(item_id, request, session, limit=20).items
        waiting = False
    except HTTPException as err:
        if err.status_code != 503:
            raise
        found, waiting = [], True
    origin = item_cards(session, [item_id]).get(item_id)
    return templates.TemplateResponse(
        request, "similar.html", {"ws": ws, "origin": origin, "items": found, "waiting": waiting}
    )
