"""Latent semantic matching (LSA; Deerwester et al., 1990, "Indexing by latent semantic
analysis"): the part of a reader's score that finds papers on the reader's subject that do not
use the reader's words (issue 17, cold start from free text).

A one-line interest ("information retrieval: search, ranking and recommender systems") shares
few words with most papers of its field; TF-IDF cosine only sees those. The model's window is
factorised once at fit time: the ``TOPIC_DIMS`` leading right singular vectors of the
n_docs × n_terms TF-IDF matrix (:func:`fit_topics`, randomized SVD, fixed seed) are stored
with the model as ``topics`` (k × n_terms). An item's topic vector is its TF-IDF row projected
on them and L2-normalised; a reader's is the projection of the reader's final query (q2 of
:mod:`aggregator.ranking.personal.scoring`: Rocchio, then pseudo-relevance feedback whose new
terms the drift guard caps, :mod:`aggregator.ranking.personal.prf_guard`). The score gains
``SEMANTIC_WEIGHT · max(cos(item, reader), 0)`` in topic space.

``TOPIC_DIMS`` = 64 and ``SEMANTIC_WEIGHT`` = 0.5 were chosen on the tune split of
``aggregator eval --task free-text`` only (k 64/100/128 × weight 0.5–2.5 tried, P@20 0.35–0.38,
AP 0.29–0.30 on it, against 0.325/0.239 without). Projecting q2 rather than the query before
PRF (q1) was as good on the tune split and keeps the drift case of ``tests/test_drift.py``
robotic: with q1 and weight ≥ 0.75 one LLM-RL paper on diffusion LMs entered that top 10; with
q2 none at weights 0.5–1.0 (10 and 10 robot papers of 10 at 0.5). Held-out splits: docs/ranking.md.

Shapes: ``topics`` k × n_terms float32 (rows orthonormal); item vectors n_items × k float32,
rows unit length (zero for an empty row).
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

TOPIC_DIMS = 64
SEMANTIC_WEIGHT = 0.5
#: Fewer documents than this make no topic space (a toy corpus has no latent structure).
MIN_TOPIC_DOCS = 500


def fit_topics(matrix: sp.csr_matrix, k: int = TOPIC_DIMS) -> np.ndarray | None:
    """The ``k`` leading right singular vectors of ``matrix`` (n_docs × n_terms TF-IDF rows):
    k × n_terms float32, or None when the corpus is smaller than ``MIN_TOPIC_DOCS`` or has
    fewer than 2k terms. Deterministic (seeded randomized SVD, 4 power iterations): ≈ 1.5 s
    CPU for 10k abstracts."""
    n_docs, n_terms = matrix.shape
    if n_docs < MIN_TOPIC_DOCS or n_terms < 2 * k:
        return None
    from sklearn.utils.extmath import randomized_svd

    _, _, vt = randomized_svd(sp.csr_matrix(matrix, dtype=np.float32), k, n_iter=4, random_state=0)
    # rounded as stored (float16), so a reloaded model scores exactly as the fitted one
    return np.ascontiguousarray(vt.astype(np.float16), dtype=np.float32)


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Rows of a dense matrix scaled to unit length (zero rows stay zero), float32."""
    norms = np.sqrt(np.square(x, dtype=np.float64).sum(axis=1, keepdims=True))
    norms[norms == 0] = 1.0
    return (x / norms).astype(np.float32)


def project(rows: sp.csr_matrix, basis: np.ndarray) -> np.ndarray:
    """TF-IDF rows (n × n_terms CSR) in topic space: n × k float32, rows unit length.
    ``basis``: the topics transposed, n_terms × k, C order (a transposed view would be copied
    by every product)."""
    return unit_rows(np.asarray(sp.csr_matrix(rows, dtype=np.float32) @ basis, dtype=np.float32))


def semantic_scores(items: np.ndarray, queries: sp.csr_matrix, basis: np.ndarray) -> np.ndarray:
    """``SEMANTIC_WEIGHT · max(cos, 0)`` in topic space of every query with every item:
    n_queries × n_items float32. ``items``: :func:`project` of the window (n_items × k);
    ``queries``: n_queries × n_terms CSR (a zero row gives zeros); ``basis``: see :func:`project`."""
    z = project(queries, basis)
    z *= SEMANTIC_WEIGHT  # ≥ 0: the same as weighting after the clip below
    if z.shape[0] == 1:  # a matrix-vector product without BLAS: its threads only spin (6 → 60 ms)
        sims = np.einsum("ik,k->i", items, z[0]).reshape(1, -1)
    else:
        from aggregator.ranking.blas import one_thread

        with one_thread():
            sims = z @ items.T
    np.maximum(sims, 0, out=sims)
    return np.asarray(sims, dtype=np.float32)


def add_semantic(
    sims: np.ndarray, items: np.ndarray | None, queries: sp.csr_matrix, basis: np.ndarray | None
) -> np.ndarray:
    """``sims`` (n_queries × n_items float32) plus :func:`semantic_scores`, in place; unchanged
    when the window has no topic space (``items``/``basis`` None)."""
    if items is not None and basis is not None and sims.size:
        sims += semantic_scores(items, queries, basis)
    return sims
