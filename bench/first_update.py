"""The first update of a fresh install: client and server CPU, per stage. Prints; never fails.

    .venv/bin/python bench/first_update.py [--database-url URL] [--day 2026-06-15]

Starts feedreplay on loopback (the 26 feeds of ../shared/feeds.replay.toml, replayed as of
``--day``), makes a fresh database (a temporary SQLite file, or the PostgreSQL database of
``--database-url``, dropped and created again: give a throw-away name) and runs one worker pass
stage by stage, as :func:`aggregator.worker.scheduler.refresh_job` does: fetch and store every
feed, refit and score, trends (links, counts, the default results of every scope and the two
monthly reports), arXiv API enrichment (from feedreplay's ``/api/query``, no delay), cards.

Client CPU is this process's user + system time (``resource.getrusage``; SQLite runs in it).
Server CPU, on PostgreSQL, is the user + system time of the server processes serving the
bench's database (``/proc/<pid>/stat`` of the backends whose title names it, sampled every
50 ms; a backend's last sample before it exits is kept, so it is a slight underestimate).
The machine is shared: CPU time, not wall time, is the figure to compare.
"""

from __future__ import annotations

import argparse
import cProfile
import datetime as dt
import os
import pstats
import resource
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

import sqlalchemy as sa  # noqa: E402
from conftest import start_feedreplay  # noqa: E402

from aggregator.config import Settings, load_feeds_file  # noqa: E402
from aggregator.store.db import make_engine, upgrade  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def client_cpu() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


class ServerCpu:
    """CPU seconds of the PostgreSQL backends whose process title names ``database``."""

    def __init__(self, database: str | None) -> None:
        self.database = database
        self.seen: dict[int, float] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> None:
        for pid in os.listdir("/proc"):
            if not pid.isdigit():
                continue
            try:
                title = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
                if not title.startswith("postgres:") or f" {self.database} " not in title:
                    continue
                fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            self.seen[int(pid)] = (int(fields[11]) + int(fields[12])) / TICK

    def _run(self) -> None:
        while not self.stop.wait(0.05):
            self._sample()

    def __enter__(self) -> ServerCpu:
        if self.database:
            self._sample()
            self.base = dict(self.seen)
            self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.database:
            self.stop.set()
            self.thread.join()
            self._sample()

    def total(self) -> float:
        return sum(v - getattr(self, "base", {}).get(pid, 0.0) for pid, v in self.seen.items())


def fresh_database(url: str | None, tmp: Path) -> tuple[str, str | None]:
    """(URL of an empty migrated database, its PostgreSQL name or None for SQLite)."""
    if url is None:
        url = f"sqlite:///{tmp / 'first.db'}"
        upgrade(make_engine(url))
        return url, None
    parsed = sa.make_url(url)
    name = parsed.database
    admin = sa.create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    upgrade(make_engine(url))
    return url, name


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--database-url", default=None)
    ap.add_argument("--day", default="2026-06-15")
    ap.add_argument("--profile", default=None, help="print a cProfile of this stage (e.g. trends)")
    args = ap.parse_args()
    from aggregator.worker import enrich, refresh, scheduler
    from aggregator.worker import tasks as jobs

    replay = start_feedreplay(args.day)
    try:
        with tempfile.TemporaryDirectory() as tmpdir:
            tmp = Path(tmpdir)
            url, name = fresh_database(args.database_url, tmp)
            feeds = replay.feeds_toml(tmp)
            settings = Settings(  # type: ignore[call-arg]
                database_url=url,
                feeds_file=feeds,
                arxiv_api_url=f"{replay.base}/api/query",
                arxiv_delay_seconds=0,
            )
            engine = make_engine(url)
            feeds_file = load_feeds_file(feeds)
            started = dt.datetime.now(dt.UTC)
            box: dict[str, object] = {}

            def fetch() -> object:
                box["report"] = refresh.refresh_feeds(engine, settings, feeds_file)
                return f"{box['report'].new_items} new items"  # type: ignore[attr-defined]

            def trends() -> object:
                out = jobs.update_trends(engine, settings, box["report"].new_item_ids)  # type: ignore[attr-defined]
                return f"{out.counted} counted, {out.scopes} scopes, {out.months} monthly reports"

            stages: list[tuple[str, Callable[[], object]]] = [
                ("fetch + store", fetch),
                (
                    "refit + score",
                    lambda: f"{scheduler.ranking_job(engine, settings, feeds_file.interests)} scored",
                ),
                ("trends", trends),
                ("enrich (arXiv API)", lambda: enrich.after_ingest(engine, settings, started)),
                ("cards", lambda: f"{jobs.fill_cards(engine)} cards"),
            ]
            rows = []
            with ServerCpu(name) as server:
                for label, stage in stages:
                    if name:
                        server._sample()
                    c0, s0, w0 = client_cpu(), server.total(), time.perf_counter()
                    if args.profile == label:
                        prof = cProfile.Profile()
                        what = prof.runcall(stage)
                        pstats.Stats(prof).sort_stats("cumulative").print_stats(30)
                    else:
                        what = stage()
                    if name:
                        server._sample()
                    rows.append(
                        (label, client_cpu() - c0, server.total() - s0, time.perf_counter() - w0, what)
                    )
            engine.dispose()
    finally:
        replay.stop()
    db = "PostgreSQL" if name else "SQLite"
    print(f"first update on a fresh {db} install, feeds replayed as of {args.day}")
    print(f"load average at the end {os.getloadavg()[0]:.1f} (the machine is shared: compare CPU)")
    print(f"{'stage':<20} {'client CPU s':>12} {'server CPU s':>12} {'wall s':>8}  what")
    for label, c, s, w, what in rows:
        print(f"{label:<20} {c:>12.2f} {s:>12.2f} {w:>8.2f}  {what}")
    c, s = sum(r[1] for r in rows), sum(r[2] for r in rows)
    print(
        f"{'total':<20} {c:>12.2f} {s:>12.2f} {sum(r[3] for r in rows):>8.2f}  client + server {c + s:.2f} s"
    )


if __name__ == "__main__":
    main()
