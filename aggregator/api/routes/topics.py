"""Topic filters and subscriptions: ``/api/topics`` (the catalogue and readers' own filters),
``/api/topic-preview`` and ``/api/me/subscriptions``. Anonymous callers may list and read the
shared filters; a reader's filter is seen by its owner only until shared (see
:mod:`aggregator.accounts.topic_filters`); changes and previews need a token."""

from __future__ import annotations

from fastapi import APIRouter, Request, Response
from sqlalchemy.orm import Session

from aggregator.accounts import subscriptions, topic_filters
from aggregator.api import rescoring
from aggregator.api.auth import OptionalReaderDep, ReaderDep
from aggregator.api.deps import AUTH_401, BAD_422, OPTIONAL_AUTH, SessionDep, SettingsDep
from aggregator.api.me_schemas import (
    PreviewItemOut,
    SubscriptionIn,
    TopicFields,
    TopicIn,
    TopicOut,
    TopicPreviewOut,
    TopicUpdate,
)
from aggregator.digest.topic_preview import TopicPreview, preview_topic
from aggregator.types import TopicFilter

router = APIRouter()

_NO_TOPIC = {"description": "no such topic filter, or another reader's private one"}
_NOT_YOURS = {"description": "a built-in topic filter, or one another reader shared"}


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
        shared=t.shared,
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


@router.get(
    "/api/topics",
    response_model=list[TopicOut],
    tags=["topics"],
    responses=AUTH_401,
    openapi_extra=OPTIONAL_AUTH,
)
def list_topics(session: SessionDep, reader: OptionalReaderDep) -> list[TopicOut]:
    """The catalogue of shared topic filters (built-in ones first). With a bearer token, your
    private ones too, and ``mine`` and ``subscribed`` say which are yours and which you follow."""
    rid = reader.id if reader else None
    subs = _subscribed(session, rid)
    return [_topic_out(t, rid, subs) for t in topic_filters.list_topics(session, rid)]


@router.post(
    "/api/topics",
    response_model=TopicOut,
    status_code=201,
    tags=["topics"],
    responses={**AUTH_401, 409: {"description": "slug taken"}, **BAD_422},
)
def create_topic(body: TopicIn, reader: ReaderDep, session: SessionDep) -> TopicOut:
    """Save a topic filter: yours only, or with ``shared`` true one anyone can see and subscribe
    to; only you can change or delete it. Without ``slug`` it is derived from the name."""
    t = topic_filters.create_topic(
        session, reader.id, _filter(body.slug or "", body), body.description, shared=body.shared
    )
    session.commit()
    return _topic_out(t, reader.id, set())


def preview_out(p: TopicPreview) -> TopicPreviewOut:
    """The API's answer for a preview (also what the page shows)."""
    return TopicPreviewOut(
        start=p.start,
        end=p.end,
        first_day=p.first_day,
        last_day=p.last_day,
        days=p.days,
        in_window=p.in_window,
        scanned=p.scanned,
        partial=p.partial,
        matched=p.matched,
        items=[
            PreviewItemOut(
                id=i.id, title=i.title, url=i.url, published=i.published, kind=i.kind, sources=list(i.sources)
            )
            for i in p.items
        ],
    )


# beside /api/topics, not under it: /api/topics/preview would be the filter whose slug is "preview"
@router.post(
    "/api/topic-preview",
    response_model=TopicPreviewOut,
    tags=["topics"],
    responses={**AUTH_401, **BAD_422},
)
def preview(body: TopicIn, reader: ReaderDep, session: SessionDep, settings: SettingsDep) -> TopicPreviewOut:
    """The items a topic filter (the body of ``POST /api/topics``) would have matched over the
    last 7 days, before you save it: nothing is stored. At most 5000 items (newest first) are
    read, fewer when the filter has many phrases (items × phrases ≤ 40,000), and 50 matches
    listed; ``matched`` counts every match among those read, ``partial`` says the week held more."""
    return preview_out(preview_topic(session, _filter(body.slug or "", body), settings.tz))


@router.get(
    "/api/topics/{slug}",
    response_model=TopicOut,
    tags=["topics"],
    responses={404: _NO_TOPIC},
    openapi_extra=OPTIONAL_AUTH,
)
def get_topic(slug: str, session: SessionDep, reader: OptionalReaderDep) -> TopicOut:
    """One topic filter: a shared one, or one of yours (another reader's private filter is a 404)."""
    rid = reader.id if reader else None
    t = topic_filters.get_topic(session, slug, rid)
    return _topic_out(t, rid, _subscribed(session, rid))


@router.put(
    "/api/topics/{slug}",
    response_model=TopicOut,
    tags=["topics"],
    responses={**AUTH_401, 403: _NOT_YOURS, 404: _NO_TOPIC, **BAD_422},
)
def update_topic(
    slug: str, body: TopicUpdate, reader: ReaderDep, request: Request, session: SessionDep
) -> TopicOut:
    """Change one of your topic filters (the slug stays); you are rescored when you follow it.
    ``shared`` false makes it yours only again and ends other readers' subscriptions to it."""
    t = topic_filters.update_topic(
        session, reader.id, slug, _filter(slug, body), body.description, shared=body.shared
    )
    session.commit()
    subs = _subscribed(session, reader.id)
    if slug in subs:
        rescoring.after_change(request.app.state, session, reader.id)
    return _topic_out(t, reader.id, subs)


@router.delete(
    "/api/topics/{slug}",
    status_code=204,
    tags=["topics"],
    response_class=Response,
    responses={**AUTH_401, 403: _NOT_YOURS, 404: _NO_TOPIC},
)
def delete_topic(slug: str, reader: ReaderDep, session: SessionDep) -> Response:
    """Delete one of your topic filters, and every subscription to it."""
    topic_filters.delete_topic(session, reader.id, slug)
    session.commit()
    return Response(status_code=204)


@router.get("/api/me/subscriptions", response_model=list[TopicOut], tags=["me"], responses=AUTH_401)
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
    responses={**AUTH_401, 404: _NO_TOPIC, **BAD_422},
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
    responses={**AUTH_401, 404: {"description": "you do not follow that topic filter"}},
)
def unsubscribe(topic: str, reader: ReaderDep, request: Request, session: SessionDep) -> Response:
    """Stop following a topic filter."""
    subscriptions.unsubscribe(session, reader.id, topic)
    session.commit()
    rescoring.after_change(request.app.state, session, reader.id)
    return Response(status_code=202 if rescoring.pending(request.app.state, session, reader.id) else 204)
