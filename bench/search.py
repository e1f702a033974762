"""Search benchmark: ``GET /api/search``'s work on a 1-million-item database, both engines.

Set-up (skipped when the database exists): the items of ``bench/load.py`` (1,000,000
resampled real arXiv papers, 2,000 a day over 500 days, synthetic ids ``9xxxx.xxxxx``),
inserted the same way into a database at revision 0013, then ``alembic upgrade head``: migration
0050 indexes them as it would an existing deployment (FTS5 ``rebuild``; PostgreSQL computes the
generated ``tsvector`` column and builds the GIN index). Readers and scores are not needed.

Then 300 queries drawn with a fixed seed from the real titles and authors, in five kinds:
one word, two words, a quoted phrase of a title, ``author:"Name"``, an arXiv id. Each runs as
the route runs it (parse, then the first page of 20 with :func:`aggregator.search.engine.search_page`,
sources and links included), after 20 warm-up queries; prints p50/p95/max per kind and overall.

    python bench/search.py --database-url sqlite:////tmp/search-load.db
    python bench/search.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/search_load
"""

from __future__ import annotations

import argparse
import datetime as dt
import random
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))

import sqlalchemy as sa  # noqa: E402
from load import LAST_DAY, PER_DAY, real_papers  # noqa: E402

from aggregator.digest.cursor import Cursor  # noqa: E402
from aggregator.search.engine import search_page  # noqa: E402
from aggregator.search.query import STOP_WORDS, parse  # noqa: E402
from aggregator.store.db import insert, make_engine, session_factory, upgrade  # noqa: E402
from aggregator.store.tables import Item  # noqa: E402


def populate(engine: sa.Engine, n_items: int) -> None:
    """The items of bench/load.py (same seed, ids and days), in batches of 20,000."""
    papers = real_papers()
    rng = random.Random(7)
    days = n_items // PER_DAY
    stmt = insert(engine, Item.__table__)
    batch: list[dict] = []
    t0, n = time.perf_counter(), 0
    for d in range(days):
        stamp = dt.datetime.combine(LAST_DAY - dt.timedelta(days=days - 1 - d), dt.time(4, 0), dt.UTC)
        for _ in range(PER_DAY):
            p = papers[rng.randrange(len(papers))]
            n += 1
            aid = f"9{n // 100000:04d}.{n % 100000:05d}"
            cats = [c for c in p["categories"] if c] or ["cs.LG"]
            batch.append(
                {
                    "key": f"arxiv:{aid}", "kind": "paper", "arxiv_id": aid, "version": 1,
                    "title": " ".join(p["title"].split()), "url": f"https://arxiv.org/abs/{aid}",
                    "authors": p["authors"], "summary": " ".join((p.get("summary") or "").split()),
                    "summary_html": None, "categories": cats, "primary_category": cats[0], "comment": None,
                    "guid": f"oai:arXiv.org:{aid}v1", "published": stamp, "date_from_fetch": False,
                    "content_hash": f"{n:040d}", "first_seen_at": stamp, "updated_at": stamp,
                }
            )  # fmt: skip
        if len(batch) >= 20000 or d == days - 1:
            with engine.begin() as c:
                c.execute(stmt, batch)
            batch = []
            print(f"\r  items: {n:,} ({n / (time.perf_counter() - t0):,.0f}/s)", end="", flush=True)
    print()


def queries(n: int, n_items: int) -> list[tuple[str, str]]:
    """``n`` (kind, query) pairs from real titles and authors, fixed seed."""
    rng = random.Random(11)
    papers = real_papers()
    out = []
    for i in range(n):
        p = papers[rng.randrange(len(papers))]
        words = [w for w in re.findall(r"[A-Za-z]{4,}", p["title"]) if w.lower() not in STOP_WORDS]
        words = words or ["learning"]
        kind = ("word", "two words", "phrase", "author", "arxiv id")[i % 5]
        if kind == "word":
            q = rng.choice(words)
        elif kind == "two words":
            q = " ".join(rng.sample(words, min(2, len(words))))
        elif kind == "phrase":
            title = p["title"].split()
            start = rng.randrange(max(1, len(title) - 2))
            q = '"' + " ".join(re.sub(r'"', "", w) for w in title[start : start + 3]) + '"'
        elif kind == "author":
            q = f'author:"{rng.choice(p["authors"])}"' if p["authors"] else "author:Smith"
        else:
            k = rng.randrange(1, n_items + 1)
            q = f"9{k // 100000:04d}.{k % 100000:05d}"
        out.append((kind, q))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database-url", required=True)
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--queries", type=int, default=300)
    args = ap.parse_args()
    engine = make_engine(args.database_url)
    with engine.connect() as c:
        empty = not sa.inspect(c).has_table("items")
    if empty:  # as an existing deployment: items first, then migration 0050 fills the index
        upgrade(engine, "0013")
        print(f"populating {args.items:,} items ...")
        populate(engine, args.items)
        t0 = time.perf_counter()
        upgrade(engine)
        print(f"  migration 0050 indexed them in {time.perf_counter() - t0:.0f} s")
        with engine.begin() as c:  # the planner's statistics, as autovacuum would gather them
            c.execute(sa.text("ANALYZE items" if engine.dialect.name == "postgresql" else "ANALYZE"))
    upgrade(engine)
    sessions = session_factory(engine)
    times: dict[str, list[float]] = {}
    qs = queries(args.queries + 20, args.items)
    with sessions() as s:
        max_id = int(s.scalar(sa.select(sa.func.max(Item.id))) or 0)
        for i, (kind, q) in enumerate(qs):
            t0 = time.perf_counter()
            page = search_page(s, parse(q), 20, Cursor("bench", max_id, None))
            ms = (time.perf_counter() - t0) * 1000
            s.rollback()
            if i >= 20:
                times.setdefault(kind, []).append(ms)
                times.setdefault("all", []).append(ms)
            if kind == "arxiv id" and len(page.items) != 1:
                raise SystemExit(f"{q}: {len(page.items)} results")
    print(f"{engine.dialect.name}, {args.items:,} items, first page of 20, ms:")
    for kind, ts in times.items():
        ts.sort()
        p95 = ts[max(0, int(len(ts) * 0.95) - 1)]
        p50 = statistics.median(ts)
        print(f"  {kind:10s} n={len(ts):3d}  p50 {p50:7.1f}  p95 {p95:7.1f}  max {ts[-1]:7.1f}")


if __name__ == "__main__":
    main()
