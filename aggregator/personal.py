"""Per-reader ranking: score the recent window of items for each reader and store the result in
``scores`` under the reader's key (``reader:<id>``), so the request path only reads.

The score of item *d* for a reader is::

    q1   = clip(α·p + β·mean(liked) − γ·mean(disliked) − b·background, 0)     (Rocchio 1971)
    q2   = clip(q1/|q1| + λ·prf/|prf| − γ·mean(disliked) − b·background, 0)    (pseudo-relevance feedback)
    sim  = cos(d, q2)                                                           in [0, 1]
    score = (sim + AUTHOR_BOOST·[followed author on d] + TOPIC_BOOST·n_topics(d)) · recency(d)
            · (MUTE_FACTOR if d is muted)

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
  in its title/abstract, multiplies the score by ``MUTE_FACTOR`` = 0.1 (hard demotion: the item
  stays, below everything unmuted).
* Filters: an item with an excluded category or source is **excluded**; when include lists are
  given an item must carry one of the included categories **or** come from one of the included
  sources (union). Excluded items get no ``scores`` row (an old one is deleted).

Rows written: each call keeps the reader's best ``top_k`` (default 200) of the scored items
and deletes the reader's other rows among those items. **A reader's digest must therefore
inner-join ``scores`` on ``profile = score_key``**: an item without a row is excluded or below
the reader's top-K. ``why`` is filled for the best ``why_top`` rows (the rest get ``[]``).

Speed: the window's item matrix (n_items × n_terms, CSR float32), ids, publication times,
authors, categories and sources are cached per process and model (:func:`item_window`),
refreshed incrementally when items are added or changed. :func:`precompute_all` scores all
readers with two sparse products (n_items × n_terms) @ (n_terms × n_readers).

Imports: this module loads numpy/scipy only; scikit-learn is imported by :mod:`aggregator.rank`
when a model is loaded, not by importing this module (so ``matches_topic``/``load_profile`` stay
light for the API).
"""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
import sqlalchemy as sa
from sqlalchemy.orm import Session

from .records import ReaderProfile, TopicFilter
from .store.db import insert
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
MUTE_FACTOR = 0.1
RECENCY_HALF_LIFE_DAYS = 7.0
RECENCY_FLOOR = 0.75
TOP_K = 200
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
            return hit

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
    m = sp.csr_matrix(m, dtype=np.float32)
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sp.csr_matrix(sp.diags(1.0 / norms).astype(np.float32) @ m, dtype=np.float32)


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


def _l2_dense(q: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(q, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    q /= norms
    return q


def _sparse_rows_dense(rows: Sequence[sp.csr_matrix], n_terms: int) -> np.ndarray:
    out = np.zeros((len(rows), n_terms), dtype=np.float32)
    for j, r in enumerate(rows):
        r = sp.csr_matrix(r)
        out[j, r.indices] = r.data
    return out


def similarities(window: ItemWindow, queries: np.ndarray) -> np.ndarray:
    """Cosine similarity of every item with every query: n_items × n_readers float32.
    ``queries``: n_readers × n_terms dense, rows L2-normalised. One reader uses the window's
    CSC matrix restricted to the query's nonzero terms; several use one CSR × dense product."""
    if queries.shape[0] == 1:
        q = queries[0]
        cols = np.flatnonzero(q)
        csc = window._memoised("csc", lambda: window.matrix.tocsc())
        return np.asarray(csc[:, cols] @ q[cols], dtype=np.float32).reshape(-1, 1)
    return np.asarray(window.matrix @ queries.T, dtype=np.float32)


def reader_queries(window: ItemWindow, readers: Sequence[ReaderInputs]) -> tuple[np.ndarray, np.ndarray]:
    """The final queries q2 (n_readers × n_terms dense float32, rows L2-normalised; a zero row
    for a reader with an empty profile) and their similarities with the window's items
    (n_items × n_readers): Rocchio and background subtraction, then one round of
    pseudo-relevance feedback over the whole window."""
    n_terms = window.matrix.shape[1]
    if not readers:
        return np.zeros((0, n_terms), dtype=np.float32), np.zeros((len(window), 0), dtype=np.float32)
    bg = BACKGROUND * window.background
    q1 = _sparse_rows_dense([r.base for r in readers], n_terms)
    q1 -= bg
    np.maximum(q1, 0, out=q1)
    _l2_dense(q1)
    if len(window) == 0:
        return q1, np.zeros((0, len(readers)), dtype=np.float32)
    first = similarities(window, q1)
    if PRF_DOCS <= 0:
        return q1, first
    m = min(PRF_DOCS, len(window))
    sel_rows, sel_cols = [], []
    nonempty = q1.any(axis=1)
    for j, r in enumerate(readers):
        if not nonempty[j]:
            continue  # empty profile: nothing to expand
        col = first[:, j]
        if r.rated:
            col = col.copy()
            for iid in r.rated:
                row = window.position.get(iid)
                if row is not None:
                    col[row] = -np.inf
        top = np.argpartition(-col, m - 1)[:m] if m < len(col) else np.arange(len(col))
        sel_rows.append(np.full(len(top), j))
        sel_cols.append(top)
    if not sel_rows:
        return q1, first
    rows_, cols_ = np.concatenate(sel_rows), np.concatenate(sel_cols)
    sel = sp.csr_matrix(
        (np.ones(len(rows_), dtype=np.float32), (rows_, cols_)), shape=(len(readers), len(window))
    )
    q2 = _l2_dense((sel @ window.matrix).toarray().astype(np.float32))
    q2 *= PRF_WEIGHT
    q2 += q1
    q2 -= _sparse_rows_dense([r.disliked for r in readers], n_terms)
    q2 -= bg
    np.maximum(q2, 0, out=q2)
    q2[~nonempty] = 0
    _l2_dense(q2)
    return q2, similarities(window, q2)


def recency(published: np.ndarray, now: float) -> np.ndarray:
    """``RECENCY_FLOOR + (1 − RECENCY_FLOOR)·2^(−age/half-life)`` per item (age ≥ 0, days)."""
    age_days = np.maximum(now - published, 0.0) / 86400.0
    return (RECENCY_FLOOR + (1 - RECENCY_FLOOR) * np.exp2(-age_days / RECENCY_HALF_LIFE_DAYS)).astype(
        np.float32
    )


@dataclass(frozen=True, slots=True)
class Ranked:
    """One reader's result over a window: ``score`` n_items float32 (``-inf`` where excluded),
    ``keep`` n_items bool (not excluded), ``author_rows``/``topic_rows`` rows → matched names."""

    score: np.ndarray
    keep: np.ndarray
    authors: dict[int, list[str]]
    topics: dict[int, list[str]]


def adjust(window: ItemWindow, profile: ReaderProfile, sim: np.ndarray, rec: np.ndarray) -> Ranked:
    """Apply filters, boosts, muting and recency to cosine similarities ``sim`` (n_items)."""
    n = len(window)
    score = sim.astype(np.float32, copy=True)
    keep = np.ones(n, dtype=bool)
    for c in profile.exclude_categories:
        keep[window.rows_with_category(c)] = False
    for s in profile.exclude_sources:
        keep[window.rows_with_source(s)] = False
    if profile.include_categories or profile.include_sources:
        inc = np.zeros(n, dtype=bool)
        for c in profile.include_categories:
            inc[window.rows_with_category(c)] = True
        for s in profile.include_sources:
            inc[window.rows_with_source(s)] = True
        keep &= inc
    authors: dict[int, list[str]] = {}
    for a in profile.followed_authors:
        for r in window.rows_with_author(a).tolist():
            names = authors.setdefault(r, [])
            if a not in names:
                names.append(a)
    if authors:
        score[np.fromiter(authors, dtype=np.int64)] += AUTHOR_BOOST
    topics: dict[int, list[str]] = {}
    if profile.topics:
        counts = np.zeros(n, dtype=np.float32)
        for t in profile.topics:
            mask = window.topic_mask(t)
            counts += mask
            for r in np.flatnonzero(mask).tolist():
                topics.setdefault(r, []).append(t.slug)
        score += TOPIC_BOOST * np.minimum(counts, MAX_TOPIC_BOOSTS)
    if profile.muted:
        score[window.mute_mask(profile.muted)] *= MUTE_FACTOR
    score *= rec
    score[~keep] = -np.inf
    return Ranked(score, keep, authors, topics)


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


def explain_rows(
    window: ItemWindow, rows: Sequence[int], query: np.ndarray, terms: np.ndarray, k: int = WHY_TERMS
) -> list[list[dict[str, object]]]:
    """``why`` of each row: the same result as :func:`aggregator.rank.explain` (top ``k`` terms by
    item[t] × query[t], unigrams folded into contributing bigrams), computed from the CSR
    arrays directly for speed. ``query``: n_terms dense."""
    q = query
    m = window.matrix
    out: list[list[dict[str, object]]] = []
    for r in rows:
        lo, hi = m.indptr[r], m.indptr[r + 1]
        idx = m.indices[lo:hi]
        contrib = m.data[lo:hi] * q[idx]
        nz = np.flatnonzero(contrib > 0)
        if len(nz) == 0:
            out.append([])
            continue
        order = nz[np.argsort(-contrib[nz], kind="stable")[: 4 * k]]
        ranked = [(str(terms[idx[i]]), float(contrib[i])) for i in order]
        merged: dict[str, float] = {t: w for t, w in ranked if " " in t}
        bigrams = list(merged)
        for term, weight in ranked:
            if " " in term:
                continue
            host = next((b for b in bigrams if term in b.split(" ")), None)
            merged[host or term] = merged.get(host or term, 0.0) + weight
        best = sorted(merged.items(), key=lambda tw: -tw[1])[:k]
        out.append([{"term": t, "weight": round(w, 4)} for t, w in best])
    return out


def top_rows(ranked: Ranked, top_k: int | None) -> np.ndarray:
    """Rows of the kept items, best first, at most ``top_k`` (all when None)."""
    kept = np.flatnonzero(ranked.keep)
    if top_k is not None and len(kept) > top_k:
        part = np.argpartition(-ranked.score[kept], top_k - 1)[:top_k]
        kept = kept[part]
    return kept[np.argsort(-ranked.score[kept], kind="stable")]


# --- database -----------------------------------------------------------------------------------

_CACHE: dict[tuple[str, int | None, float], ItemWindow] = {}
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


def _load_items(session: Session, model: TfidfModel, ids: Sequence[int]) -> ItemWindow:
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
    """(since, newest): the window is the ``window_days`` days before the newest item
    published at or before ``now`` (any item when ``now`` is None). None when no items."""
    query = sa.select(sa.func.max(Item.published))
    if now is not None:
        query = query.where(Item.published <= now)
    newest = session.scalar(query)
    if newest is None:
        return None
    if newest.tzinfo is None:
        newest = newest.replace(tzinfo=dt.UTC)
    return newest - dt.timedelta(days=window_days), newest


def item_window(session: Session, model: TfidfModel, since: dt.datetime) -> ItemWindow:
    """The cached window of items published at or after ``since`` for ``model``.

    The cache key is (database URL, model id, since); the cached window is refreshed when the stored items
    differ (ids or ``updated_at``): unchanged rows are reused, only new or changed items are
    transformed and read; sources are re-read for the window. Thread-safe; one window per
    model is kept (older ones are dropped)."""
    current = session.execute(
        sa.select(Item.id, Item.updated_at).where(Item.published >= since).order_by(Item.id)
    ).all()
    ids = np.asarray([r.id for r in current], dtype=np.int64)
    updated = np.asarray([_ts(r.updated_at) for r in current], dtype=np.float64)
    key = (session.get_bind().url.render_as_string(hide_password=True), model.model_id, since.timestamp())
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
    if (
        cached is not None
        and cached.updated is not None
        and np.array_equal(cached.ids, ids)
        and np.array_equal(cached.updated, updated)
    ):
        return cached
    reuse_rows: np.ndarray = _EMPTY
    if cached is not None and model.model_id is not None:
        pos = cached.position
        keep = [
            pos[i]
            for i, u in zip(ids.tolist(), updated.tolist(), strict=True)
            if i in pos and cached.updated is not None and cached.updated[pos[i]] == u
        ]
        reuse_rows = np.asarray(keep, dtype=np.int64)
    reused_ids = set(cached.ids[reuse_rows].tolist()) if cached is not None and len(reuse_rows) else set()
    fresh_ids = [i for i in ids.tolist() if i not in reused_ids]
    fresh = _load_items(session, model, fresh_ids)
    if reused_ids and cached is not None:
        old = cached.subset(reuse_rows)
        sources = _sources_of(session, old.ids.tolist())
        old.sources = [sources.get(int(i), ()) for i in old.ids]
        window = _concat(old, fresh)
    else:
        window = fresh
    with _CACHE_LOCK:
        for k in [k for k in _CACHE if k[:2] == key[:2]]:
            del _CACHE[k]
        if model.model_id is not None:
            _CACHE[key] = window
        # keep only the newest few models' windows
        while len(_CACHE) > 3:
            del _CACHE[next(iter(_CACHE))]
    return window


def _rated_and_seed_vectors(
    session: Session, model: TfidfModel, window: ItemWindow, profiles: Sequence[ReaderProfile]
) -> tuple[dict[int, sp.csr_matrix], dict[str, str]]:
    """TF-IDF rows of every rated item (from the window, or read and transformed) and seed texts
    by bare arXiv id."""
    from .arxiv import split_arxiv_id
    from .rank import item_text

    wanted = {i for p in profiles for i in (*p.liked_item_ids, *p.disliked_item_ids)}
    pos = window.position
    vectors: dict[int, sp.csr_matrix] = {i: window.matrix[pos[i]] for i in wanted if i in pos}
    missing = [i for i in wanted if i not in pos]
    if missing:
        extra = _load_items(session, model, missing)
        for r, iid in enumerate(extra.ids.tolist()):
            vectors[iid] = extra.matrix[r]
    seeds = {p[0] for prof in profiles for s in prof.seed_papers if (p := split_arxiv_id(s))}
    seed_texts: dict[str, str] = {}
    if seeds:
        rows = session.execute(
            sa.select(Item.arxiv_id, Item.title, Item.summary, Item.authors).where(
                Item.arxiv_id.in_(sorted(seeds))
            )
        )
        seed_texts = {r.arxiv_id: item_text(r.title, r.summary, r.authors) for r in rows}
    return vectors, seed_texts


def _compile_all(
    session: Session, model: TfidfModel, window: ItemWindow, profiles: Sequence[ReaderProfile]
) -> list[ReaderInputs]:
    from .arxiv import split_arxiv_id

    vectors, seed_texts = _rated_and_seed_vectors(session, model, window, profiles)
    empty = sp.csr_matrix((0, model.n_terms), dtype=np.float32)

    def stack(ids: Iterable[int]) -> sp.csr_matrix:
        rows = [vectors[i] for i in ids if i in vectors]
        return sp.vstack(rows, format="csr") if rows else empty

    seeds = [
        [seed_texts[a[0]] for s in p.seed_papers if (a := split_arxiv_id(s)) and a[0] in seed_texts]
        for p in profiles
    ]
    pvecs = profile_vectors(model, profiles, seeds)
    return [
        compile_reader(model, p, stack(p.liked_item_ids), stack(p.disliked_item_ids), profile_row=pvecs[j])
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
    why_terms: int = WHY_TERMS,
    write: bool = True,
) -> int:
    """Score ``profiles`` (n_readers) against the window's items and store each reader's best
    ``top_k`` in ``scores`` (``profile = score_key``; ``why``, ``topics``, ``authors``,
    ``model_id``). ``item_ids``: score only these items (e.g. the newly fetched ones) — the
    window is still used for the background and pseudo-relevance feedback; default: every item
    published in the ``window_days`` days before the newest item (at or before ``now``).

    Readers are processed ``_READER_CHUNK`` at a time: one sparse product (n_items × n_terms)
    @ (n_terms × chunk) per pass, two passes (Rocchio, then PRF). ``why`` is computed for each
    reader's best ``why_top`` rows (None: all), the others get ``[]``. Before writing, the
    readers' rows for the scored items are deleted (so excluded and dropped items disappear).
    ``write=False`` scores without touching the database (benchmarks). Returns rows written
    (or that would be written). The caller commits."""
    import time

    timings = PrecomputeTimings()
    if not profiles:
        return 0
    t0 = time.perf_counter()
    bounds = window_bounds(session, now, window_days)
    if bounds is None:
        return 0
    since, newest = bounds
    window = item_window(session, model, since)
    if item_ids is not None:
        pos = window.position
        wanted = set(int(i) for i in item_ids)
        scored_rows = np.asarray(sorted(pos[i] for i in wanted if i in pos), dtype=np.int64)
        outside = sorted(i for i in wanted if i not in pos)
        if outside:  # older items named explicitly: score them too, in a window of their own
            window = _concat(window, _load_items(session, model, outside))
            pos = window.position
            scored_rows = np.asarray(sorted(pos[i] for i in wanted if i in pos), dtype=np.int64)
    else:
        scored_rows = None
    ref = (now or newest).timestamp()
    timings.window = time.perf_counter() - t0

    values: list[dict[str, Any]] = []
    keys = [p.score_key for p in profiles]
    for start in range(0, len(profiles), _READER_CHUNK):
        chunk = profiles[start : start + _READER_CHUNK]
        t1 = time.perf_counter()
        readers = _compile_all(session, model, window, chunk)
        t2 = time.perf_counter()
        timings.compile += t2 - t1
        queries, results = rank_window(window, readers, ref)
        t3 = time.perf_counter()
        timings.score += t3 - t2
        for j, (prof, res) in enumerate(zip(chunk, results, strict=True)):
            if scored_rows is not None:
                keep = np.zeros(len(window), dtype=bool)
                keep[scored_rows] = res.keep[scored_rows]
                res = Ranked(res.score, keep, res.authors, res.topics)
            rows = top_rows(res, top_k)
            n_why = len(rows) if why_top is None else min(why_top, len(rows))
            whys = explain_rows(window, rows[:n_why], queries[j], model.terms, why_terms)
            key = prof.score_key
            for i, r in enumerate(rows.tolist()):
                values.append(
                    {
                        "profile": key,
                        "item_id": int(window.ids[r]),
                        "score": float(res.score[r]),
                        "why": whys[i] if i < n_why else [],
                        "model_id": model.model_id,
                        "topics": res.topics.get(r, []),
                        "authors": res.authors.get(r, []),
                    }
                )
        timings.why += time.perf_counter() - t3
    if write:
        t4 = time.perf_counter()
        _write(session, keys, values, since if item_ids is None else None, item_ids)
        timings.write = time.perf_counter() - t4
    for name in timings.__slots__:  # type: ignore[attr-defined]
        setattr(LAST_TIMINGS, name, getattr(timings, name))
    return len(values)


def _write(
    session: Session,
    keys: Sequence[str],
    values: list[dict[str, Any]],
    since: dt.datetime | None,
    item_ids: Sequence[int] | None,
) -> None:
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
            conn.execute(delete.where(Score.item_id.in_(sa.select(Item.id).where(Item.published >= since))))
    stmt = insert(conn, Score.__table__)
    stmt = stmt.on_conflict_do_update(
        index_elements=["profile", "item_id"],
        set_={
            "score": stmt.excluded.score,
            "why": stmt.excluded.why,
            "model_id": stmt.excluded.model_id,
            "topics": stmt.excluded.topics,
            "authors": stmt.excluded.authors,
        },
    )
    for start in range(0, len(values), 20_000):
        conn.execute(stmt, values[start : start + 20_000])


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
