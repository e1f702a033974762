"""Trend tables on the real data: the tables of docs/trends.md, and a database to look at.

    .venv/bin/python bench/trend_tables.py --db sqlite:////tmp/trends-real.db [--load] \
        [--end 2026-06-30] [--window 7] [--baseline 56] [--limit 10] [--scopes all,cs.LG]

``--load`` fills the (empty, migrated here) database through the normal ingest path
(``write_entries`` then ``trends.update_counts``, day by day, as the scheduler does) with every
real bulk paper (../shared/data/bulk/daily-arxiv-ai-enhanced: the ``dw-dengwei`` days as one
arXiv feed, the cs.LG-heavy ``springkill`` Jan–Feb 2026 days as a second one) and every post
of the real blog captures in ../shared/data/blogs (parsed by ``parse_feed``, one feed per
file), then refreshes the stored results. Without ``--load`` it only reads.

Prints, per scope, the rising terms (with q-values) of the window ending ``--end``, or, when
none rises, says so; then the leading topics and the watch list, as Markdown tables.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from aggregator import trends  # noqa: E402
from aggregator.feeds.ingest import write_entries  # noqa: E402
from aggregator.feeds.parse import parse_feed  # noqa: E402
from aggregator.store.db import make_engine, session_factory, upgrade  # noqa: E402
from aggregator.store.tables import Feed  # noqa: E402
from aggregator.types import ParsedEntry  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
BULK = DATA / "bulk" / "daily-arxiv-ai-enhanced"


def paper(p: dict, day: str) -> ParsedEntry:
    return ParsedEntry(
        kind="paper",
        key=f"arxiv:{p['id']}",
        title=" ".join(p["title"].split()),
        url=f"https://arxiv.org/abs/{p['id']}",
        authors=tuple(p["authors"]),
        summary=" ".join((p.get("summary") or "").split()),
        published=dt.datetime.fromisoformat(day + "T04:00:00+00:00"),
        categories=tuple(p["categories"]),
        primary_category=p["categories"][0],
        arxiv_id=p["id"],
        version=1,
        announce_type="new",
        guid=f"oai:arXiv.org:{p['id']}v1",
    )


def _feed(session, url: str, name: str, kind: str) -> int:  # type: ignore[no-untyped-def]
    feed = Feed(
        url=url, name=name, kind=kind, created_at=dt.datetime.now(dt.UTC), error_count=0, disabled=False
    )
    session.add(feed)
    session.flush()
    return int(feed.id)


def load(url: str) -> None:
    """Fill the database with the real papers and posts (see the module doc)."""
    engine = make_engine(url)
    upgrade(engine)
    make = session_factory(engine)
    t0 = time.perf_counter()
    with make() as session, session.begin():
        feeds = {
            "dw-dengwei": _feed(session, "replay://dw-dengwei", "arXiv (daily-arXiv-ai-enhanced)", "arxiv"),
            "springkill": _feed(
                session, "replay://springkill", "arXiv (springkill fork, cs.LG-heavy)", "arxiv"
            ),
        }
    seen: set[str] = set()
    for path in sorted(BULK.glob("*.jsonl"), key=lambda p: p.stem[-10:]):
        day = path.stem[-10:]
        src = "springkill" if path.stem.startswith("springkill") else "dw-dengwei"
        papers = []
        for line in path.open(encoding="utf-8"):
            p = json.loads(line)
            if p["id"] not in seen:
                seen.add(p["id"])
                papers.append(paper(p, day))
        with make() as session, session.begin():
            summary = write_entries(session, feeds[src], papers, dt.datetime.now(dt.UTC))
            trends.update_counts(session, summary.new_item_ids)
    for path in sorted((DATA / "blogs").glob("*.xml")):
        parsed = parse_feed(
            path.read_bytes(), fetched_at=dt.datetime.now(dt.UTC), url=f"replay://{path.name}"
        )
        if parsed.kind != "blog" or not parsed.entries:
            continue
        with make() as session, session.begin():
            fid = _feed(session, f"replay://{path.name}", parsed.title or path.stem, "blog")
            summary = write_entries(session, fid, list(parsed.entries), dt.datetime.now(dt.UTC))
            trends.update_counts(session, summary.new_item_ids)
    with make() as session, session.begin():
        trends.refresh_results(session)
    print(
        f"loaded {len(seen)} papers and the blog posts in {time.perf_counter() - t0:.0f} s", file=sys.stderr
    )


def row(t: trends.TrendTerm, q: bool) -> str:
    change = f"×{t.window_share / t.baseline_share:.2f}" if t.baseline_share else "new"
    exp = f"{t.expected_count:.1f}" if t.expected_count is not None else ""
    tail = f" | {t.q_value:.2g} |" if q else " |"
    return f"| {t.label} | {t.window_count} | {exp} | {100 * t.window_share:.2f} % | {change}{tail}"


HEAD = "| term | items | expected | share | change |\n|---|--:|--:|--:|--:|"
HEAD_Q = "| term | items | expected | share | change | q |\n|---|--:|--:|--:|--:|--:|"


def tables(url: str, end: dt.date, window: int, baseline: int, limit: int, scopes: list[str]) -> None:
    make = session_factory(make_engine(url))
    with make() as session:
        for scope in scopes:
            r = trends.compute_report(
                session, end=end, window_days=window, baseline_days=baseline, scope=scope
            )
            print(
                f"\n#### {scope}: {r.window_start} – {r.end} ({r.window_docs:,} items) vs {baseline} days "
                f"before ({r.baseline_docs:,} items), {r.tested:,} terms tested\n"
            )
            if r.terms:
                print("Rising (FDR 10 %):\n\n" + HEAD_Q)
                for t in r.terms[:limit]:
                    print(row(t, True))
            else:
                print("Nothing rises significantly.")
            print("\nLeading topics:\n\n" + HEAD)
            for t in r.leading[:limit]:
                print(row(t, False))
            if r.watch:
                print("\nWatch list (not significant):\n\n" + HEAD_Q)
                for t in r.watch[: max(3, limit // 2)]:
                    print(row(t, True))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--db", required=True)
    ap.add_argument("--load", action="store_true")
    ap.add_argument("--end", type=dt.date.fromisoformat, default=dt.date(2026, 6, 30))
    ap.add_argument("--window", type=int, default=7)
    ap.add_argument("--baseline", type=int, default=56)
    ap.add_argument("--limit", type=int, default=10)
    ap.add_argument("--scopes", default=",".join(trends.SCOPES))
    args = ap.parse_args()
    if args.load:
        load(args.db)
    tables(args.db, args.end, args.window, args.baseline, args.limit, args.scopes.split(","))


if __name__ == "__main__":
    main()
