"""What goes into one reader's weekly email: the week's best items for them, grouped by the
topic filters they subscribe to, and the terms rising this week.

Weeks are ISO 8601 weeks labelled ``YYYY-Www`` (``2026-W25``), in the reader's IANA time zone.
The email of week W is sent at the reader's chosen weekday and local time in W (its
*scheduled time*, :func:`scheduled_at`) and covers the seven local days before the scheduled
day (:func:`content_days`), so consecutive emails neither overlap nor leave a gap. Items are
read from the reader's precomputed scores (``scores.profile = "reader:<id>"``, falling back to
the default profile when the reader has none in the week) through
:func:`aggregator.digest.personal.reader_digest`; nothing is scored here.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
import zoneinfo
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from aggregator import errors
from aggregator.digest import personal
from aggregator.digest.badges import PaperLinks, paper_links
from aggregator.feeds.parse import trim_text
from aggregator.store.tables import Reader

log = logging.getLogger(__name__)

WEEK_RE = re.compile(r"\A(\d{4})-W(\d{2})\Z")
#: Characters of an abstract shown in the email (cut at a word boundary, then "…").
ABSTRACT_CHARS = 300
#: Items per topic-filter group, and in "Other picks" (more when there is no topic filter).
PER_GROUP = 5
OTHER_ALONE = 10
#: Ranked items of the week looked at when filling the groups.
POOL = 300
#: Authors shown before "et al.".
MAX_AUTHORS = 5
#: Terms of ``why`` shown per item.
WHY_TERMS = 3
#: Rising terms in the "rising this week" block.
RISING_TERMS = 8


def week_label(day: dt.date) -> str:
    """The ISO week of ``day`` as ``YYYY-Www`` (ISO 8601 week date)."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def week_monday(label: str) -> dt.date:
    """The Monday of ISO week ``label``. Raises ``ValueError`` for a malformed label or a week
    the year does not have (e.g. ``2026-W53``)."""
    m = WEEK_RE.match(label.strip())
    if m is None:
        raise ValueError(f"week {label!r} is not an ISO week like 2026-W25")
    try:
        return dt.date.fromisocalendar(int(m.group(1)), int(m.group(2)), 1)
    except ValueError as err:
        raise ValueError(f"week {label!r} does not exist: {err}") from err


def parse_hhmm(value: str) -> dt.time:
    hh, mm = value.split(":")
    return dt.time(int(hh), int(mm))


def scheduled_at(label: str, weekday: int, hhmm: str, tz: zoneinfo.ZoneInfo) -> dt.datetime:
    """UTC instant of the reader's send time in week ``label``: weekday ``weekday`` (0 =
    Monday) at local time ``hhmm`` in ``tz``. A local time skipped by a DST change is read
    with ``fold=0`` (PEP 495), i.e. as if the clock had not moved yet."""
    day = week_monday(label) + dt.timedelta(days=weekday)
    return dt.datetime.combine(day, parse_hhmm(hhmm), tz).astimezone(dt.UTC)


def current_week(now: dt.datetime, tz: zoneinfo.ZoneInfo) -> str:
    """The ISO week label of the instant ``now`` (aware) on a clock in ``tz``."""
    return week_label(now.astimezone(tz).date())


def content_days(label: str, weekday: int) -> tuple[dt.date, dt.date]:
    """First and last local day (inclusive) the email of week ``label`` covers: the seven
    days before the scheduled weekday."""
    send_day = week_monday(label) + dt.timedelta(days=weekday)
    return send_day - dt.timedelta(days=7), send_day - dt.timedelta(days=1)


def trim_abstract(text: str, limit: int = ABSTRACT_CHARS) -> str:
    """``text`` with whitespace collapsed, cut to at most ``limit`` characters at a word
    boundary and ended with "…" when cut."""
    return trim_text(" ".join((text or "").split()), limit)


def show_authors(authors: list[str], limit: int = MAX_AUTHORS) -> str:
    if len(authors) <= limit:
        return ", ".join(authors)
    return ", ".join(authors[:limit]) + " et al."


@dataclass(frozen=True, slots=True)
class EmailItem:
    """One paper or post of the email. ``rank`` is its 1-based place in the reader's ranked
    list of the week; ``why_terms`` the top TF-IDF terms behind its score; ``topics`` the
    names of the reader's topic filters it matches; ``followed_authors`` the followed authors
    on it."""

    item_id: int
    rank: int
    title: str
    url: str | None
    authors: str
    abstract: str
    kind: str  # "paper" | "post"
    source: str
    score: float
    why_terms: list[str]
    topics: list[str]
    followed_authors: list[str]
    #: abstract, PDF, code and project links and the venue badge (issue 13)
    links: PaperLinks = field(default_factory=PaperLinks)

    @property
    def why(self) -> str:
        """One line: "terms: a, b · topics: X · follows: Y" (empty when nothing is known)."""
        parts = []
        if self.why_terms:
            parts.append("terms: " + ", ".join(self.why_terms))
        if self.topics:
            parts.append("topics: " + ", ".join(self.topics))
        if self.followed_authors:
            parts.append("you follow " + ", ".join(self.followed_authors))
        return " · ".join(parts)


@dataclass(frozen=True, slots=True)
class EmailGroup:
    name: str
    slug: str | None  # None: "Other picks"
    items: list[EmailItem]


@dataclass(frozen=True, slots=True)
class RisingTerm:
    """A term rising this week: ``window_count`` items of the week mention it, against
    ``baseline_count`` items in the 56 days before; ``lift`` is the smoothed share ratio."""

    label: str
    score: float
    window_count: int
    baseline_count: int
    lift: float
    is_new: bool
    #: False for a leading topic shown because nothing rose significantly (not a rise).
    rising: bool = True


@dataclass(frozen=True, slots=True)
class MonthTopics:
    """One scope of the monthly block: labels of the month's rising terms and leading topics."""

    scope: str
    rising: list[str]
    leading: list[str]


@dataclass(frozen=True, slots=True)
class MonthBlock:
    """The monthly report in the first issue of a month: the previous calendar month's rising
    and leading topics per arXiv scope (against the year before), and the page that has more."""

    label: str  # "June 2026"
    month: str  # "2026-06"
    scopes: list[MonthTopics]


@dataclass(frozen=True, slots=True)
class WeekEmail:
    """The content of one weekly email, before rendering."""

    reader_id: int
    email: str
    iso_week: str
    first_day: dt.date
    last_day: dt.date
    timezone: str
    profile: str  # scores.profile read: "reader:<id>" or "default"
    groups: list[EmailGroup]
    rising: list[RisingTerm] = field(default_factory=list)
    total_items: int = 0  # items published in the week, before ranking
    month: MonthBlock | None = None  # first issue of a month only

    @property
    def rising_is_leading(self) -> bool:
        """The "rising this week" block holds leading topics: nothing rose significantly."""
        return bool(self.rising) and not any(t.rising for t in self.rising)

    @property
    def items(self) -> list[EmailItem]:
        """Every item of the email, in the order shown."""
        return [i for g in self.groups for i in g.items]

    @property
    def is_empty(self) -> bool:
        return not any(g.items for g in self.groups)


def _source(kind: str, categories: list[str], source: str) -> str:
    """A paper's primary arXiv category ("arXiv cs.CV"), which says more than the feed that
    announced it (e.g. "arXiv API" for a backfill); a post's feed name."""
    if kind == "paper" and categories:
        return f"arXiv {categories[0]}"
    return source


def _why_terms(why: list[dict[str, Any]]) -> list[str]:
    return [str(w["term"]) for w in why if isinstance(w, dict) and w.get("term")][:WHY_TERMS]


def rising_terms(session: Session, last_day: dt.date, limit: int = RISING_TERMS) -> list[RisingTerm]:
    """The terms rising in the 7 UTC days ending ``last_day`` against the 56 before, or, when
    none rises significantly, the week's leading topics (``rising`` False, and the email says
    so), from :func:`aggregator.trends.headline_terms`; empty when trends are unavailable or
    fail (the block is then left out of the email)."""
    try:
        from aggregator import trends
    except ImportError:  # pragma: no cover - trends not installed
        return []
    try:
        terms, rising = trends.headline_terms(session, last_day, limit=limit)
    except Exception:  # the email goes out without the block rather than not at all
        log.exception("rising terms for the week ending %s failed", last_day)
        session.rollback()
        return []
    return [
        RisingTerm(
            label=str(t.label or t.term),
            score=float(t.score),
            window_count=int(t.window_count),
            baseline_count=int(t.baseline_count),
            lift=float(t.lift),
            is_new=bool(t.is_new) and rising,
            rising=rising,
        )
        for t in terms
    ]


#: Scopes of the monthly block, and topics per list.
MONTH_SCOPES = ("all", "cs.LG", "cs.CV", "cs.CL")
MONTH_TERMS = 5


def month_block(session: Session, last_day: dt.date) -> MonthBlock | None:
    """The monthly block of the issue whose content ends ``last_day``: the previous calendar
    month's report when ``last_day`` is in the first 7 days of a month (the month's first
    issue), else None; None too when trends are unavailable or fail."""
    if last_day.day > 7:
        return None
    month = (last_day.replace(day=1) - dt.timedelta(days=1)).replace(day=1)
    try:
        from aggregator import trends

        sections = trends.month_reports(session, month, limit=MONTH_TERMS, scopes=MONTH_SCOPES)
    except Exception:  # the email goes out without the block rather than not at all
        log.exception("monthly report for %s failed", month)
        session.rollback()
        return None
    scopes = [
        MonthTopics(s.scope, [t.label for t in s.rising], [t.label for t in s.leading])
        for s in sections
        if s.report is not None and s.report.window_docs
    ]
    return MonthBlock(f"{month:%B %Y}", f"{month:%Y-%m}", scopes) if scopes else None


def compose_week(
    session: Session,
    reader_id: int,
    iso_week: str,
    *,
    per_group: int = PER_GROUP,
    with_rising: bool = True,
    rising: list[RisingTerm] | None = None,
) -> WeekEmail:
    """The email of ``iso_week`` for reader ``reader_id``.

    Groups follow the order of the reader's subscriptions; each holds the best ``per_group``
    items (in the reader's rank order) matching that topic filter and not already shown in an
    earlier group; "Other picks" holds the best items matching none of them. ``rising``
    gives the "rising this week" terms when already known (a sender caches them per week),
    else they are read with :func:`rising_terms` unless ``with_rising`` is false. Reads only.
    Raises :class:`aggregator.errors.NotFound` for an unknown reader and ``ValueError`` for a
    malformed week.

    Long because it gathers the week's sections in the order the email shows them.
    """
    reader = session.get(Reader, reader_id)
    if reader is None:
        raise errors.NotFound(f"no reader with id {reader_id}")
    tz = zoneinfo.ZoneInfo(reader.timezone or "UTC")
    first, last = content_days(iso_week, reader.email_weekday)
    d = personal.reader_digest(session, tz, reader_id, day=last, days=7, limit=POOL)
    names = {t.slug: t.name for t in d.topics}
    ranked: list[EmailItem] = []
    for rank, e in enumerate(d.items, start=1):
        entry = e.entry
        ranked.append(
            EmailItem(
                item_id=entry.id,
                rank=rank,
                title=" ".join(entry.title.split()),
                url=entry.url,
                authors=show_authors(list(entry.authors)),
                abstract=trim_abstract(entry.summary),
                kind=entry.kind,
                source=_source(entry.kind, entry.categories, entry.source),
                score=entry.score,
                why_terms=_why_terms(entry.why),
                topics=[names.get(s, s) for s in e.topics],
                followed_authors=list(e.followed_authors),
                links=paper_links(entry),
            )
        )
    slugs = {i.item_id: e.topics for i, e in zip(ranked, d.items, strict=True)}
    used: set[int] = set()
    groups: list[EmailGroup] = []
    for topic in d.topics:
        picked = [i for i in ranked if topic.slug in slugs[i.item_id] and i.item_id not in used][:per_group]
        used.update(i.item_id for i in picked)
        if picked:
            groups.append(EmailGroup(topic.name, topic.slug, picked))
    n_other = per_group if d.topics else OTHER_ALONE
    other = [i for i in ranked if not slugs[i.item_id] and i.item_id not in used][:n_other]
    if other:
        groups.append(EmailGroup("Other picks", None, other))
    if rising is None:
        rising = rising_terms(session, last) if with_rising else []
    return WeekEmail(
        reader_id=reader.id,
        email=reader.email,
        iso_week=iso_week,
        first_day=first,
        last_day=last,
        timezone=reader.timezone,
        profile=d.profile,
        groups=groups,
        rising=rising,
        total_items=d.digest.total,
        month=month_block(session, last) if with_rising else None,
    )
