"""Detection: which terms rise, by an exact test under false-discovery-rate control (see the package doc)."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

import aggregator.trends.lexicon as lexicon
import aggregator.trends.strata as strata
from aggregator.store.trends_tables import DayTotal, TermCount
from aggregator.trends.counts import FIRST_COLUMNS, SCOPES, _batched, unpack_counts
from aggregator.trends.report import DayCount, TrendReport, TrendTerm, _Cand
from aggregator.trends.terms import CONNECTORS
from aggregator.trends.window import MAX_EXAMPLES, _WindowItems

DEFAULT_WINDOW_DAYS = 7
DEFAULT_BASELINE_DAYS = 56
#: Target false discovery rate of the rising terms of one report (Benjamini–Hochberg).
FDR = 0.1
MIN_LIFT = 1.5
#: How many ranked terms a stored result keeps (the API's ``limit`` is at most this).
STORED_LIMIT = 50
#: How many leading topics and watch-list terms a report keeps.
LEADING_LIMIT = 12
WATCH_LIMIT = 10


def log_likelihood_g2(a: np.ndarray, b: np.ndarray, n1: int, n2: int) -> np.ndarray:
    """Dunning's G² (Dunning 1993) for each term: ``a`` of ``n1`` window items and ``b`` of
    ``n2`` baseline items contain it. Arrays of equal shape (float64); returns G² ≥ 0, same
    shape. G² = 2 Σ O·ln(O/E) over the 2×2 contingency table; terms with O = 0 add nothing."""
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    obs = np.stack([a, b, n1 - a, n2 - b])
    total = float(n1 + n2)
    row_term = a + b
    row_rest = total - row_term
    exp = np.stack(
        [row_term * n1 / total, row_term * n2 / total, row_rest * n1 / total, row_rest * n2 / total]
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        parts = np.where(obs > 0, obs * np.log(obs / exp), 0.0)
    return np.maximum(2.0 * parts.sum(axis=0), 0.0)


def rising_p_values(
    a: np.ndarray, b: np.ndarray, n1: Any, n2: int, rho: np.ndarray | None = None
) -> np.ndarray:
    """One-sided exact p-values that each term's share rose: ``a`` of ``n1`` window items and
    ``b`` of ``n2`` baseline items contain it (integer arrays of equal shape; returns float64
    in (0, 1], same shape). Conditional on the ``k = a + b`` items that contain the term, an
    unchanged share makes ``a`` Binomial(k, n1 / (n1 + n2)); the p-value is P(X ≥ a) (the
    conditional test of two rates, Przyborowski & Wilenski 1940, "Homogeneity of results in
    testing samples from Poisson series", Biometrika 31). It is Fisher's exact test without the
    finite-population correction, and never below Fisher's one-sided p for ``a`` ≥ 2 (checked
    on random tables; tested terms have ``a`` ≥ 5): slightly conservative. Unlike the χ²
    approximation of G², it is exact at the counts of 5–20 items most rising terms have, where
    the approximation understates p three- to tenfold. ``rho`` (float array, default 1) is the
    mix-shift factor of each term (:mod:`.strata`): the success probability becomes ``ρ·n1 /
    (ρ·n1 + n2)``; ``n1`` may be an array (per term window items of the tested strata)."""
    from scipy.special import bdtrc  # scipy.special only (0.3 s to import, not scipy.stats)

    a = np.asarray(a, dtype=np.int64)
    k = a + np.asarray(b, dtype=np.int64)
    if np.all(np.asarray(n1) + n2 == 0):
        return np.ones(a.shape)
    r = np.ones(a.shape) if rho is None else np.asarray(rho, dtype=np.float64)
    p = bdtrc(np.maximum(a - 1, 0), k, n1 * r / (n1 * r + n2))
    return np.where(a > 0, np.clip(p, 0.0, 1.0), 1.0)


def fdr_select(p: np.ndarray, p_min: np.ndarray, alpha: float = FDR) -> tuple[np.ndarray, np.ndarray, int]:
    """Which hypotheses to reject at false discovery rate ``alpha``: the Benjamini–Hochberg
    step-up procedure (Benjamini & Hochberg 1995, JRSS B 57) over the testable hypotheses only,
    as Gilbert (2005, "A modified false discovery rate multiple-comparisons procedure for
    discrete data", JRSS C 54) does after Tarone (1990, Biometrics 46): ``p_min`` is each
    hypothesis' smallest attainable p-value (discrete tests: a term in few items can never reach
    a small p), ``k`` the smallest number with at most ``k`` hypotheses having ``p_min < alpha /
    k``, and only those are tested. ``p`` and ``p_min`` are float arrays of one shape. Returns
    (rejected: bool array, q: BH-adjusted p-values, 1.0 for hypotheses not tested, number tested).
    """
    n = len(p)
    q = np.ones(n)
    if n == 0:
        return np.zeros(0, dtype=bool), q, 0
    order = np.sort(p_min)
    ks = np.arange(1, n + 1)
    fits = np.flatnonzero(np.searchsorted(order, alpha / ks, side="left") <= ks)
    k = int(ks[fits[0]]) if len(fits) else n
    tested = np.flatnonzero(p_min < alpha / k)
    m = len(tested)
    if m == 0:
        return np.zeros(n, dtype=bool), q, 0
    pt = p[tested]
    rank = np.argsort(pt, kind="stable")
    adjusted = pt[rank] * m / np.arange(1, m + 1)
    adjusted = np.minimum(np.minimum.accumulate(adjusted[::-1])[::-1], 1.0)
    q[tested[rank]] = adjusted
    return q <= alpha, q, m


def min_support(window_docs: int) -> int:
    """Minimum window document frequency for a term to be considered: 5 items or 0.3 % of the
    window's items, whichever is larger."""
    return max(5, math.ceil(0.003 * window_docs))


def latest_day(session: Session, today: dt.date | None = None) -> dt.date | None:
    """The latest UTC day with counted papers no later than ``today`` (default: today), so
    that the default window never ends on a week of blog posts alone (issue 16); the latest
    day with any counted item when no paper was ever counted (a blogs-only install)."""
    today = today or dt.datetime.now(dt.UTC).date()
    every = sa.orm.aliased(DayTotal)
    posts = sa.orm.aliased(DayTotal)
    with_papers = session.scalar(
        sa.select(sa.func.max(every.day))
        .outerjoin(posts, sa.and_(posts.day == every.day, posts.scope == "blogs"))
        .where(every.scope == "all", every.day <= today, every.n_docs > sa.func.coalesce(posts.n_docs, 0))
    )
    if with_papers is not None:
        return with_papers  # type: ignore[no-any-return]
    return session.scalar(
        sa.select(sa.func.max(DayTotal.day)).where(DayTotal.scope == "all", DayTotal.day <= today)
    )


def _contains(longer: tuple[str, ...], shorter: tuple[str, ...]) -> bool:
    """``shorter`` is a contiguous part of ``longer``, or an acronym of it (``ner`` of
    ``named entity recognition``; connectors skipped: ``moe`` of ``mixture of experts``)."""
    n = len(shorter)
    initials = "".join(t[0] for t in longer if t not in CONNECTORS)
    if n == 1 and len(longer) >= 2 and shorter[0] == initials:
        return True
    return len(longer) > n and any(longer[i : i + n] == shorter for i in range(len(longer) - n + 1))


#: Two terms are one topic when the Jaccard index of their window items is at least this.
SAME_DOCS = 0.5


def _abbreviates(longer: tuple[str, ...], shorter: tuple[str, ...]) -> bool:
    """``shorter`` is ``longer`` with one run of two or more content words written as its
    initials: ``medical vlm`` of ``medical vision language model``, ``moe layer`` of
    ``mixture of experts layer`` (connectors inside the run skipped)."""
    n = len(longer)
    for i in range(n):
        for j in range(i + 2, n + 1):
            run = [w for w in longer[i:j] if w not in CONNECTORS]
            if len(run) < 2 or longer[i] in CONNECTORS or longer[j - 1] in CONNECTORS:
                continue
            if (*longer[:i], "".join(w[0] for w in run), *longer[j:]) == shorter:
                return True
    return False


def _same_topic(x: _Cand, y: _Cand, docs: Any) -> bool:
    """``x`` and ``y`` name one topic: their window items largely coincide (Jaccard ≥
    :data:`SAME_DOCS`), or one is the other with a run of words abbreviated (``medical vlm``
    / ``medical vision language model``), or one is a part or acronym of the other and the
    longer holds at least half of the shorter's items (``vision language model`` / ``vlm``)."""
    if _abbreviates(x.tokens, y.tokens) or _abbreviates(y.tokens, x.tokens):
        return True  # an acronym and its expansion are one term, whoever wrote which
    dx, dy = docs(x.term), docs(y.term)
    inter = len(dx & dy)
    if inter and inter >= SAME_DOCS * len(dx | dy):
        return True
    if _contains(x.tokens, y.tokens) or _contains(y.tokens, x.tokens):
        return inter >= 0.5 * min(len(dx), len(dy)) if (dx or dy) else True
    return False


def _completes(longer: tuple[str, ...], shorter: tuple[str, ...]) -> bool:
    """``longer`` is ``shorter`` with words added after it (``vision language model`` of
    ``vision language``, ``gaussian splatting`` of ``gaussian``) or ``shorter`` is its acronym;
    not a narrower kind of it (``multimodal large language model`` of ``large language model``)."""
    n = len(shorter)
    if len(longer) <= n:
        return False
    initials = "".join(w[0] for w in longer if w not in CONNECTORS)
    return longer[:n] == shorter or shorter == (initials,)


def collapse(cands: Sequence[_Cand], docs: Any = None) -> list[_Cand]:
    """Merge near-duplicates in a ranked list (best first) into one entry per topic, by their
    window items (``docs``: term → set of window item indices; without it, each term's own
    count stands in and only part/acronym pairs merge). Each group is shown under its best
    label: the longest phrase among the members holding at least 80 % of the group's largest
    item count ("world action model", not "world action"), or one completing the biggest
    member (:func:`_completes`) holding half of its items, with
    the group's best score; the
    other members become its ``variants``. Returns new candidates: the given ones are not
    changed, so one candidate list can feed several collapses (rising and new terms)."""
    if docs is None:
        sizes = {c.term: frozenset(range(c.a)) for c in cands}
        docs = sizes.__getitem__
    groups: list[list[_Cand]] = []
    for c in cands:
        for group in groups:
            if any(_same_topic(c, m, docs) for m in group):
                group.append(c)
                break
        else:
            groups.append([c])
    out: list[_Cand] = []
    seen: set[str] = set()
    for group in groups:
        biggest = max(group, key=lambda m: m.a)
        top = biggest.a
        # the longest phrase keeping most items; one completing the biggest member needs only
        # half of them ("vision language model" for "vision language", "gaussian splatting")
        labels = (
            m for m in group if m.a >= 0.8 * top or m.a >= 0.5 * top and _completes(m.tokens, biggest.tokens)
        )
        label = max(labels, key=lambda m: (len(m.tokens), m.a, m.score))
        if label.term in seen:
            continue
        seen.add(label.term)
        variants = [v for m in group if m is not label for v in (m.term, *m.variants)]
        out.append(
            dataclasses.replace(
                label,
                score=max(m.score for m in group),
                variants=list(dict.fromkeys(v for v in (*label.variants, *variants) if v != label.term)),
                examples=list(label.examples),
            )
        )
    return out


def compute_report(
    session: Session,
    *,
    end: dt.date,
    window_days: int = DEFAULT_WINDOW_DAYS,
    baseline_days: int = DEFAULT_BASELINE_DAYS,
    scope: str = "all",
    limit: int = STORED_LIMIT,
    now: dt.datetime | None = None,
) -> TrendReport:
    """Compute the rising and brand-new terms of ``scope`` for the ``window_days`` UTC days
    ending ``end`` (inclusive) against the ``baseline_days`` days before them (see the module
    doc for the statistic). Reads the packed ``term_counts`` rows of those days only, ``terms``
    for the terms in enough items to be tested, and the window's items; does not write.
    Raises ``ValueError`` for an unknown scope or non-positive day counts."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; one of {', '.join(SCOPES)}")
    if window_days < 1 or baseline_days < 1:
        raise ValueError("window and baseline must be at least one day")
    return _compute(session, scope, end, window_days, baseline_days, limit, now, None)


def _compute(
    session: Session,
    scope: str,
    end: dt.date,
    window_days: int,
    baseline_days: int,
    limit: int,
    now: dt.datetime | None,
    items: _WindowItems | None,
) -> TrendReport:
    """The report of one scope (see :func:`compute_report`): rising, new, leading and watch
    lists. Long because it is one pass over the read counts; the steps are commented."""
    now = now or dt.datetime.now(dt.UTC)
    ws = end - dt.timedelta(days=window_days - 1)
    bs = ws - dt.timedelta(days=baseline_days)
    day_rows = session.execute(
        sa.select(DayTotal.day, DayTotal.n_docs).where(
            DayTotal.scope == scope, DayTotal.day >= bs, DayTotal.day <= end
        )
    ).all()
    day_totals = {d: n for d, n in day_rows}
    n1 = sum(n for d, n in day_totals.items() if d >= ws)
    n2 = sum(n for d, n in day_totals.items() if d < ws)
    empty = TrendReport(scope, end, window_days, baseline_days, n1, n2, now)
    if n1 == 0:
        return empty
    support = min_support(n1)
    per_day = _read_days(session, scope, bs, end)
    win_days = [v for d, v in per_day.items() if d >= ws and len(v[0])]
    if not win_days:
        return empty
    # window dfs and days of every term in the window (sparse: ids are not dense over time)
    ids, inverse = np.unique(np.concatenate([i for i, _ in win_days]), return_inverse=True)
    a_all = np.bincount(inverse, weights=np.concatenate([f for _, f in win_days])).astype(np.int64)
    days_all = np.bincount(inverse)
    b_all = _baseline_counts(ids, per_day, ws)
    # terms in enough items to be tested at all (a + b ≥ support; all have a ≥ 1)
    idx = np.flatnonzero(a_all + b_all >= support)
    if not len(idx):
        return empty
    names = _term_rows(session, scope, ids[idx])
    items = items or _WindowItems(session, ws, end)
    win = items.view(scope)
    # testable: the lexicon's terms, and single words that are coined names or acronyms
    lex = lexicon.current(session)
    reportable = _reportable(lex, win, [names[int(i)][0] for i in ids[idx]], a_all[idx])
    idx = idx[reportable]
    a = a_all[idx]
    b = b_all[idx]
    # the expected window count follows the window's mix of categories and sources, and
    # window items of strata the baseline never saw are not tested (:mod:`.strata`)
    adj = strata.adjust(session, scope, ids[idx], a, b, bs, ws, end, n1, n2)
    expected = adj.expected
    a_t = adj.a.astype(np.int64)
    n1_t = adj.n1
    lift = ((a_t + 0.5) / (n1_t + 1)) / ((b + 0.5) / (n2 + 1)) / adj.rho
    eligible = (a_t >= support) & (days_all[idx] >= 2) & (lift >= MIN_LIFT) & (a > expected)
    p = np.ones(len(idx))
    p[eligible] = rising_p_values(a_t[eligible], b[eligible], n1_t[eligible], n2, adj.rho[eligible])
    p0 = n1_t * adj.rho / (n1_t * adj.rho + n2)
    p_min = p0 ** (a_t + b).astype(np.float64)  # all K items in the window
    rejected, q, tested = fdr_select(p, p_min, FDR)
    g2 = log_likelihood_g2(a, b, n1, max(n2, 0))
    new_since = ws - dt.timedelta(days=window_days)

    def cand(i: int) -> _Cand:
        term_id = int(ids[idx[i]])
        term, first_ord = names[term_id]
        first_day = dt.date.fromordinal(first_ord) if first_ord else None
        is_new = first_day is not None and first_day >= new_since
        c = _Cand(term, int(a[i]), int(b[i]), float(g2[i]), float(lift[i]), first_day, is_new)
        c.term_id, c.p, c.q, c.expected = term_id, float(p[i]), float(q[i]), float(expected[i])
        return c

    cands = sorted((cand(int(i)) for i in np.flatnonzero(rejected)), key=lambda c: (-c.g2, c.term))
    # blog attention and examples for the best candidates only
    top = cands[: max(3 * limit, 60)]
    top_ids = {id(c) for c in top}
    top += [c for c in cands if c.is_new and id(c) not in top_ids][: 2 * limit]
    win.attach_examples(top)
    for c in top:
        c.score = c.g2 * (1.0 + 0.5 * math.log1p(c.posts))
    top.sort(key=lambda c: (-c.score, c.term))
    rising = collapse(top, win.docs)[:limit]
    new = collapse([c for c in top if c.is_new], win.docs)[:limit]

    # the week's leading topics (most frequent lexicon terms) and the watch list (the strongest
    # rises that did not reach the false-discovery rate): shown, labelled, when nothing rises
    # (a single word in more than MAX_WORD_SHARE of the window's items is this scope's common
    # vocabulary, "representation" or "visual" in a month of papers, even when the lexicon's
    # sample, diluted by years of blog archives, let it in)
    def leads(i: int, count: int) -> bool:
        term = names[int(ids[i])][0]
        return term in lex and (" " in term or count <= lexicon.MAX_WORD_SHARE * n1)

    topical = np.fromiter((leads(int(i), int(a[k])) for k, i in enumerate(idx)), dtype=bool, count=len(idx))
    lead_idx = np.flatnonzero(topical)
    lead_idx = lead_idx[np.argsort(-a[lead_idx], kind="stable")][: 3 * LEADING_LIMIT]
    watch_idx = np.flatnonzero(eligible & ~rejected)
    watch_idx = watch_idx[np.argsort(p[watch_idx], kind="stable")][: 3 * WATCH_LIMIT]
    leading_c = [cand(int(i)) for i in lead_idx]
    watch_c = [cand(int(i)) for i in watch_idx]
    win.attach_examples(leading_c + watch_c)
    for c in leading_c + watch_c:
        c.score = c.g2
    leading = sorted(collapse(leading_c, win.docs), key=lambda c: -c.a)[:LEADING_LIMIT]  # by shown count
    watch = collapse(watch_c, win.docs)[:WATCH_LIMIT]
    shown = rising + new + leading + watch
    series = _series({c.term: c.term_id for c in shown}, per_day, day_totals)

    def out(c: _Cand) -> TrendTerm:
        return TrendTerm(
            term=c.term,
            label=win.label(c.term),
            score=round(c.score, 3),
            g2=round(c.g2, 3),
            window_count=c.a,
            baseline_count=c.b,
            window_share=round(c.a / n1, 6),
            baseline_share=round(c.b / n2, 6) if n2 else 0.0,
            lift=round(c.lift, 3),
            first_seen=c.first_seen,
            is_new=c.is_new,
            posts=c.posts,
            series=series.get(c.term, ()),
            examples=tuple(c.examples[:MAX_EXAMPLES]),
            variants=tuple(dict.fromkeys(c.variants)),
            p_value=float(f"{c.p:.3g}"),
            q_value=float(f"{c.q:.3g}"),
            expected_count=round(c.expected, 2),
        )

    return dataclasses.replace(
        empty,
        tested=tested,
        terms=tuple(map(out, rising)),
        new_terms=tuple(map(out, new)),
        leading=tuple(map(out, leading)),
        watch=tuple(map(out, watch)),
    )


def _read_days(
    session: Session, scope: str, start: dt.date, end: dt.date
) -> dict[dt.date, tuple[np.ndarray, np.ndarray]]:
    """The unpacked ``term_counts`` rows of ``scope`` from ``start`` to ``end`` (inclusive):
    day → (sorted term ids, dfs). One primary-key range read."""
    tc: Any = TermCount.__table__
    return {
        day: unpack_counts(n_terms, data)
        for day, n_terms, data in session.execute(
            sa.select(tc.c.day, tc.c.n_terms, tc.c.data).where(
                tc.c.scope == scope, tc.c.day >= start, tc.c.day <= end
            )
        )
    }


def _baseline_counts(
    ids: np.ndarray, per_day: dict[dt.date, tuple[np.ndarray, np.ndarray]], ws: dt.date
) -> np.ndarray:
    """Baseline dfs (days before ``ws``) of the sorted term ``ids``: one binary search of each
    baseline day's sorted ids."""
    out = np.zeros(len(ids), np.int64)
    if not len(ids):
        return out
    for d, (day_ids, day_dfs) in per_day.items():
        if d < ws and len(day_ids):
            pos = np.minimum(np.searchsorted(ids, day_ids), len(ids) - 1)
            hit = ids[pos] == day_ids
            out[pos[hit]] += day_dfs[hit]
    return out


def _reportable(lex: lexicon.Lexicon, win: Any, terms: list[str], counts: np.ndarray) -> np.ndarray:
    """Which terms may be reported: the lexicon's terms (:mod:`.lexicon`); single words that are
    coined names or acronyms in the window (:meth:`_Window.is_name`: ``GRPO``, ``Qwen3``) and
    not evaluation vocabulary; and a phrase that is the full form of such a name (it holds at
    least :data:`lexicon.FRAGMENT_SHARE` of the name's window items: ``ZorbLax routing``), since
    a name coined this week has no history for the lexicon to learn from. Returns a bool array."""
    window_count = dict(zip(terms, counts.tolist(), strict=True))
    names = {t for t in terms if " " not in t and win.is_name(t) and not lexicon.is_evaluation(t)}

    def ok(t: str) -> bool:
        if t in lex or t in names:
            return True
        words = t.split()
        return (
            len(words) > 1
            and words[0] in names
            and not CONNECTORS.intersection(words)
            and window_count[t] >= lexicon.FRAGMENT_SHARE * window_count[words[0]]
        )

    return np.fromiter(map(ok, terms), dtype=bool, count=len(terms))


def _term_rows(session: Session, scope: str, ids: np.ndarray) -> dict[int, tuple[str, int | None]]:
    """Term text and first day in ``scope`` (``date.toordinal()`` or None) by term id: one
    indexed look-up per 100,000 ids (a JSON array on SQLite, an array parameter on PostgreSQL),
    fetched through the driver's cursor (tens of thousands of rows for a large window)."""
    conn = session.connection()
    postgres = conn.dialect.name == "postgresql"
    first = FIRST_COLUMNS[scope]
    out: dict[int, tuple[str, int | None]] = {}
    cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        for part in _batched([int(i) for i in ids], 100_000):
            if postgres:
                cur.execute(f"SELECT id, term, {first} FROM terms WHERE id = ANY(%s)", (list(part),))
            else:
                cur.execute(
                    f"SELECT t.id, t.term, t.{first} FROM json_each(?) j JOIN terms t ON t.id = j.value",
                    (json.dumps(list(part)),),
                )
            out.update((term_id, (term, day)) for term_id, term, day in cur.fetchall())
    finally:
        cur.close()
    return out


def _series(
    term_ids: dict[str, int],
    per_day: dict[dt.date, tuple[np.ndarray, np.ndarray]],
    day_totals: dict[dt.date, int],
) -> dict[str, tuple[DayCount, ...]]:
    days = sorted(d for d, n in day_totals.items() if n > 0)
    wanted = np.array(sorted(set(term_ids.values())), dtype=np.int64)
    counts: dict[int, dict[dt.date, int]] = defaultdict(dict)
    for day in days:
        ids, dfs = per_day.get(day, (np.zeros(0, np.int64), np.zeros(0, np.int64)))
        pos = np.searchsorted(ids, wanted)
        for k, j in enumerate(pos):
            if j < len(ids) and ids[j] == wanted[k]:
                counts[int(wanted[k])][day] = int(dfs[j])
    return {
        t: tuple(DayCount(d, counts[i].get(d, 0), day_totals[d]) for d in days)
        for t, i in sorted(term_ids.items())
    }
