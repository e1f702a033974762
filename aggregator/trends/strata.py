"""Mix-shift correction: expected window counts that follow the window's mix of categories and sources.

Why. A term's share of all items changes when the *mix* of items changes, without any change
in what the field writes about. The replayed Jan–Feb 2026 papers come from a cs.LG-heavy
source (``springkill`` fork of daily-arXiv-ai-enhanced, see ../shared/data/SOURCES.md), so
"machine learning" and "neural network", common in cs.LG abstracts, would "rise" against a
baseline of mostly cs.CV/cs.CL papers.

Strata. Each counted item also counts in one stratum of each of its scopes: the scope, its
primary category (the first arXiv category of a paper when it is a followed one, ``LG``,
``CV``, ``CL``; ``o`` for other papers; ``p`` for posts) and its source (the feed that first
announced it, ``item_sources.feed_id``). A stratum's counts are stored like a scope's, in
``term_counts`` and ``trend_day_totals`` rows whose scope is ``"<scope>|<category>|<feed id>"``
(:func:`stratum_scope`), so no schema change was needed.

Expected counts (issue 16): ``E = Σ_s n1_s · b_s / n2_s`` over the strata ``s`` of the scope,
``n1_s`` the stratum's window items, ``b_s`` / ``n2_s`` the term's baseline items and all
baseline items of the stratum. A stratum with fewer than :data:`MIN_BASELINE` baseline items
(a source that is new in the window) takes the baseline share of its category over all sources,
and failing that the scope's. When the strata do not cover at least :data:`MIN_COVERAGE` of
the baseline and window items (counts made before strata existed, the 1M benchmark's
synthetic counts) there is no correction: ``E = n1 · b / n2``.

The test keeps its form: given the ``a + b`` items with the term, ``a`` is Binomial(a + b,
p0) with ``p0 = ρ·n1 / (ρ·n1 + n2)``, where ``ρ = (E + c) / (n1·b/n2 + c)`` (``c = ½ · n1 /
(n2 + 1)``, the smoothing of the lift) is how much the window's mix alone raises the term's
expected count. ``ρ = 1`` without a mix shift, and then this is exactly the unstratified
test; with ``b > 0``, ``p0 ≈ E / (E + b)``.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from aggregator.store.trends_tables import DayTotal, TermCount
from aggregator.trends.counts import SEP, stratum_scope, unpack_counts

#: A stratum needs this many baseline items for its own baseline share.
MIN_BASELINE = 50
#: Strata must cover this share of the scope's window and baseline items to be used.
MIN_COVERAGE = 0.9

__all__ = ["MIN_BASELINE", "MIN_COVERAGE", "Adjusted", "adjust", "stratum_scope"]


@dataclass(frozen=True, slots=True)
class Adjusted:
    """The test's inputs after the mix-shift correction, per term (float arrays): ``a`` and
    ``n1`` the window count and items in the strata the baseline covers, ``rho`` the mix
    factor, ``expected`` the expected window count of all the window's items (the items of
    strata the baseline does not cover count as expected: they are not tested)."""

    a: np.ndarray
    n1: np.ndarray
    rho: np.ndarray
    expected: np.ndarray


def adjust(
    session: Session,
    scope: str,
    term_ids: np.ndarray,
    a: np.ndarray,
    b: np.ndarray,
    baseline_start: dt.date,
    window_start: dt.date,
    end: dt.date,
    n1: int,
    n2: int,
) -> Adjusted:
    """The mix-shift correction of each term (``term_ids`` sorted ascending; ``a``, ``b`` its
    window and baseline counts in the scope); see the module doc. Reads the strata's day totals
    and their packed counts over the window and baseline. Without usable strata: ``a``, ``n1``,
    ρ = 1 and E = n1·b/n2."""
    bf = b.astype(np.float64)
    pooled = bf * n1 / n2 if n2 else np.zeros(len(b))
    plain = Adjusted(a.astype(np.float64), np.full(len(a), float(n1)), np.ones(len(b)), pooled)
    if n2 == 0 or not len(b):
        return plain
    n1_s: dict[str, int] = defaultdict(int)
    n2_s: dict[str, int] = defaultdict(int)
    for key, day, n in session.execute(
        sa.select(DayTotal.scope, DayTotal.day, DayTotal.n_docs).where(
            DayTotal.scope.like(f"{scope}{SEP}%"), DayTotal.day >= baseline_start, DayTotal.day <= end
        )
    ):
        (n1_s if day >= window_start else n2_s)[key] += n
    if len(set(n1_s) | set(n2_s)) < 2:
        return plain
    if sum(n1_s.values()) < MIN_COVERAGE * n1 or sum(n2_s.values()) < MIN_COVERAGE * n2:
        return plain
    counts = _stratum_counts(
        session, term_ids, list(set(n1_s) | set(n2_s)), baseline_start, window_start, end
    )
    cat_n: dict[str, int] = defaultdict(int)
    for key, n in n2_s.items():
        cat_n[_category(key)] += n
    uncovered = [k for k in n1_s if n2_s.get(k, 0) < MIN_BASELINE and cat_n[_category(k)] < MIN_BASELINE]
    zeros = np.zeros(len(term_ids))
    a_out = a - sum((counts[k][0] for k in uncovered), zeros)
    n1_out = n1 - sum(n1_s[k] for k in uncovered)
    covered = {k: n for k, n in n1_s.items() if k not in uncovered}
    expected = _expected(term_ids, bf, covered, n2_s, {k: v[1] for k, v in counts.items()}, n1_out, n2)
    c = 0.5 * max(n1_out, 1) / (n2 + 1)
    rho = (expected + c) / (bf * n1_out / n2 + c)
    return Adjusted(a_out, np.full(len(a), float(n1_out)), rho, expected + (a - a_out))


def _category(key: str) -> str:
    return key.split(SEP)[1]


def _stratum_counts(
    session: Session,
    term_ids: np.ndarray,
    keys: list[str],
    start: dt.date,
    window_start: dt.date,
    end: dt.date,
) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Window and baseline dfs of the sorted ``term_ids`` in each stratum: one read of the
    strata's packed rows, one binary search per row."""
    tc: Any = TermCount.__table__
    out = {k: (np.zeros(len(term_ids)), np.zeros(len(term_ids))) for k in keys}
    for key, day, n_terms, data in session.execute(
        sa.select(tc.c.scope, tc.c.day, tc.c.n_terms, tc.c.data).where(
            tc.c.scope.in_(keys), tc.c.day >= start, tc.c.day <= end
        )
    ):
        day_ids, day_dfs = unpack_counts(n_terms, data)
        if not len(day_ids):
            continue
        pos = np.minimum(np.searchsorted(term_ids, day_ids), len(term_ids) - 1)
        hit = term_ids[pos] == day_ids
        np.add.at(out[key][0 if day >= window_start else 1], pos[hit], day_dfs[hit])
    return out


def _expected(
    term_ids: np.ndarray,
    b: np.ndarray,
    n1_s: dict[str, int],
    n2_s: dict[str, int],
    b_s: dict[str, np.ndarray],
    n1: int,
    n2: int,
) -> np.ndarray:
    """``Σ_s n1_s · share_s`` with each stratum's baseline share, its category's over all
    sources when it has fewer than :data:`MIN_BASELINE` baseline items, else the scope's; window
    items outside every stratum take the scope's share."""
    zeros = np.zeros(len(term_ids))
    cat_b: dict[str, np.ndarray] = defaultdict(lambda: zeros.copy())
    cat_n: dict[str, int] = defaultdict(int)
    for key, n in n2_s.items():
        cat = _category(key)
        cat_b[cat] = cat_b[cat] + b_s.get(key, zeros)
        cat_n[cat] += n
    scope_share = b / n2
    expected = zeros.copy()
    for key, n in n1_s.items():
        cat = _category(key)
        if n2_s.get(key, 0) >= MIN_BASELINE:
            share = b_s[key] / n2_s[key]
        elif cat_n.get(cat, 0) >= MIN_BASELINE:
            share = cat_b[cat] / cat_n[cat]
        else:
            share = scope_share
        expected += n * share
    rest = max(n1 - sum(n1_s.values()), 0)
    return np.asarray(expected + rest * scope_share)
