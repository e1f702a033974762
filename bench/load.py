"""Load benchmark: `GET /api/me/digest` under wrk, on a 1-million-item database.

Set-up (skipped when the database already holds the items): 1,000,000 items made by resampling
the ~22k real arXiv papers of ../shared/data/bulk (each copy gets its own synthetic arXiv id
``9xxxx.xxxxx``; titles, abstracts, authors and categories are real), spread 2,000 a day over
500 days ending 2026-06-30, each announced by one of three arXiv feeds; 1,000 readers with
random but realistic interest profiles (free text and keywords drawn from real titles, 0–3 topic
subscriptions); their scores precomputed for the last 30 days by `personal.precompute_all`;
every item's card built (`cards.fill_missing`, as the worker does after each ingest).

Run: wrk (Debian's package) against `aggregator api --workers N` on loopback, at 10 and 64
concurrent connections, each request with a random reader's token, for the newest day. Prints
p50, p99 and requests/s from wrk's latency distribution, and each API worker's resident memory
(VmRSS) after the run, and the CPU seconds per request of the API workers and (PostgreSQL) of
the database's server processes of those connections (``/proc/PID/stat``): on a shared,
loaded machine the latencies move with the load, the CPU per request much less.

    python bench/load.py --database-url sqlite:////tmp/load.db
    python bench/load.py --database-url postgresql://postgres@127.0.0.1:5432/load
"""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import os
import random
import re
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
BULK = ROOT.parent / "shared" / "data" / "bulk" / "daily-arxiv-ai-enhanced"

import sqlalchemy as sa  # noqa: E402

from aggregator.digest import cards  # noqa: E402
from aggregator.store.db import insert, make_engine, session_factory, upgrade  # noqa: E402
from aggregator.store.tables import Feed, Item, ItemSource  # noqa: E402

LAST_DAY = dt.date(2026, 6, 30)
PER_DAY = 2000
FEEDS = ("arXiv cs.LG", "arXiv cs.CV", "arXiv cs.CL")


def real_papers() -> list[dict]:
    seen: dict[str, dict] = {}
    for path in sorted(BULK.glob("*.jsonl")):
        for line in path.open(encoding="utf-8"):
            p = json.loads(line)
            seen.setdefault(p["id"], p)
    return list(seen.values())


def populate(engine: sa.Engine, n_items: int, n_readers: int, tokens_file: Path) -> None:
    papers = real_papers()
    rng = random.Random(7)
    now = dt.datetime.now(dt.UTC)
    days = n_items // PER_DAY
    with session_factory(engine)() as s, s.begin():
        for name in FEEDS:
            cat = name.split()[-1]
            s.add(
                Feed(
                    url=f"https://rss.arxiv.org/rss/{cat}",
                    name=name,
                    kind="arxiv",
                    interval_minutes=60,
                    tags=["arxiv"],
                    scheduled=True,
                    created_at=now,
                    error_count=0,
                    disabled=False,
                )
            )
    with engine.connect() as c:
        feed_ids = {r.name: r.id for r in c.execute(sa.select(Feed.id, Feed.name))}
    t0 = time.perf_counter()
    batch: list[dict] = []
    sources: list[tuple[int, str]] = []
    item_stmt = insert(engine, Item.__table__)
    n = 0
    for d in range(days):
        day = LAST_DAY - dt.timedelta(days=days - 1 - d)
        stamp = dt.datetime.combine(day, dt.time(4, 0), dt.UTC)
        for _ in range(PER_DAY):
            p = papers[rng.randrange(len(papers))]
            n += 1
            aid = f"9{n // 100000:04d}.{n % 100000:05d}"
            cats = [c for c in p["categories"] if c] or ["cs.LG"]
            batch.append(
                {
                    "key": f"arxiv:{aid}",
                    "kind": "paper",
                    "arxiv_id": aid,
                    "version": 1,
                    "title": " ".join(p["title"].split()),
                    "url": f"https://arxiv.org/abs/{aid}",
                    "authors": p["authors"],
                    "summary": " ".join((p.get("summary") or "").split()),
                    "summary_html": None,
                    "categories": cats,
                    "primary_category": cats[0],
                    "comment": None,
                    "guid": f"oai:arXiv.org:{aid}v1",
                    "published": stamp,
                    "date_from_fetch": False,
                    "content_hash": f"{n:040d}",
                    "first_seen_at": stamp,
                    "updated_at": stamp,
                }
            )
            sources.append((n, next((f for f in FEEDS if f.split()[-1] in cats), FEEDS[0])))
        if len(batch) >= 20000 or d == days - 1:
            with engine.begin() as c:
                c.execute(item_stmt, batch)
            batch = []
            print(f"\r  items: {n:,} ({n / (time.perf_counter() - t0):,.0f}/s)", end="", flush=True)
    print()
    with engine.begin() as c:  # item ids are 1..n in insertion order on both databases
        for start in range(0, len(sources), 50000):
            c.execute(
                insert(c, ItemSource.__table__),
                [
                    {
                        "item_id": i,
                        "feed_id": feed_ids[f],
                        "announce_type": "new",
                        "version": 1,
                        "seen_at": now,
                    }
                    for i, f in sources[start : start + 50000]
                ],
            )
    print(f"  items and sources written in {time.perf_counter() - t0:.0f} s")
    make_readers(engine, n_readers, papers, tokens_file, rng)
    if engine.dialect.name == "postgresql":  # fresh statistics, as autovacuum would gather
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as c:
            c.execute(sa.text("ANALYZE"))


def make_readers(
    engine: sa.Engine, n_readers: int, papers: list[dict], tokens_file: Path, rng: random.Random
) -> None:
    from aggregator.accounts import builtin_topics, profiles, readers, subscriptions, topic_filters
    from aggregator.ranking import personal
    from aggregator.ranking import tfidf as rank

    t0 = time.perf_counter()
    tokens = []
    with session_factory(engine)() as s:
        builtin_topics.ensure_default_topics(s)
        s.commit()
        slugs = [t.filter.slug for t in topic_filters.list_topics(s)]
        for i in range(n_readers):
            new = readers.create_reader(s, f"reader{i}@bench.example.org")
            sample = rng.sample(papers, 3)
            profiles.update_profile(
                s,
                new.reader_id,
                interests="; ".join(p["title"] for p in sample[:2]),
                keywords=re.findall(r"[A-Za-z][A-Za-z-]{5,}", sample[2]["title"])[:3],
            )
            for slug in rng.sample(slugs, rng.randrange(0, 4)):
                subscriptions.subscribe(s, new.reader_id, slug)
            tokens.append(new.token)
        s.commit()
    tokens_file.write_text("\n".join(tokens) + "\n")
    print(f"  {n_readers} readers in {time.perf_counter() - t0:.0f} s")
    t0 = time.perf_counter()
    with session_factory(engine)() as s, s.begin():
        model = rank.refit(s, dt.datetime.combine(LAST_DAY, dt.time(23), dt.UTC), 30)
        assert model is not None
        profiles = personal.load_profiles(s)
        rows = personal.precompute_all(
            s, model, profiles, now=dt.datetime.combine(LAST_DAY, dt.time(23), dt.UTC)
        )
    print(f"  refit on 30 days and {rows:,} reader scores in {time.perf_counter() - t0:.0f} s")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


LUA = """
local tokens = {}
for line in io.lines("%s") do tokens[#tokens + 1] = line end
math.randomseed(7)
request = function()
  local t = tokens[math.random(#tokens)]
  return wrk.format("GET", "/api/me/digest?date=%s&limit=50", {["Authorization"] = "Bearer " .. t})
end
"""


def parse_wrk(out: str) -> dict[str, float]:
    def ms(text: str) -> float:
        match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
        if match is None:
            raise ValueError(f"cannot read wrk latency {text!r} in:\n{out}")
        value, unit = match.groups()
        return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]

    # the latency distribution's lines only: "69.50%" in the thread stats must not match
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.M)
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    requests = re.search(r"(\d+) requests in", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "p50_ms": ms(p50.group(1)),
        "p99_ms": ms(p99.group(1)),
        "rps": float(rps.group(1)),  # type: ignore[union-attr]
        "requests": float(requests.group(1)) if requests else 0.0,
        "non2xx": float(non2xx.group(1)) if non2xx else 0.0,
    }


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def children(pid: int) -> list[int]:
    """The worker processes under ``pid`` (multiprocessing's resource tracker left out)."""
    out = subprocess.run(["pgrep", "-P", str(pid)], capture_output=True, text=True).stdout.split()
    return [int(p) for p in out if b"resource_tracker" not in Path(f"/proc/{p}/cmdline").read_bytes()]


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds ``pid`` has used (``/proc/PID/stat``)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def database_pids(url: str) -> list[int]:
    """PostgreSQL: the server processes serving the benchmark's database (their CPU is the
    database's share of each request); [] elsewhere."""
    if not url.startswith("postgresql"):
        return []
    engine = make_engine(url)
    try:
        with engine.connect() as c:
            found = c.execute(
                sa.text(
                    "SELECT pid FROM pg_stat_activity"
                    " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                )
            ).scalars()
            return [int(p) for p in found]
    finally:
        engine.dispose()


def _pinned(cpus: set[int] | None) -> Callable[[], None] | None:
    """A ``preexec_fn`` keeping the child (and its children) on ``cpus``; None: anywhere."""
    return None if cpus is None else (lambda: os.sched_setaffinity(0, cpus))


def run_wrk(
    url: str, tokens_file: Path, workers: int, clients: list[int], duration: str, pin: bool = False
) -> None:
    """Start the API and run wrk against it (see the module docstring). ``pin``: the API on
    CPU 0, wrk on the other CPUs, so the load generator never preempts the server."""
    cpus = sorted(os.sched_getaffinity(0))
    server_cpus, client_cpus = ({cpus[0]}, set(cpus[1:])) if pin and len(cpus) > 1 else (None, None)
    port = free_port()
    env = {
        **os.environ,
        "AGGREGATOR_DATABASE_URL": url,
        "AGGREGATOR_RATE_LIMIT": "1000000/second",
        "AGGREGATOR_LOG_LEVEL": "WARNING",
        "AGGREGATOR_FEEDS_FILE": str(ROOT / "feeds.toml"),
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "api", "--port", str(port), "--workers", str(workers)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_pinned(server_cpus),
    )
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).read()
                break
            except OSError:
                time.sleep(0.5)
        token = tokens_file.read_text().split()[0]
        req = urllib.request.Request(
            f"http://127.0.0.1:{port}/api/me/digest?date={LAST_DAY}&limit=50",
            headers={"Authorization": f"Bearer {token}"},
        )
        body = json.load(urllib.request.urlopen(req, timeout=30))
        print(
            f"  sample: {len(body['items'])} items of {body['total']} that day, profile {body.get('profile')}"
        )
        with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as lua:
            lua.write(LUA % (tokens_file, LAST_DAY))
        for c in clients:
            subprocess.run(
                ["wrk", "-t2", f"-c{c}", "-d3s", "-s", lua.name, f"http://127.0.0.1:{port}"],
                capture_output=True,
                text=True,
                preexec_fn=_pinned(client_cpus),
            )  # warm-up
            pids = children(proc.pid) if workers > 1 else [proc.pid]
            db_pids = database_pids(url)  # the workers' connections, opened in the warm-up
            cpu0 = sum(cpu_seconds(p) for p in pids)
            db0 = sum(cpu_seconds(p) for p in db_pids)
            out = subprocess.run(
                [
                    "wrk",
                    "-t2",
                    f"-c{c}",
                    f"-d{duration}",
                    "--latency",
                    "-s",
                    lua.name,
                    f"http://127.0.0.1:{port}",
                ],
                capture_output=True,
                text=True,
                preexec_fn=_pinned(client_cpus),
            ).stdout
            cpu = sum(cpu_seconds(p) for p in pids) - cpu0
            db_cpu = sum(cpu_seconds(p) for p in db_pids if Path(f"/proc/{p}").exists()) - db0
            r = parse_wrk(out)
            mem = ", ".join(f"{rss_mb(p):.0f}" for p in pids)
            n = max(r["requests"], 1.0)
            db_part = f", database {db_cpu / n * 1000:.3f} ms" if db_pids else ""
            print(
                f"  workers={workers} clients={c:>3}: p50 {r['p50_ms']:6.1f} ms  p99 {r['p99_ms']:6.1f} ms  "
                f"{r['rps']:7.0f} req/s  non-2xx {r['non2xx']:.0f}  RSS per worker {mem} MB  "
                f"CPU per request: API {cpu / n * 1000:.3f} ms{db_part}"
            )
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            for pid in children(proc.pid):
                os.kill(pid, signal.SIGKILL)
            proc.kill()
            proc.wait()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--database-url", required=True)
    ap.add_argument("--items", type=int, default=1_000_000)
    ap.add_argument("--readers", type=int, default=1000)
    ap.add_argument("--duration", default="15s")
    ap.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--clients", type=int, nargs="+", default=[10, 64])
    ap.add_argument(
        "--pin", action="store_true", help="the API on CPU 0 and wrk on the others (no preemption by wrk)"
    )
    ap.add_argument(
        "--tokens", type=Path, default=None, help="file of reader tokens (default: next to the db)"
    )
    args = ap.parse_args()
    engine = make_engine(args.database_url)
    upgrade(engine)
    digest = hashlib.sha1(args.database_url.encode()).hexdigest()[:12]
    tokens = args.tokens or Path(tempfile.gettempdir()) / f"load-tokens-{digest}.txt"
    with engine.connect() as c:
        have = c.execute(sa.select(sa.func.count()).select_from(Item)).scalar_one()
    if have < args.items or not tokens.exists():
        print(f"populating {args.database_url} with {args.items:,} items and {args.readers} readers")
        populate(engine, args.items, args.readers, tokens)
    else:
        print(f"{args.database_url}: {have:,} items already there")
    t0 = time.perf_counter()
    with session_factory(engine)() as s:  # what the worker does after each ingest
        filled = cards.fill_missing(s, limit=None)
    if filled:
        print(f"  {filled:,} item cards built in {time.perf_counter() - t0:.0f} s")
    engine.dispose()
    for w in args.workers:
        run_wrk(args.database_url, tokens, w, args.clients, args.duration, args.pin)


if __name__ == "__main__":
    main()
