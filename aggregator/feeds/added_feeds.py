"""Feeds readers add to the instance's shared reading list (``/api/me/feeds``, profile page).

A reader gives a URL (and optionally a name). :func:`add_feed`:

1. checks the URL rules of :class:`~aggregator.feeds.ssrf.NetGuard` (http/https, no
   ``user@host``, no odd IP spellings, an IP-literal host must be public), no network;
2. returns the existing feed when the URL (as given, or normalised: lower-case scheme and
   host, no default port, no ``#fragment``, compared with the stored URLs normalised the same
   way) is already in the ``feeds`` table and scheduled -- no duplicate, no fetch, no quota
   used, nothing about that feed changed (the operator's feed stays the operator's, with its
   name and trust); an operator's feed that is no longer scheduled is refused
   (:class:`~aggregator.errors.Conflict`): only the operator follows it again;
3. refuses when the reader already has ``settings.reader_feeds_max`` scheduled feeds, and a
   name that looks like another feed's (:mod:`aggregator.feeds.names`: case, spaces,
   invisible characters and confusable letters ignored);
4. fetches the URL once through the project's :class:`~aggregator.feeds.fetch.Fetcher` with
   ``guarded=True`` (every redirect hop and connected address through the guard) and parses
   it in a parse worker process (:mod:`aggregator.feeds.parse_pool`: CPU limit, byte budget);
   a fetch error, or a document with no entries and
   parse problems (the rule :func:`aggregator.feeds.ingest.apply_fetch` counts as a failure), is
   refused with the reason;
5. stores the feed: scheduled, due now (the scheduler fetches and ingests it on its next
   pass, like any feed), ``added_by`` the reader and ``reader_added`` true, so
   :func:`aggregator.feeds.ingest.sync_feeds` keeps it and fetches of it are to be guarded. A known
   URL that is no longer scheduled (a reader's) is scheduled again the same way, for this
   reader. The limit is checked again under a lock of the reader's row
   (:func:`aggregator.store.locks.lock_reader`), so concurrent adds cannot pass it. A name
   taken from the feed's title that looks like another feed's gets the host added.

:func:`remove_feed` stops scheduling a feed the reader added (its items stay). Feeds are shared:
every reader's digest ranks their items, whoever added them.

Errors: :class:`FeedError` (the URL or name cannot be added, 422), :class:`FeedLimit` (too
many, 409), :class:`~aggregator.errors.Conflict` (an operator's unfollowed feed, 409),
:class:`NotFound` (404), :class:`Forbidden` (someone else's feed, 403); each message is for a
person. Database work runs in worker threads; nothing holds a connection during the fetch.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from dataclasses import dataclass
from typing import Literal

import httpx
import sqlalchemy as sa
from sqlalchemy.orm import Session

from aggregator.clock import utcnow
from aggregator.config import Settings
from aggregator.errors import Conflict, Forbidden, NotFound
from aggregator.feeds.fetch import Fetcher
from aggregator.feeds.names import MAX_NAME, clean_name, first_look_alike
from aggregator.feeds.parse_pool import pool_for
from aggregator.feeds.ssrf import Blocked, NetGuard
from aggregator.store.db import insert
from aggregator.store.locks import lock_name, lock_reader
from aggregator.store.tables import Feed, ItemSource
from aggregator.types import ParsedFeed

#: Longest URL accepted (the ``feeds.url`` column).
MAX_URL = 2048
#: Minutes between two checks of a reader-added feed.
INTERVAL_MINUTES = 60

FeedState = Literal["pending", "ok", "failing", "disabled", "stopped"]

_DEFAULT_PORTS = {"http": 80, "https": 443}


class FeedError(ValueError):
    """The feed cannot be added; the message says why, ``field`` which input ("url" or "name")."""

    def __init__(self, message: str, field: str = "url") -> None:
        super().__init__(message)
        self.field = field


class FeedLimit(Exception):
    """The reader has added as many feeds as ``settings.reader_feeds_max`` allows."""


@dataclass(frozen=True, slots=True)
class ReaderFeed:
    """A feed as its reader sees it. ``state``: "pending" (not fetched yet), "ok", "failing"
    (the last fetch failed; see ``last_error``), "disabled" (HTTP 410) or "stopped" (no longer
    scheduled). ``mine``: added by the reader asking. Times are UTC."""

    id: int
    url: str
    name: str
    title: str | None
    kind: str | None
    added_at: dt.datetime
    mine: bool
    state: FeedState
    scheduled: bool
    disabled: bool
    last_fetch_at: dt.datetime | None
    last_success_at: dt.datetime | None
    last_status: int | None
    last_error: str | None
    error_count: int
    next_check_at: dt.datetime | None
    items: int


@dataclass(frozen=True, slots=True)
class AddOutcome:
    """The feed, and whether this call added it (False: the URL was known and scheduled)."""

    feed: ReaderFeed
    created: bool


# --- reading -----------------------------------------------------------------------------------


def _state(feed: Feed) -> FeedState:
    if not feed.scheduled:
        return "stopped"
    if feed.disabled:
        return "disabled"
    if feed.last_fetch_at is None:
        return "pending"
    return "failing" if feed.error_count else "ok"


def _item_counts(session: Session, feed_ids: list[int]) -> dict[int, int]:
    if not feed_ids:
        return {}
    rows = session.execute(
        sa.select(ItemSource.feed_id, sa.func.count(sa.distinct(ItemSource.item_id)))
        .where(ItemSource.feed_id.in_(feed_ids))
        .group_by(ItemSource.feed_id)
    )
    return {feed_id: int(n) for feed_id, n in rows}


def describe(feed: Feed, reader_id: int, items: int = 0) -> ReaderFeed:
    """The reader's view of one ``feeds`` row."""
    return ReaderFeed(
        id=feed.id,
        url=feed.url,
        name=feed.name,
        title=feed.title,
        kind=feed.kind,
        added_at=feed.created_at,
        mine=feed.added_by == reader_id,
        state=_state(feed),
        scheduled=feed.scheduled,
        disabled=feed.disabled,
        last_fetch_at=feed.last_fetch_at,
        last_success_at=feed.last_success_at,
        last_status=feed.last_status,
        last_error=feed.last_error,
        error_count=feed.error_count,
        next_check_at=feed.next_check_at,
        items=items,
    )


def list_feeds(session: Session, reader_id: int) -> list[ReaderFeed]:
    """The scheduled feeds ``reader_id`` added, oldest first, with their fetch state."""
    rows = list(
        session.scalars(
            sa.select(Feed).where(Feed.added_by == reader_id, Feed.scheduled.is_(True)).order_by(Feed.id)
        )
    )
    counts = _item_counts(session, [f.id for f in rows])
    return [describe(f, reader_id, counts.get(f.id, 0)) for f in rows]


def count_added(session: Session, reader_id: int) -> int:
    """How many scheduled feeds ``reader_id`` added (what the limit counts)."""
    query = sa.select(sa.func.count(Feed.id)).where(Feed.added_by == reader_id, Feed.scheduled.is_(True))
    return int(session.scalar(query) or 0)


# --- changing ----------------------------------------------------------------------------------


def remove_feed(session: Session, reader_id: int, feed_id: int) -> None:
    """Stop scheduling a feed ``reader_id`` added; its items stay. Again is harmless.
    Raises :class:`NotFound` or :class:`Forbidden`. The caller commits."""
    feed = session.get(Feed, feed_id)
    if feed is None:
        raise NotFound(f"no feed with id {feed_id}")
    if feed.added_by != reader_id:
        raise Forbidden(
            f"feed {feed_id} was not added by you; only the reader who added a feed can remove it"
        )
    feed.scheduled = False
    feed.lease_until = None
    session.flush()


def check_url(url: str, guard: NetGuard) -> str:
    """The normalised URL (scheme and host lower case, default port and fragment dropped) when
    the URL rules accept it; raises :class:`FeedError` with the reason."""
    text = url.strip()
    if not text:
        raise FeedError("the URL is empty")
    if len(text) > MAX_URL:
        raise FeedError(f"the URL is longer than {MAX_URL} characters")
    try:
        parsed = guard.check_url(text)
    except Blocked as err:
        raise FeedError(f"cannot add {text}: {err}") from None
    if parsed.port == _DEFAULT_PORTS.get(parsed.scheme):
        parsed = parsed.copy_with(port=None)
    normal = str(parsed.copy_with(fragment=None))
    if len(normal) > MAX_URL:
        raise FeedError(f"the URL is longer than {MAX_URL} characters")
    return normal


def _normal(url: str) -> str | None:
    """``url`` with the spelling :func:`check_url` normalises (scheme and host lower case, no
    default port, no fragment), without the guard's checks; None when it does not parse."""
    try:
        parsed = httpx.URL(url.strip())
        if parsed.port == _DEFAULT_PORTS.get(parsed.scheme):
            parsed = parsed.copy_with(port=None)
        return str(parsed.copy_with(fragment=None))
    except (httpx.InvalidURL, ValueError, TypeError):
        return None


def _find(session: Session, urls: set[str]) -> Feed | None:
    """The feed stored under one of ``urls``, or under another spelling of the same normalised
    URL (an operator may list ``HTTPS://Example.org:443/feed``); the oldest when several."""
    found = session.scalars(sa.select(Feed).where(Feed.url.in_(sorted(urls))).order_by(Feed.id)).first()
    if found is not None:
        return found
    normals = {n for n in map(_normal, urls) if n}
    hosts = {httpx.URL(n).host for n in normals if httpx.URL(n).host}
    if not hosts:
        return None
    near = sa.or_(*(sa.func.lower(Feed.url).contains(h.lower(), autoescape=True) for h in sorted(hosts)))
    for feed in session.scalars(sa.select(Feed).where(near).order_by(Feed.id)):
        if _normal(feed.url) in normals:
            return feed
    return None


def _look_alike(session: Session, name: str, except_id: int | None) -> str | None:
    """The name of another feed that ``name`` can pass for (:mod:`aggregator.feeds.names`)."""
    query = sa.select(Feed.name)
    if except_id is not None:
        query = query.where(Feed.id != except_id)
    return first_look_alike(name, session.scalars(query))


def _refuse_look_alike(name: str, other: str) -> FeedError:
    if name.casefold() == other.casefold():
        return FeedError(f"another feed is already named {name!r}; choose another name", "name")
    return FeedError(
        f"{name!r} looks like the name of another feed, {other!r} (names are compared without "
        "case, spaces, invisible characters and look-alike letters); choose another name",
        "name",
    )


def _choose_name(
    session: Session, given: str | None, parsed: ParsedFeed, url: str, except_id: int | None
) -> str:
    """The reader's name (refused when it looks like another feed's: names label items and
    sources), else the feed's title, else its host; a title that looks like another feed's
    name gets the host, then the URL, added."""
    if given is not None:
        other = _look_alike(session, given, except_id)
        if other is not None:
            raise _refuse_look_alike(given, other)
        return given
    host = httpx.URL(url).host
    base = clean_name(parsed.title) or host
    for candidate in (base, f"{base} ({host})", f"{base} ({url})"):
        candidate = candidate[:MAX_NAME]
        if _look_alike(session, candidate, except_id) is None:
            return candidate
    return url[:MAX_NAME]


async def probe(url: str, settings: Settings, guard: NetGuard | None = None) -> ParsedFeed:
    """Fetch ``url`` once, guarded, and parse it; the parsed feed when it is usable, else
    :class:`FeedError` saying why (refused address, HTTP status, timeout, not a feed...)."""
    async with Fetcher(settings, guard=guard) as fetcher:
        result = await fetcher.fetch(url, guarded=True)
    where = f" (at {result.final_url}, after a redirect)" if result.final_url != url else ""
    if result.error is not None:
        raise FeedError(f"cannot add {url}: {result.error}{where}")
    if result.body is None:  # a 304 to an unconditional GET: a broken server
        raise FeedError(f"cannot add {url}: the server sent no document{where}")
    # in a worker process with a CPU limit (aggregator.feeds.parse_pool): the event loop and
    # the API's other requests run on while a reader's document is parsed
    parsed = await pool_for(settings).parse_async(
        result.body, fetched_at=utcnow(), url=result.final_url, content_type=result.content_type
    )
    if parsed.api_error:
        raise FeedError(f"cannot add {url}: arXiv API error: {parsed.api_error}")
    if not parsed.entries and parsed.problems:
        problems = "; ".join(parsed.problems)[:500]
        raise FeedError(f"{url} is not a usable RSS or Atom feed: {problems}{where}")
    return parsed


def _lookup(
    session: Session, urls: set[str], reader_id: int, name: str | None
) -> tuple[ReaderFeed | None, int, str | None]:
    """The known feed of one of ``urls`` (if any), how many feeds the reader has added, and
    the name of another feed that ``name`` looks like (None: none)."""
    try:
        feed = _find(session, urls)
        known = None
        if feed is not None:
            _refuse_operators(feed)
            known = describe(feed, reader_id, _item_counts(session, [feed.id]).get(feed.id, 0))
        other = None if name is None else _look_alike(session, name, None if feed is None else feed.id)
        return known, count_added(session, reader_id), other
    finally:
        session.rollback()  # give the connection back before the fetch


def _refuse_operators(feed: Feed) -> None:
    """:class:`Conflict` for an operator's feed that is no longer scheduled: a reader adding
    its URL must not make it theirs (owner, name, trust)."""
    if not feed.scheduled and not feed.reader_added:
        raise Conflict(
            f"{feed.url} is the operator's feed {feed.name!r}, which is not followed any more; "
            "a reader cannot follow it again (ask the operator)"
        )


def _check_limit(added: int, limit: int) -> None:
    if limit == 0:
        raise FeedLimit("readers cannot add feeds on this instance (AGGREGATOR_READER_FEEDS_MAX is 0)")
    if added >= limit:
        raise FeedLimit(
            f"you have {added} feeds scheduled and a reader may add at most {limit} "
            "(AGGREGATOR_READER_FEEDS_MAX); remove one first"
        )


def _store(
    session: Session,
    reader_id: int,
    url: str,
    urls: set[str],
    name: str | None,
    parsed: ParsedFeed,
    limit: int,
    now: dt.datetime,
) -> AddOutcome:
    """Insert the feed (or schedule a known, unscheduled one again) and commit. The reader's
    row is locked first (:func:`aggregator.store.locks.lock_reader`): the limit holds."""
    try:
        lock_reader(session, reader_id)
        lock_name(session, "feed-names")  # names are compared with every feed's: one at a time
        feed = _find(session, urls)
        if feed is not None and feed.scheduled:  # added meanwhile, by someone else
            known = describe(feed, reader_id, _item_counts(session, [feed.id]).get(feed.id, 0))
            session.rollback()
            return AddOutcome(known, False)
        if feed is not None:
            _refuse_operators(feed)
        _check_limit(count_added(session, reader_id), limit)  # under the lock: the final count
        if feed is not None:
            if name is not None:
                feed.name = _choose_name(session, name, parsed, feed.url, feed.id)
            feed.scheduled, feed.disabled, feed.reader_added, feed.added_by = True, False, True, reader_id
            feed.next_check_at, feed.error_count, feed.last_error, feed.lease_until = now, 0, None, None
            feed.title = feed.title or (parsed.title[:1000] or None)
            feed.kind = feed.kind or parsed.kind
            session.commit()
            return AddOutcome(
                describe(feed, reader_id, _item_counts(session, [feed.id]).get(feed.id, 0)), False
            )
        values: dict[str, object] = {
            "url": url,
            "name": _choose_name(session, name, parsed, url, None),
            "kind": parsed.kind,
            "title": parsed.title[:1000] or None,
            "interval_minutes": INTERVAL_MINUTES,
            "tags": [],
            "scheduled": True,
            "next_check_at": now,
            "created_at": now,
            "error_count": 0,
            "disabled": False,
            "added_by": reader_id,
            "reader_added": True,
        }
        conn = session.connection()
        table = Feed.__table__
        stmt = insert(conn, table).values(**values).on_conflict_do_nothing(index_elements=["url"])
        new_id = conn.execute(stmt.returning(table.c.id)).scalar()
        session.commit()
        feed = session.get(Feed, new_id) if new_id is not None else _find(session, urls)
        assert feed is not None
        return AddOutcome(describe(feed, reader_id), new_id is not None)
    except BaseException:
        session.rollback()
        raise


async def add_feed(
    session: Session,
    settings: Settings,
    reader_id: int,
    url: str,
    name: str | None = None,
    *,
    guard: NetGuard | None = None,
    now: dt.datetime | None = None,
) -> AddOutcome:
    """Add ``url`` for ``reader_id`` as described in the module doc and commit. ``guard``
    defaults to the one of ``settings.feed_allow_hosts``. Raises :class:`FeedError` or
    :class:`FeedLimit`."""
    guard = guard or NetGuard.from_settings(settings)
    normal = check_url(url, guard)
    urls = {url.strip(), normal}
    wanted = clean_name(name)
    known, added, other = await asyncio.to_thread(_lookup, session, urls, reader_id, wanted)
    if known is not None and known.scheduled:
        return AddOutcome(known, False)
    limit = settings.reader_feeds_max
    _check_limit(added, limit)
    if wanted is not None and other is not None:
        raise _refuse_look_alike(wanted, other)
    parsed = await probe(normal, settings, guard)
    return await asyncio.to_thread(
        _store, session, reader_id, normal, urls, wanted, parsed, limit, now or utcnow()
    )
