"""Rescoring through the workers (SQLite and PostgreSQL): an API process that does not score
(``score_in_api=False``, as ``aggregator api`` runs) queues the reader after a vote, a
subscription or a profile change; ``jobs.rescore_requested`` (the worker's job) rescores and
empties the queue, keeping a request that arrived meanwhile."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from test_me_api import DAY, INTERESTS, make_settings, signup
from test_readers import NOW, load_papers

from aggregator import jobs, readers
from aggregator.api.app import create_app
from aggregator.store.db import session_factory
from aggregator.store.tables import RescoreRequest, Score


def _queue(engine: sa.Engine) -> dict[int, tuple[dt.datetime, dt.datetime | None, bool]]:
    with engine.connect() as c:
        rows = c.execute(sa.select(RescoreRequest)).all()
    return {r.reader_id: (r.requested_at, r.around, r.seeds) for r in rows}


def test_requests_replace_each_other_and_the_worker_empties_the_queue(
    engine: sa.Engine, database_url: str, tmp_path: Path
) -> None:
    load_papers(engine)
    settings = make_settings(database_url, tmp_path, score_in_api=False)
    jobs.update_ranking(engine, settings, INTERESTS)
    with session_factory(engine)() as s, s.begin():
        a = readers.create_reader(s, "a@example.com", NOW).reader_id
        b = readers.create_reader(s, "b@example.com", NOW).reader_id
        readers.update_profile(s, a, interests="graph neural networks")
        readers.request_rescore(s, a, seeds=True, now=NOW)
        readers.request_rescore(s, a, around=NOW, now=NOW + dt.timedelta(seconds=1))
        readers.request_rescore(s, b, now=NOW)
    queue = _queue(engine)
    assert set(queue) == {a, b}
    assert queue[a] == (NOW + dt.timedelta(seconds=1), NOW, True)  # newest wins; seeds kept
    with session_factory(engine)() as s:
        assert readers.rescore_pending(s, a)
    assert jobs.rescore_requested(engine, settings) == 2
    assert _queue(engine) == {}
    with engine.connect() as c:
        keys = set(c.execute(sa.select(Score.profile).distinct()).scalars())
    assert {f"reader:{a}", f"reader:{b}"} <= keys
    assert jobs.rescore_requested(engine, settings) == 0  # an empty queue is one query


def test_a_request_made_during_the_rescore_is_kept(
    engine: sa.Engine, database_url: str, tmp_path: Path
) -> None:
    load_papers(engine)
    settings = make_settings(database_url, tmp_path, score_in_api=False)
    jobs.update_ranking(engine, settings, INTERESTS)
    with session_factory(engine)() as s, s.begin():
        a = readers.create_reader(s, "a@example.com", NOW).reader_id
        readers.request_rescore(s, a, now=NOW)
    real = readers.rescore

    voters: list[threading.Thread] = []

    def vote_again() -> None:
        with session_factory(engine)() as other, other.begin():
            readers.request_rescore(other, a, now=NOW + dt.timedelta(minutes=1))

    def rescore_while_voting(session, reader_id, **kw):  # type: ignore[no-untyped-def]
        # the reader votes again from another process meanwhile (on PostgreSQL that request
        # waits for the worker's row lock, on SQLite for its write)
        voters.append(threading.Thread(target=vote_again))
        voters[-1].start()
        return real(session, reader_id, **kw)

    mp = pytest.MonkeyPatch()
    mp.setattr(readers, "rescore", rescore_while_voting)
    try:
        assert jobs.rescore_requested(engine, settings) == 1
    finally:
        mp.undo()
    voters[0].join(30)
    assert _queue(engine) == {a: (NOW + dt.timedelta(minutes=1), None, False)}
    assert jobs.rescore_requested(engine, settings) == 1 and _queue(engine) == {}


@pytest.fixture
def api_and_worker(engine: sa.Engine, database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    """An API that does not score, and a worker thread taking the queue every 0.2 s."""
    load_papers(engine)
    settings = make_settings(database_url, tmp_path, score_in_api=False, rescore_wait=20.0)
    jobs.update_ranking(engine, settings, INTERESTS)
    stop = threading.Event()

    def worker() -> None:
        while not stop.wait(0.2):
            jobs.rescore_requested(engine, settings)

    thread = threading.Thread(target=worker, daemon=True)
    thread.start()
    try:
        with TestClient(create_app(settings, engine)) as client:
            yield client
    finally:
        stop.set()
        thread.join(10)


def test_votes_and_subscriptions_are_rescored_by_the_worker(
    api_and_worker: TestClient, engine: sa.Engine
) -> None:
    client = api_and_worker
    auth, body = signup(client, "q@example.com")
    before = client.get("/api/me/digest", headers=auth, params={"date": DAY, "limit": 100}).json()
    assert before["profile"] == "default"
    far = before["items"][60]
    voted = client.post("/api/me/feedback", headers=auth, json={"item_id": far["id"], "value": 1})
    assert voted.status_code == 200 and voted.json()["rescored"] is None  # the worker did it
    assert _queue(engine) == {}  # ... and the answer waited for it
    after = client.get("/api/me/digest", headers=auth, params={"date": DAY, "limit": 100}).json()
    assert after["profile"] == f"reader:{body['id']}"
    assert [i["id"] for i in after["items"]].index(far["id"]) < 60
    assert (
        client.post("/api/me/subscriptions", headers=auth, json={"topic": "llm-reasoning"}).status_code == 201
    )
    assert _queue(engine) == {}
    labelled = client.get("/api/me/digest", headers=auth, params={"date": DAY, "limit": 200}).json()["items"]
    assert any(i["topics"] == ["llm-reasoning"] for i in labelled)
    # a profile change is queued (with the seed papers to fetch) and not waited for
    put = client.put("/api/me/profile", headers=auth, json={"interests": "speech recognition"})
    assert put.status_code == 200
