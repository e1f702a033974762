"""Routes of the weekly email's links, and its preview.

* ``GET /email/feedback?t=TOKEN`` shows the item and a button; its ``POST`` records the
  signed 👍/👎 (no sign-in), rescores the reader's items, and says so (a link scanner's GET
  votes nothing: issue 17). A tampered token → 400, an expired one → 410, an item or reader
  that no longer exists → 404; nothing is recorded then.
* ``GET /email/unsubscribe?t=TOKEN`` shows a confirmation form; ``POST`` (the form, or a mail
  client's RFC 8058 one-click ``List-Unsubscribe=One-Click`` POST) turns the weekly email
  off. Same errors as above. Idempotent.
* ``GET /api/me/email/preview?week=2026-W25`` (bearer token) returns the HTML part of the
  reader's email for that ISO week (default: the current week on the reader's clock).

Token pages send ``Cache-Control: no-store`` and ``Referrer-Policy: no-referrer`` so the
capability in the URL is neither cached nor leaked to the next site.
"""

from __future__ import annotations

import datetime as dt
import logging
import zoneinfo
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse

from aggregator.accounts import feedback
from aggregator.api import rescoring
from aggregator.api.auth import ReaderDep, secret_key
from aggregator.api.deps import SessionDep, SettingsDep, unprocessable
from aggregator.api.errors import HTML_422
from aggregator.mail import tokens
from aggregator.mail.compose import compose_week, current_week, week_monday
from aggregator.mail.render import environment, render_week
from aggregator.store.tables import Item, Reader

log = logging.getLogger(__name__)
router = APIRouter()

_TOKEN = Annotated[str, Query(alias="t", max_length=1024, description="the signed token of the link")]
_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}


def _signer(request: Request) -> tokens.LinkSigner:
    return tokens.LinkSigner(secret_key(request))


def _page(status: int, title: str, message: str, **extra: object) -> HTMLResponse:
    html = (
        environment()
        .get_template("email_link.html")
        .render(
            title=title,
            message=message,
            item_title=extra.get("item_title"),
            form_action=extra.get("form_action"),
            form_label=extra.get("form_label"),
            form_kind=extra.get("form_kind", "unsubscribe"),
            home_url="/me",
        )
    )
    return HTMLResponse(html, status_code=status, headers=_HEADERS)


def _token_error(err: tokens.TokenError) -> HTMLResponse:
    if isinstance(err, tokens.TokenExpired):
        return _page(410, "Link expired", f"{err}. Open the digest and rate the item there instead.")
    return _page(400, "Link not valid", f"{err}. Nothing was changed.")


def _feedback_claim(
    request: Request, session: SessionDep, t: str
) -> tuple[tokens.FeedbackClaim | None, Reader | None, Item | None, HTMLResponse | None]:
    """The token's claim, reader and item; or the error page (400/410/404) to answer."""
    try:
        claim = _signer(request).load_feedback(t)
    except tokens.TokenError as err:
        return None, None, None, _token_error(err)
    reader = session.get(Reader, claim.reader_id)
    item = session.get(Item, claim.item_id)
    if reader is None or item is None:
        page = _page(404, "Not found", "This item or account no longer exists. Nothing was recorded.")
        return None, None, None, page
    return claim, reader, item, None


def _word(value: int) -> str:
    return "👍 More like this" if value > 0 else "👎 Less like this"


@router.get("/email/feedback", response_class=HTMLResponse, tags=["email"], responses=HTML_422)
def email_feedback_form(t: _TOKEN, request: Request, session: SessionDep) -> HTMLResponse:
    """The item and a button that confirms the vote; nothing is recorded until it is posted
    (a mail client's link scanner only GETs).
    \f
    Issue 17: a scanner's GET must never vote."""
    claim, _, item, error = _feedback_claim(request, session, t)
    if error is not None or claim is None or item is None:
        return error or _page(404, "Not found", "Nothing was recorded.")
    return _page(
        200,
        f"{_word(claim.value)}?",
        "Confirm to record this vote; your next digest takes it into account.",
        item_title=item.title,
        form_action=str(request.url),
        form_label=_word(claim.value),
        form_kind="vote",
    )


@router.post("/email/feedback", response_class=HTMLResponse, tags=["email"], responses=HTML_422)
def email_feedback(t: _TOKEN, request: Request, session: SessionDep) -> HTMLResponse:
    """Record the 👍 or 👎 of an email link (the confirmation form's POST) and say so."""
    claim, reader, item, error = _feedback_claim(request, session, t)
    if error is not None or claim is None or reader is None or item is None:
        return error or _page(404, "Not found", "Nothing was recorded.")
    title = item.title
    feedback.set_feedback(session, reader.id, item.id, claim.value)
    session.commit()
    rescoring.after_change(request.app.state, session, reader.id, wait=False)  # never raises
    return _page(
        200,
        "Thanks!",
        f"Recorded: {_word(claim.value)}. Your next digest takes it into account.",
        item_title=title,
    )


def _unsubscribe_reader(request: Request, t: str) -> tuple[int | None, HTMLResponse | None]:
    try:
        return _signer(request).load_unsubscribe(t), None
    except tokens.TokenError as err:
        return None, _token_error(err)


@router.get("/email/unsubscribe", response_class=HTMLResponse, tags=["email"], responses=HTML_422)
def email_unsubscribe_form(t: _TOKEN, request: Request, session: SessionDep) -> HTMLResponse:
    """A confirmation form; nothing changes until it is posted (link scanners only GET)."""
    reader_id, error = _unsubscribe_reader(request, t)
    if error is not None:
        return error
    reader = session.get(Reader, reader_id)
    if reader is None:
        return _page(404, "Not found", "This account no longer exists.")
    if not reader.weekly_email:
        return _page(200, "Unsubscribed", f"{reader.email} does not get the weekly email.")
    return _page(
        200,
        "Unsubscribe?",
        f"Stop sending the weekly email to {reader.email}?",
        form_action=str(request.url),
        form_label="Unsubscribe",
    )


@router.post("/email/unsubscribe", response_class=HTMLResponse, tags=["email"], responses=HTML_422)
def email_unsubscribe(t: _TOKEN, request: Request, session: SessionDep) -> HTMLResponse:
    """Turn the weekly email off (RFC 8058 one-click, or the confirmation form). Idempotent."""
    reader_id, error = _unsubscribe_reader(request, t)
    if error is not None:
        return error
    reader = session.get(Reader, reader_id)
    if reader is None:
        return _page(404, "Not found", "This account no longer exists.")
    reader.weekly_email = False
    session.commit()
    log.info("reader %s unsubscribed from the weekly email", reader.id)
    return _page(
        200,
        "Unsubscribed",
        f"{reader.email} will no longer get the weekly email. You can turn it back on in your settings.",
    )


@router.get(
    "/api/me/email/preview",
    response_class=HTMLResponse,
    tags=["me"],
    responses={401: {"description": "missing or invalid bearer token"}, 422: {"description": "bad week"}},
)
def email_preview(
    reader: ReaderDep,
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    week: Annotated[
        str | None,
        Query(pattern=r"^[0-9]{4}-W[0-9]{2}$", description="ISO week, e.g. 2026-W25; default: this week"),
    ] = None,
) -> HTMLResponse:
    """The HTML part of your weekly email for ``week`` (nothing is sent)."""
    row = session.get(Reader, reader.id)
    assert row is not None
    if week is None:
        week = current_week(dt.datetime.now(dt.UTC), zoneinfo.ZoneInfo(row.timezone or "UTC"))
    try:
        week_monday(week)
    except ValueError as err:
        raise unprocessable(str(err), ("query", "week")) from err
    content = compose_week(session, reader.id, week)
    links = tokens.EmailLinks(settings.public_base_url, _signer(request))
    rendered = render_week(content, links, row.email_weekday, row.email_time)
    return HTMLResponse(rendered.html, headers={"Cache-Control": "no-store"})
