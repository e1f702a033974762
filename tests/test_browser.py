"""The reader pages in a real browser: headless Chromium (Debian's, driven by Playwright)
against the app served by uvicorn on loopback, with the feeds of 2026-06-15 replayed by
feedreplay. Sign in, read the digest, 👍 an item and see the ranking change, subscribe to a
topic filter and see its label on the digest. A screenshot of /me is saved to /tmp. And a
newcomer without network access: every feed fails, the digest says so and links the feed
status, /docs renders from loopback only, and a bad parameter gets an HTML error page.

Skipped only when /usr/bin/chromium is missing outside CI; in CI (``CI=true``) they must run.
"""

from __future__ import annotations

import concurrent.futures
import os
import re
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import SHARED, Replay, close_after_browser_tests
from helpers import serve
from test_email import SmtpServer

from aggregator.accounts import readers
from aggregator.config import Settings, load_feeds_file
from aggregator.store.db import make_engine, session_factory, upgrade
from aggregator.worker import refresh
from aggregator.worker import tasks as jobs

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
DAY = "2026-06-15"
SCREENSHOT = Path("/tmp/aggregator-me.png")
INTERESTS = """
[interests]
text = "reasoning and reinforcement learning for large language models; diffusion models for video"
keywords = ["large language models", "reinforcement learning", "diffusion models"]
"""

if not Path(CHROMIUM).exists():
    if os.environ.get("CI") == "true":
        raise RuntimeError(f"CI=true but {CHROMIUM} is missing: the browser tests must run in CI")
    pytest.skip(
        f"{CHROMIUM} is missing (apt-get install chromium); browser tests run in CI",
        allow_module_level=True,
    )

sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the test extra)")


@dataclass
class Site:
    base: str
    engine: sa.Engine
    smtp: SmtpServer | None = None  # where the site's mails go, when it sends any

    def new_reader(self, email: str) -> str:
        """A new reader's API token (verified, as ``aggregator users add`` makes them)."""
        with session_factory(self.engine)() as s, s.begin():
            return readers.create_reader(s, email, verified=True).token


@pytest.fixture
def site(browser_site: Site) -> Site:
    """The session's :func:`build_site` (``conftest.browser_site``): the browser modules share
    it, and each test signs up readers of its own."""
    return browser_site


def build_site(replay_server: Replay, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The replayed feeds of 2026-06-15 fetched into a temporary SQLite database and ranked,
    served by a real uvicorn on a free loopback port (in a thread)."""
    tmp = tmp_path_factory.mktemp("browser")
    replay_server.set_day(DAY)
    url = f"sqlite:///{tmp / 'browser.db'}"
    smtp = SmtpServer().start()  # sign-in links are mailed: the tests read them here
    settings = Settings(
        database_url=url,
        feeds_file=replay_server.feeds_toml(tmp, extra=INTERESTS),
        arxiv_delay_seconds=0.2,
        read_timeout_seconds=5,
        total_timeout_seconds=15,
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_security="none",
        smtp_timeout_seconds=10.0,
    )  # type: ignore[call-arg]
    engine = make_engine(url)
    upgrade(engine)
    feeds_file = load_feeds_file(settings.feeds_file)
    report = refresh.refresh_feeds(engine, settings, feeds_file, include_all=True)
    assert report.new_items > 1000
    jobs.update_ranking(engine, settings, feeds_file.interests)
    with serve(settings, engine) as base:
        yield Site(base, engine, smtp)
    smtp.stop()
    engine.dispose()


_CHROMIUM: list[object] = []  # the running browser, while browser tests follow one another


def _close_chromium(playwright: object, chromium: object) -> None:
    _CHROMIUM.clear()
    chromium.close()  # type: ignore[attr-defined]
    playwright.stop()  # type: ignore[attr-defined]


@pytest.fixture
def browser(site: Site) -> object:
    """Headless Chromium, shared by consecutive browser tests (the four browser modules): it is
    closed before the next test that is not a browser test is set up (``conftest.
    pytest_runtest_setup``), because the sync Playwright API keeps an event loop running in this
    thread, and other tests (and the feed refresh of ``site``, so it starts first) need
    ``asyncio.run``. Each test gets a fresh context (``page``)."""
    if not _CHROMIUM:
        playwright = sync_api.sync_playwright().start()
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, headless=True)
        _CHROMIUM.append(chromium)
        close_after_browser_tests(lambda: _close_chromium(playwright, chromium))
    return _CHROMIUM[0]


@pytest.fixture
def page(browser: object) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 900, "height": 1200})  # type: ignore[attr-defined]
    pg = context.new_page()
    pg.set_default_timeout(30_000)
    yield pg
    context.close()


def mailed_link(site: Site, address: str, seen: int) -> str:
    """The path of the sign-in link in the first mail to ``address`` after the first ``seen``
    messages the site's SMTP server accepted (waits up to 15 s: it is sent after the answer)."""
    assert site.smtp is not None
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        for msg in site.smtp.handler.parsed()[seen:]:
            if msg["To"] == address:
                body = msg.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
                found = re.search(r"https?://[^/\s]+(/signin/link\?t=\S+)", body)
                assert found is not None, body
                return found.group(1)
        time.sleep(0.05)
    raise AssertionError(f"no sign-in link mailed to {address}")


def sign_in(page: object, site: Site, token: str) -> None:
    """Sign in as the reader of API token ``token`` the way a person does: /me sends to
    /signin, the address is typed in, the link is taken from the mail the site sent (to the
    test's aiosmtpd), opened, and its button pressed."""
    with session_factory(site.engine)() as s:
        reader = readers.reader_for_token(s, token)
        assert reader is not None
        address = reader.email
    assert site.smtp is not None
    seen = len(site.smtp.handler.messages)
    page.goto(f"{site.base}/me?date={DAY}&limit=100")  # type: ignore[attr-defined]
    assert "/signin" in page.url  # type: ignore[attr-defined]
    page.fill("#email", address)  # type: ignore[attr-defined]
    page.click("button[type=submit]")  # type: ignore[attr-defined]
    assert "If an account exists" in page.inner_text("#link-sent")  # type: ignore[attr-defined]
    page.goto(site.base + mailed_link(site, address, seen))  # type: ignore[attr-defined]
    page.click("#use-link")  # type: ignore[attr-defined]
    page.wait_for_url(f"{site.base}/me")  # type: ignore[attr-defined]
    page.goto(f"{site.base}/me?date={DAY}&limit=100")  # type: ignore[attr-defined]


def order(page: object) -> list[int]:
    ids = page.eval_on_selector_all("article.entry", "els => els.map(e => Number(e.dataset.itemId))")  # type: ignore[attr-defined]
    return [int(i) for i in ids]


def test_sign_in_and_read_the_digest(page: object, site: Site) -> None:
    token = site.new_reader("reader1@example.com")
    page.goto(f"{site.base}/signin/link?t=not-a-link")  # type: ignore[attr-defined]
    assert "not valid" in page.inner_text(".error")  # type: ignore[attr-defined]
    sign_in(page, site, token)
    assert "reader1@example.com" in page.inner_text("header")  # type: ignore[attr-defined]
    ids = order(page)
    assert len(ids) == 100 and len(set(ids)) == 100
    first = page.locator("article.entry").first  # type: ignore[attr-defined]
    assert first.locator("h2 a").inner_text() and first.locator("button.vote").count() == 2
    scores = [float(s) for s in page.locator("article.entry .score").all_inner_texts()]  # type: ignore[attr-defined]
    assert scores == sorted(scores, reverse=True)
    page.screenshot(path=str(SCREENSHOT), full_page=False)  # type: ignore[attr-defined]
    assert SCREENSHOT.stat().st_size > 10_000
    page.click("text=Sign out")  # type: ignore[attr-defined]
    page.goto(f"{site.base}/me")  # type: ignore[attr-defined]
    assert "/signin" in page.url  # type: ignore[attr-defined]


def test_thumbs_up_changes_the_ranking(page: object, site: Site) -> None:
    sign_in(page, site, site.new_reader("reader2@example.com"))
    before = order(page)
    liked = before[70]
    page.click(f"#item-{liked} button.vote.up")  # type: ignore[attr-defined]
    page.wait_for_load_state("load")  # type: ignore[attr-defined]
    assert page.get_attribute(f"#item-{liked} button.vote.up", "aria-pressed") == "true"  # type: ignore[attr-defined]
    after = order(page)
    assert after != before
    assert liked in after and after.index(liked) < 70  # the liked item moved up
    risers = [i for i in after[:30] if i not in before[:30]]
    assert risers, "a 👍 should bring other items into the top 30"
    # 👎 on the new first item pushes it down
    top = after[0]
    page.click(f"#item-{top} button.vote.down")  # type: ignore[attr-defined]
    page.wait_for_load_state("load")  # type: ignore[attr-defined]
    final = order(page)
    assert top not in final[:1]


def test_subscribing_to_a_topic_labels_the_digest(page: object, site: Site) -> None:
    sign_in(page, site, site.new_reader("reader3@example.com"))
    assert page.locator(".chip.topic").count() == 0  # type: ignore[attr-defined]
    page.goto(f"{site.base}/topics")  # type: ignore[attr-defined]
    card = page.locator("#topic-llm-reasoning")  # type: ignore[attr-defined]
    card.locator("button", has_text="Subscribe").click()
    page.wait_for_load_state("load")  # type: ignore[attr-defined]
    assert page.locator("#topic-llm-reasoning button", has_text="Unsubscribe").count() == 1  # type: ignore[attr-defined]
    page.goto(f"{site.base}/me?date={DAY}&limit=100")  # type: ignore[attr-defined]
    labels = page.locator("article.entry .chip.topic[data-topic=llm-reasoning]")  # type: ignore[attr-defined]
    assert labels.count() > 0 and labels.first.inner_text() == "LLM reasoning"
    page.click("text=group by topic")  # type: ignore[attr-defined]
    page.wait_for_load_state("load")  # type: ignore[attr-defined]
    assert page.locator("#group-llm-reasoning").count() == 1  # type: ignore[attr-defined]
    # a reader who only follows a topic: the items matching nothing show no "0.000" score
    assert not [s for s in page.locator("article.entry .score").all_inner_texts() if float(s) == 0]  # type: ignore[attr-defined]
    page.screenshot(path=str(SCREENSHOT.with_name("aggregator-me-topics.png")))  # type: ignore[attr-defined]
    # unsubscribing removes the labels
    page.goto(f"{site.base}/topics")  # type: ignore[attr-defined]
    page.locator("#topic-llm-reasoning button", has_text="Unsubscribe").click()  # type: ignore[attr-defined]
    page.wait_for_load_state("load")  # type: ignore[attr-defined]
    page.goto(f"{site.base}/me?date={DAY}&limit=100")  # type: ignore[attr-defined]
    assert page.locator(".chip.topic").count() == 0  # type: ignore[attr-defined]


def test_profile_page_saves_through_the_form(page: object, site: Site) -> None:
    sign_in(page, site, site.new_reader("reader4@example.com"))
    page.click("text=Profile")  # type: ignore[attr-defined]
    page.fill("#interests", "robot manipulation & <grasping>")  # type: ignore[attr-defined]
    page.fill("#muted", "survey")  # type: ignore[attr-defined]
    page.click("button:has-text('Save')")  # type: ignore[attr-defined]
    page.wait_for_url("**/me/profile?saved=true")  # type: ignore[attr-defined]
    assert page.input_value("#interests") == "robot manipulation & <grasping>"  # type: ignore[attr-defined]
    page.fill("#seed_papers", "not a paper")  # type: ignore[attr-defined]
    page.click("button:has-text('Save')")  # type: ignore[attr-defined]
    assert "not an arXiv id" in page.inner_text(".error")  # type: ignore[attr-defined]


# --- a newcomer without network access ---------------------------------------------------------------


@pytest.fixture(scope="module")
def offline_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    """The 25 replayed feeds of feeds.replay.toml pointed at a closed loopback port (as if the
    machine had no network), after one real fetch pass: every feed failed."""
    tmp = tmp_path_factory.mktemp("offline")
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        closed = f"http://127.0.0.1:{sock.getsockname()[1]}"  # nothing listens once closed
    feeds = tmp / "feeds.toml"
    feeds.write_text((SHARED / "feeds.replay.toml").read_text().replace("http://127.0.0.1:8765", closed))
    url = f"sqlite:///{tmp / 'offline.db'}"
    settings = Settings(
        database_url=url, feeds_file=feeds, arxiv_delay_seconds=0.1, connect_timeout_seconds=3
    )  # type: ignore[call-arg]
    engine = make_engine(url)
    upgrade(engine)
    # in a thread of its own: the refresh runs asyncio.run, and Playwright's loop may hold this one
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        report = pool.submit(
            refresh.refresh_feeds, engine, settings, load_feeds_file(feeds), include_all=True
        ).result()
    assert len(report.outcomes) == report.count("failed") == 25
    with serve(settings, engine) as base:
        yield Site(base, engine)
    engine.dispose()


def test_offline_newcomer_sees_why_the_digest_is_empty(page: object, offline_site: Site) -> None:
    base = offline_site.base
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))  # type: ignore[attr-defined]
    page.goto(f"{base}/")  # type: ignore[attr-defined]
    banner = page.locator("#failing-feeds")  # type: ignore[attr-defined]
    assert banner.is_visible()
    assert "25 of 25 feeds failed on their last fetch — see feed status" in banner.inner_text()
    page.screenshot(path="/tmp/aggregator-offline-digest.png")  # type: ignore[attr-defined]
    banner.locator("a", has_text="see feed status").click()
    page.wait_for_url(f"{base}/feeds")  # type: ignore[attr-defined]
    cards = page.locator("article.feed")  # type: ignore[attr-defined]
    assert cards.count() == 25
    for i in range(25):
        card = cards.nth(i)
        assert card.get_attribute("data-state") == "failed"
        sentence = card.locator(".sentence").inner_text()
        assert re.fullmatch(
            r"Failed once; last error: cannot connect: .*; next try in [0-9]+ (min|h)", sentence
        ), sentence
        assert "connection refused" in sentence.lower()
        assert "Errors in a row 1" in card.locator(".facts").inner_text()
    assert page.locator("header a", has_text="Feeds").get_attribute("href") == "/feeds"  # type: ignore[attr-defined]
    assert "probably cannot reach the feeds" in page.inner_text("main .banner")  # type: ignore[attr-defined]
    page.screenshot(path="/tmp/aggregator-feeds-offline.png", full_page=False)  # type: ignore[attr-defined]
    assert requested and all(u.startswith(base) for u in requested), requested


def test_docs_render_from_loopback_only(page: object, offline_site: Site) -> None:
    """Swagger UI at /docs renders with every request to this server. ReDoc at /redoc renders
    too; the logo its sidebar asks cdn.redoc.ly for is refused by the page's
    Content-Security-Policy inside the browser, so that request never leaves either."""
    base = offline_site.base
    requested: list[str] = []
    blocked: list[str] = []
    page.on("request", lambda request: requested.append(request.url))  # type: ignore[attr-defined]
    page.on("requestfailed", lambda r: blocked.append(r.url) if r.failure == "csp" else None)  # type: ignore[attr-defined]
    page.goto(f"{base}/docs")  # type: ignore[attr-defined]
    page.wait_for_selector(".swagger-ui .info .title")  # type: ignore[attr-defined]
    assert page.inner_text(".swagger-ui .info .title").startswith("aggregator")  # type: ignore[attr-defined]
    page.wait_for_selector(".opblock-summary-path")  # type: ignore[attr-defined]
    paths = page.locator(".opblock-summary-path").all_inner_texts()  # type: ignore[attr-defined]
    assert "/api/digest" in paths and len(paths) > 20
    local = (base + "/", "data:", "blob:")
    assert requested and all(u.startswith(local) for u in requested), requested
    page.goto(f"{base}/redoc")  # type: ignore[attr-defined]
    page.wait_for_selector("h1:has-text('aggregator')")  # type: ignore[attr-defined]
    page.wait_for_selector("text='/api/digest'")  # type: ignore[attr-defined]
    page.wait_for_load_state("networkidle")  # type: ignore[attr-defined]
    leaving = [u for u in requested if not u.startswith(local) and u not in blocked]
    assert not leaving, leaving


def test_bad_parameter_gets_an_html_error_page(page: object, offline_site: Site) -> None:
    base = offline_site.base
    response = page.goto(f"{base}/?date=garbage")  # type: ignore[attr-defined]
    assert response is not None and response.status == 422
    assert response.headers["content-type"].startswith("text/html")
    assert page.inner_text("h2") == "Some of the input was not valid"  # type: ignore[attr-defined]
    problems = page.inner_text("ul.problems")  # type: ignore[attr-defined]
    assert "date: a date must be written YYYY-MM-DD (you sent “garbage”)" in problems
    page.screenshot(path="/tmp/aggregator-error.png")  # type: ignore[attr-defined]
    page.click("a[rel=home]")  # type: ignore[attr-defined]
    page.wait_for_url(f"{base}/")  # type: ignore[attr-defined]
    assert page.locator("#failing-feeds").is_visible()  # type: ignore[attr-defined]
