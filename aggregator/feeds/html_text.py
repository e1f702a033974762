"""Text and HTML helpers shared by the feed parsers: plain text of a field, display HTML, links.

A field of a feed is either *text* or *HTML*, and only HTML is markup (RSS 2.0 spec: ``title``
is text, ``description`` is entity-encoded HTML; RFC 4287 §3.1: Atom ``type="text"`` is text,
``"html"`` is escaped HTML, ``"xhtml"`` is inline XHTML). So a paper title ``a<b`` stays
``a<b``, and HTML is unescaped exactly once (by the HTML parser): an abstract that *shows* the
string ``<!DOCTYPE`` keeps it. RSS titles that are nominally text but carry HTML (a very old
habit) are recognised with feedparser's own conservative test, :func:`looks_like_html`.
"""

from __future__ import annotations

import html
import re
import urllib.parse
from collections.abc import Callable

import nh3
from feedparser.mixin import _FeedParserMixin

from aggregator.feeds.html_bounds import html_over_bounds, strip_tags_linear

#: HTML longer than this many characters is cut before it is sanitised or reduced to text.
HTML_MAX_CHARS = 200_000

_URL_SCHEMES = {"http", "https", "mailto"}
# C0/C1 control characters (but tab/newline, which whitespace collapsing handles) and the Unicode
# bidirectional embedding/override/isolate controls (U+202A-U+202E, U+2066-U+2069), which can
# make a title display reversed text ("Trojan Source", CVE-2021-42574).
_CONTROL_RE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]")
_TAG_RE = re.compile(r"<[A-Za-z/!?]")
# Block-level tags become a space before tags are stripped, so "<p>a</p><p>b</p>" reads "a b".
_BLOCK_TAG_RE = re.compile(
    r"<(?:br|/?(?:p|div|li|ul|ol|h[1-6]|tr|td|th|table|blockquote|pre|section|article|header|footer"
    r"|figure|figcaption|dd|dt|dl|hr|img))\b[^<>]*>",
    re.IGNORECASE,
)
# MathML: html5ever puts <math> in a foreign namespace and ammonia drops it *with its text*, so a
# formula is turned into its text first (TeX/other annotations dropped: they repeat the formula).
# Each element is found with an open and a close pattern searched forward once (linear: a
# non-greedy ``<math>.*?</math>`` rescans to the end for every unclosed ``<math>``).
_MATH_OPEN_RE = re.compile(r"<(?:[\w-]+:)?math\b[^<>]*>", re.IGNORECASE)
_MATH_CLOSE_RE = re.compile(r"</(?:[\w-]+:)?math\s*>", re.IGNORECASE)
_ANNOTATION_OPEN_RE = re.compile(r"<(?:[\w-]+:)?annotation(?:-xml)?\b[^<>]*>", re.IGNORECASE)
_ANNOTATION_CLOSE_RE = re.compile(r"</(?:[\w-]+:)?annotation(?:-xml)?\s*>", re.IGNORECASE)
_ANY_TAG_RE = re.compile(r"<[^<>]*>")
_SUP_RE = re.compile(
    r"<(?:[\w-]+:)?msup\b[^<>]*>\s*(<(?:[\w-]+:)?(mi|mn|mo)\b[^<>]*>[^<]*</(?:[\w-]+:)?\2\s*>)\s*"
    r"<(?:[\w-]+:)?(mi|mn|mo)\b[^<>]*>([^<]*)</(?:[\w-]+:)?\3\s*>\s*</(?:[\w-]+:)?msup\s*>",
    re.IGNORECASE,
)
_TEXT_CLEANER = nh3.Cleaner(
    tags=set(),
    clean_content_tags={"script", "style", "template", "noscript", "iframe", "svg"},
    attributes={},
    link_rel=None,
)

looks_like_html = _FeedParserMixin.looks_like_html


def clean_text(text: str) -> str:
    """``text`` without control and bidi-override characters, whitespace collapsed to single spaces
    (the separators U+001C-U+001F count as whitespace)."""
    stripped = text.strip()
    if "  " not in stripped and stripped.isprintable():  # the common case, without splitting:
        return stripped  # no whitespace but single spaces (isprintable is False for any other)
    joined = " ".join(text.split())
    if joined.isprintable():  # in C: no control or format character left
        return joined
    return " ".join(_CONTROL_RE.sub("", joined).split())


def _replace_elements(
    fragment: str, open_re: re.Pattern[str], close_re: re.Pattern[str], inner: Callable[[str], str]
) -> str:
    """``fragment`` with each element (open tag to the first close tag after it) replaced by
    ``inner(content)``; an open tag without a close tag, and what follows, stay as they are.
    One forward pass: O(len(fragment))."""
    out: list[str] = []
    pos = 0
    while (opened := open_re.search(fragment, pos)) is not None:
        closed = close_re.search(fragment, opened.end())
        if closed is None:
            break
        out.append(fragment[pos : opened.start()])
        out.append(inner(fragment[opened.end() : closed.start()]))
        pos = closed.end()
    if not out:
        return fragment
    out.append(fragment[pos:])
    return "".join(out)


def _math_to_text(fragment: str) -> str:
    """Each ``<math>…</math>`` replaced by its text (a simple ``<msup>`` as ``<sup>``)."""

    def one(content: str) -> str:
        content = _replace_elements(content, _ANNOTATION_OPEN_RE, _ANNOTATION_CLOSE_RE, lambda _: "")
        content = _SUP_RE.sub(lambda m: f"{_ANY_TAG_RE.sub('', m.group(1))}<sup>{m.group(4)}</sup>", content)
        content = content.replace("<sup>", "\x00").replace("</sup>", "\x01")
        text = _ANY_TAG_RE.sub("", content)
        return text.replace("\x00", "<sup>").replace("\x01", "</sup>")

    return _replace_elements(fragment, _MATH_OPEN_RE, _MATH_CLOSE_RE, one)


def html_to_text(fragment: str) -> str:
    """Plain text of an HTML fragment: the content of script/style/template/noscript/iframe/svg
    dropped, MathML kept as its text, other tags stripped (block tags leave a space), entities
    unescaped once, control and bidi-override characters removed, whitespace collapsed to single
    spaces. Markup that was itself entity-escaped reads as text (``&lt;b&gt;`` → ``<b>``):
    the text is shown escaped wherever it is displayed. Input is cut at :data:`HTML_MAX_CHARS`.
    HTML over the bounds of :func:`~aggregator.feeds.html_bounds.html_over_bounds` (nesting
    depth, element count) is reduced by the linear :func:`strip_tags_linear` instead of an
    HTML parser."""
    if "<" not in fragment and "&" not in fragment:
        return clean_text(fragment)
    fragment = fragment[:HTML_MAX_CHARS]
    if html_over_bounds(fragment):
        return clean_text(strip_tags_linear(fragment))
    if _TAG_RE.search(fragment):
        if "math" in fragment or "MATH" in fragment:
            fragment = _math_to_text(fragment).replace("<sup>", "").replace("</sup>", "")
        fragment = _BLOCK_TAG_RE.sub(" \\g<0>", fragment)
        fragment = _TEXT_CLEANER.clean(fragment)  # ammonia escapes the text it keeps
    return clean_text(html.unescape(fragment))


_IMG_RE = re.compile(r"<img\s[^<>]*\bsrc\s*=", re.IGNORECASE)


def text_is_html(value: str) -> bool:
    """Whether a summary or content *declared as text* is HTML after all: feedparser's
    :func:`looks_like_html` (a closing tag or an entity, and only tags of its HTML allow-list),
    or an ``<img src=…>`` tag (publishers that escape a teaser image into a ``type="text"``
    Atom summary). Not used for titles, which stay text."""
    return "<" in value and (looks_like_html(value) or bool(_IMG_RE.search(value)))


def field_text(value: str, is_html: bool) -> str:
    """Plain text of one feed field: :func:`html_to_text` when it is HTML, else the text as it
    is (control characters removed, whitespace collapsed)."""
    return html_to_text(value) if is_html else clean_text(value)


def sanitize_html(fragment: str, base_url: str | None = None) -> str:
    """Safe HTML for display: nh3 (ammonia) defaults, i.e. an allow-list of formatting tags and
    attributes, ``<script>``/``<style>`` removed with their content, no event-handler or style
    attributes, URLs limited to http/https/mailto (so no ``javascript:``/``data:``), and
    ``rel="noopener noreferrer"`` on every link. MathML becomes its text. Relative URLs are
    resolved against ``base_url`` when it is an absolute http(s) URL. Input longer than
    :data:`HTML_MAX_CHARS` is cut first. HTML over the bounds of
    :func:`~aggregator.feeds.html_bounds.html_over_bounds` becomes its plain text, escaped (no
    HTML parser sees it; :mod:`aggregator.feeds.build` records why)."""
    fragment = fragment[:HTML_MAX_CHARS]
    if html_over_bounds(fragment):
        return html.escape(clean_text(strip_tags_linear(fragment)), quote=False)
    if "math" in fragment or "MATH" in fragment:
        fragment = _math_to_text(fragment)
    if base_url and is_http_url(base_url):
        try:
            return nh3.clean(fragment, url_schemes=_URL_SCHEMES, url_relative=("rewrite_with_base", base_url))
        except (ValueError, TypeError):
            pass
    return nh3.clean(fragment, url_schemes=_URL_SCHEMES)


def display_html(value: str, is_html: bool, base_url: str | None) -> str:
    """HTML to display for one field: sanitised HTML (:func:`sanitize_html`) when the field is
    HTML, else the text escaped once (so ``Tom & Jerry`` shows as typed)."""
    if is_html:
        return sanitize_html(value, base_url).strip()
    return html.escape(clean_text(value[:HTML_MAX_CHARS]), quote=False)


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


def repair_mojibake(text: str) -> str:
    """``text`` with UTF-8 that was decoded as ISO-8859-1 re-decoded (``GÃ¶tz`` → ``Götz``), as
    feedparser does for most fields (but not Atom author names); unchanged when that fails."""
    if text.isascii():
        return text
    try:
        return text.encode("iso-8859-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return text


def is_http_url(value: str) -> bool:
    """True when ``value`` starts with ``http://`` or ``https://`` (any case)."""
    return value[:7].lower() == "http://" or value[:8].lower() == "https://"


def join_url(base: str | None, ref: str) -> str | None:
    """``ref`` resolved against ``base`` (RFC 3986), or ``None`` when the result is not an
    absolute http(s) URL or does not split."""
    ref = ref.strip()
    if not ref:
        return None
    if not base:
        return ref if is_http_url(ref) else None
    try:
        joined = urllib.parse.urljoin(base, ref)
    except ValueError:
        return None
    return joined if is_http_url(joined) else None
