"""Reader routes: sign-up (with its verification mail), account deletion and a new API token,
the reader's digest (JSON and Atom), profile, email settings, feedback, topic filters and
subscriptions, "more like this", and the feeds as OPML.

Thin wrappers over :mod:`aggregator.accounts`; their exceptions become HTTP answers in
:mod:`aggregator.api.errors` (ReaderError → 422, NotFound → 404, Forbidden → 403, Conflict → 409).
Every ``/api/me/*`` route needs
``Authorization: Bearer TOKEN`` except the Atom feed, which takes the separate feed token in
``?token=`` (feed readers cannot send headers).
"""

from __future__ import annotations

import datetime as dt
import logging
from typing import Annotated, Literal

from fastapi import APIRouter, BackgroundTasks, Query, Request, Response
from fastapi.concurrency import run_in_threadpool

from aggregator.accounts import deletion, feedback, profiles, readers
from aggregator.api import fastlane, link_mail, rescoring
from aggregator.api.auth import BearerCredentials, ReaderDep, secret_key, unauthorized
from aggregator.api.deps import AUTH_401, BAD_422, SessionDep, SettingsDep
from aggregator.api.me_schemas import (
    FeedbackIn,
    FeedbackOut,
    FeedTokenOut,
    ProfileIn,
    ProfileOut,
    ReaderCreate,
    ReaderCreated,
    ReaderDigestResponse,
    ReaderItem,
    SettingsIn,
    SettingsOut,
    TokenOut,
)
from aggregator.api.paging import CursorQuery, FiltersDep, ServedPaging
from aggregator.api.reader_paging import paged_reader_response
from aggregator.api.routes.digest import DateQuery, DaysQuery, IsoDate, LimitQuery, digest_item
from aggregator.config import Settings
from aggregator.digest import personal, served, served_views
from aggregator.digest.atom import atom_feed
from aggregator.digest.filters import DigestFilters
from aggregator.digest.public import default_day

log = logging.getLogger(__name__)
router = APIRouter()


def feed_url(request: Request, token: str) -> str:
    return str(request.url_for("reader_digest_atom").include_query_params(token=token))


# --- accounts --------------------------------------------------------------------------------------


@router.post(
    "/api/readers",
    response_model=ReaderCreated,
    status_code=201,
    tags=["readers"],
    responses={409: {"description": "a reader with that email exists"}, **BAD_422},
)
def create_reader(
    body: ReaderCreate, request: Request, session: SessionDep, tasks: BackgroundTasks
) -> ReaderCreated:
    """Sign up: create a reader and return their API token and feed token, the only time
    either is shown (only SHA-256 digests are stored). The address gets one mail, of fixed
    content: a link to confirm it (24 hours, once). Until it is opened no other mail goes
    there (no weekly email). The address is normalised; one that differs from an existing
    one only in case is taken (409), also when both sign up at the same moment."""
    new = readers.create_reader(session, body.email)
    session.commit()
    tasks.add_task(
        link_mail.mail_verification, request.app.state, secret_key(request), new.reader_id, new.email
    )
    return ReaderCreated(
        id=new.reader_id,
        email=new.email,
        token=new.token,
        feed_token=new.feed_token,
        feed_url=feed_url(request, new.feed_token),
    )


@router.delete("/api/me", status_code=204, tags=["me"], responses=AUTH_401)
def delete_me(reader: ReaderDep, session: SessionDep) -> Response:
    """Delete your account and all your data: profile, subscriptions, votes, library, read
    marks, scores, sessions, sign-in links and weekly email state. Topic filters you made go
    unless another reader subscribes to them (then they stay, owned by nobody); feeds you
    added stop being fetched (their items stay). Your token is refused afterwards."""
    deletion.delete_reader(session, reader.id)
    session.commit()
    return Response(status_code=204)


@router.post("/api/me/token", response_model=TokenOut, tags=["me"], responses=AUTH_401)
def reissue_token(reader: ReaderDep, session: SessionDep) -> TokenOut:
    """Make a new API token and return it, once; the token of this request is refused (401)
    from now on."""
    token = readers.reissue_token(session, reader.id)
    session.commit()
    return TokenOut(token=token)


# --- digest ----------------------------------------------------------------------------------------


def _reader_item(e: personal.ReaderEntry, ranked: bool = True, read: bool = False) -> ReaderItem:
    base = digest_item(e.entry, ranked).model_dump()
    labels = {"topics": e.topics, "followed_authors": e.followed_authors, "feedback": e.feedback}
    return ReaderItem(**base, **labels, read=read)  # type: ignore[arg-type]


GroupQuery = Annotated[
    Literal["topic"] | None, Query(description="'topic': also group the items by your topic filters")
]


@router.get(
    "/api/me/digest", response_model=ReaderDigestResponse, tags=["me"], responses={**AUTH_401, **BAD_422}
)
async def my_digest(
    request: Request,
    credentials: BearerCredentials,
    date: DateQuery = None,
    days: DaysQuery = 1,
    limit: LimitQuery = 50,
    group: GroupQuery = None,
    cursor: CursorQuery = None,
    filters: FiltersDep = DigestFilters(),
) -> Response:
    """Your ranked digest, best first, each item labelled with the topic filters it matches.
    Reads your precomputed scores; until those exist, the default profile's order.
    \f
    Served from stored JSON (:mod:`aggregator.digest.served`) in the event loop: a few indexed reads
    and string joins, no worker-thread hop and no per-item validation; plain requests are
    answered even before routing (:mod:`aggregator.api.fastlane`). Grouping by topic and readers
    without precomputed scores take the general path (:func:`aggregator.digest.personal.reader_digest`)."""
    state = request.app.state
    settings: Settings = state.settings
    if credentials is None:
        raise unauthorized("missing API token: send the header 'Authorization: Bearer TOKEN'")
    token_hash = readers.hash_token(credentials.credentials)
    probe = getattr(request.state, fastlane.PROBE, None)
    plain = group is None and cursor is None and not filters.active()
    if plain and probe is not None and probe[:4] == (token_hash, date, days, limit):
        found: served.Answer = probe[4]  # the fast lane read it already
        reader = found.reader
    elif plain:
        paging = ServedPaging(state.engine, settings, days, limit)
        found = await served.serve_digest(
            state.rows, token_hash, settings.tz, settings.timezone, date, days, limit, paging=paging
        )
        if found.body is not None:
            return Response(found.body, media_type="application/json")
        reader = found.reader
    else:
        reader = await served.reader_for_token_hash(state.rows, token_hash)
    if reader is None:
        raise unauthorized("invalid API token", error="invalid_token")
    answer = await run_in_threadpool(
        paged_reader_response, request, reader.id, date, days, limit, group, cursor, filters
    )
    status = 202 if answer.profile == personal.PENDING_PROFILE else 200  # scores being made
    return Response(answer.model_dump_json().encode(), status, media_type="application/json")


@router.get(
    "/api/me/digest.atom",
    tags=["me"],
    name="reader_digest_atom",
    response_class=Response,
    responses={
        200: {
            "description": "Atom 1.0 feed of your digest",
            "content": {"application/atom+xml": {"schema": {"type": "string"}}},
        },
        401: {"description": "missing or invalid feed token"},
        **BAD_422,
    },
)
def my_digest_atom(
    request: Request,
    session: SessionDep,
    settings: SettingsDep,
    token: Annotated[str | None, Query(description="your feed token (not the API token)")] = None,
    date: Annotated[
        IsoDate | None,
        Query(description="last local day of the feed, YYYY-MM-DD; default: the newest day with papers"),
    ] = None,
    days: Annotated[
        int | None,
        Query(ge=1, le=31, description="days covered, ending at `date` (default: AGGREGATOR_ATOM_DAYS)"),
    ] = None,
    limit: Annotated[int, Query(ge=1, le=500, description="at most this many items per day")] = 25,
) -> Response:
    """Your digest of the last ``days`` days (``AGGREGATOR_ATOM_DAYS``, 7, unless given) ending
    at ``date`` as an Atom feed, for a feed reader: newest day first, each day's best
    ``limit`` items first, each with its abstract, authors, and for papers the abstract page
    and the PDF. Authenticated by the feed token in the URL; rotate it with
    ``POST /api/me/feed-token`` if the URL leaks. A malformed ``date`` is a 422."""
    reader = readers.reader_for_feed_token(session, token)
    if reader is None:
        raise unauthorized("missing or invalid feed token (?token=)", error="invalid_token")
    end = date or default_day(session, settings.tz)
    n = days or settings.atom_days
    topics = None
    digests = []
    for i in range(n):  # each day as the API serves it; the general path when that cannot
        day = end - dt.timedelta(days=i)
        page = served_views.served_digest(
            request.app.state.rows, reader.token_hash, settings.tz, settings.timezone, day, 1, limit
        )
        if page is not None:
            topics = topics if topics is not None else profiles.load_profile(session, reader.id).topics
            digests.append(served_views.reader_digest(page, settings.tz, topics))
        else:
            ensure = rescoring.ensure_scores(request.app.state)
            digests.append(personal.reader_digest(session, settings.tz, reader.id, day, 1, limit, ensure))
    body = atom_feed(request, reader, digests, end - dt.timedelta(days=n - 1), end)
    return Response(body, media_type="application/atom+xml; charset=utf-8")


@router.post("/api/me/feed-token", response_model=FeedTokenOut, tags=["me"], responses=AUTH_401)
def rotate_feed_token(reader: ReaderDep, request: Request, session: SessionDep) -> FeedTokenOut:
    """Make a new feed token (the old feed URL stops working) and return it, once."""
    token = readers.rotate_feed_token(session, reader.id)
    session.commit()
    return FeedTokenOut(feed_token=token, feed_url=feed_url(request, token))


# --- profile and settings ------------------------------------------------------------------------


def _profile_out(p: profiles.ProfileData, pending: list[str] | None = None) -> ProfileOut:
    return ProfileOut(
        interests=p.interests,
        **{name: list(getattr(p, name)) for name in profiles.PROFILE_LIST_FIELDS},
        seed_papers_pending=pending or [],
        updated_at=p.updated_at,
    )


@router.get("/api/me/profile", response_model=ProfileOut, tags=["me"], responses=AUTH_401)
def get_profile(reader: ReaderDep, session: SessionDep) -> ProfileOut:
    """Your interest profile."""
    p = profiles.get_profile(session, reader.id)
    return _profile_out(p, profiles.missing_seed_papers(session, p.seed_papers))


@router.put("/api/me/profile", response_model=ProfileOut, tags=["me"], responses={**AUTH_401, **BAD_422})
def put_profile(
    body: ProfileIn,
    reader: ReaderDep,
    request: Request,
    response: Response,
    session: SessionDep,
    tasks: BackgroundTasks,
) -> ProfileOut:
    """Change your interest profile (fields left out keep their value). Seed papers not stored
    yet are fetched from the arXiv API in the background (listed in ``seed_papers_pending``
    meanwhile). Your scores are recomputed before the answer (200); 202 when a worker has not
    finished within ``AGGREGATOR_RESCORE_WAIT_SECONDS`` s: poll ``GET /api/me/rescore``."""
    p = profiles.update_profile(session, reader.id, **body.model_dump(exclude_none=True))
    session.commit()
    pending = profiles.missing_seed_papers(session, p.seed_papers)
    if not rescoring.profile_saved(request.app.state, session, reader.id, pending):
        response.status_code = 202
    tasks.add_task(rescoring.after_profile_change, request.app.state, reader.id, pending)
    return _profile_out(p, pending)


@router.get("/api/me/settings", response_model=SettingsOut, tags=["me"], responses=AUTH_401)
def get_settings(reader: ReaderDep, session: SessionDep) -> SettingsOut:
    """Your weekly email settings."""
    s = readers.get_reader_settings(session, reader.id)
    return SettingsOut.model_validate(s, from_attributes=True)


@router.put("/api/me/settings", response_model=SettingsOut, tags=["me"], responses={**AUTH_401, **BAD_422})
def put_settings(body: SettingsIn, reader: ReaderDep, session: SessionDep) -> SettingsOut:
    """Change your weekly email settings (fields left out keep their value)."""
    s = readers.update_reader_settings(session, reader.id, **body.model_dump(exclude_none=True))
    session.commit()
    return SettingsOut.model_validate(s, from_attributes=True)


# --- feedback --------------------------------------------------------------------------------------


@router.post(
    "/api/me/feedback",
    response_model=FeedbackOut,
    tags=["me"],
    responses={**AUTH_401, 404: {"description": "no such item"}, **BAD_422},
)
def post_feedback(
    body: FeedbackIn, reader: ReaderDep, request: Request, response: Response, session: SessionDep
) -> FeedbackOut:
    """👍 (1) or 👎 (-1) an item, or 0 to take your vote back. Your scores of the recent items
    are recomputed before the answer (by this process, or by a worker, waited for up to
    ``AGGREGATOR_RESCORE_WAIT_SECONDS`` s), so the next digest already reflects it."""
    published = feedback.set_feedback(session, reader.id, body.item_id, body.value)
    session.commit()
    n = rescoring.after_change(request.app.state, session, reader.id, around=published)
    if rescoring.pending(request.app.state, session, reader.id):
        response.status_code = 202  # a worker is still at it: poll GET /api/me/rescore
    return FeedbackOut(item_id=body.item_id, value=body.value, rescored=n)


# --- topic filters and subscriptions ------------------------------------------------------------


#: OpenAPI: the bearer token is optional here (``{}`` is "no security requirement").


# --- more like this ----------------------------------------------------------------------------


# --- OPML --------------------------------------------------------------------------------------
