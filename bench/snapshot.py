"""Benchmark: ``aggregator import-snapshot`` on a synthetic 1M-line arXiv metadata snapshot.

1. Builds (once) a JSON-lines file in the real Kaggle format (``id``, ``submitter``,
   ``authors``, ``title``, ``comments``, ``journal-ref``, ``doi``, ``report-no``,
   ``categories``, ``license``, ``abstract``, ``versions``, ``update_date``,
   ``authors_parsed``, abstracts wrapped and indented as in the real file) from the ~22k real
   papers in ``../shared/data/bulk/daily-arxiv-ai-enhanced``: line *i* is real paper
   *i mod 22k* with a new, unique id in a month spread evenly from 2019-01 to 2026-11, a
   first-version date in that month and, for one paper in three, a second version.
2. Imports it into a fresh SQLite database in a child process and prints lines/s and the
   child's peak RSS (sampled as it goes, to show it stays flat).
3. Then, in another child, the trend counts of every imported paper
   (:func:`aggregator.worker.snapshot_trends.count_snapshot_trends`, as the command does) and
   the TF-IDF refit (``update_ranking(refit=True)``), each timed.

Targets (issue 15): ≥ 50,000 lines/s, peak RSS ≤ 300 MB, trends + refit ≤ 2 min.
Run:  python bench/snapshot.py [--lines 1000000] [--skip-trends] [--skip-import]
Times are wall and process CPU time (the machine is shared: CPU time is the figure to compare).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BULK = ROOT.parent / "shared" / "data" / "bulk" / "daily-arxiv-ai-enhanced"
FIRST_MONTH, LAST_MONTH = (2019, 1), (2026, 11)
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _papers() -> list[dict]:
    seen: dict[str, dict] = {}
    for path in sorted(BULK.glob("*.jsonl")):
        for line in path.open(encoding="utf-8"):
            p = json.loads(line)
            if p.get("id") and p.get("title") and p.get("summary") and p.get("authors"):
                seen.setdefault(p["id"], p)
    return list(seen.values())


def _wrap(text: str, width: int = 80) -> str:
    """Hard-wrapped at ``width`` like the snapshot's abstracts (``"  A fully …\\n…\\n"``)."""
    out, line = [], ""
    for word in text.split():
        if line and len(line) + 1 + len(word) > width:
            out.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    out.append(line)
    return "  " + "\n".join(out) + "\n"


def _stamp(when: dt.datetime) -> str:
    return f"{_DAYS[when.weekday()]}, {when.day} {_MONTHS[when.month - 1]} {when.year} {when:%H:%M:%S} GMT"


def _template(p: dict) -> dict:
    authors = list(p["authors"])
    text = authors[0] if len(authors) == 1 else ", ".join(authors[:-1]) + " and " + authors[-1]
    parsed = [[a.rsplit(" ", 1)[-1], a.rsplit(" ", 1)[0] if " " in a else "", ""] for a in authors]
    return {
        "submitter": authors[0],
        "authors": text,
        "title": p["title"],
        "comments": p.get("comment"),
        "categories": " ".join(p.get("categories") or ["cs.LG"]),
        "abstract": _wrap(p["summary"]),
        "authors_parsed": parsed,
    }


def build(path: Path, n: int) -> None:
    """Write the synthetic snapshot of ``n`` lines to ``path`` (streamed)."""
    templates = [_template(p) for p in _papers()]
    months = (LAST_MONTH[0] - FIRST_MONTH[0]) * 12 + LAST_MONTH[1] - FIRST_MONTH[1] + 1
    rng = random.Random(15)
    counters = [0] * months
    with path.open("w", encoding="utf-8") as out:
        for i in range(n):
            m = i * months // n
            year, month = FIRST_MONTH[0] + (FIRST_MONTH[1] - 1 + m) // 12, (FIRST_MONTH[1] - 1 + m) % 12 + 1
            counters[m] += 1
            created = dt.datetime(
                year, month, rng.randint(1, 28), rng.randint(0, 23), rng.randint(0, 59), rng.randint(0, 59)
            )
            versions = [{"version": "v1", "created": _stamp(created)}]
            if i % 3 == 0:
                versions.append(
                    {"version": "v2", "created": _stamp(created + dt.timedelta(days=rng.randint(1, 60)))}
                )
            t = templates[i % len(templates)]
            line = {
                "id": f"{year % 100:02d}{month:02d}.{counters[m]:05d}",
                "submitter": t["submitter"],
                "authors": t["authors"],
                "title": t["title"],
                "comments": t["comments"],
                "journal-ref": None,
                "doi": None,
                "report-no": None,
                "categories": t["categories"],
                "license": "http://arxiv.org/licenses/nonexclusive-distrib/1.0/",
                "abstract": t["abstract"],
                "versions": versions,
                "update_date": (created + dt.timedelta(days=3)).date().isoformat(),
                "authors_parsed": t["authors_parsed"],
            }
            out.write(json.dumps(line, ensure_ascii=True) + "\n")


def _rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_import(db: str, path: Path) -> None:
    from aggregator.feeds.snapshot import import_snapshot
    from aggregator.store.db import make_engine, upgrade

    engine = make_engine(db)
    upgrade(engine)
    samples: list[tuple[int, float]] = []
    size = path.stat().st_size
    marks = [size * k // 10 for k in range(1, 11)]

    def step(rep) -> None:  # type: ignore[no-untyped-def]
        while marks and rep.offset >= marks[0]:
            marks.pop(0)
            samples.append((rep.lines, _rss_mb()))

    t0, c0 = time.perf_counter(), time.process_time()
    rep = import_snapshot(engine, path, progress=step)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    print(json.dumps({"lines": rep.lines, "new": rep.new, "bad": rep.bad, "wall": wall, "cpu": cpu,
                      "peak_rss_mb": _rss_mb(), "samples": samples}))  # fmt: skip


def child_trends(db: str, budget: float) -> None:
    import sqlalchemy as sa

    from aggregator.config import Interests, Settings
    from aggregator.store.db import make_engine
    from aggregator.worker import tasks
    from aggregator.worker.snapshot_trends import count_snapshot_trends

    engine = make_engine(db)
    settings = Settings(database_url=db)
    t0, c0 = time.perf_counter(), time.process_time()

    def step(r) -> None:  # type: ignore[no-untyped-def]
        print(f"  trend counts: {r.counted:,} papers, {r.count_s:.0f} s, "
              f"{time.process_time() - c0:.0f} s CPU", file=sys.stderr)  # fmt: skip

    # stopped after `budget` s: the rest is extrapolated, and said so
    done = count_snapshot_trends(engine, progress=step, budget_s=budget)
    counted = done.counted
    trends_s, trends_cpu = time.perf_counter() - t0, time.process_time() - c0
    with engine.connect() as conn:
        total = conn.scalar(sa.text("SELECT count(*) FROM items"))
    t1, c1 = time.perf_counter(), time.process_time()
    scored = tasks.update_ranking(
        engine, settings, Interests(text="large language models reasoning"), refit=True
    )
    refit_s, refit_cpu = time.perf_counter() - t1, time.process_time() - c1
    print(json.dumps({"counted": counted, "total": total, "trends_s": trends_s, "trends_cpu": trends_cpu,
                      "refresh_s": done.refresh_s, "scored": scored, "refit_s": refit_s,
                      "refit_cpu": refit_cpu, "peak_rss_mb": _rss_mb()}))  # fmt: skip


def _child(*args: str) -> dict:
    out = subprocess.run([sys.executable, __file__, *args], check=True, stdout=subprocess.PIPE, text=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--file", type=Path, default=None, help="default /tmp/arxiv-snapshot-<lines>.json")
    ap.add_argument("--db", default=None, help="default a fresh SQLite file in /tmp")
    ap.add_argument("--skip-trends", action="store_true")
    ap.add_argument("--skip-import", action="store_true", help="count trends in the database as it is")
    ap.add_argument(
        "--trends-budget", type=float, default=600.0, help="stop the trend counts after this many s"
    )
    ap.add_argument("--child", choices=("import", "trends"), help=argparse.SUPPRESS)
    args = ap.parse_args()
    path = args.file or Path(f"/tmp/arxiv-snapshot-{args.lines}.json")
    db = args.db or f"sqlite:////tmp/bench-snapshot-{args.lines}.db"
    if args.child == "import":
        return child_import(db, path)
    if args.child == "trends":
        return child_trends(db, args.trends_budget)
    if not path.exists():
        t0 = time.perf_counter()
        build(path, args.lines)
        print(f"built {path} ({path.stat().st_size / 1e9:.2f} GB) in {time.perf_counter() - t0:.0f} s")
    if not args.skip_import:
        if db.startswith("sqlite:///"):
            for suffix in ("", "-wal", "-shm"):
                Path(db.removeprefix("sqlite:///") + suffix).unlink(missing_ok=True)
        print(f"importing {args.lines:,} lines into {db} (CPUs: {os.cpu_count()}, shared)")
        r = _child("--lines", str(args.lines), "--file", str(path), "--db", db, "--child", "import")
        print(f"import: {r['lines']:,} lines, {r['new']:,} new, {r['bad']} bad, {r['wall']:.1f} s wall "
              f"({r['lines'] / r['wall']:,.0f} lines/s), {r['cpu']:.1f} s CPU → {r['lines'] / r['cpu']:,.0f} "
              "lines per CPU-second (target ≥ 50,000)")  # fmt: skip
        print(f"peak RSS {r['peak_rss_mb']:.0f} MB (target ≤ 300); at 10 %, 20 %, … of the file: "
              + ", ".join(f"{mb:.0f}" for _, mb in r["samples"]))  # fmt: skip
    if args.skip_trends:
        return None
    t = _child("--lines", str(args.lines), "--file", str(path), "--db", db, "--child", "trends",
               "--trends-budget", str(args.trends_budget))  # fmt: skip
    if t["counted"] < t["total"]:
        rate = t["counted"] / t["trends_cpu"]
        print(f"trend counts STOPPED after {t['trends_s']:.0f} s: {t['counted']:,} of {t['total']:,} papers "
              f"({rate:,.0f}/CPU-s; all of them would take ~{t['total'] / rate:,.0f} CPU-s)")  # fmt: skip
    print(f"trend counts: {t['counted']:,} papers in {t['trends_s']:.1f} s wall, {t['trends_cpu']:.1f} s CPU "
          f"(one results refresh: {t['refresh_s']:.1f} s wall); TF-IDF refit and scoring {t['scored']:,} "
          f"items in {t['refit_s']:.1f} s wall, {t['refit_cpu']:.1f} s CPU; total "
          f"{t['trends_cpu'] + t['refit_cpu']:.1f} CPU-s (target ≤ 120); "
          f"peak RSS {t['peak_rss_mb']:.0f} MB")  # fmt: skip
    return None


if __name__ == "__main__":
    main()
