"""The reader's HTML pages: their digest at ``/me`` with 👍/👎 buttons and the profile editor
at ``/me/profile`` (with the feeds the reader added to the shared reading list, see
:mod:`aggregator.feeds.added_feeds`, and the account: a new API token, sign out everywhere,
delete the account). Sign-in: :mod:`.signin`; topic filter pages: :mod:`.topics`.

Plain HTML forms, no JavaScript. Every POST checks the CSRF token of the session (see
:mod:`aggregator.api.auth`) and answers with a 303 redirect (post/redirect/get), except a form
with errors, which is shown again with a 422 or 401 and the message.
"""

from __future__ import annotations

import datetime as dt
import urllib.parse
from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, Form, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from aggregator import errors
from aggregator.accounts import (
    deletion,
    feedback,
    library,
    profiles,
    readers,
    web_sessions,
)
from aggregator.api import auth, rescoring
from aggregator.api.auth import WebSession, WebSessionDep
from aggregator.api.deps import SessionDep, SettingsDep
from aggregator.api.html import templates
from aggregator.api.pages.forms import ProfileForm
from aggregator.api.pages.signin import safe_next
from aggregator.api.paging import CursorQuery, FiltersDep, next_cursor, open_cursor, reader_query
from aggregator.api.reader_paging import served_reader_page
from aggregator.api.routes.digest import DateQuery, DaysQuery, LimitQuery
from aggregator.api.routes.me import feed_url
from aggregator.digest.filters import DigestFilters
from aggregator.digest.paged_reader import reader_page
from aggregator.digest.public import default_day
from aggregator.feeds import added_feeds as reader_feeds
from aggregator.feeds.status import failing_feeds
from aggregator.store.tables import Reader

router = APIRouter(tags=["pages"])

CsrfForm = Annotated[str, Form(description="the form's CSRF token")]


def _see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _signin_redirect(request: Request) -> RedirectResponse:
    path = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return _see_other("/signin?" + urllib.parse.urlencode({"next": path}))


def _require(ws: WebSession | None, csrf: str | None) -> WebSession:
    if ws is None:
        raise HTTPException(status_code=401, detail="sign in first (/signin)")
    auth.check_csrf(ws.csrf, csrf)
    return ws


def _render(request: Request, name: str, ctx: dict[str, Any], status_code: int = 200) -> HTMLResponse:
    return templates.TemplateResponse(request, name, ctx, status_code=status_code)


# --- the reader's digest ----------------------------------------------------------------------------


@router.get("/me", response_class=HTMLResponse, name="reader_digest_page")
def reader_digest_page(
    request: Request,
    ws: WebSessionDep,
    session: SessionDep,
    settings: SettingsDep,
    date: DateQuery = None,
    days: DaysQuery = 1,
    limit: LimitQuery = 50,
    group: Annotated[str | None, Query(pattern="^topic$")] = None,
    cursor: CursorQuery = None,
    filters: FiltersDep = DigestFilters(),
) -> Response:
    """Your ranked digest with 👍/👎 buttons and your topic labels (a notice at the top when
    most feeds failed on their last fetch): the whole day, a page at a time ("more" link)."""
    if ws is None:
        return _signin_redirect(request)
    date = date or default_day(session, settings.tz)
    # a plain first page reads what the API serves (the same score rows and cards)
    plain = cursor is None and not filters.active()
    found = served_reader_page(request, session, ws.reader_id, date, days, limit) if plain else None
    if found is not None:
        d, token = found
    else:
        at = open_cursor(request, cursor, reader_query(ws.reader_id, date, days, filters), session)
        page = reader_page(session, settings.tz, ws.reader_id, date, days, limit, at, filters)
        d, token = page.digest, next_cursor(request, page.cursor)
    more = token and str(request.url.include_query_params(cursor=token, date=date.isoformat()))
    names = {t.slug: t.name for t in d.topics}
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return _render(
        request,
        "reader_digest.html",
        {
            "ws": ws,
            "d": d,
            "digest": d.digest,
            "groups": d.groups() if group == "topic" else None,
            "topic_names": names,
            "timezone": settings.timezone,
            "prev_day": d.digest.date - dt.timedelta(days=1),
            "next_day": d.digest.date + dt.timedelta(days=1),
            "limit": limit,
            "more": more,
            "here": here,
            "group": group,
            "failing": failing_feeds(session),
            **library.marks_for_page(session, ws.reader_id, [e.entry.id for e in d.items]),
        },
    )


@router.post("/me/feedback")
def feedback_form(
    request: Request,
    ws: WebSessionDep,
    session: SessionDep,
    item_id: Annotated[int, Form()],
    value: Annotated[int, Form(ge=-1, le=1)],
    csrf_token: CsrfForm = "",
    next: Annotated[str, Form()] = "/me",
) -> Response:
    """👍/👎 from the digest page; rescored before the redirect so the page shows the effect."""
    ws = _require(ws, csrf_token)
    published = feedback.set_feedback(session, ws.reader_id, item_id, value)
    session.commit()
    rescoring.after_change(request.app.state, session, ws.reader_id, around=published)
    return _see_other(safe_next(next).split("#")[0] + f"#item-{item_id}")


# --- profile -----------------------------------------------------------------------------------


WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


def _profile_page(
    request: Request,
    ws: WebSession,
    session: Any,
    error: str | None = None,
    saved: bool = False,
    new_feed_url: str | None = None,
    status_code: int = 200,
    feed_notice: str | None = None,
    feed_error: str | None = None,
    feed_form: dict[str, str] | None = None,
    new_token: str | None = None,
    account_error: str | None = None,
) -> HTMLResponse:
    profile = profiles.get_profile(session, ws.reader_id)
    reader = session.get(Reader, ws.reader_id)
    return _render(
        request,
        "profile.html",
        {
            "ws": ws,
            "p": profile,
            "pending": profiles.missing_seed_papers(session, profile.seed_papers),
            "s": readers.get_reader_settings(session, ws.reader_id),
            "weekdays": WEEKDAYS,
            "error": error,
            "saved": saved,
            "new_feed_url": new_feed_url,
            "feeds": reader_feeds.list_feeds(session, ws.reader_id),
            "feeds_max": request.app.state.settings.reader_feeds_max,
            "feed_notice": feed_notice,
            "feed_error": feed_error,
            "feed_form": feed_form or {"url": "", "name": ""},
            "new_token": new_token,
            "account_error": account_error,
            "verified": reader is not None and reader.email_verified_at is not None,
            "sessions": web_sessions.count(session, ws.reader_id),
        },
        status_code,
    )


_FEED_NOTICES = {
    "added": "Feed added. It is fetched with the other feeds from now on.",
    "known": "That feed is followed already; nothing was added.",
    "removed": "Feed removed: it is no longer fetched. Its items stay.",
}


@router.get("/me/profile", response_class=HTMLResponse, name="profile_page")
def profile_page(
    request: Request,
    ws: WebSessionDep,
    session: SessionDep,
    saved: bool = False,
    feed: Annotated[Literal["added", "known", "removed"] | None, Query()] = None,
) -> Response:
    """Edit your interest profile and email settings; get a new feed link; add feeds."""
    if ws is None:
        return _signin_redirect(request)
    return _profile_page(request, ws, session, saved=saved, feed_notice=_FEED_NOTICES.get(feed or ""))


@router.post("/me/profile", response_class=HTMLResponse)
def profile_form(
    request: Request,
    ws: WebSessionDep,
    session: SessionDep,
    tasks: BackgroundTasks,
    form: Annotated[ProfileForm, Form()],
) -> Response:
    """Save the profile form; missing seed papers are fetched in the background."""
    ws = _require(ws, form.csrf_token)
    try:
        p = profiles.update_profile(session, ws.reader_id, **form.profile_fields())
        readers.update_reader_settings(
            session,
            ws.reader_id,
            weekly_email=form.weekly_email,
            email_weekday=form.email_weekday,
            email_time=form.email_time.strip(),
            timezone=form.timezone.strip(),
        )
    except errors.ReaderError as err:
        session.rollback()
        return _profile_page(request, ws, session, error=str(err), status_code=422)
    session.commit()
    pending = profiles.missing_seed_papers(session, p.seed_papers)
    rescoring.profile_saved(request.app.state, session, ws.reader_id, pending)  # before the answer
    tasks.add_task(rescoring.after_profile_change, request.app.state, ws.reader_id, pending)
    return _see_other("/me/profile?saved=true")


@router.post("/me/feed-token", response_class=HTMLResponse)
def feed_token_form(
    request: Request, ws: WebSessionDep, session: SessionDep, csrf_token: CsrfForm = ""
) -> Response:
    """Make a new feed link and show it once (the old one stops working)."""
    ws = _require(ws, csrf_token)
    token = readers.rotate_feed_token(session, ws.reader_id)
    session.commit()
    return _profile_page(request, ws, session, new_feed_url=feed_url(request, token))


# --- the account: API token, sessions, deletion ---------------------------------------------------


@router.post("/me/token", response_class=HTMLResponse)
def token_form(
    request: Request, ws: WebSessionDep, session: SessionDep, csrf_token: CsrfForm = ""
) -> Response:
    """Make a new API token and show it once; the old one is refused (401) from now on."""
    ws = _require(ws, csrf_token)
    token = readers.reissue_token(session, ws.reader_id)
    session.commit()
    resp = _profile_page(request, ws, session, new_token=token)
    resp.headers["Cache-Control"] = "no-store"
    return resp


@router.post("/me/signout-everywhere")
def signout_everywhere_form(ws: WebSessionDep, session: SessionDep, csrf_token: CsrfForm = "") -> Response:
    """End every session of the reader (this one too): all their browsers must sign in again."""
    ws = _require(ws, csrf_token)
    web_sessions.end_all(session, ws.reader_id)
    session.commit()
    resp = _see_other("/signin")
    resp.delete_cookie(auth.SESSION_COOKIE, path="/")
    return resp


@router.post("/me/delete", response_class=HTMLResponse)
def delete_account_form(
    request: Request,
    ws: WebSessionDep,
    session: SessionDep,
    csrf_token: CsrfForm = "",
    confirm_email: Annotated[str, Form(max_length=320)] = "",
) -> Response:
    """Delete the account and all its data (:func:`aggregator.accounts.deletion.delete_reader`)
    once the reader typed their address; otherwise the profile page says why not (422)."""
    ws = _require(ws, csrf_token)
    if confirm_email.strip().lower() != ws.email.lower():
        error = "To delete your account, type your email address exactly as shown."
        return _profile_page(request, ws, session, account_error=error, status_code=422)
    deletion.delete_reader(session, ws.reader_id)
    session.commit()
    resp = _see_other("/")
    resp.delete_cookie(auth.SESSION_COOKIE, path="/")
    return resp


# --- feeds the reader added ----------------------------------------------------------------------


@router.post("/me/feeds", response_class=HTMLResponse)
async def add_feed_form(
    request: Request,
    ws: WebSessionDep,
    session: SessionDep,
    settings: SettingsDep,
    csrf_token: CsrfForm = "",
    url: Annotated[str, Form(max_length=reader_feeds.MAX_URL)] = "",
    name: Annotated[str, Form(max_length=reader_feeds.MAX_NAME)] = "",
) -> Response:
    """Add a feed to the shared reading list (checked and fetched once, see
    :func:`aggregator.feeds.added_feeds.add_feed`); a refusal is shown on the profile page."""
    ws = _require(ws, csrf_token)
    try:
        outcome = await reader_feeds.add_feed(session, settings, ws.reader_id, url, name or None)
    except (reader_feeds.FeedError, reader_feeds.FeedLimit, errors.Conflict) as err:
        status = 422 if isinstance(err, reader_feeds.FeedError) else 409
        form = {"url": url, "name": name}
        return await run_in_threadpool(
            _profile_page, request, ws, session, feed_error=str(err), feed_form=form, status_code=status
        )
    return _see_other(f"/me/profile?feed={'added' if outcome.created else 'known'}#my-feeds")


@router.post("/me/feeds/{feed_id}/remove")
def remove_feed_form(
    ws: WebSessionDep,
    session: SessionDep,
    feed_id: Annotated[int, Path(ge=1, le=2**31 - 1)],
    csrf_token: CsrfForm = "",
) -> Response:
    """Stop scheduling a feed you added (its items stay)."""
    ws = _require(ws, csrf_token)
    reader_feeds.remove_feed(session, ws.reader_id, feed_id)
    session.commit()
    return _see_other("/me/profile?feed=removed#my-feeds")
