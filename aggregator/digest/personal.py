"""A reader's own digest: the day's items in the reader's precomputed order (``scores`` rows
under ``reader:<id>``), grouped by subscribed topic filter, with muted items hidden and counted.
Falls back to the public order when the reader has no scores yet."""

from __future__ import annotations

import datetime as dt
import zoneinfo
from collections.abc import Callable
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session

from aggregator.accounts.feedback import feedback_of
from aggregator.accounts.profiles import load_profile
from aggregator.accounts.topic_filters import ItemFacts, is_excluded, is_muted, match_topic, normal_name
from aggregator.digest.public import (
    DEFAULT_PROFILE,
    Digest,
    DigestEntry,
    build_digest,
    day_window,
    default_day,
)
from aggregator.store.tables import Score
from aggregator.types import ReaderProfile, TopicFilter


@dataclass(frozen=True, slots=True)
class ReaderEntry:
    """A digest entry with the reader's labels: matched topic filter slugs, followed authors
    on the item, and the reader's vote (1, -1 or 0)."""

    entry: DigestEntry
    topics: list[str]
    followed_authors: list[str]
    feedback: int = 0


@dataclass(frozen=True, slots=True)
class TopicGroup:
    slug: str | None  # None: items matching none of the reader's topic filters
    name: str
    items: list[ReaderEntry]


@dataclass(frozen=True, slots=True)
class ReaderDigest:
    """The reader's digest. ``profile`` is the ``scores.profile`` read: ``reader:<id>``;
    ``default`` when the reader has no preferences (or nothing is ranked yet); ``pending``
    (no items) when the reader has preferences, the window is ranked, and the reader's own
    scores could not be made in time: the default order is never passed off as theirs. ``total`` counts the
    window's items before muted and excluded ones are dropped; ``hidden`` how many of those
    looked at were dropped."""

    digest: Digest
    profile: str
    items: list[ReaderEntry]
    hidden: int = 0
    topics: list[TopicFilter] = field(default_factory=list)

    def groups(self) -> list[TopicGroup]:
        """Items grouped by the reader's topic filters (an item in each group it matches, in
        rank order), then the items matching none; empty groups are left out."""
        out = [TopicGroup(t.slug, t.name, [e for e in self.items if t.slug in e.topics]) for t in self.topics]
        out.append(TopicGroup(None, "Other", [e for e in self.items if not e.topics]))
        return [g for g in out if g.items]


def _facts(e: DigestEntry) -> ItemFacts:
    return ItemFacts(e.title, e.summary, e.authors, e.categories, e.sources)


def hidden_by_profile(p: ReaderProfile, e: DigestEntry) -> bool:
    """Whether the reader's profile hides ``e``: the rules precomputing applies
    (``accounts.topic_filters.is_muted`` for muted phrases and authors,
    ``is_excluded`` for excluded and included categories and sources)."""
    facts = _facts(e)
    return is_muted(p.muted, facts) or is_excluded(
        facts, p.exclude_categories, p.exclude_sources, p.include_categories, p.include_sources
    )


#: ``ensure_scores(session, reader_id, around)``: make the reader's scores for the days around
#: ``around`` (UTC) now or through a worker; True when done. Supplied by the API.
EnsureScores = Callable[[Session, int, dt.datetime], bool]
PENDING_PROFILE = "pending"


def has_preferences(p: ReaderProfile) -> bool:
    """Whether the reader told us anything their ranking depends on (interests, keywords, seed
    papers, votes, subscriptions, followed authors)."""
    return bool(
        p.interests.strip()
        or p.keywords
        or p.seed_papers
        or p.liked_item_ids
        or p.disliked_item_ids
        or p.topics
        or p.followed_authors
    )


def _score_here(session: Session, reader_id: int, around: dt.datetime) -> bool:
    """Score the reader in this process (the worker, mail, the CLI): ``ranking.personal.rescore``."""
    from aggregator.ranking.personal import rescore

    return rescore.rescore(session, reader_id, around=around) is not None


def _own_scores(
    session: Session,
    profile: ReaderProfile,
    start: dt.datetime,
    end: dt.datetime,
    ensure_scores: EnsureScores | None,
) -> str:
    """The ``scores.profile`` to read for the window: the reader's key when they have rows in
    it (made now through ``ensure_scores`` when missing and they have preferences),
    :data:`PENDING_PROFILE` when that failed while the default profile is ranked, else
    ``default``."""
    key = profile.score_key

    def has(k: str) -> bool:
        window = sa.and_(Score.profile == k, Score.published >= start, Score.published < end)
        return session.scalar(sa.select(Score.item_id).where(window).limit(1)) is not None

    if has(key):
        return key
    if not has_preferences(profile) or not has(DEFAULT_PROFILE):
        return DEFAULT_PROFILE  # nothing of theirs to rank by, or nothing ranked at all
    ensure = ensure_scores or _score_here
    if ensure(session, profile.reader_id, start) and has(key):
        return key
    return PENDING_PROFILE


def _default_order(
    session: Session, tz: zoneinfo.ZoneInfo, profile: ReaderProfile, day: dt.date, days: int, limit: int
) -> tuple[Digest, list[DigestEntry], int]:
    """The default profile's order with the reader's hidden items left out: (the last page read,
    up to ``limit`` kept entries, how many were hidden)."""
    kept: list[DigestEntry] = []
    hidden, offset, batch = 0, 0, limit + 20
    while True:
        digest = build_digest(session, tz, day, days, limit=batch, offset=offset, profile=DEFAULT_PROFILE)
        for e in digest.items:
            if hidden_by_profile(profile, e):
                hidden += 1
            elif len(kept) < limit:
                kept.append(e)
        offset += batch
        if len(kept) >= limit or len(digest.items) < batch:
            return digest, kept, hidden


def reader_digest(
    session: Session,
    tz: zoneinfo.ZoneInfo,
    reader_id: int,
    day: dt.date | None = None,
    days: int = 1,
    limit: int = 50,
    ensure_scores: EnsureScores | None = None,
) -> ReaderDigest:
    """The reader's ranked digest of the ``days`` local days (time zone ``tz``) ending ``day``,
    best first: the reader's precomputed scores (``reader:<id>``), or the default profile's
    when the reader has none in the window. Items with a muted phrase or author, an excluded
    category or an excluded source are left out (with precomputed scores: the rows marked
    ``muted``, all of the window's counted in ``hidden``; excluded items have no rows). Each
    item is labelled with the reader's subscribed topic filters it matches and the followed
    authors on it. Nothing is scored here but through ``ensure_scores``. ``GET /api/me/digest``
    serves the same digest from :mod:`aggregator.digest.served`; this is the path of the pages,
    the Atom feed and of readers without precomputed scores.

    A reader with preferences but no scores in the window is scored first through
    ``ensure_scores`` (default: in this process); if that fails the answer is ``pending`` with no items,
    never the default order under the reader's name (issue 17)."""
    profile = load_profile(session, reader_id)
    key = profile.score_key
    if day is None:
        day = default_day(session, tz)
    start, end = day_window(day, days, tz)
    read = _own_scores(session, profile, start, end, ensure_scores)
    personal = read == key
    if read == PENDING_PROFILE:
        digest = build_digest(session, tz, day, days, limit=0, profile=DEFAULT_PROFILE)
        return ReaderDigest(
            Digest(day, days, start, end, digest.total, []), PENDING_PROFILE, [], 0, list(profile.topics)
        )
    in_window = sa.and_(Score.profile == key, Score.published >= start, Score.published < end)
    if personal:  # muted rows were marked when the scores were precomputed
        digest = build_digest(session, tz, day, days, limit, profile=key, scored_only=True, hide_muted=True)
        kept = digest.items
        hidden = session.scalar(sa.select(sa.func.count()).where(in_window, Score.muted.is_(True))) or 0
    else:  # the default profile's order, filtered by the reader's profile as it is read
        key = DEFAULT_PROFILE
        digest, kept, hidden = _default_order(session, tz, profile, day, days, limit)
    votes = feedback_of(session, reader_id, [e.id for e in kept])
    followed = {normal_name(a): a for a in profile.followed_authors}
    subscribed = {t.slug for t in profile.topics}
    items = []
    for e in kept:
        if personal and e.stored_topics is not None:  # matched when the scores were precomputed
            topics = [t for t in e.stored_topics if t in subscribed]
        else:
            facts = _facts(e)
            topics = [t.slug for t in profile.topics if match_topic(t, facts)]
        if personal and e.stored_authors is not None:
            authors = list(e.stored_authors)
        else:
            authors = [a for a in e.authors if normal_name(a) in followed]
        items.append(ReaderEntry(e, topics=topics, followed_authors=authors, feedback=votes.get(e.id, 0)))
    return ReaderDigest(
        Digest(day, days, start, end, digest.total, kept), key, items, hidden, list(profile.topics)
    )
