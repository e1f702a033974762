"""Papers ↔ posts: which blog posts discuss which arXiv papers (table ``item_links``).

A post links a paper when its title, summary, HTML or link mentions

* the paper's arXiv id (``2606.12345``, ``arXiv:2606.12345v2``, old style ``hep-th/9901001``;
  ``method="id"``),
* an arXiv link to it (``arxiv.org/abs/…``, ``/pdf/…``, ``/html/…``; ``method="link"``), or
* its exact title, compared case- and whitespace-insensitively, for titles of at least
  :data:`MIN_TITLE_WORDS` words (shorter titles such as "Attention Is All" are too common;
  ``method="title"``).

:func:`link_items` runs after each ingest for the new items, both ways: a new post against the
stored papers, a new paper against the stored posts. Ids are matched through the unique
``items.arxiv_id`` index; titles through a dictionary keyed by a title's first four words, so
a new paper is checked only against posts that contain those words in that order.
"""

from __future__ import annotations

import datetime as dt
import html
import re
from collections import defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from aggregator.store import queries
from aggregator.store.db import insert
from aggregator.store.tables import Item, ItemLink

MIN_TITLE_WORDS = 4

_NEW_ID = r"\d{4}\.\d{4,5}"
_OLD_ID = r"[a-z][a-z\-]+(?:\.[A-Z]{2})?/\d{7}"
_LINK = re.compile(rf"arxiv\.org/(?:abs|pdf|html)/({_NEW_ID}|{_OLD_ID})(?:v\d+)?", re.IGNORECASE)
_BARE_ID = re.compile(rf"(?<![\w.])({_NEW_ID})(?:v\d+)?(?![\d.])", re.IGNORECASE)
_OLD_BARE = re.compile(rf"arxiv:\s*({_OLD_ID})", re.IGNORECASE)
_TAG = re.compile(r"<[^>]+>")
_WORD = re.compile(r"\w+")


def normalise_title(text: str) -> str:
    """Case-folded, whitespace collapsed to single spaces (HTML entities decoded)."""
    return " ".join(html.unescape(text).casefold().split())


def mentions(text: str) -> dict[str, str]:
    """arXiv ids (without version) mentioned in ``text`` → ``"link"`` or ``"id"`` (a link wins)."""
    found: dict[str, str] = {}
    for m in _LINK.finditer(text):
        found[m.group(1)] = "link"
    for rx in (_BARE_ID, _OLD_BARE):
        for m in rx.finditer(text):
            found.setdefault(m.group(1), "id")
    return found


def _html_col() -> Any:
    """A post's summary HTML and full content HTML (issue 15 keeps both), as ``summary_html``."""
    both = sa.func.coalesce(Item.summary_html, "") + "\n" + sa.func.coalesce(Item.content_html, "")
    return both.label("summary_html")


def post_text(title: str, summary: str, summary_html: str | None, url: str | None) -> str:
    """Everything of a post that may mention a paper: link, title, summary, raw HTML (for hrefs)
    and the HTML's text."""
    parts = [url or "", title, summary]
    if summary_html:
        parts += [summary_html, _TAG.sub(" ", summary_html)]
    return "\n".join(parts)


def _first_words(normalised: str) -> str:
    return " ".join(_WORD.findall(normalised)[:MIN_TITLE_WORDS])


def _title_ok(normalised: str) -> bool:
    return len(normalised.split()) >= MIN_TITLE_WORDS


def find_links(
    posts: Sequence[tuple[int, str]], papers: Sequence[tuple[int, str | None, str]]
) -> list[tuple[int, int, str]]:
    """Pure matcher. ``posts`` are (post id, post text); ``papers`` are (paper id, arXiv id,
    title). Returns (post id, paper id, method) triples, one per pair, method "link" > "id" >
    "title"."""
    by_arxiv = {a: pid for pid, a, _ in papers if a}
    by_start: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for pid, _, title in papers:
        norm = normalise_title(title)
        if _title_ok(norm):
            by_start[_first_words(norm)].append((pid, norm))
    out: dict[tuple[int, int], str] = {}
    for post_id, text in posts:
        for arxiv_id, method in mentions(text).items():
            paper = by_arxiv.get(arxiv_id)
            if paper is not None and paper != post_id:
                key = (post_id, paper)
                if out.get(key) != "link":
                    out[key] = method
        norm_text = normalise_title(_TAG.sub(" ", text))
        words = _WORD.findall(norm_text)
        starts = {" ".join(words[i : i + MIN_TITLE_WORDS]) for i in range(len(words) - MIN_TITLE_WORDS + 1)}
        for start in starts & by_start.keys():
            for pid, norm in by_start[start]:
                if pid != post_id and norm in norm_text:
                    out.setdefault((post_id, pid), "title")
    return [(post, paper, method) for (post, paper), method in sorted(out.items())]


def link_items(session: Session, item_ids: Iterable[int], now: dt.datetime | None = None) -> int:
    """Link the given new items both ways (new posts → stored papers, new papers → stored
    posts) and insert the links (existing pairs are left alone). Runs in the caller's
    transaction. Returns the number of (post, paper) pairs found, new or already stored."""
    ids = sorted(set(item_ids))
    if not ids:
        return 0
    now = now or dt.datetime.now(dt.UTC)
    new_rows: list[Any] = []
    for i in range(0, len(ids), 500):
        new_rows += session.execute(
            sa.select(
                Item.id, Item.kind, Item.arxiv_id, Item.title, Item.summary, _html_col(), Item.url
            ).where(Item.id.in_(ids[i : i + 500]))
        ).all()
    new_posts = [
        (r.id, post_text(r.title, r.summary, r.summary_html, r.url)) for r in new_rows if r.kind == "post"
    ]
    new_papers = [(r.id, r.arxiv_id, r.title) for r in new_rows if r.kind == "paper"]
    found: list[tuple[int, int, str]] = []
    if new_posts:
        # candidate papers: those whose id is mentioned, and (for titles) all papers' titles
        papers = [
            (r.id, r.arxiv_id, r.title)
            for r in session.execute(
                sa.select(Item.id, Item.arxiv_id, Item.title).where(Item.kind == "paper")
            )
        ]
        found += find_links(new_posts, papers)
    if new_papers:
        new_post_ids = {p for p, _ in new_posts}
        posts = [
            (r.id, post_text(r.title, r.summary, r.summary_html, r.url))
            for r in session.execute(
                sa.select(Item.id, Item.title, Item.summary, _html_col(), Item.url).where(Item.kind == "post")
            )
            if r.id not in new_post_ids
        ]
        found += find_links(posts, new_papers)
    if not found:
        return 0
    conn = session.connection()
    table = ItemLink.__table__
    stmt = (
        insert(conn, table)
        .on_conflict_do_nothing(index_elements=["post_id", "paper_id"])
        .returning(table.c.paper_id)
    )
    rows = list({(p, q): m for p, q, m in found}.items())
    params = [{"post_id": p, "paper_id": q, "method": m, "created_at": now} for (p, q), m in rows]
    # a paper that gained a post shows a new "discussed in" count on its card
    queries.invalidate(session, conn.execute(stmt, params).scalars())
    return len(rows)
