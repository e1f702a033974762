"""How many queries one ``GET /api/me/digest`` runs, on SQLite and PostgreSQL, and that none
runs twice: every statement the database receives is recorded (SQLite's trace callback on
each connection; on PostgreSQL psycopg's sync and async cursors, so the async pool's
connections are counted as well as SQLAlchemy's), for a known reader with precomputed scores
(served by the fast lane), an unknown token (401), and a reader without scores (the general
path answers with the default profile's order)."""

from __future__ import annotations

import collections
import html
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from helpers import sign_in
from test_me_api import DAY, INTERESTS, make_settings, signup
from test_readers import load_papers

from aggregator.api.app import create_app
from aggregator.digest import served_cache
from aggregator.worker import tasks as jobs

_DATA = re.compile(r"^\s*(SELECT|WITH|INSERT|UPDATE|DELETE)\b", re.I)


class Recorder:
    """Statements received by the database while ``on`` (the data statements only: not BEGIN,
    COMMIT, SAVEPOINT or SET), each as (SQL, parameters)."""

    def __init__(self) -> None:
        self.on = False
        self.seen: list[tuple[str, str]] = []
        self.awaited = 0  # of those, run on an async connection (the pool's)

    def add(self, sql: Any, params: Any = None, awaited: bool = False) -> None:
        text = sql if isinstance(sql, str) else sql.decode() if isinstance(sql, bytes) else str(sql)
        if self.on and _DATA.match(text):
            self.seen.append((" ".join(text.split()), repr(params)))
            self.awaited += awaited


@pytest.fixture
def recorded(
    engine: sa.Engine, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[TestClient, Recorder]]:
    """The app on two days of real papers, ranked, cards filled, with every statement recorded."""
    load_papers(engine, ("2026-06-12", "2026-06-15"))
    settings = make_settings(database_url, tmp_path)
    jobs.update_ranking(engine, settings, INTERESTS)
    assert jobs.fill_cards(engine) > 0
    rec = Recorder()
    if engine.dialect.name == "sqlite":
        engine.dispose()  # every connection from here on is new, and traced

        @sa.event.listens_for(engine, "connect")
        def trace(dbapi_conn: sqlite3.Connection, _: Any) -> None:
            dbapi_conn.set_trace_callback(rec.add)

    else:
        for cls in (psycopg.Cursor, psycopg.AsyncCursor):
            real = cls.execute
            awaited = cls is psycopg.AsyncCursor

            def execute(
                self: Any,
                query: Any,
                params: Any = None,
                *a: Any,
                _real: Any = real,
                _awaited: bool = awaited,
                **k: Any,
            ) -> Any:
                rec.add(query, params, _awaited)
                return _real(self, query, params, *a, **k)

            monkeypatch.setattr(cls, "execute", execute)
    with TestClient(create_app(settings, engine)) as client:
        yield client, rec


def _one_request(
    client: TestClient, rec: Recorder, headers: dict[str, str], status: int
) -> list[tuple[str, str]]:
    rec.seen.clear()
    rec.awaited = 0
    rec.on = True
    try:
        answer = client.get("/api/me/digest", headers=headers, params={"date": DAY, "limit": 5})
    finally:
        rec.on = False
    assert answer.status_code == status, answer.text
    return list(rec.seen)


def test_no_query_runs_twice_for_one_digest_request(recorded: tuple[TestClient, Recorder]) -> None:
    """A known reader is served in one round trip (the reader with the next page's snapshot
    bound, scores fingerprint and read marks, and their ranked rows unless the body they
    would give was served already), on PostgreSQL on the async pool;
    an unknown token costs one (the route reuses what the fast lane read); a reader without
    scores goes on to the general path, which reads nothing the lane read, and no statement
    of its own twice."""
    client, rec = recorded
    pg = client.app.state.engine.dialect.name == "postgresql"  # type: ignore[attr-defined]
    known, _ = signup(client, "k@example.com")
    put = client.put("/api/me/profile", headers=known, json={"interests": "reasoning in language models"})
    assert put.status_code == 200
    first = client.get("/api/me/digest", headers=known, params={"date": DAY, "limit": 5}).json()
    assert first["profile"].startswith("reader:") and first["next_cursor"]
    fresh, _ = signup(client, "f@example.com")  # no precomputed scores
    served_cache.clear_caches()
    cold = _one_request(client, rec, known, 200)  # nothing cached: the ranked rows are read too
    assert len(cold) == len(set(cold)) and len(cold) >= (1 if pg else 2)
    runs: dict[str, list[int]] = {}
    for name, headers, status in (
        ("known", known, 200),
        ("unknown", {"Authorization": "Bearer nope"}, 401),
        ("no scores", fresh, 200),
    ):
        for _ in (1, 2):  # the second with the process's caches warm (cards, counts, rate keys)
            seen = _one_request(client, rec, headers, status)
            assert [q for q, n in collections.Counter(seen).items() if n > 1] == [], name
            runs.setdefault(name, []).append(len(seen))
            if pg and name == "known":
                assert rec.awaited == len(seen)  # all on the pool's async connections
    # warm: one statement, the reader's: their body is unchanged, so the ranked rows are not
    # read again (served_cache.Bodies); cold, PostgreSQL reads the reader and the ranked rows in one
    # statement, SQLite in two (no round trip to save), plus what the caches miss
    assert runs["known"] == [1, 1]
    # expired, nothing changed: the body is written again from the rows it was written from
    # (and the cards and counts, expired too), without reading the ranked rows again
    later = served_cache.clock() + served_cache.CACHE_TTL + 1
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(served_cache, "clock", lambda: later)
        expired = _one_request(client, rec, known, 200)
    assert expired and not [q for q, _ in expired if "scores.why" in q or "ranked" in q.lower()]
    served_cache.clear_caches()
    assert len(_one_request(client, rec, known, 200)) == len(cold)
    assert runs["unknown"][1] == 1  # the reader's statement finds no reader
    assert runs["no scores"][1] < 20


_ITEM_ID = re.compile(r'<article class="entry" id="item-(\d+)"')


def test_page_and_atom_show_what_the_api_serves(recorded: tuple[TestClient, Recorder]) -> None:
    """The reader's page and Atom feed are built from the same score rows and cards as
    ``GET /api/me/digest`` (``digest.served_views``): the same items in the same order with the
    same abstracts and why terms, the page's "more" link continuing exactly where the API's
    ``next_cursor`` does, and the page reading the served statements, not the general path's."""
    client, rec = recorded
    headers, body = signup(client, "page@example.com")
    put = client.put("/api/me/profile", headers=headers, json={"interests": "reasoning in language models"})
    assert put.status_code == 200
    api = client.get("/api/me/digest", headers=headers, params={"date": DAY, "limit": 10}).json()
    assert api["profile"].startswith("reader:") and api["next_cursor"] and len(api["items"]) == 10
    ids = [it["id"] for it in api["items"]]

    sign_in(client, "page@example.com")
    rec.seen.clear()
    rec.on = True
    try:
        page = client.get("/me", params={"date": DAY, "limit": 10})
    finally:
        rec.on = False
    assert page.status_code == 200, page.text
    assert [int(i) for i in _ITEM_ID.findall(page.text)] == ids
    first = api["items"][0]
    assert first["why"] and all(html.escape(str(w["term"])) in page.text for w in first["why"])
    with client.app.state.sessionmaker() as s:  # type: ignore[attr-defined]
        abstract = s.scalar(sa.text("SELECT summary FROM items WHERE id = :i"), {"i": ids[0]})
    assert abstract and html.escape(abstract[:80]) in page.text
    sql = " ".join(q for q, _ in rec.seen)
    assert "muted_scores" in sql  # the served digest's ranked rows ...
    assert "JOIN scores AS mine" not in sql  # ... not the general path's two-tier query

    more = re.search(r'href="([^"]*cursor=[^"]+)"', page.text)
    assert more, "the page has a 'more' link"
    page2 = client.get(html.unescape(more.group(1)))
    api2 = client.get(
        "/api/me/digest", headers=headers, params={"date": DAY, "limit": 10, "cursor": api["next_cursor"]}
    ).json()
    page2_ids = [int(i) for i in _ITEM_ID.findall(page2.text)]
    assert page2_ids == [it["id"] for it in api2["items"]] and not set(page2_ids) & set(ids)

    atom = client.get(
        "/api/me/digest.atom", params={"token": body["feed_token"], "date": DAY, "days": 1, "limit": 10}
    )
    assert atom.status_code == 200
    entries = re.findall(r"<entry><id>[^<]*/api/items/(\d+)</id>", atom.text)
    assert [int(i) for i in entries] == ids
