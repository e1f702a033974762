"""Drift guard for pseudo-relevance feedback: the profile's own terms stay dominant (issue 17).

One round of PRF adds the centroid of the first pass's top ``PRF_DOCS`` items to the query.
When those items share a secondary sense of a query word ("policy" in robot learning and in
LLM reinforcement learning), the centroid's *new* terms (not in the profile's query) can pull
the second pass towards the other sense. The guard caps the part of the PRF vector that lies
on new terms: its L2 norm is at most ``NEW_TERMS_CAP`` times the norm of the profile's own
query ``q1`` (rows of ``q1`` are unit vectors, so at most ``NEW_TERMS_CAP``). The PRF weight on
the profile's own terms is left as it is: re-weighting them is what PRF is good at. With the
cap 0.5 and PRF weight 1, new terms hold at most 0.5² / (1 + 0.5²) = 20 % of the final query's
squared norm before background clipping.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from aggregator.ranking.personal.sparse_rows import row_sums

NEW_TERMS_CAP = 0.5


def bound_prf_rows(q1: sp.csr_matrix, prf: sp.csr_matrix, weight: float) -> sp.csr_matrix:
    """``weight · prf`` (n × n_terms CSR) with each row's entries on terms outside the same
    row of ``q1`` scaled down so their L2 norm is ≤ ``NEW_TERMS_CAP`` (see the module
    docstring). Both inputs canonical CSR (sorted, no duplicates); returns float32 CSR."""
    p = sp.csr_matrix(prf, dtype=np.float32, copy=True)
    p.sum_duplicates()
    p.data *= weight
    n_terms = p.shape[1]
    q = sp.csr_matrix(q1)
    q.sum_duplicates()
    qkeys = np.repeat(np.arange(q.shape[0], dtype=np.int64), np.diff(q.indptr)) * n_terms + q.indices
    pkeys = np.repeat(np.arange(p.shape[0], dtype=np.int64), np.diff(p.indptr)) * n_terms + p.indices
    if len(qkeys):
        at = np.minimum(np.searchsorted(qkeys, pkeys), len(qkeys) - 1)
        own = qkeys[at] == pkeys
    else:
        own = np.zeros(len(pkeys), dtype=bool)
    norms = np.sqrt(row_sums(np.where(own, 0.0, p.data.astype(np.float64) ** 2), p.indptr))
    scale = np.where(norms > NEW_TERMS_CAP, NEW_TERMS_CAP / np.maximum(norms, 1e-12), 1.0)
    p.data = np.where(own, p.data, p.data * np.repeat(scale, np.diff(p.indptr))).astype(np.float32)
    return p


def bound_prf_one(own_cols: np.ndarray, cols: np.ndarray, values: np.ndarray) -> np.ndarray:
    """:func:`bound_prf_rows` for one reader on raw arrays: ``values`` (already weighted) of
    the PRF terms ``cols``; ``own_cols`` the query's terms (sorted). Returns new values."""
    own = np.isin(cols, own_cols, assume_unique=True)
    norm = float(np.sqrt(np.square(values[~own], dtype=np.float64).sum()))
    if norm <= NEW_TERMS_CAP:
        return values
    out = values.astype(np.float32, copy=True)
    out[~own] *= NEW_TERMS_CAP / norm
    return out
