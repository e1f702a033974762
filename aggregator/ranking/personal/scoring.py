"""Scoring (pure): Rocchio queries, pseudo-relevance feedback, boosts, filters, recency, top-K."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp

from aggregator.ranking import semantic
from aggregator.ranking.personal.item_matrix import _EMPTY, ItemWindow
from aggregator.ranking.personal.prf_guard import bound_prf_one, bound_prf_rows
from aggregator.ranking.personal.sparse_rows import _clip_rows, _l2_rows, _row_mean, _rows_sum, _unit
from aggregator.ranking.personal.votes import VoteEffect, apply_votes, sink_disliked
from aggregator.types import ReaderProfile, TopicFilter

if TYPE_CHECKING:  # rank imports scikit-learn; only needed at run time when a model exists
    from aggregator.ranking.tfidf import TfidfModel

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


@dataclass(frozen=True, slots=True)
class ReaderInputs:
    """A reader's profile compiled against a model: ``base`` is α·p + β·mean(liked) −
    γ·mean(disliked) (1 × n_terms CSR, before clipping), ``disliked`` γ·mean(disliked) (1 ×
    n_terms CSR, may be empty), ``rated`` the item ids the reader rated (left out of PRF)."""

    profile: ReaderProfile
    base: sp.csr_matrix
    disliked: sp.csr_matrix
    rated: frozenset[int]


def profile_vectors(
    model: TfidfModel, profiles: Sequence[ReaderProfile], seed_texts: Sequence[Sequence[str]]
) -> sp.csr_matrix:
    """:func:`aggregator.ranking.tfidf.profile_vector` of many readers (n_readers × n_terms CSR, rows
    L2-normalised or zero) with a single ``model.transform`` call: free text, keywords (weighted
    ``rank.KEYWORD_WEIGHT`` / sqrt(n keywords)), mean of seed papers."""
    from aggregator.ranking.tfidf import KEYWORD_WEIGHT

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
    reader's :func:`aggregator.ranking.tfidf.profile_vector` when already computed (1 × n_terms)."""
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
    one CSC × dense product (n_items × n_terms) @ (n_terms × n_readers): term by term, each
    term's row of the queries is read once for all its items (1.7× faster than the CSR product,
    and the same float32 sums in the same order: over the item's terms, ascending)."""
    n = queries.shape[0]
    csc = window._memoised("csc", lambda: window.matrix.tocsc())
    if n == 1:
        q = sp.csr_matrix(queries)
        q.sum_duplicates()
        return np.asarray(csc[:, q.indices] @ q.data, dtype=np.float32).reshape(1, -1)
    dense = sp.csr_matrix(queries.T, dtype=np.float32).toarray()  # n_terms × n_readers, C order
    return np.ascontiguousarray(np.asarray(csc @ dense, dtype=np.float32).T)


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
        return q1, semantic.add_semantic(first, window.semantic, q1, window.basis)
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
    prf = bound_prf_rows(q1, _l2_rows(sel @ window.matrix), PRF_WEIGHT)  # drift guard
    q2 = q1 + prf - sp.csr_matrix(disliked, dtype=np.float32)
    q2 = _clip_rows(q2, bg)
    if not nonempty.all():  # an empty profile is not expanded: its query stays empty
        q2 = sp.csr_matrix(sp.diags(nonempty.astype(np.float32)) @ q2)
        q2.eliminate_zeros()
    return q2, semantic.add_semantic(_similarities_t(window, q2), window.semantic, q2, window.basis)


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
    q1 = sp.csr_matrix((v1, c1, np.asarray([0, len(c1)])), shape=(1, n_terms))
    if len(window) == 0 or PRF_DOCS <= 0 or len(c1) == 0:
        q, sims = result(c1, v1)
        return q, semantic.add_semantic(sims, window.semantic, q1, window.basis)
    first = result(c1, v1)[1][0]
    m = min(PRF_DOCS, len(window))
    if len(rated):
        first[rated] = -np.inf
    top = np.argpartition(-first, m - 1)[:m] if m < len(first) else np.arange(len(first))
    cp, vp = _rows_sum(window.matrix, top)
    cols = np.union1d(c1, cp)
    values = np.zeros(len(cols), dtype=np.float32)
    values[np.searchsorted(cols, c1)] += v1
    values[np.searchsorted(cols, cp)] += bound_prf_one(c1, cp, PRF_WEIGHT * _unit(vp))  # drift guard
    d = sp.csr_matrix(disliked, dtype=np.float32)
    d.sum_duplicates()
    at = np.searchsorted(cols, d.indices)
    hit = (at < len(cols)) & (cols[np.minimum(at, len(cols) - 1)] == d.indices)
    values[at[hit]] -= d.data[hit]
    q2, sims = result(*clipped(cols, values))
    return q2, semantic.add_semantic(sims, window.semantic, q2, window.basis)


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
) -> VoteEffect:
    """Filters, boosts, votes and recency applied in place to ``score`` (n_readers × n_items
    cosine similarities, reader-major): per reader a few vector operations on memoised masks,
    no loop over items. Excluded items get ``-inf``; 👍/👎 move the voted items' neighbours
    and 👎'd items sink below all others (:mod:`.votes`). Returns the votes' effect."""
    effect = apply_votes(window, profiles, score)
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
    sink_disliked(score, effect.disliked)
    return effect


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
    disliked = _adjust_rows(window, [profile], score, rec).disliked[0]
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
    muted[disliked] = True  # hidden and counted like a muted item
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
