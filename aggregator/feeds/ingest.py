"""Ingest: decide what a parsed document adds or changes (pure), then write it (one transaction).

After lemon24/reader: :func:`decide` compares parsed entries with what is stored and returns
intents; :func:`apply_fetch` writes them, together with the feed's new fetch state, in a single
transaction, so a crash mid-ingest leaves neither half an item batch nor an ETag that would
hide the lost items behind a 304.

Who may write what is the trust model of :mod:`aggregator.feeds.trust`: only arXiv's own feeds
write papers; a feed never changes an item another feed of the same or higher trust owns.

Bulk writes use SQLAlchemy Core ``INSERT ... ON CONFLICT``: fetching the same document twice,
or two workers ingesting it at once, adds nothing the second time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import urllib.parse
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session

from aggregator.config import FeedConfig
from aggregator.feeds.claims import claim_feeds
from aggregator.feeds.ingest_bulk import insert_returning
from aggregator.feeds.names import first_look_alike
from aggregator.feeds.trust import Owner, Trust, feed_trust, may_create, verdict
from aggregator.feeds.venues import extract
from aggregator.store import queries
from aggregator.store.db import insert
from aggregator.store.tables import Feed, Item, ItemOwner
from aggregator.types import FetchResult, IngestSummary, ParsedEntry, ParsedFeed

_CHUNK = 500  # keys per IN (...) lookup; well under SQLite's 32766 bound-parameter limit
#: columns filled from the arXiv comment and journal reference, which only the API carries
_FROM_COMMENT = (
    "comment",
    "journal_ref",
    "venue",
    "venue_year",
    "venue_workshop",
    "venue_label",
    "has_code",
    "links",
)


def content_hash(entry: ParsedEntry) -> str:
    """SHA-1 hex digest of the fields a reader sees; a change means the item was updated."""
    h = hashlib.sha1()
    for part in (
        entry.title,
        entry.url or "",
        "\x1f".join(entry.authors),
        entry.summary,
        str(entry.version or 0),
        " ".join(entry.categories),
    ):
        h.update(part.encode("utf-8", "replace"))
        h.update(b"\x1e")
    return h.hexdigest()


@dataclass(frozen=True, slots=True)
class Stored:
    """What ingest needs to know of an item already in the database."""

    id: int
    version: int | None
    content_hash: str
    kind: str = "post"
    owner: Owner | None = None


@dataclass(slots=True)
class IngestPlan:
    """Intents for one document: items to insert, items to update (by id), items whose owner
    becomes this feed (``take_over``, by id), entries refused, and the entries to record as
    announced by the feed (``entries``)."""

    insert: list[tuple[ParsedEntry, str]] = field(default_factory=list)
    update: list[tuple[int, ParsedEntry, str]] = field(default_factory=list)
    take_over: list[int] = field(default_factory=list)
    unchanged: int = 0
    refused: list[ParsedEntry] = field(default_factory=list)
    entries: list[ParsedEntry] = field(default_factory=list)


def _classify(
    entry: ParsedEntry, digest: str, old: Stored, feed_id: int, trust: Trust, plan: IngestPlan
) -> None:
    rule = verdict(old.kind, feed_id, trust, old.owner)
    if entry.kind == "paper" and trust < Trust.ARXIV:
        rule = "source_only" if rule == "source_only" else "refuse"
    if rule == "refuse":
        plan.refused.append(entry)
        return
    plan.entries.append(entry)
    if rule == "source_only":
        plan.refused.append(entry)
    elif rule == "take_over":
        plan.take_over.append(old.id)
        if digest != old.content_hash:
            plan.update.append((old.id, entry, digest))
        else:
            plan.unchanged += 1
    elif entry.kind == "paper":  # an arXiv replacement: only a newer version
        if (entry.version or 0) > (old.version or 0):
            plan.update.append((old.id, entry, digest))
        else:
            plan.unchanged += 1
    elif digest != old.content_hash:
        plan.update.append((old.id, entry, digest))
    else:
        plan.unchanged += 1


def decide(
    entries: Iterable[ParsedEntry],
    stored: dict[str, Stored],
    feed_id: int | None = None,
    trust: Trust = Trust.ARXIV,
) -> IngestPlan:
    """Pure: classify entries as new, updated, unchanged or refused against ``stored``
    (key → Stored), for the feed ``feed_id`` of ``trust`` (defaults: an arXiv feed owning
    nothing yet).

    Duplicate keys within one document are kept once (the first). Who may write which item is
    :func:`aggregator.feeds.trust.verdict`; where it may, a paper is updated only when its
    version is newer than the stored one (an arXiv replacement), a post whenever its content
    hash differs.
    """
    plan = IngestPlan()
    seen: set[str] = set()
    me = -1 if feed_id is None else feed_id
    for entry in entries:
        if entry.key in seen:
            continue
        seen.add(entry.key)
        digest = content_hash(entry)
        old = stored.get(entry.key)
        if old is not None:
            _classify(entry, digest, old, me, trust, plan)
        elif may_create(entry.kind, entry.key, trust):
            plan.entries.append(entry)
            plan.insert.append((entry, digest))
        else:
            plan.refused.append(entry)
    return plan


def _chunks(seq: Sequence[str], size: int = _CHUNK) -> Iterable[Sequence[str]]:
    for i in range(0, len(seq), size):
        yield seq[i : i + size]


def load_stored(session: Session, keys: Sequence[str], api_url: str = "") -> dict[str, Stored]:
    """The stored items of ``keys``, each with its owner and the owner's trust."""
    out: dict[str, Stored] = {}
    query = (
        sa.select(
            Item.key, Item.id, Item.version, Item.content_hash, Item.kind,
            ItemOwner.item_id, Feed.id, Feed.url, Feed.kind, Feed.reader_added,
        )
        .outerjoin(ItemOwner, ItemOwner.item_id == Item.id)
        .outerjoin(Feed, Feed.id == ItemOwner.feed_id)
    )  # fmt: skip
    for chunk in _chunks(keys):
        for key, id_, version, digest, kind, owned, fid, url, fkind, added in session.execute(
            query.where(Item.key.in_(chunk))
        ):
            owner = None
            if owned is not None:
                trust = None if fid is None else feed_trust(url, fkind, bool(added), api_url)
                owner = Owner(fid, trust)
            out[key] = Stored(id_, version, digest, kind, owner)
    return out


def _item_row(entry: ParsedEntry, digest: str, now: dt.datetime) -> dict[str, object]:
    return {
        "key": entry.key,
        "kind": entry.kind,
        "content_html": entry.content_html,
        "arxiv_id": entry.arxiv_id,
        "version": entry.version,
        "title": entry.title,
        "url": entry.url,
        "authors": list(entry.authors),
        "summary": entry.summary,
        "summary_html": entry.summary_html,
        "categories": list(entry.categories),
        "primary_category": entry.primary_category,
        "comment": entry.comment,
        "journal_ref": entry.journal_ref,
        **extract(entry.comment, entry.journal_ref, entry.summary).columns(),
        # an API entry has its comment and journal reference; a listing's are asked for later
        # (aggregator.worker.enrich), as are a replacement's (its comment may now say "accepted")
        "enriched_at": now if entry.from_api else None,
        "guid": entry.guid,
        "published": entry.published,
        "date_from_fetch": entry.date_from_fetch,
        "content_hash": digest,
        "first_seen_at": now,
        "updated_at": now,
    }


def _set_owners(session: Session, feed_id: int, item_ids: Sequence[int], replace: bool) -> None:
    if not item_ids:
        return
    conn = session.connection()
    for start in range(0, len(item_ids), _CHUNK):
        chunk = item_ids[start : start + _CHUNK]
        if replace:
            conn.execute(sa.delete(ItemOwner).where(ItemOwner.item_id.in_(chunk)))
        rows = [{"item_id": i, "feed_id": feed_id} for i in chunk]
        conn.execute(insert(conn, ItemOwner.__table__).on_conflict_do_nothing(), rows)


def write_entries(
    session: Session,
    feed_id: int,
    entries: Sequence[ParsedEntry],
    now: dt.datetime,
    *,
    api_url: str = "",
    final_url: str | None = None,
) -> IngestSummary:
    """Insert new items, update changed ones and record which feed announced each, as far as
    the feed's trust allows (:mod:`aggregator.feeds.trust`; ``api_url`` is
    ``settings.arxiv_api_url``, ``final_url`` where this fetch ended after redirects).

    Runs inside the caller's transaction. Returns counts and the ids of inserted items.
    """
    feed = session.get(Feed, feed_id)
    if feed is None:
        raise ValueError(f"no feed {feed_id}")
    trust = feed_trust(feed.url, feed.kind, feed.reader_added, api_url, final_url)
    keys = list(dict.fromkeys(e.key for e in entries))
    plan = decide(entries, load_stored(session, keys, api_url), feed_id, trust)
    summary = IngestSummary(unchanged=plan.unchanged, refused=len(plan.refused))
    conn = session.connection()
    inserted: list[int] = []
    if plan.insert:
        # RETURNING gives only the rows this statement inserted: when another feed's ingest
        # (a cross-list) commits the same paper first, ON CONFLICT skips it and it is not "new"
        # here, though it looked absent when `decide` ran.
        rows = [_item_row(e, d, now) for e, d in plan.insert]
        inserted += insert_returning(conn, "items", rows, "id")  # raw DBAPI: no bind processing
    for item_id, entry, digest in plan.update:
        values = _item_row(entry, digest, now)
        for keep in ("key", "first_seen_at", "published", "date_from_fetch"):
            values.pop(keep)
        if entry.kind == "paper" and not entry.from_api:  # RSS: keep the API's comment until enriched
            for keep in _FROM_COMMENT:
                values.pop(keep)
        session.execute(sa.update(Item).where(Item.id == item_id).values(**values, card=None))
    summary.updated = len(plan.update)
    _set_owners(session, feed_id, inserted, replace=False)
    _set_owners(session, feed_id, plan.take_over, replace=True)
    after = load_stored(session, keys, api_url)
    ids = {k: s.id for k, s in after.items()}
    summary.new_item_ids = sorted(inserted)
    summary.new = len(summary.new_item_ids)
    sources = [
        e
        for e in plan.entries
        # an item another feed inserted meanwhile (a race): a reader's feed records nothing
        if e.key in ids and (trust >= Trust.OPERATOR or _owned_by(after[e.key], feed_id))
    ]
    _record_sources(session, feed_id, [(ids[e.key], e) for e in sources], set(inserted), now)
    return summary


def _record_sources(
    session: Session,
    feed_id: int,
    seen: Sequence[tuple[int, ParsedEntry]],
    inserted: set[int],
    now: dt.datetime,
) -> None:
    """``item_sources`` rows for the items the feed announced (item id, entry)."""
    if not seen:
        return
    conn = session.connection()
    rows = [
        {
            "item_id": item_id,
            "feed_id": feed_id,
            "announce_type": e.announce_type or "",
            "version": e.version or 0,
            "seen_at": now,
        }
        for item_id, e in seen
    ]
    announced = set(insert_returning(conn, "item_sources", rows, "item_id"))
    # an item announced by one more feed (a cross-list) lists it in its card's sources
    queries.invalidate(session, announced - inserted)


def _owned_by(stored: Stored, feed_id: int) -> bool:
    return stored.owner is not None and stored.owner.feed_id == feed_id


# --- feed state -------------------------------------------------------------------------------


def failure_delay(error_count: int, interval_minutes: int, retry_after: float | None, cap: float) -> float:
    """Seconds to wait after the ``error_count``-th failure in a row (pure).

    Exponential backoff from the feed's own interval: ``interval × 2^(n-1)``, never shorter
    than the server's Retry-After (RFC 9110 §10.2.3), and capped at ``cap`` (default 24 h).
    Unlike miniflux, a feed is never given up on; only 410 Gone disables it.
    """
    delay = interval_minutes * 60.0 * (2 ** max(0, min(error_count - 1, 20)))
    if retry_after is not None:
        delay = max(delay, retry_after)
    return min(delay, cap)


def sync_feeds(session: Session, configs: Sequence[FeedConfig], now: dt.datetime) -> None:
    """Make the feeds table match the feeds file: add new feeds (due now), update names,
    kinds, intervals and tags, and unschedule feeds no longer listed (their items stay).
    Feeds that live in the database only stay scheduled: OPML-imported ones (tag "opml") and
    those readers added (``reader_added``, see :mod:`aggregator.feeds.added_feeds`). A feed a
    reader added that the file lists becomes the operator's (``reader_added`` false, no
    ``added_by``): the reader can no longer remove or rename it, and it has operator trust;
    a reader's feed named like a listed one gets its host added (:func:`_yield_names`)."""
    urls = [c.url for c in configs]
    existing = {
        f.url: f
        for f in session.scalars(sa.select(Feed).where(Feed.scheduled.is_(True) | Feed.url.in_(urls)))
    }
    listed = set()
    for cfg in configs:
        listed.add(cfg.url)
        feed = existing.get(cfg.url)
        if feed is None:  # ON CONFLICT: several workers may sync the same new feeds at once
            session.execute(
                insert(session.connection(), Feed.__table__)
                .values(
                    url=cfg.url,
                    name=cfg.name,
                    kind=cfg.kind,
                    interval_minutes=cfg.interval,
                    tags=list(cfg.tags),
                    scheduled=True,
                    next_check_at=now,
                    created_at=now,
                    error_count=0,
                    disabled=False,
                )
                .on_conflict_do_nothing(index_elements=["url"])
            )
            continue
        if feed.name != cfg.name:  # the cards of its items name it in their sources
            queries.invalidate_feed(session, feed.id)
        feed.name, feed.interval_minutes, feed.tags, feed.scheduled = (
            cfg.name,
            cfg.interval,
            list(cfg.tags),
            True,
        )
        feed.reader_added, feed.added_by = False, None  # listed: the operator's, whoever added it first
        if cfg.kind is not None:
            feed.kind = cfg.kind
    for url, feed in existing.items():
        if url not in listed and "opml" not in (feed.tags or []) and not feed.reader_added:
            feed.scheduled = False
    session.flush()
    _yield_names(session, [c.name for c in configs])


def _yield_names(session: Session, operator_names: list[str]) -> None:
    """A reader's feed whose name looks like one the operator lists (:mod:`aggregator.feeds.names`;
    the reader chose it before the operator listed theirs) gets its host added, visibly."""
    if not operator_names:
        return
    for feed in session.scalars(sa.select(Feed).where(Feed.reader_added.is_(True))):
        if first_look_alike(feed.name, operator_names) is not None:
            host = urllib.parse.urlsplit(feed.url).hostname or "a reader's feed"
            feed.name = f"{feed.name[: 290 - len(host)]} ({host})"
            queries.invalidate_feed(session, feed.id)
    session.flush()


def apply_fetch(
    session: Session,
    feed: Feed,
    result: FetchResult,
    parsed: ParsedFeed | None,
    now: dt.datetime,
    max_backoff: float,
    api_url: str = "",
) -> IngestSummary:
    """Write one fetch's outcome: its items (if any) and the feed's new state.

    The caller commits; everything here is one transaction. A document that yields no entries
    and could not be parsed counts as a failure, like a network error: error count up, backoff.
    """
    feed.last_fetch_at = now
    feed.last_status = result.status
    feed.lease_until = None
    summary = IngestSummary()
    error = result.error
    if error is None and parsed is not None and not parsed.entries and parsed.problems:
        error = "not a usable feed: " + "; ".join(parsed.problems)[:900]
    if error is None and parsed is not None and parsed.api_error:
        error = "arXiv API error: " + parsed.api_error[:900]
    if error is not None:
        feed.error_count = (feed.error_count or 0) + 1
        feed.last_error = error
        if result.gone:
            feed.disabled = True
            feed.last_error = f"{error}; the feed is gone (HTTP 410) and has been disabled"
            feed.next_check_at = None
        else:
            delay = failure_delay(feed.error_count, feed.interval_minutes, result.retry_after, max_backoff)
            feed.next_check_at = now + dt.timedelta(seconds=delay)
        return summary
    feed.error_count = 0
    feed.last_error = None
    feed.last_success_at = now
    feed.next_check_at = now + dt.timedelta(minutes=feed.interval_minutes)
    if result.etag or result.last_modified or not result.not_modified:
        feed.etag, feed.last_modified = result.etag, result.last_modified
    if parsed is not None:
        feed.parse_problems = "; ".join(parsed.problems)[:2000] or None
        if parsed.title:
            feed.title = parsed.title[:1000]
        if feed.kind is None:
            feed.kind = parsed.kind
        summary = write_entries(
            session, feed.id, parsed.entries, now, api_url=api_url, final_url=result.final_url
        )
    return summary


def claim_due_feeds(
    session: Session,
    now: dt.datetime,
    lease_seconds: float,
    include_all: bool = False,
    feed_ids: Sequence[int] | None = None,
) -> list[Feed]:
    """Claim the feeds due for a check by setting a lease; returns the claimed feeds.

    A feed whose lease has not expired belongs to another worker and is skipped, so two
    processes never fetch the same feed at once (:func:`aggregator.feeds.claims.claim_feeds`,
    which also lists the feeds skipped). ``include_all`` ignores ``next_check_at``.
    """
    return claim_feeds(session, now, lease_seconds, include_all, feed_ids).feeds
