"""Several workers, one PostgreSQL: three `aggregator worker` processes and one `aggregator api`
process on loopback, against feedreplay. No feed is fetched twice at once, no two refits
overlap, every feed is ingested once, and the API serves what the workers stored."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from collections import Counter
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import Replay, _reset_postgres
from helpers import free_port
from test_pipeline_replay import _replayed_ids

from aggregator.store.db import make_engine, upgrade
from aggregator.store.tables import Feed, Item

PG = os.environ.get("AGGREGATOR_TEST_DATABASE_URL")
pytestmark = pytest.mark.skipif(
    not PG, reason="needs AGGREGATOR_TEST_DATABASE_URL (PostgreSQL); .ci/run sets it"
)


def test_three_workers_and_an_api_share_one_postgres(replay: Replay, tmp_path: Path) -> None:
    assert PG is not None
    _reset_postgres(PG)
    engine = make_engine(PG)
    upgrade(engine)
    feeds = replay.feeds_toml(tmp_path, extra='\n[interests]\ntext = "reasoning in large language models"\n')
    n_feeds = feeds.read_text().count("[[feeds]]")
    api_port = free_port()
    env = {
        **os.environ,
        "AGGREGATOR_DATABASE_URL": PG,
        "AGGREGATOR_FEEDS_FILE": str(feeds),
        "AGGREGATOR_ARXIV_DELAY_SECONDS": "0.5",
        "AGGREGATOR_SCHEDULER_TICK_SECONDS": "1",
        "AGGREGATOR_ARXIV_API_URL": replay.url("/api/query"),  # enrichment after each pass
        "AGGREGATOR_METRICS_PORT": "0",
        "AGGREGATOR_LOG_FORMAT": "json",
        "AGGREGATOR_PORT": str(api_port),
    }
    logs = [tmp_path / f"worker{i}.log" for i in range(3)]
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "aggregator", "worker"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=log.open("w"),
        )
        for log in logs
    ]
    procs.append(
        subprocess.Popen(
            [sys.executable, "-m", "aggregator", "api"],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=(tmp_path / "api.log").open("w"),
        )
    )
    try:
        deadline = time.monotonic() + 90
        done = False
        while time.monotonic() < deadline and not done:
            time.sleep(1)
            with engine.connect() as c:
                fetched = c.execute(
                    sa.select(sa.func.count()).select_from(Feed).where(Feed.last_status.is_not(None))
                ).scalar_one()
                refits = sum(log.read_text().count("refit finished") for log in logs)
                unenriched = c.execute(
                    sa.select(sa.func.count()).where(Item.kind == "paper", Item.enriched_at.is_(None))
                ).scalar_one()
                done = fetched == n_feeds and refits >= 1 and unenriched == 0
        time.sleep(3)  # let any pass already under way finish, then look
        assert done, [log.read_text()[-1500:] for log in logs]
        with urllib.request.urlopen(
            f"http://127.0.0.1:{api_port}/api/digest?date=2026-06-15", timeout=10
        ) as r:
            digest = json.load(r)
        _reader_rescored_by_the_workers(f"http://127.0.0.1:{api_port}", procs[-1].pid)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(timeout=30)

    requests = [r["path"] for r in replay.log() if not r["path"].startswith("/_replay")]
    counts = Counter(r for r in requests if not r.startswith("/api/query"))
    assert len(counts) == n_feeds and set(counts.values()) == {1}, counts  # each feed fetched exactly once
    asked = [
        i
        for r in requests
        if r.startswith("/api/query")
        for i in urllib.parse.parse_qs(urllib.parse.urlsplit(r).query)["id_list"][0].split(",")
    ]
    assert len(asked) == len(set(asked)) == len(_replayed_ids(replay))  # enriched once, under the lease

    spans = []
    for log in logs:
        for line in log.read_text().splitlines():
            if line.startswith("{") and "refit finished" in line:
                rec = json.loads(line)
                spans.append((rec["started"], rec["finished"]))
    spans.sort()
    assert spans and all(a[1] <= b[0] for a, b in zip(spans, spans[1:], strict=False)), spans  # never overlap

    with engine.connect() as c:
        papers = set(c.execute(sa.select(Item.arxiv_id).where(Item.kind == "paper")).scalars())
        assert papers == _replayed_ids(replay)  # every paper once, though three workers ran
        assert (
            c.execute(sa.select(sa.func.count()).select_from(Feed).where(Feed.error_count > 0)).scalar_one()
            == 0
        )
    assert digest["total"] > 100 and digest["items"][0]["score"] > 0 and digest["items"][0]["why"]
    engine.dispose()


def _call(base: str, method: str, path: str, token: str | None = None, body: object = None) -> dict:
    headers = {"Content-Type": "application/json"}
    if token:
        headers["Authorization"] = f"Bearer {token}"
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(base + path, data=data, method=method, headers=headers)
    with urllib.request.urlopen(req, timeout=30) as r:
        return json.load(r) if r.status != 204 else {}


def _reader_rescored_by_the_workers(base: str, api_pid: int) -> None:
    """`aggregator api` never scores: a new reader's 👍 is rescored by the workers (the vote's
    answer waits for it), so is "more like this", and the API process never loads scikit-learn."""
    token = _call(base, "POST", "/api/readers", body={"email": "w@example.com"})["token"]
    _call(base, "PUT", "/api/me/profile", token, {"interests": "diffusion models for image generation"})
    digest = _call(base, "GET", "/api/me/digest?date=2026-06-15&limit=100", token)
    far = digest["items"][-1]
    answer = _call(base, "POST", "/api/me/feedback", token, {"item_id": far["id"], "value": 1})
    assert answer["rescored"] is None  # done by a worker, which the answer waited for
    after = _call(base, "GET", "/api/me/digest?date=2026-06-15&limit=100", token)
    assert after["profile"].startswith("reader:")  # rescored around the voted item's day
    liked = next(i for i in after["items"] if i["id"] == far["id"])
    assert liked["feedback"] == 1
    assert [i["id"] for i in after["items"]].index(far["id"]) < len(digest["items"]) - 1  # it moved up
    similar = _call(base, "GET", f"/api/items/{far['id']}/similar?limit=3")["items"]  # a worker computed it
    assert len(similar) == 3 and similar[0]["why"]
    maps = Path(f"/proc/{api_pid}/maps").read_text()
    assert "pydantic_core" in maps and "sklearn" not in maps  # the scan works; scikit-learn never loaded
