"""The trust model of ingest (issue 14, finding 1), on SQLite and PostgreSQL, with the real
replayed arXiv cs.LG listing and OpenAI news feed as the operator's feeds, and a reader-added
feed served on loopback that tries to rewrite them: a paper announced as
``oai:arXiv.org:2606.13733v9`` ("RETRACTED", "Mallory Attacker") and OpenAI's post link reused
with ``?utm_source=x#spoof``. Neither changes anything; the reader's own post is ingested and
links the paper; an operator feed takes back a post a reader's feed announced first."""

from __future__ import annotations

import datetime as dt
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import Replay
from fastapi.testclient import TestClient
from test_reader_feeds import make_settings

from aggregator.api.app import create_app
from aggregator.config import FeedConfig
from aggregator.feeds.ingest import sync_feeds
from aggregator.feeds.paper_links import link_items
from aggregator.feeds.trust import Owner, Trust, feed_trust, verdict
from aggregator.store.db import session_factory
from aggregator.store.tables import Feed, Item, ItemLink, ItemOwner, ItemSource
from aggregator.worker import refresh

PAPER = "2606.13733"  # first paper of the replayed cs.LG listing of 2026-06-15
OPENAI = "/static/blogs/openai-news-2026-04-27-rss2-distill.xml"
POST = "https://openai.com/index/introducing-gpt-5-5"

SPOOF = f"""<?xml version="1.0" encoding="UTF-8"?>
<rss xmlns:arxiv="http://arxiv.org/schemas/atom" xmlns:dc="http://purl.org/dc/elements/1.1/" version="2.0">
<channel><title>Mallory's reading list</title><link>https://mallory.example/</link>
<description>papers and posts</description>
<item>
  <title>RETRACTED: How Task Structure Limits Multi-Agent Success</title>
  <link>https://arxiv.org/abs/{PAPER}</link>
  <description>arXiv:{PAPER}v9 Announce Type: replace
Abstract: This paper has been retracted. See https://mallory.example/login</description>
  <guid isPermaLink="false">oai:arXiv.org:{PAPER}v9</guid>
  <category>cs.LG</category>
  <pubDate>Mon, 15 Jun 2026 00:00:00 -0400</pubDate>
  <arxiv:announce_type>replace</arxiv:announce_type>
  <dc:creator>Mallory Attacker</dc:creator>
</item>
</channel></rss>""".encode()

SPOOF_POSTS = b"""<?xml version="1.0" encoding="UTF-8"?>
<rss version="2.0"><channel><title>Mallory's blog</title><link>https://mallory.example/</link>
<description>posts</description>
<item>
  <title>Introducing GPT-5.5 (recalled)</title>
  <description>GPT-5.5 has been recalled. Reset your password at https://mallory.example/</description>
  <link>https://openai.com/index/introducing-gpt-5-5?utm_source=x#spoof</link>
  <guid isPermaLink="true">https://openai.com/index/introducing-gpt-5-5?utm_source=x#spoof</guid>
  <pubDate>Thu, 23 Apr 2026 11:00:00 GMT</pubDate>
</item>
<item>
  <title>Notes on multi-agent limits</title>
  <description>My notes on arxiv.org/abs/2606.13733: the minimum cut cost bound.</description>
  <link>https://mallory.example/notes/multi-agent</link>
  <pubDate>Tue, 16 Jun 2026 09:00:00 GMT</pubDate>
</item>
</channel></rss>"""


class FeedServer:
    """A loopback server answering ``/papers.xml`` and ``/posts.xml`` with the spoofs."""

    def __init__(self) -> None:
        bodies = {"/papers.xml": SPOOF, "/posts.xml": SPOOF_POSTS}

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                body = bodies.get(self.path, b"")
                self.send_response(200 if body else 404)
                self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, args=(0.01,), daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def mallory() -> Iterator[FeedServer]:
    server = FeedServer()
    yield server
    server.close()


def _item(engine: sa.Engine, where: Any) -> Item:
    with session_factory(engine)() as s:
        item = s.scalar(sa.select(Item).where(where))
        assert item is not None
        s.expunge(item)
        return item


def _sources(engine: sa.Engine, item_id: int) -> set[int]:
    with engine.connect() as c:
        return set(c.scalars(sa.select(ItemSource.feed_id).where(ItemSource.item_id == item_id)))


def _add(settings: Any, engine: sa.Engine, *urls: str) -> list[int]:
    """Sign Mallory up and add ``urls`` as her feeds; their ids."""
    with TestClient(create_app(settings, engine)) as client:
        token = client.post("/api/readers", json={"email": "mallory@example.org"}).json()["token"]
        ids = []
        for url in urls:
            headers = {"Authorization": f"Bearer {token}"}
            added = client.post("/api/me/feeds", json={"url": url}, headers=headers)
            assert added.status_code == 201, added.text
            ids.append(added.json()["id"])
    return ids


def test_reader_feed_cannot_rewrite_a_paper_or_a_post(
    engine: sa.Engine, database_url: str, tmp_path: Path, replay: Replay, mallory: FeedServer
) -> None:
    settings = make_settings(database_url, tmp_path)
    now = dt.datetime.now(dt.UTC)
    with session_factory(engine)() as s, s.begin():
        sync_feeds(
            s,
            [
                FeedConfig("arXiv cs.LG", replay.url("/rss/cs.LG"), "arxiv"),
                FeedConfig("OpenAI News", replay.url(OPENAI), "blog"),
            ],
            now,
        )
    refresh.refresh_feeds(engine, settings)
    paper, post = _item(engine, Item.arxiv_id == PAPER), _item(engine, Item.url == POST)
    assert (paper.version, paper.authors) == (1, ["Shi Pan", "Ming Luo"])

    papers_id, posts_id = _add(settings, engine, mallory.base + "/papers.xml", mallory.base + "/posts.xml")
    report = refresh.refresh_feeds(engine, settings)
    outcomes = {o.feed_id: o for o in report.outcomes}
    assert outcomes[papers_id].new_items == 0 and outcomes[papers_id].updated_items == 0
    assert outcomes[posts_id].new_items == 1 and outcomes[posts_id].updated_items == 0

    after_paper, after_post = _item(engine, Item.arxiv_id == PAPER), _item(engine, Item.url == POST)
    for before, after in ((paper, after_paper), (post, after_post)):
        for column in ("title", "authors", "summary", "summary_html", "version", "content_hash", "url"):
            assert getattr(after, column) == getattr(before, column), column
    assert "RETRACTED" not in after_paper.title and "Mallory Attacker" not in after_paper.authors
    assert not {papers_id, posts_id} & (_sources(engine, paper.id) | _sources(engine, post.id))

    # the reader's own post is stored, owned by the feed, and links the paper
    notes = _item(engine, Item.url == "https://mallory.example/notes/multi-agent")
    assert notes.id in report.new_item_ids
    with session_factory(engine)() as s, s.begin():
        link_items(s, report.new_item_ids)  # as the worker does after each refresh
    with engine.connect() as c:
        assert c.scalar(sa.select(ItemOwner.feed_id).where(ItemOwner.item_id == notes.id)) == posts_id
        linked = c.scalars(sa.select(ItemLink.paper_id).where(ItemLink.post_id == notes.id)).all()
        assert linked == [paper.id]

    # the real arXiv feed still updates its paper (a v2 would win; v1 again changes nothing)
    refresh.refresh_feeds(engine, settings, include_all=True)
    assert _item(engine, Item.arxiv_id == PAPER).content_hash == paper.content_hash


def test_operator_feed_takes_back_a_post_a_reader_feed_announced_first(
    engine: sa.Engine, database_url: str, tmp_path: Path, replay: Replay, mallory: FeedServer
) -> None:
    settings = make_settings(database_url, tmp_path)
    _add(settings, engine, mallory.base + "/papers.xml", mallory.base + "/posts.xml")
    refresh.refresh_feeds(engine, settings)
    squatted = _item(engine, Item.key == POST)
    assert squatted.title == "Introducing GPT-5.5 (recalled)"  # first come: no one else had it
    with engine.connect() as c:  # and it made no paper: paper metadata comes from arXiv only
        assert c.scalar(sa.select(sa.func.count()).select_from(Item).where(Item.kind == "paper")) == 0

    with session_factory(engine)() as s, s.begin():
        sync_feeds(s, [FeedConfig("OpenAI News", replay.url(OPENAI), "blog")], dt.datetime.now(dt.UTC))
        openai_id = s.scalar(sa.select(Feed.id).where(Feed.name == "OpenAI News"))
    refresh.refresh_feeds(engine, settings)
    fixed = _item(engine, Item.key == POST)
    assert fixed.id == squatted.id and fixed.title == "Introducing GPT-5.5"
    with engine.connect() as c:
        assert c.scalar(sa.select(ItemOwner.feed_id).where(ItemOwner.item_id == fixed.id)) == openai_id
    # the reader's feed cannot take it back
    refresh.refresh_feeds(engine, settings, include_all=True)
    assert _item(engine, Item.key == POST).title == "Introducing GPT-5.5"


def test_trust_levels_and_verdicts() -> None:
    api = "https://export.arxiv.org/api/query"
    assert feed_trust("http://127.0.0.1:9/rss/cs.LG", "arxiv", False, api) is Trust.ARXIV
    assert feed_trust(api + "?id_list=1", None, False, api) is Trust.ARXIV
    assert feed_trust("https://blog.example/rss", "blog", False, api) is Trust.OPERATOR
    assert feed_trust("https://blog.example/rss", "arxiv", True, api) is Trust.READER
    assert feed_trust("https://rss.arxiv.org/rss/cs.LG", "arxiv", True, api) is Trust.ARXIV
    redirected = feed_trust("https://arxiv.org/x", None, True, api, final_url="https://evil.example/")
    assert redirected is Trust.READER
    op, reader = Owner(1, Trust.OPERATOR), Owner(2, Trust.READER)
    assert verdict("post", 2, Trust.READER, op) == "refuse"
    assert verdict("post", 3, Trust.OPERATOR, op) == "source_only"
    assert verdict("post", 1, Trust.OPERATOR, reader) == "take_over"
    assert verdict("post", 2, Trust.READER, reader) == "write"
    assert verdict("post", 2, Trust.READER, None) == "refuse"
    assert verdict("paper", 2, Trust.READER, None) == "refuse"
    assert verdict("paper", 5, Trust.ARXIV, Owner(4, Trust.ARXIV)) == "write"
