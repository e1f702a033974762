"""Error answers: an HTML page for the pages, FastAPI's JSON for the API.

A person who types ``/?date=garbage`` into a browser should read what was wrong, not a JSON
body. Which answer a request gets is decided by its route, never by ``Accept``:

* JSON, exactly as FastAPI writes it (``{"detail": ...}``; a 422 lists ``loc``, ``msg``,
  ``type``, ``input``): every path under ``/api``, and routes outside it that are not pages
  (``/healthz``, ``/metrics``, ``/openapi.json``);
* HTML (``templates/error.html``, same status, same headers such as ``Allow`` or
  ``WWW-Authenticate``): routes tagged ``pages`` (``/``, ``/feeds``, ``/trends``, ``/me``,
  ``/me/profile``, ``/topics``, ``/signin`` and their forms) or ``email`` (the email links'
  confirmation pages), and paths that match no route at all outside ``/api`` (a browser's
  404).

A 405 names in ``Allow`` every method the path supports (Starlette names only those of the
first route that matched the path), in both forms.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler, request_validation_exception_handler
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from aggregator.errors import Conflict, Forbidden, NotFound, ReaderError
from aggregator.feeds.added_feeds import FeedError, FeedLimit

#: route tags whose errors are HTML pages
HTML_TAGS = frozenset({"pages", "email"})
#: where a request parameter came from, as FastAPI names it first in ``loc``
_PLACES = frozenset({"query", "path", "body", "header", "cookie"})
#: the OpenAPI ``responses`` of a page with parameters: its 422 is this HTML page, not JSON
HTML_422: dict[int | str, dict[str, Any]] = {
    422: {
        "description": "an HTML page saying which parameter was not valid and why",
        "content": {"text/html": {"schema": {"type": "string"}}},
    }
}
_TITLES = {
    400: "Bad request",
    401: "Sign in first",
    403: "Not allowed",
    404: "Page not found",
    405: "Method not allowed",
    422: "Some of the input was not valid",
}


def wants_html(request: Request) -> bool:
    """Whether an error on this request is answered with the HTML page (see the module)."""
    path = request.url.path
    if path == "/api" or path.startswith("/api/"):
        return False
    route = request.scope.get("route")
    if route is None:
        return True
    return bool(HTML_TAGS & set(getattr(route, "tags", None) or ()))


def problem_text(error: dict[str, Any]) -> str:
    """One validation error in words: ``"date: a date must be written YYYY-MM-DD (you sent
    “garbage”)"``."""
    loc = [str(part) for part in error.get("loc") or ()]
    if loc and loc[0] in _PLACES:
        loc = loc[1:]
    msg = str(error.get("msg") or "not valid")
    msg = msg.removeprefix("Value error, ")
    text = f"{'.'.join(loc)}: {msg}" if loc else msg
    given = error.get("input")
    if isinstance(given, str | int | float) and not isinstance(given, bool) and str(given) != "":
        shown = str(given)
        shown = shown if len(shown) <= 80 else shown[:77] + "…"
        text += f" (you sent “{shown}”)"
    return text


def _flat_routes(routes: Iterable[Any]) -> Iterator[Any]:
    """Every route, with the routers FastAPI includes (``_IncludedRouter``) opened up."""
    for route in routes:
        candidates = getattr(route, "effective_candidates", None)
        if callable(candidates):
            yield from _flat_routes(candidates())
        else:
            yield route


def _allowed_methods(request: Request) -> set[str]:
    """The methods of every route whose path matches the request's."""
    path = request.url.path
    methods: set[str] = set()
    for route in _flat_routes(request.app.router.routes):
        regex = getattr(route, "path_regex", None)
        if regex is not None and regex.match(path):
            methods |= set(getattr(route, "methods", None) or ())
    return methods


def error_page(
    request: Request,
    status: int,
    message: str,
    problems: list[str] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    """``templates/error.html`` with ``status``: a title, ``message``, the ``problems`` (one
    line each), links back to the digest and to the page without its parameters."""
    from aggregator.api.html import templates

    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    return templates.TemplateResponse(
        request,
        "error.html",
        {
            "status": status,
            "title": _TITLES.get(status, phrase),
            "phrase": phrase,
            "message": message,
            "problems": problems or [],
            "path": request.url.path,
        },
        status_code=status,
        headers=headers,
    )


async def validation_error(request: Request, exc: Exception) -> Response:
    """A 422: FastAPI's JSON, or on a page the problems in words."""
    assert isinstance(exc, RequestValidationError)
    if not wants_html(request):
        return await request_validation_exception_handler(request, exc)
    problems = [problem_text(e) for e in exc.errors()]
    n = len(problems)
    message = "This page could not be shown: " + (
        "one value was not understood." if n == 1 else f"{n} values were not understood."
    )
    return error_page(request, 422, message, problems)


async def http_error(request: Request, exc: Exception) -> Response:
    """An HTTP error: FastAPI's JSON (a 405 with every allowed method), or a page."""
    assert isinstance(exc, StarletteHTTPException)
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        allowed = _allowed_methods(request) | {
            m.strip() for m in headers.get("Allow", "").split(",") if m.strip()
        }
        headers["Allow"] = ", ".join(sorted(allowed))
    if wants_html(request):
        detail = exc.detail if isinstance(exc.detail, str) else str(exc.detail)
        if exc.status_code == 404 and detail == "Not Found":
            detail = f"There is no page at {request.url.path}."
        return error_page(request, exc.status_code, detail, headers=headers or None)
    if exc.status_code != 405:
        return await http_exception_handler(request, exc)
    return JSONResponse({"detail": exc.detail}, status_code=405, headers=headers)


#: HTTP status of each domain error (:mod:`aggregator.errors`); ``ReaderError`` is a 422
_DOMAIN_STATUS: dict[type[Exception], int] = {NotFound: 404, Forbidden: 403, Conflict: 409, FeedLimit: 409}


async def domain_error(request: Request, exc: Exception) -> Response:
    """A domain error raised by a lower stage, answered like FastAPI's own errors: a 422 shaped as
    a validation error (``loc`` names the body field when the error knows it), 404, 403 or 409
    with the message as ``detail``. One place instead of a try/except in every route."""
    if isinstance(exc, ReaderError | FeedError):
        loc = ("body", exc.field) if isinstance(exc, FeedError) else ("body",)
        problem = RequestValidationError(
            [{"type": "value_error", "loc": loc, "msg": str(exc), "input": None}]
        )
        return await validation_error(request, problem)
    status = next(s for kind, s in _DOMAIN_STATUS.items() if isinstance(exc, kind))
    detail = str(exc.args[0]) if exc.args else str(exc)
    return await http_error(request, StarletteHTTPException(status_code=status, detail=detail))


def install(app: FastAPI) -> None:
    """Register every error handler of this module on ``app``."""
    app.add_exception_handler(StarletteHTTPException, http_error)  # pages: HTML; API: JSON
    app.add_exception_handler(RequestValidationError, validation_error)
    for kind in (ReaderError, FeedError, *_DOMAIN_STATUS):
        app.add_exception_handler(kind, domain_error)
