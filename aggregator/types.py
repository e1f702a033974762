"""Typed records handed from one pipeline stage to the next.

fetch → :class:`FetchResult` → parse → :class:`ParsedFeed` (of :class:`ParsedEntry`) →
ingest → store. No stage passes an ORM row or a raw feedparser dict to another.
All datetimes are timezone-aware UTC.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Literal

ItemKind = Literal["paper", "post"]
AnnounceType = Literal["new", "cross", "replace", "replace-cross"]


@dataclass(frozen=True, slots=True)
class FetchResult:
    """The outcome of one conditional GET of a feed.

    Exactly one of these holds: ``body`` is set (a 2xx answer, decompressed), ``not_modified``
    is true (a 304), or ``error`` describes the failure (network error, a limit broken, or a
    non-2xx status in ``status``). ``retry_after`` is in seconds when the server sent one.
    ``elapsed`` is wall-clock seconds from request to last byte.
    """

    url: str
    final_url: str
    status: int | None
    body: bytes | None = None
    etag: str | None = None
    last_modified: str | None = None
    not_modified: bool = False
    error: str | None = None
    retry_after: float | None = None
    elapsed: float = 0.0
    content_type: str | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def gone(self) -> bool:
        """HTTP 410: the publisher says the feed is gone for good."""
        return self.status == 410


@dataclass(frozen=True, slots=True)
class ParsedEntry:
    """One entry of a feed, whatever its format, ready to become (part of) an item.

    ``key`` is the identity of the item across feeds: ``arxiv:<id without version>`` for papers,
    the normalised link (falling back to ``guid:<guid>``) for posts. ``summary`` is plain text;
    ``summary_html`` is sanitised HTML for display (posts only): of the entry's summary when it has one,
    else of its content; ``content_html`` is the full content when the entry has both (item page,
    search). ``published`` is UTC; when the
    feed gave no usable date it is the fetch time and ``date_from_fetch`` is true.
    """

    kind: ItemKind
    key: str
    title: str
    url: str | None
    authors: tuple[str, ...]
    summary: str
    published: dt.datetime
    summary_html: str | None = None
    date_from_fetch: bool = False
    guid: str | None = None
    categories: tuple[str, ...] = ()
    primary_category: str | None = None
    arxiv_id: str | None = None
    version: int | None = None
    announce_type: AnnounceType | None = None
    comment: str | None = None
    content_html: str | None = None
    #: arXiv API answers only (``arxiv:journal_ref``); the RSS listings carry none
    journal_ref: str | None = None
    #: True for an entry of an arXiv API answer (it has the comment and journal reference),
    #: False for a listing (RSS/Atom), which the worker enriches from the API afterwards
    from_api: bool = False


@dataclass(frozen=True, slots=True)
class ParsedFeed:
    """A whole parsed document.

    ``kind`` is ``"arxiv"`` or ``"blog"`` as detected from the document. ``problems`` lists
    what went wrong while parsing (malformed XML, bad dates, entries skipped) in words a
    person can act on; a non-empty list does not mean no entries were recovered.
    ``total_results``/``start_index`` come from the arXiv API's OpenSearch elements.
    """

    kind: Literal["arxiv", "blog"]
    title: str
    link: str | None
    entries: tuple[ParsedEntry, ...]
    problems: tuple[str, ...] = ()
    total_results: int | None = None
    start_index: int | None = None
    api_error: str | None = None


@dataclass(slots=True)
class IngestSummary:
    """What one ingest of one parsed document changed, in item counts."""

    new: int = 0
    updated: int = 0
    unchanged: int = 0
    new_item_ids: list[int] = field(default_factory=list)
    #: entries the feed may not write (another feed owns the item; paper metadata from a feed
    #: that is not arXiv), see :mod:`aggregator.feeds.trust`
    refused: int = 0


@dataclass(frozen=True, slots=True)
class TopicFilter:
    """A named, shareable saved query. An item matches when ``match`` ("any" or "all") of the
    given criteria hold (phrases in title/abstract, case-insensitive; categories; authors;
    source feed names) and none of the ``negative`` phrases occur."""

    slug: str
    name: str
    phrases: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    authors: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    negative: tuple[str, ...] = ()
    match: Literal["any", "all"] = "any"


@dataclass(frozen=True, slots=True)
class ReaderProfile:
    """Everything the ranker needs to score items for one reader (built from the readers,
    profiles, subscriptions and feedback tables). ``seed_papers`` are bare arXiv ids."""

    reader_id: int
    interests: str = ""
    keywords: tuple[str, ...] = ()
    muted: tuple[str, ...] = ()
    followed_authors: tuple[str, ...] = ()
    include_categories: tuple[str, ...] = ()
    exclude_categories: tuple[str, ...] = ()
    include_sources: tuple[str, ...] = ()
    exclude_sources: tuple[str, ...] = ()
    seed_papers: tuple[str, ...] = ()
    liked_item_ids: tuple[int, ...] = ()
    disliked_item_ids: tuple[int, ...] = ()
    topics: tuple[TopicFilter, ...] = ()

    @property
    def score_key(self) -> str:
        """The ``scores.profile`` value of this reader's precomputed scores."""
        return f"reader:{self.reader_id}"
