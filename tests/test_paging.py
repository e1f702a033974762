"""Paging the digests with cursors (issue 13), on real arXiv papers, SQLite and PostgreSQL.

Every item of a day is shown exactly once, in ranked order, whatever the ``limit``; also when
papers are ingested into the same day, or the day is rescored, between two pages. Filters keep
only what they say. A forged cursor, or one made for other parameters, is a 422.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import bulk_papers, paper_entry, populated_database
from fastapi.testclient import TestClient
from test_me_api import DAY, make_settings, ranked_papers, signup
from test_readers import NOW

from aggregator.api.app import create_app
from aggregator.config import Interests
from aggregator.feeds.ingest import write_entries
from aggregator.store.db import session_factory
from aggregator.store.tables import Feed, Item
from aggregator.worker import tasks as jobs


def two_days_ranked(engine: sa.Engine) -> None:
    """Two days of real papers (2026-06-12 and -15), ranked for the default profile."""
    ranked_papers(engine, ("2026-06-12", "2026-06-15"))


def two_days_with_cards(engine: sa.Engine) -> None:
    """:func:`two_days_ranked`, with the served cards filled."""
    two_days_ranked(engine)
    assert jobs.fill_cards(engine) > 0


def app_on_two_days(
    request: pytest.FixtureRequest, engine: sa.Engine, database_url: str, tmp_path: Path
) -> Iterator[TestClient]:
    """The app on two days of real papers (2026-06-12 and -15), ranked, cards filled (built
    once a session, then copied: :func:`conftest.populated_database`); for ``client``
    fixtures."""
    populated_database(request, "two_days_with_cards", two_days_with_cards)
    settings = make_settings(database_url, tmp_path)
    with TestClient(create_app(settings, engine)) as c:
        yield c


@pytest.fixture
def client(
    request: pytest.FixtureRequest, engine: sa.Engine, database_url: str, tmp_path: Path
) -> Iterator[TestClient]:
    yield from app_on_two_days(request, engine, database_url, tmp_path)


def day_ids(engine: sa.Engine, day: str = DAY) -> set[int]:
    start = dt.datetime.fromisoformat(day + "T00:00:00+00:00")
    with session_factory(engine)() as s:
        return set(
            s.scalars(
                sa.select(Item.id).where(
                    Item.published >= start, Item.published < start + dt.timedelta(days=1)
                )
            )
        )


def pages(client: TestClient, path: str, between=None, headers=None, **params: object) -> list[list[dict]]:
    """Every page of ``path`` (``between(n)`` runs after page n)."""
    out: list[list[dict]] = []
    cursor = None
    while True:
        q = dict(params) | ({"cursor": cursor} if cursor else {})
        resp = client.get(path, params=q, headers=headers or {})
        assert resp.status_code == 200, resp.text
        body = resp.json()
        out.append(body["items"])
        assert len(body["items"]) <= int(params.get("limit", 50))
        cursor = body["next_cursor"]
        if cursor is None:
            return out
        assert body["items"], "an empty page with a next cursor"
        if between is not None:
            between(len(out))
        assert len(out) < 500


def ingest_more(engine: sa.Engine, day: str = DAY, source_day: str = "2026-06-11", n: int = 60) -> set[int]:
    """Real papers of another bulk day announced on ``day`` (a concurrent ingest)."""
    have = {p["id"] for p in bulk_papers(day)}
    fresh = [p for p in bulk_papers(source_day) if p["id"] not in have][:n]
    with session_factory(engine)() as s, s.begin():
        feed_id = s.scalar(sa.select(Feed.id).limit(1))
        summary = write_entries(s, feed_id, [paper_entry(p, day) for p in fresh], NOW)
    return set(summary.new_item_ids)


@pytest.mark.parametrize("limit", [1, 37, 500])
def test_public_digest_pages_every_item_once_in_order(
    client: TestClient, engine: sa.Engine, limit: int
) -> None:
    if limit == 1:  # one page per item: ~500 requests; a short window is enough
        full = client.get("/api/digest", params={"date": DAY, "limit": 500}).json()
        got = [i for p in pages(client, "/api/digest", date=DAY, limit=1, category="cs.RO") for i in p]
        assert [i["id"] for i in got] == [i["id"] for i in full["items"] if "cs.RO" in i["categories"]][:500]
        return
    got = [i for p in pages(client, "/api/digest", date=DAY, limit=limit) for i in p]
    ids = [i["id"] for i in got]
    assert len(ids) == len(set(ids)) and set(ids) == day_ids(engine)
    scores = [i["score"] for i in got]
    assert scores == sorted(scores, reverse=True)
    first = client.get("/api/digest", params={"date": DAY, "limit": limit}).json()
    assert first["total"] == len(ids) and [i["id"] for i in first["items"]] == ids[:limit]


def test_paging_across_a_concurrent_ingest_and_a_rescore(client: TestClient, engine: sa.Engine) -> None:
    before = day_ids(engine)
    settings = client.app.state.settings  # type: ignore[attr-defined]
    added: set[int] = set()

    def between(n: int) -> None:
        if n == 2:
            added.update(ingest_more(engine))
        if n == 4:  # a rescore with other interests reorders the day
            jobs.update_ranking(engine, settings, Interests(text="robot manipulation grasping"), refit=False)

    got = [i["id"] for p in pages(client, "/api/digest", between=between, date=DAY, limit=40) for i in p]
    assert added and len(got) == len(set(got)), "an item was shown twice"
    assert set(got) == before, "an item of the day was skipped (or a new one leaked in)"
    again = [i["id"] for p in pages(client, "/api/digest", date=DAY, limit=200) for i in p]
    assert set(again) == before | added  # a new paging sees the new papers


def test_filters_keep_what_they_say(client: TestClient, engine: sa.Engine) -> None:
    with session_factory(engine)() as s:
        rows = s.execute(sa.select(Item.id, Item.categories).where(Item.id.in_(day_ids(engine)))).all()
        feed_id = s.scalar(sa.select(Feed.id).limit(1))
    both = {r.id for r in rows if {"cs.CV", "cs.RO"} & set(r.categories)}
    cross = {r.id for r in rows if "cs.CV" in r.categories and r.categories[0] != "cs.CV"}
    assert cross, "the day has cs.CV cross-lists"
    got = [
        i["id"]
        for p in pages(client, "/api/digest", date=DAY, limit=100, category=["cs.CV", "cs.RO"])
        for i in p
    ]
    assert set(got) == both and len(got) == len(both) and cross <= set(got)
    assert {
        i["kind"] for p in pages(client, "/api/digest", date=DAY, limit=500, kind="paper") for i in p
    } == {"paper"}
    assert pages(client, "/api/digest", date=DAY, kind="post") == [[]]
    assert len(
        [i for p in pages(client, "/api/digest", date=DAY, limit=500, source=feed_id) for i in p]
    ) == len(rows)
    assert pages(client, "/api/digest", date=DAY, source=feed_id + 1000) == [[]]
    assert pages(client, "/api/digest", date=DAY, venue="NoSuchVenue") == [[]]


def test_bad_cursors_are_422(client: TestClient) -> None:
    first = client.get("/api/digest", params={"date": DAY, "limit": 10}).json()
    cursor = first["next_cursor"]
    for bad in ("x", cursor[:-3] + "AAA", "A" * 9000, cursor + "%00"):
        resp = client.get("/api/digest", params={"date": DAY, "limit": 10, "cursor": bad})
        assert resp.status_code == 422, (bad[:20], resp.text)
    other = client.get("/api/digest", params={"date": DAY, "limit": 10, "cursor": cursor, "kind": "paper"})
    assert other.status_code == 422 and "another request" in other.text
    assert client.get("/api/digest", params={"date": DAY, "limit": 5, "cursor": cursor}).status_code == 200


def _visible(engine: sa.Engine, day: str, muted: str) -> set[int]:
    import re

    word = re.compile(r"(?<![a-z0-9])" + re.escape(muted))
    with session_factory(engine)() as s:
        rows = s.execute(
            sa.select(Item.id, Item.title, Item.summary).where(Item.id.in_(day_ids(engine, day)))
        ).all()
    return {r.id for r in rows if not word.search(" ".join(f"{r.title} {r.summary}".lower().split()))}


@pytest.mark.parametrize("day", ["2026-06-12", DAY])
def test_reader_digest_is_the_whole_day_once_across_ingest_and_rescore(
    client: TestClient, engine: sa.Engine, day: str
) -> None:
    auth, _ = signup(client, "pager@example.com")
    profile = {"interests": "reinforcement learning for robot control", "muted": ["quantum"]}
    assert client.put("/api/me/profile", headers=auth, json=profile).is_success
    first = client.get("/api/me/digest", headers=auth, params={"date": day, "limit": 20}).json()
    assert first["profile"].startswith("reader:") and len(first["items"]) == 20 and first["next_cursor"]
    visible = _visible(engine, day, "quantum")
    added: set[int] = set()

    def between(n: int) -> None:
        if n == 1:
            added.update(ingest_more(engine, day))
        if n == 3:  # the reader changes their interests: their rows are rescored
            changed = {"interests": "graph neural networks", "muted": ["quantum"]}
            assert client.put("/api/me/profile", headers=auth, json=changed).is_success

    got = [
        i
        for p in pages(client, "/api/me/digest", between=between, headers=auth, date=day, limit=30)
        for i in p
    ]
    ids = [i["id"] for i in got]
    assert added and len(ids) == len(set(ids)), "an item was shown twice"
    assert set(ids) == visible, "the whole day minus the muted items, nothing ingested later"
    quiet = [i["id"] for p in pages(client, "/api/me/digest", headers=auth, date=day, limit=500) for i in p]
    assert set(quiet) == _visible(engine, day, "quantum")  # a new paging includes the new papers
    head = client.get("/api/me/digest", headers=auth, params={"date": day, "limit": 30}).json()["items"]
    assert [i["id"] for i in head] == quiet[:30]  # the served first page and the general path agree


def test_reader_digest_filters_and_plain_pages(client: TestClient, engine: sa.Engine) -> None:
    auth, _ = signup(client, "filters@example.com")
    assert client.put("/api/me/profile", headers=auth, json={"interests": "image segmentation"}).is_success
    got = [
        i
        for p in pages(client, "/api/me/digest", headers=auth, date=DAY, limit=50, category="cs.CV")
        for i in p
    ]
    assert got and all("cs.CV" in i["categories"] for i in got)
    with session_factory(engine)() as s:
        n_cv = sum(
            "cs.CV" in c for c in s.scalars(sa.select(Item.categories).where(Item.id.in_(day_ids(engine))))
        )
    assert len(got) == n_cv
    plain = pages(client, "/api/me/digest", headers=auth, date=DAY, limit=100)
    assert sum(len(p) for p in plain) == len(day_ids(engine))
