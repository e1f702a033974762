"""The jobs the scheduler and the CLI both run: refresh due feeds, update the ranking, backfill.

Each job takes an engine and settings, talks to the network only through
:class:`aggregator.feeds.fetch.Fetcher`, and writes only through :mod:`aggregator.feeds.ingest` and
:mod:`aggregator.ranking.tfidf`. A failing feed is recorded on its row and never stops the others.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session

from aggregator import metrics
from aggregator.clock import utcnow
from aggregator.config import FeedsFile, Interests, Settings
from aggregator.feeds import arxiv
from aggregator.feeds.fetch import Fetcher
from aggregator.feeds.ingest import apply_fetch, claim_due_feeds, sync_feeds, write_entries
from aggregator.feeds.parse import parse_feed
from aggregator.store.db import session_factory
from aggregator.store.tables import BackfillCursor, Feed, Item, Score
from aggregator.types import FetchResult, IngestSummary, ParsedFeed

log = logging.getLogger(__name__)

#: A claimed feed not finished within this many seconds is free for another worker again.
LEASE_SECONDS = 15 * 60


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


def _parse(result: FetchResult, feed: Feed, now: dt.datetime) -> ParsedFeed | None:
    if result.body is None:
        return None
    kind = feed.kind if feed.kind in ("arxiv", "blog") else None
    return parse_feed(
        result.body,
        fetched_at=now,
        url=result.final_url,
        kind=kind,  # type: ignore[arg-type]
        content_type=result.content_type,
    )


def _record(
    engine: sa.Engine, settings: Settings, feed_id: int, result: FetchResult
) -> tuple[FeedOutcome, list[int]]:
    """Parse and store one fetch result in its own transaction."""
    now = utcnow()
    with session_factory(engine)() as session, session.begin():
        feed = session.get(Feed, feed_id)
        assert feed is not None
        try:
            parsed = _parse(result, feed, now)
        except Exception as err:  # parse_feed never raises by contract; belt and braces
            log.exception("parser failed on %s", feed.url)
            result = FetchResult(result.url, result.final_url, result.status, error=f"parser failed: {err}")
            parsed = None
        summary = apply_fetch(
            session, feed, result, parsed, now, settings.max_backoff, settings.arxiv_api_url
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
        outcome, new_ids = await asyncio.to_thread(_record, engine, settings, feed.id, result)
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


def update_ranking(
    engine: sa.Engine,
    settings: Settings,
    interests: Interests,
    new_item_ids: Sequence[int] | None = None,
    refit: bool = True,
) -> int:
    """Refit the TF-IDF model (when ``refit`` or none exists) and precompute scores.

    After a refit every item is rescored (scores from different models are not comparable);
    otherwise only ``new_item_ids``. Then every reader's scores are precomputed
    (:func:`aggregator.ranking.personal.precompute_all`). Returns the number of items scored for the
    default profile.
    """
    from aggregator.ranking import (
        tfidf as rank,  # scikit-learn stays out of processes that only serve requests
    )

    now = utcnow()
    with session_factory(engine)() as session, session.begin():
        model = rank.load_model(session)
        if refit or model is None:
            model = rank.refit(session, now, settings.rank_window_days)
            new_item_ids = None
        if model is None:
            return 0
        scored = rank.rescore(session, model, interests, new_item_ids, why_terms=settings.why_terms)
        from aggregator.ranking import (
            personal,  # per-reader scores: every reader's top items of the recent window
        )

        profiles = personal.load_profiles(session)
        if profiles:
            rows = personal.precompute_all(
                session, model, profiles, new_item_ids, now=now, why_terms=settings.why_terms
            )
            log.info("ranking: %d rows for %d readers", rows, len(profiles))
        return scored


def _latest_fit(conn: sa.Connection) -> dt.datetime | None:
    from aggregator.store.tables import RankModel

    fitted = conn.execute(sa.select(sa.func.max(RankModel.created_at))).scalar()
    return None if fitted is None else _utc(fitted)


def _utc(value: dt.datetime) -> dt.datetime:
    return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value  # SQLite keeps no zone


def ranking_is_stale(engine: sa.Engine) -> bool:
    """True when there is no TF-IDF model yet, or an item was first seen after the newest
    model was fitted (so the scheduler should refit). Two index look-ups (``rank_models``
    is small; ``items.first_seen_at`` is indexed), cheap enough for every scheduler tick."""
    with engine.connect() as conn:
        fitted = _latest_fit(conn)
        newest = conn.execute(sa.select(sa.func.max(Item.first_seen_at))).scalar()
    if newest is None:
        return False
    return fitted is None or _utc(newest) > fitted


#: Items first seen this long before the newest fit are checked for a missing score: a refit
#: reads the items committed when it starts, so only items committed around then can be missed.
UNSCORED_LOOKBACK = dt.timedelta(hours=6)


def score_unscored(engine: sa.Engine, settings: Settings, interests: Interests) -> int:
    """Score, with the current model, recent items that have no default-profile score yet
    (committed by another worker while a refit was reading). Returns how many; 0 when there is
    no model (the next refit scores everything). Looks only at items first seen since shortly
    before the newest fit, through the ``first_seen_at`` index, and loads the model only when
    something is missing, so it costs little on every scheduler tick."""
    from aggregator.ranking import tfidf as rank
    with session_factory(engine)() as session, session.begin():
        fitted = _latest_fit(session.connection())
        if fitted is None:
            return 0
        missing = list(
            session.scalars(
                sa.select(Item.id)
                .outerjoin(Score, sa.and_(Score.item_id == Item.id, Score.profile == rank.DEFAULT_PROFILE))
                .where(Item.first_seen_at >= fitted - UNSCORED_LOOKBACK, Score.item_id.is_(None))
            )
        )
        model = rank.load_model(session) if missing else None
        if model is None:
            return 0
        return rank.rescore(session, model, interests, missing, why_terms=settings.why_terms)


def rescore_requested(engine: sa.Engine, settings: Settings, limit: int = 50) -> int:
    """Rescore the readers API processes queued (:func:`aggregator.accounts.rescore_queue.request_rescore`),
    oldest request first, at most ``limit``: fetch missing seed papers first when asked (from
    the arXiv API, outside any transaction), then :func:`aggregator.ranking.personal.rescore.rescore` (which
    commits) and delete the request, unless a newer one replaced it meanwhile. On PostgreSQL a
    row is held with ``FOR UPDATE SKIP LOCKED`` while its reader is rescored, so several workers
    share the queue (at worst a reader is rescored twice, which is harmless). A rescore that
    cannot run (no model yet) or fails is logged and its request dropped: the next refit
    rescores every reader anyway. Returns how many readers were rescored."""
    from aggregator.accounts import profiles
    from aggregator.ranking.personal import rescore
    from aggregator.store.tables import RescoreRequest

    factory = session_factory(engine)
    with factory() as session:
        queued = session.execute(
            sa.select(RescoreRequest.reader_id, RescoreRequest.seeds)
            .order_by(RescoreRequest.requested_at)
            .limit(limit)
        ).all()
        missing = {
            r.reader_id: profiles.missing_seed_papers(
                session, profiles.get_profile(session, r.reader_id).seed_papers
            )
            for r in queued
            if r.seeds
        }
    wanted = sorted({s for seeds in missing.values() for s in seeds})
    if wanted:
        report = fetch_papers(engine, settings, wanted)
        if report.error:
            log.warning("fetching seed papers %s failed: %s", wanted, report.error)
    done = 0
    postgres = engine.dialect.name == "postgresql"
    for reader_id, _ in queued:
        with factory() as session:
            query = sa.select(RescoreRequest).where(RescoreRequest.reader_id == reader_id)
            request = session.scalar(query.with_for_update(skip_locked=True) if postgres else query)
            if request is None:  # another worker has it, or did it
                continue
            seen = request.requested_at
            n = rescore.rescore(session, reader_id, around=request.around)
            if n is None:
                log.warning("queued rescore of reader %s not done (no model yet, or it failed)", reader_id)
            session.execute(
                sa.delete(RescoreRequest).where(
                    RescoreRequest.reader_id == reader_id, RescoreRequest.requested_at == seen
                )
            )
            session.commit()
            done += n is not None
    return done


def similar_requested(engine: sa.Engine, limit: int = 20) -> int:
    """Compute the "more like this" neighbours API processes asked for
    (:func:`aggregator.ranking.similar.request`), oldest request first, at most ``limit``, with the
    newest model (:func:`aggregator.ranking.similar.compute`), one transaction each. Several workers
    may compute the same item at once; both store the same answer. Returns how many."""
    from aggregator.ranking import similar
    from aggregator.ranking import tfidf as rank
    from aggregator.store.tables import SimilarItems

    with session_factory(engine)() as session:
        asked = session.execute(
            sa.select(SimilarItems.item_id, SimilarItems.requested_at)
            .where(SimilarItems.requested_at.is_not(None))
            .order_by(SimilarItems.requested_at)
            .limit(limit)
        ).all()
        if not asked:
            return 0
        model = rank.load_model(session)
        if model is None:
            return 0
        for item_id, seen in asked:
            try:
                neighbours = similar.compute(session, model, item_id)
            except LookupError:  # deleted meanwhile: its row went with it
                continue
            similar.save(session, item_id, model.model_id, neighbours, seen=seen)
            session.commit()
    return len(asked)


def fill_cards(engine: sa.Engine, limit: int | None = 20_000) -> int:
    """Build the missing (stale) item cards, newest first, at most ``limit`` per call
    (:func:`aggregator.digest.cards.fill_missing`); cheap when none is missing (one partial-index
    look-up), so the scheduler runs it every pass. Returns how many were written."""
    from aggregator.digest import cards
    with session_factory(engine)() as session:
        return cards.fill_missing(session, limit)


@dataclass(slots=True)
class TrendsUpdate:
    """What :func:`update_trends` did: items counted, paper-post links found, results stored."""

    counted: int = 0
    links: int = 0
    scopes: int = 0
    end: dt.date | None = None


def update_trends(engine: sa.Engine, settings: Settings, new_item_ids: Sequence[int]) -> TrendsUpdate:
    """After an ingest: link new posts and papers (:mod:`aggregator.feeds.paper_links`), add the new dated
    items to the term counts (:func:`aggregator.trends.update_counts`, idempotent per item) and store
    fresh default trend results for every scope (:func:`aggregator.trends.refresh_results`).
    One transaction; with no new items nothing is written."""
    from aggregator import trends
    from aggregator.feeds import paper_links as links
    out = TrendsUpdate()
    if not new_item_ids:
        return out
    with session_factory(engine)() as session, session.begin():
        out.links = links.link_items(session, new_item_ids)
        # An undated post (its date is the fetch time) would count its terms on the day it was
        # first fetched: a blog's whole undated archive would look like a burst. Not counted.
        dated = list(
            session.scalars(
                sa.select(Item.id).where(Item.id.in_(list(new_item_ids)), Item.date_from_fetch.is_(False))
            )
        )
        out.counted = trends.update_counts(session, dated)
        if out.counted or out.links:
            reports = trends.refresh_results(session)
            out.scopes = len(reports)
            out.end = reports[0].end if reports else None
    return out


# --- backfill from the arXiv API -------------------------------------------------------------

API_FEED_NAME = "arXiv API"


def _api_feed(session: Session, settings: Settings) -> Feed:
    feed = session.scalar(sa.select(Feed).where(Feed.url == settings.arxiv_api_url))
    if feed is None:
        feed = Feed(
            url=settings.arxiv_api_url,
            name=API_FEED_NAME,
            kind="arxiv",
            interval_minutes=24 * 60,
            tags=["arxiv", "api"],
            scheduled=False,
            created_at=utcnow(),
            error_count=0,
            disabled=False,
        )
        session.add(feed)
        session.flush()
    return feed


@dataclass(slots=True)
class BackfillReport:
    """What :func:`backfill` (or :func:`fetch_papers`) did so far: API ``pages`` read, papers
    ``seen`` (those on or after the day asked for), ``new_items`` stored (their ids in
    ``new_item_ids``), ``done`` when nothing is left, ``error`` when it stopped on one.
    ``total`` is the API's ``opensearch:totalResults``: every paper of the categories, whatever
    its date, so not the number a backfill will see (the pages stop at the first paper older
    than the day); no progress bar should count towards it."""

    pages: int = 0
    new_items: int = 0
    seen: int = 0
    total: int | None = None
    done: bool = False
    error: str | None = None
    new_item_ids: list[int] = field(default_factory=list)


async def _api_page(fetcher: Fetcher, url: str, attempts: int = 3) -> tuple[FetchResult, ParsedFeed | None]:
    """One API page, retried on failure (the arXiv API answers transient errors now and then)."""
    result = FetchResult(url, url, None, error="not fetched")
    for _ in range(attempts):
        result = await fetcher.fetch(url, arxiv=True)
        if result.ok and result.body is not None:
            parsed = parse_feed(
                result.body, fetched_at=utcnow(), url=url, kind="arxiv", content_type=result.content_type
            )
            if parsed.api_error is None:
                return result, parsed
            result = FetchResult(url, url, result.status, error=f"arXiv API error: {parsed.api_error}")
        if result.status is not None and 400 <= result.status < 500 and result.status != 429:
            break
    return result, None


async def _backfill(
    engine: sa.Engine,
    settings: Settings,
    categories: Sequence[str],
    since: dt.date,
    progress: Callable[[BackfillReport], None] | None,
    max_pages: int | None,
) -> BackfillReport:
    report = BackfillReport()
    query = " OR ".join(f"cat:{c}" for c in categories)
    cursor_key = f"{query}|since={since.isoformat()}"
    since_dt = dt.datetime.combine(since, dt.time(0, 0), dt.UTC)
    make_session = session_factory(engine)
    async with Fetcher(settings) as fetcher:
        while max_pages is None or report.pages < max_pages:
            with make_session() as session:
                cursor = session.get(BackfillCursor, cursor_key)
                start = 0 if cursor is None else cursor.next_start
                if cursor is not None and cursor.done:
                    report.done, report.total = True, cursor.total
                    break
            url = arxiv.api_query_url(
                settings.arxiv_api_url,
                categories=categories,
                start=start,
                max_results=settings.arxiv_page_size,
            )
            result, parsed = await _api_page(fetcher, url)
            if parsed is None:
                report.error = result.error
                break
            entries = [e for e in parsed.entries if e.published >= since_dt]
            finished = (
                not parsed.entries
                or len(entries) < len(parsed.entries)
                or (parsed.total_results is not None and start + len(parsed.entries) >= parsed.total_results)
            )
            now = utcnow()
            with make_session() as session, session.begin():
                feed = _api_feed(session, settings)
                summary: IngestSummary = write_entries(session, feed.id, entries, now)
                cursor = session.get(BackfillCursor, cursor_key)
                if cursor is None:
                    cursor = BackfillCursor(
                        query=cursor_key, since=since, next_start=0, done=False, updated_at=now
                    )
                    session.add(cursor)
                cursor.next_start = start + len(parsed.entries)
                cursor.total = parsed.total_results
                cursor.done = finished
                cursor.updated_at = now
                feed.last_fetch_at = feed.last_success_at = now
                feed.last_status = result.status
            report.pages += 1
            report.seen += len(entries)
            report.new_items += summary.new
            report.new_item_ids.extend(summary.new_item_ids)
            report.total = parsed.total_results
            report.done = finished
            if progress is not None:
                progress(report)
            if finished:
                break
    return report


def backfill(
    engine: sa.Engine,
    settings: Settings,
    categories: Sequence[str],
    since: dt.date,
    *,
    progress: Callable[[BackfillReport], None] | None = None,
    max_pages: int | None = None,
    restart: bool = False,
) -> BackfillReport:
    """Page through the arXiv API (``search_query=cat:A OR cat:B``, newest submissions first)
    until papers are older than ``since``, ingesting each page in its own transaction with the
    cursor, so an interrupted backfill resumes at the next page. One request every
    ``settings.arxiv_delay`` s (arXiv API terms: 3 s). ``restart`` forgets a finished cursor."""
    if restart:
        query = " OR ".join(f"cat:{c}" for c in categories)
        with session_factory(engine)() as session, session.begin():
            session.execute(sa.delete(BackfillCursor).where(BackfillCursor.query == f"{query}|since={since}"))
    return asyncio.run(_backfill(engine, settings, categories, since, progress, max_pages))


def fetch_papers(engine: sa.Engine, settings: Settings, arxiv_ids: Sequence[str]) -> BackfillReport:
    """Fetch papers by arXiv id from the API (``id_list``), skipping those already stored;
    used for seed papers. Ids may carry a version or be abs/pdf links."""
    report = BackfillReport()
    wanted = [p[0] for s in arxiv_ids if (p := arxiv.split_arxiv_id(s))]
    with session_factory(engine)() as session:
        have = set(session.scalars(sa.select(Item.arxiv_id).where(Item.arxiv_id.in_(wanted))))
    missing = [i for i in dict.fromkeys(wanted) if i not in have]
    if not missing:
        report.done = True
        return report

    async def run() -> None:
        async with Fetcher(settings) as fetcher:
            for start in range(0, len(missing), 100):
                chunk = missing[start : start + 100]
                url = arxiv.api_query_url(settings.arxiv_api_url, id_list=chunk, max_results=len(chunk))
                result, parsed = await _api_page(fetcher, url)
                if parsed is None:
                    report.error = result.error
                    return
                with session_factory(engine)() as session, session.begin():
                    feed = _api_feed(session, settings)
                    summary = write_entries(session, feed.id, parsed.entries, utcnow())
                report.pages += 1
                report.seen += len(parsed.entries)
                report.new_items += summary.new
                report.new_item_ids.extend(summary.new_item_ids)
        report.done = report.error is None

    asyncio.run(run())
    return report
