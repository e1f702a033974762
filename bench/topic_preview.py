"""Cost of a topic filter preview (``POST /api/topic-preview``, the /topics form's "Preview"
button) on real arXiv papers: every paper of June 2026 in ``../shared/data/bulk`` stored in a
temporary SQLite database, dated inside one week, so the week holds more items than the
preview reads (:data:`aggregator.digest.topic_preview.PREVIEW_SCAN`). Prints, per filter, the
items read and matched, the CPU time of the preview (``time.process_time``: other processes'
load does not count) and the growth of the process's peak RSS.

Usage: python bench/topic_preview.py [DATABASE_URL]   (default: a temporary SQLite file)
"""

from __future__ import annotations

import datetime as dt
import resource
import sys
import tempfile
import time
import zoneinfo
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from conftest import bulk_papers, paper_entry  # noqa: E402

from aggregator.digest.topic_preview import PREVIEW_SCAN, preview_topic  # noqa: E402
from aggregator.feeds.ingest import write_entries  # noqa: E402
from aggregator.store.db import make_engine, session_factory, upgrade  # noqa: E402
from aggregator.store.tables import Feed  # noqa: E402
from aggregator.types import TopicFilter  # noqa: E402

NOW = dt.datetime(2026, 6, 30, 12, tzinfo=dt.UTC)
FILTERS = (
    TopicFilter(
        "", "RL and LLMs", phrases=("reinforcement learning", "language model"), negative=("survey",)
    ),
    TopicFilter(
        "", "RL for agents (all)", phrases=("reinforcement learning",), categories=("cs.AI",), match="all"
    ),
    TopicFilter(
        "",
        "20 phrases",
        phrases=tuple(f"w{i} model" for i in range(19)) + ("diffusion model",),
        negative=("survey",),
    ),
    TopicFilter("", "by source", sources=("arXiv cs.LG",)),
    TopicFilter("", "200 phrases", phrases=tuple(f"w{i} model" for i in range(200))),
)


def load(url: str) -> int:
    engine = make_engine(url)
    upgrade(engine)
    n = 0
    with session_factory(engine)() as s, s.begin():
        feed = Feed(
            url="http://127.0.0.1:9/rss/cs.LG",
            name="arXiv cs.LG",
            kind="arxiv",
            created_at=NOW,
            error_count=0,
            disabled=False,
            scheduled=True,
            interval_minutes=60,
            tags=[],
        )
        s.add(feed)
        s.flush()
        for day in range(1, 31):
            date = f"2026-06-{day:02d}"
            week_day = f"2026-06-{24 + day % 7:02d}"  # every day of June lands in 24–30 June
            papers = bulk_papers(date)
            write_entries(s, feed.id, [paper_entry(p, week_day) for p in papers], NOW)
            n += len(papers)
    engine.dispose()
    return n


def main() -> None:
    url = sys.argv[1] if len(sys.argv) > 1 else f"sqlite:///{tempfile.mkdtemp()}/preview.db"
    print(f"loaded {load(url)} papers into {url.split('://')[0]}")
    engine = make_engine(url)
    tz = zoneinfo.ZoneInfo("UTC")
    print(f"{'filter':22} {'in week':>8} {'read':>6} {'matched':>8} {'CPU ms':>8} {'peak RSS +MB':>13}")
    for topic in FILTERS:
        with session_factory(engine)() as s:
            preview_topic(s, topic, tz, now=NOW)  # warm: page cache, compiled phrases
            rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            runs = []
            for _ in range(3):
                t0 = time.process_time()
                p = preview_topic(s, topic, tz, now=NOW)
                runs.append(time.process_time() - t0)
            grown = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss) / 1024
        assert p.scanned <= min(p.in_window, PREVIEW_SCAN)
        cpu_ms = min(runs) * 1000
        print(f"{topic.name:22} {p.in_window:8} {p.scanned:6} {p.matched:8} {cpu_ms:8.0f} {grown:13.1f}")
    engine.dispose()


if __name__ == "__main__":
    main()
