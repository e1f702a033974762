"""Trend benchmarks and the validation report on real data. Prints numbers; never fails on speed.

    .venv/bin/python bench/trends.py [--db URL] [--skip-million] [--skip-api] [--repeat 3] [--requests 2000]

``--db`` takes a SQLite URL or a PostgreSQL URL of a database you created for this (it is filled
and, with ``--repeat``, copied as a template: never the test suite's ``test`` database).

1. Loads the real bulk arXiv papers (../shared/data/bulk/daily-arxiv-ai-enhanced, the dw-dengwei
   days from 2026-04-01 to 2026-06-28: sampled days before June, every day in June) into a fresh
   database through the normal ingest path (``write_entries``), calling
   ``trends.update_counts`` after each day's ingest, as the scheduler does.
2. Prints the top rising terms of the week ending 2026-06-28 against the 56 days before, with
   each scope's number of tested terms (the false-discovery-rate family) and each term's q-value.
3. Incremental update: 2,000 real papers of older (2025) days, re-dated to 2026-06-29, are
   ingested; the time of ``update_counts`` on them is printed (best and median of ``--repeat``
   runs, each on a fresh copy of the loaded database: a SQLite file copy, or a PostgreSQL
   database created from it as a template), with its parts (tokenising, term ids, the rest), then
   of ``refresh_results`` (5 scopes, all recomputed) and of a second ``refresh_results`` right
   after (nothing changed, so every scope is kept).
4. GET /api/trends latency: N requests through a real uvicorn on loopback (httpx client,
   keep-alive), p50/p99 printed; then GET /api/trends/series for the listed terms of every
   scope (weekly points over a year) after one warm-up pass, and the first two-year monthly
   series (day rows not yet cached).
5. One million items (a corpus of counts, not of items): every distinct real paper of the bulk
   days 2025-01-01..2026-07-01 (about 18,400 papers) has its term set extracted once with
   ``trends.extract_terms`` and gets term ids. 500 synthetic days ending 2026-06-28 of 2,000
   items each are drawn by resampling those real papers uniformly with replacement (numpy seed
   1), so every real paper occurs about 54 times; per day and scope (``all`` and each followed
   category the paper is listed in; no blog posts) the document frequencies are exactly the
   ``np.bincount`` of the drawn papers' term ids, packed with ``trends.pack_counts`` into
   ``term_counts`` (one row per scope and day, as ``update_counts`` writes them), with
   ``trend_day_totals`` and the ``terms`` dictionary (first day per scope) written to match.
   Three terms are injected in ``all``: ``quantum token routing`` (absent, then 2 % of the last
   week's items), ``sparse reward distillation`` and ``hyperbolic kv cache`` (0.3 % of items
   every day, then 2 % in the last week). Since the papers are drawn uniformly, nothing else
   rises: the injected terms are the only right answer (the ``top:`` lists printed). Generation
   (about a minute, SQLite file ≈ 150 MB) is not timed. Timed: ``compute_report`` (7 d / 56 d)
   for ``all`` and each category, and ``refresh_results`` for the 5 scopes. The ``items`` table
   is empty in this database, so the window-item part (labels, examples, blog attention,
   coined-name check for single words) runs on no items: single words without a digit are not
   testable and examples are empty — that part is measured in steps 1 and 3 (it reads only the
   window's items). The temporary files are deleted at the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import random
import shutil
import socket
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path

import numpy as np
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

from conftest import bulk_papers, paper_entry  # noqa: E402
from sqlalchemy.engine import make_url  # noqa: E402

from aggregator import trends  # noqa: E402
from aggregator.feeds.ingest import write_entries  # noqa: E402
from aggregator.store.db import insert, make_engine, session_factory, upgrade  # noqa: E402
from aggregator.store.tables import Feed  # noqa: E402
from aggregator.store.trends_tables import DayTotal, Term, TermCount, TrendLexicon  # noqa: E402
from aggregator.trends import counts, lexicon  # noqa: E402
from aggregator.types import ParsedEntry  # noqa: E402

BULK = ROOT.parent / "shared" / "data" / "bulk" / "daily-arxiv-ai-enhanced"
END = dt.date(2026, 6, 28)


def load_day(day: str) -> list[dict]:
    """Real papers of one scraped day (unique ids), as the tests load them."""
    return bulk_papers(day)


def entry(paper: dict, day: str) -> ParsedEntry:
    return paper_entry(paper, day)


def make_feed(session) -> int:  # type: ignore[no-untyped-def]
    now = dt.datetime.now(dt.UTC)
    feed = Feed(url="bench://bulk", name="bulk", kind="arxiv", created_at=now, error_count=0, disabled=False)
    session.add(feed)
    session.flush()
    return feed.id


def days_between(first: str, last: str) -> list[str]:
    return sorted(
        p.stem.removeprefix("dw-dengwei-")
        for p in BULK.glob("dw-dengwei-*.jsonl")
        if first <= p.stem.removeprefix("dw-dengwei-") <= last
    )


def print_table(report: trends.TrendReport, limit: int = 20) -> None:
    print(
        f"\nTop rising terms, scope={report.scope}, week {report.window_start}..{report.end} "
        f"({report.window_docs} items) vs {report.baseline_days} days before ({report.baseline_docs} items)"
    )
    print(
        f"{report.tested} terms tested, {len(report.terms)} rising at a false discovery rate of "
        f"{trends.FDR:.0%}"
    )
    print(
        f"{'#':>2}  {'term':<34} {'G2':>8} {'win':>5} {'base':>5} {'win %':>7} {'base %':>7} {'lift':>6} "
        f"{'q':>7}  new"
    )
    for i, t in enumerate(report.terms[:limit], 1):
        print(
            f"{i:>2}  {t.label[:34]:<34} {t.g2:>8.1f} {t.window_count:>5} {t.baseline_count:>5} "
            f"{100 * t.window_share:>6.2f}% {100 * t.baseline_share:>6.2f}% {t.lift:>6.1f} "
            f"{t.q_value or 0:>7.4f}  {'NEW' if t.is_new else ''}"
            + (f"  (+ {', '.join(t.variants[:3])})" if t.variants else "")
        )
    if report.new_terms:
        print("brand-new terms: " + ", ".join(f"{t.label} ({t.window_count})" for t in report.new_terms[:10]))


class Parts:
    """Wall time spent in some functions called by ``trends.counts.update_counts`` while
    installed (for the breakdown)."""

    NAMES = ("extract_terms", "_term_ids")

    def __init__(self) -> None:
        self.spent = dict.fromkeys(self.NAMES, 0.0)
        self.saved = {name: getattr(counts, name) for name in self.NAMES}

    def __enter__(self) -> Parts:
        for name, fn in self.saved.items():

            def timed(*args, _fn=fn, _name=name, **kwargs):  # type: ignore[no-untyped-def]
                t0 = time.perf_counter()
                try:
                    return _fn(*args, **kwargs)
                finally:
                    self.spent[_name] += time.perf_counter() - t0

            setattr(counts, name, timed)
        return self

    def __exit__(self, *exc: object) -> None:
        for name, fn in self.saved.items():
            setattr(counts, name, fn)


def fresh_copy(url: str, run: int) -> str:
    """A copy of the database at ``url`` (closed): a file copy for SQLite, a database created
    with the original as template on PostgreSQL. Returns its URL."""
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        source = Path(str(parsed.database))
        target = source.with_name(f"{source.stem}-run{run}.db")
        for suffix in ("", "-wal", "-shm"):
            src = Path(str(source) + suffix)
            dst = Path(str(target) + suffix)
            dst.unlink(missing_ok=True)
            if src.exists():
                shutil.copyfile(src, dst)
        return str(parsed.set(database=str(target)))
    name = f"{parsed.database}_run{run}"
    admin = make_engine(parsed.set(database="postgres").render_as_string(hide_password=False))
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        conn.exec_driver_sql(f'CREATE DATABASE "{name}" TEMPLATE "{parsed.database}"')
    admin.dispose()
    return parsed.set(database=name).render_as_string(hide_password=False)


def drop_copy(url: str) -> None:
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(str(parsed.database) + suffix).unlink(missing_ok=True)
        return
    admin = make_engine(parsed.set(database="postgres").render_as_string(hide_password=False))
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{parsed.database}"')
    admin.dispose()


def real_data(url: str, repeat: int = 3) -> None:
    engine = make_engine(url)
    upgrade(engine)
    make = session_factory(engine)
    with make() as session, session.begin():
        feed_id = make_feed(session)
    per_day = []
    for day in days_between("2026-04-01", END.isoformat()):
        entries = [entry(p, day) for p in load_day(day)]
        with make() as session, session.begin():
            summary = write_entries(session, feed_id, entries, dt.datetime.now(dt.UTC))
            t0 = time.perf_counter()
            n = trends.update_counts(session, summary.new_item_ids)
        per_day.append((day, n, time.perf_counter() - t0))
    total = sum(n for _, n, _ in per_day)
    print(
        f"loaded {len(per_day)} days, {total} new papers counted; update_counts per day: "
        f"median {np.median([s for *_, s in per_day]):.3f} s, max {max(s for *_, s in per_day):.3f} s"
    )
    with make() as session, session.begin():
        t0 = time.perf_counter()
        reports = trends.refresh_results(session, end=END)
        print(f"refresh_results (5 scopes, 7d/56d) for {END}: {time.perf_counter() - t0:.2f} s")
    for report in reports:
        print_table(report, 20 if report.scope == "all" else 10)

    # incremental update after a day's ingest of 2,000 items, on fresh copies of the database
    pool = [p for d in days_between("2025-01-01", "2025-12-31") for p in load_day(d)]
    random.Random(7).shuffle(pool)
    entries = [entry(p, "2026-06-29") for p in pool[:2000]]
    with make() as session, session.begin():
        new_ids = write_entries(session, feed_id, entries, dt.datetime.now(dt.UTC)).new_item_ids
    engine.dispose()
    runs = []
    for run in range(repeat):
        copy = fresh_copy(url, run)
        engine = make_engine(copy)
        make = session_factory(engine)
        with make() as session, session.begin(), Parts() as parts:
            t0 = time.perf_counter()
            n = trends.update_counts(session, new_ids)
            t_update = time.perf_counter() - t0
        with make() as session, session.begin():
            t0 = time.perf_counter()
            trends.refresh_results(session, end=dt.date(2026, 6, 29))
            t_refresh = time.perf_counter() - t0
        with make() as session, session.begin():
            t0 = time.perf_counter()
            trends.refresh_results(session, end=dt.date(2026, 6, 29))
            t_again = time.perf_counter() - t0
        engine.dispose()
        drop_copy(copy)
        runs.append((t_update, parts.spent["extract_terms"], parts.spent["_term_ids"], t_refresh, t_again))
        print(
            f"  run {run + 1}: update_counts {t_update:.2f} s (tokenising {runs[-1][1]:.2f} s, term ids "
            f"{runs[-1][2]:.2f} s, rest {t_update - runs[-1][1] - runs[-1][2]:.2f} s); refresh_results "
            f"{t_refresh:.2f} s, again with nothing changed {t_again:.3f} s"
        )
    best = min(runs)
    med = sorted(runs)[len(runs) // 2]
    print(
        f"\nincremental ({make_url(url).get_backend_name()}): update_counts for {n} new items of one day: "
        f"best {best[0]:.2f} s, median {med[0]:.2f} s of {len(runs)} runs "
        f"(+ refresh_results for 5 scopes: median {sorted(r[3] for r in runs)[len(runs) // 2]:.2f} s; "
        f"unchanged: {sorted(r[4] for r in runs)[len(runs) // 2]:.3f} s)"
    )


def api_latency(url: str, n_requests: int) -> None:
    import httpx
    import uvicorn

    from aggregator.api.app import create_app
    from aggregator.config import Settings

    engine = make_engine(url)
    app = create_app(Settings(database_url=url, rate_limit="1000000/second"), engine)  # no limiter
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.05)
    scopes = ["all", "cs.LG", "cs.CV", "cs.CL", "blogs"]
    times, cpu = [], []  # wall; and this process's CPU (client and server both run in it)
    with httpx.Client(base_url=f"http://127.0.0.1:{port}") as client:
        for i in range(50):  # warm-up
            client.get("/api/trends", params={"category": scopes[i % 5]})
        for i in range(n_requests):
            t0, c0 = time.perf_counter(), time.process_time()
            r = client.get(
                "/api/trends",
                params={"window": "7d", "baseline": "56d", "category": scopes[i % 5], "limit": 20},
            )
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
            assert r.status_code == 200, r.text
        # the term explorer: the shown terms of every scope plus phrases never counted, weekly
        # over the default year, after one warm-up pass (the process caches unpacked day rows)
        terms = [
            t["term"]
            for s in scopes
            for k in ("terms", "leading", "watch")
            for t in client.get("/api/trends", params={"category": s}).json().get(k, [])
        ][:60]
        terms += ["zzqx flurb", "world model", "mixture of experts", "chain of thought"]
        series_params = [
            {"term": t, "category": s, "interval": "week"} for t in terms for s in ("all", "cs.CV")
        ]
        for p in series_params:
            client.get("/api/trends/series", params=p)
        series_times, series_cpu = [], []
        for i in range(n_requests):
            t0, c0 = time.perf_counter(), time.process_time()
            r = client.get("/api/trends/series", params=series_params[i % len(series_params)])
            series_times.append(time.perf_counter() - t0)
            series_cpu.append(time.process_time() - c0)
            assert r.status_code == 200, r.text
        cold = []
        for p in series_params[:20]:  # month points over two years, first time each
            t0 = time.perf_counter()
            client.get("/api/trends/series", params={**p, "interval": "month", "from": "2024-07-01"})
            cold.append(time.perf_counter() - t0)
    server.should_exit = True
    thread.join()
    ms = np.array(times) * 1000
    print(
        f"\nGET /api/trends via uvicorn on loopback, {n_requests} sequential requests (5 scopes, limit=20): "
        f"p50 {np.percentile(ms, 50):.2f} ms, p99 {np.percentile(ms, 99):.2f} ms, max {ms.max():.2f} ms; "
        f"CPU per request (client + server, one process) p50 {1000 * np.percentile(cpu, 50):.2f} ms, "
        f"p99 {1000 * np.percentile(cpu, 99):.2f} ms; load average {os.getloadavg()[0]:.1f}"
    )
    ms = np.array(series_times) * 1000
    print(
        f"GET /api/trends/series, {n_requests} sequential requests ({len(series_params)} term/scope pairs, "
        f"weekly, one year): p50 {np.percentile(ms, 50):.2f} ms, p99 {np.percentile(ms, 99):.2f} ms; "
        f"first two-year monthly series (rows not cached yet): median {1000 * np.median(cold):.0f} ms; "
        f"CPU per request p50 {1000 * np.percentile(series_cpu, 50):.2f} ms, "
        f"p99 {1000 * np.percentile(series_cpu, 99):.2f} ms"
    )
    engine.dispose()


#: Sentences that write an injected phrase into a resampled abstract, as a paper would (twice).
_INJECT_SENTENCES = (
    "We introduce {t} for compact models.",
    "Our {t} objective transfers structure.",
    "In practice, {t} is cheap to train.",
    "Experiments confirm that {t} scales.",
)


def _store_lexicon(
    engine: sa.Engine, papers: list[dict], injected: list[str], end: dt.date, rng: np.random.Generator
) -> None:
    """Learn and store the lexicon the service would learn from this corpus (the items table is
    empty here, so ``lexicon.current`` would learn from nothing and no term would be testable):
    the sample of ``lexicon.sample_texts`` — :data:`~lexicon.SAMPLE_NEWEST` texts of the newest
    days, where each injected phrase is in 2 % of the items, and :data:`~lexicon.SAMPLE_OLDER`
    evenly spaced older ones, where the second and third are in 0.3 % — drawn from the same
    real papers, an injected phrase written twice into the abstract (:data:`_INJECT_SENTENCES`).
    Not timed."""
    texts = []
    for k in range(lexicon.SAMPLE_NEWEST + lexicon.SAMPLE_OLDER):
        p = papers[int(rng.integers(0, len(papers)))]
        extra = []
        for j, t in enumerate(injected):
            rate = 0.02 if k < lexicon.SAMPLE_NEWEST else 0.003 * (j > 0)
            if rng.random() < rate:
                extra += [_INJECT_SENTENCES[(k + i) % 4].format(t=t) for i in (0, 1)]
        texts.append(trends.item_text(p["title"], " ".join([p.get("summary") or "", *extra])))
    lex = lexicon.learn(texts, end)
    print(
        f"lexicon learned from {len(texts):,} resampled texts: {len(lex.terms):,} terms; injected "
        f"phrases in it: {[t for t in injected if t in lex]}"
    )
    with session_factory(engine)() as session, session.begin():
        session.add(
            TrendLexicon(n_docs=lex.n_docs, through=end, learned_at=dt.datetime.now(dt.UTC), data=lex.pack())
        )


def million(url: str, n_days: int = 500, per_day: int = 2000) -> None:
    engine = make_engine(url)
    upgrade(engine)
    t_gen = time.perf_counter()
    papers = [p for d in days_between("2025-01-01", "2026-07-01") for p in load_day(d)]
    papers = list({p["id"]: p for p in papers}.values())
    vocab: dict[str, int] = {}
    term_ids: list[np.ndarray] = []
    scope_of: list[tuple[str, ...]] = []
    for p in papers:
        terms = trends.extract_terms(trends.item_text(p["title"], p.get("summary") or ""))
        term_ids.append(np.array([vocab.setdefault(t, len(vocab) + 1) for t in terms], dtype=np.int64))
        scope_of.append(trends.item_scopes("paper", p["categories"]))
    injected = ["quantum token routing", "sparse reward distillation", "hyperbolic kv cache"]
    for t in injected:
        vocab[t] = len(vocab) + 1
    size = len(vocab) + 1
    rng = np.random.default_rng(1)
    end = dt.date(2026, 6, 28)
    first_day = end - dt.timedelta(days=n_days - 1)
    first = {s: np.zeros(size, np.int64) for s in trends.SCOPES}  # first day (ordinal) per scope
    n_entries = 0
    with engine.begin() as conn:
        for k in range(n_days):
            day = first_day + dt.timedelta(days=k)
            picks = rng.integers(0, len(papers), per_day)
            totals: Counter[str] = Counter()
            by_scope: dict[str, list[np.ndarray]] = {}
            for i in picks:
                for s in scope_of[i]:
                    totals[s] += 1
                    by_scope.setdefault(s, []).append(term_ids[i])
            recent = (end - day).days < 7
            rows = []
            for s, arrays in by_scope.items():
                counts = np.bincount(np.concatenate(arrays), minlength=size)
                if s == "all":  # injected terms: flat 0.3 % before the last week, 2 % in it
                    for j, t in enumerate(injected):
                        counts[vocab[t]] = rng.binomial(totals[s], 0.02 if recent else 0.003 * (j > 0))
                nz = np.flatnonzero(counts)
                seen = first[s]
                seen[nz[seen[nz] == 0]] = day.toordinal()
                rows.append(
                    {"scope": s, "day": day, "n_terms": len(nz), "data": trends.pack_counts(nz, counts[nz])}
                )
                n_entries += len(nz)
            conn.execute(insert(conn, TermCount.__table__), rows)
            conn.execute(
                insert(conn, DayTotal.__table__),
                [{"scope": s, "day": day, "n_docs": n} for s, n in totals.items()],
            )
        cols = [trends.FIRST_COLUMNS[s] for s in trends.SCOPES]
        term_rows = [
            {
                "id": i,
                "term": t,
                **{c: int(first[s][i]) or None for s, c in zip(trends.SCOPES, cols, strict=True)},
            }
            for t, i in vocab.items()
        ]
        for part in range(0, len(term_rows), 50_000):
            conn.execute(insert(conn, Term.__table__), term_rows[part : part + 50_000])
    _store_lexicon(engine, papers, injected, end, rng)
    size_mb = ""
    if engine.url.get_backend_name() == "sqlite":
        with engine.connect() as conn:
            conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        size_mb = f"; SQLite file {Path(engine.url.database).stat().st_size / 1e6:.0f} MB"
    print(
        f"\n1M corpus: {n_days} days × {per_day} items = {n_days * per_day:,} items resampled from "
        f"{len(papers):,} real papers; {n_entries:,} (scope, day, term) counts in "
        f"{n_days * len(trends.SCOPES[:4])} packed rows, {len(vocab):,} terms{size_mb}; "
        f"generated in {time.perf_counter() - t_gen:.0f} s (not timed below)"
    )
    make = session_factory(engine)
    with make() as session:
        for scope in ("all", "cs.LG", "cs.CV", "cs.CL"):
            t0, c0 = time.perf_counter(), time.process_time()
            report = trends.compute_report(session, end=end, scope=scope)
            took, cpu = time.perf_counter() - t0, time.process_time() - c0
            print(
                f"compute_report(scope={scope}, 7d/56d) on the 1M corpus: {took:.2f} s wall, "
                f"{cpu:.2f} s CPU; "
                f"{report.window_docs:,} window + {report.baseline_docs:,} baseline items; "
                f"top: {', '.join(t.term for t in report.terms[:6])}"
            )
        t0, c0 = time.perf_counter(), time.process_time()
        trends.refresh_results(session, end=end)
        print(
            f"refresh_results (5 scopes) on the 1M corpus: {time.perf_counter() - t0:.2f} s wall, "
            f"{time.process_time() - c0:.2f} s CPU"
        )
        session.rollback()
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", help="database URL for the real-data run (default: a temporary SQLite file)")
    parser.add_argument("--million-db", help="database URL for the 1M-item run (default: temporary SQLite)")
    parser.add_argument("--skip-million", action="store_true")
    parser.add_argument("--skip-api", action="store_true")
    parser.add_argument("--million-only", action="store_true", help="only the 1M-item run")
    parser.add_argument("--api-only", action="store_true", help="only the API latency, on --db as it is")
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--repeat", type=int, default=3, help="incremental runs on fresh copies")
    parser.add_argument("--days", type=int, default=500, help="synthetic days of 2,000 items (1M = 500)")
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="bench-trends-"))
    url = args.db or f"sqlite:///{tmp / 'real.db'}"
    if args.api_only:
        api_latency(url, args.requests)
        return
    if args.million_only:
        million(args.million_db or f"sqlite:///{tmp / 'million.db'}", n_days=args.days)
        shutil.rmtree(tmp, ignore_errors=True)
        return
    real_data(url, args.repeat)
    if not args.skip_api:
        api_latency(url, args.requests)
    if not args.skip_million:
        million(args.million_db or f"sqlite:///{tmp / 'million.db'}", n_days=args.days)
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
