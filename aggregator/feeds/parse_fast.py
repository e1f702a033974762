"""The fast reader: well-formed RSS 2.0 and Atom 1.0 (arXiv's listings and API answers, most
blogs) read with lxml (libxml2) → :class:`~aggregator.feeds.raw.RawFeed`.

It reads what feedparser reads, the way feedparser reads it (its date parser, its URL joining,
its text-or-HTML guess for RSS titles, its UTF-8 and cp1252 repairs), so that both readers give
identical records; ``tests/test_parse_paths.py`` checks this on every captured document. It
*declines* (returns ``None``, and feedparser reads the document) whatever it is not sure to read
identically: XML that libxml2 rejects, a DOCTYPE, ``xml:base``, an encoding other than UTF-8,
inline XHTML, and any entry element outside :data:`_RSS_KNOWN` / :data:`_ATOM_KNOWN`.
"""

from __future__ import annotations

import datetime as dt
import os
import re
from typing import Any

from feedparser.datetimes import _parse_date
from feedparser.html import _cp1252
from feedparser.urls import _urljoin
from lxml import etree

from aggregator.feeds.html_text import looks_like_html, repair_mojibake
from aggregator.feeds.raw import RawEntry, RawFeed

ATOM = "{http://www.w3.org/2005/Atom}"
_DC = "{http://purl.org/dc/elements/1.1/}"
_ARXIV_NS = "http://arxiv.org/schemas/atom"
_ARXIV = "{" + _ARXIV_NS + "}"
_CONTENT = "{http://purl.org/rss/1.0/modules/content/}"
_MEDIA = "{http://search.yahoo.com/mrss/}"
_OPENSEARCH = "{http://a9.com/-/spec/opensearch/1.1/}"
_IGNORED = "ignored"
#: RSS 2.0 item children read here (name → field) or known not to change a field we keep.
_RSS_KNOWN: dict[str, str] = {
    "title": "title",
    "link": "link",
    "description": "summary",
    f"{_CONTENT}encoded": "content",
    "guid": "guid",
    "pubDate": "published",
    f"{_DC}date": "updated",
    "category": "category",
    f"{_DC}creator": "author",
    f"{_ARXIV}announce_type": "announce_type",
    **{
        t: _IGNORED
        for t in (
            "comments",
            "enclosure",
            f"{_DC}rights",
            f"{_ARXIV}DOI",
            f"{_ARXIV}doi",
            f"{_ARXIV}journal_reference",
            f"{_ARXIV}journal_ref",
            f"{_MEDIA}content",
            f"{_MEDIA}thumbnail",
            "{http://purl.org/rss/1.0/modules/slash/}comments",
            "{http://wellformedweb.org/CommentAPI/}commentRss",
        )
    },
}
#: Atom 1.0 entry children read here or known not to change a field we keep.
_ATOM_KNOWN: dict[str, str] = {
    f"{ATOM}title": "title",
    f"{ATOM}link": "link",
    f"{ATOM}id": "guid",
    f"{ATOM}summary": "summary",
    f"{ATOM}content": "content",
    f"{ATOM}published": "published",
    f"{ATOM}updated": "updated",
    f"{ATOM}category": "category",
    f"{ATOM}author": "author",
    f"{_ARXIV}primary_category": "primary_category",
    f"{_ARXIV}comment": "comment",
    f"{_ARXIV}journal_ref": "journal_ref",
    f"{_ARXIV}announce_type": "announce_type",
    f"{_DC}creator": "author",
    **{
        t: _IGNORED
        for t in (
            f"{ATOM}contributor",
            f"{ATOM}rights",
            f"{_DC}rights",
            f"{_ARXIV}doi",
            f"{_ARXIV}DOI",
            f"{_ARXIV}journal_reference",
        )
    },
}
_SY = "{http://purl.org/rss/1.0/modules/syndication/}"
#: Channel and feed children that cannot change a feed field we keep (others: decline).
_RSS_CHANNEL_KNOWN = frozenset(
    (
        "title", "link", "description", "language", "copyright", "managingEditor", "webMaster",
        "pubDate", "lastBuildDate", "category", "generator", "docs", "cloud", "ttl", "image",
        "rating", "skipHours", "skipDays", "item", f"{ATOM}link", f"{_SY}updatePeriod",
        f"{_SY}updateFrequency", f"{_DC}rights", f"{_DC}language",
    )
)  # fmt: skip
_ATOM_FEED_KNOWN = frozenset(
    f"{ATOM}{t}"
    for t in ("title", "subtitle", "id", "link", "updated", "author", "contributor", "generator",
              "icon", "logo", "rights", "category", "entry")
) | {f"{_OPENSEARCH}totalResults", f"{_OPENSEARCH}startIndex", f"{_OPENSEARCH}itemsPerPage"}  # fmt: skip
_TEXT_TYPES = {"text": False, "html": True, "text/plain": False, "text/html": True}
_UNESCAPED_REF_RE = re.compile("&([A-Za-z0-9_]+);")
_ENCODING_RE = re.compile(rb"""^<\?xml[^>]*encoding\s*=\s*["']([A-Za-z0-9._-]+)["']""")
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, recover=False, remove_comments=True)


class Decline(Exception):
    """The document is one feedparser must read (the message says why; see the module doc)."""


def read_fast(body: bytes, content_type: str | None) -> RawFeed | None:
    """Read ``body`` (RSS 2.0 or Atom 1.0, UTF-8, well-formed), or ``None`` to let feedparser
    read it. Never raises."""
    try:
        return _read(body, content_type)
    except (Decline, etree.Error, ValueError, UnicodeError, TypeError) as err:
        if os.environ.get("PARSE_FAST_DEBUG"):
            print("declined:", repr(err)[:200])
        return None


def _read(body: bytes, content_type: str | None) -> RawFeed:
    _check_encoding(body, content_type)
    head = body[:4096]
    if b"<!DOCTYPE" in head or b"<!doctype" in head or b"xml:base" in body:
        raise Decline("DOCTYPE or xml:base")
    root = etree.fromstring(body, _PARSER)
    if root.tag == "rss" and (root.get("version") or "").strip() == "2.0":
        return _read_rss(root)
    if root.tag == f"{ATOM}feed" and root.nsmap.get(None) == ATOM[1:-1]:
        return _read_atom(root)
    raise Decline(f"not RSS 2.0 or Atom 1.0: {root.tag}")


def _check_encoding(body: bytes, content_type: str | None) -> None:
    if content_type:
        media, _, params = content_type.lower().partition(";")
        media = media.strip()
        charset = re.search(r"charset\s*=\s*\"?([\w.-]+)", params)
        if not (media.endswith("xml") or media.endswith("+xml")) or (
            charset and charset.group(1) not in ("utf-8", "utf8")
        ):
            raise Decline(f"content type {content_type}")
        if media.startswith("text/") and not charset:
            raise Decline("text/* without charset (RFC 3023: us-ascii)")
    if body[:3] == b"\xef\xbb\xbf":
        body = body[3:]
    elif body[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise Decline("UTF-16")
    declared = _ENCODING_RE.match(body[:200])
    if declared and declared.group(1).lower() not in (b"utf-8", b"utf8"):
        raise Decline("declared encoding is not UTF-8")


def _fix(text: str | None) -> str:
    """feedparser's repairs of a decoded string: UTF-8 read as ISO-8859-1 re-decoded, and
    C1 code points mapped to their cp1252 characters; then stripped."""
    if not text:
        return ""
    if not text.isascii():
        text = repair_mojibake(text).translate(_cp1252)
    return text.strip()


def _text(el: Any) -> str:
    if len(el):
        raise Decline(f"markup inside <{el.tag}>")
    return _fix(el.text)


_DATE_CACHE: dict[str, dt.datetime | None] = {}


def _date(value: str) -> dt.datetime | None:
    """feedparser's own date parser (so both readers agree), cached per string: one listing
    repeats one date a thousand times."""
    if value in _DATE_CACHE:
        return _DATE_CACHE[value]
    parsed = _parse_date(value) if value else None
    when = None
    if parsed is not None:
        try:
            y, mo, d, h, mi, s = (int(x) for x in parsed[:6])
            when = dt.datetime(y, mo, d, h, mi, min(s, 59), tzinfo=dt.UTC)
        except (TypeError, ValueError, OverflowError):
            when = None
    if len(_DATE_CACHE) > 4096:
        _DATE_CACHE.clear()
    _DATE_CACHE[value] = when
    return when


def _join(uri: str) -> str:
    """``feedparser.urls._urljoin("", uri)``: extra slashes after ``scheme://`` dropped (its
    ``_urifixer``); with no base, nothing else changes. Without the regex for the common
    ``https://host…`` (nothing to drop)."""
    if uri.startswith(("https://", "http://")) and uri[uri.index("://") + 3 : uri.index("://") + 4] != "/":
        return uri
    return _urljoin("", uri)


def _link_text(text: str) -> str:
    """feedparser's repair of ``&``-mangled query strings in an entry's link, and its join."""
    if "&" in text:
        text = _UNESCAPED_REF_RE.sub(r"&\g<1>", text.replace("&amp;", "&"))
    return _join(text) if text else text


def _rss_title(el: Any, value: str | None = None) -> tuple[str, bool]:
    """An RSS title and whether it is HTML; ``value`` is ``_text(el)`` when already read."""
    value = _text(el) if value is None else value
    kind = (el.get("type") or "text/plain").lower()
    if kind not in ("text/plain", "text", "text/html", "html"):
        raise Decline("title type")
    is_html = _TEXT_TYPES[kind] or (("<" in value or "&" in value) and looks_like_html(value))
    return value, is_html


def _read_rss(root: Any) -> RawFeed:
    channel = root.find("channel")
    if channel is None or len(root) != 1:
        raise Decline("RSS without one channel")
    if channel.find(f"{ATOM}link[@rel='alternate']") is not None:
        raise Decline("atom:link alternate in channel")
    if root.nsmap.get("arxiv", _ARXIV_NS) != _ARXIV_NS:
        raise Decline("arxiv namespace under another prefix")
    for el in channel:
        if isinstance(el.tag, str) and el.tag not in _RSS_CHANNEL_KNOWN:
            raise Decline(f"channel element {el.tag}")
    feed = RawFeed(version="rss20")
    title = channel.find("title")
    if title is not None:
        feed.title, feed.title_html = _rss_title(title)
    link = channel.find("link")
    if link is not None:
        feed.link = _urljoin("", _UNESCAPED_REF_RE.sub(r"&\g<1>", _text(link))) or None
    desc = channel.find("description")
    feed.subtitle = _text(desc) if desc is not None else ""
    feed.links = tuple(x for x in [feed.link or ""] if x) + tuple(
        _urljoin("", h) for h in (el.get("href") for el in channel.iterfind(f"{ATOM}link")) if h
    )
    for item in channel.iterfind("item"):
        feed.entries.append(_rss_item(item))
    return feed


def _rss_item(item: Any) -> RawEntry:
    """One RSS 2.0 item, field by field as feedparser maps them (mixin.py, namespaces/_base.py).
    Long: one branch per element."""
    entry = RawEntry()
    link: str | None = None
    guid_link: str | None = None
    published = updated = None
    authors: list[str] = []
    categories: list[str] = []
    seen: set[str] = set()
    for el in item:
        tag = el.tag
        field = _RSS_KNOWN.get(tag)
        if field is None:
            if not isinstance(tag, str):
                continue
            raise Decline(f"item element {tag}")
        if field == _IGNORED:
            continue
        if field in seen and field not in ("category", "author"):
            raise Decline(f"repeated {tag}")
        seen.add(field)
        if len(el):  # _text(el), inline: every field below reads it once
            raise Decline(f"markup inside <{tag}>")
        value = el.text
        value = (value.strip() if value.isascii() else _fix(value)) if value else ""
        if field == "summary":
            entry.summary, entry.summary_html = value, True
        elif field == "title":
            entry.title, entry.title_html = _rss_title(el, value)
        elif field == "link":
            link = _link_text(value)
        elif field == "content":
            entry.content, entry.content_html = value, True
        elif field == "guid":
            is_link = (el.get("isPermaLink") or "true") == "true"
            entry.guid = _join(value) if is_link and value else value
            guid_link = entry.guid if is_link else None
        elif field == "published":
            published = _date(value)
        elif field == "updated":
            updated = _date(value)
        elif field == "category":
            categories.append(value)
        elif field == "author":
            if "@" in value or "(" in value and ")" not in value:
                raise Decline("author with e-mail")
            authors.append(value)
        elif field == "announce_type":
            entry.announce_type = value
    if link is None and guid_link:
        link = guid_link
    entry.links = (link,) if link else ()
    entry.authors = tuple(authors)
    entry.categories = tuple(categories)
    entry.dates = (published, updated, None)
    return entry


def _atom_text(el: Any) -> tuple[str, bool]:
    kind = (el.get("type") or "text").lower()
    if kind not in _TEXT_TYPES or el.get("src") is not None or el.get("mode") is not None:
        raise Decline(f"Atom text construct of type {kind}")
    return _text(el), _TEXT_TYPES[kind]


def _atom_links(parent: Any, first: str | None) -> tuple[str | None, tuple[str, ...], tuple[str, ...]]:
    """feedparser's ``link`` (the LAST alternate HTML link, else ``first``), all links, and the
    alternate HTML links."""
    link, hrefs, alternates = first, [], []
    for el in parent.iterfind(f"{ATOM}link"):
        href = el.get("href")
        if href is None:
            raise Decline("atom:link without href")
        href = _join(href)
        rel = el.get("rel", "alternate")
        kind = el.get("type", "application/atom+xml" if rel == "self" else "text/html")
        hrefs.append(href)
        if rel == "alternate" and kind in ("text/html", "application/xhtml+xml"):
            link = href
            alternates.append(href)
    return link, tuple(hrefs), tuple(alternates)


def _read_atom(root: Any) -> RawFeed:
    if root.nsmap.get("arxiv", _ARXIV_NS) != _ARXIV_NS:
        raise Decline("arxiv namespace under another prefix")
    feed = RawFeed(version="atom10")
    for el in root:
        tag = el.tag
        if isinstance(tag, str) and tag not in _ATOM_FEED_KNOWN:
            raise Decline(f"feed element {tag}")
        if tag == f"{ATOM}title":
            feed.title, feed.title_html = _atom_text(el)
        elif tag == f"{ATOM}subtitle":
            feed.subtitle = _atom_text(el)[0]
        elif tag == f"{ATOM}id":
            feed.feed_id = _urljoin("", _text(el)) or None
        elif tag == f"{ATOM}author":
            feed.authors += _atom_author(el)
        elif tag == f"{_OPENSEARCH}totalResults":
            feed.total_results = _text(el)
        elif tag == f"{_OPENSEARCH}startIndex":
            feed.start_index = _text(el)
        elif tag == f"{ATOM}entry":
            feed.entries.append(_atom_entry(el))
    feed.link, feed.links, _ = _atom_links(root, feed.feed_id)
    return feed


def _atom_author(el: Any) -> tuple[str, ...]:
    name = email = ""
    for child in el:
        if child.tag == f"{ATOM}name":
            name = _text(child)
        elif child.tag == f"{ATOM}email":
            email = _text(child)
        elif child.tag not in (f"{ATOM}uri", f"{_ARXIV}affiliation"):
            raise Decline(f"author element {child.tag}")
    return (name or email,) if (name or email) else ()


def _atom_entry(item: Any) -> RawEntry:
    entry = RawEntry()
    dates: dict[str, dt.datetime | None] = {}
    authors: list[str] = []
    categories: list[str] = []
    seen: set[str] = set()
    for el in item:
        tag = el.tag
        if not isinstance(tag, str):
            continue
        field = _ATOM_KNOWN.get(tag)
        if field is None:
            raise Decline(f"entry element {tag}")
        if field == _IGNORED:
            continue
        if field in seen and field not in ("category", "author", "link"):
            raise Decline(f"repeated {tag}")
        seen.add(field)
        if field == "title":
            entry.title, entry.title_html = _atom_text(el)
        elif field == "guid":
            value = _text(el)
            entry.guid = _join(value) if value else None
        elif field == "summary":
            entry.summary, entry.summary_html = _atom_text(el)
        elif field == "content":
            entry.content, entry.content_html = _atom_text(el)
        elif field in ("published", "updated"):
            dates[field] = _date(_text(el))
        elif field == "category":
            categories.append(el.get("term") or el.get("label") or "")
        elif field == "author":
            authors.extend(_atom_author(el) if tag == f"{ATOM}author" else (_text(el),))
        elif field == "primary_category":
            entry.primary_category = el.get("term") or None
        elif field == "comment":
            entry.comment = _text(el)
        elif field == "journal_ref":
            entry.journal_ref = _text(el)
        elif field == "announce_type":
            entry.announce_type = _text(el)
    link, _, alternates = _atom_links(item, entry.guid)
    entry.links = tuple(dict.fromkeys(h for h in (link, *alternates) if h))
    entry.authors = tuple(authors)
    entry.categories = tuple(categories)
    entry.dates = (dates.get("published"), dates.get("updated"), None)
    return entry
