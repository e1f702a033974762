"""arXiv identifiers, announcement prefixes and API query URLs (pure functions, no I/O).

Identifier syntax follows arXiv's "Understanding the arXiv identifier"
(https://info.arxiv.org/help/arxiv_identifier.html): new-style ``YYMM.NNNN`` (2007-04 to 2014-12)
and ``YYMM.NNNNN`` (2015-01 on), old-style ``archive[.SC]/YYMMNNN`` (before 2007-04), each
optionally followed by ``vN``. The query URL follows the arXiv API User's Manual
(https://info.arxiv.org/help/api/user-manual.html).
"""

from __future__ import annotations

import re
import urllib.parse
from collections.abc import Sequence
from typing import Final, cast

from aggregator.types import AnnounceType

#: Seconds to wait between two requests to an arXiv host. Source: arXiv API Terms of Use
#: (https://info.arxiv.org/help/api/tou.html): "make no more than one request every three
#: seconds, and limit requests to a single connection at a time".
ARXIV_REQUEST_INTERVAL: Final = 3.0

#: The API returns at most this many results per request (arXiv API User's Manual, "max_results").
ARXIV_MAX_RESULTS: Final = 2000

ANNOUNCE_TYPES: Final[frozenset[str]] = frozenset({"new", "cross", "replace", "replace-cross"})


_MONTH = r"(?:0[1-9]|1[0-2])"
_ID_RE = re.compile(
    r"(?<![\w.])(?:"
    # new style: 2606.13733, 0704.0001
    rf"(?P<new>\d\d{_MONTH}\.\d{{4,5}})"
    # old style: hep-th/0601001, math.GT/0309136
    rf"|(?P<old>[a-z]+(?:-[a-z]+)?(?:\.[A-Za-z]{{2}})?/\d\d{_MONTH}\d{{3}})"
    r")(?:v(?P<version>\d+))?(?![\d])",
)
_ANNOUNCE_RE = re.compile(
    r"\A\s*arXiv:\S+\s+Announce\s+Type:\s*(?P<type>[\w-]+)\s*(?:Abstract:[ \t]*)?",
    re.IGNORECASE,
)
_CATEGORY_RE = re.compile(r"\A[A-Za-z-]+(?:\.[A-Za-z-]+)?\Z")
_SORT_BY = frozenset({"relevance", "lastUpdatedDate", "submittedDate"})
_SORT_ORDER = frozenset({"ascending", "descending"})


def split_arxiv_id(text: str) -> tuple[str, int | None] | None:
    """Find the arXiv identifier in ``text`` and split off its version.

    ``text`` may be an OAI guid (``oai:arXiv.org:2606.13733v1``), an API entry id or abs/pdf link
    (``http://arxiv.org/abs/2606.13733v2``, ``https://arxiv.org/pdf/hep-th/0601001v1``), an
    ``arXiv:2606.13733`` reference or a bare id. Returns ``(id without version, version)``, e.g.
    ``("2606.13733", 2)`` or ``("hep-th/0601001", None)``; ``None`` when no well-formed id (month
    01-12) is found. Never raises.
    """
    if not isinstance(text, str):
        return None
    match = _ID_RE.search(text)
    if match is None:
        return None
    ident = match.group("new") or match.group("old")
    version = match.group("version")
    return ident, int(version) if version else None


def split_announcement(description: str) -> tuple[str, AnnounceType | None]:
    """Strip the ``arXiv:2606.13733v1 Announce Type: new \\nAbstract: `` prefix of an arXiv
    RSS/Atom listing description.

    Returns ``(abstract, announce_type)``; ``announce_type`` is one of ``"new"``, ``"cross"``,
    ``"replace"``, ``"replace-cross"``, or ``None`` when there is no prefix or the type is unknown
    (the prefix is still removed then). The abstract is stripped at both ends but otherwise
    unchanged. Format: rss.arxiv.org since 2024 (https://info.arxiv.org/help/rss.html).
    """
    match = _ANNOUNCE_RE.match(description)
    if match is None:
        return description.strip(), None
    kind = match.group("type").lower()
    abstract = description[match.end() :].strip()
    return abstract, cast(AnnounceType, kind) if kind in ANNOUNCE_TYPES else None


def api_query_url(
    base: str,
    *,
    categories: Sequence[str] = (),
    id_list: Sequence[str] = (),
    start: int = 0,
    max_results: int = 100,
    sort_by: str = "submittedDate",
    sort_order: str = "descending",
) -> str:
    """Build an arXiv API query URL, e.g. ``https://export.arxiv.org/api/query``.

    ``categories`` become ``search_query=cat:cs.LG OR cat:cs.CV``; ``id_list`` becomes
    ``id_list=2606.13733,hep-th/0601001`` (versions allowed). ``start`` is the 0-based index of the
    first result, ``max_results`` the page size. Per the arXiv API User's Manual
    (https://info.arxiv.org/help/api/user-manual.html) a page holds at most 2000 results, and the
    Terms of Use (https://info.arxiv.org/help/api/tou.html) allow one request every 3 seconds
    (:data:`ARXIV_REQUEST_INTERVAL`); pacing is the caller's job.

    Raises :class:`ValueError` when neither categories nor ids are given, a category is not
    of the form ``archive`` or ``archive.SUB``, an id is not an arXiv id, ``start < 0``,
    ``max_results`` is outside 0..2000, or ``sort_by``/``sort_order`` are not API values.
    """
    if not categories and not id_list:
        raise ValueError("an arXiv API query needs categories or id_list")
    if start < 0:
        raise ValueError(f"start must be >= 0, not {start}")
    if not 0 <= max_results <= ARXIV_MAX_RESULTS:
        raise ValueError(f"max_results must be 0..{ARXIV_MAX_RESULTS}, not {max_results}")
    if sort_by not in _SORT_BY:
        raise ValueError(f"sort_by must be one of {sorted(_SORT_BY)}, not {sort_by!r}")
    if sort_order not in _SORT_ORDER:
        raise ValueError(f"sort_order must be one of {sorted(_SORT_ORDER)}, not {sort_order!r}")
    params: list[tuple[str, str]] = []
    if categories:
        for cat in categories:
            if not _CATEGORY_RE.match(cat):
                raise ValueError(f"not an arXiv category: {cat!r}")
        params.append(("search_query", " OR ".join(f"cat:{c}" for c in categories)))
    if id_list:
        for ident in id_list:
            found = split_arxiv_id(ident)
            if found is None or ident.strip() != found[0] + (f"v{found[1]}" if found[1] is not None else ""):
                raise ValueError(f"not an arXiv id: {ident!r}")
        params.append(("id_list", ",".join(i.strip() for i in id_list)))
    params += [
        ("start", str(start)),
        ("max_results", str(max_results)),
        ("sortBy", sort_by),
        ("sortOrder", sort_order),
    ]
    query = urllib.parse.urlencode(params, safe=":/,", quote_via=urllib.parse.quote_plus)
    return f"{base}{'&' if '?' in base else '?'}{query}"


def is_arxiv_url(url: str) -> bool:
    """True when ``url``'s host is ``arxiv.org`` or a subdomain of it (``rss.arxiv.org``,
    ``export.arxiv.org``). Never raises; junk gives ``False``."""
    try:
        host = urllib.parse.urlsplit(url.strip()).hostname
    except (ValueError, AttributeError):
        return False
    if not host:
        return False
    host = host.rstrip(".").lower()
    return host == "arxiv.org" or host.endswith(".arxiv.org")


def split_author_list(text: str) -> list[str]:
    """Split an arXiv listing's ``dc:creator`` (``"A, B (Univ, City), C"``) into names.

    Commas inside parentheses do not split, and parenthesised affiliations are dropped
    (``"B"``). With unbalanced parentheses it falls back to a plain split on commas."""
    if "(" not in text:
        if "  " not in text and text.isprintable():  # only single spaces: stripping collapses
            return list(filter(None, map(str.strip, text.split(","))))
        return [" ".join(p.split()) for p in text.split(",") if p.strip()]
    names: list[str] = []
    current: list[str] = []
    depth = 0
    for ch in text:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth < 0:
                break
        elif depth == 0:
            if ch == ",":
                names.append("".join(current))
                current = []
            else:
                current.append(ch)
    else:
        if depth == 0:
            names.append("".join(current))
            return [n for n in (" ".join(x.split()) for x in names) if n]
    return [" ".join(p.split()) for p in text.split(",") if p.strip()]
