"""The jobs after a fetch, shared by the scheduler and the CLI: refit the ranking, score, rescore,
fill cards and count trends (fetching is :mod:`aggregator.worker.refresh`; the arXiv API
backfill :mod:`aggregator.worker.backfill`).

Each job takes an engine and settings, talks to the network only through
:class:`aggregator.feeds.fetch.Fetcher`, and writes only through :mod:`aggregator.feeds.ingest` and
:mod:`aggregator.ranking.tfidf`. A failing feed is recorded on its row and never stops the others.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import sqlalchemy as sa

from aggregator.clock import utcnow
from aggregator.config import Interests, Settings
from aggregator.store.db import session_factory
from aggregator.store.tables import Item, Score
from aggregator.worker.backfill import fetch_papers

log = logging.getLogger(__name__)


def update_ranking(
    engine: sa.Engine,
    settings: Settings,
    interests: Interests,
    new_item_ids: Sequence[int] | None = None,
    refit: bool = True,
    check: Callable[[], None] | None = None,
) -> int:
    """Refit the TF-IDF model (when ``refit`` or none exists) and precompute scores.

    After a refit every item is rescored (scores from different models are not comparable);
    otherwise only ``new_item_ids``. Then every reader's scores are precomputed
    (:func:`aggregator.ranking.personal.precompute_all`). Returns the number of items scored for the
    default profile. ``check`` is called between the steps and before the commit (e.g. a job
    lease's :meth:`~aggregator.store.locks.Lease.check`): what it raises rolls everything back.
    """
    check = check or (lambda: None)
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
        check()
        scored = rank.rescore(session, model, interests, new_item_ids, why_terms=settings.why_terms)
        from aggregator.ranking import (
            personal,  # per-reader scores: every reader's top items of the recent window
        )

        profiles = personal.load_profiles(session)
        if profiles:
            check()
            rows = personal.precompute_all(
                session, model, profiles, new_item_ids, now=now, why_terms=settings.why_terms
            )
            log.info("ranking: %d rows for %d readers", rows, len(profiles))
        check()
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
    """What :func:`update_trends` did: items counted, paper-post links found, results stored
    (``scopes``; ``months``: monthly reports recomputed, :func:`aggregator.trends.store_months`)."""

    counted: int = 0
    links: int = 0
    scopes: int = 0
    months: int = 0
    end: dt.date | None = None


def update_trends(engine: sa.Engine, settings: Settings, new_item_ids: Sequence[int]) -> TrendsUpdate:
    """After an ingest: link new posts and papers (:mod:`aggregator.feeds.paper_links`), add the new dated
    items to the term counts (:func:`aggregator.trends.update_counts`, idempotent per item) and store
    fresh default trend results for every scope (:func:`aggregator.trends.refresh_results`)
    and the monthly reports whose inputs changed (:func:`aggregator.trends.store_months`).
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
            out.months = trends.store_months(session)  # the page and the email read them
    return out
