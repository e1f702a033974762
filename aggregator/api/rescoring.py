"""Bringing a reader's precomputed scores up to date after they change what their ranking
depends on: a vote, a subscription, their interest profile.

Rescoring needs the TF-IDF model and the window's item matrix: scikit-learn and, on a large
database, hundreds of MB and tens of seconds to build in a process that has not built them
(on 1 million items, about 38 s and 650 MB: docs/performance.md). So only processes that
score anyway do it in the request (``settings.score_in_api``: ``aggregator run``, tests);
``aggregator api`` queues the reader in ``rescore_requests``
(:func:`aggregator.accounts.rescore_queue.request_rescore`) and a worker, which holds the model
and the window, rescores within ``settings.rescore_poll_seconds`` seconds
(:func:`aggregator.worker.tasks.rescore_requested`). A request that shows the result next (a
vote, a subscription) waits up to ``settings.rescore_wait_seconds`` seconds for that, so the
page it redirects to already shows the change.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from aggregator.accounts import rescore_queue
from aggregator.ranking.personal import rescore

log = logging.getLogger(__name__)


def after_change(
    state: Any, session: Session, reader_id: int, around: dt.datetime | None = None, wait: bool = True
) -> int | None:
    """Rescore the reader after a committed change: here (returns the rows written, or None
    when there is no model yet), or through the workers (returns None; with ``wait``, once the
    worker is done or ``rescore_wait`` seconds have passed). ``around``: a vote on an item
    published then. Never raises for a failed rescore (the change is committed already)."""
    settings = state.settings
    if settings.score_in_api:
        return rescore.rescore(session, reader_id, around=around)
    rescore_queue.request_rescore(session, reader_id, around=around)
    session.commit()
    if wait:
        wait_for_workers(session, reader_id, settings.rescore_wait_seconds)
    return None


def ensure_scores(state: Any) -> Callable[[Session, int, dt.datetime], bool]:
    """The ``ensure_scores`` hook of :func:`aggregator.digest.personal.reader_digest` for this
    API: rescore the reader here (``score_in_api``) or queue them and wait up to
    ``rescore_wait`` seconds for a worker. Returns True when the scores were made."""

    def ensure(session: Session, reader_id: int, around: dt.datetime) -> bool:
        if state.settings.score_in_api:
            return rescore.rescore(session, reader_id, around=around) is not None
        rescore_queue.request_rescore(session, reader_id, around=around)
        session.commit()
        return wait_for_workers(session, reader_id, state.settings.rescore_wait_seconds)

    return ensure


def pending(state: Any, session: Session, reader_id: int) -> bool:
    """Whether the reader's rescore is still queued for the workers (always False for a
    process that scores itself). A request that changed the ranking answers 202 then, and
    the pages poll ``GET /api/me/rescore``."""
    if state.settings.score_in_api:
        return False
    return rescore_queue.rescore_pending(session, reader_id)


def wait_until(session: Session, ready: Callable[[], bool], seconds: float, poll: float = 0.05) -> bool:
    """Call ``ready()`` until it returns True, at most ``seconds`` (looking every ``poll`` s);
    the session's transaction ends between looks, so each sees what workers committed. True
    when ready."""
    deadline = time.monotonic() + seconds
    while True:
        if ready():
            return True
        session.rollback()
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll)


def wait_for_workers(session: Session, reader_id: int, seconds: float) -> bool:
    """Wait until no rescore of the reader is queued, at most ``seconds``; True when done."""
    return wait_until(session, lambda: not rescore_queue.rescore_pending(session, reader_id), seconds)


def profile_saved(state: Any, session: Session, reader_id: int, seeds: list[str]) -> bool:
    """After a committed profile change, before the answer (issue 17: the next digest read
    must reflect it): rescore here, or queue the reader (with ``seeds``: the worker fetches
    them first) and wait up to ``rescore_wait`` s. Returns True when the rescore is done; then
    seed papers still missing are fetched by :func:`after_profile_change` in the background."""
    if state.settings.score_in_api:
        rescore.rescore(session, reader_id)
        return True
    rescore_queue.request_rescore(session, reader_id, seeds=bool(seeds))
    session.commit()
    return wait_for_workers(session, reader_id, state.settings.rescore_wait_seconds)


def after_profile_change(state: Any, reader_id: int, seeds: list[str]) -> None:
    """After a profile change with seed papers not stored yet (a background task, in a
    process that scores): fetch them from the arXiv API (``settings.arxiv_api_url``, id_list;
    the fetcher's timeouts and 3 s arXiv delay apply), then rescore. A process that does not
    score queued them for the workers already (:func:`profile_saved`). Errors are logged,
    never raised."""
    try:
        if not state.settings.score_in_api or not seeds:
            return
        from aggregator.worker import backfill

        report = backfill.fetch_papers(state.engine, state.settings, seeds)
        if report.error:
            log.warning("fetching seed papers %s failed: %s", seeds, report.error)
        with state.sessionmaker() as session:
            rescore.rescore(session, reader_id)
    except Exception:
        log.exception("refreshing reader %s after a profile change failed", reader_id)
