"""Trends on real arXiv papers (bulk data, June 2026) with injected terms of known behaviour.

Baseline: the real papers of 2026-06-08..06-12; window: 2026-06-15..06-19 (5 days, the test uses
window 5d / baseline 14d). Into the real abstracts we inject

* ``ZorbLax routing`` — rising: 1 baseline paper, 15 window papers over 4 days (some plural
  "ZorbLax routings"; the coined unigram ``ZorbLax`` must collapse into the phrase);
* ``quuxian kernel`` — frequent but flat: every 12th paper in baseline and window;
* ``frobnicated lattice`` — appears once, in the window.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from conftest import bulk_papers, paper_entry, populated_database
from fastapi.testclient import TestClient
from helpers import glued_separators

from aggregator import trends
from aggregator.api.app import create_app
from aggregator.config import Settings
from aggregator.feeds.ingest import write_entries
from aggregator.store.db import session_factory
from aggregator.store.tables import Feed
from aggregator.store.trends_tables import DayTotal, Term, TermCount, TrendCounted

BASELINE_DAYS = ["2026-06-08", "2026-06-09", "2026-06-10", "2026-06-11", "2026-06-12"]
WINDOW_DAYS = ["2026-06-15", "2026-06-16", "2026-06-17", "2026-06-18", "2026-06-19"]
END = dt.date(2026, 6, 19)
PER_DAY = 60  # real papers per day, enough for shares and fast on both databases


def _entries(day: str, day_index: int, window: bool) -> list:
    out = []
    for i, paper in enumerate(bulk_papers(day)[:PER_DAY]):
        extra = []
        if i % 12 == 0:
            extra.append("We also study the quuxian kernel.")
        if window and day_index < 4 and i in (1, 3, 5, 7) and not (day_index == 3 and i == 7):
            plural = "routings" if i == 3 else "routing"
            extra.append(f"We use the ZorbLax {plural}.")
        if not window and day_index == 2 and i == 1:
            extra.append("Related: ZorbLax routing.")
        if window and day_index == 4 and i == 2:
            extra.append("A frobnicated lattice appears once.")
        if extra:
            paper = {**paper, "summary": (paper.get("summary") or "") + " " + " ".join(extra)}
        out.append(paper_entry(paper, day))
    return out


def _feed(session) -> int:  # type: ignore[no-untyped-def]
    feed = Feed(
        url="test://bulk",
        name="bulk",
        kind="arxiv",
        created_at=dt.datetime.now(dt.UTC),
        error_count=0,
        disabled=False,
    )
    session.add(feed)
    session.flush()
    return feed.id


def _load(engine: sa.Engine) -> list[list[int]]:
    """Ingest day by day, counting after each ingest (as the scheduler does); the ids per day."""
    make = session_factory(engine)
    with make() as session, session.begin():
        feed_id = _feed(session)
    per_day = []
    for window, days in ((False, BASELINE_DAYS), (True, WINDOW_DAYS)):
        for k, day in enumerate(days):
            with make() as session, session.begin():
                summary = write_entries(session, feed_id, _entries(day, k, window), dt.datetime.now(dt.UTC))
                trends.update_counts(session, summary.new_item_ids)
            per_day.append(summary.new_item_ids)
    return per_day


def _snapshot(session) -> tuple[set, set, set]:  # type: ignore[no-untyped-def]
    """(scope, term, day, df) of every packed count, the day totals, and each term's first days."""
    names = dict(session.execute(sa.select(Term.id, Term.term)).all())
    counts = set()
    for scope, day, n_terms, data in session.execute(
        sa.select(TermCount.scope, TermCount.day, TermCount.n_terms, TermCount.data)
    ):
        ids, dfs = trends.unpack_counts(n_terms, data)
        assert len(ids) == n_terms and (np.diff(ids) > 0).all() and (dfs > 0).all()
        counts.update((scope, names[int(i)], day, int(f)) for i, f in zip(ids, dfs, strict=True))
    totals = set(session.execute(sa.select(DayTotal.scope, DayTotal.day, DayTotal.n_docs)).all())
    cols = [getattr(Term, c) for c in trends.FIRST_COLUMNS.values()]
    firsts = set(session.execute(sa.select(Term.term, *cols)).all())
    return counts, totals, firsts


@pytest.fixture
def loaded(request: pytest.FixtureRequest, engine: sa.Engine) -> tuple[sa.Engine, list[list[int]]]:
    """The test's database holding :func:`_load`'s papers (loaded once a session, then copied)."""
    return engine, populated_database(request, "trends", _load)


def _report(engine: sa.Engine, scope: str = "all") -> trends.TrendReport:
    with session_factory(engine)() as session:
        return trends.compute_report(session, end=END, window_days=5, baseline_days=14, scope=scope)


def test_normalisation_keeps_acronyms_phrases_and_singulars() -> None:
    terms = trends.extract_terms(
        "GRPO and RLVR train Vision-Language-Action (VLA) models; we propose novel LLMs. "
        "State-of-the-art results."
    )
    assert {"grpo", "rlvr", "vla", "llm", "vision language action"} <= terms
    assert not {"propose", "novel", "state art", "novel llm"} & terms
    # connectors inside a phrase, never at its ends; the lexicon decides what is a topic
    assert {"state of the art", "grpo and rlvr"} <= terms and "of the art" not in terms
    assert "action vla" not in terms and "model llm" not in terms  # no phrase across punctuation
    assert trends.singular("policies") == "policy" and trends.singular("bias") == "bias"
    assert trends.normalise_term("Diffusion Transformers") == "diffusion transformer"


def test_rising_flat_once_and_collapse(loaded: tuple[sa.Engine, list[list[int]]]) -> None:
    engine, _ = loaded
    report = _report(engine)
    assert report.window_docs == 5 * PER_DAY
    by_term = {t.term: t for t in report.terms}
    rising = by_term.get("zorblax routing")
    assert rising is not None, [t.term for t in report.terms]
    assert rising.window_count == 15 and rising.baseline_count == 1
    assert rising.q_value is not None and rising.q_value <= trends.FDR and rising.lift > 5
    assert rising.p_value is not None and rising.p_value < 1e-3 and rising.g2 > 10
    assert rising.label == "ZorbLax routing" or rising.label == "zorblax routing"
    assert "zorblax" in rising.variants  # the part collapsed into the phrase
    assert "zorblax" not in by_term and "zorblax routings" not in by_term  # plural = singular
    assert len(rising.examples) > 0 and all(e.kind == "paper" for e in rising.examples)
    assert sum(d.count for d in rising.series if d.date >= dt.date(2026, 6, 15)) == 15
    assert "quuxian kernel" not in by_term  # frequent but flat
    assert "frobnicated lattice" not in by_term  # once
    for boiler in ("propose", "result", "paper", "method", "approach", "novel", "state art"):
        assert boiler not in by_term
    # scopes: the injected papers are real ones, so their category scopes see them too
    cats = {c for day in WINDOW_DAYS for p in bulk_papers(day)[:PER_DAY] for c in p["categories"]}
    assert "cs.CV" in cats
    cv = _report(engine, "cs.CV")
    assert cv.window_docs < report.window_docs


@pytest.mark.slow
def test_incremental_equals_recount_and_is_idempotent(loaded: tuple[sa.Engine, list[list[int]]]) -> None:
    engine, per_day = loaded
    make = session_factory(engine)
    with make() as session:
        before = _snapshot(session)
    with make() as session, session.begin():
        assert trends.update_counts(session, per_day[3] + per_day[7]) == 0  # counted already
    with make() as session:
        assert _snapshot(session) == before
    with make() as session, session.begin():
        n = trends.recount(session)
    with make() as session:
        assert _snapshot(session) == before
        assert n == session.scalar(sa.select(sa.func.count()).select_from(TrendCounted))


@pytest.mark.slow
def test_api_and_page(loaded: tuple[sa.Engine, list[list[int]]], database_url: str, tmp_path: Path) -> None:
    engine, _ = loaded
    with session_factory(engine)() as session, session.begin():
        reports = trends.refresh_results(session, end=END)
    assert [r.scope for r in reports] == list(trends.SCOPES)
    with session_factory(engine)() as session:  # the function the weekly email calls
        top = trends.top_rising(session, end=END, window_days=5, baseline_days=14, limit=3)
    assert 0 < len(top) <= 3 and all(isinstance(t, trends.TrendTerm) for t in top)
    assert dataclasses.asdict(top[0])["term"] == "zorblax routing"
    feeds = tmp_path / "feeds.toml"
    feeds.write_text("")
    settings = Settings(database_url=database_url, feeds_file=feeds)  # type: ignore[arg-type]
    with TestClient(create_app(settings, engine)) as client:
        r = client.get("/api/trends", params={"window": "7d", "baseline": "56d", "limit": 5})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["end"] == "2026-06-19" and len(body["terms"]) <= 5
        assert {"term", "score", "window_count", "baseline_count", "window_share", "baseline_share"} <= set(
            body["terms"][0]
        )
        assert {"series", "first_seen", "is_new", "examples"} <= set(body["terms"][0])
        # a window not precomputed is computed and cached
        r = client.get("/api/trends", params={"window": "5d", "baseline": "14d", "category": "all"})
        assert r.status_code == 200
        assert "zorblax routing" in [t["term"] for t in r.json()["terms"]]
        # a bare number is a number of days (a reader types window=28)
        bare = client.get("/api/trends", params={"window": "5", "baseline": "14", "category": "all"})
        assert bare.status_code == 200 and bare.json() == r.json()
        for params in (
            {"window": "7w"},
            {"window": "0d"},
            {"window": "90d"},
            {"baseline": "2000d"},
            {"window": "14d", "baseline": "7d"},
            {"category": "math.AG"},
            {"limit": 0},
        ):
            bad = client.get("/api/trends", params=params)
            assert bad.status_code == 422, params
            assert bad.json()["detail"]
        page = client.get("/trends", params={"window": "5d", "baseline": "14d"})
        assert page.status_code == 200
        assert "<svg" in page.text and "ZorbLax routing" in page.text or "zorblax routing" in page.text
        assert 'aria-current="page"' in page.text
        assert not glued_separators(page.text)
        assert client.get("/trends?category=cs.CL").status_code == 200
        digest = client.get("/", params={"date": "2026-06-19"})
        assert digest.status_code == 200 and 'href="/trends' in digest.text


def test_g2_matches_the_textbook_formula() -> None:
    import math

    import numpy as np

    a, b, n1, n2 = 30, 10, 1000, 2000
    obs = [a, b, n1 - a, n2 - b]
    tot = n1 + n2
    exp = [(a + b) * n1 / tot, (a + b) * n2 / tot, (tot - a - b) * n1 / tot, (tot - a - b) * n2 / tot]
    g2 = 2 * sum(o * math.log(o / e) for o, e in zip(obs, exp, strict=True))
    got = trends.log_likelihood_g2(np.array([a]), np.array([b]), n1, n2)[0]
    assert got == pytest.approx(g2)


@pytest.mark.slow
def test_cli_table(
    loaded: tuple[sa.Engine, list[list[int]]], database_url: str, tmp_path: Path, monkeypatch
) -> None:  # type: ignore[no-untyped-def]
    """`aggregator trends` prints the injected rise with its counts and q-value, in 80 columns,
    and says so plainly when nothing rises."""
    from typer.testing import CliRunner

    from aggregator.cli.app import app
    from aggregator.config import get_settings

    feeds = tmp_path / "feeds.toml"
    feeds.write_text("")
    monkeypatch.setenv("AGGREGATOR_DATABASE_URL", database_url)
    monkeypatch.setenv("AGGREGATOR_FEEDS_FILE", str(feeds))
    monkeypatch.setenv("COLUMNS", "80")
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        out = runner.invoke(app, ["trends", "--window", "5d", "--baseline", "14d", "--end", str(END)])
        assert out.exit_code == 0, out.output
        line = next(x for x in out.output.splitlines() if "routing" in x)
        assert (
            "15" in line.split() and "1" in line.split() and "2026-06-" in line
        )  # items, before, first seen
        assert max(len(x) for x in out.output.splitlines()) <= 80
        quiet = runner.invoke(app, ["trends", "--window", "5d", "--baseline", "14d", "--end", "2026-06-10"])
        assert quiet.exit_code == 0 and "no term rises significantly" in quiet.output
    finally:
        get_settings.cache_clear()
