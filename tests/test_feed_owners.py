"""Feed names and feed ownership (issue 14, finding 9), on SQLite and PostgreSQL:

* a reader's feed name is cleaned of invisible and bidi characters, and a name that passes for
  another feed's ("OpenAI Blog", "0penAI blog", "OpenAI\\u200bBlog", a Cyrillic "О") is a 422;
  a title that does gets the host added, visibly;
* a reader re-adding an operator's feed (same URL, or another spelling of it) gets that feed,
  unchanged (owner, name, trust); an unfollowed operator feed is a 409; a reader's feed the
  operator then lists becomes the operator's;
* the URL of a reader's feed (it may hold a private token) is shown to that reader only: not in
  ``/api/feeds`` for others, not on ``/feeds``, not in ``/api/feeds.opml``, not in errors; the
  operator sees it with ``aggregator feeds list``."""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import Replay
from fastapi.testclient import TestClient
from helpers import sign_in
from test_reader_feeds import BAIR, GOOGLE, HF, App, _csrf_of, make_settings, msg
from typer.testing import CliRunner

from aggregator.api.app import create_app
from aggregator.config import FeedConfig, get_settings
from aggregator.feeds import names
from aggregator.feeds.ingest import sync_feeds
from aggregator.feeds.status import HIDDEN_URL, as_seen_by, feed_states
from aggregator.feeds.trust import Trust, feed_trust
from aggregator.store.db import session_factory
from aggregator.store.tables import Feed

NOW = dt.datetime(2026, 6, 15, 12, tzinfo=dt.UTC)


@pytest.fixture
def app(engine: sa.Engine, database_url: str, tmp_path: Path) -> Iterator[App]:
    settings = make_settings(database_url, tmp_path)
    with TestClient(create_app(settings, engine)) as client:
        yield App(client, engine, settings)


def operator_feeds(app: App, *feeds: FeedConfig) -> None:
    """What a pass of the scheduler does with feeds.toml listing ``feeds``."""
    with session_factory(app.engine)() as s, s.begin():
        sync_feeds(s, list(feeds), NOW)


def row(app: App, url: str) -> Feed:
    (found,) = [f for f in app.feeds() if f.url == url]
    return found


# -- names ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "given",
    [
        "OpenAI Blog",
        "openai blog",
        "0penAI blog",  # a zero
        "OpenAl Blog",  # a lower-case L
        "OpenAI\u200bBlog",  # a zero-width space instead of the space
        "Open\u200dAI Blog\ufe0f",  # a zero-width joiner, a variation selector
        "\u041epenAI Blog",  # a Cyrillic capital O
        "\u202eOpenAI Blog\u202c",  # a right-to-left override around it
        "ＯｐｅｎＡＩ Ｂｌｏｇ",  # fullwidth
        "𝐎𝐩𝐞𝐧𝐀𝐈 𝐁𝐥𝐨𝐠",  # mathematical bold
        "Opén-AI  Blog",  # an accent, a dash, two spaces
    ],
)
def test_names_that_pass_for_another_feed_are_refused(app: App, replay: Replay, given: str) -> None:
    operator_feeds(app, FeedConfig("OpenAI Blog", "https://openai.com/news/rss.xml", "blog"))
    ada = app.signup("ada@example.org")
    resp = app.client.post("/api/me/feeds", json={"url": replay.url(BAIR), "name": given}, headers=ada)
    assert resp.status_code == 422, resp.text
    assert resp.json()["detail"][0]["loc"] == ["body", "name"]
    assert ("OpenAI Blog" in msg(resp) or repr(given) in msg(resp)) and "choose another name" in msg(resp)
    assert [f.url for f in app.feeds()] == ["https://openai.com/news/rss.xml"], "nothing added"


def test_names_are_cleaned_of_invisible_characters(app: App, replay: Replay) -> None:
    ada = app.signup("ada@example.org")
    given = "\u202eLab\u200b \u2066reading\u2069\u00ad list\ufe0f\u200e"
    resp = app.client.post("/api/me/feeds", json={"url": replay.url(BAIR), "name": given}, headers=ada)
    assert resp.status_code == 201, resp.text
    assert resp.json()["name"] == "Lab reading list"
    assert row(app, replay.url(BAIR)).name == "Lab reading list"
    blank = app.client.post(
        "/api/me/feeds", json={"url": replay.url(GOOGLE), "name": "\u200b\u202e\ufe0f"}, headers=ada
    )
    assert blank.status_code == 201 and blank.json()["name"] == "Google News", "nothing visible: the title"


def test_distinct_names_are_not_look_alikes() -> None:
    for a, b in [
        ("OpenAI Blog", "OpenAI Blog 2"),
        ("BAIR", "BAIR Blog"),
        ("arXiv cs.LG", "arXiv cs.CL"),
        ("Google AI", "Google News"),
        ("Lil'Log", "colah's blog"),
    ]:
        assert not names.look_alike(a, b), (a, b)
    assert names.clean_name("a\x00b\tc\u2028d") == "a b c d"
    assert names.clean_name("\u200b \u200b") is None


def test_a_title_that_passes_for_another_feed_gets_its_host(app: App, replay: Replay) -> None:
    operator_feeds(app, FeedConfig("G00gle  News", "https://news.example.org/rss", "blog"))
    ada = app.signup("ada@example.org")
    resp = app.client.post("/api/me/feeds", json={"url": replay.url(GOOGLE)}, headers=ada)
    assert resp.status_code == 201, resp.text
    assert resp.json()["name"] == "Google News (127.0.0.1)", "the title 'Google News' is renamed visibly"


# -- ownership --------------------------------------------------------------------------------


def test_re_adding_an_operator_feed_does_not_take_it_over(app: App, replay: Replay) -> None:
    url = replay.url(HF)
    operator_feeds(app, FeedConfig("Hugging Face", url, "blog"))
    before = row(app, url)
    ada = app.signup("ada@example.org")
    for spelling in (url, url.replace("http://", "HTTP://") + "#top"):
        resp = app.client.post("/api/me/feeds", json={"url": spelling, "name": "Ada's pick"}, headers=ada)
        assert resp.status_code == 200, resp.text
        assert resp.json()["id"] == before.id and not resp.json()["mine"]
        assert resp.json()["name"] == "Hugging Face"
    after = row(app, url)
    assert (after.added_by, after.reader_added, after.name) == (None, False, "Hugging Face")
    assert feed_trust(after.url, after.kind, after.reader_added, "") == Trust.OPERATOR
    assert app.client.get("/api/me/feeds", headers=ada).json() == []
    gone = app.client.delete(f"/api/me/feeds/{before.id}", headers=ada)
    assert gone.status_code == 403 and row(app, url).scheduled


def test_an_operator_feed_under_another_spelling_is_the_same_feed(app: App, replay: Replay) -> None:
    listed = "HTTPS://News.Example.ORG:443/feed.xml"
    operator_feeds(app, FeedConfig("Example News", listed, "blog"))
    ada = app.signup("ada@example.org")
    for spelling in ("https://news.example.org/feed.xml", "https://NEWS.example.org:443/feed.xml#x"):
        resp = app.client.post("/api/me/feeds", json={"url": spelling, "name": "Mine"}, headers=ada)
        assert resp.status_code == 200, resp.text
        assert (
            resp.json()["url"] == listed and not resp.json()["mine"] and resp.json()["name"] == "Example News"
        )
    assert [(f.url, f.added_by, f.reader_added) for f in app.feeds()] == [(listed, None, False)]
    assert replay.log() == [] or all(e["path"].startswith("/_replay/") for e in replay.log()), "never fetched"


def test_an_unfollowed_operator_feed_is_a_409_and_stays_the_operators(app: App, replay: Replay) -> None:
    url = replay.url(HF)
    operator_feeds(app, FeedConfig("Hugging Face", url, "blog"))
    operator_feeds(app)  # removed from feeds.toml: unscheduled, its items stay
    assert not row(app, url).scheduled
    ada = app.signup("ada@example.org")
    resp = app.client.post("/api/me/feeds", json={"url": url, "name": "Mine now"}, headers=ada)
    assert resp.status_code == 409 and "operator's feed 'Hugging Face'" in resp.json()["detail"]
    after = row(app, url)
    assert (after.added_by, after.reader_added, after.name, after.scheduled) == (
        None,
        False,
        "Hugging Face",
        False,
    )


def test_a_readers_feed_the_operator_lists_becomes_the_operators(app: App, replay: Replay) -> None:
    ada = app.signup("ada@example.org")
    url = replay.url(GOOGLE)
    added = app.client.post("/api/me/feeds", json={"url": url}, headers=ada).json()
    assert row(app, url).reader_added
    operator_feeds(app, FeedConfig("Google AI", url, "blog"))
    after = row(app, url)
    assert (after.added_by, after.reader_added, after.name) == (None, False, "Google AI")
    assert app.client.delete(f"/api/me/feeds/{added['id']}", headers=ada).status_code == 403
    assert app.client.get("/api/me/feeds", headers=ada).json() == [], "no longer counted as Ada's"


# -- who sees a reader's URL -------------------------------------------------------------------


def test_a_readers_feed_url_is_shown_to_that_reader_only(app: App, replay: Replay, tmp_path: Path) -> None:
    operator_feeds(app, FeedConfig("Hugging Face", replay.url(HF), "blog"))
    ada, bob = app.signup("ada@example.org"), app.signup("bob@example.org")
    secret = replay.url(GOOGLE) + "?token=s3cret-feed-token"
    added = app.client.post("/api/me/feeds", json={"url": secret, "name": "Ada's alerts"}, headers=ada)
    assert added.status_code == 201, added.text

    def urls(headers: dict[str, str] | None) -> dict[str, str | None]:
        resp = app.client.get("/api/feeds", headers=headers or {})
        assert resp.status_code == 200
        return {f["name"]: f["url"] for f in resp.json()}

    assert urls(ada) == {"Hugging Face": replay.url(HF), "Ada's alerts": secret}
    for someone in (None, bob):
        assert urls(someone) == {"Hugging Face": replay.url(HF), "Ada's alerts": None}
        assert "s3cret" not in app.client.get("/api/feeds", headers=someone or {}).text
    assert app.client.get("/api/me/feeds", headers=bob).json() == []
    page = app.client.get("/feeds")
    assert page.status_code == 200 and "Ada&#39;s alerts" in page.text and "s3cret" not in page.text
    opml = app.client.get("/api/feeds.opml")
    assert replay.url(HF) in opml.text and "s3cret" not in opml.text and "Ada" not in opml.text

    # the operator: every URL, with who added it
    runner = CliRunner()
    env = {
        "AGGREGATOR_DATABASE_URL": app.settings.database_url,
        "AGGREGATOR_FEEDS_FILE": str(app.settings.feeds_file),
        "COLUMNS": "400",
    }
    get_settings.cache_clear()
    try:
        from aggregator.cli.app import app as cli

        result = runner.invoke(cli, ["feeds", "list"], env=env)
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert "s3cret-feed-token" in result.output and "ada@example.org" in result.output
    assert "operator" in result.output and replay.url(HF) in result.output


def test_a_hidden_url_is_taken_out_of_errors_too(app: App, replay: Replay) -> None:
    ada = app.signup("ada@example.org")
    secret = replay.url(GOOGLE) + "?token=s3cret"
    added = app.client.post("/api/me/feeds", json={"url": secret}, headers=ada).json()
    with session_factory(app.engine)() as s:
        (state,) = [f for f in feed_states(s) if f.id == added["id"]]
    path = secret.split("127.0.0.1", 1)[1].split("/", 1)[1]
    state = dataclasses.replace(
        state, last_error=f"cannot add {secret}: HTTP 500", parse_problems=f"bad entry at /{path}"
    )
    (seen,) = as_seen_by([state], None)
    assert seen.url is None and "s3cret" not in f"{seen.last_error} {seen.parse_problems}"
    assert seen.last_error == f"cannot add {HIDDEN_URL}: HTTP 500"
    (own,) = as_seen_by([state], state.added_by)
    assert own == state


def test_the_profile_form_refuses_look_alikes_and_operator_feeds(app: App, replay: Replay) -> None:
    operator_feeds(app, FeedConfig("Hugging Face", replay.url(HF), "blog"))
    operator_feeds(app, FeedConfig("OpenAI Blog", "https://openai.com/news/rss.xml", "blog"))  # HF unfollowed
    assert app.client.post("/api/readers", json={"email": "ada@example.org"}).status_code == 201
    sign_in(app.client, "ada@example.org")
    csrf = _csrf_of(app.client.get("/me/profile").text)
    alike = app.client.post(
        "/me/feeds", data={"url": replay.url(BAIR), "name": "0penAI\u200b blog", "csrf_token": csrf}
    )
    assert (
        alike.status_code == 422
        and "looks like the name of another feed, &#39;OpenAI Blog&#39;" in alike.text
    )
    taken = app.client.post("/me/feeds", data={"url": replay.url(HF), "name": "", "csrf_token": csrf})
    assert taken.status_code == 409 and "ask the operator" in taken.text
    assert {f.url: f.added_by for f in app.feeds()} == {
        replay.url(HF): None,
        "https://openai.com/news/rss.xml": None,
    }


def test_a_readers_name_yields_to_a_feed_the_operator_lists_later(app: App, replay: Replay) -> None:
    ada = app.signup("ada@example.org")
    added = app.client.post(
        "/api/me/feeds", json={"url": replay.url(GOOGLE), "name": "OpenAI News"}, headers=ada
    ).json()
    assert added["name"] == "OpenAI News"
    operator_feeds(app, FeedConfig("0penAI  news", "https://openai.com/news/rss.xml", "blog"))
    assert row(app, replay.url(GOOGLE)).name == "OpenAI News (127.0.0.1)"
    assert row(app, "https://openai.com/news/rss.xml").name == "0penAI  news"
    operator_feeds(app, FeedConfig("0penAI  news", "https://openai.com/news/rss.xml", "blog"))
    assert row(app, replay.url(GOOGLE)).name == "OpenAI News (127.0.0.1)", "renamed once"
