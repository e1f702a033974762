"""Bounds on the HTML of one feed field, checked in linear time before an HTML parser sees it.

html5ever (the parser inside nh3/ammonia) walks its stack of open elements for most tags, so an
entry of 40,000 nested ``<div>`` (200 kB) costs about 5–7 CPU-seconds to sanitise or to reduce
to text, and 29 s for 33,000 unclosed ``<math>`` through a naive regex (security issue 14,
finding 2). :func:`html_shape` measures a fragment with one forward pass of a tokenizer (no
tree, each character looked at a bounded number of times) and :func:`html_over_bounds` says
in words why a fragment must not be parsed: nested deeper than :data:`MAX_DEPTH` or with more
than :data:`MAX_ELEMENTS` elements. Such a field is shown as plain text, reduced by
:func:`strip_tags_linear`, and the reason is recorded with the feed's parse problems
(:mod:`aggregator.feeds.build`).

The depth is an upper estimate of the depth html5ever reaches: an end tag closes the nearest
open element of its name and everything opened after it (an end tag with no open element of its
name is ignored, as in HTML); the elements whose end tag is optional and that cannot nest in
themselves (``p``, ``li``, ``td``…) are not counted; a formatting element (``b``, ``a``,
``font``…) closed by another element's end tag still counts, because HTML re-opens it at the
next text ("reconstruct the active formatting elements", WHATWG HTML §13.2.4.3).
"""

from __future__ import annotations

import functools
import html
import re
from dataclasses import dataclass

#: Deepest nesting of HTML elements parsed as HTML (browsers cope with far more; real posts in
#: ``/work/shared/data`` reach 20). Deeper fields are shown as plain text.
MAX_DEPTH = 256
#: Most elements in one HTML field parsed as HTML (a 20,000-character post has ~1,000).
MAX_ELEMENTS = 20_000

_TAG = re.compile(r"<(?:(/?)([A-Za-z][^\s/<>]*)([^<>]*)(>?)|!--|[!?])")
_VOID = frozenset(
    ("area", "base", "basefont", "bgsound", "br", "col", "embed", "frame", "hr", "img", "input",
     "keygen", "link", "meta", "param", "source", "track", "wbr")
)  # fmt: skip
# End tag optional and the element cannot contain itself: never deeper by repetition.
_NOT_NESTING = frozenset(
    ("p", "li", "dt", "dd", "option", "optgroup", "tr", "td", "th", "thead", "tbody", "tfoot",
     "colgroup", "caption", "rb", "rt", "rp", "rtc")
)  # fmt: skip
_FORMATTING = frozenset(
    ("a", "b", "big", "code", "em", "font", "i", "nobr", "s", "small", "strike", "strong", "tt", "u")
)  # fmt: skip
_RAW_TEXT = frozenset(
    ("script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes", "noscript")
)  # fmt: skip
_END_RE_CACHE: dict[str, re.Pattern[str]] = {}
# A tag, a comment or a declaration for the linear tag stripper: "<" then no "<" or ">" up to ">".
_STRIP_TAG = re.compile(r"<[A-Za-z/!?][^<>]*>?")
_STRIP_RAW = re.compile(
    r"<(script|style|template|noscript|iframe|svg|textarea|title)\b[^<>]*>?", re.IGNORECASE
)
_BLOCK = re.compile(
    r"<(?:br|/?(?:p|div|li|ul|ol|h[1-6]|tr|td|th|table|blockquote|pre|section|article|header|footer"
    r"|figure|figcaption|dd|dt|dl|hr|img))\b[^<>]*>?",
    re.IGNORECASE,
)


@dataclass(frozen=True, slots=True)
class HtmlShape:
    """What :func:`html_shape` measured: ``depth`` (upper estimate of the deepest nesting of
    elements) and ``elements`` (start tags)."""

    depth: int
    elements: int


def _end_re(name: str) -> re.Pattern[str]:
    pattern = _END_RE_CACHE.get(name)
    if pattern is None:
        pattern = _END_RE_CACHE[name] = re.compile(rf"</{re.escape(name)}[\s/>]", re.IGNORECASE)
    return pattern


@functools.lru_cache(maxsize=16)
def html_shape(fragment: str) -> HtmlShape:
    """Depth and element count of ``fragment`` (see the module doc), in one pass: O(len).

    Long because it is one tokenizer loop with a branch per kind of token."""
    depth = max_depth = elements = 0
    stack: list[str] = []
    open_count: dict[str, int] = {}
    reopen: dict[str, int] = {}  # formatting elements closed implicitly, re-opened by HTML
    reopened = 0
    pos, end = 0, len(fragment)
    search = _TAG.search
    while pos < end:
        m = search(fragment, pos)
        if m is None:
            break
        pos = m.end()
        name = m.group(2)
        if name is None:
            if m.group(0) == "<!--":
                close = fragment.find("-->", pos)
                pos = end if close < 0 else close + 3
            else:
                close = fragment.find(">", pos)
                pos = end if close < 0 else close + 1
            continue
        name = name.lower()
        if m.group(1):  # an end tag
            if open_count.get(name):
                while stack:
                    top = stack.pop()
                    open_count[top] -= 1
                    if top == name:
                        break
                    if top in _FORMATTING:
                        reopen[top] = reopen.get(top, 0) + 1
                        reopened += 1
            elif reopen.get(name):
                reopen[name] -= 1
                reopened -= 1
            depth = len(stack) + reopened
            continue
        elements += 1
        if name in _VOID or name in _NOT_NESTING:
            continue
        if m.group(3).endswith("/") and (stack and (open_count.get("svg") or open_count.get("math"))):
            continue  # self-closed inside SVG/MathML (in HTML, "/>" closes nothing)
        if name in _RAW_TEXT:  # its content is text up to its end tag
            close_m = _end_re(name).search(fragment, pos)
            pos = end if close_m is None else close_m.start()
        stack.append(name)
        open_count[name] = open_count.get(name, 0) + 1
        depth = len(stack) + reopened
        if depth > max_depth:
            max_depth = depth
    return HtmlShape(max_depth, elements)


def html_over_bounds(fragment: str) -> str | None:
    """Why ``fragment`` must not be parsed as HTML, in words (``"HTML nested deeper than 256
    levels"``, ``"HTML with more than 20000 elements"``), or ``None`` when it is within
    :data:`MAX_DEPTH` and :data:`MAX_ELEMENTS`. O(len(fragment)); a fragment with at most
    :data:`MAX_DEPTH` ``<`` characters is not scanned."""
    if fragment.count("<") <= MAX_DEPTH:
        return None
    shape = html_shape(fragment)
    if shape.depth > MAX_DEPTH:
        return f"HTML nested deeper than {MAX_DEPTH} levels"
    if shape.elements > MAX_ELEMENTS:
        return f"HTML with more than {MAX_ELEMENTS} elements"
    return None


def strip_tags_linear(fragment: str) -> str:
    """Text of ``fragment`` without an HTML parser, in linear time: the content of
    script/style/template/noscript/iframe/svg/textarea/title dropped up to its end tag (to the
    end when unclosed), block tags read as a space, other tags and comments removed, entities
    unescaped once. Whitespace is not collapsed (the caller cleans the text)."""
    parts: list[str] = []
    pos, end = 0, len(fragment)
    while pos < end:
        m = _STRIP_RAW.search(fragment, pos)
        if m is None:
            parts.append(fragment[pos:])
            break
        parts.append(fragment[pos : m.start()])
        close_m = _end_re(m.group(1).lower()).search(fragment, m.end())
        if close_m is None:
            break
        closing = fragment.find(">", close_m.end() - 1)
        pos = end if closing < 0 else closing + 1
        parts.append(" ")
    text = _BLOCK.sub(" ", "".join(parts))
    return html.unescape(_STRIP_TAG.sub("", text))
