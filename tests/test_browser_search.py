"""Browser tests of issue 13's pages in real Chromium: search from the box, the keyboard keys
(static/keys.js), dark mode, and the signed-in header on a 390-px phone viewport. Uses the
replayed feeds of 2026-06-15 served by uvicorn (the fixtures of ``test_browser``)."""

from __future__ import annotations

import re
from pathlib import Path

from test_browser import DAY, Site, browser, page, sign_in, site  # noqa: F401  (fixtures)

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_search_from_the_box(page: object, site: Site) -> None:  # noqa: F811
    page.goto(f"{site.base}/?date={DAY}")  # type: ignore[attr-defined]
    page.keyboard.press("/")  # type: ignore[attr-defined]
    assert page.evaluate("document.activeElement.id") == "search-box"  # type: ignore[attr-defined]
    page.keyboard.type('"reinforcement learning" reasoning')  # type: ignore[attr-defined]
    page.keyboard.press("Enter")  # type: ignore[attr-defined]
    page.wait_for_url("**/search?q=*")  # type: ignore[attr-defined]
    titles = page.eval_on_selector_all("article.entry", "els => els.map(e => e.textContent.toLowerCase())")  # type: ignore[attr-defined]
    words = [" ".join(re.findall(r"\w+", t)) for t in titles]  # "reinforcement-learning" counts
    assert len(titles) >= 3 and all("reinforcement learn" in t for t in words)  # stemmed
    assert page.input_value("#search-box") == '"reinforcement learning" reasoning'  # type: ignore[attr-defined]
    page.screenshot(path=str(DOCS / "search.png"), full_page=False)  # type: ignore[attr-defined]
    more = page.query_selector("#more")  # type: ignore[attr-defined]
    if more is not None:
        first = page.eval_on_selector_all("article.entry", "els => els.map(e => e.id)")  # type: ignore[attr-defined]
        more.click()
        page.wait_for_load_state()  # type: ignore[attr-defined]
        second = page.eval_on_selector_all("article.entry", "els => els.map(e => e.id)")  # type: ignore[attr-defined]
        assert second and not set(first) & set(second)
    page.goto(f"{site.base}/search?q=%22unbalanced")  # type: ignore[attr-defined]
    assert "unbalanced quotes" in page.inner_text("#search-error")  # type: ignore[attr-defined]


def test_keyboard_keys(page: object, site: Site) -> None:  # noqa: F811
    token = site.new_reader("keys@example.com")
    sign_in(page, site, token)
    page.goto(f"{site.base}/?date={DAY}&limit=20")  # type: ignore[attr-defined]
    current = (
        "() => [...document.querySelectorAll('article.entry')]"
        ".findIndex(e => e.classList.contains('current'))"
    )
    for key, want in (("j", 0), ("j", 1), ("j", 2), ("k", 1)):
        page.keyboard.press(key)  # type: ignore[attr-defined]
        assert page.evaluate(current) == want, key  # type: ignore[attr-defined]
    assert page.is_hidden("#keys-help")  # type: ignore[attr-defined]
    page.keyboard.press("?")  # type: ignore[attr-defined]
    assert page.is_visible("#keys-help") and "mark read" in page.inner_text("#keys-help")  # type: ignore[attr-defined]
    item = page.evaluate("() => document.querySelector('article.entry.current').dataset.itemId")  # type: ignore[attr-defined]
    with page.expect_request(f"**/me/library/{item}/save") as saved:  # type: ignore[attr-defined]
        page.keyboard.press("s")  # type: ignore[attr-defined]
    assert saved.value.method == "POST" and "remove=false" in (saved.value.post_data or "")
    assert saved.value.headers.get("accept") == "application/json"
    with page.expect_request(f"**/me/items/{item}/read") as read:  # type: ignore[attr-defined]
        page.keyboard.press("m")  # type: ignore[attr-defined]
    assert "unread=false" in (read.value.post_data or "")
    assert page.evaluate("() => document.querySelector('article.entry.current').classList.contains('read')")  # type: ignore[attr-defined]
    href = page.evaluate("() => document.querySelector('article.entry.current h2 a').href")  # type: ignore[attr-defined]
    page.context.route("**/arxiv.org/**", lambda route: route.fulfill(body="the paper"))  # type: ignore[attr-defined]
    with page.context.expect_page() as opened:  # type: ignore[attr-defined]
        page.keyboard.press("o")  # type: ignore[attr-defined]
    opened.value.wait_for_load_state()
    assert opened.value.url == href and href.startswith("https://arxiv.org/abs/")
    opened.value.close()
    # votes: on the reader's digest the vote forms are there; "+" submits "more like this"
    page.goto(f"{site.base}/me?date={DAY}&limit=20")  # type: ignore[attr-defined]
    page.keyboard.press("j")  # type: ignore[attr-defined]
    with page.expect_navigation():  # type: ignore[attr-defined]
        page.keyboard.press("+")  # type: ignore[attr-defined]
    assert page.query_selector("button.vote.up.on") is not None  # type: ignore[attr-defined]
    page.fill("#search-box", "j")  # type: ignore[attr-defined]
    page.focus("#search-box")  # type: ignore[attr-defined]
    page.keyboard.press("j")  # typing in the box is not a key command  # type: ignore[attr-defined]
    assert page.input_value("#search-box") == "jj"  # type: ignore[attr-defined]


def test_phone_header_does_not_overlap_and_dark_mode(browser: object, site: Site) -> None:  # noqa: F811
    context = browser.new_context(viewport={"width": 390, "height": 844}, color_scheme="dark")  # type: ignore[attr-defined]
    pg = context.new_page()
    token = site.new_reader("phone@example.com")
    sign_in(pg, site, token)
    pg.goto(f"{site.base}/me?date={DAY}")
    parts = ("header.top h1", "header.top .account", "#search-box")
    boxes = [pg.locator(sel).first.bounding_box() for sel in parts]
    for i, a in enumerate(boxes):
        for b in boxes[i + 1 :]:
            apart = (
                a["x"] + a["width"] <= b["x"] or b["x"] + b["width"] <= a["x"]
                or a["y"] + a["height"] <= b["y"] or b["y"] + b["height"] <= a["y"]
            )  # fmt: skip
            assert apart, (a, b)
    width = pg.evaluate("document.documentElement.scrollWidth")
    assert width <= 390, "nothing wider than the phone"
    background = pg.evaluate("getComputedStyle(document.body).backgroundColor")
    assert background == "rgb(18, 19, 23)", background  # dark mode from prefers-color-scheme
    pg.screenshot(path="/tmp/search/phone-dark.png")
    context.close()
