""":class:`~aggregator.feeds.raw.RawFeed` → :class:`~aggregator.types.ParsedFeed`: every rule
about what is kept, whichever reader read the document.

* arXiv documents (rss.arxiv.org listings, export.arxiv.org API answers) give *papers* keyed
  ``arxiv:<id>``; everything else gives *posts* keyed by their normalised link, else
  ``guid:<guid>``, else a digest of their title, else a digest of their text (an RSS 2.0 item
  may hold only a description: status pages, newsletters).
* Only HTML-typed fields are markup (:mod:`~aggregator.feeds.html_text`); arXiv titles and
  abstracts are text (arXiv escapes ``<`` in them: ``$1/3<s<1$`` is an abstract, not a tag).
* A post's URL is its first alternate link that is, or resolves to, an http(s) URL: relative
  links resolve against ``xml:base`` and then the document's URL (feedparser's and reader's
  rule); ``urn:``/``tag:`` ids stay ids. Links inside HTML resolve the same way.
* A post with both a summary and full content keeps both: ``summary``/``summary_html`` from
  the summary (the digest), ``content_html`` from the content (item page, search).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import urllib.parse
from collections.abc import Iterable
from typing import Literal, cast

from aggregator.feeds.arxiv import (
    ANNOUNCE_TYPES,
    is_arxiv_url,
    split_announcement,
    split_arxiv_id,
    split_author_list,
)
from aggregator.feeds.html_bounds import html_over_bounds
from aggregator.feeds.html_text import (
    HTML_MAX_CHARS,
    clean_text,
    display_html,
    field_text,
    html_to_text,
    is_http_url,
    join_url,
    normalise_link,
    repair_mojibake,
    text_is_html,
    trim_text,
)
from aggregator.feeds.raw import RawEntry, RawFeed
from aggregator.types import AnnounceType, ParsedEntry, ParsedFeed

#: Longest plain-text ``summary`` of a post, in characters (cut at a word, then "…").
SUMMARY_MAX_CHARS = 2000
#: Dates before this year are treated as missing (placeholder dates like 1970-01-01).
MIN_YEAR = 1990
#: Entries kept from one document; a feed with more (a hostile or broken one) is cut here so that
#: one fetch cannot flood the database. arXiv's largest real feeds hold a few thousand.
MAX_ENTRIES = 20_000
#: An untitled post gets the start of its summary, this many characters at most, as its title.
UNTITLED_CHARS = 90
#: Entries over the HTML bounds named one by one in the feed's problems; the rest are counted.
BOUNDED_NAMED = 3

_ARXIV_GUID_PREFIX = "oai:arxiv.org:"
_API_ERROR_MARK = "/api/errors"


def build_feed(
    raw: RawFeed, fetched: dt.datetime, url: str, kind: Literal["arxiv", "blog"] | None
) -> ParsedFeed:
    """The :class:`ParsedFeed` of ``raw``; ``fetched`` is UTC, ``url`` the document's address
    (may be empty), ``kind`` forces ``"arxiv"``/``"blog"`` (``None`` detects it)."""
    problems = list(raw.problems)
    entries = raw.entries
    if len(entries) > MAX_ENTRIES:
        problems.append(f"document has {len(entries)} entries; kept the first {MAX_ENTRIES}")
        entries = entries[:MAX_ENTRIES]
    if not problems and not entries and not raw.is_feed:
        problems.append("not an RSS or Atom feed (no feed elements found)")
    detected = kind or _detect_kind(raw, url)
    title = field_text(raw.title, raw.title_html) if raw.title else ""
    link = raw.link or None
    total, start = _int_or_none(raw.total_results), _int_or_none(raw.start_index)
    if detected == "arxiv":
        if title.lower().startswith("feed error for query"):
            problems.append(f"arXiv feed error: {clean_text(raw.subtitle) or title}")
        api_error = _api_error(entries)
        if api_error is not None:
            problems.append(f"arXiv API error: {api_error}")
            return ParsedFeed("arxiv", title, link, (), tuple(problems), total, start, api_error)
        built, skipped, no_id, undated = _build_papers(entries, fetched, from_api=total is not None)
        if no_id:
            problems.append(f"{_count(no_id)} had no arXiv id and {_were(no_id)} skipped")
    else:
        base = url if is_http_url(url) else (link if link and is_http_url(link) else None)
        # RFC 4287 §4.2.1 and JSON Feed 1.1: an entry without authors inherits the feed's
        feed_authors = raw.authors if raw.version.startswith(("atom", "json")) else ()
        built, skipped, undated, bounded = _build_posts(
            entries, fetched, base, feed_authors, url or link or ""
        )
        problems.extend(bounded[:BOUNDED_NAMED])
        if len(bounded) > BOUNDED_NAMED:
            more = len(bounded) - BOUNDED_NAMED
            noun = "entry" if more == 1 else "entries"
            problems.append(f"and {more} more {noun} with HTML shown as plain text (over the parsing bounds)")
    if skipped:
        problems.append(f"{_count(skipped)} had no title, link or guid and {_were(skipped)} skipped")
    if undated:
        problems.append(f"{_count(undated)} had no usable date; used the fetch time")
    unique: dict[str, ParsedEntry] = {}
    for entry in built:
        unique.setdefault(entry.key, entry)
    if len(unique) < len(built):
        problems.append(
            f"{_count(len(built) - len(unique))} repeated a key already in the document; kept the first"
        )
    return ParsedFeed(detected, title, link, tuple(unique.values()), tuple(problems), total, start)


def _detect_kind(raw: RawFeed, url: str) -> Literal["arxiv", "blog"]:
    for entry in raw.entries:
        guid = entry.guid
        if (guid and guid[:14].lower() == _ARXIV_GUID_PREFIX) or entry.announce_type:
            return "arxiv"
    candidates = [raw.link, raw.feed_id, url, *raw.links]
    if any(c and is_arxiv_url(c) for c in candidates):
        return "arxiv"
    return "blog"


def _api_error(entries: list[RawEntry]) -> str | None:
    for entry in entries:
        guid = entry.guid or ""
        if _API_ERROR_MARK in guid and is_arxiv_url(guid):
            return clean_text(entry.summary) or guid.rpartition("#")[2] or "unknown error"
    return None


def _build_papers(
    entries: list[RawEntry], fetched: dt.datetime, from_api: bool = False
) -> tuple[list[ParsedEntry], int, int, int]:
    """Papers of an arXiv document; also the counts skipped (empty), without id, undated.
    ``from_api``: the document is an arXiv API answer (it carries comments and journal refs).
    Long because each arXiv field has its own rule, commented where it is applied."""
    out: list[ParsedEntry] = []
    skipped = no_id = undated = 0
    for entry in entries:
        guid = entry.guid
        link = entry.links[0] if entry.links else None
        title = field_text(entry.title, entry.title_html)
        found = split_arxiv_id(guid) if guid else None
        if found is None and link:
            found = split_arxiv_id(link)
        if found is None:
            if not (title or link or guid):
                skipped += 1
            else:
                no_id += 1
            continue
        arxiv_id, version = found
        raw_summary = entry.summary
        listing = bool(entry.announce_type) or bool(guid and guid[:14].lower() == _ARXIV_GUID_PREFIX)
        announce: AnnounceType | None = None
        if listing:  # "arXiv:2606.13733v1 Announce Type: new Abstract: …"
            abstract, announce = split_announcement(raw_summary)
            explicit = entry.announce_type.strip().lower()
            if explicit in ANNOUNCE_TYPES:
                announce = cast(AnnounceType, explicit)
            if version is None:
                prefixed = split_arxiv_id(raw_summary[:64])
                if prefixed and prefixed[0] == arxiv_id:
                    version = prefixed[1]
        else:
            abstract = raw_summary
        categories = _unique(entry.categories)
        primary = (entry.primary_category or "").strip() or (categories[0] if categories else None)
        published = _entry_date(entry, fetched)
        if published is None:
            undated += 1
        names = [repair_mojibake(n.strip()) for n in entry.authors if n.strip()]
        if listing and len(names) == 1:  # rss.arxiv.org: ONE dc:creator "A, B (Univ, City), C"
            authors = tuple(split_author_list(names[0]))
        else:
            authors = tuple(clean_text(n) for n in names)
        out.append(
            ParsedEntry(
                kind="paper",
                key=f"arxiv:{arxiv_id}",
                title=title,
                url=f"https://arxiv.org/abs/{arxiv_id}",
                authors=authors,
                summary=clean_text(abstract),
                published=published or fetched,
                date_from_fetch=published is None,
                guid=guid,
                categories=categories,
                primary_category=primary,
                arxiv_id=arxiv_id,
                version=version,
                announce_type=announce,
                comment=clean_text(entry.comment) or None,
                journal_ref=clean_text(entry.journal_ref) or None,
                from_api=from_api,
            )
        )
    return out, skipped, no_id, undated


def _resolve_base(doc_base: str | None, xml_base: str | None) -> str | None:
    if not xml_base:
        return doc_base
    try:
        joined = urllib.parse.urljoin(doc_base or "", xml_base)
    except ValueError:
        return doc_base
    return joined if is_http_url(joined) else doc_base


def _build_posts(
    entries: list[RawEntry],
    fetched: dt.datetime,
    doc_base: str | None,
    feed_authors: tuple[str, ...],
    feed_ident: str,
) -> tuple[list[ParsedEntry], int, int, list[str]]:
    """The posts of a blog feed, one per entry: ``(entries, skipped, undated, bounded)``;
    ``bounded`` says, one line per entry, which HTML field is shown as plain text and why
    (:func:`~aggregator.feeds.html_bounds.html_over_bounds`).

    Long because it maps one blog entry field by field.
    """
    out: list[ParsedEntry] = []
    bounded: list[str] = []
    skipped = undated = 0
    for entry in entries:
        title = field_text(entry.title, entry.title_html) if entry.title else ""
        guid = entry.guid.strip() if entry.guid and entry.guid.strip() else None
        base = _resolve_base(doc_base, entry.base)
        link = next((u for u in (join_url(base, h) for h in entry.links) if u), None)
        if entry.summary and not entry.summary_html and text_is_html(entry.summary):
            entry.summary_html = True
        if entry.content and not entry.content_html and text_is_html(entry.content):
            entry.content_html = True
        has_summary = bool(entry.summary.strip())
        has_content = bool(entry.content.strip())
        text_src, text_html = (
            (entry.summary, entry.summary_html) if has_summary else (entry.content, entry.content_html)
        )
        summary = trim_text(field_text(text_src[:HTML_MAX_CHARS], text_html), SUMMARY_MAX_CHARS)
        if not (title or link or guid or summary):
            skipped += 1
            continue
        if link:
            key = normalise_link(link)
        elif guid:
            key = f"guid:{guid}"
        elif title:
            key = "title:" + hashlib.sha1(f"{feed_ident}\n{title}".encode()).hexdigest()[:16]
        else:  # description-only RSS item: its text is its identity
            key = "text:" + hashlib.sha1(f"{feed_ident}\n{summary}".encode()).hexdigest()[:16]
        summary_html = display_html(text_src, text_html, base) if text_src.strip() else ""
        content_html = ""
        if has_summary and has_content and entry.content.strip() != entry.summary.strip():
            content_html = display_html(entry.content, entry.content_html, base)
        reasons = _over_bounds(text_src if text_html else "", "summary")
        reasons += _over_bounds(entry.content if content_html and entry.content_html else "", "content")
        if reasons:
            label = title or link or guid or trim_text(summary, UNTITLED_CHARS)
            bounded.append(f"entry {trim_text(label, UNTITLED_CHARS)!r}: " + "; ".join(reasons))
        if not title:  # an untitled post reads as the start of its summary, else its address
            title = trim_text(summary, UNTITLED_CHARS) if summary else (link or guid or "(untitled)")
        published = _entry_date(entry, fetched)
        if published is None:
            undated += 1
        out.append(
            ParsedEntry(
                kind="post",
                key=key,
                title=title,
                url=link,
                authors=_unique(html_to_text(repair_mojibake(n)) for n in entry.authors) or feed_authors,
                summary=summary,
                published=published or fetched,
                summary_html=summary_html or None,
                date_from_fetch=published is None,
                guid=guid,
                categories=_unique(entry.categories),
                content_html=content_html or None,
            )
        )
    return out, skipped, undated, bounded


def _over_bounds(fragment: str, field: str) -> list[str]:
    """``["<field> shown as plain text: <reason>"]`` when ``fragment`` (HTML) is over the
    parsing bounds, else ``[]``."""
    why = html_over_bounds(fragment[:HTML_MAX_CHARS]) if fragment else None
    return [f"{field} shown as plain text: {why}"] if why else []


def _entry_date(entry: RawEntry, fetched: dt.datetime) -> dt.datetime | None:
    """published, else updated, else created, as UTC; ``None`` when missing or implausible
    (before :data:`MIN_YEAR` or after the year following the fetch)."""
    for when in entry.dates:
        if when is not None and MIN_YEAR <= when.year <= fetched.year + 1:
            return when
    return None


def _int_or_none(value: object) -> int | None:
    try:
        return int(str(value).strip()) if value is not None else None
    except ValueError:
        return None


def _unique(values: Iterable[object]) -> tuple[str, ...]:
    seen: dict[str, None] = {}
    for value in values:
        if isinstance(value, str):
            value = value.strip()
            if value:
                seen.setdefault(value, None)
    return tuple(seen)


def _count(n: int) -> str:
    return f"{n} entry" if n == 1 else f"{n} entries"


def _were(n: int) -> str:
    return "was" if n == 1 else "were"
