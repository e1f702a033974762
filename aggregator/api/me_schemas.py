"""Request and response schemas of the reader endpoints (``/api/readers``, ``/api/me/*``,
``/api/topics``, ``/api/items/{id}/similar``), kept apart from the tables."""

from __future__ import annotations

import datetime as dt
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from aggregator.api.schemas import DigestItem

_List = list[str]


class ReaderCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")
    email: str = Field(description="the reader's email address (validated, normalised)", max_length=320)


class ReaderCreated(BaseModel):
    id: int
    email: str
    token: str = Field(description="API token for 'Authorization: Bearer'; shown only this once")
    feed_token: str = Field(description="token of the personal Atom feed; shown once, rotatable")
    feed_url: str = Field(description="the personal Atom feed of the digest")


class TokenOut(BaseModel):
    token: str = Field(description="the new API token for 'Authorization: Bearer'; shown only this once")


class ReaderItem(DigestItem):
    topics: list[str] = Field(description="slugs of the reader's topic filters the item matches")
    followed_authors: list[str] = Field(description="authors of the item the reader follows")
    feedback: Literal[-1, 0, 1] = Field(description="the reader's vote: 1 👍, -1 👎, 0 none")
    read: bool = Field(
        default=False, description="the reader opened or marked it, or saw it on an earlier day"
    )


class TopicGroupOut(BaseModel):
    topic: str | None = Field(description="topic filter slug; null for items matching none")
    name: str
    items: list[ReaderItem]


class ReaderDigestResponse(BaseModel):
    date: dt.date
    days: int
    timezone: str
    total: int = Field(description="items in the window, before muted and excluded ones are dropped")
    hidden: int = Field(description="items left out for a muted phrase, excluded category or source")
    profile: str = Field(
        description="scores read: 'reader:<id>', or 'default' until the reader's are computed"
    )
    items: list[ReaderItem]
    groups: list[TopicGroupOut] | None = Field(
        None, description="with ?group=topic: the items grouped by the reader's topic filters"
    )
    next_cursor: str | None = Field(None, description="pass as `cursor` for the next page; null on the last")


class ProfileIn(BaseModel):
    """Fields left out (or null) keep their value; a list given replaces the stored list."""

    model_config = ConfigDict(extra="forbid")
    interests: str | None = Field(None, description="free text describing what you care about")
    keywords: _List | None = Field(None, description="keywords and phrases to boost")
    muted: _List | None = Field(None, description="items with these phrases are hidden")
    followed_authors: _List | None = None
    include_categories: _List | None = Field(None, description="arXiv categories to favour, e.g. cs.LG")
    exclude_categories: _List | None = Field(None, description="items in these categories are hidden")
    include_sources: _List | None = Field(None, description="feed names to favour")
    exclude_sources: _List | None = Field(None, description="items from these feeds are hidden")
    seed_papers: _List | None = Field(
        None, description="arXiv ids or abs/pdf links of papers like the ones you want"
    )


class ProfileOut(BaseModel):
    interests: str
    keywords: _List
    muted: _List
    followed_authors: _List
    include_categories: _List
    exclude_categories: _List
    include_sources: _List
    exclude_sources: _List
    seed_papers: _List = Field(description="bare arXiv ids")
    seed_papers_pending: _List = Field(
        default_factory=list, description="seed papers not stored yet, being fetched from the arXiv API"
    )
    updated_at: dt.datetime | None


class SettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    weekly_email: bool | None = None
    email_weekday: int | None = Field(None, ge=0, le=6, description="0 = Monday … 6 = Sunday")
    email_time: str | None = Field(None, description="HH:MM, 24-hour, in `timezone`")
    timezone: str | None = Field(None, description="IANA time zone, e.g. Europe/Paris")


class SettingsOut(BaseModel):
    weekly_email: bool
    email_weekday: int
    email_time: str
    timezone: str


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    item_id: int = Field(ge=1, le=2**31 - 1)
    value: Literal[-1, 0, 1] = Field(description="1 👍, -1 👎, 0 removes your vote")


class FeedbackOut(BaseModel):
    item_id: int = Field(ge=1, le=2**31 - 1)
    value: int
    rescored: int | None = Field(
        description="items rescored for you; null when personal scores cannot be computed yet"
    )


class TopicFields(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=2000)
    phrases: _List = Field(default_factory=list, description="case-insensitive, in title or abstract")
    categories: _List = Field(default_factory=list, description="arXiv categories, e.g. cs.RO")
    authors: _List = Field(default_factory=list, description="whole author names")
    sources: _List = Field(default_factory=list, description="feed names")
    negative: _List = Field(default_factory=list, description="phrases that rule an item out")
    match: Literal["any", "all"] = Field(
        "any", description="'any': one hit is enough; 'all': every phrase and each listed kind"
    )


class TopicUpdate(TopicFields):
    shared: bool | None = Field(
        None,
        description="true: every reader may see and follow it; false: yours only (other readers' "
        "subscriptions end); left out: unchanged",
    )


class TopicIn(TopicFields):
    slug: str | None = Field(
        None,
        max_length=100,
        description="lower-case letters, digits, hyphens, e.g. graph-nets; left out (or empty): "
        "derived from the name, numbered when taken",
    )
    shared: bool = Field(False, description="true: every reader may see and follow it; false: yours only")


class PreviewItemOut(BaseModel):
    id: int
    title: str
    url: str | None
    published: dt.datetime
    kind: str = Field(description="'paper' or 'post'")
    sources: _List = Field(description="feeds that announced it")


class TopicPreviewOut(BaseModel):
    start: dt.datetime = Field(description="start of the window (UTC, inclusive)")
    end: dt.datetime = Field(description="end of the window (UTC, exclusive)")
    first_day: dt.date = Field(description="first local day of the window")
    last_day: dt.date = Field(description="last local day: the digest's default day")
    days: int = Field(description="local days in the window")
    in_window: int = Field(description="items in the window")
    scanned: int = Field(description="items read and matched, newest first (bounded)")
    partial: bool = Field(description="the window held more items than were read")
    matched: int = Field(description="items of the scanned ones the filter matches")
    items: list[PreviewItemOut] = Field(description="the first matching items, newest first (bounded)")


class TopicOut(BaseModel):
    slug: str
    name: str
    description: str
    phrases: _List
    categories: _List
    authors: _List
    sources: _List
    negative: _List
    match: Literal["any", "all"]
    builtin: bool = Field(description="part of the built-in catalogue (nobody can change it)")
    shared: bool = Field(description="visible to every reader (built-in filters are); false: only yours")
    mine: bool = Field(description="created by you (only with a bearer token)")
    subscribed: bool = Field(description="you follow it (only with a bearer token)")
    subscribers: int


class SubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    topic: str = Field(description="slug of a topic filter")


class FeedTokenOut(BaseModel):
    feed_token: str = Field(description="the new feed token; the old feed URL stops working")
    feed_url: str


class SimilarItem(DigestItem):
    pass


class SimilarResponse(BaseModel):
    item_id: int = Field(ge=1, le=2**31 - 1)
    items: list[SimilarItem] = Field(
        description="most similar items first; `score` is the TF-IDF cosine similarity, 0..1"
    )
