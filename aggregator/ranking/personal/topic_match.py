"""Matching items against topic filters and muted phrases: whole-word, case-insensitive phrases."""

from __future__ import annotations

import functools
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aggregator.types import TopicFilter

if TYPE_CHECKING:  # rank imports scikit-learn; only needed at run time when a model exists
    pass


def _norm(s: str) -> str:
    return " ".join(s.casefold().split())


@dataclass(frozen=True, slots=True)
class ItemFields:
    """The fields of an item that filters look at. Any object with ``title``, ``summary``,
    ``categories``, ``authors`` (and optionally ``sources``, feed names) works as well."""

    title: str
    summary: str = ""
    categories: Sequence[str] = ()
    authors: Sequence[str] = ()
    sources: Sequence[str] = ()


#: Compiled phrases kept per process (an LRU): readers' phrases come and go with every profile
#: save, and an unbounded cache grew by ~3 kB per phrase ever seen (issue 14, finding 6).
PHRASE_CACHE_SIZE = 2048


@functools.lru_cache(maxsize=PHRASE_CACHE_SIZE)
def phrase_pattern(phrase: str) -> re.Pattern[str]:
    """Whole-word, case-insensitive match of ``phrase``; words may be separated by any
    whitespace or hyphens and the last word may take a plural ``s``/``es`` ("LLM" matches
    "LLMs", not "LLaMA"; "gan" does not match "organ"). Cached: the last
    :data:`PHRASE_CACHE_SIZE` phrases."""
    words = [re.escape(w) for w in re.split(r"[\s\-]+", phrase.strip()) if w]
    body = r"[\s\-]+".join(words) if words else r"(?!)"
    return re.compile(rf"(?<![\w]){body}(?:s|es)?(?![\w])", re.IGNORECASE)


def _text_of(item: Any) -> str:
    return f"{getattr(item, 'title', '') or ''}\n{getattr(item, 'summary', '') or ''}"


def matches_topic(item: Any, topic: TopicFilter) -> bool:
    """True when ``item`` matches the topic filter (pure).

    Each value of ``phrases`` (whole words in title/abstract, see :func:`phrase_pattern`),
    ``categories`` (exact arXiv category), ``authors`` and ``sources`` (case-insensitive, spaces
    normalised) is one criterion; ``match="any"`` needs one of them, ``"all"`` needs every one.
    Any ``negative`` phrase in title/abstract vetoes the match. A filter without positive
    criteria matches nothing. ``item``: :class:`ItemFields` or any object with those attributes.
    """
    checks = _criteria(item, topic)
    if not checks:
        return False
    hit = all(checks) if topic.match == "all" else any(checks)
    if not hit:
        return False
    text = _text_of(item)
    return not any(phrase_pattern(n).search(text) for n in topic.negative)


def _criteria(item: Any, topic: TopicFilter) -> list[bool]:
    text = _text_of(item)
    cats = {c.casefold() for c in getattr(item, "categories", ()) or ()}
    authors = {_norm(a) for a in getattr(item, "authors", ()) or ()}
    sources = {_norm(s) for s in getattr(item, "sources", ()) or ()}
    out = [bool(phrase_pattern(p).search(text)) for p in topic.phrases]
    out += [c.casefold() in cats for c in topic.categories]
    out += [_norm(a) in authors for a in topic.authors]
    out += [_norm(s) in sources for s in topic.sources]
    return out
