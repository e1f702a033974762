"""Incremental trend update on a loaded database: ``update_counts`` of ~2,000 real papers and
the lexicon refresh after them, with a cProfile breakdown. Prints; never fails on speed.

    .venv/bin/python bench/trends_incremental.py /tmp/trends-real.db [--repeat 3]

The SQLite database (filled by ``bench/trend_tables.py --load``) is copied to a temporary file
first; the first 2,000 papers of the 2025 bulk days, with new ids, are ingested re-dated to
2026-07-02 (``write_entries``, not timed), then counted (timed: CPU, ``time.process_time``).
With ``--repeat N`` the timed run is made N times, each on a fresh copy (a cold page cache),
and each run's CPU is printed; run it alternately with another checkout to compare.

    .venv/bin/python bench/trends_incremental.py postgresql+psycopg://…/throwaway [--repeat 3]

On a PostgreSQL database (filled by ``bench/trend_tables.py --db URL --load``) the papers are
ingested and counted in one transaction that is rolled back; the client's CPU and the server
backend's (``/proc/<pg_backend_pid>/stat``: the server must run on this machine) are printed.
"""

from __future__ import annotations

import cProfile
import datetime as dt
import json
import os
import pstats
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from conftest import BULK, paper_entry  # noqa: E402

from aggregator import trends  # noqa: E402
from aggregator.feeds.ingest import write_entries  # noqa: E402
from aggregator.store.db import make_engine, session_factory  # noqa: E402


def on_postgres(url: str) -> str:
    """One timed ``update_counts`` of the re-dated papers on PostgreSQL, rolled back."""
    make = session_factory(make_engine(url))
    papers = _redated_papers()
    with make() as s:
        feed = int(s.execute(trends.counts.sa.text("SELECT min(id) FROM feeds")).scalar_one())
        entries = [paper_entry(p, "2026-07-02") for p in papers[:2000]]
        ids = write_entries(s, feed, entries, dt.datetime.now(dt.UTC)).new_item_ids
        pid = s.execute(trends.counts.sa.text("SELECT pg_backend_pid()")).scalar_one()
        b0, c0 = backend_cpu(pid), time.process_time()
        n = trends.update_counts(s, ids)
        s.flush()
        client, server = time.process_time() - c0, backend_cpu(pid) - b0
        s.rollback()
    load = os.getloadavg()[0]
    return f"of {n} items: {client:.2f} s client CPU + {server:.2f} s server CPU (load {load:.1f})"


def backend_cpu(pid: int) -> float:
    """User + system CPU seconds of a local process."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def main() -> None:
    repeat = int(sys.argv[sys.argv.index("--repeat") + 1]) if "--repeat" in sys.argv else 1
    if sys.argv[1].startswith("postgresql"):
        for run in range(repeat):
            print(f"run {run + 1}: update_counts {on_postgres(sys.argv[1])}")
        return
    for run in range(repeat - 1):
        print(f"run {run + 1}: update_counts {once(Path(sys.argv[1]))}")
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "incr.db"
        shutil.copy(sys.argv[1], copy)
        make = session_factory(make_engine(f"sqlite:///{copy}"))
        feed, papers, ids = _add_redated(make)
        with make() as s, s.begin():
            prof = cProfile.Profile()
            t0, c0 = time.perf_counter(), time.process_time()
            n = trends.update_counts(s, ids)
            t1, c1 = time.perf_counter() - t0, time.process_time() - c0
        with make() as s, s.begin():  # the same again under the profiler, on a second copy
            ids2 = write_entries(
                s,
                feed,
                [paper_entry({**p, "id": "8" + p["id"]}, "2026-07-03") for p in papers[:2000]],
                dt.datetime.now(dt.UTC),
            ).new_item_ids
            prof.enable()
            trends.update_counts(s, ids2)
            prof.disable()
            t0 = time.perf_counter()
            trends.lexicon.refresh(s, dt.date(2026, 7, 2))
            t2 = time.perf_counter() - t0
        pstats.Stats(prof).sort_stats("cumulative").print_stats(12)
        print(
            f"update_counts of {n} items: {c1:.2f} s CPU ({t1:.2f} s wall; load average "
            f"{os.getloadavg()[0]:.1f}); lexicon.refresh after it: {t2:.2f} s wall"
        )


def _redated_papers() -> list[dict]:
    """The 2025 bulk papers with new arXiv ids ("99" + id), in file order."""
    papers = []
    for path in sorted(BULK.glob("dw-dengwei-2025-*.jsonl")):
        for line in path.open(encoding="utf-8"):
            p = json.loads(line)
            papers.append({**p, "id": "99" + p["id"]})
    return papers


def _add_redated(make):  # type: ignore[no-untyped-def]
    """Store the 2025 bulk papers' first 2,000, re-dated to 2026-07-02 under new arXiv ids, in
    the database of the session factory ``make``: (feed id, the papers, the new item ids)."""
    papers = _redated_papers()
    with make() as s, s.begin():
        feed = int(s.execute(trends.counts.sa.text("SELECT min(id) FROM feeds")).scalar_one())
        entries = [paper_entry(p, "2026-07-02") for p in papers[:2000]]
        ids = write_entries(s, feed, entries, dt.datetime.now(dt.UTC)).new_item_ids
    return feed, papers, ids


def once(db: Path) -> str:
    """One timed ``update_counts`` of the re-dated papers on a fresh copy of ``db``."""
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "incr.db"
        shutil.copy(db, copy)
        make = session_factory(make_engine(f"sqlite:///{copy}"))
        feed, papers, ids = _add_redated(make)
        with make() as s, s.begin():
            c0 = time.process_time()
            n = trends.update_counts(s, ids)
            return f"of {n} items: {time.process_time() - c0:.2f} s CPU (load {os.getloadavg()[0]:.1f})"


if __name__ == "__main__":
    main()
