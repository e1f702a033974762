"""Readers' profiles from the tables, as typed records for the ranker."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from aggregator.accounts.fields import (
    MAX_INTERESTS_CHARS,
    clean_list,
    non_blank_strings,
    normalise_seed_papers,
)
from aggregator.accounts.readers import _empty_profile
from aggregator.accounts.topic_filters import topic_filter
from aggregator.clock import utcnow
from aggregator.errors import NotFound, ReaderError
from aggregator.store.tables import Feedback, Item, Profile, Reader, Subscription, Topic
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
    """The :class:`ReaderProfile` of one reader: the one profile loader of every path (the
    digest, a rescore, precomputing all readers through :func:`load_profiles`). Raises
    :class:`NotFound` (a ``LookupError``) for an unknown reader."""
    found = load_profiles(session, [reader_id])
    if not found:
        raise NotFound(f"no reader with id {reader_id}")
    return found[0]


PROFILE_LIST_FIELDS = (
    "keywords",
    "muted",
    "followed_authors",
    "include_categories",
    "exclude_categories",
    "include_sources",
    "exclude_sources",
    "seed_papers",
)


@dataclass(frozen=True, slots=True)
class ProfileData:
    """A reader's interest profile as stored. ``seed_papers`` are bare arXiv ids."""

    interests: str = ""
    keywords: tuple[str, ...] = ()
    muted: tuple[str, ...] = ()
    followed_authors: tuple[str, ...] = ()
    include_categories: tuple[str, ...] = ()
    exclude_categories: tuple[str, ...] = ()
    include_sources: tuple[str, ...] = ()
    exclude_sources: tuple[str, ...] = ()
    seed_papers: tuple[str, ...] = ()
    updated_at: dt.datetime | None = None


def _profile_row(session: Session, reader_id: int) -> Profile:
    row = session.get(Profile, reader_id)
    if row is None:
        if session.get(Reader, reader_id) is None:
            raise NotFound(f"no reader with id {reader_id}")
        row = _empty_profile(reader_id, utcnow())
        session.add(row)
        session.flush()
    return row


def get_profile(session: Session, reader_id: int) -> ProfileData:
    """The reader's interest profile (an empty one when none was saved). Raises :class:`NotFound`."""
    row = _profile_row(session, reader_id)
    return ProfileData(
        interests=row.interests or "",
        **{name: tuple(getattr(row, name) or ()) for name in PROFILE_LIST_FIELDS},
        updated_at=row.updated_at,
    )


def update_profile(session: Session, reader_id: int, **fields: Any) -> ProfileData:
    """Replace the given fields of the reader's profile (others stay). Field names are those
    of :class:`ProfileData` but ``updated_at``; list fields are cleaned with :func:`clean_list`,
    seed papers normalised with :func:`normalise_seed_papers`. Raises :class:`ReaderError` for
    an unknown field or bad value, :class:`NotFound` for an unknown reader."""
    unknown = set(fields) - {"interests", *PROFILE_LIST_FIELDS}
    if unknown:
        raise ReaderError(f"unknown profile fields: {', '.join(sorted(unknown))}")
    row = _profile_row(session, reader_id)
    for name, value in fields.items():
        if value is None:
            continue
        if name == "interests":
            if not isinstance(value, str):
                raise ReaderError("interests: must be text")
            if len(value) > MAX_INTERESTS_CHARS:
                raise ReaderError(f"interests: at most {MAX_INTERESTS_CHARS} characters")
            row.interests = value.strip()
        elif name == "seed_papers":
            row.seed_papers = normalise_seed_papers(value)
        else:
            setattr(row, name, clean_list(value, name))
    row.updated_at = utcnow()
    session.flush()
    return get_profile(session, reader_id)


def missing_seed_papers(session: Session, arxiv_ids: Sequence[str]) -> list[str]:
    """Those of ``arxiv_ids`` (bare ids) not stored as items yet, in order."""
    if not arxiv_ids:
        return []
    have = set(session.scalars(sa.select(Item.arxiv_id).where(Item.arxiv_id.in_(list(arxiv_ids)))))
    return [i for i in arxiv_ids if i not in have]
