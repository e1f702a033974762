"""The trend counts after ``aggregator import-snapshot``: every imported paper counted once, and
the trend results refreshed once at the end.

:func:`aggregator.worker.tasks.update_trends` (after each fetch) links, counts and then
refreshes every scope's stored results: right for a fetch of a few hundred items, but repeated
for each 20,000-paper chunk of an import it recomputed the results fifty times per million
papers. Here each chunk is linked and counted in its own transaction (so a stopped run keeps
what it counted: ``trend_counted`` makes the counts idempotent per item, and the next run goes
on with the papers not counted yet) and :func:`aggregator.trends.refresh_results` (with the
monthly reports, :func:`aggregator.trends.store_months`) runs once.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable
from dataclasses import dataclass

import sqlalchemy as sa

from aggregator.store.db import session_factory


@dataclass(slots=True)
class SnapshotTrends:
    """What :func:`count_snapshot_trends` did: papers ``counted``, paper-post ``links`` found,
    result ``scopes`` stored (window ending ``end``); seconds of wall time spent counting
    (``count_s``, linking included) and refreshing the results (``refresh_s``)."""

    counted: int = 0
    links: int = 0
    scopes: int = 0
    end: dt.date | None = None
    count_s: float = 0.0
    refresh_s: float = 0.0


def count_snapshot_trends(
    engine: sa.Engine,
    chunk: int = 20_000,
    progress: Callable[[SnapshotTrends], None] | None = None,
    budget_s: float | None = None,
) -> SnapshotTrends:
    """Count the snapshot's papers not counted yet (oldest first, ``chunk`` per transaction),
    then refresh the stored trend results once. ``progress`` is called after each chunk;
    ``budget_s`` stops counting after that many seconds (the results are refreshed all the
    same, from what was counted; run again to count the rest)."""
    from aggregator import trends
    from aggregator.feeds import paper_links
    from aggregator.feeds.snapshot import uncounted_ids

    out = SnapshotTrends()
    started = time.perf_counter()
    for ids in uncounted_ids(engine, chunk):
        with session_factory(engine)() as session, session.begin():
            out.links += paper_links.link_items(session, ids)
            # undated items are not counted (see tasks.update_trends); uncounted_ids gives dated ones
            out.counted += trends.update_counts(session, ids)
        out.count_s = time.perf_counter() - started
        if progress is not None:
            progress(out)
        if budget_s is not None and out.count_s > budget_s:
            break
    t0 = time.perf_counter()
    if out.counted or out.links:
        with session_factory(engine)() as session, session.begin():
            reports = trends.refresh_results(session)
            out.scopes = len(reports)
            out.end = reports[0].end if reports else None
            trends.store_months(session)
    out.refresh_s = time.perf_counter() - t0
    return out
