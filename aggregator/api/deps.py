"""FastAPI dependencies: settings and a database session per request."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.orm import Session

from aggregator.config import Settings


def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


async def get_session(request: Request) -> AsyncIterator[Session]:
    """A session per request, closed when the request ends.

    An *async* generator on purpose: FastAPI runs the exit of a sync generator dependency in
    its worker-thread pool, so when every worker thread waits for a pooled connection the
    sessions that would give connections back cannot close, and the process deadlocks (seen
    under wrk at 64 connections). Closing here, in the event loop, needs no thread. The
    session connects lazily, inside the (sync) endpoint's thread."""
    session = request.app.state.sessionmaker()
    try:
        yield session
    finally:
        session.close()


SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def unprocessable(message: str, loc: tuple[str, ...] = ("query",)) -> RequestValidationError:
    """A 422 shaped like FastAPI's own (``{"detail": [{"loc", "msg", "type"}]}``), so every 422
    matches the documented ``HTTPValidationError`` schema. Raise the returned exception."""
    return RequestValidationError([{"type": "value_error", "loc": loc, "msg": message, "input": None}])


#: OpenAPI ``responses`` shared by the routes that need or accept a bearer token
AUTH_401: dict[int | str, dict[str, Any]] = {401: {"description": "missing or invalid bearer token"}}
BAD_422: dict[int | str, dict[str, Any]] = {
    422: {"description": "invalid input; `detail` says which field and why"}
}
#: ``openapi_extra`` of a route where the token is optional (anonymous callers allowed)
OPTIONAL_AUTH: dict[str, Any] = {"security": [{}]}
