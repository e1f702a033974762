"""Security headers (CSP, nosniff, Referrer-Policy, X-Frame-Options, HSTS over HTTPS only, per a
trusted proxy), the ``Secure`` session cookie behind a trusted HTTPS proxy, and remote images
(tracking pixels) in the real BAIR feed's HTML served as links, never as ``<img>`` (issue 14,
findings 12 and 14)."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import sqlalchemy as sa
from conftest import Replay
from fastapi.testclient import TestClient
from helpers import hidden_field, signin_link
from test_reader_feeds import BAIR, make_settings

from aggregator.api.app import create_app
from aggregator.config import FeedConfig
from aggregator.digest.remote_images import without_remote_images
from aggregator.feeds.ingest import sync_feeds
from aggregator.store.db import session_factory
from aggregator.store.tables import Item
from aggregator.worker import refresh

REMOTE_IMG = re.compile(r"<img\b[^>]*\bsrc=\"https?://", re.IGNORECASE)


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert match is not None
    return match.group(1)


def test_headers_on_pages_and_api_and_hsts_only_over_https(
    engine: sa.Engine, database_url: str, tmp_path: Path
) -> None:
    settings = make_settings(database_url, tmp_path, trusted_proxies=["10.0.0.0/8"])
    with TestClient(create_app(settings, engine), client=("10.0.0.5", 4000)) as proxy:
        for path in ("/", "/feeds", "/signin", "/api/digest", "/healthz"):
            resp = proxy.get(path)
            assert resp.status_code == 200, path
            csp = resp.headers["content-security-policy"]
            assert "default-src 'none'" in csp and "img-src 'self' data:" in csp
            assert "script-src 'self';" in csp  # the keyboard's script, never an inline one
            assert resp.headers["x-content-type-options"] == "nosniff"
            assert resp.headers["referrer-policy"] == "same-origin"
            assert resp.headers["x-frame-options"] == "DENY"
            assert "strict-transport-security" not in resp.headers, "plain HTTP: no HSTS"
        https = {"X-Forwarded-Proto": "https"}
        assert proxy.get("/", headers=https).headers["strict-transport-security"] == "max-age=31536000"
        assert "script-src 'self'" in proxy.get("/docs").headers["content-security-policy"]
        # the session cookie is Secure when the trusted proxy says the client used HTTPS
        assert proxy.post("/api/readers", json={"email": "ada@example.org"}).status_code == 201
        page = proxy.get(signin_link(proxy.app, "ada@example.org"), headers=https)
        signed = proxy.post(
            "/signin/link",
            data={"t": hidden_field(page.text, "t"), "csrf_token": _csrf(page.text)},
            headers=https,
            follow_redirects=False,
        )
        assert signed.status_code == 303
        assert "secure" in signed.headers["set-cookie"].lower()
    with TestClient(create_app(settings, engine), client=("192.0.2.1", 4000)) as direct:
        # anyone else's X-Forwarded-Proto is ignored
        resp = direct.get("/", headers={"X-Forwarded-Proto": "https"})
        assert "strict-transport-security" not in resp.headers


def test_remote_images_of_a_real_feed_are_served_as_links(
    engine: sa.Engine, database_url: str, tmp_path: Path, replay: Replay
) -> None:
    settings = make_settings(database_url, tmp_path)
    with session_factory(engine)() as s, s.begin():
        sync_feeds(s, [FeedConfig("BAIR", replay.url(BAIR), "blog")], dt.datetime.now(dt.UTC))
    refresh.refresh_feeds(engine, settings)
    with session_factory(engine)() as s:
        items = [i for i in s.scalars(sa.select(Item)) if REMOTE_IMG.search(i.summary_html or "")]
    assert items, "the BAIR capture has posts with remote images"
    with TestClient(create_app(settings, engine)) as client:
        for item in items:
            served = client.get(f"/api/items/{item.id}").json()["summary_html"]
            assert not REMOTE_IMG.search(served), served[:500]
            srcs = re.findall(r"<img\b[^>]*\bsrc=\"(https?://[^\"]+)\"", item.summary_html or "")
            for src in srcs:  # each image is still reachable, as a link
                assert f'href="{src}"' in served.replace("&amp;", "&").replace(src.replace("&", "&amp;"), src)
            assert "[image" in served


def test_without_remote_images_keeps_inline_and_drops_odd_sources() -> None:
    html = (
        '<p>a <img src="https://t.example/p.gif?u=1" alt="chart"> b '
        '<img src="data:image/png;base64,AAAA" alt="x"> <img src="javascript:alert(1)"></p>'
    )
    out = without_remote_images(html) or ""
    assert '<a href="https://t.example/p.gif?u=1" rel="noopener noreferrer">[image: chart]</a>' in out
    assert "javascript" not in out and "t.example/p.gif" not in out.split("<a")[0]
    assert without_remote_images(None) is None and without_remote_images("<p>x</p>") == "<p>x</p>"
