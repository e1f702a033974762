"""Response schemas of the HTTP API, kept apart from the tables."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict, Field


class WhyTerm(BaseModel):
    """A reason for a score. A phrase of the text has ``term`` and ``weight`` only; a vote's
    reason ("similar to a paper you liked: <title>", "you marked a similar paper 👎") also
    has ``kind`` (``liked``/``disliked``) and ``item_id`` (the voted item), kept as extra
    fields so that both serialise exactly as stored (issue 17)."""

    model_config = ConfigDict(extra="allow")

    term: str = Field(description="a phrase of the text (unigram or bigram), or a vote's reason")
    weight: float = Field(description="its contribution to the score")


class DigestItem(BaseModel):
    id: int
    title: str
    url: str | None
    authors: list[str]
    source: str = Field(description="name of the feed that announced the item first")
    sources: list[str] = Field(description="every feed that announced it (a cross-list is one item)")
    kind: str = Field(description="'paper' (arXiv) or 'post' (blog)")
    categories: list[str]
    published: dt.datetime = Field(description="announcement (papers) or publication (posts) time, UTC")
    score: float | None = Field(
        description="cosine similarity to the interest profile, 0..1; null in an unranked digest "
        "(no interests set)"
    )
    why: list[WhyTerm] = Field(description="the terms that contributed most to the score")
    arxiv_id: str | None = None
    discussed_in: int = Field(default=0, description="blog posts that link this paper")
    abs_url: str | None = Field(default=None, description="arXiv abstract page (papers)")
    pdf_url: str | None = Field(default=None, description="arXiv PDF (papers)")
    venue: str | None = Field(default=None, description="accepted venue from the arXiv comment/journal-ref")
    venue_year: int | None = None
    venue_workshop: bool = Field(default=False, description="a workshop of `venue`, not its main track")
    venue_label: str | None = Field(default=None, description="badge text, e.g. 'NeurIPS 2025 (Oral)'")
    has_code: bool = Field(default=False, description="a GitHub/GitLab/Hugging Face link was found")
    links: list[dict[str, str]] = Field(default_factory=list, description="[{kind: code|project, url}]")


class DigestResponse(BaseModel):
    date: dt.date
    days: int
    timezone: str
    total: int = Field(description="items in the window, of which `items` are the best `limit`")
    ranked: bool = Field(
        True,
        description="false when no interests are set (no [interests] in feeds.toml): the items are "
        "then ordered by `discussed_in`, then newest first, and every `score` is null",
    )
    items: list[DigestItem]
    next_cursor: str | None = Field(None, description="pass as `cursor` for the next page; null on the last")


class ItemSourceOut(BaseModel):
    feed: str
    announce_type: str | None
    version: int | None
    seen_at: dt.datetime


class ItemDetail(DigestItem):
    summary: str
    summary_html: str | None
    version: int | None
    primary_category: str | None
    comment: str | None
    date_from_fetch: bool = Field(
        description="true when the feed gave no usable date and the fetch time was used"
    )
    first_seen_at: dt.datetime
    announcements: list[ItemSourceOut]


class FeedStatus(BaseModel):
    """One feed's fetch state (see :class:`aggregator.feeds.status.FeedState`)."""

    id: int
    name: str
    url: str | None = Field(
        description="null for a feed a reader added, unless you are that reader (its URL may "
        "hold a private token)"
    )
    kind: str | None = Field(description="'arxiv' or 'blog'; null until detected from the document")
    title: str | None = Field(description="the title the feed gives itself")
    interval_minutes: int
    scheduled: bool = Field(description="followed: fetched by the scheduler")
    disabled: bool = Field(description="stopped after the feed answered 410 Gone")
    reader_added: bool = Field(False, description="added by a reader (POST /api/me/feeds)")
    last_status: int | None = Field(description="HTTP status of the latest fetch; null before any answer")
    last_fetch_at: dt.datetime | None
    last_success_at: dt.datetime | None
    error_count: int = Field(description="failures in a row (0 after a success)")
    last_error: str | None = Field(description="why the latest fetch failed; null when it did not")
    parse_problems: str | None
    next_check_at: dt.datetime | None
    items: int = Field(description="distinct items the feed announced")


class Health(BaseModel):
    status: str
    database: str
    items: int
    feeds: int
