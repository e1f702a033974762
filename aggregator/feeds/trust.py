"""Which feed may write what: the trust model of ingest (issue 14, finding 1).

Every item has an *owner*: the feed that created it (table ``item_owners``). Feeds come in
three trust levels (:class:`Trust`):

* ``ARXIV`` -- arXiv itself: the operator's arXiv feeds (``kind = "arxiv"`` in ``feeds.toml``
  or OPML, or detected from the document for an operator feed), any operator feed on an
  ``arxiv.org`` host, the arXiv API (``settings.arxiv_api_url``), and a reader-added feed only
  when both its URL and the address the fetch ended on are on an ``arxiv.org`` host. Only these
  create or change *papers* (items keyed ``arxiv:<id>``); among them a newer version wins.
* ``OPERATOR`` -- the other feeds the operator listed (``feeds.toml``, OPML). Trusted for
  their own posts.
* ``READER`` -- feeds readers added (``feeds.reader_added``). They add their own posts
  (which may link to papers, :mod:`aggregator.feeds.paper_links`), nothing more.

The rule, :func:`verdict` (pure): a feed may update an item it owns; it may take over an item
owned by a feed of lower trust (an operator's post squatted by a reader's feed is put right);
it may never change an item owned by another feed of the same or higher trust. An item
whose owner was deleted is taken over by any operator or arXiv feed, never by a reader's. A
feed below ``ARXIV`` never creates or changes a paper, and never creates a post under an
``arxiv:`` key. A refused entry writes nothing for a reader's feed -- not even an
``item_sources`` row, since the feed's name would then show among the item's sources; an
operator feed still records that it announced the item (a cross-post).
"""

from __future__ import annotations

import enum
import urllib.parse
from dataclasses import dataclass
from typing import Literal

from aggregator.feeds.arxiv import is_arxiv_url

Verdict = Literal["write", "take_over", "source_only", "refuse"]


class Trust(enum.IntEnum):
    """How far a feed is trusted; a higher value may override a lower one."""

    READER = 0
    OPERATOR = 1
    ARXIV = 2


def _same_endpoint(url: str, api_url: str) -> bool:
    """True when ``url`` is the arXiv API endpoint (query string ignored)."""
    if not api_url:
        return False
    try:
        a, b = urllib.parse.urlsplit(url), urllib.parse.urlsplit(api_url)
    except ValueError:
        return False
    return (a.scheme, a.netloc.lower(), a.path) == (b.scheme, b.netloc.lower(), b.path)


def feed_trust(
    url: str,
    kind: str | None,
    reader_added: bool,
    api_url: str,
    final_url: str | None = None,
) -> Trust:
    """The trust level of a feed (pure; see the module docstring for the rule).

    ``final_url`` is where this fetch ended after redirects, when known: a reader-added feed on
    arXiv that redirects elsewhere is a reader's feed for that fetch."""
    if reader_added:
        on_arxiv = is_arxiv_url(url) and (final_url is None or is_arxiv_url(final_url))
        return Trust.ARXIV if on_arxiv else Trust.READER
    if kind == "arxiv" or is_arxiv_url(url) or _same_endpoint(url, api_url):
        return Trust.ARXIV
    return Trust.OPERATOR


@dataclass(frozen=True, slots=True)
class Owner:
    """An item's owner as ingest sees it: the feed's id and trust (both None: it was deleted)."""

    feed_id: int | None
    trust: Trust | None


def may_create(kind: str, key: str, trust: Trust) -> bool:
    """Whether a feed of ``trust`` may create an item of ``kind`` under ``key`` (pure)."""
    if trust >= Trust.ARXIV:
        return True
    return kind != "paper" and not key.lower().startswith("arxiv:")


def verdict(kind: str, feed_id: int, trust: Trust, owner: Owner | None) -> Verdict:
    """What a feed (``feed_id``, ``trust``) may do with an existing item of ``kind`` (pure).

    ``owner`` is None (or its ``feed_id`` is None) for an item whose owner feed was deleted:
    owned by nobody. Returns ``"write"`` (the usual update rules apply), ``"take_over"``
    (the feed becomes the owner; its version is written when it differs),
    ``"source_only"`` (record the announcement, change nothing) or ``"refuse"``."""
    blocked: Verdict = "source_only" if trust >= Trust.OPERATOR else "refuse"
    if kind == "paper":
        # papers: arXiv feeds share them (cross-lists, replacements); others only announce
        if trust < Trust.ARXIV:
            return blocked
        if owner is not None and owner.trust is not None and owner.trust < Trust.ARXIV:
            return "take_over"  # a post squatting a paper's key
        return "write"
    if owner is None or owner.feed_id is None or owner.trust is None:  # nobody's (deleted feed)
        return "take_over" if trust >= Trust.OPERATOR else "refuse"
    if owner.feed_id == feed_id:
        return "write"
    if trust > owner.trust:
        return "take_over"
    return blocked
