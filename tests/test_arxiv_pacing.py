"""The arXiv request spacing holds for the instance, not per fetcher (issue 14 finding 7), on
SQLite and PostgreSQL, against feedreplay's request log:

* ten readers saving seed papers at once, through the HTTP API of a real uvicorn, send their
  arXiv API requests one at a time, each at least the configured interval after the previous;
* a seed the API has no entry for is remembered: saving it again asks nothing;
* two processes sharing the database take turns, never closer than the interval.
"""

from __future__ import annotations

import datetime as dt
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
import sqlalchemy as sa
from conftest import ROOT, Replay, bulk_papers
from fastapi.testclient import TestClient
from helpers import serve
from test_me_api import INTERESTS, make_settings
from test_readers import load_papers

from aggregator.api.app import create_app
from aggregator.config import Settings
from aggregator.store.db import session_factory
from aggregator.store.tables import ArxivNotFound, Item
from aggregator.worker import backfill
from aggregator.worker import tasks as jobs

#: a shorter spacing than arXiv's 3 s (AGGREGATOR_ARXIV_DELAY_SECONDS), to keep the test short
INTERVAL = 0.5
#: well-formed arXiv ids that feedreplay's API has no paper for
UNKNOWN = ["2312.99991", "2312.99992"]


def _api_times(replay: Replay) -> list[float]:
    return sorted(r["time"] for r in replay.log() if r["path"].startswith("/api/query"))


def _gaps(times: list[float]) -> list[float]:
    return [round(b - a, 3) for a, b in zip(times, times[1:], strict=False)]


def _settings(replay: Replay, database_url: str, tmp_path: Path) -> Settings:
    return make_settings(
        database_url,
        tmp_path,
        arxiv_api_url=replay.url("/api/query"),
        arxiv_delay_seconds=INTERVAL,
        total_timeout_seconds=10,
    )


@pytest.mark.slow
def test_concurrent_profile_saves_share_one_arxiv_spacing(
    replay: Replay, engine: sa.Engine, database_url: str, tmp_path: Path
) -> None:
    load_papers(engine)
    known = [p["id"] for p in bulk_papers("2026-06-12")[:10]]  # not stored; the API has them
    settings = _settings(replay, database_url, tmp_path)
    jobs.update_ranking(engine, settings, INTERESTS)
    with serve(settings, engine) as base, httpx.Client(base_url=base, timeout=60) as http:
        tokens = []
        for i in range(10):
            resp = http.post("/api/readers", json={"email": f"r{i}@example.com"})
            assert resp.status_code == 201, resp.text
            tokens.append({"Authorization": f"Bearer {resp.json()['token']}"})
        replay.log(clear=True)
        barrier = threading.Barrier(10)
        answers: list[int] = []

        def save(i: int) -> None:
            barrier.wait()
            seeds = [known[i], *UNKNOWN]
            resp = http.put("/api/me/profile", headers=tokens[i], json={"seed_papers": seeds})
            answers.append(resp.status_code)

        threads = [threading.Thread(target=save, args=(i,)) for i in range(10)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert answers == [200] * 10
        # the fetches run after the answers (background tasks): wait for every seed to arrive
        deadline = time.monotonic() + 120
        with session_factory(engine)() as s:
            while s.scalar(sa.select(sa.func.count()).where(Item.arxiv_id.in_(known))) < 10:
                assert time.monotonic() < deadline, "seed papers not fetched within 120 s"
                time.sleep(0.2)
                s.rollback()
    times = _api_times(replay)
    assert len(times) == 10, times  # one request per save (its seed, and the unknown ids if new)
    assert min(_gaps(times)) >= INTERVAL, _gaps(times)
    with session_factory(engine)() as s:
        assert set(s.scalars(sa.select(ArxivNotFound.arxiv_id))) == set(UNKNOWN)

    # the same unknown seeds saved again: remembered as not found, no request
    replay.log(clear=True)
    with TestClient(create_app(settings, engine)) as client:  # runs background tasks before returning
        resp = client.put("/api/me/profile", headers=tokens[0], json={"seed_papers": [known[0], *UNKNOWN]})
        assert resp.status_code == 200 and resp.json()["seed_papers_pending"] == UNKNOWN
        resp = client.put("/api/me/profile", headers=tokens[1], json={"seed_papers": UNKNOWN})
        assert resp.status_code == 200
    assert _api_times(replay) == []
    report = backfill.fetch_papers(engine, settings, [known[0], *UNKNOWN])
    assert report.pages == 0 and report.not_found == UNKNOWN and report.done


def test_unknown_ids_are_asked_again_after_a_day(
    replay: Replay, engine: sa.Engine, database_url: str, tmp_path: Path
) -> None:
    settings = _settings(replay, database_url, tmp_path)
    first = backfill.fetch_papers(engine, settings, UNKNOWN)
    assert first.pages == 1 and first.not_found == UNKNOWN and first.new_items == 0
    assert backfill.fetch_papers(engine, settings, UNKNOWN).pages == 0
    with session_factory(engine)() as s, s.begin():
        day_ago = dt.datetime.now(dt.UTC) - backfill.NOT_FOUND_TTL - dt.timedelta(minutes=1)
        s.execute(sa.update(ArxivNotFound).values(checked_at=day_ago))
    assert backfill.fetch_papers(engine, settings, UNKNOWN).pages == 1
    assert len(_api_times(replay)) == 2


_TAKER = """
import asyncio, sys, time
from aggregator.config import Settings
from aggregator.feeds.fetch import Fetcher
from aggregator.store.db import make_engine

url, api, start = sys.argv[1], sys.argv[2], float(sys.argv[3])
settings = Settings(database_url=url, arxiv_delay_seconds={interval}, total_timeout_seconds=10)
engine = make_engine(url)

async def main():
    async with Fetcher(settings, engine=engine) as fetcher:
        for n in range(3):
            result = await fetcher.fetch(f"{{api}}?id_list=2312.9999{{n}}&me={{sys.argv[4]}}", arxiv=True)
            assert result.ok, result.error

time.sleep(max(0.0, start - time.time()))  # both processes start together
asyncio.run(main())
"""


@pytest.mark.slow
def test_two_processes_take_turns_through_the_database(
    replay: Replay, database_url: str, tmp_path: Path
) -> None:
    script = tmp_path / "taker.py"
    script.write_text(_TAKER.format(interval=INTERVAL))
    start = time.time() + 3  # after both interpreters have imported the package
    procs = [
        subprocess.Popen(
            [sys.executable, str(script), database_url, replay.url("/api/query"), str(start), name],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for name in ("a", "b")
    ]
    for p in procs:
        out, _ = p.communicate(timeout=120)
        assert p.returncode == 0, out
    log = sorted((r["time"], r["path"]) for r in replay.log() if r["path"].startswith("/api/query"))
    assert len(log) == 6
    assert {path.rsplit("=", 1)[1] for _, path in log} == {"a", "b"}
    assert min(_gaps([t for t, _ in log])) >= INTERVAL, _gaps([t for t, _ in log])


def test_every_worker_fetcher_takes_the_instance_wide_turn() -> None:
    """Backfill, seed papers, library imports, enrichment and the feed refresh build their
    Fetcher with the engine, so their arXiv requests take the database turn. (A reader's feed
    URL checked once by added_feeds.probe takes the process-wide turn only.)"""
    import ast

    calls = []
    for path in sorted((ROOT / "aggregator" / "worker").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "Fetcher":
                calls.append((path.name, node.lineno, {k.arg for k in node.keywords}))
    assert len(calls) >= 4
    assert [c for c in calls if "engine" not in c[2]] == []
