"""One fetch pass over the due feeds: conditional GETs with bounded concurrency, parse, store
(:mod:`aggregator.feeds.ingest`), and a per-feed outcome. A broken feed is recorded on its
row (status, error, next check) and never stops the others."""

from __future__ import annotations

import asyncio
import datetime as dt
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa

from aggregator import metrics
from aggregator.clock import utcnow
from aggregator.config import FeedsFile, Settings
from aggregator.feeds import arxiv
from aggregator.feeds.claims import HeldFeed, claim_feeds, renew_feed_claims
from aggregator.feeds.fetch import Fetcher
from aggregator.feeds.ingest import apply_fetch, sync_feeds
from aggregator.feeds.parse_pool import RECYCLE_BYTES, ParsePool, pool_for
from aggregator.feeds.parse_worker import release_freed_memory
from aggregator.store.db import session_factory
from aggregator.store.locks import Heartbeat
from aggregator.store.tables import Feed
from aggregator.types import FetchResult, ParsedFeed
from aggregator.worker.tasks import log


@dataclass(slots=True)
class FeedOutcome:
    """One feed's result in a refresh pass. ``state`` is "new", "unchanged", "failed", or
    "skipped" when another process took over the feed's claim during the pass."""

    feed_id: int
    name: str
    state: str
    new_items: int = 0
    updated_items: int = 0
    status: int | None = None
    error: str | None = None


@dataclass(slots=True)
class RefreshReport:
    """A refresh pass: one outcome per feed fetched; ``held``: feeds skipped because another
    process had claimed them (see :mod:`aggregator.feeds.claims`)."""

    outcomes: list[FeedOutcome] = field(default_factory=list)
    new_item_ids: list[int] = field(default_factory=list)
    held: list[HeldFeed] = field(default_factory=list)

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
    claims: _Claims,
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
        if claims.is_lost(feed.id):  # another process claimed it meanwhile: its result stands
            outcome = FeedOutcome(feed.id, feed.name, "skipped", error=LOST)
        else:
            try:
                outcome, new_ids = await asyncio.to_thread(_record, engine, settings, feed.id, result)
            except Exception as err:  # a database error on one feed (SQLite busy…) must not stop the others
                log.exception("storing %s failed", feed.url)
                outcome = FeedOutcome(feed.id, feed.name, "failed", error=f"could not store: {err}")
                new_ids = []
            claims.done(feed.id)
            _observe(outcome, result, feed)
            report.new_item_ids.extend(new_ids)
        report.outcomes.append(outcome)
        if progress is not None:
            progress(outcome)

    async with Fetcher(settings, engine=engine) as fetcher:
        await asyncio.gather(*(one(fetcher, f) for f in feeds))
    return report


#: the error of a feed whose claim another process took over during the pass
LOST = "claim taken over by another process (this pass ran past its claim)"


class _Claims:
    """The claims of one pass, renewed by a heartbeat until each feed's result is stored."""

    def __init__(
        self, engine: sa.Engine, feed_ids: Sequence[int], until: dt.datetime, seconds: float
    ) -> None:
        self.engine, self.seconds, self.until = engine, seconds, until
        self._lock = threading.Lock()
        self._pending = set(feed_ids)
        self._lost: set[int] = set()

    def done(self, feed_id: int) -> None:
        with self._lock:
            self._pending.discard(feed_id)

    def is_lost(self, feed_id: int) -> bool:
        with self._lock:
            return feed_id in self._lost

    def renew(self) -> bool:
        """One heartbeat: extend the pending claims; feeds claimed by another process are
        logged as errors and left to it. Always True: the other feeds go on."""
        with self._lock:
            pending = sorted(self._pending - self._lost)
        until = utcnow() + dt.timedelta(seconds=self.seconds)
        lost = renew_feed_claims(self.engine, pending, self.until, until)
        with self._lock:
            self.until = until
            self._lost.update(lost)
        if lost:
            log.error("feed claims lost to another process: feeds %s", lost)
        return True


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
    hold, and record each feed's state. ``feeds_file`` (when given) is synced first. Feeds
    claimed by another process are skipped and listed in ``report.held``; ours are claimed for
    ``settings.job_lease_seconds`` and renewed every third of that while the pass runs."""
    now = utcnow()
    seconds = settings.job_lease_seconds
    with session_factory(engine)() as session:
        if feeds_file is not None:
            with session.begin():
                sync_feeds(session, feeds_file.feeds, now)
        claim = claim_feeds(session, now, seconds, include_all=include_all)
    if on_claimed is not None:
        on_claimed(len(claim.feeds))
    assert claim.until is not None
    claims = _Claims(engine, [f.id for f in claim.feeds], claim.until, seconds)
    with Heartbeat(claims.renew, seconds / 3, "the feed claims"):
        report = asyncio.run(_refresh(engine, settings, claim.feeds, progress, claims))
    report.held = claim.held
    report.new_item_ids.sort()
    report.outcomes.sort(key=lambda o: o.feed_id)
    return report
