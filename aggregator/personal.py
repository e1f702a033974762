"""Per-reader ranking: score the recent window of items for each reader and store the result in
``scores`` under the reader's key (``reader:<id>``), so the request path only reads.

The score of item *d* for a reader is::

    q1   = clip(α·p + β·mean(liked) − γ·mean(disliked) − b·background, 0)     (Rocchio 1971)
    q2   = clip(q1/|q1| + λ·prf/|prf| − γ·mean(disliked) − b·background, 0)    (pseudo-relevance feedback)
    sim  = cos(d, q2)                                                           in [0, 1]
    score = (sim + AUTHOR_BOOST·[followed author on d] + TOPIC_BOOST·n_topics(d)) · recency(d)

* ``p`` is the interest profile of :func:`aggregator.rank.profile_vector` (free text, keywords
  counted twice, seed papers), L2-normalised; ``liked``/``disliked`` are the TF-IDF rows of the
  reader's 👍/👎 items. Rocchio (1971), "Relevance feedback in information retrieval"; weights
  α = 1, β = 0.75 as in Salton & Buckley (1990), and γ = 0.5 (stronger than their 0.15, so a
  single 👎 visibly pushes similar items down). Negative weights are clipped at 0.
* ``background`` is the mean TF-IDF row of the window: subtracting it (b = 2) removes terms that
  are common in every paper of the week, the part of the profile that does not discriminate.
* ``prf`` is the mean of the window's ``PRF_DOCS`` = 20 items most similar to ``q1`` (the reader's
  own rated items left out), weight λ = 1: classic pseudo-relevance feedback (Rocchio; Buckley et
  al., TREC 1994). b, ``PRF_DOCS`` and λ were chosen on the early-June 2026 split of
  :mod:`aggregator.evaluate` only, and checked on held-out weeks (see ``bench/rank_quality.py``).
* ``recency(d) = RECENCY_FLOOR + (1 − RECENCY_FLOOR)·2^(−age/7 days)``: a mild decay (an item a
  week old keeps 87.5 %, a month old ≈ 77 %); it only matters when several days are compared.
* Muted (``ReaderProfile.muted``): an entry equal to an author of the item, or a phrase found
  in its title/abstract, marks the item muted. Its score is left as it is and its row is stored
  with ``muted`` set: every digest of the reader hides it and counts it in ``hidden`` ("12 items
  hidden by your filters" are the ones that would have made the digest).
* Filters: an item with an excluded category or source is **excluded**; when include lists are
  given an item must carry one of the included categories **or** come from one of the included
  sources (union). Excluded items get no ``scores`` row (an old one is deleted).

Rows written: each call keeps the reader's best ``top_k`` (default 200) of the scored items
plus the best ``day_top`` (50) of the newest day's (so the digest people read most, the newest
day's, is never short), and deletes the reader's other rows among those items. **A reader's
digest must therefore inner-join ``scores`` on ``profile = score_key``**: an item without a row
is excluded or below the reader's top-K. ``why`` is filled for the best ``why_top`` (20) rows
and the newest day's best (the rest get ``[]``): explaining is the costliest part.

Speed: the window's item matrix (n_items × n_terms, CSR float32), ids, publication times,
authors, categories and sources are cached per process and model (:func:`item_window`); its
validity is checked with one aggregate query (count, min/max/sum of ids, newest
``updated_at``), and it is refreshed incrementally when items are added or changed.
:func:`precompute_all` builds all readers' query parts as one n_readers × n_terms sparse
matrix in one pass, then per chunk of readers runs two products (n_items × n_terms CSR) @
(n_terms × chunk dense) — Rocchio, then PRF, whose centroids are one more sparse product —
applies boosts and filters as vector operations on memoised masks, takes every reader's
top-K with one ``argpartition`` over the block, computes ``why`` for the best ``why_top`` rows
only (one sparse elementwise product per chunk), and writes all rows with one executemany
(SQLite) or COPY (PostgreSQL). Queries stay sparse: ``clip(x − b·background, 0)`` is computed
on the nonzeros of ``x`` (the background is ≥ 0, so every other term clips to 0). A single
reader (:func:`precompute` after feedback) takes a dense-free path on the query's terms.

Imports: this module loads numpy/scipy only; scikit-learn is imported by :mod:`aggregator.rank`
when a model is loaded, not by importing this module (so ``matches_topic``/``load_profile`` stay
light for the API).
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
import sqlalchemy as sa
from sqlalchemy.orm import Session

from .records import ReaderProfile, TopicFilter
from .store.db import dbapi_datetime
from .store.tables import Feed, Feedback, Item, ItemSource, Profile, Reader, Score, Subscription, Topic

if TYPE_CHECKING:  # rank imports scikit-learn; only needed at run time when a model exists
    from .rank import TfidfModel

# --- constants (sources in the module docstring) -----------------------------------------------
ALPHA = 1.0  # interest profile (text, keywords, seed papers)
BETA = 0.75  # mean of liked items
GAMMA = 0.5  # mean of disliked items
BACKGROUND = 2.0  # weight of the window's mean row subtracted from the query
PRF_DOCS = 20  # pseudo-relevance feedback: top items of the first pass
PRF_WEIGHT = 1.0
AUTHOR_BOOST = 0.2  # added once when a followed author is on the item
TOPIC_BOOST = 0.1  # added per matched subscribed topic filter (at most MAX_TOPIC_BOOSTS)
MAX_TOPIC_BOOSTS = 3
RECENCY_HALF_LIFE_DAYS = 7.0
RECENCY_FLOOR = 0.75
TOP_K = 200
DAY_TOP = 50  # the newest day's best are always kept (and explained): its digest is never short
WHY_TOP = 20
WHY_TERMS = 5
WINDOW_DAYS = 30
_READER_CHUNK = 64  # readers per sparse product in precompute_all (bounds memory: n_items × chunk)


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


_PHRASE_CACHE: dict[str, re.Pattern[str]] = {}


def phrase_pattern(phrase: str) -> re.Pattern[str]:
    """Whole-word, case-insensitive match of ``phrase``; words may be separated by any
    whitespace or hyphens and the last word may take a plural ``s``/``es`` ("LLM" matches
    "LLMs", not "LLaMA"; "gan" does not match "organ")."""
    pat = _PHRASE_CACHE.get(phrase)
    if pat is None:
        words = [re.escape(w) for w in re.split(r"[\s\-]+", phrase.strip()) if w]
        body = r"[\s\-]+".join(words) if words else r"(?!)"
        pat = re.compile(rf"(?<![\w]){body}(?:s|es)?(?![\w])", re.IGNORECASE)
        _PHRASE_CACHE[phrase] = pat
    return pat


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


# --- the item window ----------------------------------------------------------------------------


@dataclass(eq=False)
class ItemWindow:
    """The items a reader's ranking looks at, with everything scoring needs as arrays.

    ``matrix`` is n_items × n_terms (CSR float32, rows L2-normalised); ``ids`` n_items int64;
    ``published`` n_items float64 (POSIX seconds, UTC); ``texts`` "title\\nsummary" per item;
    ``authors``/``categories``/``sources`` tuples per item. Lookup tables (author, category,
    source → rows) and phrase/topic masks are built lazily and memoised on the window.
    """

    ids: np.ndarray
    matrix: sp.csr_matrix
    published: np.ndarray
    texts: list[str]
    authors: list[tuple[str, ...]]
    categories: list[tuple[str, ...]]
    sources: list[tuple[str, ...]]
    model_id: int | None = None
    updated: np.ndarray | None = None  # n_items float64, items.updated_at (cache refresh)
    stamp: tuple[Any, ...] | None = None  # the items' fingerprint when cached (item_window)
    _memo: dict[Any, Any] = field(default_factory=dict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def build(
        cls,
        model: TfidfModel,
        ids: Sequence[int],
        titles: Sequence[str],
        summaries: Sequence[str],
        authors: Sequence[Sequence[str]],
        categories: Sequence[Sequence[str]],
        sources: Sequence[Sequence[str]],
        published: Sequence[dt.datetime] | np.ndarray,
        updated: np.ndarray | None = None,
    ) -> ItemWindow:
        """Transform the items' text (``rank.item_text``) with ``model`` and pack the arrays."""
        from .rank import item_text

        texts = [item_text(t, s, a) for t, s, a in zip(titles, summaries, authors, strict=True)]
        matrix = model.transform(texts) if texts else sp.csr_matrix((0, model.n_terms), dtype=np.float32)
        pub = np.asarray(
            [p.timestamp() if isinstance(p, dt.datetime) else float(p) for p in published], dtype=np.float64
        )
        return cls(
            ids=np.asarray(ids, dtype=np.int64),
            matrix=sp.csr_matrix(matrix, dtype=np.float32),
            published=pub,
            texts=[f"{t}\n{s}" for t, s in zip(titles, summaries, strict=True)],
            authors=[tuple(a) for a in authors],
            categories=[tuple(c) for c in categories],
            sources=[tuple(s) for s in sources],
            model_id=model.model_id,
            updated=updated,
        )

    def __len__(self) -> int:
        return len(self.ids)

    def _memoised(self, key: Any, make: Any) -> Any:
        value = self._memo.get(key)
        if value is None:
            value = make()
            with self._lock:
                self._memo[key] = value
        return value

    @property
    def position(self) -> dict[int, int]:
        """item id → row."""
        return self._memoised("position", lambda: {int(i): r for r, i in enumerate(self.ids)})

    @property
    def background(self) -> np.ndarray:
        """Mean row of ``matrix``: n_terms float32 (zeros for an empty window)."""

        def make() -> np.ndarray:
            if len(self) == 0:
                return np.zeros(self.matrix.shape[1], dtype=np.float32)
            return np.asarray(self.matrix.mean(axis=0), dtype=np.float32).ravel()

        return self._memoised("background", make)

    def _index(self, name: str, values: list[tuple[str, ...]], norm: Any) -> dict[str, np.ndarray]:
        def make() -> dict[str, np.ndarray]:
            rows: dict[str, list[int]] = {}
            for r, vals in enumerate(values):
                for v in {norm(x) for x in vals}:
                    rows.setdefault(v, []).append(r)
            return {k: np.asarray(v, dtype=np.int64) for k, v in rows.items()}

        return self._memoised(name, make)

    def rows_with_author(self, name: str) -> np.ndarray:
        return self._index("authors", self.authors, _norm).get(_norm(name), _EMPTY)

    def rows_with_category(self, cat: str) -> np.ndarray:
        return self._index("categories", self.categories, str.casefold).get(cat.casefold(), _EMPTY)

    def rows_with_source(self, source: str) -> np.ndarray:
        return self._index("sources", self.sources, _norm).get(_norm(source), _EMPTY)

    def phrase_mask(self, phrase: str) -> np.ndarray:
        """n_items bool: ``phrase`` occurs in title/abstract (:func:`phrase_pattern`)."""

        def make() -> np.ndarray:
            pat = phrase_pattern(phrase)
            # cheap substring pre-filter on the first word, then the exact pattern
            head = re.split(r"[\s\-]+", phrase.strip().casefold())[0] if phrase.strip() else ""
            lowered = self._memoised("lowered", lambda: [t.casefold() for t in self.texts])
            mask = np.zeros(len(self), dtype=bool)
            for r, t in enumerate(lowered):
                if head in t and pat.search(self.texts[r]):
                    mask[r] = True
            return mask

        return self._memoised(("phrase", phrase), make)

    def _rows_mask(self, rows: np.ndarray) -> np.ndarray:
        mask = np.zeros(len(self), dtype=bool)
        mask[rows] = True
        return mask

    def topic_mask(self, topic: TopicFilter) -> np.ndarray:
        """n_items bool: :func:`matches_topic` for every item, vectorised and memoised."""

        def make() -> np.ndarray:
            checks = [self.phrase_mask(p) for p in topic.phrases]
            checks += [self._rows_mask(self.rows_with_category(c)) for c in topic.categories]
            checks += [self._rows_mask(self.rows_with_author(a)) for a in topic.authors]
            checks += [self._rows_mask(self.rows_with_source(s)) for s in topic.sources]
            if not checks:
                return np.zeros(len(self), dtype=bool)
            stack = np.vstack(checks)
            hit = stack.all(axis=0) if topic.match == "all" else stack.any(axis=0)
            for n in topic.negative:
                hit &= ~self.phrase_mask(n)
            return np.asarray(hit, dtype=bool)

        return self._memoised(("topic", topic), make)

    def mute_mask(self, muted: Sequence[str]) -> np.ndarray:
        """n_items bool: an entry of ``muted`` is an author of the item or a phrase in it."""
        mask = np.zeros(len(self), dtype=bool)
        for m in muted:
            if m.strip():
                mask[self.rows_with_author(m)] = True
                mask |= self.phrase_mask(m)
        return mask

    def subset(self, rows: np.ndarray) -> ItemWindow:
        """A window of the given rows (no memo carried over)."""
        rows = np.asarray(rows, dtype=np.int64)
        return ItemWindow(
            ids=self.ids[rows],
            matrix=self.matrix[rows],
            published=self.published[rows],
            texts=[self.texts[r] for r in rows],
            authors=[self.authors[r] for r in rows],
            categories=[self.categories[r] for r in rows],
            sources=[self.sources[r] for r in rows],
            model_id=self.model_id,
            updated=None if self.updated is None else self.updated[rows],
        )


_EMPTY = np.zeros(0, dtype=np.int64)


# --- scoring (pure) -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReaderInputs:
    """A reader's profile compiled against a model: ``base`` is α·p + β·mean(liked) −
    γ·mean(disliked) (1 × n_terms CSR, before clipping), ``disliked`` γ·mean(disliked) (1 ×
    n_terms CSR, may be empty), ``rated`` the item ids the reader rated (left out of PRF)."""

    profile: ReaderProfile
    base: sp.csr_matrix
    disliked: sp.csr_matrix
    rated: frozenset[int]


def _row_mean(rows: sp.csr_matrix, n_terms: int) -> sp.csr_matrix:
    if rows.shape[0] == 0:
        return sp.csr_matrix((1, n_terms), dtype=np.float32)
    return sp.csr_matrix(rows.mean(axis=0), dtype=np.float32)


def _l2_rows(m: sp.csr_matrix) -> sp.csr_matrix:
    """Rows L2-normalised (zero rows stay zero), float32 CSR."""
    m = sp.csr_matrix(m, dtype=np.float32)
    sq = m.data.astype(np.float64) ** 2
    lengths = np.diff(m.indptr)
    sums = np.zeros(m.shape[0], dtype=np.float64)
    nz = lengths > 0
    if nz.any():
        sums[nz] = np.add.reduceat(sq, m.indptr[:-1][nz])
    norms = np.sqrt(sums)
    norms[norms == 0] = 1.0
    m.data = (m.data / np.repeat(norms, lengths)).astype(np.float32)
    return m


def _clip_rows(m: sp.csr_matrix, bg: np.ndarray) -> sp.csr_matrix:
    """``l2(max(m − bg, 0))`` computed on the nonzeros of ``m`` only: ``bg`` ≥ 0, so an entry
    outside them is 0 − bg ≤ 0 and clipped to 0 anyway. Exactly the dense formula, sparse."""
    m = sp.csr_matrix(m, dtype=np.float32, copy=True)
    m.sum_duplicates()
    m.data -= bg[m.indices]
    np.maximum(m.data, 0, out=m.data)
    m.eliminate_zeros()
    return _l2_rows(m)


def profile_vectors(
    model: TfidfModel, profiles: Sequence[ReaderProfile], seed_texts: Sequence[Sequence[str]]
) -> sp.csr_matrix:
    """:func:`aggregator.rank.profile_vector` of many readers (n_readers × n_terms CSR, rows
    L2-normalised or zero) with a single ``model.transform`` call: free text, keywords (weighted
    ``rank.KEYWORD_WEIGHT`` / sqrt(n keywords)), mean of seed papers."""
    from .rank import KEYWORD_WEIGHT

    texts: list[str] = []
    owner: list[int] = []
    weight: list[float] = []
    for j, (p, seeds) in enumerate(zip(profiles, seed_texts, strict=True)):
        if p.interests.strip():
            texts.append(p.interests)
            owner.append(j)
            weight.append(1.0)
        for kw in p.keywords:
            texts.append(kw)
            owner.append(j)
            weight.append(KEYWORD_WEIGHT / max(1, len(p.keywords)) ** 0.5)
        for seed in seeds:
            texts.append(seed)
            owner.append(j)
            weight.append(1.0 / len(seeds))
    if not texts:
        return sp.csr_matrix((len(profiles), model.n_terms), dtype=np.float32)
    rows = model.transform(texts)
    combine = sp.csr_matrix(
        (np.asarray(weight, dtype=np.float32), (np.asarray(owner), np.arange(len(texts)))),
        shape=(len(profiles), len(texts)),
    )
    return _l2_rows(combine @ rows)


def compile_reader(
    model: TfidfModel,
    profile: ReaderProfile,
    liked: sp.csr_matrix,
    disliked: sp.csr_matrix,
    seed_texts: Sequence[str] = (),
    profile_row: sp.csr_matrix | None = None,
) -> ReaderInputs:
    """Build the Rocchio query parts of one reader. ``liked``/``disliked``: n × n_terms TF-IDF
    rows of the rated items that are stored (missing ones are ignored). ``profile_row``: the
    reader's :func:`aggregator.rank.profile_vector` when already computed (1 × n_terms)."""
    if profile_row is None:
        profile_row = profile_vectors(model, [profile], [seed_texts])
    p = profile_row
    d = GAMMA * _row_mean(disliked, model.n_terms)
    base = ALPHA * p + BETA * _row_mean(liked, model.n_terms) - d
    rated = frozenset(profile.liked_item_ids) | frozenset(profile.disliked_item_ids)
    return ReaderInputs(profile, sp.csr_matrix(base, dtype=np.float32), sp.csr_matrix(d), rated)


def _similarities_t(window: ItemWindow, queries: sp.csr_matrix) -> np.ndarray:
    """Cosine similarity of every query with every item: n_readers × n_items float32 (C order:
    one reader's row is contiguous). ``queries``: n_readers × n_terms CSR, rows L2-normalised.
    One reader uses the window's CSC matrix restricted to the query's nonzero terms; several use
    one CSR × dense product (n_items × n_terms) @ (n_terms × n_readers)."""
    n = queries.shape[0]
    if n == 1:
        q = sp.csr_matrix(queries)
        q.sum_duplicates()
        csc = window._memoised("csc", lambda: window.matrix.tocsc())
        return np.asarray(csc[:, q.indices] @ q.data, dtype=np.float32).reshape(1, -1)
    dense = sp.csr_matrix(queries.T, dtype=np.float32).toarray()  # n_terms × n_readers, C order
    return np.ascontiguousarray(np.asarray(window.matrix @ dense, dtype=np.float32).T)


def similarities(window: ItemWindow, queries: np.ndarray) -> np.ndarray:
    """Cosine similarity of every item with every query: n_items × n_readers float32.
    ``queries``: n_readers × n_terms dense (or CSR), rows L2-normalised."""
    return _similarities_t(window, sp.csr_matrix(queries, dtype=np.float32)).T


def _query_matrix(
    window: ItemWindow, base: sp.csr_matrix, disliked: sp.csr_matrix, rated_rows: Sequence[np.ndarray]
) -> tuple[sp.csr_matrix, np.ndarray]:
    """The final queries q2 of n readers (n × n_terms CSR, rows L2-normalised; an empty row for
    a reader with an empty profile) and their similarities with the window's items (n ×
    n_items, reader-major): Rocchio and background subtraction, then one round of
    pseudo-relevance feedback over the whole window, for all readers at once (two sparse ×
    dense products and one sparse product for the PRF centroids). ``base``/``disliked``: n ×
    n_terms (see :class:`ReaderInputs`); ``rated_rows``: per reader, window rows left out of
    PRF."""
    n = base.shape[0]
    if n == 1:
        return _query_one(window, base, disliked, rated_rows[0])
    bg = BACKGROUND * window.background
    q1 = _clip_rows(base, bg)
    if len(window) == 0:
        return q1, np.zeros((n, 0), dtype=np.float32)
    first = _similarities_t(window, q1)
    nonempty = np.diff(q1.indptr) > 0
    if PRF_DOCS <= 0 or not nonempty.any():
        return q1, first
    m = min(PRF_DOCS, len(window))
    readers = np.flatnonzero(nonempty)
    block = first[readers] if len(readers) < n else first.copy()
    rr = [(k, rated_rows[j]) for k, j in enumerate(readers.tolist()) if len(rated_rows[j])]
    if rr:
        block[
            np.concatenate([np.full(len(r), k) for k, r in rr]), np.concatenate([r for _, r in rr])
        ] = -np.inf
    if m < len(window):
        top = np.argpartition(-block, m - 1, axis=1)[:, :m]
    else:
        top = np.broadcast_to(np.arange(len(window)), (len(readers), len(window)))
    sel = sp.csr_matrix(
        (np.ones(top.size, dtype=np.float32), (np.repeat(readers, top.shape[1]), top.ravel())),
        shape=(n, len(window)),
    )
    prf = _l2_rows(sel @ window.matrix)
    q2 = q1 + PRF_WEIGHT * prf - sp.csr_matrix(disliked, dtype=np.float32)
    q2 = _clip_rows(q2, bg)
    if not nonempty.all():  # an empty profile is not expanded: its query stays empty
        q2 = sp.csr_matrix(sp.diags(nonempty.astype(np.float32)) @ q2)
        q2.eliminate_zeros()
    return q2, _similarities_t(window, q2)


def _rows_sum(m: sp.csr_matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum of the given rows of ``m``, sparse: (sorted column ids, float64 values), from the raw
    CSR arrays."""
    starts, ends = m.indptr[rows], m.indptr[rows + 1]
    lengths = ends - starts
    offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    at = offsets + np.arange(int(lengths.sum()))
    cols, inverse = np.unique(m.indices[at], return_inverse=True)
    return cols, np.bincount(inverse, weights=m.data[at], minlength=len(cols))


def _unit(values: np.ndarray) -> np.ndarray:
    norm = np.sqrt(np.square(values, dtype=np.float64).sum())  # not np.dot: BLAS threads cost ms
    return (values / norm if norm > 0 else values).astype(np.float32)


def _query_one(
    window: ItemWindow, base: sp.csr_matrix, disliked: sp.csr_matrix, rated: np.ndarray
) -> tuple[sp.csr_matrix, np.ndarray]:
    """:func:`_query_matrix` for one reader: the same formula on the query's nonzero terms only
    (a few hundred to a few thousand), since building sparse matrices costs more than the
    arithmetic for a single row."""
    n_terms = window.matrix.shape[1]
    bg = BACKGROUND * window.background
    csc = window._memoised("csc", lambda: window.matrix.tocsc())

    def clipped(cols: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        values = values - bg[cols]
        keep = values > 0
        return cols[keep], _unit(values[keep])

    def result(cols: np.ndarray, values: np.ndarray) -> tuple[sp.csr_matrix, np.ndarray]:
        q = sp.csr_matrix((values, cols, np.asarray([0, len(cols)])), shape=(1, n_terms))
        sims = np.asarray(csc[:, cols] @ values, dtype=np.float32).reshape(1, -1)
        return q, sims

    b = sp.csr_matrix(base, dtype=np.float32)
    b.sum_duplicates()
    c1, v1 = clipped(b.indices, b.data)
    if len(window) == 0 or PRF_DOCS <= 0 or len(c1) == 0:
        return result(c1, v1)
    first = result(c1, v1)[1][0]
    m = min(PRF_DOCS, len(window))
    if len(rated):
        first[rated] = -np.inf
    top = np.argpartition(-first, m - 1)[:m] if m < len(first) else np.arange(len(first))
    cp, vp = _rows_sum(window.matrix, top)
    cols = np.union1d(c1, cp)
    values = np.zeros(len(cols), dtype=np.float32)
    values[np.searchsorted(cols, c1)] += v1
    values[np.searchsorted(cols, cp)] += PRF_WEIGHT * _unit(vp)
    d = sp.csr_matrix(disliked, dtype=np.float32)
    d.sum_duplicates()
    at = np.searchsorted(cols, d.indices)
    hit = (at < len(cols)) & (cols[np.minimum(at, len(cols) - 1)] == d.indices)
    values[at[hit]] -= d.data[hit]
    return result(*clipped(cols, values))


def _inputs_matrices(
    window: ItemWindow, readers: Sequence[ReaderInputs]
) -> tuple[sp.csr_matrix, sp.csr_matrix, list[np.ndarray]]:
    n_terms = window.matrix.shape[1]

    def stack(rows: list[sp.csr_matrix]) -> sp.csr_matrix:
        return sp.csr_matrix(sp.vstack(rows, format="csr") if rows else (0, n_terms), dtype=np.float32)

    pos = window.position
    rated = [np.asarray(sorted(pos[i] for i in r.rated if i in pos), dtype=np.int64) for r in readers]
    if len(readers) == 1:
        return readers[0].base, readers[0].disliked, rated
    return stack([r.base for r in readers]), stack([r.disliked for r in readers]), rated


def reader_queries(window: ItemWindow, readers: Sequence[ReaderInputs]) -> tuple[np.ndarray, np.ndarray]:
    """The final queries q2 (n_readers × n_terms dense float32, rows L2-normalised; a zero row
    for a reader with an empty profile) and their similarities with the window's items
    (n_items × n_readers). See :func:`_query_matrix` (the sparse form used by
    :func:`precompute_all`)."""
    n_terms = window.matrix.shape[1]
    if not readers:
        return np.zeros((0, n_terms), dtype=np.float32), np.zeros((len(window), 0), dtype=np.float32)
    q, sims = _query_matrix(window, *_inputs_matrices(window, readers))
    return q.toarray().astype(np.float32), sims.T


def recency(published: np.ndarray, now: float) -> np.ndarray:
    """``RECENCY_FLOOR + (1 − RECENCY_FLOOR)·2^(−age/half-life)`` per item (age ≥ 0, days)."""
    age_days = np.maximum(now - published, 0.0) / 86400.0
    return (RECENCY_FLOOR + (1 - RECENCY_FLOOR) * np.exp2(-age_days / RECENCY_HALF_LIFE_DAYS)).astype(
        np.float32
    )


@dataclass(frozen=True, slots=True)
class Ranked:
    """One reader's result over a window: ``score`` n_items float32 (``-inf`` where excluded),
    ``keep`` n_items bool (not excluded), ``muted`` n_items bool (hidden from the digest),
    ``authors``/``topics`` rows → matched names."""

    score: np.ndarray
    keep: np.ndarray
    authors: dict[int, list[str]]
    topics: dict[int, list[str]]
    muted: np.ndarray


def _keep_mask(window: ItemWindow, profile: ReaderProfile) -> np.ndarray | None:
    """n_items bool (not excluded by the reader's filters), memoised per filter set; None when
    nothing is excluded."""
    key = (
        "keep",
        tuple(profile.exclude_categories),
        tuple(profile.exclude_sources),
        tuple(profile.include_categories),
        tuple(profile.include_sources),
    )
    if not any(key[1:]):
        return None

    def make() -> np.ndarray:
        keep = np.ones(len(window), dtype=bool)
        for c in profile.exclude_categories:
            keep[window.rows_with_category(c)] = False
        for s in profile.exclude_sources:
            keep[window.rows_with_source(s)] = False
        if profile.include_categories or profile.include_sources:
            inc = np.zeros(len(window), dtype=bool)
            for c in profile.include_categories:
                inc[window.rows_with_category(c)] = True
            for s in profile.include_sources:
                inc[window.rows_with_source(s)] = True
            keep &= inc
        return keep

    return window._memoised(key, make)  # type: ignore[no-any-return]


def _author_rows(window: ItemWindow, followed: Sequence[str]) -> np.ndarray:
    """Rows with at least one followed author (unique, sorted)."""
    if not followed:
        return _EMPTY
    return window._memoised(  # type: ignore[no-any-return]
        ("author_rows", tuple(followed)),
        lambda: np.unique(np.concatenate([window.rows_with_author(a) for a in followed])),
    )


def _topic_boost(window: ItemWindow, topics: Sequence[TopicFilter]) -> np.ndarray | None:
    """``TOPIC_BOOST · min(n matched topics, MAX_TOPIC_BOOSTS)`` per item (memoised per topic
    set); None without topics."""
    if not topics:
        return None

    def make() -> np.ndarray:
        counts = np.zeros(len(window), dtype=np.float32)
        for t in topics:
            counts += window.topic_mask(t)
        return (TOPIC_BOOST * np.minimum(counts, MAX_TOPIC_BOOSTS)).astype(np.float32)

    return window._memoised(("topic_boost", tuple(topics)), make)  # type: ignore[no-any-return]


def _mute_mask(window: ItemWindow, muted: Sequence[str]) -> np.ndarray | None:
    if not muted:
        return None
    mask = window._memoised(("mute", tuple(muted)), lambda: window.mute_mask(muted))
    return mask if mask.any() else None


def _adjust_rows(
    window: ItemWindow, profiles: Sequence[ReaderProfile], score: np.ndarray, rec: np.ndarray
) -> None:
    """Filters, boosts and recency applied in place to ``score`` (n_readers × n_items
    cosine similarities, reader-major): per reader a few vector operations on memoised masks,
    no loop over items. Excluded items get ``-inf``."""
    for j, p in enumerate(profiles):
        row = score[j]
        rows = _author_rows(window, p.followed_authors)
        if len(rows):
            row[rows] += AUTHOR_BOOST
        boost = _topic_boost(window, p.topics)
        if boost is not None:
            row += boost
    score *= rec
    for j, p in enumerate(profiles):
        keep = _keep_mask(window, p)
        if keep is not None:
            score[j, ~keep] = -np.inf


def _matched(window: ItemWindow, profile: ReaderProfile, rows: np.ndarray) -> tuple[list[Any], list[Any]]:
    """For each of ``rows``: the followed authors on it and the slugs of its matched topics
    (lists, in profile order; None when nothing matched)."""
    authors: list[Any] = [None] * len(rows)
    topics: list[Any] = [None] * len(rows)
    for a in profile.followed_authors:
        for i in np.flatnonzero(np.isin(rows, window.rows_with_author(a))).tolist():
            names = authors[i] = authors[i] or []
            if a not in names:
                names.append(a)
    for t in profile.topics:
        for i in np.flatnonzero(window.topic_mask(t)[rows]).tolist():
            topics[i] = topics[i] or []
            topics[i].append(t.slug)
    return authors, topics


def adjust(window: ItemWindow, profile: ReaderProfile, sim: np.ndarray, rec: np.ndarray) -> Ranked:
    """Apply filters, boosts and recency to cosine similarities ``sim`` (n_items); flag muted items."""
    score = np.array(sim, dtype=np.float32).reshape(1, -1)
    _adjust_rows(window, [profile], score, rec)
    keep = _keep_mask(window, profile)
    keep = np.ones(len(window), dtype=bool) if keep is None else keep.copy()
    authors: dict[int, list[str]] = {}
    for a in profile.followed_authors:
        for r in window.rows_with_author(a).tolist():
            names = authors.setdefault(r, [])
            if a not in names:
                names.append(a)
    topics: dict[int, list[str]] = {}
    for t in profile.topics:
        for r in np.flatnonzero(window.topic_mask(t)).tolist():
            topics.setdefault(r, []).append(t.slug)
    mute = _mute_mask(window, profile.muted)
    muted = np.zeros(len(window), dtype=bool) if mute is None else mute.copy()
    return Ranked(score[0], keep, authors, topics, muted)


def rank_window(
    window: ItemWindow, readers: Sequence[ReaderInputs], now: float | None = None
) -> tuple[np.ndarray, list[Ranked]]:
    """Score every reader against every item of ``window``: returns the queries (n_readers ×
    n_terms dense) and one :class:`Ranked` per reader. ``now``: POSIX seconds for recency
    (default: the newest item)."""
    queries, sims = reader_queries(window, readers)
    if now is None:
        now = float(window.published.max()) if len(window) else 0.0
    rec = recency(window.published, now)
    out = [adjust(window, r.profile, sims[:, j], rec) for j, r in enumerate(readers)]
    return queries, out


def _vocabulary(
    window: ItemWindow, terms: np.ndarray
) -> tuple[list[str], np.ndarray, dict[int, tuple[int, ...]]]:
    """The terms as Python strings; per column, is it a bigram; bigram column → the columns of
    its words (−1 when a word is not a term). Memoised on the window (one model per window)."""

    def make() -> tuple[list[str], np.ndarray, dict[int, tuple[int, ...]]]:
        names = [str(t) for t in terms]
        col = {t: i for i, t in enumerate(names)}
        is_bi = np.fromiter((" " in t for t in names), dtype=bool, count=len(names))
        parts = {
            i: tuple(col.get(w, -1) for w in names[i].split(" ")) for i in np.flatnonzero(is_bi).tolist()
        }
        return names, is_bi, parts

    return window._memoised(("vocabulary", len(terms)), make)  # type: ignore[no-any-return]


def _quoted_terms(window: ItemWindow, terms: np.ndarray) -> list[str]:
    """Each term as a JSON string, memoised on the window like :func:`_vocabulary`."""
    import json

    names = _vocabulary(window, terms)[0]
    return window._memoised(("quoted", len(terms)), lambda: [json.dumps(t) for t in names])  # type: ignore[no-any-return]


def _explain(
    window: ItemWindow,
    rows: np.ndarray,
    queries: sp.csr_matrix,
    owners: np.ndarray,
    terms: np.ndarray,
    k: int,
) -> list[list[tuple[int, float]]]:
    """``why`` of item ``rows[i]`` for query row ``owners[i]``: the elementwise products of all
    pairs at once (each item entry looks its query's weight up with one ``searchsorted`` over
    the queries' (row, column) keys, instead of copying a query row per pair), one stable sort,
    then the unigram → bigram folding of :func:`aggregator.rank.explain` on at most 4·k terms
    per pair (skipped when none of them is a bigram). Returns (column, weight) pairs, best
    first, per pair."""
    if len(rows) == 0:
        return []
    names, is_bi, parts = _vocabulary(window, terms)
    items = window.matrix[rows]
    q = sp.csr_matrix(queries, dtype=np.float32)
    q.sum_duplicates()  # canonical: sorted columns within each row, so the keys below ascend
    n_terms = q.shape[1]
    qkeys = np.repeat(np.arange(q.shape[0], dtype=np.int64), np.diff(q.indptr)) * n_terms + q.indices
    ikeys = np.repeat(np.asarray(owners, dtype=np.int64), np.diff(items.indptr)) * n_terms + items.indices
    at = np.minimum(np.searchsorted(qkeys, ikeys), max(len(qkeys) - 1, 0))
    hit = qkeys[at] == ikeys if len(qkeys) else np.zeros(len(ikeys), dtype=bool)
    values = np.where(hit, items.data * q.data[at] if len(qkeys) else 0, 0).astype(np.float32)
    contrib = sp.csr_matrix((values, items.indices, items.indptr), shape=items.shape)
    contrib.sum_duplicates()
    contrib.eliminate_zeros()
    lengths = np.diff(contrib.indptr)
    pair = np.repeat(np.arange(len(rows)), lengths)
    # by pair, then contribution descending: one stable sort of pair + (1 − c)/2 (c ∈ (0, 1], so
    # the fraction stays below 0.5; float64 keeps float32 contributions apart down to ~1e-11)
    order = np.argsort(pair + (1.0 - contrib.data.astype(np.float64)) * 0.5, kind="stable")
    rank_in_pair = np.arange(len(order)) - np.repeat(contrib.indptr[:-1], lengths)
    take = order[rank_in_pair < 4 * k]
    counts = np.minimum(lengths, 4 * k)
    cols = contrib.indices[take].astype(np.int64)
    return _fold(
        np.repeat(np.arange(len(rows)), counts),
        cols,
        contrib.data[take].astype(np.float64),
        is_bi[cols],
        _part_columns(window, terms),
        len(rows),
        k,
    )


def _part_columns(window: ItemWindow, terms: np.ndarray) -> np.ndarray:
    """n_terms × 2 int64: a bigram column's word columns (−1 when not a term; both −1 for a
    unigram). Memoised on the window like :func:`_vocabulary`."""

    def make() -> np.ndarray:
        out = np.full((len(terms), 2), -1, dtype=np.int64)
        for c, words in _vocabulary(window, terms)[2].items():
            out[c, : len(words[:2])] = words[:2]
        return out

    return window._memoised(("parts", len(terms)), make)  # type: ignore[no-any-return]


def _fold(
    pair: np.ndarray,
    cols: np.ndarray,
    weights: np.ndarray,
    is_bi: np.ndarray,
    parts: np.ndarray,
    n_pairs: int,
    k: int,
) -> list[list[tuple[int, float]]]:
    """The unigram → bigram folding of :func:`aggregator.rank.explain` for many (item, query)
    pairs at once, vectorised: entries ``(pair, column, weight, is bigram)`` sorted by pair,
    then weight descending; ``parts``: :func:`_part_columns`. A unigram entry is added to the
    best bigram entry of its pair that contains the word (its host), else it stands alone; per
    pair the ``k`` best of bigrams and lone unigrams are returned, ties in the order bigrams
    first, then entry order (as the Python loop it replaced, which cost 40 µs a pair and was
    the costliest step of precomputing)."""
    n_terms = int(parts.shape[0])
    entry = np.arange(len(cols))
    bi = np.flatnonzero(is_bi)
    host_keys = np.concatenate(
        [pair[bi] * n_terms + parts[cols[bi], 0], pair[bi] * n_terms + parts[cols[bi], 1]]
    )
    host_entry = np.concatenate([bi, bi])
    valid = np.concatenate([parts[cols[bi], 0], parts[cols[bi], 1]]) >= 0
    host_keys, host_entry = host_keys[valid], host_entry[valid]
    order = np.lexsort((host_entry, host_keys))  # the best (first) bigram per (pair, word)
    host_keys, host_entry = host_keys[order], host_entry[order]
    first = np.ones(len(host_keys), dtype=bool)
    first[1:] = host_keys[1:] != host_keys[:-1]
    host_keys, host_entry = host_keys[first], host_entry[first]
    uni = np.flatnonzero(~is_bi)
    keys = pair[uni] * n_terms + cols[uni]
    at = np.minimum(np.searchsorted(host_keys, keys), max(len(host_keys) - 1, 0))
    hosted = (host_keys[at] == keys) if len(host_keys) else np.zeros(len(uni), dtype=bool)
    target = entry.copy()
    target[uni[hosted]] = host_entry[at[hosted]]
    merged = np.bincount(target, weights=weights, minlength=len(cols))
    alone = is_bi.copy()
    alone[uni[~hosted]] = True
    cand = np.flatnonzero(alone)
    cand = cand[np.lexsort((cand, ~is_bi[cand], -merged[cand], pair[cand]))]
    p = pair[cand]
    starts = (
        np.flatnonzero(np.concatenate([[True], p[1:] != p[:-1]])) if len(p) else np.zeros(0, dtype=np.int64)
    )
    rank = np.arange(len(cand)) - np.repeat(starts, np.diff(np.append(starts, len(cand))))
    keep = cand[rank < k]
    out: list[list[tuple[int, float]]] = [[] for _ in range(n_pairs)]
    for i, c, w in zip(pair[keep].tolist(), cols[keep].tolist(), merged[keep].tolist(), strict=True):
        out[i].append((c, w))
    return out


def _why_dicts(best: list[tuple[int, float]], names: list[str]) -> list[dict[str, object]]:
    return [{"term": names[t], "weight": round(w, 4)} for t, w in best]


def _why_json(best: list[tuple[int, float]], quoted: list[str]) -> str:
    """The JSON text of :func:`_why_dicts` (``quoted``: each term as a JSON string)."""
    return "[" + ",".join(f'{{"term":{quoted[t]},"weight":{round(w, 4)!r}}}' for t, w in best) + "]"


def explain_rows(
    window: ItemWindow, rows: Sequence[int], query: np.ndarray, terms: np.ndarray, k: int = WHY_TERMS
) -> list[list[dict[str, object]]]:
    """``why`` of each row: the same result as :func:`aggregator.rank.explain` (top ``k`` terms by
    item[t] × query[t], unigrams folded into contributing bigrams), computed from the CSR
    arrays directly for speed. ``query``: n_terms dense (or 1 × n_terms CSR)."""
    q = sp.csr_matrix(np.asarray(query, dtype=np.float32).reshape(1, -1) if not sp.issparse(query) else query)
    rows_ = np.asarray(rows, dtype=np.int64)
    names = _vocabulary(window, terms)[0]
    return [
        _why_dicts(b, names)
        for b in _explain(window, rows_, q, np.zeros(len(rows_), dtype=np.int64), terms, k)
    ]


def _top_k(score: np.ndarray, top_k: int | None) -> list[np.ndarray]:
    """Per row of ``score`` (n_readers × n_items): the columns with a finite score, best first,
    at most ``top_k``. One ``argpartition`` and one sort over the whole block."""
    n_items = score.shape[1]
    if top_k is not None and top_k < n_items:
        part = np.argpartition(-score, top_k - 1, axis=1)[:, :top_k]
    else:
        part = np.broadcast_to(np.arange(n_items), score.shape)
    vals = np.take_along_axis(score, part, axis=1)
    order = np.argsort(-vals, axis=1, kind="stable")
    best = np.take_along_axis(part, order, axis=1)
    n_finite = np.isfinite(vals).sum(axis=1)
    return [best[j, : n_finite[j]] for j in range(score.shape[0])]


def _kept_rows(
    score: np.ndarray,
    top_k: int | None,
    why_top: int | None,
    day_rows: np.ndarray,
    day_top: int,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per reader (row of ``score``, n_readers × n_items): the rows to store, best first — the
    best ``top_k`` of the window and the best ``day_top`` of ``day_rows`` (the newest day's
    items, so that day's digest is never short) — and which of them get a ``why`` (bool per
    kept row: the window's best ``why_top``, all when None, and the day's best)."""
    best = _top_k(score, top_k)
    day_best = _top_k(score[:, day_rows], day_top) if len(day_rows) and day_top else None
    kept, explained = [], []
    for j, rows in enumerate(best):
        day = day_rows[day_best[j]] if day_best is not None else _EMPTY
        rows = np.union1d(rows, day)
        rows = rows[np.argsort(-score[j, rows], kind="stable")]
        why = np.ones(len(rows), dtype=bool) if why_top is None else np.isin(rows, best[j][:why_top])
        kept.append(rows)
        explained.append(why | np.isin(rows, day))
    return kept, explained


def top_rows(ranked: Ranked, top_k: int | None) -> np.ndarray:
    """Rows of the kept items, best first, at most ``top_k`` (all when None)."""
    kept = np.flatnonzero(ranked.keep)
    if top_k is not None and len(kept) > top_k:
        part = np.argpartition(-ranked.score[kept], top_k - 1)[:top_k]
        kept = kept[part]
    return kept[np.argsort(-ranked.score[kept], kind="stable")]


# --- database -----------------------------------------------------------------------------------

_CACHE: dict[tuple[str, tuple[int | None, int, int], float], ItemWindow] = {}
_CACHE_LOCK = threading.Lock()


def clear_cache() -> None:
    """Forget cached windows (tests; after deleting items)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def _ts(value: dt.datetime | None) -> float:
    return 0.0 if value is None else value.timestamp()


def _sources_of(session: Session, ids: Sequence[int]) -> dict[int, tuple[str, ...]]:
    out: dict[int, list[str]] = {}
    for start in range(0, len(ids), 5000):
        chunk = list(ids[start : start + 5000])
        rows = session.execute(
            sa.select(ItemSource.item_id, Feed.name)
            .join(Feed, Feed.id == ItemSource.feed_id)
            .where(ItemSource.item_id.in_(chunk))
        )
        for iid, name in rows:
            names = out.setdefault(iid, [])
            if name not in names:
                names.append(name)
    return {k: tuple(v) for k, v in out.items()}


def load_items(session: Session, model: TfidfModel, ids: Sequence[int]) -> ItemWindow:
    """A window of the given items (read and transformed now; not cached), in id order."""
    rows: list[Any] = []
    for start in range(0, len(ids), 5000):
        chunk = list(ids[start : start + 5000])
        rows += session.execute(
            sa.select(
                Item.id,
                Item.title,
                Item.summary,
                Item.authors,
                Item.categories,
                Item.published,
                Item.updated_at,
            ).where(Item.id.in_(chunk))
        ).all()
    rows.sort(key=lambda r: r.id)
    sources = _sources_of(session, [r.id for r in rows])
    return ItemWindow.build(
        model,
        [r.id for r in rows],
        [r.title for r in rows],
        [r.summary or "" for r in rows],
        [list(r.authors or []) for r in rows],
        [list(r.categories or []) for r in rows],
        [sources.get(r.id, ()) for r in rows],
        [r.published for r in rows],
        updated=np.asarray([_ts(r.updated_at) for r in rows], dtype=np.float64),
    )


def _updated(w: ItemWindow) -> np.ndarray:
    return w.updated if w.updated is not None else np.zeros(len(w), dtype=np.float64)


def _concat(a: ItemWindow, b: ItemWindow) -> ItemWindow:
    order = np.argsort(np.concatenate([a.ids, b.ids]), kind="stable")
    both = ItemWindow(
        ids=np.concatenate([a.ids, b.ids]),
        matrix=sp.vstack([a.matrix, b.matrix], format="csr"),
        published=np.concatenate([a.published, b.published]),
        texts=a.texts + b.texts,
        authors=a.authors + b.authors,
        categories=a.categories + b.categories,
        sources=a.sources + b.sources,
        model_id=a.model_id,
        updated=np.concatenate([_updated(a), _updated(b)]),
    )
    return both.subset(order)


def window_bounds(
    session: Session, now: dt.datetime | None, window_days: int
) -> tuple[dt.datetime, dt.datetime] | None:
    """(since, newest): the window holds every item published from ``window_days`` days before
    the newest *paper* published at or before ``now`` (any time when ``now`` is None) on;
    ``newest`` is the newest such item of any kind. Papers set the start because arXiv
    announces every weekday, so the newest paper is today's in normal operation, while a blog's
    dates can be anything (on replayed or imported data, posts from months after the papers
    would otherwise push every paper out of the window). Without papers the newest item sets
    it. None when there are no items."""

    def newest_of(*where: Any) -> dt.datetime | None:
        query = sa.select(sa.func.max(Item.published)).where(*where)
        if now is not None:
            query = query.where(Item.published <= now)
        value = session.scalar(query)
        return None if value is None else value if value.tzinfo else value.replace(tzinfo=dt.UTC)

    newest = newest_of()
    if newest is None:
        return None
    anchor = newest_of(Item.kind == "paper") or newest
    return anchor - dt.timedelta(days=window_days), newest


def _window_stamp(session: Session, since: dt.datetime) -> tuple[Any, ...]:
    """A cheap fingerprint of the items published at or after ``since``: count, min/max/sum of
    ids and newest ``updated_at``, in one aggregate query (no rows transferred). An added or
    deleted item changes count/sum/max id; a changed item gets a newer ``updated_at``."""
    row = session.execute(
        sa.select(
            sa.func.count(),
            sa.func.min(Item.id),
            sa.func.max(Item.id),
            sa.func.sum(Item.id),
            sa.func.max(Item.updated_at),
        ).where(Item.published >= since)
    ).one()
    count, lo, hi, total, newest = row
    return (int(count), lo and int(lo), hi and int(hi), total and int(total), _ts(newest))


def item_window(session: Session, model: TfidfModel, since: dt.datetime) -> ItemWindow:
    """The cached window of items published at or after ``since`` for ``model``.

    The cache key is (database URL, (model id, n_terms, n_docs), since). Validity is checked
    with one aggregate query (:func:`_window_stamp`); only when it differs are the stored (id,
    ``updated_at``) pairs read and the window refreshed: unchanged rows are reused, only new or changed items
    are transformed and read; sources are re-read for the window. A window of the same model
    for another ``since`` (a rescore around an older item) is reused the same way. Thread-safe;
    one window per model is kept (older ones are dropped)."""
    url = session.get_bind().engine.url.render_as_string(hide_password=True)
    # model ids restart when a database is recreated: the vocabulary's size and corpus size tell
    # two models with the same id apart, so a cached matrix never meets the wrong vocabulary
    key = (url, (model.model_id, model.n_terms, model.n_docs), since.timestamp())
    stamp = _window_stamp(session, since)
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
        if cached is None:  # same model, other window start: reuse its rows
            cached = next((w for k, w in reversed(_CACHE.items()) if k[:2] == key[:2]), None)
        elif cached.stamp == stamp:
            return cached
    current = session.execute(
        sa.select(Item.id, Item.updated_at).where(Item.published >= since).order_by(Item.id)
    ).all()
    ids = np.asarray([r.id for r in current], dtype=np.int64)
    updated = np.asarray([_ts(r.updated_at) for r in current], dtype=np.float64)
    reuse_rows: np.ndarray = _EMPTY
    if cached is not None and model.model_id is not None and cached.updated is not None:
        pos = cached.position
        old_updated = cached.updated
        keep = [
            pos[i]
            for i, u in zip(ids.tolist(), updated.tolist(), strict=True)
            if i in pos and old_updated[pos[i]] == u
        ]
        reuse_rows = np.asarray(keep, dtype=np.int64)
    if cached is not None and len(reuse_rows) == len(ids) and len(cached) == len(ids):
        window = cached  # same rows (e.g. a stale stamp after a no-op update): keep the memo
    else:
        reused_ids = set(cached.ids[reuse_rows].tolist()) if cached is not None and len(reuse_rows) else set()
        fresh_ids = [i for i in ids.tolist() if i not in reused_ids]
        fresh = load_items(session, model, fresh_ids)
        if reused_ids and cached is not None:
            old = cached.subset(reuse_rows)
            sources = _sources_of(session, old.ids.tolist())
            old.sources = [sources.get(int(i), ()) for i in old.ids]
            window = _concat(old, fresh)
        else:
            window = fresh
    window.stamp = stamp
    with _CACHE_LOCK:
        for k in [k for k in _CACHE if k[:2] == key[:2]]:
            del _CACHE[k]
        if model.model_id is not None:
            _CACHE[key] = window
        # keep only the newest few models' windows
        while len(_CACHE) > 3:
            del _CACHE[next(iter(_CACHE))]
    return window


def _reader_matrices(
    session: Session, model: TfidfModel, window: ItemWindow, profiles: Sequence[ReaderProfile]
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """``base`` and ``disliked`` (see :class:`ReaderInputs`) of all readers as two n_readers ×
    n_terms CSR matrices, in one pass: one ``model.transform`` for every profile text, keyword
    and seed paper (:func:`profile_vectors`); the rated items' rows taken from the window (or
    read and transformed when older) and averaged per reader by a sparse (n_readers × n_rated)
    weight matrix product."""
    from .arxiv import split_arxiv_id
    from .rank import item_text

    n = len(profiles)
    seeds_wanted = {a[0] for p in profiles for s in p.seed_papers if (a := split_arxiv_id(s))}
    seed_texts: dict[str, str] = {}
    if seeds_wanted:
        found = session.execute(
            sa.select(Item.arxiv_id, Item.title, Item.summary, Item.authors).where(
                Item.arxiv_id.in_(sorted(seeds_wanted))
            )
        )
        seed_texts = {r.arxiv_id: item_text(r.title, r.summary, r.authors) for r in found}
    seeds = [
        [seed_texts[a[0]] for s in p.seed_papers if (a := split_arxiv_id(s)) and a[0] in seed_texts]
        for p in profiles
    ]
    pvecs = profile_vectors(model, profiles, seeds)

    wanted = sorted({i for p in profiles for i in (*p.liked_item_ids, *p.disliked_item_ids)})
    pos = window.position
    inside = [i for i in wanted if i in pos]
    parts = [window.matrix[np.asarray([pos[i] for i in inside], dtype=np.int64)]]
    ids = inside
    missing = [i for i in wanted if i not in pos]
    if missing:
        extra = load_items(session, model, missing)
        parts.append(extra.matrix)
        ids = inside + extra.ids.tolist()
    rated = sp.csr_matrix(sp.vstack(parts, format="csr"), dtype=np.float32)
    col = {i: c for c, i in enumerate(ids)}

    def weights(attr: str) -> sp.csr_matrix:
        r_, c_, w_ = [], [], []
        for j, p in enumerate(profiles):
            cols = [col[i] for i in getattr(p, attr) if i in col]
            r_ += [j] * len(cols)
            c_ += cols
            w_ += [1.0 / max(1, len(cols))] * len(cols)
        return sp.csr_matrix(
            (
                np.asarray(w_, dtype=np.float32),
                (np.asarray(r_, dtype=np.int64), np.asarray(c_, dtype=np.int64)),
            ),
            shape=(n, len(ids)),
        )

    disliked = sp.csr_matrix(GAMMA * (weights("disliked_item_ids") @ rated), dtype=np.float32)
    base = ALPHA * pvecs + BETA * (weights("liked_item_ids") @ rated) - disliked
    return sp.csr_matrix(base, dtype=np.float32), disliked


def _compile_all(
    session: Session, model: TfidfModel, window: ItemWindow, profiles: Sequence[ReaderProfile]
) -> list[ReaderInputs]:
    """:class:`ReaderInputs` of each profile (see :func:`_reader_matrices`)."""
    base, disliked = _reader_matrices(session, model, window, profiles)
    return [
        ReaderInputs(p, base[j], disliked[j], frozenset(p.liked_item_ids) | frozenset(p.disliked_item_ids))
        for j, p in enumerate(profiles)
    ]


@dataclass(slots=True)
class PrecomputeTimings:
    """Seconds spent in each phase of the last :func:`precompute_all` call (for benchmarks)."""

    window: float = 0.0
    compile: float = 0.0
    score: float = 0.0
    why: float = 0.0
    write: float = 0.0


LAST_TIMINGS = PrecomputeTimings()
_COLUMNS = ("profile", "item_id", "score", "why", "model_id", "topics", "authors", "muted", "published")
_NO_LIST = "[]"


def precompute_all(
    session: Session,
    model: TfidfModel,
    profiles: Sequence[ReaderProfile],
    item_ids: Sequence[int] | None = None,
    *,
    now: dt.datetime | None = None,
    window_days: int = WINDOW_DAYS,
    top_k: int | None = TOP_K,
    why_top: int | None = WHY_TOP,
    day_top: int = DAY_TOP,
    why_terms: int = WHY_TERMS,
    write: bool = True,
) -> int:
    """Score ``profiles`` (n_readers) against the window's items and store each reader's best
    ``top_k`` in ``scores`` (``profile = score_key``; ``why``, ``topics``, ``authors``,
    ``model_id``). ``item_ids``: score only these items (e.g. the newly fetched ones) — the
    window is still used for the background and pseudo-relevance feedback; default: every item
    published from ``window_days`` days before the newest paper on (see :func:`window_bounds`).

    All readers' query parts are built in one pass (:func:`_reader_matrices`); then, per
    ``_READER_CHUNK`` readers, two products (n_items × n_terms CSR) @ (n_terms × chunk dense)
    give a dense chunk × n_items block (Rocchio, then PRF: :func:`_query_matrix`), boosts and
    filters are applied per reader with vector operations, and one ``argpartition`` over the
    block picks each reader's top-K, plus the best ``day_top`` of the newest day (the 24 h up
    to the newest paper). ``why`` is computed for each reader's best ``why_top`` rows (None:
    all; others get ``[]``) and those newest-day rows, all pairs of a chunk at once. Before
    writing, the readers' rows for the scored items are deleted in one statement per 500
    readers (so excluded and dropped items disappear); rows are written with one executemany
    (SQLite) or COPY (PostgreSQL). ``write=False`` scores without touching the database
    (benchmarks). Returns rows written (or that would be written). The caller commits."""
    import json
    import time

    timings = PrecomputeTimings()
    profiles = list({p.score_key: p for p in profiles}.values())  # one result per reader
    if not profiles:
        return 0
    t0 = time.perf_counter()
    bounds = window_bounds(session, now, window_days)
    if bounds is None:
        return 0
    since, newest = bounds
    window = item_window(session, model, since)
    restrict: np.ndarray | None = None
    if item_ids is not None:
        wanted = {int(i) for i in item_ids}
        outside = sorted(i for i in wanted if i not in window.position)
        if outside:  # older items named explicitly: score them too, in a window of their own
            window = _concat(window, load_items(session, model, outside))
        pos = window.position
        restrict = np.ones(len(window), dtype=bool)
        restrict[[pos[i] for i in wanted if i in pos]] = False  # True: not scored
    rec = recency(window.published, (now or newest).timestamp())
    # the newest day (the 24 h up to the newest paper, which set the window's start)
    anchor = (since + dt.timedelta(days=window_days)).timestamp()
    day_rows = np.flatnonzero((window.published > anchor - 86400) & (window.published <= anchor))
    timings.window = time.perf_counter() - t0

    t1 = time.perf_counter()
    base, disliked = _reader_matrices(session, model, window, profiles)
    pos = window.position
    rated = [
        np.asarray(
            sorted({pos[i] for i in (*p.liked_item_ids, *p.disliked_item_ids) if i in pos}), dtype=np.int64
        )
        for p in profiles
    ]
    timings.compile = time.perf_counter() - t1

    rows_out: list[tuple[Any, ...]] = []
    ids = window.ids.tolist()
    stamps = _Stamps(window.published, session.get_bind().dialect.name)
    encoded: dict[tuple[str, ...], str] = {}

    def encode(names: list[str]) -> str:  # topic slugs / author lists repeat: encode each once
        key = tuple(names)
        text = encoded.get(key)
        if text is None:
            text = encoded[key] = json.dumps(names)
        return text

    for start in range(0, len(profiles), _READER_CHUNK):
        chunk = profiles[start : start + _READER_CHUNK]
        sl = slice(start, start + len(chunk))
        t2 = time.perf_counter()
        queries, score = _query_matrix(window, base[sl], disliked[sl], rated[sl])
        _adjust_rows(window, chunk, score, rec)
        if restrict is not None:
            score[:, restrict] = -np.inf
        kept, explained = _kept_rows(score, top_k, why_top, day_rows, day_top)
        t3 = time.perf_counter()
        timings.score += t3 - t2
        why_rows = np.concatenate([r[m] for r, m in zip(kept, explained, strict=True)]) if kept else _EMPTY
        owners = np.repeat(np.arange(len(chunk)), [int(m.sum()) for m in explained])
        quoted = _quoted_terms(window, model.terms)
        whys = iter(
            [
                _why_json(b, quoted)
                for b in _explain(window, why_rows, queries, owners, model.terms, why_terms)
            ]
        )
        for j, (prof, rows) in enumerate(zip(chunk, kept, strict=True)):
            key = prof.score_key
            vals = score[j, rows].tolist()
            authors, topics = _matched(window, prof, rows)
            mute = _mute_mask(window, prof.muted)
            muted = [False] * len(rows) if mute is None else mute[rows].tolist()
            for i, (r, has_why) in enumerate(zip(rows.tolist(), explained[j].tolist(), strict=True)):
                rows_out.append(
                    (
                        key,
                        ids[r],
                        vals[i],
                        next(whys) if has_why else _NO_LIST,
                        model.model_id,
                        _NO_LIST if topics[i] is None else encode(topics[i]),
                        _NO_LIST if authors[i] is None else encode(authors[i]),
                        muted[i],
                        stamps[r],
                    )
                )
        timings.why += time.perf_counter() - t3
    if write:
        t4 = time.perf_counter()
        _write(
            session, [p.score_key for p in profiles], rows_out, since if item_ids is None else None, item_ids
        )
        timings.write = time.perf_counter() - t4
    for name in timings.__slots__:  # type: ignore[attr-defined]
        setattr(LAST_TIMINGS, name, getattr(timings, name))
    return len(rows_out)


class _Stamps(dict[int, Any]):
    """Window row → ``scores.published`` as the DBAPI takes it (:func:`dbapi_datetime`),
    converted on first use. The float64 POSIX seconds of the window round-trip to the exact
    microsecond."""

    def __init__(self, published: np.ndarray, dialect: str) -> None:
        super().__init__()
        self.published, self.dialect = published, dialect

    def __missing__(self, row: int) -> Any:
        value = dt.datetime.fromtimestamp(float(self.published[row]), dt.UTC)
        self[row] = out = dbapi_datetime(self.dialect, value)
        return out


_UPSERT_SET = ", ".join(f"{c} = excluded.{c}" for c in _COLUMNS[2:])


def _write(
    session: Session,
    keys: Sequence[str],
    rows: list[tuple[Any, ...]],
    since: dt.datetime | None,
    item_ids: Sequence[int] | None,
) -> None:
    """Delete the readers' rows for the scored items, then upsert ``rows`` (tuples in
    ``_COLUMNS`` order, JSON columns already encoded): one DBAPI ``executemany`` on SQLite, a
    COPY into a temporary table and one ``INSERT … SELECT … ON CONFLICT`` on PostgreSQL. The
    upsert (not a plain insert) keeps a concurrent rescore of the same reader from failing."""
    conn = session.connection()
    for start in range(0, len(keys), 500):
        chunk = list(keys[start : start + 500])
        delete = sa.delete(Score).where(Score.profile.in_(chunk))
        if item_ids is not None:
            ids = list(dict.fromkeys(int(i) for i in item_ids))
            for s in range(0, len(ids), 5000):
                conn.execute(delete.where(Score.item_id.in_(ids[s : s + 5000])))
        else:
            assert since is not None
            # the readers' rows of the window: one range of ix_scores_profile_published each
            conn.execute(delete.where(Score.published >= since))
    if not rows:
        return
    cols = ", ".join(_COLUMNS)
    if conn.dialect.name == "postgresql":
        cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
        try:
            cur.execute(
                "CREATE TEMP TABLE IF NOT EXISTS scores_incoming ON COMMIT DELETE ROWS AS "
                f"SELECT {cols} FROM scores WITH NO DATA"
            )
            cur.execute("TRUNCATE scores_incoming")
            with cur.copy(f"COPY scores_incoming ({cols}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            cur.execute(
                f"INSERT INTO scores ({cols}) SELECT {cols} FROM scores_incoming "
                f"ON CONFLICT (profile, item_id) DO UPDATE SET {_UPSERT_SET}"
            )
            cur.execute("TRUNCATE scores_incoming")
        finally:
            cur.close()
        return
    marks = ", ".join("?" for _ in _COLUMNS)
    sql = (
        f"INSERT INTO scores ({cols}) VALUES ({marks}) "
        f"ON CONFLICT (profile, item_id) DO UPDATE SET {_UPSERT_SET}"
    )
    conn.exec_driver_sql(sql, rows)


def precompute(
    session: Session,
    model: TfidfModel,
    profile: ReaderProfile,
    item_ids: Sequence[int] | None = None,
    *,
    now: dt.datetime | None = None,
    window_days: int = WINDOW_DAYS,
    top_k: int | None = TOP_K,
    why_top: int | None = None,
    day_top: int = DAY_TOP,
) -> int:
    """Score one reader (see :func:`precompute_all`; here ``why`` is filled for every row
    written). Used after a reader changes their profile or gives feedback. Returns rows
    written; the caller commits."""
    return precompute_all(
        session,
        model,
        [profile],
        item_ids,
        now=now,
        window_days=window_days,
        top_k=top_k,
        why_top=why_top,
        day_top=day_top,
    )


# --- profiles from the tables ------------------------------------------------------------------


def _strs(values: Any) -> tuple[str, ...]:
    return tuple(str(v) for v in (values or ()) if str(v).strip())


def load_profiles(session: Session, reader_ids: Sequence[int] | None = None) -> list[ReaderProfile]:
    """:class:`ReaderProfile` of the given readers (all readers when None), in reader id
    order, from ``readers``, ``profiles``, ``subscriptions``/``topics`` and ``feedback``
    (value > 0 → liked, < 0 → disliked). A reader without a profile row gets an empty one;
    unknown ids are skipped. Four queries in all."""
    query = sa.select(Reader.id).order_by(Reader.id)
    if reader_ids is not None:
        query = query.where(Reader.id.in_(list(reader_ids)))
    ids = list(session.scalars(query))
    if not ids:
        return []
    prof = {p.reader_id: p for p in session.scalars(sa.select(Profile).where(Profile.reader_id.in_(ids)))}
    topics: dict[int, list[TopicFilter]] = {}
    for reader_id, t in session.execute(
        sa.select(Subscription.reader_id, Topic)
        .join(Topic, Topic.id == Subscription.topic_id)
        .where(Subscription.reader_id.in_(ids))
        .order_by(Subscription.reader_id, Topic.slug)
    ):
        topics.setdefault(reader_id, []).append(topic_filter(t))
    liked: dict[int, list[int]] = {}
    disliked: dict[int, list[int]] = {}
    for reader_id, item_id, value in session.execute(
        sa.select(Feedback.reader_id, Feedback.item_id, Feedback.value)
        .where(Feedback.reader_id.in_(ids), Feedback.value != 0)
        .order_by(Feedback.reader_id, Feedback.item_id)
    ):
        (liked if value > 0 else disliked).setdefault(reader_id, []).append(item_id)
    out = []
    for rid in ids:
        p = prof.get(rid)
        out.append(
            ReaderProfile(
                reader_id=rid,
                interests=(p.interests or "") if p else "",
                keywords=_strs(p.keywords) if p else (),
                muted=_strs(p.muted) if p else (),
                followed_authors=_strs(p.followed_authors) if p else (),
                include_categories=_strs(p.include_categories) if p else (),
                exclude_categories=_strs(p.exclude_categories) if p else (),
                include_sources=_strs(p.include_sources) if p else (),
                exclude_sources=_strs(p.exclude_sources) if p else (),
                seed_papers=_strs(p.seed_papers) if p else (),
                liked_item_ids=tuple(liked.get(rid, ())),
                disliked_item_ids=tuple(disliked.get(rid, ())),
                topics=tuple(topics.get(rid, ())),
            )
        )
    return out


def load_profile(session: Session, reader_id: int) -> ReaderProfile:
    """The :class:`ReaderProfile` of one reader. Raises ``LookupError`` for an unknown reader."""
    found = load_profiles(session, [reader_id])
    if not found:
        raise LookupError(f"no reader with id {reader_id}")
    return found[0]


def topic_filter(topic: Topic) -> TopicFilter:
    """The typed record of a ``topics`` row."""
    return TopicFilter(
        slug=topic.slug,
        name=topic.name,
        phrases=_strs(topic.phrases),
        categories=_strs(topic.categories),
        authors=_strs(topic.authors),
        sources=_strs(topic.sources),
        negative=_strs(topic.negative),
        match="all" if topic.match == "all" else "any",
    )
