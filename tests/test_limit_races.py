"""Per-reader limits under concurrent requests (issue 14, finding 10), on SQLite and PostgreSQL,
through a real uvicorn server on loopback: 45 requests of one reader released at once by a
barrier, each on its own connection. Exactly the limit is allowed, the rest get the documented
answer (feeds: 409; library and topic filters: 422), and the database holds exactly the limit;
one slug asked for at once is created once (the others 409, never a 500), and so is one
subscription. Without the lock
of :func:`aggregator.store.locks.lock_reader`, 22-23 of 20 feeds were allowed."""

from __future__ import annotations

import contextlib
import datetime as dt
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from helpers import serve
from test_netguard import RSS
from test_reader_feeds import make_settings

from aggregator.accounts import library, topic_filters
from aggregator.feeds.ssrf import tls_context
from aggregator.store.db import session_factory
from aggregator.store.tables import Feed, Item, LibraryItem, Subscription, Topic

CONCURRENT = 45
CAP = 20


@contextlib.contextmanager
def feed_server() -> Iterator[str]:
    """A threaded HTTP server on loopback answering every GET with one small RSS feed (a listen
    backlog of 128, so 45 connections at once are accepted); yields its base URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
            self.send_header("Content-Length", str(len(RSS)))
            self.end_headers()
            self.wfile.write(RSS)

        def log_message(self, *args: Any) -> None:
            pass

    class Server(ThreadingHTTPServer):
        request_queue_size = 128

    server = Server(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.01,), daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def at_once(n: int, send: Callable[[httpx.Client, int], httpx.Response]) -> list[httpx.Response]:
    """``send(client, i)`` for i in 0..n-1, from n threads released together, one connection each."""
    barrier = threading.Barrier(n)
    answers: list[httpx.Response | BaseException] = [RuntimeError("not run")] * n

    def run(i: int) -> None:
        with httpx.Client(timeout=120, verify=tls_context()) as client:  # one CA bundle load, not n
            barrier.wait()
            try:
                answers[i] = send(client, i)
            except BaseException as err:  # reported below, with the others
                answers[i] = err

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=300)
    failed = [a for a in answers if isinstance(a, BaseException)]
    assert not failed, failed[:3]
    return [a for a in answers if isinstance(a, httpx.Response)]


def signup(base: str, email: str) -> dict[str, str]:
    resp = httpx.post(f"{base}/api/readers", json={"email": email}, timeout=30)
    assert resp.status_code == 201, resp.text
    return {"Authorization": f"Bearer {resp.json()['token']}"}


@pytest.mark.slow
def test_the_feed_limit_holds_under_45_concurrent_adds(
    engine: sa.Engine, database_url: str, tmp_path: Path
) -> None:
    # generous timeouts: 45 probes at once on a loaded 2-core machine
    settings = make_settings(
        database_url, tmp_path, reader_feeds_max=CAP, connect_timeout_seconds=60, total_timeout_seconds=120
    )
    with feed_server() as feeds, serve(settings, engine) as base:
        ada = signup(base, "ada@example.org")
        answers = at_once(
            CONCURRENT,
            lambda c, i: c.post(f"{base}/api/me/feeds", json={"url": f"{feeds}/feed.xml?n={i}"}, headers=ada),
        )
        codes = Counter(a.status_code for a in answers)
        assert codes == {201: CAP, 409: CONCURRENT - CAP}, [
            a.text[:300] for a in answers if a.status_code == 422
        ] or [a.text for a in answers if a.status_code >= 500]
        refused = next(a for a in answers if a.status_code == 409)
        assert "a reader may add at most 20" in refused.json()["detail"]
        mine = httpx.get(f"{base}/api/me/feeds", headers=ada, timeout=30).json()
        assert len(mine) == CAP
    with session_factory(engine)() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Feed).where(Feed.reader_added)) == CAP


def _items(engine: sa.Engine, n: int) -> list[int]:
    now = dt.datetime(2026, 6, 15, tzinfo=dt.UTC)
    with session_factory(engine)() as s, s.begin():
        rows = [
            Item(
                key=f"https://example.org/post/{i}",
                kind="post",
                title=f"Post {i}",
                url=f"https://example.org/post/{i}",
                published=now,
                content_hash=f"{i:064d}",
                first_seen_at=now,
                updated_at=now,
            )
            for i in range(n)
        ]
        s.add_all(rows)
        s.flush()
        return [r.id for r in rows]


def test_the_library_limit_holds_under_45_concurrent_saves(
    engine: sa.Engine, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(library, "MAX_ITEMS", CAP)  # 10,000 in production; same code path
    ids = _items(engine, CONCURRENT)
    settings = make_settings(database_url, tmp_path)
    with serve(settings, engine) as base:
        ada = signup(base, "ada@example.org")
        answers = at_once(
            CONCURRENT,
            lambda c, i: c.put(f"{base}/api/me/library/{ids[i]}", json={"tags": ["race"]}, headers=ada),
        )
        codes = Counter(a.status_code for a in answers)
        assert codes == {200: CAP, 422: CONCURRENT - CAP}, [a.text for a in answers if a.status_code >= 500]
        refused = next(a for a in answers if a.status_code == 422)
        assert "at most 20 saved items" in refused.text
        # a second reader has a library of their own
        bob = signup(base, "bob@example.org")
        assert (
            httpx.put(f"{base}/api/me/library/{ids[0]}", json={}, headers=bob, timeout=30).status_code == 200
        )
    with session_factory(engine)() as s:
        rows = s.execute(sa.select(LibraryItem.reader_id, sa.func.count()).group_by(LibraryItem.reader_id))
        counts = sorted(n for _, n in rows)
    assert counts == [1, CAP]


@pytest.mark.slow
def test_topic_filters_hold_their_limit_and_slugs_under_concurrency(
    engine: sa.Engine, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(topic_filters, "MAX_TOPICS_PER_READER", CAP)  # 200 in production
    settings = make_settings(database_url, tmp_path)
    with serve(settings, engine) as base:
        ada, bob = signup(base, "ada@example.org"), signup(base, "bob@example.org")

        def topic(slug: str) -> dict[str, object]:  # shared: the other reader may follow it
            return {"slug": slug, "name": slug, "phrases": ["diffusion"], "shared": True}

        answers = at_once(
            CONCURRENT, lambda c, i: c.post(f"{base}/api/topics", json=topic(f"ada-{i}"), headers=ada)
        )
        codes = Counter(a.status_code for a in answers)
        assert codes == {201: CAP, 422: CONCURRENT - CAP}, [a.text for a in answers if a.status_code >= 500]
        assert "at most 20" in next(a for a in answers if a.status_code == 422).text
        created = next(a.json()["slug"] for a in answers if a.status_code == 201)

        # one slug asked for by 45 requests of two readers at once: one 201, the rest 409, no 500
        same = at_once(
            CONCURRENT,
            lambda c, i: c.post(f"{base}/api/topics", json=topic("shared"), headers=bob if i % 2 else ada),
        )
        codes = Counter(a.status_code for a in same)
        assert codes[201] == 1 and codes[201] + codes[409] + codes[422] == CONCURRENT, codes
        # and 45 subscriptions of one reader to one topic filter at once: all fine, one row
        subs = at_once(
            CONCURRENT,
            lambda c, i: c.post(f"{base}/api/me/subscriptions", json={"topic": created}, headers=bob),
        )
        assert {a.status_code for a in subs} <= {201, 202}, [a.text for a in subs if a.status_code >= 300]
    with session_factory(engine)() as s:
        owned = s.execute(
            sa.select(Topic.created_by, sa.func.count())
            .where(Topic.created_by.is_not(None))
            .group_by(Topic.created_by)
        )
        assert sorted(n for _, n in owned) in ([1, CAP], [CAP]), "Ada's 20, and 'shared' for one of them"
        assert s.scalar(sa.select(sa.func.count()).select_from(Subscription)) == 1


#: Every two share a key ("OpenAl Blog", with a lower-case L, passes for "OpenAI Blog" but not
#: for "openai blog", so it is not among them).
LOOK_ALIKES = [
    "OpenAI Blog",
    "0penAI blog",
    "OpenAI\u200bBlog",
    "\u041epenAI Blog",
    "OPENAI  BLOG",
    "openai-blog",
]


def test_look_alike_names_of_different_readers_at_once_pass_once(
    engine: sa.Engine, database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(
        database_url,
        tmp_path,
        auth_rate_limit="1000/minute",
        connect_timeout_seconds=60,
        total_timeout_seconds=120,
    )
    n = 2 * len(LOOK_ALIKES)
    with feed_server() as feeds, serve(settings, engine) as base:
        tokens = [signup(base, f"reader{i}@example.org") for i in range(n)]
        answers = at_once(
            n,
            lambda c, i: c.post(
                f"{base}/api/me/feeds",
                json={"url": f"{feeds}/feed.xml?r={i}", "name": LOOK_ALIKES[i % len(LOOK_ALIKES)]},
                headers=tokens[i],
            ),
        )
        codes = Counter(a.status_code for a in answers)
        assert codes == {201: 1, 422: n - 1}, [a.text for a in answers if a.status_code >= 500]
    with session_factory(engine)() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Feed)) == 1
