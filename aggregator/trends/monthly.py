"""The monthly report and the week's headline terms (rising, else leading topics).

Readers are told to keep up with the field monthly (issue 16): :func:`month_reports` gives a
calendar month's rising and leading topics per scope, the month (28–31 days) against the 365
days before it; the page ``/trends/month`` and the first weekly email of each month show it.
:func:`headline_terms` gives the weekly email its "rising this week" terms, or, when nothing
rises significantly, the week's leading topics, saying which.
"""

from __future__ import annotations

import calendar
import datetime as dt
from dataclasses import dataclass

from sqlalchemy.orm import Session

from aggregator.trends.counts import SCOPES
from aggregator.trends.detect import STORED_LIMIT, _compute, compute_report, latest_day
from aggregator.trends.report import TrendReport, TrendTerm
from aggregator.trends.results import store_report, stored_report
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
