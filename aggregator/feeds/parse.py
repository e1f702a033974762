"""Feed documents (bytes) → :class:`~aggregator.types.ParsedFeed`.

:func:`parse_feed` reads RSS 0.9x/1.0/2.0 and Atom 0.3/1.0 with feedparser
(https://feedparser.readthedocs.io/) and turns each entry into a
:class:`~aggregator.types.ParsedEntry`: a *paper* for arXiv documents (rss.arxiv.org RSS/Atom
listings and export.arxiv.org API answers), a *post* for everything else. It never raises;
what went wrong is said in ``ParsedFeed.problems``.

feedparser runs with ``sanitize_html=False`` and ``resolve_relative_uris=False``: both
re-parse every HTML field (they turn the abstract text ``$1/3<s<1$`` into ``<s><1``), cost
time on large arXiv listings, and post HTML is sanitised here with nh3 (ammonia) instead,
which also resolves relative links against the entry's URL.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import html
import io
import re
import urllib.parse
from collections.abc import Iterable, Mapping
from typing import Any, Literal, cast

import feedparser
import nh3

from aggregator.feeds.arxiv import (
    ANNOUNCE_TYPES,
    is_arxiv_url,
    split_announcement,
    split_arxiv_id,
    split_author_list,
)
from aggregator.types import AnnounceType, ParsedEntry, ParsedFeed

FeedKind = Literal["arxiv", "blog"]

#: Longest plain-text ``summary`` of a post, in characters (cut at a word, then "…").
SUMMARY_MAX_CHARS = 2000
#: HTML longer than this many characters is cut before it is sanitised or reduced to text.
HTML_MAX_CHARS = 200_000
#: Dates before this year are treated as missing (placeholder dates like 1970-01-01).
MIN_YEAR = 1990
#: Entries kept from one document; a feed with more (a hostile or broken one) is cut here so that
#: one fetch cannot flood the database. arXiv's largest real feeds hold a few thousand.
MAX_ENTRIES = 20_000
#: An untitled post gets the start of its summary, this many characters at most, as its title.
UNTITLED_CHARS = 90

_UTC = dt.UTC
_ARXIV_GUID_PREFIX = "oai:arxiv.org:"
_API_ERROR_MARK = "/api/errors"
_URL_SCHEMES = {"http", "https", "mailto"}
_WS_RE = re.compile(r"\s+")
# C0/C1 control characters (but tab/newline, which whitespace collapsing handles) and the Unicode
# bidirectional embedding/override/isolate controls (U+202A-U+202E, U+2066-U+2069), which can
# make a title display reversed text ("Trojan Source", CVE-2021-42574).
_CONTROL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_TAG_RE = re.compile(r"<[A-Za-z/!?]")
# Block-level tags become a space before tags are stripped, so "<p>a</p><p>b</p>" reads "a b".
_BLOCK_TAG_RE = re.compile(
    r"<(?:br|/?(?:p|div|li|ul|ol|h[1-6]|tr|td|th|table|blockquote|pre|section|article|header|footer"
    r"|figure|figcaption|dd|dt|dl|hr|img))\b[^>]*>",
    re.IGNORECASE,
)
_TEXT_CLEANER = nh3.Cleaner(
    tags=set(),
    clean_content_tags={"script", "style", "template", "noscript", "iframe", "svg"},
    attributes={},
    link_rel=None,
)


# --------------------------------------------------------------------------- public helpers


def clean_text(text: str) -> str:
    """``text`` without control and bidi-override characters, whitespace collapsed to single spaces."""
    return " ".join(_CONTROL_RE.sub("", text).split())


def html_to_text(fragment: str) -> str:
    """Plain text of an HTML fragment: the content of script/style/template/noscript/iframe
    dropped, other tags stripped (block tags leave a space), entities unescaped, control and
    bidi-override characters removed, whitespace collapsed to single spaces. Markup that was
    itself entity-escaped (``&lt;img onerror=...&gt;``, common in titles and author names) is
    stripped too, so no tag survives into the text. Text without ``<`` or ``&`` only has its
    whitespace collapsed."""
    if "<" not in fragment and "&" not in fragment:
        return clean_text(fragment)
    for _ in range(2):  # a second pass for markup that was escaped once
        if _TAG_RE.search(fragment):
            fragment = _BLOCK_TAG_RE.sub(" \\g<0>", fragment)
            fragment = _TEXT_CLEANER.clean(fragment)
        fragment = html.unescape(fragment)
        if not _TAG_RE.search(fragment):
            break
    return clean_text(fragment)


def sanitize_html(fragment: str, base_url: str | None = None) -> str:
    """Safe HTML for display: nh3 (ammonia) defaults, i.e. an allow-list of formatting tags and
    attributes, ``<script>``/``<style>`` removed with their content, no event-handler or style
    attributes, URLs limited to http/https/mailto (so no ``javascript:``/``data:``), and
    ``rel="noopener noreferrer"`` on every link. Relative URLs are resolved against
    ``base_url`` when it is an absolute http(s) URL. Input longer than :data:`HTML_MAX_CHARS`
    is cut first."""
    fragment = fragment[:HTML_MAX_CHARS]
    if base_url and _is_http_url(base_url):
        try:
            return nh3.clean(fragment, url_schemes=_URL_SCHEMES, url_relative=("rewrite_with_base", base_url))
        except (ValueError, TypeError):
            pass
    return nh3.clean(fragment, url_schemes=_URL_SCHEMES)


def normalise_link(url: str) -> str:
    """The identity form of a post URL: scheme and host lower-cased, fragment dropped,
    ``utm_*`` query parameters dropped, a trailing ``/`` dropped from the path (an empty path
    becomes ``/``). Other parts, including the order and encoding of the query, are kept.
    A string that does not split as a URL is returned stripped."""
    url = url.strip()
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return url
    path = parts.path or "/"
    if len(path) > 1 and path.endswith("/"):
        path = path.rstrip("/") or "/"
    query = parts.query
    if query and "utm_" in query.lower():
        query = "&".join(p for p in query.split("&") if not p.lower().startswith("utm_"))
    return urllib.parse.urlunsplit((parts.scheme.lower(), parts.netloc.lower(), path, query, ""))


# --------------------------------------------------------------------------- parse_feed


def parse_feed(
    body: bytes,
    *,
    fetched_at: dt.datetime,
    url: str = "",
    kind: FeedKind | None = None,
    content_type: str | None = None,
) -> ParsedFeed:
    """Parse one feed document.

    ``body`` is the raw (decompressed) response body; ``fetched_at`` is when it was fetched
    (a naive value is taken as UTC) and stands in for entries without a usable date;
    ``url`` is the address it came from (resolves relative links); ``content_type`` is the
    HTTP ``Content-Type`` header, whose charset feedparser weighs against the XML declaration.
    ``kind`` forces ``"arxiv"`` or ``"blog"``; ``None`` detects arXiv from ``oai:arXiv.org:``
    guids, ``<arxiv:announce_type>``, or a feed link/id/URL on arxiv.org.

    Returns a :class:`ParsedFeed` whose entries are in document order, one per key (the
    first wins). Never raises: malformed or truncated XML gives the entries recovered
    before the error plus a problem line, and bytes that are no feed at all give zero
    entries and a problem line. An arXiv API error answer (an entry whose id is
    ``…/api/errors#…``) gives no entries and ``api_error`` set to its message.
    """
    fetched = _as_utc(fetched_at)
    try:
        return _parse(body, fetched, url, kind, content_type)
    except Exception as err:  # a parser bug must not take the fetch loop down
        return ParsedFeed(
            kind=kind or "blog",
            title="",
            link=url or None,
            entries=(),
            problems=(f"could not parse the document: {type(err).__name__}: {err}",),
        )


def _parse(
    body: bytes, fetched: dt.datetime, url: str, kind: FeedKind | None, content_type: str | None
) -> ParsedFeed:
    if not body or not body.strip():
        return ParsedFeed(
            kind=kind or "blog", title="", link=url or None, entries=(), problems=("empty document",)
        )
    headers: dict[str, str] = {}
    if content_type:
        headers["content-type"] = content_type
    if url and _is_http_url(url):
        headers["content-location"] = url
    # No warnings.catch_warnings() here: it swaps process-wide state and parsing runs in
    # several threads; the fields are read so as not to trigger feedparser's key-alias warnings.
    doc = feedparser.parse(
        io.BytesIO(body),  # a stream: bytes would first be tried as a local file name
        response_headers=headers or None,
        sanitize_html=False,
        resolve_relative_uris=False,
    )
    feed: dict[str, Any] = doc.get("feed") or {}
    raw_entries: list[dict[str, Any]] = list(doc.get("entries") or [])
    problems: list[str] = []
    if len(raw_entries) > MAX_ENTRIES:
        problems.append(f"document has {len(raw_entries)} entries; kept the first {MAX_ENTRIES}")
        del raw_entries[MAX_ENTRIES:]
    if doc.get("bozo"):
        problem = _bozo_problem(doc.get("bozo_exception"), len(raw_entries))
        if problem:
            problems.append(problem)
    if not problems and not raw_entries and not doc.get("version") and not feed:
        problems.append("not an RSS or Atom feed (no feed elements found)")

    detected: FeedKind = kind or _detect_kind(feed, raw_entries, url)
    title = _feed_title(feed)
    link = dict.get(feed, "link") or None
    if detected == "arxiv" and title.lower().startswith("feed error for query"):
        message = clean_text(str(dict.get(feed, "subtitle") or ""))
        problems.append(f"arXiv feed error: {message or title}")

    total = _int_or_none(dict.get(feed, "opensearch_totalresults"))
    start = _int_or_none(dict.get(feed, "opensearch_startindex"))

    if detected == "arxiv":
        api_error = _api_error(raw_entries)
        if api_error is not None:
            problems.append(f"arXiv API error: {api_error}")
            return ParsedFeed(
                kind="arxiv",
                title=title,
                link=link,
                entries=(),
                problems=tuple(problems),
                total_results=total,
                start_index=start,
                api_error=api_error,
            )
        built, skipped, no_id, undated = _build_papers(raw_entries, fetched, from_api=total is not None)
        if no_id:
            problems.append(f"{_count(no_id)} had no arXiv id and {_were(no_id)} skipped")
    else:
        base = link if link and _is_http_url(link) else (url if _is_http_url(url) else None)
        feed_authors = _feed_authors(feed) if str(doc.get("version", "")).startswith("atom") else ()
        built, skipped, undated = _build_posts(raw_entries, fetched, base, feed_authors, url or link or "")
    if skipped:
        problems.append(f"{_count(skipped)} had no title, link or guid and {_were(skipped)} skipped")
    if undated:
        problems.append(f"{_count(undated)} had no usable date; used the fetch time")

    entries: list[ParsedEntry] = []
    seen: set[str] = set()
    for entry in built:
        if entry.key not in seen:
            seen.add(entry.key)
            entries.append(entry)
    if len(entries) < len(built):
        dupes = len(built) - len(entries)
        problems.append(f"{_count(dupes)} repeated a key already in the document; kept the first")
    return ParsedFeed(
        kind=detected,
        title=title,
        link=link,
        entries=tuple(entries),
        problems=tuple(problems),
        total_results=total,
        start_index=start,
    )


# --------------------------------------------------------------------------- arXiv


def _detect_kind(feed: dict[str, Any], entries: list[dict[str, Any]], url: str) -> FeedKind:
    for entry in entries:
        guid = dict.get(entry, "id")
        if (isinstance(guid, str) and guid[:14].lower() == _ARXIV_GUID_PREFIX) or dict.get(
            entry, "arxiv_announce_type"
        ):
            return "arxiv"
    candidates = [dict.get(feed, "link"), dict.get(feed, "id"), url]
    candidates += [lk.get("href") for lk in dict.get(feed, "links") or () if isinstance(lk, Mapping)]
    if any(isinstance(c, str) and c and is_arxiv_url(c) for c in candidates):
        return "arxiv"
    return "blog"


def _api_error(entries: list[dict[str, Any]]) -> str | None:
    for entry in entries:
        guid = dict.get(entry, "id") or ""
        if isinstance(guid, str) and _API_ERROR_MARK in guid and is_arxiv_url(guid):
            message = clean_text(str(dict.get(entry, "summary") or ""))
            return message or guid.rpartition("#")[2] or "unknown error"
    return None


def _build_papers(
    raw_entries: list[dict[str, Any]], fetched: dt.datetime, from_api: bool = False
) -> tuple[list[ParsedEntry], int, int, int]:
    out: list[ParsedEntry] = []
    skipped = no_id = undated = 0
    for entry in raw_entries:
        guid = dict.get(entry, "id") or None
        link = dict.get(entry, "link") or None
        title = clean_text(str(dict.get(entry, "title") or ""))
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
        raw_summary = str(dict.get(entry, "summary") or "")
        listing = bool(dict.get(entry, "arxiv_announce_type")) or (
            isinstance(guid, str) and guid[:14].lower() == _ARXIV_GUID_PREFIX
        )
        announce: AnnounceType | None = None
        if listing:
            abstract, announce = split_announcement(raw_summary)
            explicit = str(dict.get(entry, "arxiv_announce_type") or "").strip().lower()
            if explicit in ANNOUNCE_TYPES:
                announce = cast(AnnounceType, explicit)
            if version is None:
                prefixed = split_arxiv_id(raw_summary[:64])
                if prefixed and prefixed[0] == arxiv_id:
                    version = prefixed[1]
        else:
            abstract = raw_summary
        categories = _unique(t.get("term") for t in dict.get(entry, "tags") or () if isinstance(t, Mapping))
        primary_raw = dict.get(entry, "arxiv_primary_category")
        primary = primary_raw.get("term") if isinstance(primary_raw, Mapping) else None
        primary = primary.strip() if isinstance(primary, str) and primary.strip() else None
        if primary is None and categories:
            primary = categories[0]
        published = _entry_date(entry, fetched)
        if published is None:
            undated += 1
        comment = clean_text(str(dict.get(entry, "arxiv_comment") or "")) or None
        journal_ref = clean_text(str(dict.get(entry, "arxiv_journal_ref") or "")) or None
        out.append(
            ParsedEntry(
                kind="paper",
                key=f"arxiv:{arxiv_id}",
                title=title,
                url=f"https://arxiv.org/abs/{arxiv_id}",
                authors=_paper_authors(entry, listing),
                summary=clean_text(abstract),
                published=published or fetched,
                date_from_fetch=published is None,
                guid=guid if isinstance(guid, str) else None,
                categories=categories,
                primary_category=primary,
                arxiv_id=arxiv_id,
                version=version,
                announce_type=announce,
                comment=comment,
                journal_ref=journal_ref,
                from_api=from_api,
            )
        )
    return out, skipped, no_id, undated


def _paper_authors(entry: dict[str, Any], listing: bool) -> tuple[str, ...]:
    names = [
        str(a.get("name") or "").strip() for a in dict.get(entry, "authors") or () if isinstance(a, Mapping)
    ]
    names = [n for n in names if n]
    if not names:
        single = str(dict.get(entry, "author") or "").strip()
        names = [single] if single else []
    if listing and len(names) == 1:
        # rss.arxiv.org puts all authors in ONE dc:creator: "A, B (Affiliation, City), C"
        return tuple(split_author_list(names[0]))
    return tuple(clean_text(n) for n in names)


# --------------------------------------------------------------------------- posts


def _build_posts(
    raw_entries: list[dict[str, Any]],
    fetched: dt.datetime,
    base: str | None,
    feed_authors: tuple[str, ...],
    feed_ident: str,
) -> tuple[list[ParsedEntry], int, int]:
    out: list[ParsedEntry] = []
    skipped = undated = 0
    for entry in raw_entries:
        raw_title = str(dict.get(entry, "title") or "")
        title = html_to_text(raw_title) if raw_title else ""
        guid = dict.get(entry, "id")
        guid = guid.strip() if isinstance(guid, str) and guid.strip() else None
        link = _absolute_link(dict.get(entry, "link"), base)
        if not (title or link or guid):
            skipped += 1
            continue
        if link:
            key = normalise_link(link)
        elif guid:
            key = f"guid:{guid}"
        else:
            digest = hashlib.sha1(f"{feed_ident}\n{title}".encode()).hexdigest()[:16]
            key = f"title:{digest}"

        summary_src, summary_type = _field(entry, "summary")
        content_src, content_type = _first_content(entry)
        text_src = summary_src or content_src
        summary = _trim(html_to_text(text_src[:HTML_MAX_CHARS])) if text_src else ""
        rich, rich_type = (
            (content_src, content_type)
            if len(content_src) > len(summary_src)
            else (summary_src, summary_type)
        )
        summary_html = _display_html(rich, rich_type, link or base) if rich.strip() else None
        if not title:  # an untitled post reads as the start of its summary, else its address
            title = trim_text(summary, UNTITLED_CHARS) if summary else (link or guid or "(untitled)")

        authors = _post_authors(entry) or feed_authors
        published = _entry_date(entry, fetched)
        if published is None:
            undated += 1
        out.append(
            ParsedEntry(
                kind="post",
                key=key,
                title=title,
                url=link,
                authors=authors,
                summary=summary,
                published=published or fetched,
                summary_html=summary_html or None,
                date_from_fetch=published is None,
                guid=guid,
                categories=_unique(
                    t.get("term") or t.get("label")
                    for t in dict.get(entry, "tags") or ()
                    if isinstance(t, Mapping)
                ),
            )
        )
    return out, skipped, undated


def _field(entry: dict[str, Any], name: str) -> tuple[str, str]:
    value = dict.get(entry, name)
    if not isinstance(value, str):
        return "", ""
    detail = dict.get(entry, f"{name}_detail")
    kind = detail.get("type", "") if isinstance(detail, Mapping) else ""
    return value, str(kind or "")


def _first_content(entry: dict[str, Any]) -> tuple[str, str]:
    best, best_type = "", ""
    for item in dict.get(entry, "content") or ():
        if isinstance(item, Mapping):
            value = item.get("value")
            if isinstance(value, str) and len(value) > len(best):
                best, best_type = value, str(item.get("type") or "")
    return best, best_type


def _display_html(source: str, source_type: str, base: str | None) -> str:
    if "html" in source_type or _TAG_RE.search(source[:HTML_MAX_CHARS]):
        return sanitize_html(source, base).strip()
    return html.escape(clean_text(source), quote=False)


def _post_authors(entry: dict[str, Any]) -> tuple[str, ...]:
    names: list[str] = []
    for author in dict.get(entry, "authors") or ():
        if isinstance(author, Mapping):
            name = author.get("name") or author.get("email")
            if isinstance(name, str) and name.strip():
                names.append(name)
    if not names:
        single = dict.get(entry, "author")
        if isinstance(single, str) and single.strip():
            names.append(single)
    return _unique(html_to_text(n) for n in names)


def _feed_authors(feed: dict[str, Any]) -> tuple[str, ...]:
    """Atom (RFC 4287 §4.2.1): an entry without atom:author inherits the feed's authors."""
    return _post_authors(feed)


def _absolute_link(value: object, base: str | None) -> str | None:
    if not isinstance(value, str) or not value.strip():
        return None
    link = value.strip()
    if _is_http_url(link):
        return link
    if base:
        try:
            joined = urllib.parse.urljoin(base, link)
        except ValueError:
            return None
        if _is_http_url(joined):
            return joined
    return None


def _trim(text: str) -> str:
    return trim_text(text, SUMMARY_MAX_CHARS)


def trim_text(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters at a word boundary (when one lies in the
    second half), trailing punctuation dropped, and "…" appended; unchanged when it fits."""
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space > limit // 2:
        cut = cut[:space]
    return cut.rstrip(" ,;:.-–—(") + "…"


# --------------------------------------------------------------------------- shared helpers


def _entry_date(entry: dict[str, Any], fetched: dt.datetime) -> dt.datetime | None:
    """published, else updated, as UTC; None when missing, unparseable or implausible
    (before :data:`MIN_YEAR` or after the year following the fetch)."""
    for key in ("published_parsed", "updated_parsed", "created_parsed"):
        value = dict.get(entry, key)
        if isinstance(value, tuple) and len(value) >= 6:
            try:
                year, month, day, hour, minute, second = (int(x) for x in value[:6])
                when = dt.datetime(year, month, day, hour, minute, min(second, 59), tzinfo=_UTC)
            except (TypeError, ValueError, OverflowError):
                continue
            if MIN_YEAR <= when.year <= fetched.year + 1:
                return when
    return None


def _feed_title(feed: dict[str, Any]) -> str:
    title = dict.get(feed, "title")
    if not isinstance(title, str):
        return ""
    return html_to_text(title)


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


def _as_utc(when: dt.datetime) -> dt.datetime:
    if when.tzinfo is None:
        return when.replace(tzinfo=_UTC)
    return when.astimezone(_UTC)


def _is_http_url(value: str) -> bool:
    return value[:7].lower() == "http://" or value[:8].lower() == "https://"


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
