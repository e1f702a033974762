"""Feeds readers add (``/api/me/feeds`` and the profile page), on SQLite and PostgreSQL, against
the real replayed blogs: adding (fetched once through the guarded fetcher, parsed), the same URL
again, the SSRF refusals (never fetched), not-a-feed 422s, the per-reader limit, removing only
your own feed, bearer-token checks, and that an added feed is then fetched and ingested by the
normal scheduler pass and kept by ``sync_feeds``. The tests allow-list 127.0.0.1 (replay and
the loopback servers); 127.0.0.2 stands for a refused address that is really listening."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from alembic import command
from conftest import Replay
from fastapi.testclient import TestClient
from helpers import sign_in
from test_netguard import Loopback

from aggregator.api.app import create_app
from aggregator.config import FeedConfig, Settings, load_feeds_file
from aggregator.feeds.ingest import sync_feeds
from aggregator.store.db import alembic_config, session_factory, upgrade
from aggregator.store.tables import Feed, Item, ItemSource, Reader
from aggregator.worker import refresh

GOOGLE = "/static/blogs/ainewsdirect-google-ai-blog-2025-07-29-atom.xml"
BAIR = "/static/blogs/bair-blog-2026-04-rss2-distill.xml"
HF = "/static/blogs/huggingface-blog-2026-04-27-rss2-distill.xml"


def make_settings(database_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    feeds = tmp_path / "feeds.toml"
    if not feeds.exists():
        feeds.write_text("")
    values: dict[str, Any] = {
        "database_url": database_url,
        "feeds_file": feeds,
        "feed_allow_hosts": ["127.0.0.1"],
        "reader_feeds_max": 2,
        "connect_timeout_seconds": 5,
        "read_timeout_seconds": 5,
        "total_timeout_seconds": 20,
        "rate_limit": "100000/second",
    }
    values.update(overrides)
    return Settings(**values)


@dataclass
class App:
    client: TestClient
    engine: sa.Engine
    settings: Settings

    def signup(self, email: str) -> dict[str, str]:
        resp = self.client.post("/api/readers", json={"email": email})
        assert resp.status_code == 201, resp.text
        return {"Authorization": f"Bearer {resp.json()['token']}"}

    def feeds(self) -> list[Feed]:
        with session_factory(self.engine)() as s:
            return list(s.scalars(sa.select(Feed).order_by(Feed.id)))


@pytest.fixture
def app(engine: sa.Engine, database_url: str, tmp_path: Path) -> Iterator[App]:
    settings = make_settings(database_url, tmp_path)
    with TestClient(create_app(settings, engine)) as client:
        yield App(client, engine, settings)


def fetched(replay: Replay) -> list[str]:
    """Paths the replay server was asked for (its own log requests left out)."""
    return [e["path"] for e in replay.log() if not e["path"].startswith("/_replay/")]


def msg(resp: Any) -> str:
    """The message of a 422 (FastAPI's ``detail`` list) or of another error."""
    detail = resp.json()["detail"]
    return detail[0]["msg"] if isinstance(detail, list) else detail


# -- adding ----------------------------------------------------------------------------------------


def test_add_a_feed_then_the_same_url_again(app: App, replay: Replay) -> None:
    ada, bob = app.signup("ada@example.org"), app.signup("bob@example.org")
    url = replay.url(GOOGLE)
    resp = app.client.post("/api/me/feeds", json={"url": url}, headers=ada)
    assert resp.status_code == 201, resp.text
    feed = resp.json()
    assert feed["url"] == url and feed["name"] == "Google News" and feed["title"] == "Google News"
    assert feed["mine"] and feed["state"] == "pending" and feed["scheduled"] and feed["kind"] == "blog"
    assert fetched(replay) == [GOOGLE], "fetched once, to check that it is a feed"

    again = app.client.post("/api/me/feeds", json={"url": url}, headers=ada)
    assert again.status_code == 200 and again.json()["id"] == feed["id"]
    spelled = url.replace("http://", "HTTP://") + "#latest"
    assert app.client.post("/api/me/feeds", json={"url": spelled}, headers=ada).json()["id"] == feed["id"]
    theirs = app.client.post("/api/me/feeds", json={"url": url, "name": "Mine now"}, headers=bob)
    assert theirs.status_code == 200 and theirs.json()["id"] == feed["id"] and not theirs.json()["mine"]
    assert theirs.json()["name"] == "Google News", "a known feed is returned unchanged"
    assert fetched(replay) == [GOOGLE], "a known URL is not fetched again"

    assert [f["id"] for f in app.client.get("/api/me/feeds", headers=ada).json()] == [feed["id"]]
    assert app.client.get("/api/me/feeds", headers=bob).json() == []
    (row,) = app.feeds()
    with session_factory(app.engine)() as s:
        ada_id = s.scalar(sa.select(Reader.id).where(Reader.email == "ada@example.org"))
    assert row.added_by == ada_id and row.reader_added and row.scheduled and not row.disabled
    assert row.next_check_at is not None and row.next_check_at <= dt.datetime.now(dt.UTC)
    assert row.tags == [] and row.interval_minutes == 60


def test_names_given_cleaned_and_unique(app: App, replay: Replay) -> None:
    ada = app.signup("ada@example.org")
    named = app.client.post(
        "/api/me/feeds", json={"url": replay.url(BAIR), "name": "  Lab\n reading\x00 list "}, headers=ada
    )
    assert named.status_code == 201 and named.json()["name"] == "Lab reading list"
    taken = app.client.post(
        "/api/me/feeds", json={"url": replay.url(GOOGLE), "name": "LAB READING LIST"}, headers=ada
    )
    assert taken.status_code == 422 and "already named 'LAB READING LIST'" in msg(taken)
    assert taken.json()["detail"][0]["loc"] == ["body", "name"]
    # the same document at another URL: its title is taken, so the host is added
    first = app.client.post("/api/me/feeds", json={"url": replay.url(GOOGLE)}, headers=ada)
    assert first.status_code == 201 and first.json()["name"] == "Google News"
    app.client.delete(f"/api/me/feeds/{named.json()['id']}", headers=ada)
    twin = app.client.post(
        "/api/me/feeds", json={"url": replay.url("/_fault/no-cache-headers" + GOOGLE)}, headers=ada
    )
    assert twin.status_code == 201 and twin.json()["name"] == "Google News (127.0.0.1)"


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"url": ""},
        {"url": "http://127.0.0.1/" + "x" * 2048},
        {"url": 17},
        {"url": "http://127.0.0.1/feed", "name": "n" * 301},
        {"url": "http://127.0.0.1/feed", "interval": 1},
    ],
)
def test_malformed_bodies_are_422(app: App, replay: Replay, body: dict[str, Any]) -> None:
    resp = app.client.post("/api/me/feeds", json=body, headers=app.signup("ada@example.org"))
    assert resp.status_code == 422 and resp.json()["detail"]
    assert fetched(replay) == [] and app.feeds() == []


# -- refused URLs ------------------------------------------------------------------------------------

REFUSED = [
    ("file:///etc/passwd", "not 'file:'"),
    ("gopher://127.0.0.1:{port}/_GET%20/", "not 'gopher:'"),
    ("ftp://127.0.0.1:{port}/feed.xml", "not 'ftp:'"),
    ("http://127.0.0.1@localhost:{port}" + GOOGLE, "user name or password"),
    ("http://localhost@127.0.0.1:{port}" + GOOGLE, "user name or password"),
    ("http://2130706433:{port}" + GOOGLE, "non-standard spelling"),  # decimal 127.0.0.1
    ("http://0x7f000001:{port}" + GOOGLE, "non-standard spelling"),  # hexadecimal
    ("http://0x7f.0.0.1:{port}" + GOOGLE, "non-standard spelling"),
    ("http://017700000001:{port}" + GOOGLE, "non-standard spelling"),  # octal
    ("http://0177.0.0.1:{port}" + GOOGLE, "not a valid URL"),
    ("http://127.1:{port}" + GOOGLE, "non-standard spelling"),
    ("http://127.0.0.2:{port}" + GOOGLE, "127.0.0.2 is a loopback address"),  # not on the allow-list
    ("http://[::1]:{port}" + GOOGLE, "loopback"),
    ("http://0.0.0.0:{port}" + GOOGLE, "unspecified"),
    ("http://169.254.169.254/latest/meta-data/", "cloud metadata"),
    ("http://[fd00:ec2::254]/latest/meta-data/", "cloud metadata"),
    ("http://[::ffff:169.254.169.254]/latest/meta-data/", "cloud metadata"),
    ("http://169.254.10.10/", "link-local"),
    ("http://10.1.2.3/feed.xml", "private-use address (RFC 1918)"),
    ("http://192.168.0.1/feed.xml", "RFC 1918"),
    ("http://100.64.0.1/feed.xml", "RFC 6598"),
    ("http://[fd12::1]/feed.xml", "RFC 4193"),
    ("http://224.0.0.251/feed.xml", "multicast"),
]


@pytest.mark.parametrize(("template", "words"), REFUSED)
def test_refused_urls_are_422_and_never_fetched(app: App, replay: Replay, template: str, words: str) -> None:
    url = template.format(port=replay.base.rsplit(":", 1)[1])
    resp = app.client.post("/api/me/feeds", json={"url": url}, headers=app.signup("ada@example.org"))
    assert resp.status_code == 422, resp.text
    assert resp.json()["detail"][0]["loc"] == ["body", "url"]
    assert words in msg(resp) and msg(resp).startswith("cannot add ")
    assert fetched(replay) == [] and app.feeds() == []


def test_loopback_is_refused_without_the_allow_list(
    engine: sa.Engine, database_url: str, tmp_path: Path, replay: Replay
) -> None:
    settings = make_settings(database_url, tmp_path, feed_allow_hosts=[])
    with TestClient(create_app(settings, engine)) as client:
        token = client.post("/api/readers", json={"email": "ada@example.org"}).json()["token"]
        auth = {"Authorization": f"Bearer {token}"}
        for url in (replay.url(GOOGLE), replay.url(GOOGLE).replace("127.0.0.1", "localhost")):
            resp = client.post("/api/me/feeds", json={"url": url}, headers=auth)
            assert resp.status_code == 422 and "a loopback address (RFC 1122, RFC 4291)" in msg(resp)
    assert fetched(replay) == []


def test_redirect_to_a_refused_address_is_422(app: App) -> None:
    source, target = Loopback("127.0.0.1"), Loopback("127.0.0.2")
    try:
        ada = app.signup("ada@example.org")
        for to, words in (
            (target.url("/feed.xml"), "127.0.0.2 is a loopback address"),
            ("http://169.254.169.254/latest/meta-data/iam/", "cloud metadata"),
            ("http://[::ffff:10.0.0.1]/feed.xml", "IPv4-mapped form (RFC 4291) of 10.0.0.1"),
            ("file:///etc/passwd", "not 'file:'"),
        ):
            resp = app.client.post("/api/me/feeds", json={"url": source.redirect_to(to)}, headers=ada)
            assert resp.status_code == 422, resp.text
            assert words in msg(resp) and "after a redirect" in msg(resp)
        assert target.hits == [] and app.feeds() == []
        # a redirect that stays on allowed ground is followed
        ok = app.client.post(
            "/api/me/feeds", json={"url": source.redirect_to(source.url("/feed.xml"))}, headers=ada
        )
        assert ok.status_code == 201 and ok.json()["name"] == "Loopback lab notes"
    finally:
        source.close()
        target.close()


@pytest.mark.parametrize(
    ("route", "words"),
    [
        ("/_fault/html" + GOOGLE, "not a usable RSS or Atom feed"),
        ("/_fault/binary" + GOOGLE, "not a usable RSS or Atom feed"),
        ("/_fault/status-404" + GOOGLE, "HTTP 404 Not Found"),
        ("/_fault/status-410" + GOOGLE, "HTTP 410 Gone"),
        ("/_fault/truncate" + GOOGLE, "body truncated"),
        ("/_fault/redirect-loop" + GOOGLE, "too many redirects"),
        ("/_replay/days", "not a usable RSS or Atom feed"),
    ],
)
def test_a_url_that_is_not_a_feed_is_422(app: App, replay: Replay, route: str, words: str) -> None:
    url = replay.url(route)
    resp = app.client.post("/api/me/feeds", json={"url": url}, headers=app.signup("ada@example.org"))
    assert resp.status_code == 422, resp.text
    assert words in msg(resp) and url in msg(resp)
    assert app.feeds() == []


# -- limit, listing, removing ------------------------------------------------------------------------


def test_a_reader_may_add_a_limited_number_of_feeds(app: App, replay: Replay) -> None:
    ada, bob = app.signup("ada@example.org"), app.signup("bob@example.org")
    first = app.client.post("/api/me/feeds", json={"url": replay.url(GOOGLE)}, headers=ada).json()
    assert app.client.post("/api/me/feeds", json={"url": replay.url(BAIR)}, headers=ada).status_code == 201
    replay.log(clear=True)
    over = app.client.post("/api/me/feeds", json={"url": replay.url(HF)}, headers=ada)
    assert over.status_code == 409 and "at most 2" in msg(over) and "AGGREGATOR_READER_FEEDS_MAX" in msg(over)
    assert fetched(replay) == [], "over the limit nothing is fetched"
    # a URL already followed is no addition: still answered
    assert app.client.post("/api/me/feeds", json={"url": replay.url(BAIR)}, headers=ada).status_code == 200
    # the limit is per reader
    assert app.client.post("/api/me/feeds", json={"url": replay.url(HF)}, headers=bob).status_code == 201
    assert app.client.delete(f"/api/me/feeds/{first['id']}", headers=ada).status_code == 204
    fresh = app.client.post(
        "/api/me/feeds", json={"url": replay.url("/_fault/no-cache-headers" + HF)}, headers=ada
    )
    assert fresh.status_code == 201


def test_remove_only_your_own_feed_and_its_items_stay(app: App, replay: Replay) -> None:
    ada, bob = app.signup("ada@example.org"), app.signup("bob@example.org")
    with session_factory(app.engine)() as s, s.begin():
        sync_feeds(s, [FeedConfig("Operator feed", replay.url(BAIR), "blog")], dt.datetime.now(dt.UTC))
        operator_id = s.scalar(sa.select(Feed.id))
    added = app.client.post("/api/me/feeds", json={"url": replay.url(GOOGLE)}, headers=ada).json()
    report = refresh.refresh_feeds(app.engine, app.settings)
    assert {o.feed_id for o in report.outcomes} == {operator_id, added["id"]}
    with session_factory(app.engine)() as s:
        items = s.scalar(
            sa.select(sa.func.count()).select_from(ItemSource).where(ItemSource.feed_id == added["id"])
        )
    assert items and items > 0

    assert app.client.delete(f"/api/me/feeds/{added['id']}", headers=bob).status_code == 403
    assert app.client.delete(f"/api/me/feeds/{operator_id}", headers=ada).status_code == 403
    missing = app.client.delete("/api/me/feeds/987654", headers=ada)
    assert missing.status_code == 404 and missing.json()["detail"] == "no feed with id 987654"
    for bad in ("0", "-1", "abc", str(2**31)):
        assert app.client.delete(f"/api/me/feeds/{bad}", headers=ada).status_code == 422
    assert app.client.delete(f"/api/me/feeds/{added['id']}", headers=ada).status_code == 204
    assert (
        app.client.delete(f"/api/me/feeds/{added['id']}", headers=ada).status_code == 204
    )  # again: harmless
    assert app.client.get("/api/me/feeds", headers=ada).json() == []

    replay.log(clear=True)
    again = refresh.refresh_feeds(app.engine, app.settings, include_all=True)
    assert [o.feed_id for o in again.outcomes] == [operator_id], "a removed feed is not fetched"
    with session_factory(app.engine)() as s:
        row = s.get(Feed, added["id"])
        assert row is not None and not row.scheduled and row.added_by is not None
        kept = s.scalar(
            sa.select(sa.func.count()).select_from(ItemSource).where(ItemSource.feed_id == added["id"])
        )
        assert kept == items and s.scalar(sa.select(sa.func.count()).select_from(Item)) >= items


def test_a_removed_feed_can_be_added_again(app: App, replay: Replay) -> None:
    ada, bob = app.signup("ada@example.org"), app.signup("bob@example.org")
    feed = app.client.post("/api/me/feeds", json={"url": replay.url(GOOGLE)}, headers=ada).json()
    app.client.delete(f"/api/me/feeds/{feed['id']}", headers=ada)
    replay.log(clear=True)
    back = app.client.post("/api/me/feeds", json={"url": replay.url(GOOGLE)}, headers=bob)
    assert back.status_code == 200 and back.json()["id"] == feed["id"]
    assert back.json()["mine"] and back.json()["scheduled"] and back.json()["state"] == "pending"
    assert fetched(replay) == [GOOGLE], "checked again before it is scheduled again"
    assert app.client.get("/api/me/feeds", headers=ada).json() == []
    assert [f["id"] for f in app.client.get("/api/me/feeds", headers=bob).json()] == [feed["id"]]


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("GET", "/api/me/feeds", None),
        ("POST", "/api/me/feeds", {"url": "http://127.0.0.1:9/feed.xml"}),
        ("DELETE", "/api/me/feeds/1", None),
    ],
)
def test_every_route_needs_a_valid_bearer_token(
    app: App, replay: Replay, method: str, path: str, body: dict[str, str] | None
) -> None:
    ada = app.signup("ada@example.org")
    if method == "POST":
        body = {"url": replay.url(GOOGLE)}
    for headers in (
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": "Basic " + ada["Authorization"][7:]},
    ):
        resp = app.client.request(method, path, json=body, headers=headers)
        assert resp.status_code == 401, (headers, resp.text)
        assert resp.headers["www-authenticate"].startswith("Bearer") and resp.json()["detail"]
    assert fetched(replay) == [] and app.feeds() == []


# -- the normal fetch path ----------------------------------------------------------------------------


def test_an_added_feed_is_fetched_by_the_scheduler_and_kept_by_sync(
    app: App, replay: Replay, tmp_path: Path
) -> None:
    ada = app.signup("ada@example.org")
    added = app.client.post("/api/me/feeds", json={"url": replay.url(GOOGLE)}, headers=ada).json()
    with session_factory(app.engine)() as s, s.begin():  # the operator's own feed, soon unlisted
        sync_feeds(s, [FeedConfig("Old operator feed", replay.url(HF), "blog")], dt.datetime.now(dt.UTC))
    feeds_file = load_feeds_file(replay.feeds_toml(tmp_path, only=["Google DeepMind (Atom)"]))
    replay.log(clear=True)

    report = refresh.refresh_feeds(app.engine, app.settings, feeds_file)
    by_id = {o.feed_id: o for o in report.outcomes}
    outcome = by_id[added["id"]]
    assert outcome.state == "new" and outcome.new_items == 20 and outcome.status == 200
    assert GOOGLE in fetched(replay)
    rows = {f.url: f for f in app.feeds()}
    assert rows[replay.url(GOOGLE)].scheduled, (
        "sync_feeds keeps a reader's feed that feeds.toml does not list"
    )
    assert not rows[replay.url(HF)].scheduled, "an unlisted operator feed is unscheduled as before"
    with session_factory(app.engine)() as s:
        titles = set(
            s.scalars(sa.select(Item.title).join(ItemSource).where(ItemSource.feed_id == added["id"]))
        )
    assert "Web Guide: An experimental AI-organized search results page" in titles

    (mine,) = app.client.get("/api/me/feeds", headers=ada).json()
    assert (
        mine["state"] == "ok"
        and mine["items"] == 20
        and mine["last_status"] == 200
        and not mine["last_error"]
    )
    # and the second pass is conditional, as for every feed
    again = refresh.refresh_feeds(app.engine, app.settings, feeds_file, include_all=True)
    assert {o.feed_id: o.state for o in again.outcomes}[added["id"]] == "unchanged"


def test_the_scheduler_fetches_reader_added_feeds_through_the_guard(
    engine: sa.Engine, database_url: str, tmp_path: Path, replay: Replay
) -> None:
    """A reader-added feed whose host later resolves to a refused address (DNS rebinding, a
    redirect added later, or -- here -- loopback without the allow-list) must be refused by the
    scheduler's fetch as well, not only when it is added."""
    settings = make_settings(database_url, tmp_path, feed_allow_hosts=[])
    now = dt.datetime.now(dt.UTC)
    with session_factory(engine)() as s, s.begin():
        s.add(
            Feed(
                url=replay.url(GOOGLE),
                name="Reader feed",
                created_at=now,
                next_check_at=now,
                reader_added=True,
            )
        )
    report = refresh.refresh_feeds(engine, settings)
    (outcome,) = report.outcomes
    assert outcome.state == "failed" and (outcome.error or "").startswith("refused: 127.0.0.1 is a loopback")
    assert fetched(replay) == []


# -- storage -------------------------------------------------------------------------------------------


def test_migration_0010_keeps_feeds_and_their_items(engine: sa.Engine) -> None:
    """Down to 0009 and up again on a database with a feed, an item and its source: nothing is
    lost (on SQLite a table copy of ``feeds`` would cascade-delete ``item_sources``)."""
    now = dt.datetime.now(dt.UTC)
    with session_factory(engine)() as s, s.begin():
        feed = Feed(url="http://127.0.0.1:9/feed", name="Kept", created_at=now)
        s.add(feed)
        s.flush()
        item = Item(
            key="http://127.0.0.1:9/a",
            kind="post",
            title="A",
            published=now,
            content_hash="x",
            first_seen_at=now,
            updated_at=now,
        )
        s.add(item)
        s.flush()
        s.add(ItemSource(item_id=item.id, feed_id=feed.id, seen_at=now))
    command.downgrade(alembic_config(engine), "0009")
    with engine.connect() as conn:
        columns = {c["name"] for c in sa.inspect(conn).get_columns("feeds")}
        assert "added_by" not in columns and "reader_added" not in columns
        assert conn.execute(sa.text("SELECT count(*) FROM item_sources")).scalar() == 1
    upgrade(engine)
    with session_factory(engine)() as s:
        (row,) = s.scalars(sa.select(Feed))
        assert row.name == "Kept" and row.added_by is None and row.reader_added is False
        assert s.scalar(sa.select(sa.func.count()).select_from(ItemSource)) == 1
    inspector = sa.inspect(engine)
    (fk,) = [f for f in inspector.get_foreign_keys("feeds") if f["constrained_columns"] == ["added_by"]]
    assert fk["referred_table"] == "readers"
    if engine.dialect.name == "sqlite":  # SQLAlchemy reflects no options of an inline REFERENCES
        with engine.connect() as conn:
            ddl = conn.execute(sa.text("SELECT sql FROM sqlite_master WHERE name = 'feeds'")).scalar()
        assert "added_by INTEGER REFERENCES readers (id) ON DELETE SET NULL" in ddl
    else:
        assert fk["options"].get("ondelete") == "SET NULL"
    assert "ix_feeds_added_by" in {i["name"] for i in inspector.get_indexes("feeds")}


def test_a_deleted_readers_feeds_stay_reader_added_and_scheduled(app: App, replay: Replay) -> None:
    ada = app.signup("ada@example.org")
    feed = app.client.post("/api/me/feeds", json={"url": replay.url(GOOGLE)}, headers=ada).json()
    with session_factory(app.engine)() as s, s.begin():
        s.execute(sa.delete(Reader).where(Reader.email == "ada@example.org"))
    with session_factory(app.engine)() as s, s.begin():
        sync_feeds(s, [], dt.datetime.now(dt.UTC))
    (row,) = app.feeds()
    assert row.id == feed["id"] and row.added_by is None and row.reader_added and row.scheduled


# -- the profile page form ---------------------------------------------------------------------------


def _csrf_of(html: str) -> str:
    marker = 'name="csrf_token" value="'
    start = html.index(marker) + len(marker)
    return html[start : html.index('"', start)]


def test_profile_page_form_adds_and_removes_feeds(app: App, replay: Replay) -> None:
    assert app.client.post("/api/readers", json={"email": "ada@example.org"}).status_code == 201
    other = app.signup("bob@example.org")
    theirs = app.client.post("/api/me/feeds", json={"url": replay.url(BAIR)}, headers=other).json()
    sign_in(app.client, "ada@example.org")
    profile = app.client.get("/me/profile")
    assert 'action="/me/feeds"' in profile.text and "Feeds you added" in profile.text
    csrf = _csrf_of(profile.text)

    forged = app.client.post("/me/feeds", data={"url": replay.url(GOOGLE), "csrf_token": "forged"})
    assert forged.status_code == 403
    refused = app.client.post("/me/feeds", data={"url": "http://169.254.169.254/latest/", "csrf_token": csrf})
    assert refused.status_code == 422 and "cloud metadata service address" in refused.text
    assert 'value="http://169.254.169.254/latest/"' in refused.text, "the form keeps what was typed"

    added = app.client.post(
        "/me/feeds", data={"url": replay.url(GOOGLE), "name": "", "csrf_token": csrf}, follow_redirects=False
    )
    assert added.status_code == 303 and added.headers["location"] == "/me/profile?feed=added#my-feeds"
    shown = app.client.get("/me/profile?feed=added")
    assert "Feed added." in shown.text and "Google News" in shown.text and replay.url(GOOGLE) in shown.text
    (mine,) = [f for f in app.feeds() if f.url == replay.url(GOOGLE)]
    assert f'data-feed="{mine.id}"' in shown.text

    assert app.client.post(f"/me/feeds/{theirs['id']}/remove", data={"csrf_token": csrf}).status_code == 403
    assert app.client.post(f"/me/feeds/{mine.id}/remove", data={"csrf_token": "forged"}).status_code == 403
    removed = app.client.post(
        f"/me/feeds/{mine.id}/remove", data={"csrf_token": csrf}, follow_redirects=False
    )
    assert removed.status_code == 303
    after = app.client.get(removed.headers["location"])
    assert "Feed removed" in after.text and f'data-feed="{mine.id}"' not in after.text


# -- the schema ---------------------------------------------------------------------------------------


def test_openapi_documents_every_answer(app: App) -> None:
    paths = app.client.get("/openapi.json").json()["paths"]
    post = paths["/api/me/feeds"]["post"]["responses"]
    assert {"200", "201", "401", "409", "422"} <= set(post)
    assert set(paths["/api/me/feeds"]["get"]["responses"]) >= {"200", "401"}
    assert {"204", "401", "403", "404", "422"} <= set(paths["/api/me/feeds/{feed_id}"]["delete"]["responses"])
    assert not any(p.startswith("/me/feeds") for p in paths), "the HTML forms are not API"
