"""Browser test of the library (issue 13) in Debian's Chromium: save an item with the ☆
button on the digest page, then find it on /library; tag it there; screenshot for docs."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from test_browser import DAY, Site, browser, page, sign_in, site  # noqa: F401,F811  (fixtures)

DOCS = Path(__file__).resolve().parents[1] / "docs"


def test_save_with_the_star_then_find_it_in_the_library(page: object, site: Site) -> None:  # noqa: F811
    p: Any = page
    sign_in(p, site, site.new_reader("library@example.com"))
    first = p.locator("article.entry").nth(0)
    title = first.locator("h2 a").inner_text()
    item_id = first.get_attribute("data-item-id")
    first.locator("button[data-action=save]").click()
    p.wait_for_load_state()
    assert p.locator(f"#item-{item_id} button[data-action=save]").inner_text().startswith("★ Saved")
    second = p.locator("article.entry").nth(1)
    second_id = second.get_attribute("data-item-id")
    second.locator("button[data-action=save]").click()
    p.wait_for_load_state()
    p.click("a[href='/library']")
    p.wait_for_url(f"{site.base}/library")
    assert title in p.locator(f"#item-{item_id} h2").inner_text()
    card = p.locator(f"#item-{second_id}")
    card.locator("details.edit summary").click()
    card.locator("input[name=tags]").fill("diffusion, to read")
    card.locator("textarea[name=note]").fill("Compare with last week's distillation paper.")
    card.locator("details.edit button[type=submit]").click()
    p.wait_for_load_state()
    assert "to read" in p.locator(".tags-filter").inner_text()
    p.click(".tags-filter a:has-text('diffusion')")
    p.wait_for_load_state()
    assert p.locator("article.entry").count() == 1
    p.goto(f"{site.base}/library")
    p.screenshot(path=str(DOCS / "library.png"), full_page=True)
