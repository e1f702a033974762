"""The term explorer and the monthly report (issue 16).

* ``GET /api/trends/series?term=&category=&interval=day|week|month&from=&to=`` → ``{"term",
  "scope", "interval", "points": [{"start", "count", "total", "share"}]}``: one term's share of
  the scope's items per point (:func:`aggregator.trends.series.term_series`). The term is
  normalised as at ingest; a phrase never counted has zero counts; a phrase that can never be
  a term is a 422 saying why.
* ``GET /trends/term?q=`` draws one or several phrases' shares (comma-separated) as an inline
  SVG chart, and lists the papers and posts behind the chosen point (``at=``).
* ``GET /trends/month?month=YYYY-MM`` is the month's rising and leading topics per scope (the
  calendar month against the 365 days before it).
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from aggregator import trends
from aggregator.api.auth import WebSessionDep
from aggregator.api.deps import SessionDep, unprocessable
from aggregator.api.errors import HTML_422
from aggregator.api.routes.digest import IsoDate
from aggregator.trends import series

router = APIRouter()

ScopeQuery = Annotated[
    Literal["all", "cs.LG", "cs.CV", "cs.CL", "blogs"] | None, Query(description="scope of the counts")
]
IntervalQuery = Annotated[
    Literal["day", "week", "month"], Query(description="one point per day, ISO week or month")
]
FromQuery = Annotated[IsoDate | None, Query(alias="from", description="first day YYYY-MM-DD (UTC)")]
ToQuery = Annotated[
    IsoDate | None, Query(alias="to", description="last day YYYY-MM-DD (UTC; default: latest)")
]
#: Colours of the chart's lines, one per phrase (colour-blind safe, Okabe & Ito 2008).
COLOURS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9")
MAX_PHRASES = len(COLOURS)


class SeriesPoint(BaseModel):
    start: dt.date = Field(description="first UTC day of the point (Monday for weeks, 1st for months)")
    count: int = Field(description="items of the point containing the term")
    total: int = Field(description="items counted in the point in the scope")
    share: float = Field(description="count / total, 0..1 (0 when total is 0)")


class SeriesResponse(BaseModel):
    term: str = Field(description="the phrase normalised as at ingest")
    scope: str
    interval: str
    points: list[SeriesPoint]


def _range(
    session: Any, interval: str, start: dt.date | None, end: dt.date | None
) -> tuple[dt.date, dt.date]:
    end = end or trends.latest_day(session) or dt.datetime.now(dt.UTC).date()
    start = start or end - dt.timedelta(days=series.DEFAULT_SPAN[interval])
    if start > end:
        raise unprocessable(f"from ({start}) is after to ({end})", ("query", "from"))
    if (end - start).days > series.MAX_SPAN_DAYS:
        raise unprocessable(f"a series covers at most {series.MAX_SPAN_DAYS} days", ("query", "from"))
    return start, end


def _phrase(text: str, loc: tuple[str, ...] = ("query", "term")) -> str:
    try:
        return series.parse_phrase(text)
    except ValueError as err:
        raise unprocessable(str(err), loc) from err


@router.get(
    "/api/trends/series",
    response_model=SeriesResponse,
    tags=["trends"],
    responses={422: {"description": "a phrase that can never be a term (says why), or a bad range"}},
)
def get_series(
    session: SessionDep,
    term: Annotated[str, Query(max_length=200, description="a phrase, e.g. 'mixture of experts'")],
    category: ScopeQuery = "all",
    interval: IntervalQuery = "week",
    start: FromQuery = None,
    end: ToQuery = None,
) -> SeriesResponse:
    """One term's share of the scope's items over time, from the stored daily counts."""
    normal = _phrase(term)
    lo, hi = _range(session, interval, start, end)
    scope = trends.parse_scope(category)
    return SeriesResponse.model_validate(series.term_series(session, normal, scope, interval, lo, hi))


def chart(lines: list[dict[str, Any]], width: int = 720, height: int = 260) -> dict[str, Any]:
    """SVG geometry of several series of one interval: per line its polyline points and its
    dots (x, y, start, count, total, share %), and the y-axis ticks (share in %). Points
    without counted items are left out of the line."""
    pad_l, pad_r, pad_t, pad_b = 48, 12, 12, 28
    n = max((len(line["points"]) for line in lines), default=0)
    top = max((p["share"] for line in lines for p in line["points"]), default=0.0) or 0.01
    step = (width - pad_l - pad_r) / max(n - 1, 1)

    def y(share: float) -> float:
        return round(height - pad_b - share / top * (height - pad_t - pad_b), 1)

    for line in lines:
        dots = [
            {**p, "x": round(pad_l + i * step, 1), "y": y(p["share"]), "pct": round(100 * p["share"], 3)}
            for i, p in enumerate(line["points"])
            if p["total"]
        ]
        line["dots"] = dots
        line["polyline"] = " ".join(f"{d['x']},{d['y']}" for d in dots)
    ticks = [{"y": y(top * k / 4), "label": f"{100 * top * k / 4:.2g}%"} for k in range(5)]
    first = lines[0]["points"] if lines else []
    every = max(1, n // 8)
    xlabels = [
        {"x": round(pad_l + i * step, 1), "label": p["start"].isoformat()}
        for i, p in enumerate(first)
        if i % every == 0
    ]
    return {
        "width": width,
        "height": height,
        "ticks": ticks,
        "xlabels": xlabels,
        "left": pad_l,
        "bottom": height - pad_b,
    }


def split_phrases(q: str) -> list[str]:
    """The phrases of the ``q`` parameter: comma- or semicolon-separated, blanks dropped."""
    return [p.strip() for p in re.split(r"[,;]", q or "") if p.strip()][:MAX_PHRASES]


@router.get("/trends/term", response_class=HTMLResponse, tags=["pages"], responses=HTML_422)
def term_page(
    request: Request,
    session: SessionDep,
    ws: WebSessionDep,
    q: Annotated[str, Query(max_length=400, description="one or several phrases, comma-separated")] = "",
    category: ScopeQuery = "all",
    interval: IntervalQuery = "week",
    start: FromQuery = None,
    end: ToQuery = None,
    at: Annotated[IsoDate | None, Query(description="the point whose items are listed")] = None,
) -> HTMLResponse:
    """Shares of one or several phrases over time, with the papers and posts behind a point."""
    from aggregator.api.pages.public import templates

    scope = trends.parse_scope(category)
    lo, hi = _range(session, interval, start, end)
    lines, problems = [], []
    for i, text in enumerate(split_phrases(q)):
        try:
            normal = series.parse_phrase(text)
        except ValueError as err:
            problems.append(str(err))
            continue
        line = series.term_series(session, normal, scope, interval, lo, hi)
        line.update(phrase=text, colour=COLOURS[i % len(COLOURS)])
        lines.append(line)
    geometry = chart(lines)
    if lines and at is None:  # default: the last point where the first phrase occurs
        hits = [p["start"] for p in lines[0]["points"] if p["count"]]
        at = hits[-1] if hits else None
    behind = []
    if at is not None:
        at = series.bucket_start(at, interval)
        last = series.bucket_end(at, interval)
        for line in lines:
            found, n = series.point_items(session, line["term"], scope, at, last)
            behind.append({"line": line, "found": found, "n": n, "end": last})
    return templates.TemplateResponse(
        request,
        "trends_term.html",
        {
            "q": q,
            "ws": ws,
            "lines": lines,
            "problems": problems,
            "chart": geometry,
            "scope": scope,
            "scopes": trends.SCOPES,
            "interval": interval,
            "start": lo,
            "end": hi,
            "at": at,
            "behind": behind,
        },
    )


def parse_month(text: str | None, session: Any) -> dt.date:
    """``"2026-06"`` → 2026-06-01; default: the month of the latest day with papers."""
    if not text:
        latest = trends.latest_day(session) or dt.datetime.now(dt.UTC).date()
        return latest.replace(day=1)
    m = re.fullmatch(r"(\d{4})-(\d{2})", text.strip())
    if m is None or not 1 <= int(m.group(2)) <= 12:
        raise unprocessable(f"month must look like 2026-06, not {text!r}", ("query", "month"))
    return dt.date(int(m.group(1)), int(m.group(2)), 1)


@router.get("/trends/month", response_class=HTMLResponse, tags=["pages"], responses=HTML_422)
def month_page(
    request: Request,
    session: SessionDep,
    ws: WebSessionDep,
    month: Annotated[str | None, Query(max_length=7, description="YYYY-MM (default: latest)")] = None,
) -> HTMLResponse:
    """The month's rising and leading topics per category (the month against the year before)."""
    from aggregator.api.pages.public import templates

    first = parse_month(month, session)
    prev = (first - dt.timedelta(days=1)).replace(day=1)
    nxt = (first + dt.timedelta(days=32)).replace(day=1)
    return templates.TemplateResponse(
        request,
        "trends_month.html",
        {
            "month": first,
            "ws": ws,
            "prev": prev,
            "next": nxt,
            "sections": trends.month_reports(session, first),
            "fdr": trends.FDR,
            "baseline_days": trends.MONTH_BASELINE_DAYS,
        },
    )
