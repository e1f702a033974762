"""Reader routes: sign-up, the reader's digest (JSON and Atom), profile, email settings,
feedback, topic filters and subscriptions, "more like this", and the feeds as OPML.

Thin wrappers over :mod:`aggregator.accounts`; their exceptions become HTTP answers in
:mod:`aggregator.api.errors` (ReaderError → 422, NotFound → 404, Forbidden → 403, Conflict → 409).
Every ``/api/me/*`` route needs
``Authorization: Bearer TOKEN`` except the Atom feed, which takes the separate feed token in
``?token=`` (feed readers cannot send headers).
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import re
import xml.etree.ElementTree as ET
from typing import Annotated, Any, Literal

import sqlalchemy as sa
from fastapi import APIRouter, BackgroundTasks, HTTPException, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from sqlalchemy.orm import Session

from aggregator.accounts import feedback, profiles, readers, subscriptions, topic_filters
from aggregator.api import rescoring
from aggregator.api.auth import BearerCredentials, OptionalReaderDep, ReaderDep, unauthorized
from aggregator.api.deps import SessionDep, SettingsDep
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
    SimilarItem,
    SimilarResponse,
    SubscriptionIn,
    TopicFields,
    TopicGroupOut,
    TopicIn,
    TopicOut,
)
from aggregator.api.routes.digest import DateQuery, DaysQuery, IsoDate, ItemId, LimitQuery, digest_item
from aggregator.config import Settings
from aggregator.digest import cards, personal, served
from aggregator.digest.public import default_day
from aggregator.feeds import opml
from aggregator.ranking import similar
from aggregator.store.tables import Item, Reader
from aggregator.types import TopicFilter

log = logging.getLogger(__name__)
router = APIRouter()

_AUTH: dict[int | str, dict[str, Any]] = {401: {"description": "missing or invalid bearer token"}}
_BAD: dict[int | str, dict[str, Any]] = {
    422: {"description": "invalid input; `detail` says which field and why"}
}


def feed_url(request: Request, token: str) -> str:
    return str(request.url_for("reader_digest_atom").include_query_params(token=token))


# --- accounts --------------------------------------------------------------------------------------


@router.post(
    "/api/readers",
    response_model=ReaderCreated,
    status_code=201,
    tags=["readers"],
    responses={409: {"description": "a reader with that email exists"}, **_BAD},
)
def create_reader(body: ReaderCreate, request: Request, session: SessionDep) -> ReaderCreated:
    """Sign up: create a reader and return their API token and feed token, the only time
    either is shown (only SHA-256 digests are stored)."""
    new = readers.create_reader(session, body.email)
    session.commit()
    return ReaderCreated(
        id=new.reader_id,
        email=new.email,
        token=new.token,
        feed_token=new.feed_token,
        feed_url=feed_url(request, new.feed_token),
    )


# --- digest ----------------------------------------------------------------------------------------


def _reader_item(e: personal.ReaderEntry, ranked: bool = True) -> ReaderItem:
    base = digest_item(e.entry, ranked).model_dump()
    return ReaderItem(**base, topics=e.topics, followed_authors=e.followed_authors, feedback=e.feedback)  # type: ignore[arg-type]


GroupQuery = Annotated[
    Literal["topic"] | None, Query(description="'topic': also group the items by your topic filters")
]


@router.get("/api/me/digest", response_model=ReaderDigestResponse, tags=["me"], responses={**_AUTH, **_BAD})
async def my_digest(
    request: Request,
    credentials: BearerCredentials,
    date: DateQuery = None,
    days: DaysQuery = 1,
    limit: LimitQuery = 50,
    group: GroupQuery = None,
) -> Response:
    """Your ranked digest, best first, each item labelled with the topic filters it matches.
    Reads your precomputed scores; until those exist, the default profile's order.

    Served from stored JSON (:mod:`aggregator.digest.served`) in the event loop: a few indexed reads
    and string joins, no worker-thread hop and no per-item validation; plain requests are
    answered even before routing (:mod:`aggregator.api.fastlane`). Grouping by topic and readers
    without precomputed scores take the general path (:func:`aggregator.digest.personal.reader_digest`)."""
    state = request.app.state
    settings: Settings = state.settings
    if credentials is None:
        raise unauthorized("missing API token: send the header 'Authorization: Bearer TOKEN'")
    token_hash = readers.hash_token(credentials.credentials)
    if group is None:
        found = state.reads.run(
            lambda conn: served.serve_digest(
                conn, token_hash, settings.tz, settings.timezone, date, days, limit
            )
        )
        if found.body is not None:
            return Response(found.body, media_type="application/json")
        reader = found.reader
    else:
        reader = state.reads.run(lambda conn: served.reader_for_token_hash(conn, token_hash))
    if reader is None:
        raise unauthorized("invalid API token", error="invalid_token")
    answer = await run_in_threadpool(_reader_digest_response, state, reader.id, date, days, limit, group)
    status = 202 if answer.profile == personal.PENDING_PROFILE else 200  # scores being made
    return Response(answer.model_dump_json().encode(), status, media_type="application/json")


def _reader_digest_response(
    state: Any, reader_id: int, day: dt.date | None, days: int, limit: int, group: str | None
) -> ReaderDigestResponse:
    settings: Settings = state.settings
    with state.sessionmaker() as session:
        d = personal.reader_digest(
            session, settings.tz, reader_id, day, days, limit, rescoring.ensure_scores(state)
        )
    items = {e.entry.id: _reader_item(e, d.digest.ranked) for e in d.items}
    groups = None
    if group == "topic":
        groups = [
            TopicGroupOut(topic=g.slug, name=g.name, items=[items[e.entry.id] for e in g.items])
            for g in d.groups()
        ]
    return ReaderDigestResponse(
        date=d.digest.date,
        days=days,
        timezone=settings.timezone,
        total=d.digest.total,
        hidden=d.hidden,
        profile=d.profile,
        items=list(items.values()),
        groups=groups,
    )


_XML_BAD = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff]")
ATOM_NS = "http://www.w3.org/2005/Atom"


def _x(text: str | None) -> str:
    """Text safe for XML 1.0 (control characters removed); ElementTree escapes the rest."""
    return _XML_BAD.sub("", text or "")


#: authors named per Atom entry (a few papers have hundreds; the rest are summed up as "et al.")
ATOM_AUTHORS = 50


def arxiv_links(arxiv_id: str) -> tuple[str, str]:
    """The abstract page and the PDF of an arXiv paper."""
    return f"https://arxiv.org/abs/{arxiv_id}", f"https://arxiv.org/pdf/{arxiv_id}"


def atom_feed(
    request: Request, reader: Reader, days: list[personal.ReaderDigest], start: dt.date, end: dt.date
) -> bytes:
    """Atom 1.0 (RFC 4287) of a reader's digests of the local days ``start``..``end``, UTF-8
    bytes: ``days`` newest day first, each day's items best first. Entry ids are the items'
    API URLs (stable); ``published``/``updated`` the announcement/publication time; one
    ``author`` per author (at most :data:`ATOM_AUTHORS`); the summary (plain text) is the
    abstract, then the source and what matched. A paper links its abstract page
    (``rel="alternate"``) and its PDF (``rel="related" type="application/pdf"``)."""

    def sub(parent: ET.Element, tag: str, text: str | None = None, **attrs: str) -> ET.Element:
        el = ET.SubElement(parent, tag, attrs)
        if text is not None:
            el.text = _x(text)
        return el

    entries = [(d, e) for d in days for e in d.items]
    feed = ET.Element("feed", xmlns=ATOM_NS)
    sub(feed, "id", f"urn:aggregator:reader:{reader.id}:digest")
    span = end.isoformat() if start == end else f"{start.isoformat()} to {end.isoformat()}"
    sub(feed, "title", f"aggregator digest for {reader.email} · {span}")
    newest = max((e.entry.published for _, e in entries), default=dt.datetime.now(dt.UTC))
    sub(feed, "updated", newest.astimezone(dt.UTC).isoformat())
    sub(sub(feed, "author"), "name", "aggregator")
    sub(feed, "link", rel="alternate", href=str(request.url_for("reader_digest_page")))
    sub(feed, "generator", "aggregator")
    for d, e in entries:
        item = e.entry
        api_url = str(request.url_for("get_item", item_id=str(item.id)))
        when = item.published.astimezone(dt.UTC).isoformat()
        entry = sub(feed, "entry")
        sub(entry, "id", api_url)
        sub(entry, "title", item.title)
        if item.arxiv_id:
            abstract, pdf = arxiv_links(item.arxiv_id)
            sub(entry, "link", rel="alternate", href=_x(abstract))
            sub(entry, "link", rel="related", type="application/pdf", href=_x(pdf), title="PDF")
        else:
            sub(entry, "link", rel="alternate", href=_x(item.url or api_url))
        sub(entry, "published", when)
        sub(entry, "updated", when)
        for name in item.authors[:ATOM_AUTHORS] or [item.source]:
            sub(sub(entry, "author"), "name", name)
        for slug in e.topics:
            sub(entry, "category", term=slug)
        for category in item.categories[:8]:
            sub(entry, "category", term=category)
        lines = [item.summary[:4000]] if item.summary else []
        if len(item.authors) > ATOM_AUTHORS:
            lines.append(f"Authors: {', '.join(item.authors[:ATOM_AUTHORS])} et al. ({len(item.authors)})")
        about = [f"From {item.source}"]
        if d.digest.ranked:
            about.append(f"score {item.score:.3f}")
        why = ", ".join(str(w["term"]) for w in item.why)
        if why:
            about.append(f"matched: {why}")
        lines.append(" · ".join(about))
        sub(entry, "summary", "\n\n".join(lines), type="text")
    return ET.tostring(feed, encoding="utf-8", xml_declaration=True)


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
        **_BAD,
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
    digests = [
        personal.reader_digest(
            session,
            settings.tz,
            reader.id,
            end - dt.timedelta(days=i),
            1,
            limit,
            rescoring.ensure_scores(request.app.state),
        )
        for i in range(n)
    ]
    body = atom_feed(request, reader, digests, end - dt.timedelta(days=n - 1), end)
    return Response(body, media_type="application/atom+xml; charset=utf-8")


@router.post("/api/me/feed-token", response_model=FeedTokenOut, tags=["me"], responses=_AUTH)
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


@router.get("/api/me/profile", response_model=ProfileOut, tags=["me"], responses=_AUTH)
def get_profile(reader: ReaderDep, session: SessionDep) -> ProfileOut:
    """Your interest profile."""
    p = profiles.get_profile(session, reader.id)
    return _profile_out(p, profiles.missing_seed_papers(session, p.seed_papers))


@router.put("/api/me/profile", response_model=ProfileOut, tags=["me"], responses={**_AUTH, **_BAD})
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
    finished within ``AGGREGATOR_RESCORE_WAIT`` s: poll ``GET /api/me/rescore``."""
    p = profiles.update_profile(session, reader.id, **body.model_dump(exclude_none=True))
    session.commit()
    pending = profiles.missing_seed_papers(session, p.seed_papers)
    if not rescoring.profile_saved(request.app.state, session, reader.id, pending):
        response.status_code = 202
    tasks.add_task(rescoring.after_profile_change, request.app.state, reader.id, pending)
    return _profile_out(p, pending)


@router.get("/api/me/settings", response_model=SettingsOut, tags=["me"], responses=_AUTH)
def get_settings(reader: ReaderDep, session: SessionDep) -> SettingsOut:
    """Your weekly email settings."""
    s = readers.get_reader_settings(session, reader.id)
    return SettingsOut.model_validate(s, from_attributes=True)


@router.put("/api/me/settings", response_model=SettingsOut, tags=["me"], responses={**_AUTH, **_BAD})
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
    responses={**_AUTH, 404: {"description": "no such item"}, **_BAD},
)
def post_feedback(
    body: FeedbackIn, reader: ReaderDep, request: Request, response: Response, session: SessionDep
) -> FeedbackOut:
    """👍 (1) or 👎 (-1) an item, or 0 to take your vote back. Your scores of the recent items
    are recomputed before the answer (by this process, or by a worker, waited for up to
    ``AGGREGATOR_RESCORE_WAIT`` s), so the next digest already reflects it."""
    published = feedback.set_feedback(session, reader.id, body.item_id, body.value)
    session.commit()
    n = rescoring.after_change(request.app.state, session, reader.id, around=published)
    if rescoring.pending(request.app.state, session, reader.id):
        response.status_code = 202  # a worker is still at it: poll GET /api/me/rescore
    return FeedbackOut(item_id=body.item_id, value=body.value, rescored=n)


# --- topic filters and subscriptions ------------------------------------------------------------


def _topic_out(t: topic_filters.TopicInfo, reader_id: int | None, subscribed: set[str]) -> TopicOut:
    f = t.filter
    return TopicOut(
        slug=f.slug,
        name=f.name,
        description=t.description,
        phrases=list(f.phrases),
        categories=list(f.categories),
        authors=list(f.authors),
        sources=list(f.sources),
        negative=list(f.negative),
        match=f.match,
        builtin=t.created_by is None,
        mine=reader_id is not None and t.created_by == reader_id,
        subscribed=f.slug in subscribed,
        subscribers=t.subscribers,
    )


def _subscribed(session: Session, reader_id: int | None) -> set[str]:
    if reader_id is None:
        return set()
    return {t.slug for t in subscriptions.list_subscriptions(session, reader_id)}


def _filter(slug: str, body: TopicFields) -> TopicFilter:
    return TopicFilter(
        slug=slug,
        name=body.name,
        phrases=tuple(body.phrases),
        categories=tuple(body.categories),
        authors=tuple(body.authors),
        sources=tuple(body.sources),
        negative=tuple(body.negative),
        match=body.match,
    )


#: OpenAPI: the bearer token is optional here (``{}`` is "no security requirement").
_OPTIONAL_AUTH: dict[str, Any] = {"security": [{}]}


@router.get(
    "/api/topics",
    response_model=list[TopicOut],
    tags=["topics"],
    responses=_AUTH,
    openapi_extra=_OPTIONAL_AUTH,
)
def list_topics(session: SessionDep, reader: OptionalReaderDep) -> list[TopicOut]:
    """The catalogue of topic filters (built-in ones first). With a bearer token, ``mine`` and
    ``subscribed`` say which are yours and which you follow."""
    rid = reader.id if reader else None
    subs = _subscribed(session, rid)
    return [_topic_out(t, rid, subs) for t in topic_filters.list_topics(session)]


@router.post(
    "/api/topics",
    response_model=TopicOut,
    status_code=201,
    tags=["topics"],
    responses={**_AUTH, 409: {"description": "slug taken"}, **_BAD},
)
def create_topic(body: TopicIn, reader: ReaderDep, session: SessionDep) -> TopicOut:
    """Save a topic filter that anyone can subscribe to; only you can change or delete it."""
    t = topic_filters.create_topic(session, reader.id, _filter(body.slug, body), body.description)
    session.commit()
    return _topic_out(t, reader.id, set())


@router.get(
    "/api/topics/{slug}",
    response_model=TopicOut,
    tags=["topics"],
    responses={404: {"description": "no such topic filter"}},
    openapi_extra=_OPTIONAL_AUTH,
)
def get_topic(slug: str, session: SessionDep, reader: OptionalReaderDep) -> TopicOut:
    """One topic filter."""
    t = topic_filters.get_topic(session, slug)
    rid = reader.id if reader else None
    return _topic_out(t, rid, _subscribed(session, rid))


@router.put(
    "/api/topics/{slug}",
    response_model=TopicOut,
    tags=["topics"],
    responses={**_AUTH, 403: {"description": "not your topic filter"}, 404: {}, **_BAD},
)
def update_topic(slug: str, body: TopicFields, reader: ReaderDep, session: SessionDep) -> TopicOut:
    """Change one of your topic filters (the slug stays)."""
    t = topic_filters.update_topic(session, reader.id, slug, _filter(slug, body), body.description)
    session.commit()
    return _topic_out(t, reader.id, _subscribed(session, reader.id))


@router.delete(
    "/api/topics/{slug}",
    status_code=204,
    tags=["topics"],
    response_class=Response,
    responses={**_AUTH, 403: {"description": "not your topic filter"}, 404: {}},
)
def delete_topic(slug: str, reader: ReaderDep, session: SessionDep) -> Response:
    """Delete one of your topic filters, and every subscription to it."""
    topic_filters.delete_topic(session, reader.id, slug)
    session.commit()
    return Response(status_code=204)


@router.get("/api/me/subscriptions", response_model=list[TopicOut], tags=["me"], responses=_AUTH)
def list_subscriptions(reader: ReaderDep, session: SessionDep) -> list[TopicOut]:
    """The topic filters you follow; the digest labels items with them."""
    subs = subscriptions.list_subscriptions(session, reader.id)
    slugs = {t.slug for t in subs}
    return [_topic_out(t, reader.id, slugs) for t in subs]


@router.post(
    "/api/me/subscriptions",
    response_model=TopicOut,
    status_code=201,
    tags=["me"],
    responses={**_AUTH, 404: {"description": "no such topic filter"}, **_BAD},
)
def subscribe(
    body: SubscriptionIn, reader: ReaderDep, request: Request, response: Response, session: SessionDep
) -> TopicOut:
    """Follow a topic filter (again is harmless); 202 while a worker still rescores you."""
    t = subscriptions.subscribe(session, reader.id, body.topic)
    session.commit()
    rescoring.after_change(request.app.state, session, reader.id)
    if rescoring.pending(request.app.state, session, reader.id):
        response.status_code = 202
    return _topic_out(t, reader.id, _subscribed(session, reader.id))


@router.delete(
    "/api/me/subscriptions/{topic}",
    status_code=204,
    tags=["me"],
    response_class=Response,
    responses={**_AUTH, 404: {"description": "you do not follow that topic filter"}},
)
def unsubscribe(topic: str, reader: ReaderDep, request: Request, session: SessionDep) -> Response:
    """Stop following a topic filter."""
    subscriptions.unsubscribe(session, reader.id, topic)
    session.commit()
    rescoring.after_change(request.app.state, session, reader.id)
    return Response(status_code=202 if rescoring.pending(request.app.state, session, reader.id) else 204)


# --- more like this ----------------------------------------------------------------------------


def _neighbours(state: Any, session: Session, item_id: int) -> similar.Stored | None:
    """The stored neighbours of ``item_id`` if they come from the newest model; else computed
    here (a scoring process) or asked of the workers: then stale ones are served meanwhile, and
    when there are none the request waits up to ``rescore_wait`` s for a worker."""
    current = similar.current_model_id(session)
    if current is None:
        return similar.Stored(None, [], False)
    found = similar.stored(session, item_id)
    if found is not None and found.model_id == current:
        return found
    if state.settings.score_in_api:
        from aggregator.ranking import tfidf as rank
        model = rank.load_model(session)
        assert model is not None
        neighbours = similar.compute(session, model, item_id)
        similar.save(session, item_id, model.model_id, neighbours)
        session.commit()
        return similar.Stored(model.model_id, neighbours, False)
    if found is None or not found.requested:
        similar.request(session, item_id)
        session.commit()
    if found is not None and found.model_id is not None:
        return found  # from an older model: served while a worker refreshes it
    looked = [found]

    def computed() -> bool:
        looked[0] = similar.stored(session, item_id)
        return looked[0] is not None and looked[0].model_id is not None

    rescoring.wait_until(session, computed, state.settings.rescore_wait)
    return looked[0]


@router.get(
    "/api/items/{item_id}/similar",
    response_model=SimilarResponse,
    tags=["items"],
    responses={
        404: {"description": "no such item"},
        503: {"description": "being computed by a worker; see the Retry-After header (seconds)"},
        **_BAD,
    },
)
def similar_items(
    item_id: ItemId,
    request: Request,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=similar.NEIGHBOURS)] = 10,
) -> SimilarResponse:
    """More like this: the items whose TF-IDF vectors are closest (cosine similarity) to this
    one's among the last 30 days' items (the ranking's window), with the terms that make them
    close. Empty until a ranking model is fitted. Computed once per item and model, by this
    process or by a worker (:mod:`aggregator.ranking.similar`); a 503 with ``Retry-After`` means a
    worker is still at it."""
    if session.get(Item, item_id) is None:
        raise HTTPException(status_code=404, detail=f"no item with id {item_id}")
    found = _neighbours(request.app.state, session, item_id)
    if found is None or found.model_id is None and found.requested:
        raise HTTPException(
            status_code=503,
            detail="the similar items are being computed; try again in a moment",
            headers={"Retry-After": "2"},
        )
    chosen = found.neighbours[:limit]
    ids = [n.item_id for n in chosen]
    stored = dict(session.execute(sa.select(Item.id, Item.card).where(Item.id.in_(ids))).all())
    built = cards.build_cards(session, [i for i in ids if stored.get(i) is None])
    out = []
    for n in chosen:
        card = stored.get(n.item_id) or built.get(n.item_id)
        if card is not None:  # the item was deleted meanwhile otherwise
            out.append(SimilarItem(**json.loads(card), score=n.score, why=n.why))  # type: ignore[arg-type]
    return SimilarResponse(item_id=item_id, items=out)


# --- OPML --------------------------------------------------------------------------------------


@router.get(
    "/api/feeds.opml",
    tags=["feeds"],
    response_class=Response,
    responses={
        200: {
            "description": "OPML 2.0 of the followed feeds",
            "content": {"text/x-opml": {"schema": {"type": "string"}}},
        }
    },
)
def feeds_opml(session: SessionDep) -> Response:
    """Every scheduled, enabled feed as OPML 2.0, for import into a feed reader."""
    body = opml.feeds_opml(session, dt.datetime.now(dt.UTC))
    return Response(
        body,
        media_type="text/x-opml; charset=utf-8",
        headers={"Content-Disposition": 'inline; filename="feeds.opml"'},
    )
