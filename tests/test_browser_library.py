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


def test_import_form_lists_left_out_entries_with_reasons(page: object, site: Site) -> None:  # noqa: F811
    """The profile page's import form answers with the counts and each left-out entry (line,
    title, reason), the same ones the API lists for the same Zotero export."""
    import httpx

    bib = Path(__file__).parent / "data" / "zotero_export.bib"
    other = site.new_reader("import-api@example.com")
    api = httpx.post(
        f"{site.base}/api/me/library/import",
        headers={"Authorization": f"Bearer {other}"},
        files={"file": ("My Library.bib", bib.read_bytes())},
        timeout=30,
    ).json()
    assert api["left_out"]  # the export has an entry that can be neither saved nor matched

    p: Any = page
    sign_in(p, site, site.new_reader("import-form@example.com"))
    p.goto(f"{site.base}/me/profile#import")
    p.set_input_files("#import input[type=file]", str(bib))
    p.click("#import button[type=submit]")
    p.wait_for_load_state()
    assert p.locator("#import-title").inner_text() == "Import of zotero_export.bib"
    counts = p.locator("ul.counts").inner_text()
    assert f"{api['imported']} saved by their arXiv id" in counts
    assert f"{len(api['left_out'])} left out" in counts
    rows = [
        [cell.strip() for cell in row.locator("td").all_inner_texts()]
        for row in p.locator("table.left-out tbody tr").all()
    ]
    assert rows == [[str(x["line"]), x["title"] or "(no title)", x["reason"]] for x in api["left_out"]]
    p.screenshot(path="/tmp/library-import.png", full_page=True)
    p.click("text=Go to your library")
    p.wait_for_url(f"{site.base}/library")
