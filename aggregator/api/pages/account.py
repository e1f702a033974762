"""The reader's HTML pages: sign-in and sign-out, their digest at ``/me`` with 👍/👎 buttons,
the topic-filter catalogue at ``/topics`` and the profile editor at ``/me/profile`` (with the
feeds the reader added to the shared reading list, see :mod:`aggregator.feeds.added_feeds`).

Plain HTML forms, no JavaScript. Every POST checks the CSRF token of the session (see
:mod:`aggregator.api.auth`) and answers with a 303 redirect (post/redirect/get), except a form
with errors, which is shown again with a 422 or 401 and the message.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import urllib.parse
from typing import Annotated, Any, Literal

from fastapi import APIRouter, BackgroundTasks, Form, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from aggregator import errors
from aggregator.accounts import feedback, library, profiles, readers, subscriptions, topic_filters
from aggregator.api import auth, rescoring
from aggregator.api.auth import WebSession, WebSessionDep
from aggregator.api.deps import SessionDep, SettingsDep
from aggregator.api.html import templates
from aggregator.api.pages.forms import ProfileForm
from aggregator.api.paging import CursorQuery, FiltersDep, next_cursor, open_cursor, reader_query
from aggregator.api.routes.digest import DateQuery, DaysQuery, LimitQuery
from aggregator.api.routes.me import feed_url
from aggregator.digest.filters import DigestFilters
from aggregator.digest.paged_reader import reader_page
from aggregator.digest.public import default_day
from aggregator.feeds import added_feeds as reader_feeds
from aggregator.feeds.status import failing_feeds

router = APIRouter(tags=["pages"])

CsrfForm = Annotated[str, Form(description="the form's CSRF token")]


def _safe_next(target: str | None, default: str = "/me") -> str:
    """A local path to go to after a form (never another site: no scheme, no ``//``)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return default
    return target


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


# --- sign-in -------------------------------------------------------------------------------------


def _signin_form(
    request: Request, next_url: str, error: str | None = None, status_code: int = 200
) -> HTMLResponse:
    token, signed = auth.anonymous_csrf(request)
    resp = _render(
        request, "signin.html", {"csrf": token, "next": next_url, "error": error, "ws": None}, status_code
    )
    if signed is not None:
        auth.set_csrf_cookie(request, resp, signed)
    return resp


@router.get("/signin", response_class=HTMLResponse, name="signin_page")
def signin_page(request: Request, ws: WebSessionDep, next: Annotated[str | None, Query()] = None) -> Response:
    """The sign-in form: paste the API token from ``aggregator users add``."""
    if ws is not None:
        return _see_other(_safe_next(next))
    return _signin_form(request, _safe_next(next))


@router.post("/signin", response_class=HTMLResponse)
def signin(
    request: Request,
    session: SessionDep,
    token: Annotated[str, Form()] = "",
    csrf_token: Annotated[str, Form()] = "",
    next: Annotated[str, Form()] = "/me",
) -> Response:
    """Check the API token and start a session (signed cookie)."""
    auth.check_anonymous_csrf(request, csrf_token)
    reader = readers.reader_for_token(session, token.strip())
    if reader is None:
        return _signin_form(request, _safe_next(next), "That token is not valid.", status_code=401)
    resp = _see_other(_safe_next(next))
    auth.start_session(request, resp, reader)
    return resp


@router.post("/signout")
def signout(ws: WebSessionDep, csrf_token: CsrfForm = "") -> Response:
    """End the session."""
    if ws is not None:
        auth.check_csrf(ws.csrf, csrf_token)
    resp = _see_other("/signin")
    auth.end_session(resp)
    return resp


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
    at = open_cursor(request, cursor, reader_query(ws.reader_id, date, days, filters), session)
    page = reader_page(session, settings.tz, ws.reader_id, date, days, limit, at, filters)
    d = page.digest
    token = next_cursor(request, page.cursor)
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
    return _see_other(_safe_next(next).split("#")[0] + f"#item-{item_id}")


# --- topic filters -----------------------------------------------------------------------------


@router.get("/topics", response_class=HTMLResponse, name="topics_page")
def topics_page(request: Request, ws: WebSessionDep, session: SessionDep) -> Response:
    """The catalogue of topic filters, with subscribe/unsubscribe buttons when signed in."""
    subscribed = (
        set() if ws is None else {t.slug for t in subscriptions.list_subscriptions(session, ws.reader_id)}
    )
    return _render(
        request,
        "topics.html",
        {"ws": ws, "topics": topic_filters.list_topics(session), "subscribed": subscribed},
    )


@router.post("/topics/subscribe")
def subscribe_form(
    request: Request,
    ws: WebSessionDep,
    session: SessionDep,
    topic: Annotated[str, Form()],
    csrf_token: CsrfForm = "",
    next: Annotated[str, Form()] = "/topics",
) -> Response:
    ws = _require(ws, csrf_token)
    subscriptions.subscribe(session, ws.reader_id, topic)
    session.commit()
    rescoring.after_change(request.app.state, session, ws.reader_id)
    return _see_other(_safe_next(next, "/topics"))


@router.post("/topics/unsubscribe")
def unsubscribe_form(
    request: Request,
    ws: WebSessionDep,
    session: SessionDep,
    topic: Annotated[str, Form()],
    csrf_token: CsrfForm = "",
    next: Annotated[str, Form()] = "/topics",
) -> Response:
    ws = _require(ws, csrf_token)
    with contextlib.suppress(errors.NotFound):  # not subscribed: the page shows the state anyway
        subscriptions.unsubscribe(session, ws.reader_id, topic)
    session.commit()
    rescoring.after_change(request.app.state, session, ws.reader_id)
    return _see_other(_safe_next(next, "/topics"))


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
) -> HTMLResponse:
    profile = profiles.get_profile(session, ws.reader_id)
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
