"""The ``/search`` page: the search box's results, readable without JavaScript (issue 13)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse

from aggregator.api.auth import WebSessionDep
from aggregator.api.deps import SessionDep
from aggregator.api.html import templates
from aggregator.api.paging import CursorQuery, FiltersDep, next_cursor
from aggregator.api.routes.digest import IsoDate
from aggregator.api.routes.search import MAX_LIMIT, run_search
from aggregator.digest.filters import DigestFilters

router = APIRouter()


@router.get("/search", response_class=HTMLResponse, tags=["pages"])
def search_page(
    request: Request,
    session: SessionDep,
    ws: WebSessionDep,
    q: Annotated[str, Query(max_length=20_000)] = "",
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 25,
    cursor: CursorQuery = None,
    filters: FiltersDep = DigestFilters(),
    since: Annotated[IsoDate | None, Query(alias="from")] = None,
    until: Annotated[IsoDate | None, Query(alias="to")] = None,
) -> HTMLResponse:
    """Results of ``q`` (the syntax of ``GET /api/search``), best first, with a "more" link;
    without ``q`` the search tips. A bad query is shown on the page with its reason (422)."""
    ctx: dict[str, object] = {
        "search_q": q,
        "items": None,
        "error": None,
        "more": None,
        "filters": filters,
        "ws": ws,
    }
    status = 200
    if q.strip():
        try:
            page = run_search(request, session, q, limit, cursor, filters, since, until, None, False)
        except RequestValidationError as err:
            ctx["error"] = "; ".join(str(e.get("msg", "")) for e in err.errors())
            status = 422
        else:
            ctx["items"] = page.items
            token = next_cursor(request, page.cursor)
            if token is not None:
                ctx["more"] = str(request.url.include_query_params(cursor=token))
    return templates.TemplateResponse(request, "search.html", ctx, status_code=status)
