"""Feed claims: which process fetches a feed now. A claim is the feed row's ``lease_until``
(UTC), set by an atomic conditional ``UPDATE`` on SQLite and PostgreSQL alike; a feed whose
claim has not run out belongs to another process and is skipped (and reported). Claims are
short (``settings.job_lease_seconds``) and renewed while the pass runs
(:func:`renew_feed_claims`, from a :class:`aggregator.store.locks.Heartbeat`), so the feeds of a
killed ``aggregator fetch`` are free again within one short claim. ``apply_fetch`` clears the
claim once a feed's result is stored."""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session

from aggregator.store.tables import Feed


@dataclass(slots=True)
class HeldFeed:
    """A feed skipped because another process's claim on it runs until ``lease_until`` (UTC)."""

    feed_id: int
    name: str
    lease_until: dt.datetime


@dataclass(slots=True)
class FeedClaim:
    """What :func:`claim_feeds` got: the ``feeds`` now ours until ``until``, and those ``held``
    by another process."""

    feeds: list[Feed] = field(default_factory=list)
    held: list[HeldFeed] = field(default_factory=list)
    until: dt.datetime | None = None


def claim_feeds(
    session: Session,
    now: dt.datetime,
    lease_seconds: float,
    include_all: bool = False,
    feed_ids: Sequence[int] | None = None,
) -> FeedClaim:
    """Claim the feeds due for a check (every scheduled one with ``include_all``, as
    ``fetch --all``) until ``now + lease_seconds``; commits. Feeds under another process's
    unexpired claim are listed in ``held``; a feed another process fetched meanwhile (no longer
    due) is neither."""
    query = sa.select(Feed.id).where(Feed.scheduled.is_(True), Feed.disabled.is_(False))
    if feed_ids is not None:
        query = query.where(Feed.id.in_(feed_ids))
    if not include_all:
        query = query.where(sa.or_(Feed.next_check_at.is_(None), Feed.next_check_at <= now))
    candidates = list(session.scalars(query.order_by(Feed.next_check_at, Feed.id)))
    claimed: list[int] = []
    until = now + dt.timedelta(seconds=lease_seconds)
    free = sa.or_(Feed.lease_until.is_(None), Feed.lease_until < now)
    # Due-ness is checked again in the UPDATE: another worker may have fetched the feed (and
    # released its claim) between the SELECT above and this statement.
    due = sa.true() if include_all else sa.or_(Feed.next_check_at.is_(None), Feed.next_check_at <= now)
    for feed_id in candidates:
        res = session.execute(sa.update(Feed).where(Feed.id == feed_id, free, due).values(lease_until=until))
        if res.rowcount == 1:  # type: ignore[attr-defined]
            claimed.append(feed_id)
    session.commit()
    out = FeedClaim(until=until)
    skipped = sorted(set(candidates) - set(claimed))
    if skipped:
        rows = session.execute(
            sa.select(Feed.id, Feed.name, Feed.lease_until)
            .where(Feed.id.in_(skipped), Feed.lease_until.is_not(None), Feed.lease_until >= now)
            .order_by(Feed.id)
        )
        out.held = [HeldFeed(r.id, r.name, r.lease_until) for r in rows]
    if claimed:
        out.feeds = list(session.scalars(sa.select(Feed).where(Feed.id.in_(claimed)).order_by(Feed.id)))
    return out


def renew_feed_claims(
    engine: sa.Engine, feed_ids: Sequence[int], held_until: dt.datetime, until: dt.datetime
) -> list[int]:
    """Move our claims (``lease_until == held_until``) on ``feed_ids`` to ``until``; returns the
    ids another process has claimed since (its own ``lease_until``). Feeds whose result was
    stored meanwhile (claim cleared) are neither renewed nor lost."""
    if not feed_ids:
        return []
    ids = list(feed_ids)
    with engine.begin() as conn:
        conn.execute(
            sa.update(Feed).where(Feed.id.in_(ids), Feed.lease_until == held_until).values(lease_until=until)
        )
        return list(
            conn.scalars(
                sa.select(Feed.id).where(
                    Feed.id.in_(ids), Feed.lease_until.is_not(None), Feed.lease_until != until
                )
            )
        )
