"""FastAPI dependencies: settings and a database session per request."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated

from fastapi import Depends, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.orm import Session

from ..settings import Settings


def get_settings(request: Request) -> Settings:
    return request.app.state.settings  # type: ignore[no-any-return]


def get_session(request: Request) -> Iterator[Session]:
    with request.app.state.sessionmaker() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
SettingsDep = Annotated[Settings, Depends(get_settings)]


def unprocessable(message: str, loc: tuple[str, ...] = ("query",)) -> RequestValidationError:
    """A 422 shaped like FastAPI's own (``{"detail": [{"loc", "msg", "type"}]}``), so every 422
    matches the documented ``HTTPValidationError`` schema. Raise the returned exception."""
    return RequestValidationError([{"type": "value_error", "loc": loc, "msg": message, "input": None}])
