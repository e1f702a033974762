"""Each feed's fetch state, for ``GET /api/feeds`` and the ``/feeds`` page, and the
failing-feeds notice of the digest pages.

:func:`feed_states` is the one query both the JSON and the page read. :func:`describe` words a
feed's state the way a person reads it ("failed 3 times in a row; last error: cannot connect:
connection refused; next try in 2 h"; "OK, 41 items"). :func:`failing_feeds` counts, in one
aggregate over ``feeds``, the scheduled, enabled feeds whose latest fetch failed, so that the
digest pages can say so when most of them did (a machine without network access).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import urllib.parse
from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from aggregator.store.tables import Feed, ItemSource


@dataclass(frozen=True, slots=True)
class FeedState:
    """One feed's row as ``GET /api/feeds`` shows it. Times are UTC; ``last_status`` is the
    HTTP status of the latest fetch (None before the first, or when no answer came);
    ``error_count`` counts failures in a row (0 after a success); ``items`` the distinct
    items the feed ever announced; ``reader_added`` is true for a feed a reader added
    (``POST /api/me/feeds``), ``added_by`` that reader's id. ``url`` is None in the view of
    someone who may not see it (:func:`as_seen_by`)."""

    id: int
    name: str
    url: str | None
    kind: str | None
    title: str | None
    interval_minutes: int
    scheduled: bool
    disabled: bool
    reader_added: bool
    last_status: int | None
    last_fetch_at: dt.datetime | None
    last_success_at: dt.datetime | None
    error_count: int
    last_error: str | None
    parse_problems: str | None
    next_check_at: dt.datetime | None
    items: int
    added_by: int | None = None


def feed_states(session: Session) -> list[FeedState]:
    """Every feed (followed or not) by id, with its fetch state and item count. Two queries:
    the feeds, and the distinct items per feed (a scan of ``item_sources``)."""
    counts = dict(
        session.execute(
            sa.select(ItemSource.feed_id, sa.func.count(sa.distinct(ItemSource.item_id))).group_by(
                ItemSource.feed_id
            )
        ).all()
    )
    return [
        FeedState(
            id=f.id,
            name=f.name,
            url=f.url,
            kind=f.kind,
            title=f.title,
            interval_minutes=f.interval_minutes,
            scheduled=f.scheduled,
            disabled=f.disabled,
            reader_added=bool(f.reader_added),
            last_status=f.last_status,
            last_fetch_at=f.last_fetch_at,
            last_success_at=f.last_success_at,
            error_count=f.error_count or 0,
            last_error=f.last_error,
            parse_problems=f.parse_problems,
            next_check_at=f.next_check_at,
            items=counts.get(f.id, 0),
            added_by=f.added_by,
        )
        for f in session.scalars(sa.select(Feed).order_by(Feed.id))
    ]


#: What stands for a hidden URL in a feed's errors and parse notes.
HIDDEN_URL = "[the feed's URL]"


def _redact(text: str | None, url: str) -> str | None:
    if not text:
        return text
    parts = urllib.parse.urlsplit(url)
    tail = parts.path + (f"?{parts.query}" if parts.query else "")
    for secret in sorted({url, tail if len(tail) > 1 else ""} - {""}, key=len, reverse=True):
        text = text.replace(secret, HIDDEN_URL)
    return text


def as_seen_by(states: list[FeedState], reader_id: int | None) -> list[FeedState]:
    """``states`` as a reader (``reader_id``; None: someone not signed in) may see them: the
    URL of a feed a reader added (it may hold a private token) only by that reader, else None,
    and taken out of its last error and parse notes. The operator sees every URL
    (``aggregator feeds list``). Issue 14, finding 9."""
    out = []
    for f in states:
        if f.reader_added and f.url is not None and (reader_id is None or f.added_by != reader_id):
            f = dataclasses.replace(
                f,
                url=None,
                last_error=_redact(f.last_error, f.url),
                parse_problems=_redact(f.parse_problems, f.url),
            )
        out.append(f)
    return out


def duration(seconds: float) -> str:
    """A rounded span in words: ``"less than a minute"``, ``"12 min"``, ``"2 h"``, ``"3 days"``."""
    seconds = abs(seconds)
    if seconds < 60:
        return "less than a minute"
    minutes = round(seconds / 60)
    if minutes < 90:
        return f"{minutes} min"
    hours = round(seconds / 3600)
    if hours < 48:
        return f"{hours} h"
    days = round(seconds / 86400)
    return f"{days} days"


def ago(when: dt.datetime | None, now: dt.datetime) -> str:
    """``"5 min ago"``, or ``"never"`` for None."""
    return "never" if when is None else f"{duration((now - when).total_seconds())} ago"


def until(when: dt.datetime | None, now: dt.datetime) -> str:
    """``"in 2 h"``, ``"at the next pass"`` when already due, ``"never"`` for None."""
    if when is None:
        return "never"
    if when <= now:
        return "at the next pass"
    return f"in {duration((when - now).total_seconds())}"


def _times(n: int) -> str:
    return {1: "once", 2: "twice"}.get(n, f"{n} times")


def _items(n: int) -> str:
    return f"{n:,} item" + ("" if n == 1 else "s")


def state_of(feed: FeedState) -> str:
    """``"failed"``, ``"ok"``, ``"new"`` (not fetched yet), ``"stopped"`` (disabled after a
    410) or ``"unfollowed"`` (no longer scheduled)."""
    if not feed.scheduled:
        return "unfollowed"
    if feed.disabled:
        return "stopped"
    if feed.last_error:
        return "failed"
    if feed.last_fetch_at is None:
        return "new"
    return "ok"


def describe(feed: FeedState, now: dt.datetime) -> str:
    """The feed's state in one sentence (``now``: the current UTC time), e.g. ``"failed 3
    times in a row; last error: cannot connect: connection refused; next try in 2 h"``,
    ``"OK, 41 items; next check in 55 min"``."""
    state = state_of(feed)
    if state == "unfollowed":
        return f"no longer followed (not in feeds.toml any more); its {_items(feed.items)} stay"
    if state == "stopped":
        return f"stopped: {feed.last_error or 'disabled'}"
    if state == "failed":
        streak = "failed once" if feed.error_count <= 1 else f"failed {_times(feed.error_count)} in a row"
        return f"{streak}; last error: {feed.last_error}; next try {until(feed.next_check_at, now)}"
    if state == "new":
        return f"not fetched yet; first check {until(feed.next_check_at, now)}"
    return f"OK, {_items(feed.items)}; next check {until(feed.next_check_at, now)}"


@dataclass(frozen=True, slots=True)
class FailingFeeds:
    """Of the ``total`` scheduled, enabled feeds, ``failed`` had an error on their latest fetch."""

    failed: int
    total: int

    @property
    def most(self) -> bool:
        """More than half of the feeds failed: the digest pages show a notice."""
        return self.total > 0 and 2 * self.failed > self.total


def failing_feeds(session: Session) -> FailingFeeds:
    """How many scheduled, enabled feeds failed on their latest fetch: one aggregate over
    ``feeds`` (a few rows per feed followed), cheap enough for every page view."""
    failed, total = session.execute(
        sa.select(
            sa.func.count(Feed.last_error),  # counts the non-NULL errors
            sa.func.count(),
        ).where(Feed.scheduled.is_(True), Feed.disabled.is_(False))
    ).one()
    return FailingFeeds(int(failed or 0), int(total or 0))
