"""Papers from the arXiv API (``export.arxiv.org/api/query``): a category backfill over a date
range, and the seed papers readers name. arXiv API terms: one request every 3 s, pages of
at most 2,000 results; transient failures are retried."""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import sqlalchemy as sa
from sqlalchemy.orm import Session

from aggregator.clock import utcnow
from aggregator.config import Settings
from aggregator.feeds import arxiv
from aggregator.feeds.fetch import Fetcher
from aggregator.feeds.ingest import write_entries
from aggregator.feeds.parse import parse_feed
from aggregator.store.db import insert, session_factory
from aggregator.store.tables import ArxivNotFound, BackfillCursor, Feed, Item
from aggregator.types import FetchResult, IngestSummary, ParsedEntry, ParsedFeed

#: the feed row that records papers fetched from the arXiv API
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
    than the day); no progress bar should count towards it. ``not_found``: arXiv ids the API
    has no entry for (:func:`fetch_papers`)."""

    pages: int = 0
    new_items: int = 0
    seen: int = 0
    total: int | None = None
    done: bool = False
    error: str | None = None
    new_item_ids: list[int] = field(default_factory=list)
    not_found: list[str] = field(default_factory=list)


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
    """Page through the arXiv API for ``categories`` back to ``since`` (newest first), storing
    each page before asking for the next, so a stopped backfill resumes where it stopped.

    Long because it is the paging loop with its resume point, retries and progress reporting,
    which read best together.
    """
    report = BackfillReport()
    query = " OR ".join(f"cat:{c}" for c in categories)
    cursor_key = f"{query}|since={since.isoformat()}"
    since_dt = dt.datetime.combine(since, dt.time(0, 0), dt.UTC)
    make_session = session_factory(engine)
    async with Fetcher(settings, engine=engine) as fetcher:
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
    ``settings.arxiv_delay_seconds`` s (arXiv API terms: 3 s). ``restart`` forgets a finished cursor."""
    if restart:
        query = " OR ".join(f"cat:{c}" for c in categories)
        with session_factory(engine)() as session, session.begin():
            session.execute(sa.delete(BackfillCursor).where(BackfillCursor.query == f"{query}|since={since}"))
    return asyncio.run(_backfill(engine, settings, categories, since, progress, max_pages))


#: How long an arXiv id the API returned no entry for is not asked again (a new paper is
#: announced within a day of its id being handed out).
NOT_FOUND_TTL = dt.timedelta(days=1)


def _known_missing(session: Session, ids: Sequence[str], now: dt.datetime) -> set[str]:
    """Those of ``ids`` the API answered without an entry less than :data:`NOT_FOUND_TTL` ago."""
    found: set[str] = set()
    for start in range(0, len(ids), 500):
        found.update(
            session.scalars(
                sa.select(ArxivNotFound.arxiv_id).where(
                    ArxivNotFound.arxiv_id.in_(ids[start : start + 500]),
                    ArxivNotFound.checked_at > now - NOT_FOUND_TTL,
                )
            )
        )
    return found


def _remember_answer(session: Session, asked: Sequence[str], entries: Sequence[ParsedEntry]) -> list[str]:
    """Record which of ``asked`` the API had no entry for (``arxiv_not_found``), forget those it
    had; returns the ids not found."""
    returned = {e.arxiv_id for e in entries if e.arxiv_id}
    absent = [i for i in asked if i not in returned]
    now = utcnow()
    if absent:
        stmt = insert(session.connection(), ArxivNotFound.__table__)
        session.execute(
            stmt.values([{"arxiv_id": i, "checked_at": now} for i in absent]).on_conflict_do_update(
                index_elements=["arxiv_id"], set_={"checked_at": now}
            )
        )
    if returned:
        session.execute(sa.delete(ArxivNotFound).where(ArxivNotFound.arxiv_id.in_(sorted(returned))))
    return absent


def fetch_papers(engine: sa.Engine, settings: Settings, arxiv_ids: Sequence[str]) -> BackfillReport:
    """Fetch papers by arXiv id from the API (``id_list``, 100 per request), skipping those
    already stored and those the API had no entry for in the last :data:`NOT_FOUND_TTL` (both
    listed in ``report.not_found``); used for seed papers and library imports. Ids may carry a
    version or be abs/pdf links. Requests are spaced by the instance-wide arXiv pacing
    (:mod:`aggregator.feeds.pacing`)."""
    report = BackfillReport()
    wanted = [p[0] for s in arxiv_ids if (p := arxiv.split_arxiv_id(s))]
    with session_factory(engine)() as session:
        have = set(session.scalars(sa.select(Item.arxiv_id).where(Item.arxiv_id.in_(wanted))))
        unstored = [i for i in dict.fromkeys(wanted) if i not in have]
        known_missing = _known_missing(session, unstored, utcnow())
    report.not_found = [i for i in unstored if i in known_missing]
    missing = [i for i in unstored if i not in known_missing]
    if not missing:
        report.done = True
        return report

    async def run() -> None:
        async with Fetcher(settings, engine=engine) as fetcher:
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
                    report.not_found += _remember_answer(session, chunk, parsed.entries)
                report.pages += 1
                report.seen += len(parsed.entries)
                report.new_items += summary.new
                report.new_item_ids.extend(summary.new_item_ids)
        report.done = report.error is None

    asyncio.run(run())
    return report
