"""Rescoring through the workers (SQLite and PostgreSQL): an API process that does not score
(``score_in_api=False``, as ``aggregator api`` runs) queues the reader after a vote, a
subscription or a profile change; ``jobs.rescore_requested`` (the worker's job) rescores and
empties the queue, keeping a request that arrived meanwhile."""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from test_me_api import DAY, INTERESTS, make_settings, signup
from test_readers import NOW, load_papers

from aggregator.accounts import profiles, readers, rescore_queue
from aggregator.api.app import create_app
from aggregator.config import Settings
from aggregator.ranking import similar
from aggregator.ranking import tfidf as rank
from aggregator.ranking.personal import rescore
from aggregator.store.db import session_factory
from aggregator.store.tables import Item, RescoreRequest, Score
from aggregator.worker import tasks as jobs


def _queue(engine: sa.Engine) -> dict[int, tuple[dt.datetime, dt.datetime | None, bool]]:
    with engine.connect() as c:
        rows = c.execute(sa.select(RescoreRequest)).all()
    return {r.reader_id: (r.requested_at, r.around, r.seeds) for r in rows}


@pytest.fixture
def settings(engine: sa.Engine, database_url: str, tmp_path: Path) -> Settings:
    """Settings of an API that does not score, on the real papers of 2026-06-15, ranked."""
    load_papers(engine)
    settings = make_settings(database_url, tmp_path, score_in_api=False)
    jobs.update_ranking(engine, settings, INTERESTS)
    return settings


def test_requests_replace_each_other_and_the_worker_empties_the_queue(
    engine: sa.Engine, settings: Settings
) -> None:
    with session_factory(engine)() as s, s.begin():
        a = readers.create_reader(s, "a@example.com", NOW).reader_id
        b = readers.create_reader(s, "b@example.com", NOW).reader_id
        profiles.update_profile(s, a, interests="graph neural networks")
        rescore_queue.request_rescore(s, a, seeds=True, now=NOW)
        rescore_queue.request_rescore(s, a, around=NOW, now=NOW + dt.timedelta(seconds=1))
        rescore_queue.request_rescore(s, b, now=NOW)
    queue = _queue(engine)
    assert set(queue) == {a, b}
    assert queue[a] == (NOW + dt.timedelta(seconds=1), NOW, True)  # newest wins; seeds kept
    with session_factory(engine)() as s:
        assert rescore_queue.rescore_pending(s, a)
    assert jobs.rescore_requested(engine, settings) == 2
    assert _queue(engine) == {}
    with engine.connect() as c:
        keys = set(c.execute(sa.select(Score.profile).distinct()).scalars())
    assert {f"reader:{a}", f"reader:{b}"} <= keys
    assert jobs.rescore_requested(engine, settings) == 0  # an empty queue is one query


def test_a_request_made_during_the_rescore_is_kept(engine: sa.Engine, settings: Settings) -> None:
    with session_factory(engine)() as s, s.begin():
        a = readers.create_reader(s, "a@example.com", NOW).reader_id
        rescore_queue.request_rescore(s, a, now=NOW)
    real = rescore.rescore

    voters: list[threading.Thread] = []

    def vote_again() -> None:
        with session_factory(engine)() as other, other.begin():
            rescore_queue.request_rescore(other, a, now=NOW + dt.timedelta(minutes=1))

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
    """An API that does not score, and a worker thread taking the requests every 0.2 s."""
    load_papers(engine)
    settings = make_settings(database_url, tmp_path, score_in_api=False, rescore_wait_seconds=20.0)
    jobs.update_ranking(engine, settings, INTERESTS)
    stop = threading.Event()

    def worker() -> None:
        while not stop.wait(0.2):
            jobs.rescore_requested(engine, settings)
            jobs.similar_requested(engine)

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


def test_more_like_this_is_computed_by_the_worker(api_and_worker: TestClient, engine: sa.Engine) -> None:
    client = api_and_worker
    target = client.get("/api/digest", params={"date": DAY, "limit": 1}).json()["items"][0]
    resp = client.get(f"/api/items/{target['id']}/similar", params={"limit": 8})
    assert resp.status_code == 200  # waited for the worker
    items = resp.json()["items"]
    with session_factory(engine)() as s:
        model = rank.load_model(s)
        assert model is not None
        expected = similar.compute(s, model, target["id"], k=8)
        row = similar.stored(s, target["id"])
    assert [i["id"] for i in items] == [n.item_id for n in expected] and len(items) == 8
    assert [i["score"] for i in items] == [n.score for n in expected] and items[0]["why"]
    assert row is not None and row.model_id == model.model_id and not row.requested
    assert set(items[0]) >= {"title", "url", "authors", "sources", "published", "score", "why"}
    # a new model: the old answer is served at once while a worker refreshes it
    with session_factory(engine)() as s, s.begin():
        newer = rank.refit(s, NOW, 30)
    assert newer is not None and newer.model_id != model.model_id
    again = client.get(f"/api/items/{target['id']}/similar", params={"limit": 8})
    assert [i["id"] for i in again.json()["items"]] == [i["id"] for i in items]
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with session_factory(engine)() as s:
            row = similar.stored(s, target["id"])
        if row is not None and row.model_id == newer.model_id:
            break
        time.sleep(0.1)
    assert row is not None and row.model_id == newer.model_id and not row.requested


def test_more_like_this_answers_503_while_no_worker_has_it(
    engine: sa.Engine, database_url: str, tmp_path: Path
) -> None:
    load_papers(engine)
    settings = make_settings(database_url, tmp_path, score_in_api=False, rescore_wait_seconds=0.2)
    jobs.update_ranking(engine, settings, INTERESTS)
    with TestClient(create_app(settings, engine)) as client:
        target = client.get("/api/digest", params={"date": DAY, "limit": 1}).json()["items"][0]
        resp = client.get(f"/api/items/{target['id']}/similar")
        assert resp.status_code == 503 and resp.headers["retry-after"] == "2"
        assert jobs.similar_requested(engine) == 1  # a worker comes by
        assert client.get(f"/api/items/{target['id']}/similar").status_code == 200


def test_an_item_older_than_the_window_is_compared_with_its_own_days(
    engine: sa.Engine, database_url: str, tmp_path: Path
) -> None:
    """The ranking's window follows the newest item; "more like this" of an older paper looks
    at the papers published around it instead of finding nothing."""
    load_papers(engine, ("2026-06-12", "2026-06-15"))
    load_papers(engine, ("2026-06-26",), feed="arXiv cs.CV")  # the window: 27 May .. 26 Jun
    settings = make_settings(database_url, tmp_path)
    jobs.update_ranking(engine, settings, INTERESTS)
    with session_factory(engine)() as s:
        model = rank.load_model(s)
        assert model is not None
        s.execute(sa.update(Item).where(Item.published > NOW).values(published=NOW + dt.timedelta(days=60)))
        old = s.scalar(sa.select(Item.id).where(Item.published < NOW).order_by(Item.id).limit(1))
        assert old is not None
        found = similar.compute(s, model, old, k=20)
        published = dict(
            s.execute(sa.select(Item.id, Item.published).where(Item.id.in_([n.item_id for n in found]))).all()
        )
    assert len(found) == 20 and all(
        abs(p - NOW) <= dt.timedelta(days=similar.AROUND_DAYS) for p in published.values()
    )
