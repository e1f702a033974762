"""The typed records of a trend report, and the candidate terms detection works on."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True, slots=True)
class TrendItem:
    """A paper or post behind a trend."""

    id: int
    title: str
    url: str | None
    kind: str  # "paper" | "post"


@dataclass(frozen=True, slots=True)
class DayCount:
    """Items containing the term on one UTC day (``count``) of the ``total`` items counted that day."""

    date: dt.date
    count: int
    total: int


@dataclass(frozen=True, slots=True)
class TrendTerm:
    """One rising term.

    ``term`` is the normalised form (case-folded, singular, hyphens as spaces); ``label`` is
    how to show it (acronyms upper-cased). ``score`` is the rank score (G² × blog-attention
    factor, see the module doc); ``g2`` is Dunning's G² alone. Counts are items (document
    frequency): ``window_count`` of ``window_docs`` window items, ``baseline_count`` of the
    baseline's items; shares are those ratios (0..1); ``lift`` is the smoothed share ratio.
    ``series`` holds one :class:`DayCount` per day with counted items from the baseline start
    to ``end``. ``first_seen`` is the first day the term was counted in the scope; ``is_new``
    when that is no earlier than one window before the window. ``posts`` counts blog posts in
    the window that mention the term or discuss one of its papers. ``examples`` are up to six
    items of the window behind the trend (posts and discussed papers first, then newest).
    ``variants`` are near-duplicates collapsed into this entry. ``p_value`` is the one-sided
    exact p-value of the rise (:func:`rising_p_values`), ``q_value`` its Benjamini–Hochberg
    adjusted value among the report's tested terms (the term is listed because ``q_value`` ≤
    :data:`FDR`); both are None in results stored before they existed.
    """

    term: str
    label: str
    score: float
    g2: float
    window_count: int
    baseline_count: int
    window_share: float
    baseline_share: float
    lift: float
    first_seen: dt.date | None
    is_new: bool
    posts: int = 0
    series: tuple[DayCount, ...] = ()
    examples: tuple[TrendItem, ...] = ()
    variants: tuple[str, ...] = ()
    p_value: float | None = None
    q_value: float | None = None
    expected_count: float | None = None


@dataclass(frozen=True, slots=True)
class TrendReport:
    """The rising terms (``terms``, best first) and brand-new terms (``new_terms``) of one scope
    for the ``window_days`` days ending ``end`` (inclusive, UTC) against the ``baseline_days``
    days before them. ``tested`` is how many terms were tested (the false-discovery-rate family,
    see the module doc; 0 in results stored before it existed). ``leading`` are the window's
    most frequent topical terms (lexicon terms, by window count, with their change) and
    ``watch`` the strongest rises that did *not* reach the false-discovery rate (by p-value,
    with their q-values): shown, labelled as such, when nothing rises significantly; both empty
    in results stored before they existed."""

    scope: str
    end: dt.date
    window_days: int
    baseline_days: int
    window_docs: int
    baseline_docs: int
    computed_at: dt.datetime
    terms: tuple[TrendTerm, ...] = ()
    new_terms: tuple[TrendTerm, ...] = ()
    tested: int = 0
    leading: tuple[TrendTerm, ...] = ()
    watch: tuple[TrendTerm, ...] = ()

    @property
    def window_start(self) -> dt.date:
        return self.end - dt.timedelta(days=self.window_days - 1)

    def to_json(self) -> dict[str, Any]:
        def enc(value: Any) -> Any:
            if isinstance(value, dt.datetime | dt.date):
                return value.isoformat()
            if isinstance(value, list | tuple):
                return [enc(v) for v in value]
            if isinstance(value, dict):
                return {k: enc(v) for k, v in value.items()}
            return value

        return enc(dataclasses.asdict(self))  # type: ignore[no-any-return]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrendReport:
        def term(d: dict[str, Any]) -> TrendTerm:
            return TrendTerm(
                **{
                    **d,
                    "first_seen": dt.date.fromisoformat(d["first_seen"]) if d["first_seen"] else None,
                    "series": tuple(
                        DayCount(dt.date.fromisoformat(s["date"]), s["count"], s["total"])
                        for s in d["series"]
                    ),
                    "examples": tuple(TrendItem(**e) for e in d["examples"]),
                    "variants": tuple(d["variants"]),
                }
            )

        return cls(
            scope=data["scope"],
            end=dt.date.fromisoformat(data["end"]),
            window_days=data["window_days"],
            baseline_days=data["baseline_days"],
            window_docs=data["window_docs"],
            baseline_docs=data["baseline_docs"],
            computed_at=dt.datetime.fromisoformat(data["computed_at"]),
            terms=tuple(term(t) for t in data["terms"]),
            new_terms=tuple(term(t) for t in data["new_terms"]),
            tested=data.get("tested", 0),
            leading=tuple(term(t) for t in data.get("leading", ())),
            watch=tuple(term(t) for t in data.get("watch", ())),
        )


@dataclass(slots=True)
class _Cand:
    term: str
    a: int
    b: int
    g2: float
    lift: float
    first_seen: dt.date | None
    is_new: bool
    score: float = 0.0
    posts: int = 0
    examples: list[TrendItem] = field(default_factory=list)
    variants: list[str] = field(default_factory=list)
    term_id: int = 0
    p: float = 1.0
    q: float = 1.0
    expected: float = 0.0

    @property
    def tokens(self) -> tuple[str, ...]:
        return tuple(self.term.split())
