"""HTML pages, rendered on the server with Jinja2; no JavaScript needed."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse
from fastapi.templating import Jinja2Templates

from ..digest import build_digest
from .deps import SessionDep, SettingsDep
from .routes import DateQuery, DaysQuery, LimitQuery

router = APIRouter()
templates = Jinja2Templates(directory=str(Path(__file__).resolve().parent.parent / "templates"))


@router.get("/", response_class=HTMLResponse, tags=["pages"])
def digest_page(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    date: DateQuery = None,
    days: DaysQuery = 1,
    limit: LimitQuery = 50,
) -> HTMLResponse:
    """The ranked daily digest as a page readable on a phone."""
    digest = build_digest(session, settings.tz, date, days, limit)
    return templates.TemplateResponse(
        request,
        "digest.html",
        {
            "digest": digest,
            "timezone": settings.timezone,
            "prev_day": digest.date - dt.timedelta(days=1),
            "next_day": digest.date + dt.timedelta(days=1),
            "limit": limit,
            "rising": rising_terms(session),
        },
    )


def rising_terms(session: SessionDep, limit: int = 5) -> list[dict[str, object]]:
    """The top rising terms of all scopes (stored 7 d / 56 d result) for the page header."""
    from ..trends import stored_payload

    payload = stored_payload(session)
    return [] if payload is None else payload["terms"][:limit]
