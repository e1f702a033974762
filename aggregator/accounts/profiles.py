"""Readers' profiles from the tables, as typed records for the ranker."""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.orm import Session

from aggregator.accounts.readers import non_blank_strings, topic_filter
from aggregator.store.tables import Feedback, Profile, Reader, Subscription, Topic
from aggregator.types import ReaderProfile, TopicFilter

# --- profiles from the tables ------------------------------------------------------------------


def load_profiles(session: Session, reader_ids: Sequence[int] | None = None) -> list[ReaderProfile]:
    """:class:`ReaderProfile` of the given readers (all readers when None), in reader id
    order, from ``readers``, ``profiles``, ``subscriptions``/``topics`` and ``feedback``
    (value > 0 → liked, < 0 → disliked). A reader without a profile row gets an empty one;
    unknown ids are skipped. Four queries in all."""
    query = sa.select(Reader.id).order_by(Reader.id)
    if reader_ids is not None:
        query = query.where(Reader.id.in_(list(reader_ids)))
    ids = list(session.scalars(query))
    if not ids:
        return []
    prof = {p.reader_id: p for p in session.scalars(sa.select(Profile).where(Profile.reader_id.in_(ids)))}
    topics: dict[int, list[TopicFilter]] = {}
    for reader_id, t in session.execute(
        sa.select(Subscription.reader_id, Topic)
        .join(Topic, Topic.id == Subscription.topic_id)
        .where(Subscription.reader_id.in_(ids))
        .order_by(Subscription.reader_id, Topic.slug)
    ):
        topics.setdefault(reader_id, []).append(topic_filter(t))
    liked: dict[int, list[int]] = {}
    disliked: dict[int, list[int]] = {}
    for reader_id, item_id, value in session.execute(
        sa.select(Feedback.reader_id, Feedback.item_id, Feedback.value)
        .where(Feedback.reader_id.in_(ids), Feedback.value != 0)
        .order_by(Feedback.reader_id, Feedback.item_id)
    ):
        (liked if value > 0 else disliked).setdefault(reader_id, []).append(item_id)
    out = []
    for rid in ids:
        p = prof.get(rid)
        out.append(
            ReaderProfile(
                reader_id=rid,
                interests=(p.interests or "") if p else "",
                keywords=non_blank_strings(p.keywords) if p else (),
                muted=non_blank_strings(p.muted) if p else (),
                followed_authors=non_blank_strings(p.followed_authors) if p else (),
                include_categories=non_blank_strings(p.include_categories) if p else (),
                exclude_categories=non_blank_strings(p.exclude_categories) if p else (),
                include_sources=non_blank_strings(p.include_sources) if p else (),
                exclude_sources=non_blank_strings(p.exclude_sources) if p else (),
                seed_papers=non_blank_strings(p.seed_papers) if p else (),
                liked_item_ids=tuple(liked.get(rid, ())),
                disliked_item_ids=tuple(disliked.get(rid, ())),
                topics=tuple(topics.get(rid, ())),
            )
        )
    return out


def load_profile(session: Session, reader_id: int) -> ReaderProfile:
    """The :class:`ReaderProfile` of one reader. Raises ``LookupError`` for an unknown reader."""
    found = load_profiles(session, [reader_id])
    if not found:
        raise LookupError(f"no reader with id {reader_id}")
    return found[0]
