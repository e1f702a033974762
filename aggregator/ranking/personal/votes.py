"""Votes in item space: 👎 hides the item and pushes its nearest neighbours down, 👍 pulls its
neighbours up (issue 17: "👎 means less like this, visibly").

The Rocchio query already moves towards liked and away from disliked items' terms, but a term
subtraction rarely moves a near duplicate of a 👎'd paper out of the top 20 (measured through
the product: the 👎'd item itself stayed in the top 20 in two cases of three). Here each
reader's score of item ``i`` also gets

    + LIKE_PULL · max_{l ∈ liked} s(i, l) − DISLIKE_PUSH · max_{d ∈ disliked} s(i, d),
    s = max(sim − SIM_FLOOR, 0),

where ``sim`` is the cosine of the two items' *specific* TF-IDF vectors: each voted item keeps
its ``NEIGHBOUR_TERMS`` heaviest terms (its topic words, not "model" or "learning"), so one
sparse product over those few, rare terms gives every item's similarity with every voted item
of a chunk of readers. The voted items' own rows are then set apart: 👎'd ones get
``DISLIKED_SCORE`` (below every other item) and are flagged hidden like muted items, so the
digest leaves them out and counts them. Votes on items outside the window act through the
query only.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp

from aggregator.ranking.personal.item_matrix import _EMPTY, ItemWindow
from aggregator.ranking.personal.vote_model import blend_vote_models
from aggregator.types import ReaderProfile

LIKE_PULL = 0.5  # added per unit of similarity with the nearest 👍'd item (above SIM_FLOOR)
DISLIKE_PUSH = 1.0  # subtracted per unit of similarity with the nearest 👎'd item (above SIM_FLOOR)
SIM_FLOOR = 0.05  # similarities up to this are noise between unrelated papers: no effect
NEIGHBOUR_TERMS = 25  # heaviest terms of a voted item used for its neighbours
DISLIKED_SCORE = -10.0  # a 👎'd item's own score: below every unvoted item (scores are ≥ −1)


def voted_rows(window: ItemWindow, ids: Sequence[int]) -> np.ndarray:
    """Window rows of the item ids (those in the window only), unique and sorted (int64)."""
    pos = window.position
    rows = sorted({pos[i] for i in ids if i in pos})
    return np.asarray(rows, dtype=np.int64) if rows else _EMPTY


def _specific(window: ItemWindow, rows: np.ndarray) -> sp.csr_matrix:
    """The items' rows (len(rows) × n_terms CSR) cut to their ``NEIGHBOUR_TERMS`` heaviest
    terms and L2-normalised again."""
    m = sp.csr_matrix(window.matrix[rows], dtype=np.float32)
    m.sum_duplicates()
    keep = np.zeros(len(m.data), dtype=bool)
    for r in range(m.shape[0]):
        lo, hi = m.indptr[r], m.indptr[r + 1]
        if hi - lo <= NEIGHBOUR_TERMS:
            keep[lo:hi] = True
        else:
            keep[lo + np.argpartition(-m.data[lo:hi], NEIGHBOUR_TERMS - 1)[:NEIGHBOUR_TERMS]] = True
    m.data = np.where(keep, m.data, 0).astype(np.float32)
    m.eliminate_zeros()
    norms = np.sqrt(np.asarray(m.multiply(m).sum(axis=1)).ravel())
    norms[norms == 0] = 1.0
    return sp.csr_matrix(sp.diags(1.0 / norms) @ m, dtype=np.float32)


_NEIGHBOUR_CHUNK = 2048  # voted items per dense product when filling the cache (8 MB per 1k items)


def neighbour_rows(window: ItemWindow, rows: np.ndarray) -> sp.csr_matrix:
    """:func:`neighbour_sims` as CSR (len(rows) × n_items float32; ~2 % nonzero). Each item's
    row is computed once per window and kept on it (a voted item is voted by many readers, and
    a reader's votes are scored again at every precompute): a dense product per chunk of
    missing items, then its nonzeros."""
    rows = np.asarray(rows, dtype=np.int64)
    if len(rows) == 0 or len(window) == 0:
        return sp.csr_matrix((len(rows), len(window)), dtype=np.float32)
    cache: dict[int, tuple[np.ndarray, np.ndarray]] = window._memoised("neighbours", dict)
    missing = np.asarray(sorted({int(r) for r in rows.tolist()} - cache.keys()), dtype=np.int64)
    if len(missing):
        t = window._memoised("t_csr", lambda: sp.csr_matrix(window.matrix.T))
        for start in range(0, len(missing), _NEIGHBOUR_CHUNK):
            chunk = missing[start : start + _NEIGHBOUR_CHUNK]
            block = np.asarray((_specific(window, chunk) @ t).toarray(), dtype=np.float32)
            block -= SIM_FLOOR
            for i, r in enumerate(chunk.tolist()):
                cols = np.flatnonzero(block[i] > 0)
                cache[r] = (cols.astype(np.int32), block[i, cols])
    parts = [cache[r] for r in rows.tolist()]
    indptr = np.concatenate([[0], np.cumsum([len(c) for c, _ in parts])]).astype(np.int64)
    indices = np.concatenate([c for c, _ in parts])
    data = np.concatenate([v for _, v in parts])
    return sp.csr_matrix((data, indices, indptr), shape=(len(rows), len(window)))


def neighbour_sims(window: ItemWindow, rows: np.ndarray) -> np.ndarray:
    """len(rows) × n_items float32: cosine of each voted item's specific vector
    (:func:`_specific`) with every item of the window (full vectors, L2-normalised), minus
    :data:`SIM_FLOOR`, clipped at 0."""
    return np.asarray(neighbour_rows(window, rows).toarray(), dtype=np.float32)


def _nearest(sims: sp.csr_matrix, n_items: int) -> np.ndarray:
    """Column-wise max of a CSR block with entries ≥ 0: n_items float32."""
    out = np.zeros(n_items, dtype=np.float32)
    np.maximum.at(out, sims.indices, sims.data)
    return out


def _gather(m: sp.csr_matrix, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
    """``m[rows][:, cols]`` as a dense len(rows) × len(cols) array (m's dtype), without building
    the sparse intermediates: each wanted (row, column) key is looked up with one
    ``searchsorted`` among the selected rows' entries. ``m``: CSR with sorted indices and no
    duplicates (as :func:`neighbour_rows` builds it)."""
    rows = np.asarray(rows, dtype=np.int64)
    cols = np.asarray(cols, dtype=np.int64)
    starts = m.indptr[rows].astype(np.int64)
    lengths = m.indptr[rows + 1].astype(np.int64) - starts
    total = int(lengths.sum())
    out = np.zeros((len(rows), len(cols)), dtype=m.dtype)
    if total == 0 or len(cols) == 0:
        return out
    at = np.repeat(starts - (np.cumsum(lengths) - lengths), lengths) + np.arange(total)
    n = m.shape[1]
    keys = np.repeat(np.arange(len(rows), dtype=np.int64) * n, lengths) + m.indices[at]
    want = (np.arange(len(rows), dtype=np.int64)[:, None] * n + cols[None, :]).ravel()
    found = np.minimum(np.searchsorted(keys, want), total - 1)
    hit = keys[found] == want
    out.ravel()[hit] = m.data[at[found[hit]]]
    return out


REASON_MIN = 0.02  # a vote is named in ``why`` when it moved the score by at least this


@dataclass(frozen=True, slots=True)
class VoteEffect:
    """What :func:`apply_votes` did for a block of readers: per reader the 👍'd and 👎'd
    window rows (sorted); ``every`` all of them (sorted) and ``sims`` their
    :func:`neighbour_rows` (len(every) × n_items CSR)."""

    liked: list[np.ndarray]
    disliked: list[np.ndarray]
    every: np.ndarray
    sims: sp.csr_matrix

    def reasons(self, window: ItemWindow, j: int, rows: np.ndarray) -> list[str]:
        """Per row of reader ``j``: ``why`` entries (JSON text, each ending in a comma) naming
        the 👍'd item that pulled it up ("similar to a paper you liked: <title>") and a 👎'd
        one that pushed it down, when either moved it by ≥ :data:`REASON_MIN`."""
        out = [""] * len(rows)
        both = ((self.liked[j], LIKE_PULL, "liked"), (self.disliked[j], DISLIKE_PUSH, "disliked"))
        for voted, push, kind in both:
            if not len(voted) or not len(rows):
                continue
            block = _gather(self.sims, np.searchsorted(self.every, voted), rows)
            best, moved = block.argmax(axis=0), push * block.max(axis=0)
            for i in np.flatnonzero(moved >= REASON_MIN).tolist():
                source = int(voted[best[i]])
                if source == int(rows[i]):
                    continue
                if kind == "liked":
                    title = " ".join(window.texts[source].split("\n", 1)[0].split())
                    term = f"similar to a paper you liked: {title}"
                else:
                    term = "you marked a similar paper 👎"
                entry = {"term": term, "weight": round(float(moved[i]), 4), "kind": kind}
                entry["item_id"] = int(window.ids[source])
                out[i] += json.dumps(entry, ensure_ascii=False) + ","
        return out


def apply_votes(window: ItemWindow, profiles: Sequence[ReaderProfile], score: np.ndarray) -> VoteEffect:
    """Blend in the readers' vote models (:mod:`.vote_model`, for readers who voted enough),
    then add the neighbour pull/push to ``score`` (n_readers × n_items, reader-major, in place,
    before recency). Returns the :class:`VoteEffect`: each reader's 👎'd window rows are to
    be sunk (:func:`sink_disliked`), kept and flagged hidden."""
    liked = [voted_rows(window, p.liked_item_ids) for p in profiles]
    disliked = [voted_rows(window, p.disliked_item_ids) for p in profiles]
    every = np.unique(np.concatenate([*liked, *disliked, _EMPTY]))
    sims = neighbour_rows(window, every)
    blend_vote_models(window, profiles, score, liked, disliked)
    n = len(window)
    for j in range(len(profiles)):
        if len(liked[j]):
            score[j] += LIKE_PULL * _nearest(sims[np.searchsorted(every, liked[j])], n)
        if len(disliked[j]):
            score[j] -= DISLIKE_PUSH * _nearest(sims[np.searchsorted(every, disliked[j])], n)
    return VoteEffect(liked, disliked, every, sims)


def sink_disliked(score: np.ndarray, disliked: Sequence[np.ndarray]) -> None:
    """Set each reader's 👎'd rows to :data:`DISLIKED_SCORE` (after recency and filters)."""
    for j, rows in enumerate(disliked):
        if len(rows):
            keep = np.isfinite(score[j, rows])
            score[j, rows[keep]] = DISLIKED_SCORE
