"""The reader HTTP API on real arXiv papers (SQLite and PostgreSQL): sign-up, the personal
digest (fallback order, then the reader's own scores after a 👍), grouping by topic filter,
profile with seed papers fetched from the (replayed) arXiv API, email settings, feedback,
topic filters, the Atom feed, "more like this", and the OpenAPI schema."""

from __future__ import annotations

import datetime as dt
import re
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path
from tempfile import TemporaryDirectory

import feedparser
import pytest
import sqlalchemy as sa
from conftest import Replay, bulk_papers, paper_entry, populated_database
from fastapi.testclient import TestClient
from test_readers import NOW, load_papers

from aggregator.api.app import create_app
from aggregator.config import Interests, Settings
from aggregator.feeds.ingest import write_entries
from aggregator.store.db import session_factory
from aggregator.store.tables import Feed, Item
from aggregator.types import ParsedEntry
from aggregator.worker import tasks as jobs

DAY = "2026-06-15"
INTERESTS = Interests(text="large language models", keywords=("reasoning",))
ATOM = "{http://www.w3.org/2005/Atom}"


def make_settings(database_url: str, tmp_path: Path, **kw: object) -> Settings:
    feeds = tmp_path / "feeds.toml"
    feeds.write_text("")
    return Settings(database_url=database_url, feeds_file=feeds, **kw)  # type: ignore[arg-type]


def signup(client: TestClient, email: str) -> tuple[dict[str, str], dict]:
    resp = client.post("/api/readers", json={"email": email})
    assert resp.status_code == 201, resp.text
    body = resp.json()
    return {"Authorization": f"Bearer {body['token']}"}, body


def ranked_papers(engine: sa.Engine, days: tuple[str, ...] = (DAY,)) -> None:
    """The real papers of ``days`` (2026-06-15), ranked for the default profile."""
    load_papers(engine, days)
    with TemporaryDirectory() as tmp:
        url = engine.url.render_as_string(hide_password=False)
        jobs.update_ranking(engine, make_settings(url, Path(tmp)), INTERESTS)


@pytest.fixture
def client(
    request: pytest.FixtureRequest, engine: sa.Engine, database_url: str, tmp_path: Path
) -> Iterator[TestClient]:
    """The app on a database holding the real papers of 2026-06-15, ranked for the default
    profile (built once a session, then copied: :func:`conftest.populated_database`)."""
    populated_database(request, "me_api", ranked_papers)
    settings = make_settings(database_url, tmp_path)
    with TestClient(create_app(settings, engine)) as c:
        yield c


def test_signup_validates_email_and_shows_tokens_once(client: TestClient) -> None:
    _, body = signup(client, "ada@example.com")
    assert body["email"] == "ada@example.com" and body["token"] != body["feed_token"]
    assert body["feed_url"].endswith(f"/api/me/digest.atom?token={body['feed_token']}")
    dup = client.post("/api/readers", json={"email": "ADA@example.com"})
    assert dup.status_code == 409 and "already exists" in dup.json()["detail"]
    for bad in ({"email": "nope"}, {"email": ""}, {}, {"email": "a@example.com", "admin": True}):
        resp = client.post("/api/readers", json=bad)
        assert resp.status_code == 422, bad
        assert resp.json()["detail"]


def test_digest_falls_back_then_a_thumbs_up_reorders_it(client: TestClient) -> None:
    auth, _ = signup(client, "r@example.com")
    before = client.get("/api/me/digest", headers=auth, params={"date": DAY, "limit": 100}).json()
    default = client.get("/api/digest", params={"date": DAY, "limit": 100}).json()
    assert before["profile"] == "default"
    assert [i["id"] for i in before["items"]] == [i["id"] for i in default["items"]]
    assert set(before["items"][0]) >= set(default["items"][0]) | {"topics", "followed_authors", "feedback"}
    far = before["items"][60]
    resp = client.post("/api/me/feedback", headers=auth, json={"item_id": far["id"], "value": 1})
    assert resp.status_code == 200 and resp.json()["rescored"] > 0
    after = client.get("/api/me/digest", headers=auth, params={"date": DAY, "limit": 100}).json()
    assert after["profile"].startswith("reader:")
    order_before = [i["id"] for i in before["items"]]
    order_after = [i["id"] for i in after["items"]]
    assert order_after != order_before
    liked = next(i for i in after["items"] if i["id"] == far["id"])
    assert liked["feedback"] == 1
    assert order_after.index(far["id"]) < 60  # the liked item moved up
    # the default digest is not touched by a reader's vote
    assert [
        i["id"] for i in client.get("/api/digest", params={"date": DAY, "limit": 100}).json()["items"]
    ] == [i["id"] for i in default["items"]]


def test_topic_labels_and_grouping(client: TestClient) -> None:
    auth, _ = signup(client, "t@example.com")
    assert (
        client.post("/api/me/subscriptions", headers=auth, json={"topic": "llm-reasoning"}).status_code == 201
    )
    assert client.post("/api/me/subscriptions", headers=auth, json={"topic": "agents"}).status_code == 201
    subs = client.get("/api/me/subscriptions", headers=auth).json()
    assert [t["slug"] for t in subs] == ["llm-reasoning", "agents"] and all(t["subscribed"] for t in subs)
    body = client.get(
        "/api/me/digest", headers=auth, params={"date": DAY, "limit": 200, "group": "topic"}
    ).json()
    labelled = [i for i in body["items"] if i["topics"]]
    assert labelled and {t for i in labelled for t in i["topics"]} <= {"llm-reasoning", "agents"}
    groups = body["groups"]
    assert groups[-1]["topic"] is None and groups[-1]["name"] == "Other"
    for g in groups[:-1]:
        assert g["items"] and all(g["topic"] in i["topics"] for i in g["items"])
    assert client.get("/api/me/digest", headers=auth, params={"group": "nope"}).status_code == 422
    assert client.delete("/api/me/subscriptions/agents", headers=auth).status_code == 204
    assert client.delete("/api/me/subscriptions/agents", headers=auth).status_code == 404
    missing = client.post("/api/me/subscriptions", headers=auth, json={"topic": "no-such"})
    assert missing.status_code == 404 and "no-such" in missing.json()["detail"]


def test_profile_settings_and_feedback_validation(client: TestClient) -> None:
    auth, _ = signup(client, "p@example.com")
    empty = client.get("/api/me/profile", headers=auth).json()
    assert empty["interests"] == "" and empty["seed_papers"] == []
    put = client.put(
        "/api/me/profile",
        headers=auth,
        json={
            "interests": "robot learning",
            "keywords": ["manipulation"],
            "followed_authors": ["Ada Lovelace"],
        },
    )
    assert put.status_code == 200 and put.json()["keywords"] == ["manipulation"]
    got = client.get("/api/me/profile", headers=auth).json()
    assert got["interests"] == "robot learning" and got["followed_authors"] == ["Ada Lovelace"]
    for bad, where in (
        ({"seed_papers": ["not a paper"]}, "seed_papers"),
        ({"keywords": "a string"}, "keywords"),
        ({"colour": "blue"}, "colour"),
        ({"interests": "x" * 10_001}, "interests"),
    ):
        resp = client.put("/api/me/profile", headers=auth, json=bad)
        assert resp.status_code == 422 and where in str(resp.json()["detail"]), (bad, resp.text)

    settings = client.get("/api/me/settings", headers=auth).json()
    assert settings == {"weekly_email": False, "email_weekday": 0, "email_time": "08:00", "timezone": "UTC"}
    changed = client.put(
        "/api/me/settings", headers=auth, json={"weekly_email": True, "timezone": "Asia/Tokyo"}
    ).json()
    assert changed["weekly_email"] is True and changed["timezone"] == "Asia/Tokyo"
    for bad in ({"email_weekday": 9}, {"email_time": "8 o'clock"}, {"timezone": "Nowhere/Land"}):
        assert client.put("/api/me/settings", headers=auth, json=bad).status_code == 422, bad

    assert (
        client.post("/api/me/feedback", headers=auth, json={"item_id": 10**9, "value": 1}).status_code == 404
    )
    for bad in ({"item_id": 1, "value": 2}, {"item_id": "x", "value": 1}, {"value": 1}):
        assert client.post("/api/me/feedback", headers=auth, json=bad).status_code == 422


def test_seed_papers_are_fetched_from_the_arxiv_api(
    replay: Replay, engine: sa.Engine, database_url: str, tmp_path: Path
) -> None:
    load_papers(engine)
    seed = bulk_papers("2026-06-12")[0]["id"]  # an earlier day: not stored, but the API has it
    settings = make_settings(
        database_url,
        tmp_path,
        arxiv_api_url=replay.url("/api/query"),
        arxiv_delay_seconds=0.1,
        total_timeout_seconds=10,
    )
    jobs.update_ranking(engine, settings, INTERESTS)
    with TestClient(create_app(settings, engine)) as client:
        auth, _ = signup(client, "s@example.com")
        resp = client.put(
            "/api/me/profile", headers=auth, json={"seed_papers": [f"https://arxiv.org/abs/{seed}v1"]}
        )
        assert resp.status_code == 200
        assert resp.json()["seed_papers"] == [seed] and resp.json()["seed_papers_pending"] == [seed]
        # TestClient runs the background task before returning: the paper is stored now
        assert client.get("/api/me/profile", headers=auth).json()["seed_papers_pending"] == []
    with session_factory(engine)() as s:
        assert s.scalar(sa.select(Item.title).where(Item.arxiv_id == seed))
    api_calls = [r for r in replay.log() if r["path"].startswith("/api/query")]
    assert len(api_calls) == 1 and f"id_list={seed}" in api_calls[0]["path"]


def test_topic_filters_api(client: TestClient) -> None:
    a, _ = signup(client, "a@example.com")
    public = client.get("/api/topics").json()
    assert len(public) >= 8 and all(t["builtin"] and not t["mine"] for t in public)
    body = {
        "slug": "graph-nets",
        "name": "Graph nets",
        "phrases": ["graph neural network"],
        "match": "any",
        "shared": True,
    }
    created = client.post("/api/topics", headers=a, json=body)
    assert created.status_code == 201 and created.json()["mine"] and not created.json()["builtin"]
    assert client.post("/api/topics", headers=a, json=body).status_code == 409
    for bad in (
        {**body, "slug": "Bad Slug"},
        {**body, "slug": "x", "phrases": []},
        {**body, "slug": "y", "match": "most"},
        {"slug": "z"},
        {"phrases": ["x"]},  # no name: nothing to call it (or derive a slug from)
    ):
        resp = client.post("/api/topics", headers=a, json=bad)
        assert resp.status_code == 422, (bad, resp.text)
    assert client.post("/api/topics", json=body).status_code == 401
    mine = [t for t in client.get("/api/topics", headers=a).json() if t["mine"]]
    assert [t["slug"] for t in mine] == ["graph-nets"]
    upd = client.put("/api/topics/graph-nets", headers=a, json={"name": "GNNs", "phrases": ["gnn"]})
    assert upd.status_code == 200 and upd.json()["phrases"] == ["gnn"]
    assert client.get("/api/topics/graph-nets").json()["name"] == "GNNs"
    assert client.get("/api/topics/nope").status_code == 404
    assert client.delete("/api/topics/agents", headers=a).status_code == 403  # built in
    assert client.delete("/api/topics/graph-nets", headers=a).status_code == 204
    assert client.get("/api/topics/graph-nets").status_code == 404


def _add_item(engine: sa.Engine, title: str, summary: str) -> int:
    paper = bulk_papers(DAY)[0]
    entry = paper_entry(paper, DAY)
    odd = ParsedEntry(
        kind="post",
        key="https://example.com/odd-post",
        title=title,
        url="https://example.com/odd-post?a=1&b=<2>",
        authors=("Zoë <Z> & Co",),
        summary=summary,
        published=entry.published + dt.timedelta(hours=1),
    )
    with session_factory(engine)() as s, s.begin():
        feed_id = s.scalar(sa.select(Feed.id))
        write_entries(s, feed_id, [odd], NOW)  # type: ignore[arg-type]
        return int(s.scalar(sa.select(Item.id).where(Item.key == odd.key)))  # type: ignore[arg-type]


def test_atom_feed_is_valid_escaped_and_per_reader(client: TestClient, engine: sa.Engine) -> None:
    odd_title = 'Large language models <script>alert("x")</script> & reasoning \x0b ]]>'
    odd_id = _add_item(engine, odd_title, "reasoning with large language models & <tags>")
    a, body = signup(client, "feed@example.com")
    assert client.post("/api/me/feedback", headers=a, json={"item_id": odd_id, "value": 1}).status_code == 200
    resp = client.get("/api/me/digest.atom", params={"token": body["feed_token"], "limit": 500, "days": 2})
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/atom+xml")
    root = ET.fromstring(resp.content)  # well-formed XML
    assert root.tag == f"{ATOM}feed" and "feed@example.com" in root.findtext(f"{ATOM}title", "")
    entries = root.findall(f"{ATOM}entry")
    assert len(entries) > 100
    for entry in entries:
        for tag in ("id", "title", "updated", "summary"):
            assert entry.findtext(f"{ATOM}{tag}"), tag
        assert entry.find(f"{ATOM}link").get("href")  # type: ignore[union-attr]
        assert entry.find(f"{ATOM}author/{ATOM}name") is not None
        dt.datetime.fromisoformat(entry.findtext(f"{ATOM}updated", ""))
    odd = next(e for e in entries if e.findtext(f"{ATOM}id", "").endswith(f"/api/items/{odd_id}"))
    assert odd.findtext(f"{ATOM}title") == odd_title.replace("\x0b", "")
    assert odd.find(f"{ATOM}link").get("href") == "https://example.com/odd-post?a=1&b=<2>"  # type: ignore[union-attr]
    assert b"<script>" not in resp.content and b"&lt;script&gt;" in resp.content

    for bad in ({}, {"token": "wrong"}, {"token": a["Authorization"].split()[1]}):  # API token ≠ feed token
        denied = client.get("/api/me/digest.atom", params=bad)
        assert denied.status_code == 401 and denied.headers["www-authenticate"].startswith("Bearer")
    new = client.post("/api/me/feed-token", headers=a).json()
    assert client.get("/api/me/digest.atom", params={"token": body["feed_token"]}).status_code == 401
    assert client.get(new["feed_url"].replace("http://testserver", "")).status_code == 200


ATOM_DAYS = tuple(f"2026-06-{d:02d}" for d in range(9, 17))  # real papers of 9 to 16 June


def _atom(client: TestClient, **params: object) -> feedparser.FeedParserDict:
    resp = client.get("/api/me/digest.atom", params=params)
    assert resp.status_code == 200, resp.text
    feed = feedparser.parse(resp.content)
    assert not feed.bozo, feed.get("bozo_exception")
    return feed


def _days(feed: feedparser.FeedParserDict) -> list[str]:
    return [e.published[:10] for e in feed.entries]


def test_atom_feed_covers_the_last_days_best_first_with_abstracts_authors_and_pdfs(
    engine: sa.Engine, database_url: str, tmp_path: Path
) -> None:
    load_papers(engine, days=ATOM_DAYS)
    settings = make_settings(database_url, tmp_path)
    assert settings.atom_days == 7
    jobs.update_ranking(engine, settings, INTERESTS)
    with session_factory(engine)() as s:
        papers = {
            r.id: r
            for r in s.execute(sa.select(Item.id, Item.arxiv_id, Item.summary, Item.authors, Item.published))
        }
    stored = {p.published.date().isoformat() for p in papers.values()}  # the weekend scrapes repeat Friday's

    def days_with_papers(first: str, last: str) -> list[str]:
        return sorted((d for d in stored if first <= d <= last), reverse=True)

    with TestClient(create_app(settings, engine)) as client:
        token = signup(client, "atom@example.com")[1]["feed_token"]
        feed = _atom(client, token=token, limit=5)  # the 7 days ending at the newest day with papers
        days = _days(feed)
        assert sorted(set(days), reverse=True) == days_with_papers("2026-06-10", "2026-06-16")
        assert len(set(days)) >= 5
        assert days == sorted(days, reverse=True)  # newest day first
        assert all(days.count(d) == 5 for d in set(days))  # each day's best 5
        for day in set(days):  # best first within a day
            scores = [
                float(re.findall(r"score ([0-9.]+)", e.summary)[0])
                for e in feed.entries
                if e.published[:10] == day
            ]
            assert scores == sorted(scores, reverse=True) and scores[0] > 0
        for entry in feed.entries:
            paper = papers[int(entry.id.rsplit("/", 1)[-1])]  # entry ids are the items' API URLs
            assert entry.summary.startswith(paper.summary[:300])  # the abstract
            assert [a["name"] for a in entry.authors] == paper.authors[:50]  # every author
            links = {(link["rel"], link.get("type")): link["href"] for link in entry.links}
            assert links[("alternate", "text/html")] == f"https://arxiv.org/abs/{paper.arxiv_id}"
            assert links[("related", "application/pdf")] == f"https://arxiv.org/pdf/{paper.arxiv_id}"
        assert "2026-06-10 to 2026-06-16" in feed.feed.title

        # date= is honoured: the 7 days ending there (papers from the 9th on)
        ending = _atom(client, token=token, limit=3, date="2026-06-12")
        assert sorted(set(_days(ending)), reverse=True) == days_with_papers("2026-06-06", "2026-06-12")
        assert set(_days(ending)) == {"2026-06-09", "2026-06-10", "2026-06-11", "2026-06-12"}
        assert len(ending.entries) == 12 and "2026-06-06 to 2026-06-12" in ending.feed.title
        two = _atom(client, token=token, limit=2, date="2026-06-12", days=2)
        assert _days(two) == ["2026-06-12"] * 2 + ["2026-06-11"] * 2
        # ... or rejected, never ignored
        for bad in ({"date": "garbage"}, {"date": "2026-13-01"}, {"date": "12/06/2026"}, {"days": 0}):
            resp = client.get("/api/me/digest.atom", params={"token": token, **bad})
            assert resp.status_code == 422 and resp.json()["detail"][0]["msg"], bad
    # AGGREGATOR_ATOM_DAYS sets the default span
    with TestClient(create_app(make_settings(database_url, tmp_path, atom_days=3), engine)) as client:
        three = _atom(client, token=token, limit=1)
        assert _days(three) == days_with_papers("2026-06-14", "2026-06-16")
        assert "2026-06-14 to 2026-06-16" in three.feed.title


def test_more_like_this(client: TestClient) -> None:
    items = client.get("/api/digest", params={"date": DAY, "limit": 5}).json()["items"]
    target = items[0]
    resp = client.get(f"/api/items/{target['id']}/similar", params={"limit": 5})
    assert resp.status_code == 200
    similar = resp.json()["items"]
    assert 0 < len(similar) <= 5 and target["id"] not in {i["id"] for i in similar}
    scores = [i["score"] for i in similar]
    assert scores == sorted(scores, reverse=True) and 0 < scores[0] <= 1
    assert similar[0]["why"]
    assert client.get("/api/items/999999/similar").status_code == 404
    assert client.get(f"/api/items/{target['id']}/similar", params={"limit": 0}).status_code == 422


def test_openapi_documents_every_reader_route(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert "HTTPBearer" in schema["components"]["securitySchemes"]
    expected = {
        ("/api/readers", "post", "201"),
        ("/api/me/digest", "get", "200"),
        ("/api/me/profile", "get", "200"),
        ("/api/me/profile", "put", "200"),
        ("/api/me/settings", "get", "200"),
        ("/api/me/settings", "put", "200"),
        ("/api/me/feedback", "post", "200"),
        ("/api/me/subscriptions", "get", "200"),
        ("/api/me/subscriptions", "post", "201"),
        ("/api/me/feed-token", "post", "200"),
        ("/api/topics", "get", "200"),
        ("/api/topics", "post", "201"),
        ("/api/topics/{slug}", "put", "200"),
        ("/api/topic-preview", "post", "200"),
        ("/api/items/{item_id}/similar", "get", "200"),
        ("/api/me/digest.atom", "get", "200"),
        ("/api/feeds.opml", "get", "200"),
    }
    for path, method, status in expected:
        content = schema["paths"][path][method]["responses"][status]["content"]
        assert any(c.get("schema") for c in content.values()), (path, method)
    assert "401" in schema["paths"]["/api/me/digest"]["get"]["responses"]
