"""After an ingest: enrich newly announced papers from the arXiv API, and mark re-announced
items seen.

arXiv's RSS listings carry neither the authors' comment nor the journal reference; the API
does (``arxiv:comment``, ``arxiv:journal_ref``, arXiv API User's Manual,
https://info.arxiv.org/help/api/user-manual.html). :func:`enrich_papers` asks the API for the
papers stored without them (``items.enriched_at IS NULL``) by ``id_list``, at most
:data:`BATCH` ids per request, through :class:`aggregator.feeds.fetch.Fetcher`, which spaces
requests to an arXiv host ``settings.arxiv_delay_seconds`` s apart (arXiv API Terms of Use: one request
every 3 s, https://info.arxiv.org/help/api/tou.html). Each batch is written in its own
transaction and sets ``enriched_at``, so a pass stopped by an error or a crash resumes with the
papers still pending. The comment and journal reference give the venue, code and project
links (:func:`aggregator.feeds.venues.extract`); the cards of changed items are marked stale.

Which papers: those first seen at most :data:`MAX_AGE` ago (older ones were announced days
ago; a worker that was down for a week does not spend an hour on them), oldest first, at most
``max_batches`` requests per pass. Papers ingested from an API answer are stored with
``enriched_at`` set (:mod:`aggregator.feeds.ingest`); a replacement announced by RSS clears it,
since a new version's comment often says "accepted at …".

:func:`after_ingest` is what the worker (:func:`aggregator.worker.scheduler.refresh_job`) and
``aggregator fetch`` run after a fetch pass.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from aggregator import metrics
from aggregator.accounts.library import mark_reannounced_seen
from aggregator.config import Settings
from aggregator.feeds import arxiv
from aggregator.feeds.fetch import Fetcher
from aggregator.feeds.parse import parse_feed
from aggregator.feeds.venues import extract
from aggregator.store import queries
from aggregator.store.db import session_factory
from aggregator.store.locks import lease
from aggregator.store.tables import Item
from aggregator.types import FetchResult, ParsedEntry, ParsedFeed

log = logging.getLogger(__name__)

#: ids per API request (issue 13: "in batches of up to 100 ids"; the API pages at most 2000)
BATCH = 100
#: papers first seen longer ago than this are not enriched any more
MAX_AGE = dt.timedelta(days=7)
#: requests per pass by default: 20 × 100 papers, about a minute at arXiv's 3 s
MAX_BATCHES = 20
#: tries per request (the API answers a transient 5xx or an empty page now and then)
ATTEMPTS = 3


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(slots=True)
class EnrichReport:
    """One pass: API ``requests`` made, papers ``enriched`` (asked and answered), those the
    API did not return (``missing``: withdrawn or unknown ids, marked done all the same),
    items whose venue or links changed (``changed``), papers still ``pending`` after the pass,
    and the ``error`` that stopped it (None when none did)."""

    requests: int = 0
    enriched: int = 0
    missing: int = 0
    changed: int = 0
    pending: int = 0
    error: str | None = None


def pending(
    engine: sa.Engine, limit: int | None = None, now: dt.datetime | None = None
) -> list[tuple[int, str]]:
    """``(item id, arXiv id)`` of the papers awaiting enrichment, oldest first (at most
    ``limit``)."""
    query = (
        sa.select(Item.id, Item.arxiv_id)
        .where(
            Item.kind == "paper",
            Item.arxiv_id.is_not(None),
            Item.enriched_at.is_(None),
            Item.first_seen_at >= (now or utcnow()) - MAX_AGE,
        )
        .order_by(Item.first_seen_at, Item.id)
    )
    if limit is not None:
        query = query.limit(limit)
    with engine.connect() as conn:
        return [(item_id, str(arxiv_id)) for item_id, arxiv_id in conn.execute(query)]


async def _ask(fetcher: Fetcher, url: str) -> tuple[FetchResult, ParsedFeed | None]:
    """One ``id_list`` request, tried up to :data:`ATTEMPTS` times (a 4xx other than 429 is
    not retried). Returns the last result and the parsed answer (None on failure)."""
    result = FetchResult(url, url, None, error="not fetched")
    for _ in range(ATTEMPTS):
        result = await fetcher.fetch(url, arxiv=True)
        if result.ok and result.body is not None:
            parsed = parse_feed(
                result.body, fetched_at=utcnow(), url=url, kind="arxiv", content_type=result.content_type
            )
            if parsed.api_error is None and not (parsed.problems and not parsed.entries):
                return result, parsed
            problem = parsed.api_error or "; ".join(parsed.problems)
            result = FetchResult(url, url, result.status, error=f"arXiv API: {problem}")
        if result.status is not None and 400 <= result.status < 500 and result.status != 429:
            break
    return result, None


def _write(
    engine: sa.Engine, batch: Sequence[tuple[int, str]], answer: Sequence[ParsedEntry]
) -> tuple[int, int]:
    """Store one batch's comments and journal references; returns (answered, changed).

    Every paper of the batch gets ``enriched_at``, answered or not: asking again would not
    make arXiv return a withdrawn or unknown id."""
    by_id = {e.arxiv_id: e for e in answer if e.arxiv_id}
    now = utcnow()
    answered = changed = 0
    with session_factory(engine)() as session, session.begin():
        rows = session.execute(
            sa.select(Item.id, Item.arxiv_id, Item.summary, Item.venue_label, Item.links).where(
                Item.id.in_([i for i, _ in batch])
            )
        ).all()
        stale: list[int] = []
        for row in rows:
            entry = by_id.get(row.arxiv_id)
            values: dict[str, object] = {"enriched_at": now}
            if entry is not None:
                answered += 1
                cols = extract(entry.comment, entry.journal_ref, row.summary).columns()
                values.update(comment=entry.comment, journal_ref=entry.journal_ref, **cols)
                if (cols["venue_label"], cols["links"]) != (row.venue_label, row.links or None):
                    changed += 1
                stale.append(row.id)
            session.execute(sa.update(Item).where(Item.id == row.id).values(**values))
        queries.invalidate(session, stale)
    return answered, changed


async def _enrich(
    engine: sa.Engine, settings: Settings, max_batches: int, report: EnrichReport, check: Callable[[], None]
) -> None:
    async with Fetcher(settings, engine=engine) as fetcher:
        for _ in range(max_batches):
            check()  # the "enrich" lease still ours: else LeaseLost, the new holder goes on
            batch = await asyncio.to_thread(pending, engine, BATCH)
            if not batch:
                return
            ids = [a for _, a in batch]
            url = arxiv.api_query_url(settings.arxiv_api_url, id_list=ids, max_results=len(ids))
            result, parsed = await _ask(fetcher, url)
            report.requests += 1
            if parsed is None:
                report.error = result.error or "no answer"
                log.warning("enrichment stopped: %s (%d papers pending)", report.error, len(batch))
                return
            answered, changed = await asyncio.to_thread(_write, engine, batch, parsed.entries)
            report.enriched += answered
            report.missing += len(batch) - answered
            report.changed += changed
            metrics.PAPERS_ENRICHED.labels(result="answered").inc(answered)
            metrics.PAPERS_ENRICHED.labels(result="missing").inc(len(batch) - answered)


def enrich_papers(engine: sa.Engine, settings: Settings, *, max_batches: int = MAX_BATCHES) -> EnrichReport:
    """Ask the arXiv API for the comment and journal reference of pending papers (see the
    module docstring), at most ``max_batches`` requests of :data:`BATCH` ids. Never raises for
    a network or API failure: the pass stops, ``report.error`` says why, and the papers stay
    pending for the next pass. Under the "enrich" lease, so two workers never ask twice."""
    report = EnrichReport()
    with lease(engine, "enrich", settings.job_lease_seconds) as held:
        if held:
            asyncio.run(_enrich(engine, settings, max_batches, report, held.check))
    report.pending = len(pending(engine))
    metrics.ENRICH_PENDING.set(report.pending)
    return report


@dataclass(slots=True)
class AfterIngest:
    """What :func:`after_ingest` did: read marks written and the enrichment report."""

    seen_marks: int
    enrich: EnrichReport

    def line(self) -> str:
        """One line for ``aggregator fetch``."""
        e = self.enrich
        text = (
            f"arXiv API: {e.enriched} papers enriched in {e.requests} requests "
            f"({e.changed} with a new venue or links, {e.missing} not returned), {e.pending} pending"
            f" · {self.seen_marks} re-announced items marked seen"
        )
        return text + (f" · stopped: {e.error}" if e.error else "")


def after_ingest(engine: sa.Engine, settings: Settings, since: dt.datetime) -> AfterIngest:
    """Run after a fetch pass that started at ``since`` (UTC): mark items announced again
    since then as seen for the readers shown them before
    (:func:`aggregator.accounts.library.mark_reannounced_seen`), then enrich the newly
    announced papers (:func:`enrich_papers`). Failures are logged, never raised: neither
    step may stop the worker's pass."""
    marks = 0
    try:
        with session_factory(engine)() as session, session.begin():
            marks = mark_reannounced_seen(session, since)
    except Exception:  # the next pass does not retry these; a read mark is a convenience
        log.exception("marking re-announced items seen failed")
    try:
        report = enrich_papers(engine, settings)
    except Exception as err:  # the papers stay pending; the next pass resumes
        log.exception("enrichment failed")
        report = EnrichReport(error=f"unexpected error: {err!r}")
    done = AfterIngest(marks, report)
    if marks or report.requests:
        log.info("after ingest: %s", done.line())
    return done
