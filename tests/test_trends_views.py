"""Issue 16, views that are never empty, on the real bulk papers of June 2026 (60 a day).

* The default window ends at the newest day with papers, not at a later blog post.
* With or without significant rises, the report has leading topics (most frequent lexicon
  terms, counts equal to a direct count) and a watch list whose q-values are all above the
  false-discovery rate; listed rising terms all have q ≤ FDR.
* ``/api/trends/series``: counts match a direct count; an unknown phrase gets zeros; a phrase
  that can never be a term is a 422 saying why; windows up to 31 days, baselines up to 730.
* Pages: ``/trends`` (leading topics, watch list, date picker, links to the term explorer and
  the digest), ``/trends/term`` (SVG chart, items behind a point), ``/trends/month``, checked
  in real Chromium through a real uvicorn; the email's block falls back to leading topics and
  says so, and the first issue of a month carries the monthly report.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import os
import socket
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import bulk_papers, paper_entry, populated_database
from fastapi.testclient import TestClient

from aggregator import trends
from aggregator.api.app import create_app
from aggregator.config import Settings
from aggregator.feeds.ingest import write_entries
from aggregator.mail import compose
from aggregator.mail.render import environment
from aggregator.store.db import session_factory
from aggregator.store.tables import Feed, Item
from aggregator.trends import lexicon
from aggregator.trends.terms import _tokens, item_text
from aggregator.types import ParsedEntry

DAYS = [f"2026-06-{d:02d}" for d in range(1, 31)]
END = dt.date(2026, 6, 30)
CHROMIUM = "/usr/bin/chromium"


def _feed(session, url: str, kind: str) -> int:  # type: ignore[no-untyped-def]
    feed = Feed(
        url=url, name=url, kind=kind, created_at=dt.datetime.now(dt.UTC), error_count=0, disabled=False
    )
    session.add(feed)
    session.flush()
    return int(feed.id)


@pytest.fixture
def loaded(request: pytest.FixtureRequest, engine: sa.Engine) -> sa.Engine:
    """The test's database holding :func:`_load_june` (loaded once a session, then copied)."""
    populated_database(request, "trends_views", _load_june)
    return engine


def _load_june(engine: sa.Engine) -> None:
    """June 2026 (60 real papers a day) and one blog post ten days after the last paper."""
    make = session_factory(engine)
    with make() as session, session.begin():
        papers = _feed(session, "test://bulk", "arxiv")
        blog = _feed(session, "test://blog", "blog")
    for day in DAYS:
        with make() as session, session.begin():
            entries = [paper_entry(p, day) for p in bulk_papers(day)[:60]]
            summary = write_entries(session, papers, entries, dt.datetime.now(dt.UTC))
            trends.update_counts(session, summary.new_item_ids)
    post = ParsedEntry(
        kind="post",
        key="https://blog.example/world-models",
        title="What world models learn",
        url="https://blog.example/world-models",
        authors=("A. Writer",),
        summary="A post on world models and video prediction.",
        published=dt.datetime(2026, 7, 10, 9, tzinfo=dt.UTC),
    )
    with make() as session, session.begin():
        summary = write_entries(session, blog, [post], dt.datetime.now(dt.UTC))
        trends.update_counts(session, summary.new_item_ids)
        trends.refresh_results(session)


def _direct(session, term: str, start: dt.date, end: dt.date) -> int:  # type: ignore[no-untyped-def]
    """Items published from ``start`` to ``end`` whose normalised text holds ``term``."""
    lo = dt.datetime.combine(start, dt.time(0), dt.UTC)
    hi = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(0), dt.UTC)
    n = 0
    for title, summary in session.execute(
        sa.select(Item.title, Item.summary).where(Item.published >= lo, Item.published < hi)
    ):
        n += f" {term} " in f" {' '.join(_tokens(item_text(title, summary or '')))} "
    return n


@pytest.mark.slow
def test_default_end_leading_topics_and_watch_list(loaded: sa.Engine) -> None:
    with session_factory(loaded)() as session:
        assert trends.latest_day(session) == END  # not the blog post's 2026-07-10
        report = trends.stored_report(session)
        assert report is not None and report.end == END
        assert report.leading, "leading topics are always there"
        lex = lexicon.current(session)
        assert all(t.term in lex for t in report.leading)
        # a single word in more than 5 % of the window's items is common vocabulary, not a topic
        assert all(
            " " in t.term or t.window_count <= lexicon.MAX_WORD_SHARE * report.window_docs
            for t in report.leading
        )
        counts = [t.window_count for t in report.leading]
        assert counts[0] == max(counts)
        top = report.leading[0]
        assert top.window_count == _direct(session, top.term, report.window_start, END)
        assert all(t.q_value is not None and t.q_value > trends.FDR for t in report.watch)
        assert all(t.q_value is not None and t.q_value <= trends.FDR for t in report.terms)
        # the JSON the API serves keeps them
        again = trends.TrendReport.from_json(report.to_json())
        assert [t.term for t in again.leading] == [t.term for t in report.leading]
        assert [t.term for t in again.watch] == [t.term for t in report.watch]


@pytest.mark.slow
def test_series_api_and_ranges(loaded: sa.Engine, database_url: str, tmp_path: Path) -> None:
    feeds = tmp_path / "feeds.toml"
    feeds.write_text("")
    settings = Settings(database_url=database_url, feeds_file=feeds)  # type: ignore[arg-type]
    with TestClient(create_app(settings, loaded)) as client:
        body = client.get("/api/trends").json()
        assert body["end"] == "2026-06-30" and body["leading"]
        term = body["leading"][0]["term"]
        r = client.get(
            "/api/trends/series",
            params={"term": term, "interval": "week", "from": "2026-06-01", "to": "2026-06-30"},
        )
        assert r.status_code == 200, r.text
        s = r.json()
        assert set(s) == {"term", "scope", "interval", "points"} and s["term"] == term
        assert s["points"][0]["start"] == "2026-06-01"  # a Monday
        assert all(set(p) == {"start", "count", "total", "share"} for p in s["points"])
        with session_factory(loaded)() as session:
            papers = int(session.scalar(sa.select(sa.func.count()).where(Item.kind == "paper")) or 0)
            assert sum(p["total"] for p in s["points"]) == papers > 1000
            assert sum(p["count"] for p in s["points"]) == _direct(session, term, dt.date(2026, 6, 1), END)
        typed = client.get("/api/trends/series", params={"term": term.upper().replace(" ", "-") + "s"})
        assert typed.status_code == 200 and typed.json()["term"] == term  # normalised as at ingest
        unknown = client.get("/api/trends/series", params={"term": "zzqx flurb", "interval": "month"})
        assert unknown.status_code == 200
        assert all(p["count"] == 0 for p in unknown.json()["points"])
        assert sum(p["total"] for p in unknown.json()["points"]) > 0
        for phrase, why in (
            ("of the", "connector"),
            ("2024", "only stop words, numbers"),
            ("model, data", "never span"),
            ("spectral lattice graph kernel distillation", "at most 4"),
            ("", "empty"),
        ):
            bad = client.get("/api/trends/series", params={"term": phrase})
            assert bad.status_code == 422, phrase
            assert why in bad.json()["detail"][0]["msg"], bad.json()
        assert client.get("/api/trends", params={"window": "31d", "baseline": "730d"}).status_code == 200
        for params in ({"window": "32d"}, {"baseline": "731d"}):
            assert client.get("/api/trends", params=params).status_code == 422


@pytest.mark.slow
def test_email_block_falls_back_to_leading_and_month_report(loaded: sa.Engine) -> None:
    with session_factory(loaded)() as session:
        report = trends.stored_report(session)
        assert report is not None
        terms = compose.rising_terms(session, END)
        assert terms
        if report.terms:
            assert all(t.rising for t in terms)
        else:
            assert not any(t.rising for t in terms)
            assert [t.label for t in terms] == [t.label for t in report.leading[: len(terms)]]
        leading = [
            compose.RisingTerm(t.label, 0.0, t.window_count, t.baseline_count, t.lift, False, False)
            for t in report.leading[:3]
        ]
        month = compose.month_block(session, dt.date(2026, 7, 3))
        assert month is not None and month.label == "June 2026" and month.scopes[0].scope == "all"
        assert month.scopes[0].leading
        assert compose.month_block(session, dt.date(2026, 7, 13)) is None  # not the first issue
    week = compose.WeekEmail(
        reader_id=1,
        email="r@example.org",
        iso_week="2026-W27",
        first_day=dt.date(2026, 6, 27),
        last_day=dt.date(2026, 7, 3),
        timezone="UTC",
        profile="default",
        groups=[],
        rising=leading,
        month=month,
    )
    context = {
        "week": week,
        "links": {},
        "date_range": "",
        "month_url": "https://x/trends/month?month=2026-06",
        "weekday_name": "Friday",
        "send_time": "08:00",
        "feedback_days": 30,
        "preheader": "",
        "site_url": "https://x/me",
        "settings_url": "https://x/me/profile",
        "unsubscribe_url": "https://x/unsubscribe",
    }
    text = environment().get_template("email/week.txt").render(context)
    html = environment().get_template("email/week.html").render(context)
    assert "LEADING TOPICS THIS WEEK (nothing rose significantly" in text
    assert "Leading topics this week" in html and "Nothing rose significantly this week" in html
    assert "JUNE 2026 IN REVIEW" in text and "June 2026 in review" in html


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def _serve(settings: Settings, engine: sa.Engine) -> Iterator[str]:
    import uvicorn

    port = _free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, engine), host="127.0.0.1", port=port, log_level="warning", ws="none"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


@pytest.mark.skipif(
    not Path(CHROMIUM).exists() and os.environ.get("CI") != "true", reason=f"{CHROMIUM} is missing"
)
def test_pages_in_chromium(loaded: sa.Engine, database_url: str, tmp_path: Path) -> None:
    sync_api = pytest.importorskip("playwright.sync_api")
    feeds = tmp_path / "feeds.toml"
    feeds.write_text("")
    settings = Settings(database_url=database_url, feeds_file=feeds)  # type: ignore[arg-type]
    with TestClient(create_app(settings, loaded)) as client:  # the month is computed once here
        assert client.get("/trends/month", params={"month": "2026-06"}).status_code == 200
        assert client.get("/trends/month", params={"month": "June"}).status_code == 422
    with _serve(settings, loaded) as base, sync_api.sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        page = browser.new_page(viewport={"width": 1100, "height": 1400})
        page.goto(f"{base}/trends")
        assert page.locator("h3#leading").is_visible()
        assert page.locator("input[type=date][name=end]").input_value() == "2026-06-30"
        assert page.locator("a[href='/?date=2026-06-30']").count() == 1
        first = page.locator("table.list a[href^='/trends/term?q=']").first
        label = first.inner_text()
        first.click()
        page.wait_for_load_state()
        assert "/trends/term?q=" in page.url
        assert page.locator(".chart svg polyline").count() == 1
        assert page.locator(".behind li").count() >= 1
        page.goto(f"{base}/trends/term?q={label}, world model&interval=day&from=2026-06-01&to=2026-06-30")
        assert page.locator(".chart svg polyline").count() == 2
        page.locator(".chart svg a").first.click()
        page.wait_for_load_state()
        assert "at=2026-06-01" in page.url
        page.goto(f"{base}/trends/month?month=2026-06")
        assert page.locator("section.scope").count() == len(trends.SCOPES)
        assert "June 2026" in page.locator("nav").inner_text()
        page.goto(f"{base}/?date=2026-06-30")
        assert page.locator("a[href='/trends?end=2026-06-30']").count() == 1
        browser.close()


def test_collapse_merges_an_expansion_and_its_abbreviated_form() -> None:
    from aggregator.trends.detect import collapse
    from aggregator.trends.report import _Cand

    def cand(term: str, a: int, score: float) -> _Cand:
        c = _Cand(term, a, 0, score, 2.0, None, False)
        c.score = score
        return c

    docs = {
        "medical vision language model": frozenset({1, 2, 3}),
        "medical vlm": frozenset({4, 5}),
        "harness": frozenset({6, 7}),
    }
    out = collapse([cand(t, len(d), 10.0 - i) for i, (t, d) in enumerate(docs.items())], docs.__getitem__)
    assert [c.term for c in out] == ["medical vision language model", "harness"]
    assert out[0].variants == ["medical vlm"]


def test_collapse_labels_a_group_by_the_completion_of_its_biggest_member() -> None:
    """A group is labelled by the phrase completing its biggest member when that holds half of
    its items ("vision language model", not "vision language"), never by a narrower kind of it
    ("multimodal large language model" is not the label of "large language model")."""
    from aggregator.trends.detect import collapse
    from aggregator.trends.report import _Cand

    def cand(term: str, docs: frozenset[int]) -> _Cand:
        c = _Cand(term, len(docs), 0, 10.0, 2.0, None, False)
        c.score = 10.0
        return c

    docs = {
        "vision language": frozenset(range(10)),
        "vision language model": frozenset(range(6)),
        "large language model": frozenset(range(100, 120)),
        "multimodal large language model": frozenset(range(100, 111)),
    }
    out = collapse([cand(t, d) for t, d in docs.items()], docs.__getitem__)
    assert [(c.term, c.variants) for c in out] == [
        ("vision language model", ["vision language"]),
        ("large language model", ["multimodal large language model"]),
    ]


@pytest.mark.slow
def test_worker_stores_the_monthly_reports(
    loaded: sa.Engine, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The worker stores the month's report (and the month before), so that the page and the
    first-of-month email read it without computing; a new day recomputes only its month."""
    from aggregator.store.trends_tables import TrendResult
    from aggregator.trends import monthly
    from aggregator.worker import tasks

    make = session_factory(loaded)
    with make() as session, session.begin():
        assert trends.store_months(session) == 2 * len(trends.SCOPES)  # June to date, and May
    with make() as session, session.begin():
        assert trends.store_months(session) == 0  # inputs unchanged: nothing recomputed
    feeds = tmp_path / "feeds.toml"
    feeds.write_text("")
    settings = Settings(database_url=database_url, feeds_file=feeds)  # type: ignore[arg-type]

    def recompute(*args: object, **kwargs: object) -> None:
        raise AssertionError("the monthly report was computed on request")

    with monkeypatch.context() as patch:
        patch.setattr(monthly, "_compute", recompute)
        with make() as session:
            june = trends.month_reports(session, dt.date(2026, 6, 1))
            assert june[0].report.window_docs > 1000 and june[0].leading
            block = compose.month_block(session, dt.date(2026, 7, 3))  # logs and gives None on error
            assert block is not None and block.label == "June 2026" and block.scopes[0].leading
        with TestClient(create_app(settings, loaded)) as client:
            page = client.get("/trends/month", params={"month": "2026-06"})
            assert page.status_code == 200 and june[0].leading[0].label in page.text
    # a new day's papers (July 1): the worker counts them and stores July's report; June's
    # inputs are unchanged (its window and baseline end before July), so it is kept
    with make() as session, session.begin():
        feed = session.scalar(sa.select(Feed.id).where(Feed.kind == "arxiv"))
        entries = [paper_entry(p, "2026-07-01") for p in bulk_papers("2026-07-01")[:60]]
        new_ids = write_entries(session, feed, entries, dt.datetime.now(dt.UTC)).new_item_ids
    out = tasks.update_trends(loaded, settings, new_ids)
    assert out.counted == len(new_ids) > 0 and out.months == len(trends.SCOPES)
    with make() as session:
        july = session.get(TrendResult, ("all", 1, monthly.MONTH_BASELINE_DAYS, dt.date(2026, 7, 1)))
        assert july is not None and july.inputs and july.payload["window_docs"] == len(new_ids)
