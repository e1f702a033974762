"""Stored results: refreshed after each ingest, read by the API, the pages and the email."""

from __future__ import annotations

import datetime as dt
import hashlib
from collections import defaultdict
from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

import aggregator.trends.lexicon as lexicon
from aggregator.store.tables import Item, ItemLink
from aggregator.store.trends_tables import DayTotal, TrendResult
from aggregator.trends.counts import SCOPES
from aggregator.trends.detect import (
    DEFAULT_BASELINE_DAYS,
    DEFAULT_WINDOW_DAYS,
    FDR,
    STORED_LIMIT,
    _compute,
    compute_report,
    latest_day,
)
from aggregator.trends.report import TrendReport, TrendTerm
from aggregator.trends.window import _WindowItems

# --- stored results ----------------------------------------------------------------------------


def store_report(
    session: Session, report: TrendReport, *, latest: bool = False, inputs: str | None = None
) -> None:
    """Save a report in ``trend_results`` (replacing one with the same key); with ``latest``
    it becomes the one served when no end day is asked for. ``inputs`` is the digest of what it
    was computed from (:func:`refresh_results`)."""
    key = (report.scope, report.window_days, report.baseline_days)
    if latest:
        session.execute(
            sa.update(TrendResult)
            .where(
                TrendResult.scope == key[0],
                TrendResult.window_days == key[1],
                TrendResult.baseline_days == key[2],
                TrendResult.is_latest.is_(True),
                TrendResult.end_day != report.end,
            )
            .values(is_latest=False)
        )
    row = session.get(TrendResult, (*key, report.end))
    if row is None:
        row = TrendResult(scope=key[0], window_days=key[1], baseline_days=key[2], end_day=report.end)
        session.add(row)
    row.is_latest = latest or bool(row.is_latest)
    row.computed_at = report.computed_at
    row.payload = report.to_json()
    row.inputs = inputs
    session.flush()


#: Part of every result's inputs digest: changed whenever detection changes, so that stored
#: results are recomputed by the next refresh.
DETECTION_VERSION = (
    "2026-12d lexicon (words need ridf >= 0.6 and coherence; phrases ridf >= 0.1, connector and "
    "bound-word fragments, no modifiers), strata by category x source, exact test, BH FDR; leading + watch, "
    "labels by the completing phrase; leading single words in <= 5 % of the window; lexicon from papers"
)


def _inputs(
    session: Session,
    end: dt.date,
    window_days: int,
    baseline_days: int,
    scopes: Sequence[str],
    lex: lexicon.Lexicon | None = None,
) -> dict[str, str]:
    """A digest per scope of everything its result depends on: the scope's day totals over the
    window and baseline (counts only grow with counted items, so equal totals mean equal counts),
    the number and last update of the window's posts (``all``, ``blogs``) or papers (``all``,
    the categories), the number and last creation of paper-post links (not ``blogs``: posts
    there count themselves), :data:`DETECTION_VERSION` and the parameters. Three small queries
    for all scopes."""
    ws = end - dt.timedelta(days=window_days - 1)
    bs = ws - dt.timedelta(days=baseline_days)
    totals: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for scope, day, n in session.execute(
        sa.select(DayTotal.scope, DayTotal.day, DayTotal.n_docs)
        .where(DayTotal.day >= bs, DayTotal.day <= end)
        .order_by(DayTotal.scope, DayTotal.day)
    ):
        totals[scope].append((day.isoformat(), n))
    links = tuple(session.execute(sa.select(sa.func.count(), sa.func.max(ItemLink.created_at))).one())
    lo = dt.datetime.combine(ws, dt.time(0), dt.UTC)
    hi = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(0), dt.UTC)
    items = {
        kind: (n, last)
        for kind, n, last in session.execute(
            sa.select(Item.kind, sa.func.count(), sa.func.max(Item.updated_at))
            .where(Item.published >= lo, Item.published < hi)
            .group_by(Item.kind)
        )
    }
    learned = None if lex is None else (lex.n_docs, lex.through, len(lex.terms))
    common = (DETECTION_VERSION, learned, FDR, STORED_LIMIT, end.isoformat(), window_days, baseline_days)
    out = {}
    for scope in scopes:
        kinds = {"all": ("paper", "post"), "blogs": ("post",)}.get(scope, ("paper",))
        parts = (
            *common,
            scope,
            totals.get(scope, []),
            [items.get(k) for k in kinds],
            None if scope == "blogs" else links,
        )
        out[scope] = hashlib.sha256(repr(parts).encode()).hexdigest()
    return out


def refresh_results(
    session: Session,
    *,
    end: dt.date | None = None,
    window_days: int = DEFAULT_WINDOW_DAYS,
    baseline_days: int = DEFAULT_BASELINE_DAYS,
    scopes: Sequence[str] = SCOPES,
    now: dt.datetime | None = None,
) -> list[TrendReport]:
    """Compute and store the results of every scope for the window ending ``end`` (default:
    the latest day with counted items), marked as the latest. Returns the reports.

    Cheap after every ingest: a scope whose latest stored result for that window has the same
    inputs digest (:func:`_inputs`: day totals, links, window items, detection version) is kept
    as it is (a blog-only ingest leaves the three arXiv categories alone, a repeated one
    everything); the others are computed with the window's items read once and shared.
    Raises ``ValueError`` for an unknown scope or non-positive day counts."""
    end = end or latest_day(session)
    if end is None:
        return []
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise ValueError(f"unknown scope {unknown[0]!r}; one of {', '.join(SCOPES)}")
    if window_days < 1 or baseline_days < 1:
        raise ValueError("window and baseline must be at least one day")
    lex = lexicon.refresh(session, end)
    digests = _inputs(session, end, window_days, baseline_days, scopes, lex)
    items: _WindowItems | None = None
    reports = []
    for scope in scopes:
        row = session.get(TrendResult, (scope, window_days, baseline_days, end))
        if row is not None and row.is_latest and row.inputs == digests[scope]:
            reports.append(TrendReport.from_json(row.payload))  # unchanged since computed
            continue
        # the window's items are read (and tokenised for examples) once for all scopes
        items = items or _WindowItems(session, end - dt.timedelta(days=window_days - 1), end)
        report = _compute(session, scope, end, window_days, baseline_days, STORED_LIMIT, now, items)
        store_report(session, report, latest=True, inputs=digests[scope])
        reports.append(report)
    return reports


def stored_payload(
    session: Session,
    *,
    scope: str = "all",
    window_days: int = DEFAULT_WINDOW_DAYS,
    baseline_days: int = DEFAULT_BASELINE_DAYS,
    end: dt.date | None = None,
) -> dict[str, Any] | None:
    """The stored JSON of a report (:meth:`TrendReport.to_json` shape) for the key, the latest
    one when ``end`` is None; None when not stored. One primary-key or small-index read."""
    q = sa.select(TrendResult.payload).where(
        TrendResult.scope == scope,
        TrendResult.window_days == window_days,
        TrendResult.baseline_days == baseline_days,
    )
    q = q.where(TrendResult.is_latest.is_(True)) if end is None else q.where(TrendResult.end_day == end)
    return session.scalar(q.order_by(TrendResult.end_day.desc()).limit(1))


def stored_report(
    session: Session,
    *,
    scope: str = "all",
    window_days: int = DEFAULT_WINDOW_DAYS,
    baseline_days: int = DEFAULT_BASELINE_DAYS,
    end: dt.date | None = None,
) -> TrendReport | None:
    """The stored report for the key (the latest one when ``end`` is None), or None."""
    payload = stored_payload(
        session, scope=scope, window_days=window_days, baseline_days=baseline_days, end=end
    )
    return None if payload is None else TrendReport.from_json(payload)


def get_report(
    session: Session,
    *,
    scope: str = "all",
    window_days: int = DEFAULT_WINDOW_DAYS,
    baseline_days: int = DEFAULT_BASELINE_DAYS,
    end: dt.date | None = None,
) -> TrendReport | None:
    """A stored report, or (for a window/baseline/end not precomputed) one computed now and
    stored as a cache. None when nothing has been counted yet."""
    report = stored_report(
        session, scope=scope, window_days=window_days, baseline_days=baseline_days, end=end
    )
    if report is not None:
        return report
    day = end or latest_day(session)
    if day is None:
        return None
    report = compute_report(
        session, end=day, window_days=window_days, baseline_days=baseline_days, scope=scope
    )
    store_report(session, report, latest=end is None)
    _prune_on_demand(session)
    session.commit()
    return report


#: Reports computed on demand (an end day, window or baseline the refresh does not keep) that
#: are kept, newest first; older ones are deleted, so that asking for many end days cannot
#: grow ``trend_results`` without bound.
ON_DEMAND_KEEP = 500


def _prune_on_demand(session: Session, keep: int | None = None) -> int:
    """Delete the stored non-latest reports beyond the ``keep`` (default
    :data:`ON_DEMAND_KEEP`) most recently computed; returns how many were deleted."""
    keep = ON_DEMAND_KEEP if keep is None else keep
    key = (TrendResult.scope, TrendResult.window_days, TrendResult.baseline_days, TrendResult.end_day)
    old = (
        sa.select(*key)
        .where(TrendResult.is_latest.is_(False))
        .order_by(TrendResult.computed_at.desc())
        .offset(keep)
    )
    doomed = session.execute(old).all()
    for row in doomed:
        session.execute(sa.delete(TrendResult).where(*(c == v for c, v in zip(key, row, strict=True))))
    return len(doomed)


def top_rising(
    session: Session,
    *,
    end: dt.date,
    window_days: int = DEFAULT_WINDOW_DAYS,
    baseline_days: int = DEFAULT_BASELINE_DAYS,
    scope: str = "all",
    limit: int = 10,
) -> list[TrendTerm]:
    """The ``limit`` best rising terms of ``scope`` for the ``window_days`` UTC days ending
    ``end`` (inclusive) against the ``baseline_days`` days before (chosen at :data:`FDR`, ranked
    by Dunning's G² and blog attention, see the module doc), best first; possibly none. For the
    weekly email. Reads the stored result for that end day when there is one, else computes it
    (a few hundred ms on a month of arXiv) without storing. Raises ``ValueError`` for an
    unknown scope."""
    report = stored_report(
        session, scope=scope, window_days=window_days, baseline_days=baseline_days, end=end
    )
    if report is None:
        report = compute_report(
            session, end=end, window_days=window_days, baseline_days=baseline_days, scope=scope, limit=limit
        )
    return list(report.terms[:limit])
