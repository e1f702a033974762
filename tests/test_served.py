"""The served digest and item cards, on real arXiv papers (SQLite and PostgreSQL).

``GET /api/me/digest`` is served from stored cards and precomputed scores
(:mod:`aggregator.digest.served`); the pages and the Atom feed read the same digest through
:func:`aggregator.digest.personal.reader_digest`. These tests check that the two agree field for field
(votes, muted items, topic labels, several days, small limits), that the served body matches
the documented schema, and that cards go stale whenever what they show changes (an update, a
cross-list, a new paper ↔ post link) and are rebuilt by the worker; an API process serves a
changed card within ``served_cache.CARD_TTL`` seconds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime as dt
import json
import threading
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import pytest
import sqlalchemy as sa
from conftest import bulk_papers, paper_entry
from fastapi.testclient import TestClient
from helpers import add_feed
from test_me_api import DAY, INTERESTS, make_settings, signup
from test_paging import app_on_two_days
from test_readers import NOW, load_papers

from aggregator.accounts import profiles, readers, subscriptions
from aggregator.api import fastlane
from aggregator.api.app import create_app
from aggregator.api.me_schemas import ReaderDigestResponse
from aggregator.api.reader_paging import paged_reader_response
from aggregator.config import FeedConfig
from aggregator.digest import cards, row_source, served, served_cache
from aggregator.digest.filters import DigestFilters
from aggregator.feeds import paper_links as links
from aggregator.feeds.ingest import sync_feeds, write_entries
from aggregator.ranking.personal import rescore
from aggregator.store import read_connection
from aggregator.store.db import session_factory
from aggregator.store.tables import Feed, Item
from aggregator.types import ParsedEntry
from aggregator.worker import tasks as jobs


@pytest.fixture
def client(
    request: pytest.FixtureRequest, engine: sa.Engine, database_url: str, tmp_path: Path
) -> Iterator[TestClient]:
    yield from app_on_two_days(request, engine, database_url, tmp_path)


def _general(client: TestClient, auth: dict[str, str], **params: object) -> dict:
    """The same digest through the general path (the pages' and Atom feed's), as JSON."""
    state = client.app.state  # type: ignore[attr-defined]
    with state.sessionmaker() as s:
        reader = readers.reader_for_token(s, auth["Authorization"].split()[1])
        assert reader is not None
    day = dt.date.fromisoformat(str(params["date"])) if "date" in params else None
    answer = paged_reader_response(
        SimpleNamespace(app=client.app),  # type: ignore[arg-type]
        reader.id,
        day,
        int(params.get("days", 1)),
        int(params.get("limit", 50)),
        None,
        None,
        DigestFilters(),
    )
    return json.loads(answer.model_dump_json())


def _served(client: TestClient, auth: dict[str, str], **params: object) -> dict:
    resp = client.get("/api/me/digest", headers=auth, params=params)
    assert resp.status_code == 200, resp.text
    ReaderDigestResponse.model_validate_json(resp.content)  # the documented shape, strictly
    return resp.json()


def _same(a: dict, b: dict) -> None:
    """Two digest answers agree: header fields, and every item field for field (datetimes
    compared as instants, since two serialisers may spell UTC differently)."""
    assert {k: v for k, v in a.items() if k != "items"} == {k: v for k, v in b.items() if k != "items"}
    assert [i["id"] for i in a["items"]] == [i["id"] for i in b["items"]]
    for x, y in zip(a["items"], b["items"], strict=True):
        assert set(x) == set(y)
        for key in x:
            if key == "published":
                assert dt.datetime.fromisoformat(x[key]) == dt.datetime.fromisoformat(y[key])
            else:
                assert x[key] == y[key], (key, x["id"])


def test_served_digest_equals_the_general_path(client: TestClient) -> None:
    auth, _ = signup(client, "s@example.com")
    for slug in ("llm-reasoning", "agents"):
        assert client.post("/api/me/subscriptions", headers=auth, json={"topic": slug}).status_code == 201
    put = client.put(
        "/api/me/profile",
        headers=auth,
        json={"interests": "reasoning in large language models", "followed_authors": ["Yang Liu"]},
    )
    assert put.status_code == 200
    first = _served(client, auth, date=DAY)
    assert first["profile"].startswith("reader:")
    liked, disliked = first["items"][3]["id"], first["items"][5]["id"]
    for item_id, value in ((liked, 1), (disliked, -1)):
        assert client.post(
            "/api/me/feedback", headers=auth, json={"item_id": item_id, "value": value}
        ).is_success
    for params in (
        {"date": DAY},
        {"date": DAY, "limit": 7},
        {"date": DAY, "days": 4, "limit": 120},
        {"date": "2026-06-12", "limit": 500},
        {},  # the latest day with items
    ):
        served_body = _served(client, auth, **params)
        _same(served_body, _general(client, auth, **params))
    body = _served(client, auth, date=DAY, limit=200)
    votes = {i["id"]: i["feedback"] for i in body["items"]}
    assert (
        votes.get(liked) == 1 and votes.get(disliked, -1) == -1 and sum(v != 0 for v in votes.values()) <= 2
    )
    assert any(i["topics"] for i in body["items"]), "real papers of the day match the LLM topic filters"
    # the whole day, not only the precomputed rows (issue 13)
    # (a 👎'd item is hidden and counted, issue 17)
    assert body["total"] == len(bulk_papers(DAY)) == len(body["items"]) + body["hidden"]
    assert body["next_cursor"] is None and body["hidden"] >= 1


def test_muted_items_are_hidden_and_counted_alike(client: TestClient) -> None:
    auth, _ = signup(client, "m@example.com")
    assert client.put(
        "/api/me/profile", headers=auth, json={"interests": "language model reasoning"}
    ).is_success
    before = _served(client, auth, date=DAY, limit=40)
    muted_word = "reasoning"
    hit = [i for i in before["items"] if muted_word in i["title"].lower()]
    assert len(hit) >= 5, "the day's top items for this profile are about reasoning"
    assert client.put("/api/me/profile", headers=auth, json={"muted": [muted_word]}).is_success
    after = _served(client, auth, date=DAY, limit=40)
    assert after["hidden"] >= len(hit)
    assert not [i for i in after["items"] if muted_word in i["title"].lower()]
    _same(after, _general(client, auth, date=DAY, limit=40))


def test_unsubscribed_topic_labels_disappear_at_once(client: TestClient) -> None:
    auth, _ = signup(client, "u@example.com")
    assert (
        client.post("/api/me/subscriptions", headers=auth, json={"topic": "llm-reasoning"}).status_code == 201
    )
    labelled = [i for i in _served(client, auth, date=DAY, limit=200)["items"] if i["topics"]]
    assert labelled and all(i["topics"] == ["llm-reasoning"] for i in labelled)
    # the subscription goes, the stored rows still name the topic until the next rescore
    state = client.app.state  # type: ignore[attr-defined]
    with state.sessionmaker() as s, s.begin():
        rid = readers.reader_for_token(s, auth["Authorization"].split()[1]).id  # type: ignore[union-attr]
        subscriptions.unsubscribe(s, rid, "llm-reasoning")
    assert not [i for i in _served(client, auth, date=DAY, limit=200)["items"] if i["topics"]]


def test_new_reader_falls_back_and_auth_is_checked(client: TestClient) -> None:
    auth, _ = signup(client, "n@example.com")
    body = _served(client, auth, date=DAY, limit=5)
    assert body["profile"] == "default" and len(body["items"]) == 5 and body["hidden"] == 0
    assert client.get("/api/me/digest").status_code == 401
    wrong = client.get("/api/me/digest", headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401 and wrong.headers["www-authenticate"].startswith("Bearer")
    assert client.get("/api/me/digest", headers=auth, params={"limit": 0}).status_code == 422
    assert client.get("/api/me/digest", headers=auth, params={"date": "2026-13-01"}).status_code == 422


def test_no_digest_query_runs_twice_for_one_request(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An unknown token, or a reader without scores, passes the fast lane on to the route, which
    reuses what the lane read (the reader and their scores) instead of reading it again."""
    calls: list[str] = []
    real = served.serve_digest

    async def counted(*args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append("serve_digest")
        return await real(*args, **kwargs)

    monkeypatch.setattr(served, "serve_digest", counted)
    auth, _ = signup(client, "n@example.com")  # no precomputed scores: the general path answers
    for headers, status in (({"Authorization": "Bearer nope"}, 401), (auth, 200)):
        calls.clear()
        answer = client.get("/api/me/digest", headers=headers, params={"date": DAY, "limit": 5})
        assert answer.status_code == status
        assert calls == ["serve_digest"]


# --- cards ------------------------------------------------------------------------------------


def _card(engine: sa.Engine, item_id: int) -> dict | None:
    with engine.connect() as c:
        text = c.execute(sa.select(Item.card).where(Item.id == item_id)).scalar()
    return None if text is None else json.loads(text)


def test_cards_go_stale_on_every_change_they_show(engine: sa.Engine) -> None:
    papers = bulk_papers("2026-06-15")[:30]
    with session_factory(engine)() as s, s.begin():
        lg = add_feed(s, "arXiv cs.LG", "http://127.0.0.1:9/rss/cs.LG")
        write_entries(s, lg, [paper_entry(p, "2026-06-15") for p in papers], NOW)
    assert jobs.fill_cards(engine) == 30
    assert jobs.fill_cards(engine) == 0  # nothing stale any more
    with engine.connect() as c:
        ids = dict(c.execute(sa.select(Item.arxiv_id, Item.id)).all())
    first = ids[papers[0]["id"]]
    card = _card(engine, first)
    assert card is not None and card["sources"] == ["arXiv cs.LG"] and card["discussed_in"] == 0
    assert (
        card["title"] == " ".join(papers[0]["title"].split()) and card["published"] == "2026-06-15T04:00:00Z"
    )

    # a cross-list by a second feed: the card must list both feeds
    with session_factory(engine)() as s, s.begin():
        cv = add_feed(s, "arXiv cs.CV", "http://127.0.0.1:9/rss/cs.CV")
        write_entries(s, cv, [paper_entry(papers[0], "2026-06-15", announce_type="cross")], NOW)
    assert _card(engine, first) is None and _card(engine, ids[papers[1]["id"]]) is not None
    # a replacement (v2, new title): stale as well
    v2 = paper_entry(papers[1], "2026-06-15", version=2, announce_type="replace")
    v2 = dataclasses.replace(v2, title="A new title for version two")
    with session_factory(engine)() as s, s.begin():
        write_entries(s, lg, [v2], NOW)
    assert _card(engine, ids[papers[1]["id"]]) is None
    # a blog post linking a paper: its "discussed in" count changes
    post = ParsedEntry(
        kind="post",
        key="https://blog.example.org/p1",
        title="What we read this week",
        url="https://blog.example.org/p1",
        authors=(),
        summary=f"We liked https://arxiv.org/abs/{papers[2]['id']} a lot.",
        published=NOW,
    )
    with session_factory(engine)() as s, s.begin():
        blog = add_feed(s, "A blog", "http://127.0.0.1:9/blog.xml", kind="blog")
        new = write_entries(s, blog, [post], NOW).new_item_ids
        assert links.link_items(s, new) == 1
    assert _card(engine, ids[papers[2]["id"]]) is None
    # a stale card is built when read, without writing it
    with session_factory(engine)() as s:
        built = cards.build_cards(s, [first])[first]
    assert json.loads(built)["sources"] == ["arXiv cs.LG", "arXiv cs.CV"] and _card(engine, first) is None
    assert jobs.fill_cards(engine) == 4  # the three papers and the new post
    # a feed renamed in feeds.toml: every item it announced shows the new name
    with session_factory(engine)() as s, s.begin():
        sync_feeds(s, [FeedConfig(name="arXiv: Machine Learning", url="http://127.0.0.1:9/rss/cs.LG")], NOW)
    with engine.connect() as c:
        assert c.execute(sa.select(sa.func.count()).where(Item.card.is_(None))).scalar() == 30
    assert jobs.fill_cards(engine) == 30
    assert _card(engine, first)["sources"] == ["arXiv: Machine Learning", "arXiv cs.CV"]  # type: ignore[index]
    assert _card(engine, ids[papers[1]["id"]])["title"] == "A new title for version two"  # type: ignore[index]
    assert _card(engine, ids[papers[2]["id"]])["discussed_in"] == 1  # type: ignore[index]


def test_a_card_is_never_written_over_a_concurrent_invalidation(engine: sa.Engine) -> None:
    """The filler holds its rows (PostgreSQL: FOR UPDATE SKIP LOCKED; SQLite: the write lock)
    from reading them to writing their cards, so an ingest that changes one meanwhile waits,
    and its ``card = NULL`` lands after the filler's write, not under it."""
    papers = bulk_papers("2026-06-15")[:5]
    with session_factory(engine)() as s, s.begin():
        lg = add_feed(s, "arXiv cs.LG", "http://127.0.0.1:9/rss/cs.LG")
        write_entries(s, lg, [paper_entry(p, "2026-06-15") for p in papers], NOW)
    filler = session_factory(engine)()
    claimed = cards._claim_stale(filler, 10)
    assert len(claimed) == 5
    done = threading.Event()

    def cross_list() -> None:
        with session_factory(engine)() as s, s.begin():
            cv = add_feed(s, "arXiv cs.CV", "http://127.0.0.1:9/rss/cs.CV")
            write_entries(s, cv, [paper_entry(papers[0], "2026-06-15", announce_type="cross")], NOW)
        done.set()

    writer = threading.Thread(target=cross_list)
    writer.start()
    assert not done.wait(1.0), "the ingest must wait for the filler's rows"
    built = cards.build_cards(filler, claimed)
    filler.connection().execute(
        sa.update(Item).where(Item.id == sa.bindparam("i")).values(card=sa.bindparam("c")),
        [{"i": i, "c": t} for i, t in built.items()],
    )
    filler.commit()
    filler.close()
    writer.join(30)
    assert done.is_set()
    with engine.connect() as c:
        first = c.execute(sa.select(Item.id).where(Item.arxiv_id == papers[0]["id"])).scalar_one()
    assert _card(engine, first) is None  # the ingest's invalidation won
    assert jobs.fill_cards(engine) == 1
    assert _card(engine, first)["sources"] == ["arXiv cs.LG", "arXiv cs.CV"]  # type: ignore[index]


def test_served_json_builds_stale_cards_in_memory(
    engine: sa.Engine, database_url: str, tmp_path: Path
) -> None:
    load_papers(engine)
    settings = make_settings(database_url, tmp_path)
    jobs.update_ranking(engine, settings, INTERESTS)
    with session_factory(engine)() as s, s.begin():
        new = readers.create_reader(s, "c@example.com", NOW)
        profiles.update_profile(s, new.reader_id, interests="diffusion models for images")
    with session_factory(engine)() as s:
        assert rescore.rescore(s, new.reader_id) > 0  # type: ignore[operator]
    token_hash = readers.hash_token(new.token)

    async def serve(rows: row_source.RowSource) -> tuple[served.ReaderKey | None, served.Answer]:
        await rows.open()
        try:
            key = await served.reader_for_token_hash(rows, token_hash)
            day = dt.date(2026, 6, 15)
            return key, await served.serve_digest(rows, token_hash, settings.tz, "UTC", day, 1, 10)
        finally:
            await rows.close()

    with engine.connect() as c:  # no card was ever filled: all are built while serving
        assert c.execute(sa.select(sa.func.count()).where(Item.card.is_not(None))).scalar() == 0
    for read_connections in (0, 2):  # synchronous reads, and on PostgreSQL the async pool
        key, answer = asyncio.run(serve(row_source.row_source(engine, read_connections)))
        assert key is not None and key.id == new.reader_id and answer.reader == key
        body = answer.body
        with engine.connect() as c:
            assert c.execute(sa.select(sa.func.count()).where(Item.card.is_not(None))).scalar() == 0
    assert body is not None
    parsed = ReaderDigestResponse.model_validate_json(body)
    assert len(parsed.items) == 10 and parsed.profile == f"reader:{new.reader_id}"
    assert all(i.why and i.score > 0 for i in parsed.items)
    assert [i.score for i in parsed.items] == sorted((i.score for i in parsed.items), reverse=True)


def test_migration_0008_fills_published_of_existing_scores(tmp_path: Path) -> None:
    """An existing database keeps its scores: 0008 copies each item's publication time into
    them (and leaves every card stale, for the worker to fill)."""
    from aggregator.store.db import make_engine, upgrade

    engine = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    upgrade(engine, "0007")
    paper = bulk_papers(DAY)[0]
    with engine.begin() as c:
        c.execute(
            sa.text(
                "INSERT INTO items (key, kind, arxiv_id, title, authors, summary, categories, published,"
                " date_from_fetch, content_hash, first_seen_at, updated_at) VALUES (:k, 'paper', :a, :t,"
                " '[]', '', '[]', '2026-06-15 04:00:00.000000', 0, 'x', '2026-06-15 05:00:00.000000',"
                " '2026-06-15 05:00:00.000000')"
            ),
            {"k": f"arxiv:{paper['id']}", "a": paper["id"], "t": paper["title"]},
        )
        c.execute(
            sa.text("INSERT INTO scores (profile, item_id, score, why) VALUES ('reader:1', 1, 0.5, '[]')")
        )
    upgrade(engine)
    with session_factory(engine)() as s:
        from aggregator.store.tables import Score

        row = s.execute(sa.select(Score)).scalar_one()
        assert row.published == dt.datetime(2026, 6, 15, 4, tzinfo=dt.UTC) and row.muted is False
        assert s.execute(sa.select(Item.card)).scalar_one() is None
    assert jobs.fill_cards(engine) == 1
    engine.dispose()


# --- the fast lane ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        (b"", {"day": None, "days": 1, "limit": 50}),
        (b"date=2026-06-15&days=3&limit=7", {"day": dt.date(2026, 6, 15), "days": 3, "limit": 7}),
        (b"limit=500&days=31", {"day": None, "days": 31, "limit": 500}),
        (b"limit=007", {"day": None, "days": 1, "limit": 7}),
    ],
)
def test_plain_queries_are_taken(query: bytes, expected: dict) -> None:
    assert fastlane.plain_query(query) == expected


@pytest.mark.parametrize(
    "query",
    [
        b"limit=0",
        b"limit=501",
        b"limit=+5",
        b"limit=5.0",
        b"limit=",
        b"days=32",
        b"date=2026-13-01",
        b"date=2026-6-1",
        b"date=0",
        b"date=3000-01-01",
        b"date=1899-12-31",
        b"limit=5&limit=6",
        b"group=topic",
        b"x=1",
        b"limit=%FF",
        "date=２０２６-06-15".encode(),
    ],
)
def test_unusual_queries_go_to_fastapi(query: bytes) -> None:
    assert fastlane.plain_query(query) is None


def test_fast_lane_and_route_answer_the_same_bytes(client: TestClient) -> None:
    auth, _ = signup(client, "f@example.com")
    assert client.put("/api/me/profile", headers=auth, json={"interests": "vision transformers"}).is_success
    token = auth["Authorization"].split()[1]

    def lane(query: bytes, authorization: bytes) -> bytes | None:
        scope = {
            "type": "http",
            "method": "GET",
            "path": fastlane.PATH,
            "query_string": query,
            "headers": [(b"authorization", authorization)],
            "app": client.app,
        }
        return client.portal.call(fastlane.DigestFastLane._serve, scope)  # type: ignore[union-attr]

    body = lane(f"date={DAY}&limit=10".encode(), f"Bearer {token}".encode())
    assert body is not None
    # an unknown parameter makes the lane step aside; FastAPI's route ignores it and answers
    routed = client.get("/api/me/digest", headers=auth, params={"date": DAY, "limit": 10, "x": 1})
    assert routed.status_code == 200 and routed.content == body
    assert client.get("/api/me/digest", headers=auth, params={"date": DAY, "limit": 10}).content == body
    assert lane(f"date={DAY}".encode(), f"bearer {token}".encode()) is not None  # scheme: any case
    for authorization in (b"Bearer nope", b"Basic abc", b"Bearer", f"Token {token}".encode()):
        assert lane(b"", authorization) is None
    # a reader with no precomputed scores yet is served by the general path
    other, _ = signup(client, "g@example.com")
    assert lane(b"", other["Authorization"].encode()) is None
    assert client.get("/api/me/digest", headers=other).json()["profile"] == "default"


def test_the_held_read_connection_recovers_from_a_lost_server_connection(
    engine: sa.Engine, database_url: str
) -> None:
    """PostgreSQL restarts or drops the connection: the next digest read reconnects instead of
    failing (synchronous reads hold one connection, without the pool's liveness ping)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("a server-side disconnect needs PostgreSQL")
    reads = read_connection.ReadConnection(engine)
    pid = reads.run(lambda c: c.exec_driver_sql("SELECT pg_backend_pid()").scalar())
    with engine.connect() as other:
        assert other.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": pid}).scalar() is True
    rows = row_source.SyncRows(engine, reads)
    assert asyncio.run(served.reader_for_token_hash(rows, "0" * 64)) is None  # raw-cursor path
    assert reads.run(lambda c: c.exec_driver_sql("SELECT pg_backend_pid()").scalar()) != pid
    reads.close()


def test_the_async_pool_recovers_from_a_lost_connection_and_serves_in_arrival_order(
    engine: sa.Engine, database_url: str
) -> None:
    """PostgreSQL's async read pool (:class:`aggregator.digest.row_source.PoolRows`): a request
    finding its connection dropped is retried on a new one; with one connection, concurrent
    requests get it in the order they asked (none is overtaken by a later one)."""
    if not database_url.startswith("postgresql"):
        pytest.skip("the async pool is PostgreSQL's")
    pid_query = sa.text("SELECT pg_backend_pid()")

    async def scenario() -> tuple[int, int, list[str]]:
        rows = row_source.PoolRows(engine, size=1)
        await rows.open()
        try:
            first = (await rows.fetch([(pid_query, {})]))[0][0][0]
            with engine.connect() as other:
                other.execute(sa.text("SELECT pg_terminate_backend(:p)"), {"p": first})
            second = (await rows.fetch([(pid_query, {})]))[0][0][0]
            order: list[str] = []

            async def want(name: str) -> None:
                async with rows.pool.connection():
                    order.append(name)

            # the only connection is held; a request waits for it; a newcomer is scheduled
            # just before it is given back: the waiter must get it first
            async with rows.pool.connection():
                waiter = asyncio.create_task(want("waiter"))
                await asyncio.sleep(0.05)  # now waiting
                newcomer = asyncio.create_task(want("newcomer"))  # ready to run, not run yet
            await asyncio.gather(waiter, newcomer)
            return first, second, order
        finally:
            await rows.close()

    first, second, order = asyncio.run(scenario())
    assert second != first and order == ["waiter", "newcomer"]


def test_a_changed_card_is_served_within_card_ttl(
    client: TestClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Cards are cached per API process for ``served_cache.CARD_TTL`` s: a renamed feed shows at once
    on the general path, and on the served digest once the cached card expires."""
    auth, _ = signup(client, "t@example.com")
    put = client.put("/api/me/profile", headers=auth, json={"interests": "reasoning in language models"})
    assert put.status_code == 200
    before = _served(client, auth, date=DAY)
    assert before["profile"].startswith("reader:")  # precomputed: served by aggregator.digest.served
    assert before["items"] and all(i["sources"] == ["arXiv cs.LG"] for i in before["items"])
    state = client.app.state  # type: ignore[attr-defined]
    with state.sessionmaker() as s, s.begin():
        url = s.scalar(sa.select(Feed.url).where(Feed.name == "arXiv cs.LG"))
        sync_feeds(s, [FeedConfig(name="arXiv: Machine Learning", url=url)], NOW)
    general = _general(client, auth, date=DAY)
    assert all("arXiv cs.LG" not in i["sources"] for i in general["items"])
    assert _served(client, auth, date=DAY) == before  # the cached cards, for up to CARD_TTL s
    start = served_cache.clock()
    monkeypatch.setattr(served_cache, "clock", lambda: start + served_cache.CARD_TTL + 0.001)
    after = _served(client, auth, date=DAY)
    _same(after, general)
    assert all(i["sources"] == ["arXiv: Machine Learning"] for i in after["items"])


def test_synchronous_reads_answer_the_same_bytes(
    client: TestClient, engine: sa.Engine, database_url: str, tmp_path: Path
) -> None:
    """``AGGREGATOR_READ_CONNECTIONS=0`` (reads through the one held synchronous connection)
    and the default (on PostgreSQL, async connections) serve the same digest."""
    auth, _ = signup(client, "r@example.com")
    assert client.put("/api/me/profile", headers=auth, json={"interests": "speech recognition"}).is_success
    default = client.get("/api/me/digest", headers=auth, params={"date": DAY})
    assert default.status_code == 200
    is_pg = database_url.startswith("postgresql")
    assert isinstance(client.app.state.rows, row_source.PoolRows) is is_pg  # type: ignore[attr-defined]
    settings = make_settings(database_url, tmp_path).model_copy(update={"read_connections": 0})
    with TestClient(create_app(settings, engine)) as sync_client:
        assert isinstance(sync_client.app.state.rows, row_source.SyncRows)  # type: ignore[attr-defined]
        again = sync_client.get("/api/me/digest", headers=auth, params={"date": DAY})
    assert again.status_code == 200 and again.content == default.content


def test_a_served_body_is_reused_only_while_nothing_it_shows_changed(client: TestClient) -> None:
    """The process answers a reader's unchanged digest again from the body it served
    (``served_cache.Bodies``), and never once something in it changed: a read mark, a vote, a
    subscription, a rescore, a new item (the next page's snapshot bound). Each answer equals
    one built from nothing (every cache emptied) and the general path's."""
    auth, _ = signup(client, "b@example.com")
    interests = "reasoning in large language models"
    assert client.put("/api/me/profile", headers=auth, json={"interests": interests}).is_success
    params = {"date": DAY, "limit": 10}
    first = client.get("/api/me/digest", headers=auth, params=params)
    assert first.status_code == 200 and first.json()["profile"].startswith("reader:")
    assert client.get("/api/me/digest", headers=auth, params=params).content == first.content

    def fresh() -> bytes:
        reused = client.get("/api/me/digest", headers=auth, params=params).content
        served_cache.clear_caches()
        built = client.get("/api/me/digest", headers=auth, params=params).content
        assert reused == built
        _same(json.loads(built), _general(client, auth, **params))
        return built

    top = first.json()["items"][0]["id"]
    assert client.post(f"/api/me/items/{top}/read", headers=auth).is_success
    read = json.loads(fresh())
    assert read["items"][0]["id"] == top and read["items"][0]["read"] is True
    second = read["items"][1]["id"]
    assert client.post("/api/me/feedback", headers=auth, json={"item_id": second, "value": 1}).is_success
    voted = json.loads(fresh())
    assert {i["id"]: i["feedback"] for i in voted["items"]}[second] == 1
    assert (
        client.post("/api/me/subscriptions", headers=auth, json={"topic": "llm-reasoning"}).status_code == 201
    )
    assert client.put("/api/me/profile", headers=auth, json={"interests": "speech recognition"}).is_success
    rescored = json.loads(fresh())
    assert [i["id"] for i in rescored["items"]] != [i["id"] for i in voted["items"]]
    state = client.app.state  # type: ignore[attr-defined]
    with state.sessionmaker() as s, s.begin():
        feed = s.scalars(sa.select(Feed)).first()
        assert feed is not None
        later = bulk_papers("2026-06-16")[0]  # announced after the day asked for
        write_entries(s, feed.id, [paper_entry(later, "2026-06-16")], NOW)
    assert json.loads(fresh())["next_cursor"] != rescored["next_cursor"]  # a new snapshot bound
