"""A profile takes effect before the answer (issue 17): after ``PUT /api/me/profile``, a
subscription or a vote returns 2xx, the reader's next digest read reflects it; a reader with
preferences is never served the ``default`` profile. Under an app that scores itself (as
``aggregator run``), an API that queues rescores for a worker (as ``aggregator api``), and the
real ``aggregator api --workers 2`` and ``aggregator worker`` processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from helpers import free_port as _free_port
from test_me_api import DAY, INTERESTS, make_settings, signup
from test_readers import load_papers
from test_rescoring import api_and_worker  # noqa: F401  (fixture)

from aggregator.api.app import create_app
from aggregator.store.db import make_engine, upgrade
from aggregator.worker import tasks as jobs

PROFILE = {"interests": "medical image segmentation of organs and tumours in CT and MRI scans"}


def _check_profile_in_effect(client: TestClient, auth: dict[str, str], reader_id: int) -> None:
    default = client.get("/api/digest", params={"date": DAY, "limit": 10}).json()["items"]
    put = client.put("/api/me/profile", headers=auth, json=PROFILE)
    assert put.status_code == 200, put.text
    got = client.get("/api/me/digest", headers=auth, params={"date": DAY, "limit": 10})
    assert got.status_code == 200 and got.json()["profile"] == f"reader:{reader_id}"
    top = got.json()["items"]
    assert "segmentation" in top[0]["title"].lower()
    assert len({i["id"] for i in top} & {i["id"] for i in default}) <= 2
    # a vote and a subscription are in effect at the next read too
    far = client.get("/api/me/digest", headers=auth, params={"date": DAY, "limit": 200}).json()["items"][150]
    vote = client.post("/api/me/feedback", headers=auth, json={"item_id": far["id"], "value": 1})
    assert vote.status_code == 200
    after = client.get("/api/me/digest", headers=auth, params={"date": DAY, "limit": 200}).json()["items"]
    assert [i["id"] for i in after].index(far["id"]) < 150
    sub = client.post("/api/me/subscriptions", headers=auth, json={"topic": "robotics"})
    assert sub.status_code == 201
    labelled = client.get("/api/me/digest", headers=auth, params={"date": DAY, "limit": 200}).json()["items"]
    assert any("robotics" in i["topics"] for i in labelled)


def test_profile_in_effect_at_once_when_the_app_scores(
    engine: sa.Engine, database_url: str, tmp_path: Path
) -> None:
    load_papers(engine)
    settings = make_settings(database_url, tmp_path)
    jobs.update_ranking(engine, settings, INTERESTS)
    with TestClient(create_app(settings, engine)) as client:
        auth, body = signup(client, "seg@example.com")
        _check_profile_in_effect(client, auth, body["id"])


def test_profile_in_effect_at_once_through_a_worker(api_and_worker: TestClient) -> None:  # noqa: F811
    auth, body = signup(api_and_worker, "seg@example.com")
    _check_profile_in_effect(api_and_worker, auth, body["id"])


def test_no_default_for_a_reader_with_a_profile_while_the_worker_is_late(
    engine: sa.Engine, database_url: str, tmp_path: Path
) -> None:
    load_papers(engine)
    settings = make_settings(database_url, tmp_path, score_in_api=False, rescore_wait_seconds=0.2)
    jobs.update_ranking(engine, settings, INTERESTS)
    with TestClient(create_app(settings, engine)) as client:
        auth, body = signup(client, "late@example.com")
        assert client.get("/api/me/digest", headers=auth, params={"date": DAY}).json()["profile"] == "default"
        put = client.put("/api/me/profile", headers=auth, json=PROFILE)
        assert put.status_code == 202  # no worker ran: the answer says so
        assert client.get("/api/me/rescore", headers=auth).json() == {"pending": True}
        got = client.get("/api/me/digest", headers=auth, params={"date": DAY})
        assert got.status_code == 202 and got.json()["profile"] == "pending" and got.json()["items"] == []
        page = client.get("/me", params={"date": DAY})  # not signed in: the page redirects
        assert page.status_code in (200, 303)
        assert jobs.rescore_requested(engine, settings) == 1  # the worker comes round
        assert client.get("/api/me/rescore", headers=auth).json() == {"pending": False}
        got = client.get("/api/me/digest", headers=auth, params={"date": DAY, "limit": 10})
        assert got.status_code == 200 and got.json()["profile"] == f"reader:{body['id']}"
        assert "segmentation" in got.json()["items"][0]["title"].lower()


def _http(method: str, url: str, body: dict | None = None, token: str | None = None) -> tuple[int, dict]:
    req = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode())
    req.add_header("Content-Type", "application/json")
    if token:
        req.add_header("Authorization", f"Bearer {token}")
    with urllib.request.urlopen(req, timeout=30) as resp:
        return resp.status, json.loads(resp.read() or b"null")


@pytest.fixture
def api_processes(tmp_path: Path) -> Iterator[str]:
    """``aggregator api --workers 2`` and ``aggregator worker`` on a ranked SQLite database."""
    url = f"sqlite:///{tmp_path / 'api.db'}"
    engine = make_engine(url)
    upgrade(engine)
    load_papers(engine)
    jobs.update_ranking(engine, make_settings(url, tmp_path), INTERESTS)
    engine.dispose()
    port = _free_port()
    env = {
        **os.environ,
        "AGGREGATOR_DATABASE_URL": url,
        "AGGREGATOR_FEEDS_FILE": str(tmp_path / "feeds.toml"),
        "AGGREGATOR_RESCORE_POLL_SECONDS": "0.2",
        "AGGREGATOR_RESCORE_WAIT_SECONDS": "30",
    }
    log = (tmp_path / "procs.log").open("w")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "aggregator", *args], env=env, stdout=log, stderr=subprocess.STDOUT
        )
        for args in (["api", "--workers", "2", "--port", str(port)], ["worker"])
    ]
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                _http("GET", base + "/api/digest?limit=1")
                break
            except OSError:
                assert time.monotonic() < deadline, (tmp_path / "procs.log").read_text()
                time.sleep(0.3)
        yield base
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait(20)


@pytest.mark.slow
def test_profile_in_effect_under_aggregator_api_with_a_worker(api_processes: str) -> None:
    base = api_processes
    _, reader = _http("POST", base + "/api/readers", {"email": "proc@example.com"})
    token = reader["token"]
    for attempt in range(3):  # each answer may come from either API worker process
        status, _ = _http("PUT", base + "/api/me/profile", {**PROFILE, "keywords": [f"k{attempt}"]}, token)
        assert status == 200
        status, got = _http("GET", base + f"/api/me/digest?date={DAY}&limit=10", token=token)
        assert status == 200 and got["profile"] == f"reader:{reader['id']}"
        assert "segmentation" in got["items"][0]["title"].lower()
