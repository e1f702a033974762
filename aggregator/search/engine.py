"""Full-text search on the database's own engine: SQLite FTS5 or PostgreSQL tsvector.

The index (migration ``0050_search``) covers titles, abstracts, authors and arXiv ids and is
kept in sync by the database itself (FTS5 triggers; a generated ``tsvector`` column), so
ingest needs no extra step. Relevance (``rel``, larger is better):

* SQLite: ``-bm25(items_fts, 8, 1, 3, 8)`` — Okapi BM25 with title and arXiv id weighted 8,
  authors 3, abstract 1 (FTS5's ``bm25`` returns lower-is-better);
* PostgreSQL: ``ts_rank_cd(items.search, query, 1)`` — cover density over the weighted
  ``tsvector`` (title and id A, authors B, abstract C), divided by 1 + log(document length),
  BM25's length normalisation in spirit. The query is ``websearch_to_tsquery('english', …)``
  of the words and quoted phrases, ANDed with one ``to_tsquery('simple', 'w1:B <-> w2:B')``
  per ``author:`` (names are matched unstemmed, among authors only).

Only the newest :data:`CANDIDATES` matches (by item id, i.e. arrival) are ranked: a query
matching more (a common word) ranks its most recent 2,000, so paging ends there; filters
apply to those candidates.

An arXiv id or link finds that paper by ``items.arxiv_id`` (relevance 1000), and the rest of
the query is then ignored. With ``personal`` (a reader's score key), relevance is multiplied
by 1 + 2 × the reader's precomputed score of the item (0 when not precomputed).

Pages come from :func:`aggregator.digest.paging.read_page` on the key (``rel``, ``id``),
bounded by the snapshot's largest item id.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from aggregator.digest.cursor import Cursor
from aggregator.digest.filters import DigestFilters, conditions
from aggregator.digest.paging import ITEM_COLUMNS, entries, read_page
from aggregator.digest.public import DigestEntry
from aggregator.search.query import Query
from aggregator.store.tables import Item, Score

#: FTS5 bm25 column weights: title, summary, authors, arxiv_id.
BM25_WEIGHTS = (8.0, 1.0, 3.0, 8.0)
#: Matches ranked per query: the newest this many (by item id). Ranking every match of a common
#: word ("learning": 350,000 of 1M items) costs 1.3 s on FTS5 and 6 s on PostgreSQL; the newest
#: 5,000 cost 40–180 ms, the newest 2,000 15–60 ms (bench/search.py, 2 busy cores). A query
#: with fewer matches (a phrase, an author, a technical term) ranks them all.
CANDIDATES = 2_000
#: How much a reader's score lifts relevance with ``personal=true``: rel × (1 + PERSONAL × score).
PERSONAL = 2.0


def _fts5_string(words: tuple[str, ...]) -> str:
    return '"' + " ".join(w.replace('"', '""') for w in words) + '"'


def fts5_match(query: Query) -> str:
    """The FTS5 MATCH expression of ``query``: every word, phrase and author ANDed; each a
    quoted string (so no word is read as an operator)."""
    parts = [_fts5_string((w,)) for w in query.words]
    parts += [_fts5_string(p) for p in query.phrases]
    parts += ["authors : " + _fts5_string(a) for a in query.authors]
    return " AND ".join(parts)


def websearch_text(query: Query) -> str:
    """The words and phrases as ``websearch_to_tsquery`` input."""
    return " ".join([*query.words, *('"' + " ".join(p) + '"' for p in query.phrases)])


def _text_hits(query: Query, dialect: str) -> tuple[Any, sa.ColumnElement[bool] | None]:
    """(relevance expression, match condition) for the words, phrases and authors."""
    if dialect == "postgresql":
        search: Any = sa.literal_column("items.search")
        conds = []
        if query.words or query.phrases:
            conds.append(sa.func.websearch_to_tsquery(sa.text("'english'::regconfig"), websearch_text(query)))
        for name in query.authors:
            text = " <-> ".join(f"{w}:B" for w in name)
            conds.append(sa.func.to_tsquery(sa.text("'simple'::regconfig"), text))
        tsq: Any = conds[0]
        for c in conds[1:]:
            tsq = tsq.op("&&")(c)
        newest = sa.select(Item.id).where(search.op("@@")(tsq)).order_by(Item.id.desc()).limit(CANDIDATES)
        rel = sa.func.ts_rank_cd(search, tsq, 1)
        return rel, Item.id.in_(newest.scalar_subquery())
    weights = ", ".join(str(w) for w in BM25_WEIGHTS)
    hits = (
        sa.text(
            f"SELECT rowid AS item_id, -bm25(items_fts, {weights}) AS rel "
            "FROM items_fts WHERE items_fts MATCH :m ORDER BY rowid DESC LIMIT :window"
        )
        .bindparams(m=fts5_match(query), window=CANDIDATES)
        .columns(sa.column("item_id", sa.Integer), sa.column("rel", sa.Float))
        .cte("hits")
        .prefix_with("MATERIALIZED")
    )
    return hits, None


@dataclass(frozen=True, slots=True)
class SearchPage:
    """A page of results, best first (``score`` of each entry: its relevance), and the cursor
    after it (None on the last page)."""

    items: list[DigestEntry]
    cursor: Cursor | None


def search_page(
    session: Session,
    query: Query,
    limit: int,
    cursor: Cursor,
    filters: DigestFilters = DigestFilters(),
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
    personal: str | None = None,
    reader_id: int | None = None,
) -> SearchPage:
    """A page of the items matching ``query`` (published in [``since``, ``until``) when given,
    filtered by ``filters``), by relevance, after ``cursor``. ``personal``: the score key of a
    reader whose scores lift relevance (module docstring)."""
    dialect = session.bind.dialect.name  # type: ignore[union-attr]
    where: list[Any] = list(conditions(filters, dialect, reader_id))
    if since is not None:
        where.append(Item.published >= since)
    if until is not None:
        where.append(Item.published < until)
    base: sa.Select[Any]
    if query.arxiv_ids:
        rel: Any = sa.literal(1000.0, sa.Float)
        where.append(Item.arxiv_id.in_(query.arxiv_ids))
        base = sa.select(Item.id)
    else:
        found, match = _text_hits(query, dialect)
        if match is None:  # SQLite: the FTS5 hits as a CTE joined on the item id
            rel = found.c.rel
            base = sa.select(Item.id).join(found, found.c.item_id == Item.id)
        else:
            rel, base = found, sa.select(Item.id)
            where.append(match)
    if personal is not None:
        mine = aliased(Score, name="mine")
        base = base.outerjoin(mine, sa.and_(mine.item_id == Item.id, mine.profile == personal))
        rel = rel * (1.0 + PERSONAL * sa.func.coalesce(mine.score, 0.0))
    rel = sa.cast(rel, sa.Float)
    query_rows = base.with_only_columns(
        rel.label("k0"), Item.id.label("k1"), *ITEM_COLUMNS, rel.label("score"), sa.null().label("why")
    ).where(*where)
    keys: list[Any] = [rel, Item.id]
    rows, more = read_page(session, query_rows, keys, cursor, limit)
    return SearchPage(entries(session, rows), cursor if more else None)
