"""Speed of per-reader ranking (aggregator.ranking.personal) on real arXiv papers.

Usage: python bench/rank_speed.py [--readers 1000] [--db /tmp/rank_speed.db]

Loads the bulk daily-arXiv papers of June 2026 (their own dates) plus the springkill Jan–Feb
2026 papers moved forward into June (dates + 136 days) so that a 30-day window holds ≈10k
items, into a fresh SQLite database; fits TF-IDF on them; draws random realistic reader
profiles (interest text from a real title, 0–3 keywords, 0–8 👍 and 0–3 👎 on real items,
followed authors, muted phrases, excluded categories, 0–2 topic subscriptions); and prints:

* the refit: TF-IDF fitted on the 30-day window and stored (CPU seconds);
* scoring math for one reader against one day's items and against a 10,000-item window (ms,
  median of repeats, warm caches: the window's matrix and masks are built once per refresh);
* compiling one reader's profile vector (ms; text → TF-IDF, outside the scoring math);
* precompute() for one reader end to end (ms, incl. the SQLite write);
* precompute_all() for N readers: seconds excluding and including the SQLite writes.
Targets: ≤ 1 ms, ≤ 5 ms, ≤ 5 s.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import random
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import sqlalchemy as sa  # noqa: E402

from aggregator.config import FeedConfig  # noqa: E402
from aggregator.feeds.ingest import sync_feeds, write_entries  # noqa: E402
from aggregator.ranking import (
    evaluate,  # noqa: E402
    personal,  # noqa: E402
)
from aggregator.ranking import tfidf as rank  # noqa: E402
from aggregator.store.db import make_engine, session_factory, upgrade  # noqa: E402
from aggregator.store.tables import Feed, Item  # noqa: E402
from aggregator.types import ParsedEntry, ReaderProfile, TopicFilter  # noqa: E402

SHIFT = dt.timedelta(days=136)
TOPICS = (
    TopicFilter("robotics", "Robot learning", phrases=("robot", "manipulation"), categories=("cs.RO",)),
    TopicFilter("security", "Security", categories=("cs.CR",), phrases=("adversarial attack", "jailbreak")),
    TopicFilter("diffusion", "Diffusion", phrases=("diffusion model",), negative=("survey",)),
    TopicFilter(
        "rl-reasoning", "RL for reasoning", phrases=("reinforcement learning", "reasoning"), match="all"
    ),
    TopicFilter("speech", "Speech", categories=("eess.AS", "cs.SD")),
    TopicFilter("retrieval", "Retrieval", phrases=("retrieval-augmented", "RAG"), categories=("cs.IR",)),
    TopicFilter("agents", "LLM agents", phrases=("agent",), negative=("multi-agent reinforcement",)),
    TopicFilter("graphs", "Graph learning", phrases=("graph neural network", "GNN")),
)
MUTE_POOL = ("benchmark", "survey", "LLM", "medical", "autonomous driving", "federated", "video", "3D")
KEYWORDS = (
    "diffusion",
    "reinforcement learning",
    "robot",
    "retrieval",
    "vision language",
    "speech",
    "graph neural",
    "privacy",
    "code generation",
    "world model",
    "quantization",
    "agents",
)


def entry(p: evaluate.Paper, when: dt.datetime) -> ParsedEntry:
    return ParsedEntry(
        kind="paper",
        key=f"arxiv:{p.id}",
        title=p.title,
        url=f"https://arxiv.org/abs/{p.id}",
        authors=p.authors,
        summary=p.summary,
        published=when,
        categories=p.categories,
        primary_category=p.categories[0] if p.categories else None,
        arxiv_id=p.id,
        version=1,
        announce_type="new",
        guid=f"oai:arXiv.org:{p.id}v1",
    )


def load(engine: sa.Engine) -> None:
    papers = evaluate.load_bulk()
    now = dt.datetime(2026, 7, 1, 12, tzinfo=dt.UTC)
    chosen = []
    for p in papers:
        day = dt.datetime.fromisoformat(p.day + "T04:00:00+00:00")
        if p.source == "sk":
            day += SHIFT
        if dt.datetime(2026, 6, 1, tzinfo=dt.UTC) <= day <= now:
            chosen.append(entry(p, day))
    with session_factory(engine)() as s, s.begin():
        sync_feeds(s, [FeedConfig("arXiv cs.AI", "http://127.0.0.1:9/cs.AI", "arxiv")], now)
        feed_id = s.scalar(sa.select(Feed.id))
        for i in range(0, len(chosen), 2000):
            write_entries(s, feed_id, chosen[i : i + 2000], now)


def random_profiles(n: int, items: list[sa.Row], seed: int = 0) -> list[ReaderProfile]:
    rng = random.Random(seed)
    out = []
    for rid in range(1, n + 1):
        base = rng.choice(items)
        liked = rng.sample(items, rng.randint(0, 8))
        out.append(
            ReaderProfile(
                reader_id=rid,
                interests=base.title,
                keywords=tuple(rng.sample(KEYWORDS, rng.randint(0, 3))),
                muted=tuple(rng.sample(MUTE_POOL, rng.randint(0, 2))),
                followed_authors=tuple(a for it in rng.sample(items, 2) for a in it.authors[:1]),
                exclude_categories=tuple(rng.sample(["cs.CV", "cs.GR", "cs.CY", "cs.HC"], rng.randint(0, 1))),
                liked_item_ids=tuple(i.id for i in liked),
                disliked_item_ids=tuple(i.id for i in rng.sample(items, rng.randint(0, 3))),
                topics=tuple(rng.sample(TOPICS, rng.randint(0, 2))),
            )
        )
    return out


def timed(fn, repeat: int) -> float:  # type: ignore[no-untyped-def]
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - t)
    return statistics.median(runs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--readers", type=int, default=1000)
    ap.add_argument("--db", default=None, help="SQLite file (default: a temporary one)")
    args = ap.parse_args()
    path = args.db or str(Path(tempfile.mkdtemp(prefix="rank-speed-")) / "bench.db")
    engine = make_engine(f"sqlite:///{path}")
    upgrade(engine)
    t = time.perf_counter()
    with session_factory(engine)() as s:
        empty = s.scalar(sa.select(sa.func.count()).select_from(Item)) == 0
    if empty:
        load(engine)
    with session_factory(engine)() as s, s.begin():
        cpu = time.process_time()
        model = rank.refit(s, dt.datetime(2026, 7, 1, 12, tzinfo=dt.UTC), 30)
        cpu = time.process_time() - cpu
        assert model is not None
        items = s.execute(sa.select(Item.id, Item.title, Item.authors, Item.published)).all()
    print(f"setup: {len(items)} items, {model.n_terms} terms, {time.perf_counter() - t:.1f} s")
    print(f"refit (TF-IDF of the 30-day window, stored): {cpu:.2f} s of CPU")
    profiles = random_profiles(args.readers, items)

    with session_factory(engine)() as s:
        t = time.perf_counter()
        bounds = personal.window_bounds(s, None, 30)
        assert bounds is not None
        window = personal.item_window(s, model, bounds[0])
        print(f"window: {len(window)} items, built in {time.perf_counter() - t:.2f} s (once per refresh)")
        t = time.perf_counter()
        personal.item_window(s, model, bounds[0])
        print(f"window cache check (no change): {1000 * (time.perf_counter() - t):.1f} ms")
        readers = personal._compile_all(s, model, window, profiles[:50])

    # one day's items and a 10,000-item window
    days = np.floor(window.published / 86400)
    last_day = np.flatnonzero(days == days.max())
    busiest = np.bincount((days - days.min()).astype(int)).argmax() + days.min()
    day_rows = np.flatnonzero(days == busiest)
    views = {
        f"one day ({len(day_rows)} items)": window.subset(day_rows),
        f"last day ({len(last_day)} items)": window.subset(last_day),
        "10,000 items": window.subset(np.arange(min(10_000, len(window)))),
    }
    for label, view in views.items():
        for r in readers:  # warm the memoised masks of this view (built once per window refresh)
            personal.rank_window(view, [r])
        cost = [timed(lambda view=view, r=r: personal.rank_window(view, [r]), 5) for r in readers]
        print(
            f"score one reader vs {label}: median {1000 * statistics.median(cost):.2f} ms, "
            f"p90 {1000 * float(np.percentile(cost, 90)):.2f} ms (scoring math: Rocchio + PRF + boosts)"
        )
    with session_factory(engine)() as s:
        cost = [timed(lambda p=p: personal._compile_all(s, model, window, [p]), 3) for p in profiles[:50]]
        print(f"compile one reader's profile vector: median {1000 * statistics.median(cost):.2f} ms")
        one = []
        for p in profiles[:20]:
            with s.begin():
                t = time.perf_counter()
                personal.precompute(s, model, p)
                one.append(time.perf_counter() - t)
        print(
            f"precompute() one reader ({personal.TOP_K} rows, why on all) incl. SQLite write: "
            f"median {1000 * statistics.median(one):.1f} ms"
        )

    # wall-clock and this process's CPU time: on a shared machine the CPU time is the steadier one
    with session_factory(engine)() as s:
        t, c = time.perf_counter(), time.process_time()
        tm = personal.PrecomputeTimings()
        n = personal.precompute_all(s, model, profiles, write=False, timings=tm)
        dry, dry_cpu = time.perf_counter() - t, time.process_time() - c
        print(
            f"precompute_all {len(profiles)} readers excl. DB writes: {dry:.2f} s (CPU {dry_cpu:.2f} s; "
            f"{n} rows; window {tm.window:.2f}, compile {tm.compile:.2f}, score {tm.score:.2f}, "
            f"top-K+why {tm.why:.2f})"
        )
    # readers who each voted through a week of digests (20 👍, 120 👎): every one gets a vote
    # model (aggregator.ranking.personal.vote_model)
    rng = random.Random(1)
    voted = [
        dataclasses.replace(
            p,
            liked_item_ids=tuple(i.id for i in rng.sample(items, 20)),
            disliked_item_ids=tuple(i.id for i in rng.sample(items, 120)),
        )
        for p in profiles
    ]
    with session_factory(engine)() as s:
        t, c = time.perf_counter(), time.process_time()
        n = personal.precompute_all(s, model, voted, write=False)
        print(
            f"precompute_all {len(voted)} readers with a week of votes each (20 👍, 120 👎) excl. DB "
            f"writes: {time.perf_counter() - t:.2f} s (CPU {time.process_time() - c:.2f} s; {n} rows)"
        )
    # twice: the first run replaces the rows written when the benchmark database was set up
    # (or by an earlier run), as a scheduled precompute does; the second rewrites its own rows
    for label in ("", " again"):
        t, c = time.perf_counter(), time.process_time()
        tm = personal.PrecomputeTimings()
        with session_factory(engine)() as s, s.begin():
            n = personal.precompute_all(s, model, profiles, timings=tm)
        wet, wet_cpu = time.perf_counter() - t, time.process_time() - c
        print(
            f"precompute_all {len(profiles)} readers incl. SQLite writes{label}: {wet:.2f} s "
            f"(CPU {wet_cpu:.2f} s; {n} rows; write {tm.write:.2f} s, "
            "plus the commit)"
        )


if __name__ == "__main__":
    main()
