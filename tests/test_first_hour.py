"""A newcomer's first hour (issue 11), on real data: which day the digest shows by default (the
newest day with papers; Lil'Log's undated "FAQ" page, dated by its fetch, never decides it),
and an unranked digest when no interests are set (ordered by the blog posts discussing each
paper, then newest first; no 0.000 scores)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from conftest import DATA
from fastapi.testclient import TestClient
from test_readers import load_papers

from aggregator import jobs, links, readers, served
from aggregator.api.app import create_app
from aggregator.digest import build_digest, default_day, latest_day
from aggregator.ingest import write_entries
from aggregator.parse import parse_feed
from aggregator.settings import Interests, Settings
from aggregator.store.db import session_factory
from aggregator.store.tables import Feed, Item

UTC = ZoneInfo("UTC")
BLOGS = DATA / "blogs"
LILLOG = BLOGS / "lilianweng-lillog-2026-07-04-rss2-hugo.xml"
HF_DAILY = BLOGS / "hf-daily-papers-feedgen-2026-04-30-rss2-brevio.xml"
#: when the blog feeds of these tests were fetched: Lil'Log's undated "FAQ" gets this date
FETCHED = dt.datetime(2026, 7, 10, 9, 30, tzinfo=dt.UTC)


def _settings(database_url: str, tmp_path: Path, feeds_toml: str = "", **kw: object) -> Settings:
    feeds = tmp_path / "feeds.toml"
    feeds.write_text(feeds_toml)
    return Settings(database_url=database_url, feeds_file=feeds, rate_limit="100000/second", **kw)  # type: ignore[arg-type]


def _ingest_blog(engine: sa.Engine, path: Path, name: str, fetched: dt.datetime = FETCHED) -> list[int]:
    """The real feed document at ``path`` parsed and stored as feed ``name``, papers linked."""
    parsed = parse_feed(path.read_bytes(), fetched_at=fetched, url=f"https://blog.example/{path.name}")
    with session_factory(engine)() as s, s.begin():
        feed = Feed(
            url=f"https://blog.example/{path.name}",
            name=name,
            kind="blog",
            created_at=fetched,
            error_count=0,
            disabled=False,
            scheduled=True,
            interval_minutes=60,
            tags=[],
        )
        s.add(feed)
        s.flush()
        ids = write_entries(s, feed.id, parsed.entries, fetched).new_item_ids
        links.link_items(s, ids, fetched)
    return ids


# --- the default day -------------------------------------------------------------------------------


def test_default_day_is_the_newest_day_with_papers(engine: sa.Engine) -> None:
    today = FETCHED.date()
    with engine.connect() as conn:
        assert latest_day(conn, today, UTC) == today  # nothing at all: today
    _ingest_blog(engine, LILLOG, "Lil'Log")
    with session_factory(engine)() as s:
        faq = s.scalar(sa.select(Item).where(Item.title == "FAQ"))
        assert faq is not None and faq.date_from_fetch and faq.published == FETCHED  # the real undated page
        newest_dated = s.scalar(sa.select(sa.func.max(Item.published)).where(Item.date_from_fetch.is_(False)))
        assert newest_dated is not None and newest_dated.date() < today
        # no papers: the newest dated post decides, never the FAQ dated by its fetch
        assert latest_day(s, today, UTC) == newest_dated.date()
    load_papers(engine, days=("2026-06-15", "2026-06-16"))
    with session_factory(engine)() as s:
        assert newest_dated.date() > dt.date(2026, 6, 16)  # Lil'Log posted after the papers
        assert latest_day(s, today, UTC) == dt.date(2026, 6, 16)  # ... but papers decide
        assert default_day(s, UTC, now=FETCHED) == dt.date(2026, 6, 16)
        assert latest_day(s, dt.date(2026, 6, 15), UTC) == dt.date(2026, 6, 15)  # never after today
        assert build_digest(s, UTC, now=FETCHED).date == dt.date(2026, 6, 16)
    with engine.connect() as conn:
        assert served.default_day(conn, UTC, now=FETCHED) == dt.date(2026, 6, 16)


def test_every_digest_uses_the_default_day(engine: sa.Engine, database_url: str, tmp_path: Path) -> None:
    """The JSON digest, the page, the reader's page, the served (fast-lane) and general reader
    digests and the Atom feed all open on the newest day with papers."""
    load_papers(engine, days=("2026-06-15", "2026-06-16"))
    _ingest_blog(engine, LILLOG, "Lil'Log", fetched=dt.datetime.now(dt.UTC))  # its FAQ is dated today
    with session_factory(engine)() as s, s.begin():
        scored = readers.create_reader(s, "scored@example.com")
        fresh_feed_token = readers.create_reader(s, "fresh@example.com").feed_token
    settings = _settings(database_url, tmp_path)
    jobs.update_ranking(engine, settings, Interests(text="large language models"))  # scores "scored"
    with TestClient(create_app(settings, engine)) as client:
        assert client.get("/api/digest").json()["date"] == "2026-06-16"
        assert "Tuesday 16 June 2026" in client.get("/").text
        bearer = {"Authorization": f"Bearer {scored.token}"}
        mine = client.get("/api/me/digest", headers=bearer).json()
        assert mine["date"] == "2026-06-16" and mine["profile"].startswith("reader:")  # the fast lane
        grouped = client.get("/api/me/digest", headers=bearer, params={"group": "topic"}).json()
        assert grouped["date"] == "2026-06-16"  # the general path
        atom = client.get("/api/me/digest.atom", params={"token": fresh_feed_token, "days": 1})
        assert atom.status_code == 200 and "2026-06-16" in atom.text and "<title>FAQ</title>" not in atom.text
        client.post("/signin", data={"token": scored.token, "csrf_token": _csrf(client, "/signin")})
        assert "Tuesday 16 June 2026" in client.get("/me").text


def _csrf(client: TestClient, path: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', client.get(path).text)
    assert found is not None
    return found.group(1)


# --- an unranked digest ------------------------------------------------------------------------------


def test_without_interests_the_digest_is_unranked_by_discussion_then_recency(
    engine: sa.Engine, database_url: str, tmp_path: Path
) -> None:
    """No [interests]: the refit writes score 0 for every item (as the scheduler does). The
    digest is then ordered by the posts discussing each paper (HF daily papers posts link real
    papers of 2026-04-26), then newest first, and shows no scores."""
    load_papers(engine, days=("2026-04-26",))
    _ingest_blog(engine, HF_DAILY, "HF daily papers", fetched=dt.datetime(2026, 4, 30, tzinfo=dt.UTC))
    settings = _settings(database_url, tmp_path)
    assert jobs.update_ranking(engine, settings, Interests()) > 0  # every item scored 0
    day, days = dt.date(2026, 4, 28), 7
    with session_factory(engine)() as s:
        digest = build_digest(s, UTC, day, days, limit=500)
        assert not digest.ranked and digest.total == len(digest.items)
        ids = [e.id for e in digest.items]
        discussed = links.discussed_in(s, ids)
        assert len([i for i in ids if discussed.get(i)]) == 3  # the three papers HF daily links
        published = dict(s.execute(sa.select(Item.id, Item.published).where(Item.id.in_(ids))).all())
        kinds = dict(s.execute(sa.select(Item.id, Item.kind).where(Item.id.in_(ids))).all())
    expected = sorted(ids, key=lambda i: (-discussed.get(i, 0), -published[i].timestamp(), -i))
    assert ids == expected
    assert all(discussed.get(i) for i in ids[:3]) and not any(discussed.get(i) for i in ids[3:])
    # after the discussed papers, the newest first: the posts of 27 and 28 April before the papers
    rest = [kinds[i] for i in ids[3:]]
    assert rest[:5] == ["post"] * 5 and "paper" in rest
    assert [published[i] for i in ids[3:]] == sorted((published[i] for i in ids[3:]), reverse=True)

    with TestClient(create_app(settings, engine)) as client:
        body = client.get("/api/digest", params={"date": day.isoformat(), "days": days, "limit": 500}).json()
        assert body["ranked"] is False
        assert [i["id"] for i in body["items"]] == ids
        assert all(i["score"] is None for i in body["items"])
        assert [i["discussed_in"] for i in body["items"][:3]] == [1, 1, 1]
        page = client.get("/", params={"date": day.isoformat(), "days": days}).text
        assert "Unranked: no interests are set." in page
        assert "Set <code>[interests]</code> in feeds.toml" in page
        assert '<a href="/me/profile">sign in and set your profile</a>' in page
        assert 'class="score"' not in page and "0.000" not in page
        # with interests the same window is ranked: scores shown, best first
        jobs.update_ranking(engine, settings, Interests(text="large language models and agents"))
        ranked = client.get("/api/digest", params={"date": day.isoformat(), "days": days}).json()
        assert ranked["ranked"] is True and ranked["items"][0]["score"] > 0
        scores = [i["score"] for i in ranked["items"]]
        assert scores == sorted(scores, reverse=True)
        page = client.get("/", params={"date": day.isoformat(), "days": days}).text
        assert "Unranked" not in page and 'class="score"' in page
