"""The neutral record every feed reader of :mod:`aggregator.feeds.parse` produces.

Three readers turn bytes into a :class:`RawFeed`: the fast lxml reader
(:mod:`~aggregator.feeds.parse_fast`), the feedparser fallback
(:mod:`~aggregator.feeds.parse_feedparser`) and the JSON Feed reader
(:mod:`~aggregator.feeds.jsonfeed`). One builder (:mod:`~aggregator.feeds.build`) turns a
:class:`RawFeed` into a :class:`~aggregator.types.ParsedFeed`, so every rule about what is kept
lives in one place and the readers only have to agree on what the document says.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field


@dataclass(slots=True)
class RawEntry:
    """One entry as the document states it. Text fields are as decoded from the document
    (XML entities resolved once); ``*_html`` says whether the field is HTML markup (only then
    are tags stripped). ``links`` are ``(rel, href)`` pairs of alternate links in document
    order, hrefs as resolved against ``xml:base`` (feedparser's rule); ``base`` is the
    ``xml:base`` in effect for the content (``None`` without one). ``dates`` are the
    published, updated and created dates in that order (UTC, ``None`` when missing)."""

    title: str = ""
    title_html: bool = False
    links: tuple[str, ...] = ()
    guid: str | None = None
    guid_is_link: bool = False
    summary: str = ""
    summary_html: bool = False
    content: str = ""
    content_html: bool = False
    base: str | None = None
    authors: tuple[str, ...] = ()
    categories: tuple[str, ...] = ()
    dates: tuple[dt.datetime | None, ...] = ()
    announce_type: str = ""
    primary_category: str | None = None
    comment: str = ""
    journal_ref: str = ""


@dataclass(slots=True)
class RawFeed:
    """A whole document. ``version`` is feedparser's name of the format (``rss20``,
    ``atom10``, ``json11``…, empty when unknown). ``problems`` are reader-level problems
    (malformed XML, encoding) in words a person can act on."""

    version: str = ""
    title: str = ""
    title_html: bool = False
    link: str | None = None
    feed_id: str | None = None
    links: tuple[str, ...] = ()
    subtitle: str = ""
    authors: tuple[str, ...] = ()
    entries: list[RawEntry] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    total_results: str | None = None
    start_index: str | None = None
    is_feed: bool = True
