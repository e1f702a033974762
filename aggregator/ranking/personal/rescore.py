"""Rescoring one reader now: the synchronous path behind a profile save, a vote or a
subscription (the queued path is :mod:`aggregator.accounts.rescore_queue`)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

from sqlalchemy.orm import Session

from aggregator.accounts.profiles import load_profile

log = logging.getLogger(__name__)


def rescore(
    session: Session,
    reader_id: int,
    item_ids: Sequence[int] | None = None,
    around: dt.datetime | None = None,
) -> int | None:
    """Recompute the reader's precomputed scores with ``aggregator.ranking.personal.precompute`` for
    ``item_ids`` (default: the personal ranking's recent window, ending at the newest item, or
    at the newest item up to a day after ``around`` when given: after a vote on an older
    item, the days around it are the ones being read) and commit. Returns the number of items
    scored, or None when there is no fitted model yet (the
    digest then falls back to the default profile's order). Never raises: a failure is logged
    and the session rolled back, since a rescore must not lose the change that triggered it
    (commit that first)."""
    # imported here: scikit-learn and the item matrix stay out of processes that only serve
    # requests (``aggregator api`` imports this module but queues rescores for the workers)
    from aggregator.ranking.personal.precompute import precompute
    from aggregator.ranking.tfidf import load_model

    try:
        model = load_model(session)
        if model is None:
            return None
        profile = load_profile(session, reader_id)
        ids = list(item_ids) if item_ids is not None else None
        now = None if around is None else around + dt.timedelta(days=1)
        n = int(precompute(session, model, profile, item_ids=ids, now=now))
        session.commit()
        return n
    except Exception:
        log.exception("rescoring reader %s failed", reader_id)
        session.rollback()
        return None
