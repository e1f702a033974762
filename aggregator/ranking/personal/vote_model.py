"""A per-reader linear model of the votes, once a reader has voted enough (issue 17: after a
week of 👍/👎, arxiv-sanity-lite's SVM trained on the same votes ranked the next week better
than the Rocchio query alone).

For a reader with ≥ :data:`MIN_LIKED` 👍 and ≥ :data:`MIN_VOTES` votes on items of the window,
a class-balanced ridge classifier (:func:`decision`) is fitted on the TF-IDF rows of the 👍'd
items (positive) against the 👎'd items and :data:`SAMPLED_NEGATIVES` other window items drawn
at random (negative: the background, as arxiv-sanity-lite uses every other paper), and its
decision function is blended into the score:

    score' = score + WEIGHT · std(score) · z(decision),    z(x) = (x − mean x) / std x

so the order is that of ``z(score) + WEIGHT · z(decision)`` while the scale of the score (a
cosine plus boosts, shown to readers) is kept. The negatives are drawn with the reader id as
seed: the same votes give the same scores.

Measured by ``aggregator eval --task feedback`` (docs/ranking.md); ``WEIGHT``, ``RIDGE`` and
``SAMPLED_NEGATIVES`` were chosen on the first feedback week only (8–14 → 15–21 June 2026) and
reported on the second. Cost: one (votes + 200)² solve and two sparse products per reader with
enough votes, a few milliseconds of CPU (``bench/rank_speed.py``).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from aggregator.ranking.blas import one_thread
from aggregator.ranking.personal.item_matrix import ItemWindow
from aggregator.types import ReaderProfile

MIN_LIKED = 5  # 👍 on window items before the model is used
MIN_VOTES = 10  # 👍 + 👎 on window items before the model is used
SAMPLED_NEGATIVES = 200  # random unvoted window items added as negatives
RIDGE = 30.0  # L2 regularisation of the ridge classifier (rows are L2-normalised)
WEIGHT = 3.0  # weight of the model's z-scored decision against the z-scored score


def _z(x: np.ndarray) -> np.ndarray:
    sd = float(x.std())
    return (x - x.mean()) / (sd if sd > 0 else 1.0)


def learns(liked: np.ndarray, disliked: np.ndarray) -> bool:
    """Whether a reader with these 👍/👎 window rows gets a vote model."""
    return len(liked) >= MIN_LIKED and len(liked) + len(disliked) >= MIN_VOTES


def decision(window: ItemWindow, reader_id: int, liked: np.ndarray, disliked: np.ndarray) -> np.ndarray:
    """The vote model's decision function on every window item (n_items float64). ``liked``/
    ``disliked``: window rows (int64).

    The model is a class-balanced ridge classifier (regularised least squares on ±1 labels,
    each class weighing half) solved in its dual: with X the n × n_terms training rows, K = X Xᵀ
    (n × n, n = votes + sampled negatives ≈ 200–400), α = (K + RIDGE · C⁻¹)⁻¹ y and w = Xᵀ α,
    one small dense solve instead of an iterative fit over n_terms."""
    voted = np.union1d(liked, disliked)
    pool = np.setdiff1d(np.arange(len(window)), voted, assume_unique=True)
    rng = np.random.default_rng(reader_id)
    sampled = rng.choice(pool, min(SAMPLED_NEGATIVES, len(pool)), replace=False) if len(pool) else pool
    x = window.matrix[np.concatenate([liked, disliked, sampled])]
    n_pos, n_neg = len(liked), len(disliked) + len(sampled)
    y = np.concatenate([np.ones(n_pos), -np.ones(n_neg)])
    weight = np.concatenate([np.full(n_pos, 0.5 / n_pos), np.full(n_neg, 0.5 / max(n_neg, 1))]) * len(y)
    gram = np.asarray((x @ x.T).toarray(), dtype=np.float64)
    with one_thread():  # a few hundred rows: BLAS threads only spin (measured 60 ms vs 2 ms CPU)
        alpha = np.linalg.solve(gram + np.diag(RIDGE / weight), y)
    w = np.asarray(x.T @ alpha, dtype=np.float64).ravel()
    return np.asarray(window.matrix @ w, dtype=np.float64).ravel()


def blend_vote_models(
    window: ItemWindow,
    profiles: Sequence[ReaderProfile],
    score: np.ndarray,
    liked: Sequence[np.ndarray],
    disliked: Sequence[np.ndarray],
) -> None:
    """Blend each reader's vote model into ``score`` (n_readers × n_items, reader-major, in
    place, before boosts and recency) when :func:`learns` holds; other readers are untouched."""
    for j, profile in enumerate(profiles):
        if not learns(liked[j], disliked[j]) or len(window) < 2:
            continue
        row = score[j].astype(np.float64)
        sd = float(row.std())
        if sd <= 0:
            continue
        d = decision(window, profile.reader_id, liked[j], disliked[j])
        score[j] = (row + WEIGHT * sd * _z(d)).astype(score.dtype)
