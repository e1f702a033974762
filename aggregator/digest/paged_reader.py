"""A reader's whole day, ranked and paged (``GET /api/me/digest`` with ``cursor``, issue 13).

The worker precomputes a reader's scores only for their best items (the 30-day window's best
200 and the newest day's best 50, :mod:`aggregator.ranking.personal.scoring`), so an older
day had only the 10–15 of its items that made the 30-day cut, and a page of 20 came back
short. Here the day is ranked whole, in two tiers, in one SQL order:

1. the reader's precomputed rows (``scores.profile = 'reader:<id>'``, unmuted), by their score;
2. every other item of the window, by the default profile's precomputed score (the site's
   interests; 0 when unranked), left out when the reader's profile hides it (excluded
   category or source, muted phrase: the same test as the unscored path of
   :func:`aggregator.digest.personal.reader_digest`).

Tier 2 is below tier 1 by construction: an item the reader's scoring did not keep scored below
every kept one of the 30-day window. Ranking tier 2 by the reader's own profile would need the
TF-IDF model (tens of MB) and per-request scoring in every API process; the default score
costs one more row lookup per item and no memory. Ties go to the newer item, then the larger
id. Paging is that of :mod:`aggregator.digest.paging` (exact across ingests and rescores;
the scores fingerprint covers both profiles).
"""

from __future__ import annotations

import datetime as dt
import zoneinfo
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session, aliased

from aggregator.accounts import feedback, profiles, topic_filters
from aggregator.digest import personal
from aggregator.digest.cursor import Cursor
from aggregator.digest.filters import DigestFilters, conditions
from aggregator.digest.paging import ITEM_COLUMNS, entries, read_page, scores_run
from aggregator.digest.public import DEFAULT_PROFILE, Digest, DigestEntry, day_window, default_day
from aggregator.store.queries import item_sources
from aggregator.store.tables import Item, Score
from aggregator.types import ReaderProfile


@dataclass(frozen=True, slots=True)
class ReaderPage:
    """A page of a reader's digest and the cursor after it (None on the last page)."""

    digest: personal.ReaderDigest
    cursor: Cursor | None


class _Visible:
    """Whether a tier-2 row is shown to the reader (tier-1 rows always are: their muted flag
    was set when they were scored). Feed names are read once per page, only when the reader
    excludes sources."""

    def __init__(self, session: Session, profile: ReaderProfile) -> None:
        self.session, self.profile = session, profile
        self.names: dict[int, list[str]] = {}

    def __call__(self, row: Any) -> bool:
        if row.k0 == 1:
            return True
        p = self.profile
        if not (
            p.exclude_categories or p.exclude_sources or p.muted or p.include_categories or p.include_sources
        ):
            return True
        if p.exclude_sources and row.id not in self.names:
            self.names.update(item_sources(self.session, [row.id]))
        facts = DigestEntry(  # only the fields the test reads
            id=row.id,
            title=row.title,
            url=None,
            authors=list(getattr(row, "authors", None) or []),
            source="",
            sources=self.names.get(row.id, []),
            kind=row.kind,
            categories=list(row.categories),
            published=row.published,
            score=0.0,
            why=[],
            summary=row.summary,
            arxiv_id=None,
        )
        return not personal.hidden_by_profile(p, facts)


def _labelled(
    session: Session, profile: ReaderProfile, reader_id: int, found: list[Any]
) -> list[personal.ReaderEntry]:
    """Reader entries of the page's entries: topic filters matched, followed authors, votes
    (as :func:`aggregator.digest.personal.reader_digest` labels them)."""
    votes = feedback.feedback_of(session, reader_id, [e.id for e in found])
    followed = {topic_filters.normal_name(a): a for a in profile.followed_authors}
    subscribed = {t.slug for t in profile.topics}
    out = []
    for e in found:
        if e.stored_topics is not None:
            topics = [t for t in e.stored_topics if t in subscribed]
        else:
            facts = topic_filters.ItemFacts(e.title, e.summary, e.authors, e.categories, e.sources)
            topics = [t.slug for t in profile.topics if topic_filters.match_topic(t, facts)]
        authors = (
            list(e.stored_authors)
            if e.stored_authors is not None
            else [a for a in e.authors if topic_filters.normal_name(a) in followed]
        )
        out.append(
            personal.ReaderEntry(e, topics=topics, followed_authors=authors, feedback=votes.get(e.id, 0))
        )
    return out


def reader_page(
    session: Session,
    tz: zoneinfo.ZoneInfo,
    reader_id: int,
    day: dt.date | None,
    days: int,
    limit: int,
    cursor: Cursor,
    filters: DigestFilters = DigestFilters(),
    known: tuple[ReaderProfile, bool] | None = None,
) -> ReaderPage:
    """A page of the reader's whole-window digest after ``cursor`` (order in the module
    docstring), filtered by ``filters`` (``unread``: this reader's read state). ``total``
    counts the window's items matching the filters; ``hidden`` the reader's muted rows of the
    window. ``profile`` is ``reader:<id>`` when the reader has precomputed rows in the window,
    else ``default``. ``known``: the reader's profile and whether they have precomputed rows in
    the window, when the caller read them already (they are not read again). Raises
    :class:`aggregator.errors.NotFound` for no such reader.

    Long because it builds the two tiers' queries and the cursor from one set of bounds."""
    profile = known[0] if known is not None else profiles.load_profile(session, reader_id)
    key = profile.score_key
    day = day or default_day(session, tz)
    start, end = day_window(day, days, tz)
    run = scores_run(session, [key, DEFAULT_PROFILE], start, end)
    restart = cursor.key is not None and run != cursor.run
    cursor.run = run
    mine, site = aliased(Score, name="mine"), aliased(Score, name="site")
    tier = sa.case((mine.item_id.is_not(None), 1), else_=0)
    score = sa.func.coalesce(mine.score, site.score, 0.0)
    where = [
        Item.published >= start,
        Item.published < end,
        sa.not_(sa.func.coalesce(mine.muted, sa.false())),
        *conditions(filters, session.bind.dialect.name, reader_id),  # type: ignore[union-attr]
    ]
    query = (
        sa.select(
            tier.label("k0"),
            score.label("k1"),
            Item.published.label("k2"),
            Item.id.label("k3"),
            *ITEM_COLUMNS,
            score.label("score"),
            mine.why,
            mine.topics,
            mine.authors.label("followed"),
        )
        .outerjoin(mine, sa.and_(mine.item_id == Item.id, mine.profile == key))
        .outerjoin(site, sa.and_(site.item_id == Item.id, site.profile == DEFAULT_PROFILE))
        .where(*where)
    )
    keys: list[Any] = [tier, score, Item.published, Item.id]
    rows, more = read_page(session, query, keys, cursor, limit, restart, _Visible(session, profile))
    found = entries(session, rows)
    in_window = sa.and_(Score.profile == key, Score.published >= start, Score.published < end)
    hidden = session.scalar(sa.select(sa.func.count()).where(in_window, Score.muted.is_(True))) or 0
    if known is not None:
        has_scores = known[1]
    else:
        has_scores = session.scalar(sa.select(Score.item_id).where(in_window).limit(1)) is not None
    total = (
        session.scalar(
            sa.select(sa.func.count())
            .select_from(Item)
            .where(*where[:2], *where[3:], Item.id <= cursor.max_id)
        )
        or 0
    )
    digest = Digest(day, days, start, end, total, found, ranked=True)
    labelled = _labelled(session, profile, reader_id, found)
    out = personal.ReaderDigest(
        digest, key if has_scores else DEFAULT_PROFILE, labelled, hidden, list(profile.topics)
    )
    return ReaderPage(out, cursor if more else None)
