"""Benchmark: feedparser, fastfeedparser and our parse_feed side by side, in items per CPU-second.

Each parser reads the same bytes, best of ``--rounds`` runs, CPU time of this process
(time.process_time, so other load on the machine counts less than with wall time). "ours"
is :func:`aggregator.feeds.parse.parse_feed` (fast lxml reader, feedparser fallback) up to
finished ParsedFeed records; "ours via feedparser" forces the fallback reader.
Run:  python bench/parse.py [--rounds 5] [FILE ...]
"""

from __future__ import annotations

import argparse
import datetime as dt
import io
import sys
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import fastfeedparser  # noqa: E402
import feedparser  # noqa: E402

from aggregator.feeds.parse import parse_feed  # noqa: E402

DATA = ROOT.parent / "shared" / "data"
DEFAULT = [
    DATA / "arxiv-rss" / "all-archives-2024-11-28-rss2-FULL-aioarxiv.xml",
    DATA / "arxiv-api" / "arxivpy-2026-04-12-api-new-q_testing_s0_m100_cfe7536492ca-http200.xml",
    DATA / "blogs" / "lilianweng-lillog-2026-07-04-rss2-hugo.xml",
    DATA / "blogs" / "thegradient-2026-04-27-rss2-distill.xml",
]


def rate(fn: Callable[[], int], rounds: int) -> tuple[float, int]:
    best, n = float("inf"), 0
    for _ in range(rounds):
        t0 = time.process_time()
        n = fn()
        best = min(best, time.process_time() - t0)
    return n / best if best > 0 else float("inf"), n


def _feedparser(body: bytes) -> int:
    return len(feedparser.parse(io.BytesIO(body), sanitize_html=False, resolve_relative_uris=False).entries)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("files", nargs="*", type=Path)
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    now = dt.datetime.now(dt.UTC)
    print(f"{'document':52} {'items':>5} {'feedparser':>11} {'fastfeedp.':>11} {'ours':>9} {'ours/fp':>7}")
    for path in args.files or DEFAULT:
        body = path.read_bytes()
        url = "https://rss.arxiv.org/rss/cs" if "arxiv-rss" in str(path) else "https://feeds.example/feed"
        fp, _ = rate(lambda b=body: _feedparser(b), args.rounds)
        ffp, _ = rate(lambda b=body: len(fastfeedparser.parse(b).entries), args.rounds)
        ours, m = rate(lambda b=body, u=url: len(parse_feed(b, fetched_at=now, url=u).entries), args.rounds)
        print(f"{path.name[:52]:52} {m:5d} {fp:11,.0f} {ffp:11,.0f} {ours:9,.0f} {ours / fp:6.1f}×")
    print("items per CPU-second, best of", args.rounds)


if __name__ == "__main__":
    main()
