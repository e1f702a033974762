"""Row-wise helpers on sparse TF-IDF rows (pure): means, L2 norms, background clipping, sums."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from aggregator.ranking import semantic


def _row_mean(rows: sp.csr_matrix, n_terms: int) -> sp.csr_matrix:
    if rows.shape[0] == 0:
        return sp.csr_matrix((1, n_terms), dtype=np.float32)
    return sp.csr_matrix(rows.mean(axis=0), dtype=np.float32)


def row_sums(values: np.ndarray, indptr: np.ndarray) -> np.ndarray:
    """Per-row sums of ``values`` (one per stored entry of a CSR matrix with row pointer
    ``indptr``, n_rows + 1): an n_rows float64 vector, 0 for an empty row."""
    lengths = np.diff(indptr)
    sums = np.zeros(len(lengths), dtype=np.float64)
    nz = lengths > 0
    if nz.any():
        sums[nz] = np.add.reduceat(values, indptr[:-1][nz])
    return sums


def _l2_rows(m: sp.csr_matrix) -> sp.csr_matrix:
    """Rows L2-normalised (zero rows stay zero), float32 CSR."""
    m = sp.csr_matrix(m, dtype=np.float32)
    norms = np.sqrt(row_sums(m.data.astype(np.float64) ** 2, m.indptr))
    norms[norms == 0] = 1.0
    m.data = (m.data / np.repeat(norms, np.diff(m.indptr))).astype(np.float32)
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


def _rows_sum(m: sp.csr_matrix, rows: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sum of the given rows of ``m``, sparse: (sorted column ids, float64 values)."""
    starts, ends = m.indptr[rows], m.indptr[rows + 1]
    lengths = ends - starts
    offsets = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths)
    at = offsets + np.arange(int(lengths.sum()))
    cols, inverse = np.unique(m.indices[at], return_inverse=True)
    return cols, np.bincount(inverse, weights=m.data[at], minlength=len(cols))


def _unit(values: np.ndarray) -> np.ndarray:  # not np.dot: BLAS threads cost ms
    return semantic.unit_rows(values.reshape(1, -1)).ravel()
