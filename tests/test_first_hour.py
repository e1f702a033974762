"""A newcomer's first hour (issue 11), on real data: which day the digest shows by default (the
newest day with papers; Lil'Log's undated "FAQ" page, dated by its fetch, never decides it),
an unranked digest when no interests are set (ordered by the blog posts discussing each
paper, then newest first; no 0.000 scores), the feed status at ``/api/feeds`` and ``/feeds``,
the failing-feeds notice of the digest pages, and HTML error pages for the pages while the
API keeps FastAPI's JSON errors."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
import socket
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from conftest import DATA, Replay
from fastapi import FastAPI
from fastapi.testclient import TestClient
from helpers import glued_separators, sign_in
from test_readers import load_papers

from aggregator.accounts import readers
from aggregator.api.app import create_app
from aggregator.api.routes.digest import DateQuery, ItemId
from aggregator.config import Interests, Settings, load_feeds_file
from aggregator.digest import row_source, served
from aggregator.digest.public import build_digest, default_day, latest_day
from aggregator.feeds import paper_links as links
from aggregator.feeds import status as feed_status
from aggregator.feeds.ingest import write_entries
from aggregator.feeds.parse import parse_feed
from aggregator.store import queries
from aggregator.store.db import session_factory
from aggregator.store.tables import Feed, Item
from aggregator.worker import refresh
from aggregator.worker import tasks as jobs

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
    rows = row_source.SyncRows(engine)
    assert served.default_day(rows, UTC, now=FETCHED) == dt.date(2026, 6, 16)
    asyncio.run(rows.close())


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
        sign_in(client, scored.email)
        assert "Tuesday 16 June 2026" in client.get("/me").text


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
        discussed = queries.discussed_in(s, ids)
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
        assert 'class="rank"' not in page  # no numbers as if ranked
        # with interests the same window is ranked: scores shown, best first
        jobs.update_ranking(engine, settings, Interests(text="large language models and agents"))
        ranked = client.get("/api/digest", params={"date": day.isoformat(), "days": days}).json()
        assert ranked["ranked"] is True and ranked["items"][0]["score"] > 0
        scores = [i["score"] for i in ranked["items"]]
        assert scores == sorted(scores, reverse=True)
        page = client.get("/", params={"date": day.isoformat(), "days": days}).text
        assert "Unranked" not in page and 'class="score"' in page


# --- feed status and the failing-feeds notice --------------------------------------------------------


LILLOG_PATH = "/static/blogs/lilianweng-lillog-2026-07-04-rss2-hugo.xml"
BAIR_PATH = "/static/blogs/bair-blog-2026-04-rss2-distill.xml"


def _feed_toml(name: str, url: str, kind: str | None = None) -> str:
    return f'[[feeds]]\nname = "{name}"\nurl = "{url}"\n' + (f'kind = "{kind}"\n' if kind else "") + "\n"


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed when the block ends: connections are refused


def test_feed_status_page_and_api_share_one_query(replay: Replay, tmp_path: Path) -> None:
    port = _closed_port()
    feeds_toml = (
        _feed_toml("Lil'Log", replay.url(LILLOG_PATH))
        + _feed_toml("arXiv cs.LG (unreachable)", f"http://127.0.0.1:{port}/rss/cs.LG", kind="arxiv")
        + _feed_toml(
            "Gone blog", replay.url("/_fault/status-404/static/blogs/bair-blog-2026-04-rss2-distill.xml")
        )
    )
    url = f"sqlite:///{tmp_path / 'feeds.db'}"
    settings = _settings(url, tmp_path, feeds_toml, feed_allow_hosts=["127.0.0.1"])
    app = create_app(settings)
    with TestClient(app) as client:
        token = client.post("/api/readers", json={"email": "adder@example.com"}).json()["token"]
        reader_feed = replay.url("/static/blogs/thegradient-2026-04-27-rss2-distill.xml")
        added = client.post(
            "/api/me/feeds",
            headers={"Authorization": f"Bearer {token}"},
            json={"url": reader_feed, "name": "A reader's pick"},
        )
        assert added.status_code in (200, 201), added.text
        engine = app.state.engine
        report = refresh.refresh_feeds(
            engine, settings, load_feeds_file(settings.feeds_file), include_all=True
        )
        assert {o.name: o.state for o in report.outcomes} == {
            "Lil'Log": "new",
            "arXiv cs.LG (unreachable)": "failed",
            "Gone blog": "failed",
            "A reader's pick": "new",
        }
        api = client.get("/api/feeds").json()
        with session_factory(engine)() as s:
            states = feed_status.feed_states(s)
        assert [f["id"] for f in api] == [f.id for f in states]
        for row, state in zip(api, states, strict=True):
            assert row["name"] == state.name and row["items"] == state.items
            assert row["last_error"] == state.last_error and row["error_count"] == state.error_count
            assert row["reader_added"] == state.reader_added
        by_name = {f["name"]: f for f in api}
        assert by_name["A reader's pick"]["reader_added"] and not by_name["Lil'Log"]["reader_added"]
        assert by_name["Lil'Log"]["items"] == 53 and by_name["Lil'Log"]["last_status"] == 200
        refused = by_name["arXiv cs.LG (unreachable)"]
        assert refused["error_count"] == 1 and "refused" in refused["last_error"].lower()

        page = client.get("/feeds")
        assert page.status_code == 200 and "text/html" in page.headers["content-type"]
        html = page.text
        for name in ("Lil&#39;Log", "arXiv cs.LG (unreachable)", "Gone blog", "A reader&#39;s pick"):
            assert name in html
        assert "OK, 53 items; next check in 60 min" in html
        assert "Failed once; last error: cannot connect:" in html and "next try in 60 min" in html
        assert "Failed once; last error: HTTP 404 Not Found; next try in 60 min" in html
        assert "HTTP 200 OK" in html and "no answer" in html  # last status, in words
        assert f"http://127.0.0.1:{port}/rss/cs.LG" in html  # the operator's URLs are shown
        assert reader_feed not in html and "added by a reader" in html  # a reader's URL is not
        # failing feeds first
        assert html.index("arXiv cs.LG (unreachable)") < html.index("Lil&#39;Log")
        # 2 of 4 failed: not most of them, so no notice on the digest
        assert 'id="failing-feeds"' not in client.get("/").text
        # every page's header links the feed status
        for path in ("/", "/feeds", "/topics", "/signin", "/trends"):
            assert '<a href="/feeds">Feeds</a>' in client.get(path).text, path


def test_failing_feeds_notice_on_the_digest_pages(replay: Replay, tmp_path: Path) -> None:
    """Three of four feeds unreachable (a closed loopback port) in a real fetch pass, the
    fourth (Lil'Log, replayed) fine: both digest pages say so at the top and link the feed
    status."""
    port = _closed_port()
    unreachable = "".join(
        _feed_toml(name, f"http://127.0.0.1:{port}/{name.replace(' ', '-')}")
        for name in ("arXiv cs.LG", "arXiv cs.CL", "OpenAI")
    )
    feeds_toml = unreachable + _feed_toml("Lil'Log", replay.url(LILLOG_PATH))
    url = f"sqlite:///{tmp_path / 'fail.db'}"
    settings = _settings(url, tmp_path, feeds_toml)
    app = create_app(settings)
    with TestClient(app) as client:
        engine = app.state.engine
        report = refresh.refresh_feeds(
            engine, settings, load_feeds_file(settings.feeds_file), include_all=True
        )
        assert report.count("failed") == 3 and report.count("new") == 1
        with session_factory(engine)() as s:
            assert feed_status.failing_feeds(s) == feed_status.FailingFeeds(failed=3, total=4)
        page = client.get("/").text
        assert "3 of 4 feeds failed on their last fetch" in page
        assert '— <a href="/feeds">see feed status</a>' in page
        assert page.index('id="failing-feeds"') < page.index("<article")  # at the top, above the items
        assert not glued_separators(page)
        assert 'href="/signin"' in page and 'action="/signout"' not in page  # anonymous: sign-in links
        assert client.post("/api/readers", json={"email": "me@example.com"}).status_code == 201
        sign_in(client, "me@example.com")
        # signed in, every page's header says so (the public pages too): library, profile, sign out
        for path in ("/", "/feeds", "/trends", "/trends/month", "/search?q=learning", "/me", "/library"):
            shown = client.get(path)
            assert shown.status_code in (200, 422), path
            assert 'action="/signout"' in shown.text and "me@example.com" in shown.text, path
            assert 'href="/signin"' not in shown.text, path
        me = client.get("/me")
        assert me.status_code == 200 and "3 of 4 feeds failed on their last fetch" in me.text
        assert '<a href="/feeds">see feed status</a>' in me.text
        assert not glued_separators(me.text)


def test_feed_status_words() -> None:
    now = FETCHED
    base = feed_status.FeedState(
        id=1,
        name="x",
        url="http://x",
        kind="blog",
        title=None,
        interval_minutes=60,
        scheduled=True,
        disabled=False,
        reader_added=False,
        last_status=None,
        last_fetch_at=now - dt.timedelta(minutes=5),
        last_success_at=None,
        error_count=3,
        last_error="cannot connect: connection refused",
        parse_problems=None,
        next_check_at=now + dt.timedelta(hours=2),
        items=0,
    )
    assert (
        feed_status.describe(base, now)
        == "failed 3 times in a row; last error: cannot connect: connection refused; next try in 2 h"
    )
    ok = base.__class__(**{**_fields(base), "error_count": 0, "last_error": None, "items": 41})
    assert feed_status.describe(ok, now) == "OK, 41 items; next check in 2 h"
    new = base.__class__(**{**_fields(ok), "last_fetch_at": None, "next_check_at": now})
    assert feed_status.describe(new, now) == "not fetched yet; first check at the next pass"
    assert feed_status.ago(now - dt.timedelta(days=3), now) == "3 days ago"
    assert feed_status.until(now + dt.timedelta(seconds=20), now) == "in less than a minute"


def _fields(state: feed_status.FeedState) -> dict:
    return {name: getattr(state, name) for name in state.__slots__}  # type: ignore[attr-defined]


# --- error pages -----------------------------------------------------------------------------------


@pytest.fixture
def app_client(tmp_path: Path):  # type: ignore[no-untyped-def]
    settings = _settings(f"sqlite:///{tmp_path / 'errors.db'}", tmp_path)
    with TestClient(create_app(settings)) as client:
        yield client


@pytest.mark.parametrize(
    ("path", "says"),
    [
        ("/?date=garbage", "date: a date must be written YYYY-MM-DD (you sent “garbage”)"),
        ("/?date=yesterday", "date: a date must be written YYYY-MM-DD (you sent “yesterday”)"),
        ("/?days=0", "days: Input should be greater than or equal to 1 (you sent “0”)"),
        ("/trends?window=7days", "window: String should match pattern"),
        ("/trends?window=99d", "window must be between 1d and 31d, not 99d"),
        ("/email/feedback", "t: Field required"),
        ("/me/profile?feed=nonsense", "feed: Input should be"),
    ],
)
def test_pages_answer_bad_input_with_an_html_page(app_client: TestClient, path: str, says: str) -> None:
    resp = app_client.get(path)
    assert resp.status_code == 422 and resp.headers["content-type"].startswith("text/html")
    assert "Some of the input was not valid" in resp.text and says in resp.text
    assert '<a href="/" rel="home">' in resp.text and "<script" not in resp.text


def test_html_errors_keep_status_and_headers(app_client: TestClient) -> None:
    missing = app_client.get("/no-such-page")
    assert missing.status_code == 404 and "There is no page at /no-such-page." in missing.text
    denied = app_client.post("/me/feedback", data={"item_id": 1, "value": 1, "csrf_token": "x"})
    assert denied.status_code == 401 and "text/html" in denied.headers["content-type"]
    assert "sign in first" in denied.text and 'href="/signin?next=/me/feedback"' in denied.text
    wrong = app_client.put("/feeds")
    assert wrong.status_code == 405 and wrong.headers["allow"] == "GET" and "<html" in wrong.text
    hostile = app_client.get("/", params={"date": "<script>alert(1)</script>"})
    assert (
        hostile.status_code == 422
        and "<script>alert" not in hostile.text
        and "&lt;script&gt;" in hostile.text
    )


def test_api_errors_keep_fastapis_json_exactly(app_client: TestClient) -> None:
    """/api routes (and JSON routes outside /api) answer exactly what a plain FastAPI app with
    the same parameters answers."""
    plain = FastAPI()

    @plain.get("/api/digest")
    def digest(date: DateQuery = None) -> dict:  # the same query parameter as ours
        return {}

    @plain.get("/api/items/{item_id}")
    def item(item_id: ItemId) -> dict:
        return {}

    with TestClient(plain) as reference:
        for path in ("/api/digest?date=garbage", "/api/digest?date=2026-02-30", "/api/items/abc"):
            ours, theirs = app_client.get(path), reference.get(path)
            assert ours.status_code == theirs.status_code == 422, path
            assert ours.headers["content-type"] == theirs.headers["content-type"] == "application/json"
            assert ours.json() == theirs.json(), path
        ours, theirs = app_client.get("/api/nope"), reference.get("/api/nope")
        assert (
            (ours.status_code, ours.json())
            == (theirs.status_code, theirs.json())
            == (404, {"detail": "Not Found"})
        )
    assert app_client.get("/api/items/999").json() == {"detail": "no item with id 999"}
    not_allowed = app_client.delete("/api/digest")
    assert not_allowed.status_code == 405 and not_allowed.json() == {"detail": "Method Not Allowed"}
    assert not_allowed.headers["allow"] == "GET"
    health = app_client.post("/healthz")
    assert health.status_code == 405 and health.json() == {"detail": "Method Not Allowed"}
    unauthorized = app_client.get("/api/me/digest")
    assert unauthorized.status_code == 401 and unauthorized.json()["detail"].startswith("missing API token")
    assert unauthorized.headers["www-authenticate"] == "Bearer"
    bad_atom = app_client.get("/api/me/digest.atom", params={"token": "x", "date": "garbage"})
    assert bad_atom.status_code == 422 and bad_atom.json()["detail"][0]["loc"] == ["query", "date"]


def test_docs_are_served_without_a_cdn(app_client: TestClient) -> None:
    for path in ("/docs", "/redoc"):
        html = app_client.get(path).text
        assert "cdn.jsdelivr.net" not in html and "fonts.googleapis.com" not in html
        assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css|png))"', html)
        assert assets and all(a.startswith("/static-offline-docs/") for a in assets), assets
        for asset in assets:
            resp = app_client.get(asset)
            assert resp.status_code == 200 and len(resp.content) > 1000, asset
