"""Feed documents (bytes) → :class:`~aggregator.types.ParsedFeed`.

:func:`parse_feed` reads RSS 0.9x/1.0/2.0, Atom 0.3/1.0 and JSON Feed 1.0/1.1 and turns each
entry into a :class:`~aggregator.types.ParsedEntry`: a *paper* for arXiv documents
(rss.arxiv.org RSS/Atom listings and export.arxiv.org API answers), a *post* for everything else.
It never raises; what went wrong is said in ``ParsedFeed.problems``.

Three readers, one builder (:mod:`~aggregator.feeds.build`):

1. JSON Feed (:mod:`~aggregator.feeds.jsonfeed`) when the body is JSON;
2. the fast lxml reader (:mod:`~aggregator.feeds.parse_fast`) for well-formed UTF-8 RSS 2.0 and
   Atom 1.0 (every arXiv document, most blogs), about 20× feedparser's speed;
3. feedparser (:mod:`~aggregator.feeds.parse_feedparser`) for everything the fast reader
   declines: other formats, broken XML, other encodings, layouts it does not know.

Both XML readers give identical records on every captured document
(``tests/test_parse_paths.py``); see docs/parsing.md for the figures.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

from aggregator.feeds.build import MAX_ENTRIES, MIN_YEAR, SUMMARY_MAX_CHARS, UNTITLED_CHARS, build_feed
from aggregator.feeds.html_text import (
    HTML_MAX_CHARS,
    clean_text,
    html_to_text,
    normalise_link,
    sanitize_html,
    trim_text,
)
from aggregator.feeds.jsonfeed import looks_like_json, read_json_feed
from aggregator.feeds.parse_fast import read_fast
from aggregator.feeds.parse_feedparser import read_feedparser
from aggregator.feeds.raw import RawFeed
from aggregator.types import ParsedFeed

__all__ = [
    "HTML_MAX_CHARS",
    "MAX_ENTRIES",
    "MIN_YEAR",
    "SUMMARY_MAX_CHARS",
    "UNTITLED_CHARS",
    "FeedKind",
    "Reader",
    "clean_text",
    "html_to_text",
    "normalise_link",
    "parse_feed",
    "sanitize_html",
    "trim_text",
]

FeedKind = Literal["arxiv", "blog"]
#: Which reader to use: ``"auto"`` (fast, else feedparser), or one forced (tests, benchmarks).
Reader = Literal["auto", "fast", "feedparser"]


def parse_feed(
    body: bytes,
    *,
    fetched_at: dt.datetime,
    url: str = "",
    kind: FeedKind | None = None,
    content_type: str | None = None,
    reader: Reader = "auto",
) -> ParsedFeed:
    """Parse one feed document.

    ``body`` is the raw (decompressed) response body; ``fetched_at`` is when it was fetched
    (a naive value is taken as UTC) and stands in for entries without a usable date;
    ``url`` is the address it came from (relative links resolve against ``xml:base``, then it);
    ``content_type`` is the HTTP ``Content-Type`` header, whose charset is weighed against the
    XML declaration. ``kind`` forces ``"arxiv"`` or ``"blog"``; ``None`` detects arXiv from
    ``oai:arXiv.org:`` guids, ``<arxiv:announce_type>``, or a feed link/id/URL on arxiv.org.
    ``reader="fast"`` returns a ParsedFeed with the single problem ``"fast reader declined"``
    when the fast reader cannot take the document.

    Returns a :class:`ParsedFeed` whose entries are in document order, one per key (the
    first wins). Never raises: malformed or truncated XML gives the entries recovered
    before the error plus a problem line, and bytes that are no feed at all give zero
    entries and a problem line. An arXiv API error answer (an entry whose id is
    ``…/api/errors#…``) gives no entries and ``api_error`` set to its message.
    """
    fetched = _as_utc(fetched_at)
    try:
        if not body or not body.strip():
            return ParsedFeed(
                kind=kind or "blog", title="", link=url or None, entries=(), problems=("empty document",)
            )
        raw = read_raw(body, content_type, reader)
        if raw is None:
            return ParsedFeed(
                kind=kind or "blog", title="", link=None, entries=(), problems=("fast reader declined",)
            )
        return build_feed(raw, fetched, url, kind)
    except Exception as err:  # a parser bug must not take the fetch loop down
        return ParsedFeed(
            kind=kind or "blog",
            title="",
            link=url or None,
            entries=(),
            problems=(f"could not parse the document: {type(err).__name__}: {err}",),
        )


def read_raw(body: bytes, content_type: str | None, reader: Reader = "auto") -> RawFeed | None:
    """The :class:`RawFeed` of ``body`` from the reader chosen as in :func:`parse_feed`;
    ``None`` only when ``reader="fast"`` and the fast reader declines."""
    if looks_like_json(body, content_type):
        return read_json_feed(body)
    if reader != "feedparser":
        raw = read_fast(body, content_type)
        if raw is not None or reader == "fast":
            return raw
    return read_feedparser(body, content_type)


def _as_utc(when: dt.datetime) -> dt.datetime:
    if when.tzinfo is None:
        return when.replace(tzinfo=dt.UTC)
    return when.astimezone(dt.UTC)
