"""The fallback reader: any document feedparser (https://feedparser.readthedocs.io/) reads →
:class:`~aggregator.feeds.raw.RawFeed`.

feedparser runs with ``sanitize_html=False`` and ``resolve_relative_uris=False`` and without a
``content-location`` header: sanitising and resolving re-parse every HTML field (turning the
abstract text ``$1/3<s<1$`` into ``<s><1``) and join every URL of every entry, which was most of
the parse time on arXiv listings. Only the URLs kept are resolved, by the builder. feedparser
still resolves link hrefs against ``xml:base`` (RFC 3986 §5.1.1), which is what we want.
"""

from __future__ import annotations

import datetime as dt
import io
from collections.abc import Mapping
from typing import Any

import feedparser

from aggregator.feeds.html_text import clean_text
from aggregator.feeds.raw import RawEntry, RawFeed

_HTML_TYPES = {"text/html", "application/xhtml+xml"}
_LINK_TYPES = {"", "text/html", "application/xhtml+xml"}


def read_feedparser(body: bytes, content_type: str | None) -> RawFeed:
    """Read ``body`` with feedparser; ``content_type`` is the HTTP header (its charset is
    weighed against the XML declaration). Never raises for bad input (feedparser does not);
    malformed XML gives the entries recovered plus a problem line."""
    headers = {"content-type": content_type} if content_type else None
    # No warnings.catch_warnings() here: it swaps process-wide state and parsing runs in
    # several threads; the fields are read so as not to trigger feedparser's key-alias warnings.
    doc = feedparser.parse(
        io.BytesIO(body),  # a stream: bytes would first be tried as a local file name
        response_headers=headers,
        sanitize_html=False,
        resolve_relative_uris=False,
    )
    feed: dict[str, Any] = doc.get("feed") or {}
    raw_entries: list[dict[str, Any]] = list(doc.get("entries") or [])
    version = str(doc.get("version") or "")
    out = RawFeed(
        version=version,
        title=_str(feed, "title"),
        title_html=_is_html(feed, "title"),
        link=_str(feed, "link") or None,
        feed_id=_str(feed, "id") or None,
        links=tuple(
            str(lk.get("href"))
            for lk in dict.get(feed, "links") or ()
            if isinstance(lk, Mapping) and lk.get("href")
        ),
        subtitle=_str(feed, "subtitle"),
        authors=_authors(feed),
        entries=[_entry(e) for e in raw_entries],
        total_results=_str(feed, "opensearch_totalresults") or None,
        start_index=_str(feed, "opensearch_startindex") or None,
        is_feed=bool(raw_entries or version or feed),
    )
    if doc.get("bozo"):
        problem = _bozo_problem(doc.get("bozo_exception"), len(raw_entries))
        if problem:
            out.problems.append(problem)
    return out


def _str(d: dict[str, Any], key: str) -> str:
    value = dict.get(d, key)
    return value if isinstance(value, str) else ""


def _is_html(d: dict[str, Any], key: str) -> bool:
    detail = dict.get(d, f"{key}_detail")
    return isinstance(detail, Mapping) and detail.get("type") in _HTML_TYPES


def _entry(e: dict[str, Any]) -> RawEntry:
    links: list[str] = []
    first = _str(e, "link")
    if first:
        links.append(first)
    for lk in dict.get(e, "links") or ():
        if isinstance(lk, Mapping) and lk.get("rel", "alternate") == "alternate":
            href = lk.get("href")
            if isinstance(href, str) and href and href not in links and lk.get("type", "") in _LINK_TYPES:
                links.append(href)
    content, content_html, base = "", False, None
    for item in dict.get(e, "content") or ():  # the longest content element
        if (
            isinstance(item, Mapping)
            and isinstance(item.get("value"), str)
            and len(item["value"]) > len(content)
        ):
            content, content_html = item["value"], item.get("type") in _HTML_TYPES
            base = item.get("base") or None
    summary_detail = dict.get(e, "summary_detail")
    if base is None and isinstance(summary_detail, Mapping):
        base = summary_detail.get("base") or None
    primary = dict.get(e, "arxiv_primary_category")
    return RawEntry(
        title=_str(e, "title"),
        title_html=_is_html(e, "title"),
        links=tuple(links),
        guid=_str(e, "id") or None,
        # feedparser copies a lone content into ``summary`` (without a summary_detail): not a summary
        summary=_str(e, "summary") if isinstance(summary_detail, Mapping) else "",
        summary_html=_is_html(e, "summary"),
        content=content,
        content_html=content_html,
        base=base,
        authors=_authors(e),
        categories=tuple(
            str(t.get("term") or t.get("label") or "")
            for t in dict.get(e, "tags") or ()
            if isinstance(t, Mapping)
        ),
        dates=tuple(_date(dict.get(e, k)) for k in ("published_parsed", "updated_parsed", "created_parsed")),
        announce_type=_str(e, "arxiv_announce_type"),
        primary_category=str(primary.get("term") or "") or None if isinstance(primary, Mapping) else None,
        comment=_str(e, "arxiv_comment"),
        journal_ref=_str(e, "arxiv_journal_ref"),
    )


def _authors(d: dict[str, Any]) -> tuple[str, ...]:
    names: list[str] = []
    for author in dict.get(d, "authors") or ():
        if isinstance(author, Mapping):
            name = author.get("name") or author.get("email")
            if isinstance(name, str) and name.strip():
                names.append(name)
    if not names:
        single = dict.get(d, "author")
        if isinstance(single, str) and single.strip():
            names.append(single)
    return tuple(names)


def _date(value: object) -> dt.datetime | None:
    if isinstance(value, tuple) and len(value) >= 6:
        try:
            year, month, day, hour, minute, second = (int(x) for x in value[:6])
            return dt.datetime(year, month, day, hour, minute, min(second, 59), tzinfo=dt.UTC)
        except (TypeError, ValueError, OverflowError):
            return None
    return None


def _bozo_problem(exc: object, recovered: int) -> str | None:
    if exc is None:
        return None
    name = type(exc).__name__
    message = clean_text(str(exc))
    if name == "CharacterEncodingOverride":
        return f"character encoding: {message}; text may be garbled (recovered {recovered} entries)"
    if name == "NonXMLContentType":
        # servers often send feeds as text/html or text/plain; only worth saying when nothing parsed
        return None if recovered else f"not served as a feed: {message}"
    if name == "SAXParseException":
        get_message = getattr(exc, "getMessage", None)
        line = getattr(exc, "getLineNumber", lambda: None)()
        column = getattr(exc, "getColumnNumber", lambda: None)()
        text = get_message() if callable(get_message) else message
        where = f" at line {line}, column {column}" if line is not None else ""
        return f"malformed XML: {text}{where} (recovered {recovered} entries)"
    return f"malformed XML: {message or name} (recovered {recovered} entries)"
