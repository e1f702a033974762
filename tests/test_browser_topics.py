"""The topic filter form of /topics in real Chromium (issue 17), on the feeds of 2026-06-15
replayed and fetched (the fixtures of ``test_browser``): fill the form, preview the week's
matches, save, see the filter (private) in the catalogue, edit it (a refusal keeps the input),
share it. Screenshots of the
preview and of the catalogue are saved to /tmp."""

from __future__ import annotations

import re
from pathlib import Path

from test_browser import Site, browser, page, sign_in, site  # noqa: F401  (fixtures)

SHOTS = Path("/tmp")


def test_make_preview_save_and_edit_a_topic_filter(page: object, site: Site) -> None:  # noqa: F811
    sign_in(page, site, site.new_reader("topics@example.com"))
    page.goto(f"{site.base}/topics")  # type: ignore[attr-defined]
    page.click("text=Make a topic filter")  # type: ignore[attr-defined]
    page.fill("#tf-name", "RL for language models")  # type: ignore[attr-defined]
    page.fill("#tf-phrases", "reinforcement learning\npolicy optimization")  # type: ignore[attr-defined]
    page.fill("#tf-categories", "cs.CL")  # type: ignore[attr-defined]
    page.fill("#tf-negative", "survey")  # type: ignore[attr-defined]
    page.check("input[name=match][value=all]")  # type: ignore[attr-defined]
    page.click("button:has-text('Preview last 7 days')")  # type: ignore[attr-defined]
    page.wait_for_load_state("load")  # type: ignore[attr-defined]
    heading = page.inner_text("#preview h2")  # type: ignore[attr-defined]
    found = re.match(r"(\d+) items? matched in the last 7 days", heading)
    assert found and int(found.group(1)) > 0, heading
    shown = page.locator("#preview .preview-list li")  # type: ignore[attr-defined]
    assert shown.count() == min(int(found.group(1)), 50)
    assert shown.first.locator("a").get_attribute("href").startswith("http")
    # the form kept every field, and nothing is saved yet
    assert page.input_value("#tf-name") == "RL for language models"  # type: ignore[attr-defined]
    assert page.input_value("#tf-phrases") == "reinforcement learning\npolicy optimization"  # type: ignore[attr-defined]
    assert page.is_checked("input[name=match][value=all]")  # type: ignore[attr-defined]
    assert page.locator("#topic-rl-for-language-models").count() == 0  # type: ignore[attr-defined]
    page.locator("#topic-form").scroll_into_view_if_needed()  # type: ignore[attr-defined]
    page.screenshot(path=str(SHOTS / "aggregator-topic-preview.png"), full_page=False)  # type: ignore[attr-defined]

    page.click("button:has-text('Save filter')")  # type: ignore[attr-defined]
    page.wait_for_url("**/topics?saved=rl-for-language-models*")  # type: ignore[attr-defined]
    assert "only you can see it" in page.inner_text("#saved")  # type: ignore[attr-defined]
    card = page.locator("#topic-rl-for-language-models")  # type: ignore[attr-defined]
    assert "yours, private" in card.inner_text() and "following" in card.inner_text()
    assert card.locator("button", has_text="Unsubscribe").count() == 1
    page.screenshot(path=str(SHOTS / "aggregator-topics.png"), full_page=False)  # type: ignore[attr-defined]

    card.locator("a", has_text="Edit").click()
    page.wait_for_url("**/topics/rl-for-language-models/edit")  # type: ignore[attr-defined]
    assert page.input_value("#tf-slug") == "rl-for-language-models"  # type: ignore[attr-defined]
    page.fill("#tf-negative", "survey\nbenchmark")  # type: ignore[attr-defined]
    page.check("input[name=shared]")  # type: ignore[attr-defined]
    page.fill("#tf-phrases", "")  # type: ignore[attr-defined]
    page.fill("#tf-categories", "")  # type: ignore[attr-defined]
    page.click("button:has-text('Save changes')")  # type: ignore[attr-defined]
    assert "at least one phrase" in page.inner_text("#form-error")  # type: ignore[attr-defined]
    assert page.input_value("#tf-negative") == "survey\nbenchmark" and page.is_checked("input[name=shared]")  # type: ignore[attr-defined]
    page.screenshot(path=str(SHOTS / "aggregator-topic-edit.png"), full_page=True)  # type: ignore[attr-defined]
    page.fill("#tf-phrases", "reinforcement learning\npolicy optimization")  # type: ignore[attr-defined]
    page.fill("#tf-categories", "cs.CL")  # type: ignore[attr-defined]
    page.click("button:has-text('Save changes')")  # type: ignore[attr-defined]
    page.wait_for_url("**/topics?saved=rl-for-language-models*")  # type: ignore[attr-defined]
    card = page.locator("#topic-rl-for-language-models")  # type: ignore[attr-defined]
    assert "yours, shared" in card.inner_text() and "not “benchmark”" in card.inner_text()
    # the page uses no inline style or script (the CSP would refuse them)
    assert page.locator("[style]").count() == 0 and page.locator("script:not([src])").count() == 0  # type: ignore[attr-defined]
    # dark mode: the form and the preview stay readable
    page.emulate_media(color_scheme="dark")  # type: ignore[attr-defined]
    page.goto(f"{site.base}/topics/rl-for-language-models/edit")  # type: ignore[attr-defined]
    page.click("button:has-text('Preview last 7 days')")  # type: ignore[attr-defined]
    page.wait_for_load_state("load")  # type: ignore[attr-defined]
    assert page.locator("#preview .preview-list li").count() > 0  # type: ignore[attr-defined]
    page.screenshot(path=str(SHOTS / "aggregator-topic-dark.png"), full_page=True)  # type: ignore[attr-defined]
    # a phone: the form's two-column rows become one column, nothing overflows sideways
    page.emulate_media(color_scheme="light")  # type: ignore[attr-defined]
    page.set_viewport_size({"width": 390, "height": 844})  # type: ignore[attr-defined]
    page.goto(f"{site.base}/topics/rl-for-language-models/edit")  # type: ignore[attr-defined]
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # type: ignore[attr-defined]
    page.screenshot(path=str(SHOTS / "aggregator-topic-phone.png"), full_page=False)  # type: ignore[attr-defined]
