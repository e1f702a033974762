"""APScheduler wiring for ``aggregator run``: one periodic "refresh due feeds" job.

Which feeds are due is decided by ``feeds.next_check_at`` in the database, not by the
scheduler, so a restart neither refetches everything nor forgets failures (after miniflux).
The job runs in a background thread with its own event loop, so the API stays responsive.
"""

from __future__ import annotations

import datetime as dt
import logging

import sqlalchemy as sa
from apscheduler.schedulers.background import BackgroundScheduler

from . import jobs
from .settings import ConfigError, Settings, load_feeds_file

log = logging.getLogger(__name__)


def refresh_job(engine: sa.Engine, settings: Settings) -> jobs.RefreshReport | None:
    """One pass: reload the feeds file, fetch due feeds, then refit and rescore if anything is new."""
    try:
        feeds_file = load_feeds_file(settings.feeds_file)
    except ConfigError as err:
        log.error("feeds file not reloaded: %s", err)
        feeds_file = None
    report = jobs.refresh_feeds(engine, settings, feeds_file)
    if report.outcomes:
        log.info(
            "refresh: %d feeds (%d new, %d unchanged, %d failed), %d new items",
            len(report.outcomes),
            report.count("new"),
            report.count("unchanged"),
            report.count("failed"),
            report.new_items,
        )
    if report.new_items or report.updated_items:
        interests = feeds_file.interests if feeds_file else load_feeds_file(settings.feeds_file).interests
        jobs.update_ranking(engine, settings, interests, report.new_item_ids, refit=True)
    return report


def start_scheduler(engine: sa.Engine, settings: Settings) -> BackgroundScheduler:
    """Start the background scheduler; the first pass runs at once, then every ``scheduler_tick`` s."""
    scheduler = BackgroundScheduler(timezone=dt.UTC)
    scheduler.add_job(
        refresh_job,
        "interval",
        args=(engine, settings),
        seconds=settings.scheduler_tick,
        id="refresh-due-feeds",
        next_run_time=dt.datetime.now(dt.UTC),
        coalesce=True,
        max_instances=1,
        misfire_grace_time=None,
    )
    scheduler.start()
    return scheduler
