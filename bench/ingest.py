"""Benchmark: ingest throughput from HTTP to database, in items/s.

Starts feedreplay on loopback and ingests real arXiv RSS documents through the whole pipeline
(httpx fetch → feedparser parse → decide → SQLAlchemy Core upsert, one transaction per feed):

* first fetch: an empty database, every item new;
* re-fetch with a conditional GET: the server answers 304;
* re-fetch of the same bytes without cache headers: every item parsed and found unchanged.

Also prints feedparser's raw parse rate on the same bytes, the ceiling for end-to-end ingest.
Wall time and this process's CPU time (the machine is shared: compare the CPU figures).
Run:  python bench/ingest.py [--database-url URL] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import feedparser  # noqa: E402
import sqlalchemy as sa  # noqa: E402
from conftest import start_feedreplay  # noqa: E402

from aggregator.config import FeedConfig, Settings  # noqa: E402
from aggregator.feeds.fetch import Fetcher  # noqa: E402
from aggregator.feeds.ingest import apply_fetch, sync_feeds  # noqa: E402
from aggregator.feeds.parse import parse_feed  # noqa: E402
from aggregator.store.db import make_engine, session_factory, upgrade  # noqa: E402
from aggregator.store.tables import Feed, Item  # noqa: E402

DOCS = {
    "arXiv FULL multi-archive RSS (1504 items)": (
        "/static/arxiv-rss/all-archives-2024-11-28-rss2-FULL-aioarxiv.xml"
    ),
    "replayed cs.LG+cs.CV+cs.CL, 2026-06-16": "/rss/cs.LG+cs.CV+cs.CL",
}


def ingest_once(
    engine: sa.Engine, settings: Settings, url: str, etag: str | None
) -> tuple[float, int, int, str | None, float]:
    """``(wall s, items parsed, items new, ETag, CPU s of this process)`` of one fetch + ingest
    (the replay server runs in another process: its CPU time is not counted)."""

    async def get():  # type: ignore[no-untyped-def]
        async with Fetcher(settings) as f:
            return await f.fetch(url, etag=etag, arxiv=False)

    t0, c0 = time.perf_counter(), time.process_time()
    result = asyncio.run(get())
    now = dt.datetime.now(dt.UTC)
    with session_factory(engine)() as s, s.begin():
        feed = s.scalars(sa.select(Feed).where(Feed.url == url)).one()
        parsed = parse_feed(result.body, fetched_at=now, url=url, kind="arxiv") if result.body else None
        summary = apply_fetch(s, feed, result, parsed, now, 86400)
    elapsed, cpu = time.perf_counter() - t0, time.process_time() - c0
    n = len(parsed.entries) if parsed else 0
    return elapsed, n, summary.new, result.etag, cpu


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--database-url", default=None, help="default: a fresh SQLite file per round")
    ap.add_argument("--rounds", type=int, default=3)
    args = ap.parse_args()
    replay = start_feedreplay("2026-06-16")
    try:
        settings = Settings(arxiv_delay_seconds=0, total_timeout_seconds=60)
        for label, path in DOCS.items():
            body = replay.get(path)
            t0 = time.process_time()
            raw = feedparser.parse(body)
            raw_rate = len(raw.entries) / (time.process_time() - t0)
            firsts, refetch_304, refetch_same = [], [], []
            cpu_first, cpu_same, cpu_304 = [], [], []
            for _ in range(args.rounds):
                with tempfile.TemporaryDirectory() as tmp:
                    url = args.database_url or f"sqlite:///{tmp}/bench.db"
                    engine = make_engine(url)
                    if args.database_url:
                        with engine.begin() as c:
                            c.execute(sa.text("DROP SCHEMA IF EXISTS public CASCADE; CREATE SCHEMA public"))
                    upgrade(engine)
                    feed_url = replay.url(path)
                    nc_url = replay.url("/_fault/no-cache-headers" + path)
                    with session_factory(engine)() as s, s.begin():
                        sync_feeds(
                            s,
                            [FeedConfig("bench", feed_url, "arxiv"), FeedConfig("bench-nc", nc_url, "arxiv")],
                            dt.datetime.now(dt.UTC),
                        )
                    el, n, new, etag, cpu = ingest_once(engine, settings, feed_url, None)
                    assert new == n > 0, (new, n)
                    firsts.append((n / el, el, n))
                    cpu_first.append(n / cpu)
                    el, n304, new, _, cpu = ingest_once(engine, settings, feed_url, etag)
                    assert n304 == 0 and new == 0
                    refetch_304.append(el)
                    cpu_304.append(cpu)
                    el, n, new, _, cpu = ingest_once(engine, settings, nc_url, None)
                    assert new == 0 and n > 0
                    refetch_same.append((n / el, el))
                    cpu_same.append(n / cpu)
                    with engine.connect() as c:
                        assert (
                            c.execute(sa.select(sa.func.count()).select_from(Item)).scalar_one()
                            == firsts[-1][2]
                        )
                    engine.dispose()
            dbname = "PostgreSQL" if args.database_url else "SQLite"
            print(f"\n{label} on {dbname} (median of {args.rounds})")
            print(f"  feedparser alone:                {raw_rate:8.0f} items per CPU-second")
            first_rate = statistics.median(r for r, _, _ in firsts)
            first_ms = statistics.median(e for _, e, _ in firsts) * 1000
            same_rate = statistics.median(r for r, _ in refetch_same)
            print(
                f"  first fetch (all new):           {first_rate:8.0f} items/s wall, "
                f"{statistics.median(cpu_first):8.0f} per CPU-second"
                f"  ({first_ms:.0f} ms, {firsts[0][2]} items)"
            )
            print(
                f"  re-fetch, same bytes, no 304:    {same_rate:8.0f} items/s wall, "
                f"{statistics.median(cpu_same):8.0f} per CPU-second"
            )
            print(
                "  re-fetch, conditional GET (304): "
                f"{statistics.median(refetch_304) * 1000:8.1f} ms per feed, "
                f"{statistics.median(cpu_304) * 1000:.1f} ms CPU"
            )
    finally:
        replay.stop()


if __name__ == "__main__":
    main()
