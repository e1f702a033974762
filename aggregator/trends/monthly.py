"""The monthly report and the week's headline terms (rising, else leading topics).

Readers are told to keep up with the field monthly (issue 16): :func:`month_reports` gives a
calendar month's rising and leading topics per scope, the month (28–31 days) against the 365
days before it; the page ``/trends/month`` and the first weekly email of each month show it. The worker stores
them after each ingest (:func:`store_months`: the month of the newest day with papers and the
month before it, recomputed only when their inputs changed), so the page and the email read a
stored result.
:func:`headline_terms` gives the weekly email its "rising this week" terms, or, when nothing
rises significantly, the week's leading topics, saying which.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session

import aggregator.trends.lexicon as lexicon
from aggregator.store.trends_tables import TrendResult
from aggregator.trends.counts import SCOPES
from aggregator.trends.detect import STORED_LIMIT, _compute, compute_report, latest_day
from aggregator.trends.report import TrendReport, TrendTerm
from aggregator.trends.results import _inputs, store_report, stored_report
from aggregator.trends.window import _WindowItems

#: The monthly report compares the calendar month with this many days before it.
MONTH_BASELINE_DAYS = 365


@dataclass(frozen=True, slots=True)
class MonthSection:
    """One scope of a monthly report: the report, its first ``limit`` rising terms and
    leading topics."""

    scope: str
    report: TrendReport
    rising: tuple[TrendTerm, ...]
    leading: tuple[TrendTerm, ...]


def month_bounds(session: Session, month: dt.date) -> tuple[dt.date, dt.date]:
    """The first and last UTC day of ``month``'s report: the calendar month, ending at the
    latest day with papers when the month is not over."""
    first = month.replace(day=1)
    last = first.replace(day=calendar.monthrange(first.year, first.month)[1])
    latest = latest_day(session)
    if latest is not None and first <= latest < last:
        last = latest
    return first, last


def month_reports(
    session: Session, month: dt.date, limit: int = 10, scopes: tuple[str, ...] = SCOPES
) -> list[MonthSection]:
    """Per scope, the month's report: stored results, else computed (the window's items read
    once for all scopes) and stored, then committed."""
    first, last = month_bounds(session, month)
    days = (last - first).days + 1
    items: _WindowItems | None = None
    out = []
    for scope in scopes:
        report = stored_report(
            session, scope=scope, window_days=days, baseline_days=MONTH_BASELINE_DAYS, end=last
        )
        if report is None:  # the window's items are read once for all scopes
            items = items or _WindowItems(session, first, last)
            report = _compute(session, scope, last, days, MONTH_BASELINE_DAYS, STORED_LIMIT, None, items)
            store_report(session, report, latest=False)
        out.append(MonthSection(scope, report, tuple(report.terms[:limit]), tuple(report.leading[:limit])))
    session.commit()
    return out


def store_months(session: Session, scopes: tuple[str, ...] = SCOPES) -> int:
    """Store the monthly reports the page and the email read: per scope, the month of the
    newest day with papers (to that day) and the calendar month before it (the one the first
    weekly email of a month carries), each recomputed only when the digest of its inputs
    (:func:`aggregator.trends.results._inputs`: day totals, window items, links, lexicon,
    detection version) differs from the stored one. Runs in the caller's transaction (the
    worker's, after :func:`aggregator.trends.refresh_results`). Returns how many reports were
    computed (0 when nothing changed or nothing was counted)."""
    latest = latest_day(session)
    if latest is None:
        return 0
    this = latest.replace(day=1)
    before = (this - dt.timedelta(days=1)).replace(day=1)
    lex = lexicon.current(session)
    computed = 0
    for month in (this, before):
        first, last = month_bounds(session, month)
        days = (last - first).days + 1
        digests = _inputs(session, last, days, MONTH_BASELINE_DAYS, scopes, lex)
        items: _WindowItems | None = None
        for scope in scopes:
            row = session.get(TrendResult, (scope, days, MONTH_BASELINE_DAYS, last))
            if row is not None and row.inputs == digests[scope]:
                continue
            items = items or _WindowItems(session, first, last)
            report = _compute(session, scope, last, days, MONTH_BASELINE_DAYS, STORED_LIMIT, None, items)
            store_report(session, report, latest=False, inputs=digests[scope])
            computed += 1
    return computed


def headline_terms(
    session: Session,
    end: dt.date,
    *,
    window_days: int = 7,
    baseline_days: int = 56,
    scope: str = "all",
    limit: int = 8,
) -> tuple[list[TrendTerm], bool]:
    """(terms, rising): the rising terms of the window ending ``end``, or, when none rises
    significantly, its leading topics with ``rising`` False. Reads the stored result, else
    computes it without storing."""
    report = stored_report(
        session, scope=scope, window_days=window_days, baseline_days=baseline_days, end=end
    )
    if report is None:
        report = compute_report(
            session, end=end, window_days=window_days, baseline_days=baseline_days, scope=scope, limit=limit
        )
    if report.terms:
        return list(report.terms[:limit]), True
    return list(report.leading[:limit]), False
