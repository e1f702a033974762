"""``/api/me/feeds``: readers add feeds to the instance's shared reading list, list the ones they
added and stop them. Thin wrappers over :mod:`aggregator.feeds.added_feeds` (FeedError → 422,
FeedLimit and Conflict → 409, NotFound → 404, Forbidden → 403); the SSRF rules are those of
:mod:`aggregator.feeds.ssrf`, with ``AGGREGATOR_FEED_ALLOW_HOSTS`` as the allow-list."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Path, Response
from pydantic import BaseModel, ConfigDict, Field

from aggregator.api.auth import ReaderDep
from aggregator.api.deps import SessionDep, SettingsDep
from aggregator.feeds import added_feeds as reader_feeds

router = APIRouter(tags=["me"])

_AUTH: dict[int | str, dict[str, Any]] = {401: {"description": "missing or invalid bearer token"}}

FeedId = Annotated[int, Path(ge=1, le=2**31 - 1, description="feed id")]


class ReaderFeedIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    url: str = Field(
        min_length=1,
        max_length=reader_feeds.MAX_URL,
        description="http(s) URL of an RSS or Atom feed on a public address",
    )
    name: str | None = Field(
        None,
        max_length=reader_feeds.MAX_NAME,
        description="how items from the feed are labelled; default: the feed's title",
    )


class ReaderFeedOut(BaseModel):
    id: int
    url: str
    name: str
    title: str | None = Field(description="the title the feed gives itself")
    kind: str | None = Field(description="'arxiv' or 'blog'")
    added_at: dt.datetime
    mine: bool = Field(description="you added it (only then can you remove it)")
    state: reader_feeds.FeedState = Field(
        description="pending (not fetched yet), ok, failing (see last_error), disabled (HTTP 410), "
        "stopped (no longer scheduled)"
    )
    scheduled: bool
    disabled: bool
    last_fetch_at: dt.datetime | None
    last_success_at: dt.datetime | None
    last_status: int | None
    last_error: str | None
    error_count: int = Field(description="failed fetches in a row")
    next_check_at: dt.datetime | None
    items: int = Field(description="items this feed announced")


def _out(feed: reader_feeds.ReaderFeed) -> ReaderFeedOut:
    return ReaderFeedOut.model_validate(feed, from_attributes=True)


@router.get("/api/me/feeds", response_model=list[ReaderFeedOut], responses=_AUTH)
def list_my_feeds(reader: ReaderDep, session: SessionDep) -> list[ReaderFeedOut]:
    """The feeds you added that are still scheduled, with their fetch state."""
    return [_out(f) for f in reader_feeds.list_feeds(session, reader.id)]


@router.post(
    "/api/me/feeds",
    response_model=ReaderFeedOut,
    status_code=201,
    responses={
        200: {"model": ReaderFeedOut, "description": "the URL is known already: that feed, unchanged"},
        **_AUTH,
        409: {
            "description": "you have added AGGREGATOR_READER_FEEDS_MAX feeds already, or the URL is "
            "an operator's feed that is no longer followed (only the operator follows it again)"
        },
        422: {
            "description": "invalid input, a URL the SSRF guard refuses, a URL that cannot be "
            "fetched or is not a feed; `detail` says why"
        },
    },
)
async def add_my_feed(
    body: ReaderFeedIn, reader: ReaderDep, session: SessionDep, settings: SettingsDep, response: Response
) -> ReaderFeedOut:
    """Add a feed to the reading list every reader shares. The URL must be http(s) on a public
    address (private, loopback, link-local, CGNAT, metadata... addresses are refused, also
    after a redirect, unless allow-listed by the operator); it is fetched once to check that it
    is an RSS or Atom feed, then the scheduler fetches it like any other feed. A URL already
    followed gives that feed (200) instead of a duplicate, unchanged: it stays its owner's
    (the operator's, or the reader's who added it), with its name. A name that looks like
    another feed's (case, spaces, invisible characters and look-alike letters ignored) is a
    422."""
    outcome = await reader_feeds.add_feed(session, settings, reader.id, body.url, body.name)
    if not outcome.created:
        response.status_code = 200
    return _out(outcome.feed)


@router.delete(
    "/api/me/feeds/{feed_id}",
    status_code=204,
    response_class=Response,
    responses={
        **_AUTH,
        403: {"description": "the feed was not added by you"},
        404: {"description": "no such feed"},
    },
)
def remove_my_feed(feed_id: FeedId, reader: ReaderDep, session: SessionDep) -> Response:
    """Stop scheduling a feed you added; its items stay in every digest. Again is harmless."""
    reader_feeds.remove_feed(session, reader.id, feed_id)
    session.commit()
    return Response(status_code=204)
