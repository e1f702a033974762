"""Sign-up, sign-in by emailed link, and sign-out: the pages of :mod:`aggregator.accounts.links`.

* ``GET/POST /signin``: give an address; a sign-in link (15 minutes, once) is mailed when an
  account has it. ``GET/POST /signup``: give an address; a new account gets a verification
  link (24 hours, once), an existing one a sign-in link. Both answer the same page ("If an
  account exists for that address, we sent a link") whatever the address, and do the lookup
  and the mailing after the answer (:mod:`aggregator.api.link_mail`).
* ``GET /signin/link?t=TOKEN`` shows a button and uses nothing, so a mail scanner that
  fetches the link signs nobody in; its ``POST`` uses the link (once), marks the address
  verified, starts a session and goes to ``/me``. A tampered link → 400, an expired or used
  one → 410.
* ``POST /signout`` ends the session (its row is deleted: the old cookie is refused after).

The POSTs check the CSRF token (the signed ``aggregator_csrf`` cookie before sign-in) and are
in the ``AGGREGATOR_AUTH_RATE_LIMIT`` budget per client address (:mod:`aggregator.api.limits`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, BackgroundTasks, Form, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from aggregator import errors
from aggregator.accounts import links, readers
from aggregator.api import auth, link_mail
from aggregator.api.auth import WebSessionDep
from aggregator.api.deps import SessionDep
from aggregator.api.html import templates

router = APIRouter(tags=["pages"])

#: Headers of the link pages: the token in the URL is neither cached nor sent on as Referer.
LINK_HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}
EmailForm = Annotated[str, Form(max_length=320)]
CsrfForm = Annotated[str, Form()]


def safe_next(target: str | None, default: str = "/me") -> str:
    """A local path to go to after a form (never another site: no scheme, no ``//``)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


def _form(
    request: Request,
    mode: Literal["signin", "signup"],
    *,
    sent: bool = False,
    error: str | None = None,
    email: str = "",
    status_code: int = 200,
) -> HTMLResponse:
    token, signed = auth.anonymous_csrf(request)
    ctx = {"csrf": token, "mode": mode, "sent": sent, "error": error, "email": email, "ws": None}
    resp = templates.TemplateResponse(request, "signin.html", ctx, status_code=status_code)
    if signed is not None:
        auth.set_csrf_cookie(request, resp, signed)
    return resp


def _address(email: str) -> tuple[str | None, str | None]:
    """``(normalised address, None)`` or ``(None, why not)``. Says nothing about accounts."""
    try:
        return readers.normalise_email(email), None
    except errors.ReaderError as err:
        return None, str(err).removeprefix("email: ")


@router.get("/signin", response_class=HTMLResponse, name="signin_page")
def signin_page(request: Request, ws: WebSessionDep, next: Annotated[str | None, Query()] = None) -> Response:
    """The sign-in form: your email address, to receive a sign-in link."""
    if ws is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return _form(request, "signin")


@router.post("/signin", response_class=HTMLResponse)
def signin(
    request: Request, tasks: BackgroundTasks, email: EmailForm = "", csrf_token: CsrfForm = ""
) -> Response:
    """Mail a sign-in link when an account has this address (after the answer, which is the
    same either way)."""
    auth.check_anonymous_csrf(request, csrf_token)
    address, problem = _address(email)
    if address is None:
        return _form(request, "signin", error=problem, email=email, status_code=422)
    tasks.add_task(link_mail.signin_requested, request.app.state, auth.secret_key(request), address)
    return _form(request, "signin", sent=True)


@router.get("/signup", response_class=HTMLResponse, name="signup_page")
def signup_page(request: Request, ws: WebSessionDep) -> Response:
    """The sign-up form: your email address, to receive a verification link."""
    if ws is not None:
        return RedirectResponse("/me", status_code=303)
    return _form(request, "signup")


@router.post("/signup", response_class=HTMLResponse)
def signup(
    request: Request, tasks: BackgroundTasks, email: EmailForm = "", csrf_token: CsrfForm = ""
) -> Response:
    """Create an account and mail its verification link (a sign-in link when the address has
    an account already), after an answer that is the same either way."""
    auth.check_anonymous_csrf(request, csrf_token)
    address, problem = _address(email)
    if address is None:
        return _form(request, "signup", error=problem, email=email, status_code=422)
    tasks.add_task(link_mail.signup_requested, request.app.state, auth.secret_key(request), address)
    return _form(request, "signup", sent=True)


def _link_page(
    request: Request,
    *,
    token: str = "",
    claim: links.LinkClaim | None = None,
    error: links.LinkError | None = None,
) -> HTMLResponse:
    csrf, signed = auth.anonymous_csrf(request)
    status = 200 if error is None else 400 if isinstance(error, links.LinkInvalid) else 410
    ctx = {
        "ws": None,
        "csrf": csrf,
        "token": token,
        "email": claim.email if claim else "",
        "purpose": claim.purpose if claim else "",
        "error": str(error) if error else None,
    }
    resp = templates.TemplateResponse(request, "signin_link.html", ctx, status_code=status)
    resp.headers.update(LINK_HEADERS)
    if signed is not None:
        auth.set_csrf_cookie(request, resp, signed)
    return resp


@router.get("/signin/link", response_class=HTMLResponse, name="signin_link_page")
def signin_link_page(
    request: Request, session: SessionDep, t: Annotated[str, Query(max_length=links.MAX_TOKEN)] = ""
) -> Response:
    """The page of a mailed link: who it signs in, and a button. Uses nothing."""
    try:
        claim = links.check_link(session, t, auth.secret_key(request))
    except links.LinkError as err:
        return _link_page(request, error=err)
    return _link_page(request, token=t, claim=claim)


@router.post("/signin/link", response_class=HTMLResponse)
def use_signin_link(
    request: Request,
    session: SessionDep,
    t: Annotated[str, Form(max_length=links.MAX_TOKEN)] = "",
    csrf_token: CsrfForm = "",
) -> Response:
    """Use a mailed link (once): verify the address, start a session, go to ``/me``."""
    auth.check_anonymous_csrf(request, csrf_token)
    try:
        claim = links.consume_link(session, t, auth.secret_key(request))
    except links.LinkError as err:
        session.rollback()
        return _link_page(request, error=err)
    resp = RedirectResponse("/me", status_code=303)
    auth.start_session(request, resp, session, claim.reader_id)
    session.commit()
    resp.headers.update(LINK_HEADERS)
    return resp


@router.post("/signout")
def signout(request: Request, ws: WebSessionDep, session: SessionDep, csrf_token: CsrfForm = "") -> Response:
    """End this session: its row is deleted, so the cookie is refused from now on."""
    if ws is not None:
        auth.check_csrf(ws.csrf, csrf_token)
    resp = RedirectResponse("/signin", status_code=303)
    auth.end_session(request, resp, session)
    session.commit()
    return resp
