"""APScheduler wiring for ``aggregator run``: one periodic "refresh due feeds" job.

Which feeds are due is decided by ``feeds.next_check_at`` in the database, not by the
scheduler, so a restart neither refetches everything nor forgets failures (after miniflux).
The job runs in a background thread with its own event loop, so the API stays responsive.
"""

from __future__ import annotations

import datetime as dt
import logging
import time

import sqlalchemy as sa
from apscheduler.events import EVENT_JOB_SUBMITTED, JobSubmissionEvent
from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.schedulers.base import BaseScheduler
from apscheduler.schedulers.blocking import BlockingScheduler

from aggregator import metrics
from aggregator.config import ConfigError, Interests, Settings, load_feeds_file
from aggregator.store.locks import LeaseLost, lease
from aggregator.worker import enrich, refresh
from aggregator.worker import tasks as jobs

log = logging.getLogger(__name__)


def refresh_job(engine: sa.Engine, settings: Settings) -> refresh.RefreshReport | None:
    """One pass: reload the feeds file, fetch due feeds, then refit and rescore if anything is
    new, enrich the new papers from the arXiv API (:func:`aggregator.worker.enrich.after_ingest`)
    and build the stale cards."""
    try:
        feeds_file = load_feeds_file(settings.feeds_file)
    except ConfigError as err:
        log.error("feeds file not reloaded: %s", err)
        feeds_file = None
    started = dt.datetime.now(dt.UTC)
    report = refresh.refresh_feeds(engine, settings, feeds_file)
    if report.outcomes or report.held:
        log.info(
            "refresh: %d feeds (%d new, %d unchanged, %d failed, %d skipped: held by another process),"
            " %d new items",
            len(report.outcomes),
            report.count("new"),
            report.count("unchanged"),
            report.count("failed"),
            len(report.held) + report.count("skipped"),
            report.new_items,
        )
    interests = feeds_file.interests if feeds_file else None
    ranking_job(engine, settings, interests)
    if report.new_item_ids:
        with lease(engine, "trends", settings.job_lease_seconds) as held:
            try:
                if held:
                    jobs.update_trends(engine, settings, report.new_item_ids)
            except Exception:  # trends must never stop the feed refresh
                log.exception("trend update failed")
    enrich.after_ingest(engine, settings, started)  # comments, venues, code links; read marks
    try:  # after ingest, links and scores: what the served digest reads
        jobs.fill_cards(engine)
    except Exception:  # a stale card is built when read; the next pass retries
        log.exception("filling item cards failed")
    return report


def refit_now(
    engine: sa.Engine, settings: Settings, interests: Interests, new_item_ids: list[int] | None
) -> int | None:
    """Refit and rescore at once (``aggregator fetch`` and ``backfill``), under the same
    renewed "rank" lease as :func:`ranking_job`. Returns the number of items scored, or None
    when another process holds the lease (a worker refits once the model is stale)."""
    with lease(engine, "rank", settings.job_lease_seconds) as held:
        if not held:
            return None
        return jobs.update_ranking(engine, settings, interests, new_item_ids, refit=True, check=held.check)


def ranking_job(engine: sa.Engine, settings: Settings, interests: Interests | None) -> int:
    """Refit and rescore when the model is stale, under the "rank" lease, so several workers
    never refit at once; whichever worker next holds the lease does it.

    The model is stale when there is none or an item arrived after it was fitted
    (:func:`aggregator.worker.tasks.ranking_is_stale`). Otherwise items that have no score yet (e.g.
    committed by another worker while a refit was reading) are scored with the current
    model, so nothing stays unranked. Returns the number of items scored.

    The lease lasts ``settings.job_lease_seconds`` and is renewed while the refit runs; a
    refit that finds it taken over (:class:`~aggregator.store.locks.LeaseLost`) rolls back
    and returns 0, the new holder refits."""
    if interests is None:
        try:
            interests = load_feeds_file(settings.feeds_file).interests
        except ConfigError:
            return 0
    with lease(engine, "rank", settings.job_lease_seconds) as held:
        if not held:
            return 0
        if jobs.ranking_is_stale(engine):
            started = time.time()
            log.info("refit started", extra={"job": "rank", "started": started})
            try:
                scored = jobs.update_ranking(engine, settings, interests, refit=True, check=held.check)
            except LeaseLost as err:
                log.error("refit abandoned: %s", err)
                return 0
            log.info(
                "refit finished: %d items scored",
                scored,
                extra={"job": "rank", "started": started, "finished": time.time()},
            )
            return scored
        return jobs.score_unscored(engine, settings, interests)


def requests_job(engine: sa.Engine, settings: Settings) -> None:
    """Do what API processes that do not score asked for: rescore the readers queued after a
    vote, a subscription or a profile change (:func:`aggregator.worker.tasks.rescore_requested`), and
    compute "more like this" neighbours (:func:`aggregator.worker.tasks.similar_requested`). Two cheap
    queries when nothing is asked."""
    try:
        n = jobs.rescore_requested(engine, settings)
        m = jobs.similar_requested(engine)
    except Exception:  # the next pass retries
        log.exception("requests from the API failed")
        return
    if n or m:
        log.info("on request: %d readers rescored, %d items' neighbours computed", n, m)


def email_job(engine: sa.Engine, settings: Settings) -> None:
    """Send the weekly emails that are due (:func:`aggregator.mail.send.send_due`). Rows are
    claimed one by one in the database, so several workers may run this at once."""
    from aggregator.mail import send

    try:
        report = send.send_due(engine, settings)
    except Exception:  # the next pass retries; nothing is lost (see aggregator.mail.send)
        log.exception("weekly email pass failed")
        return
    if report.planned or report.sent or report.errors:
        log.info(
            "weekly email: %d planned, %d sent, %d to retry, %d bounced",
            report.planned,
            report.sent,
            report.retrying,
            report.bounced,
        )


def _observe_lag(event: JobSubmissionEvent) -> None:
    due = max(event.scheduled_run_times)
    lag = (dt.datetime.now(dt.UTC) - due).total_seconds()
    metrics.SCHEDULER_LAG.labels(job=event.job_id).set(max(0.0, lag))


def start_scheduler(engine: sa.Engine, settings: Settings, blocking: bool = False) -> BaseScheduler:
    """Start the scheduler: "refresh due feeds" at once and then every ``scheduler_tick`` s;
    what API processes asked for every ``rescore_poll`` s; the weekly email every
    ``email_interval_minutes``.

    ``blocking`` runs it in the calling thread (``aggregator worker``) and returns only when it
    is shut down; otherwise it runs in a background thread (``aggregator run``)."""
    scheduler: BaseScheduler = (
        BlockingScheduler(timezone=dt.UTC) if blocking else BackgroundScheduler(timezone=dt.UTC)
    )
    scheduler.add_listener(_observe_lag, EVENT_JOB_SUBMITTED)
    jobs_every = (  # (job, id, seconds between runs, first run)
        (refresh_job, "refresh-due-feeds", settings.scheduler_tick_seconds, dt.datetime.now(dt.UTC)),
        (requests_job, "requests-from-the-api", settings.rescore_poll_seconds, None),
        (email_job, "send-weekly-email", settings.email_interval_minutes * 60, None),
    )
    for job, job_id, seconds, first in jobs_every:
        extra = {} if first is None else {"next_run_time": first}
        scheduler.add_job(
            job,
            "interval",
            args=(engine, settings),
            seconds=seconds,
            id=job_id,
            coalesce=True,
            max_instances=1,
            misfire_grace_time=None,
            **extra,
        )
    scheduler.start()
    return scheduler
