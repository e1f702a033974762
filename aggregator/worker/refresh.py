"""One fetch pass over the due feeds: conditional GETs with bounded concurrency, parse, store
(:mod:`aggregator.feeds.ingest`), and a per-feed outcome. A broken feed is recorded on its
row (status, error, next check) and never stops the others."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa

from aggregator import metrics
from aggregator.clock import utcnow
from aggregator.config import FeedsFile, Settings
from aggregator.feeds import arxiv
from aggregator.feeds.fetch import Fetcher
from aggregator.feeds.ingest import apply_fetch, claim_due_feeds, sync_feeds
from aggregator.feeds.parse_pool import RECYCLE_BYTES, ParsePool, pool_for
from aggregator.feeds.parse_worker import release_freed_memory
from aggregator.store.db import session_factory
from aggregator.store.tables import Feed
from aggregator.types import FetchResult, ParsedFeed
from aggregator.worker.tasks import LEASE_SECONDS, log


@dataclass(slots=True)
class FeedOutcome:
    """One feed's result in a refresh pass. ``state`` is "new", "unchanged" or "failed"."""

    feed_id: int
    name: str
    state: str
    new_items: int = 0
    updated_items: int = 0
    status: int | None = None
    error: str | None = None


@dataclass(slots=True)
class RefreshReport:
    outcomes: list[FeedOutcome] = field(default_factory=list)
    new_item_ids: list[int] = field(default_factory=list)

    def count(self, state: str) -> int:
        return sum(1 for o in self.outcomes if o.state == state)

    @property
    def new_items(self) -> int:
        return sum(o.new_items for o in self.outcomes)

    @property
    def updated_items(self) -> int:
        return sum(o.updated_items for o in self.outcomes)


def _is_arxiv(feed: Feed) -> bool:
    return feed.kind == "arxiv" or arxiv.is_arxiv_url(feed.url)


def _parse(pool: ParsePool, result: FetchResult, feed: Feed, now: dt.datetime) -> ParsedFeed | None:
    if result.body is None:
        return None
    kind = feed.kind if feed.kind in ("arxiv", "blog") else None
    return pool.parse(
        result.body,
        fetched_at=now,
        url=result.final_url,
        kind=kind,  # type: ignore[arg-type]
        content_type=result.content_type,
        hold_budget=False,  # _record holds it
    )


def _record(
    engine: sa.Engine, settings: Settings, feed_id: int, result: FetchResult
) -> tuple[FeedOutcome, list[int]]:
    """Parse (in a worker process, :mod:`aggregator.feeds.parse_pool`) and store one fetch
    result in its own transaction, holding the size of the document in the process's byte
    budget from the parse to the commit (large documents are parsed and stored one at a time)."""
    pool = pool_for(settings)
    size = len(result.body or b"")
    try:
        with pool.budget.hold(size):
            return _record_within_budget(engine, settings, pool, feed_id, result)
    finally:
        if size > RECYCLE_BYTES:
            release_freed_memory()


def _record_within_budget(
    engine: sa.Engine, settings: Settings, pool: ParsePool, feed_id: int, result: FetchResult
) -> tuple[FeedOutcome, list[int]]:
    now = utcnow()
    with session_factory(engine)() as session, session.begin():
        feed = session.get(Feed, feed_id)
        assert feed is not None
        try:
            parsed = _parse(pool, result, feed, now)
        except Exception as err:  # parse_feed never raises by contract; belt and braces
            log.exception("parser failed on %s", feed.url)
            result = FetchResult(result.url, result.final_url, result.status, error=f"parser failed: {err}")
            parsed = None
        summary = apply_fetch(
            session, feed, result, parsed, now, settings.max_backoff_seconds, settings.arxiv_api_url
        )
        state = "failed" if feed.last_error else ("new" if summary.new else "unchanged")
        outcome = FeedOutcome(
            feed.id, feed.name, state, summary.new, summary.updated, result.status, feed.last_error
        )
    return outcome, summary.new_item_ids


def _observe(outcome: FeedOutcome, result: FetchResult, feed: Feed) -> None:
    """Prometheus counters for one fetch (see :mod:`aggregator.metrics`)."""
    status = str(result.status) if result.status is not None else "error"
    metrics.FETCHES.labels(status=status, outcome=outcome.state).inc()
    if result.error is None or result.elapsed:
        metrics.FETCH_LATENCY.observe(result.elapsed)
    if outcome.state == "failed":
        metrics.FETCH_ERRORS.labels(kind=feed.kind or "unknown").inc()
    if outcome.new_items:
        metrics.ITEMS_INGESTED.labels(kind="paper" if _is_arxiv(feed) else "post").inc(outcome.new_items)


async def _refresh(
    engine: sa.Engine,
    settings: Settings,
    feeds: Sequence[Feed],
    progress: Callable[[FeedOutcome], None] | None,
) -> RefreshReport:
    report = RefreshReport()

    async def one(fetcher: Fetcher, feed: Feed) -> None:
        try:
            result = await fetcher.fetch(
                feed.url,
                etag=feed.etag,
                last_modified=feed.last_modified,
                arxiv=_is_arxiv(feed),
                guarded=feed.reader_added,  # a reader's URL: the SSRF guard at every fetch
            )
        except Exception as err:  # a bug in one fetch must not stop the others
            log.exception("fetch of %s failed unexpectedly", feed.url)
            result = FetchResult(feed.url, feed.url, None, error=f"unexpected error: {err!r}")
        try:
            outcome, new_ids = await asyncio.to_thread(_record, engine, settings, feed.id, result)
        except Exception as err:  # a database error on one feed (SQLite busy…) must not stop the others
            log.exception("storing %s failed", feed.url)
            outcome, new_ids = FeedOutcome(feed.id, feed.name, "failed", error=f"could not store: {err}"), []
        _observe(outcome, result, feed)
        report.outcomes.append(outcome)
        report.new_item_ids.extend(new_ids)
        if progress is not None:
            progress(outcome)

    async with Fetcher(settings) as fetcher:
        await asyncio.gather(*(one(fetcher, f) for f in feeds))
    return report


def refresh_feeds(
    engine: sa.Engine,
    settings: Settings,
    feeds_file: FeedsFile | None = None,
    *,
    include_all: bool = False,
    progress: Callable[[FeedOutcome], None] | None = None,
    on_claimed: Callable[[int], None] | None = None,
) -> RefreshReport:
    """Fetch every due feed once (all scheduled feeds with ``include_all``), ingest what they
    hold, and record each feed's state. ``feeds_file`` (when given) is synced first."""
    now = utcnow()
    with session_factory(engine)() as session:
        if feeds_file is not None:
            with session.begin():
                sync_feeds(session, feeds_file.feeds, now)
        feeds = claim_due_feeds(session, now, LEASE_SECONDS, include_all=include_all)
    if on_claimed is not None:
        on_claimed(len(feeds))
    report = asyncio.run(_refresh(engine, settings, feeds, progress))
    report.new_item_ids.sort()
    report.outcomes.sort(key=lambda o: o.feed_id)
    return report
