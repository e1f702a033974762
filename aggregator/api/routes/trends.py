"""Trend routes: ``GET /api/trends`` (JSON) and ``GET /trends`` (HTML with SVG sparklines).

Both read stored results (:func:`aggregator.trends.get_report`): the default 7 d / 56 d window
of every scope is precomputed after each ingest; another window/baseline/end is computed on
first request and stored as a cache.
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

router = APIRouter()

#: Windows up to a month, baselines up to two years (issue 16: readers keep up monthly).
WINDOW_RANGE = (1, 31)
BASELINE_RANGE = (7, 730)
_DAYS = re.compile(r"^\s*(\d{1,3})\s*d?\s*$", re.IGNORECASE)


def parse_days(text: str, name: str) -> int:
    """``"7d"`` (or ``"7"``) → 7. Windows are 1–31 days, baselines 7–730 days. Raises ``ValueError``."""
    m = _DAYS.match(text or "")
    lo, hi = WINDOW_RANGE if name == "window" else BASELINE_RANGE
    if m is None:
        raise ValueError(f"{name} must be a number of days like '7d' or '7', not {text!r}")
    days = int(m.group(1))
    if not lo <= days <= hi:
        raise ValueError(f"{name} must be between {lo}d and {hi}d, not {days}d")
    return days


class DailyCount(BaseModel):
    date: dt.date
    count: int = Field(description="items of that UTC day containing the term")
    total: int = Field(description="items counted that day in the scope")


class TrendExample(BaseModel):
    id: int
    title: str
    url: str | None
    kind: str = Field(description="'paper' or 'post'")


class TrendTermOut(BaseModel):
    term: str = Field(description="normalised term (case-folded, singular, hyphens as spaces)")
    label: str = Field(description="display form (acronyms upper-cased)")
    score: float = Field(description="rank score: Dunning G² × blog-attention factor")
    g2: float = Field(description="Dunning (1993) log-likelihood ratio G² of window vs baseline")
    window_count: int = Field(description="window items containing the term")
    baseline_count: int = Field(description="baseline items containing the term")
    window_share: float = Field(description="window_count / window items, 0..1")
    baseline_share: float = Field(description="baseline_count / baseline items, 0..1")
    lift: float = Field(description="smoothed window share / baseline share")
    first_seen: dt.date | None = Field(description="first UTC day the term was counted in the scope")
    is_new: bool = Field(description="first seen no earlier than one window before the window")
    posts: int = Field(description="blog posts in the window mentioning it or discussing its papers")
    series: list[DailyCount] = Field(description="daily counts from the baseline start to the end")
    examples: list[TrendExample] = Field(description="items of the window behind the trend")
    variants: list[str] = Field(description="near-duplicate terms collapsed into this one")
    p_value: float | None = Field(
        None, description="one-sided exact p-value of the rise (None in results stored before it existed)"
    )
    q_value: float | None = Field(
        None,
        description="Benjamini-Hochberg adjusted p-value among the report's tested terms; listed terms "
        f"have q_value <= the false discovery rate ({trends.FDR:g})",
    )
    expected_count: float | None = Field(
        None,
        description="window items the baseline predicts for the window's mix of categories and "
        "sources (mix-shift correction); lift and p-value are taken against it",
    )


class TrendsResponse(BaseModel):
    scope: str
    end: dt.date = Field(description="last day of the window (UTC), inclusive")
    window_days: int
    baseline_days: int
    window_docs: int = Field(description="items counted in the window")
    baseline_docs: int = Field(description="items counted in the baseline")
    computed_at: dt.datetime
    terms: list[TrendTermOut] = Field(description="rising terms, best first")
    new_terms: list[TrendTermOut] = Field(description="brand-new rising terms, best first")
    tested: int = Field(0, description="terms tested for a rise (the false-discovery-rate family)")
    leading: list[TrendTermOut] = Field(
        [],
        description="the window's leading topics: its most frequent topical terms, with their change; "
        "NOT a significance claim",
    )
    watch: list[TrendTermOut] = Field(
        [],
        description="watch list: the strongest rises that did NOT reach the false discovery rate "
        "(q_value > FDR), by p-value",
    )


def _params(window: str, baseline: str, category: str | None) -> tuple[int, int, str]:
    try:
        w = parse_days(window, "window")
        b = parse_days(baseline, "baseline")
        scope = trends.parse_scope(category)
    except ValueError as err:
        raise unprocessable(str(err)) from err
    if b < w:
        raise unprocessable(f"baseline ({b}d) must not be shorter than window ({w}d)", ("query", "baseline"))
    return w, b, scope


WindowQuery = Annotated[
    str, Query(pattern=r"^[0-9]{1,3}d?$", description="window length in days, e.g. 7d or 7 (1–31)")
]
BaselineQuery = Annotated[
    str,
    Query(pattern=r"^[0-9]{1,3}d?$", description="baseline before the window in days, e.g. 56d or 56"),
]
CategoryQuery = Annotated[
    Literal["all", "cs.LG", "cs.CV", "cs.CL", "blogs"] | None, Query(description="scope of the statistics")
]
EndQuery = Annotated[IsoDate | None, Query(description="last day of the window YYYY-MM-DD (default: latest)")]
LimitQuery = Annotated[int, Query(ge=1, le=trends.STORED_LIMIT, description="at most this many terms")]


def _empty(scope: str, w: int, b: int) -> dict[str, Any]:
    return {
        "scope": scope,
        "end": dt.date.today(),
        "window_days": w,
        "baseline_days": b,
        "window_docs": 0,
        "baseline_docs": 0,
        "computed_at": dt.datetime.now(dt.UTC),
        "terms": [],
        "new_terms": [],
        "leading": [],
        "watch": [],
    }


def _payload(session: Any, scope: str, w: int, b: int, end: dt.date | None) -> dict[str, Any] | None:
    payload = trends.stored_payload(session, scope=scope, window_days=w, baseline_days=b, end=end)
    if payload is None:  # not precomputed: compute once and store (get_report caches it)
        report = trends.get_report(session, scope=scope, window_days=w, baseline_days=b, end=end)
        payload = None if report is None else report.to_json()
    return payload


@router.get(
    "/api/trends",
    response_model=TrendsResponse,
    tags=["trends"],
    responses={422: {"description": "bad window, baseline or category"}},
)
def get_trends(
    session: SessionDep,
    window: WindowQuery = "7d",
    baseline: BaselineQuery = "56d",
    category: CategoryQuery = "all",
    limit: LimitQuery = 20,
    end: EndQuery = None,
) -> TrendsResponse:
    """Rising terms of a scope (an exact test of the window's shares against the baseline's,
    chosen at a false discovery rate of ``trends.FDR``, 10 %, ranked by Dunning's G²), with
    daily counts and the items behind each. Served from stored results."""
    w, b, scope = _params(window, baseline, category)
    payload = _payload(session, scope, w, b, end) or _empty(scope, w, b)
    payload["terms"] = payload["terms"][:limit]
    payload["new_terms"] = payload["new_terms"][:limit]
    payload["leading"] = payload.get("leading", [])[:limit]
    payload["watch"] = payload.get("watch", [])[:limit]
    return TrendsResponse.model_validate(payload)


def sparkline(
    series: list[dict[str, Any]], window_start: str, width: int = 160, height: int = 36
) -> dict[str, Any]:
    """SVG geometry for a term's daily shares (count / total, so small days do not dip): the
    polyline points, the x where the window starts, and the peak share in percent."""
    shares = [s["count"] / s["total"] if s["total"] else 0.0 for s in series]
    if not shares:
        return {"points": "", "window_x": width, "peak": 0.0, "width": width, "height": height}
    top = max(shares) or 1.0
    n = len(shares)
    step = width / max(n - 1, 1)
    pts = " ".join(
        f"{i * step:.1f},{height - 2 - (v / top) * (height - 4):.1f}" for i, v in enumerate(shares)
    )
    idx = next((i for i, s in enumerate(series) if s["date"] >= window_start), n - 1)
    return {
        "points": pts,
        "window_x": round(idx * step - step / 2, 1) if idx else 0,
        "peak": round(100 * max(shares), 2),
        "width": width,
        "height": height,
    }


@router.get("/trends", response_class=HTMLResponse, tags=["pages"], responses=HTML_422)
def trends_page(
    request: Request,
    session: SessionDep,
    ws: WebSessionDep,
    window: WindowQuery = "7d",
    baseline: BaselineQuery = "56d",
    category: CategoryQuery = "all",
    limit: LimitQuery = 20,
    end: EndQuery = None,
) -> HTMLResponse:
    """What is rising now, per scope, with sparklines and the items behind each trend."""
    from aggregator.api.html import templates

    w, b, scope = _params(window, baseline, category)
    payload = _payload(session, scope, w, b, end)
    if payload is not None:
        start = (dt.date.fromisoformat(payload["end"]) - dt.timedelta(days=w - 1)).isoformat()
        for t in [*payload["terms"], *payload["new_terms"], *payload.get("leading", ())] + list(
            payload.get("watch", ())
        ):
            t["spark"] = sparkline(t["series"], start)
        payload["window_start"] = start
        payload["prev_end"] = (dt.date.fromisoformat(payload["end"]) - dt.timedelta(days=w)).isoformat()
        payload["next_end"] = (dt.date.fromisoformat(payload["end"]) + dt.timedelta(days=w)).isoformat()
    return templates.TemplateResponse(
        request,
        "trends.html",
        {
            "report": payload,
            "ws": ws,
            "scopes": trends.SCOPES,
            "scope": scope,
            "window": f"{w}d",
            "baseline": f"{b}d",
            "limit": limit,
            "terms": (payload or {}).get("terms", [])[:limit],
            "new_terms": (payload or {}).get("new_terms", [])[:10],
            "leading": (payload or {}).get("leading", []),
            "watch": (payload or {}).get("watch", []),
            "end": end,
            "latest": trends.latest_day(session),
            "fdr": trends.FDR,
        },
    )


# the term explorer and the monthly report (:mod:`.trends_views`) share this router
from aggregator.api.routes import trends_views  # noqa: E402

router.include_router(trends_views.router)
