"""``refresh_results`` after each ingest: a scope whose inputs did not change keeps its stored
result (which is what computing it again would give); a changed scope is recomputed. Real papers
(the ``test_trends`` data) and a real blog post (BAIR's feed), on SQLite and PostgreSQL."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
import sqlalchemy as sa
from conftest import DATA, populated_database
from test_trends import END, _load

from aggregator import trends
from aggregator.feeds.ingest import write_entries
from aggregator.feeds.parse import parse_feed
from aggregator.store.db import session_factory
from aggregator.store.tables import Feed, ItemLink
from aggregator.store.trends_tables import TrendResult
from aggregator.trends import results

T = [dt.datetime(2026, 6, 20, hour, tzinfo=dt.UTC) for hour in range(5)]


@pytest.fixture
def loaded(request: pytest.FixtureRequest, engine: sa.Engine) -> tuple[sa.Engine, list[list[int]]]:
    """The test's database holding the ``test_trends`` papers (loaded once a session, then copied)."""
    return engine, populated_database(request, "trends", _load)


def _refresh(engine: sa.Engine, now: dt.datetime) -> dict[str, trends.TrendReport]:
    with session_factory(engine)() as session, session.begin():
        return {r.scope: r for r in trends.refresh_results(session, end=END, now=now)}


def _post_in_window() -> object:
    body = (DATA / "blogs" / "bair-blog-2026-04-rss2-distill.xml").read_bytes()
    post = parse_feed(
        body, fetched_at=T[0], url="https://bair.berkeley.edu/blog/feed.xml", kind="blog"
    ).entries[0]
    return dataclasses.replace(post, published=dt.datetime(2026, 6, 18, 12, tzinfo=dt.UTC))


@pytest.mark.slow
def test_refresh_recomputes_only_scopes_whose_inputs_changed(
    loaded: tuple[sa.Engine, list[list[int]]],
) -> None:
    engine, per_day = loaded
    make = session_factory(engine)
    first = _refresh(engine, T[0])
    assert set(first) == set(trends.SCOPES) and first["all"].terms  # zorblax routing
    again = _refresh(engine, T[1])  # nothing changed: every stored result is kept
    assert {r.computed_at for r in again.values()} == {T[0]}
    assert {s: r.to_json() for s, r in again.items()} == {s: r.to_json() for s, r in first.items()}

    # a blog post of the window changes "all" and "blogs", not the arXiv categories
    with make() as session, session.begin():
        feed = Feed(
            url="test://bair", name="bair", kind="blog", created_at=T[0], error_count=0, disabled=False
        )
        session.add(feed)
        session.flush()
        post_ids = write_entries(session, feed.id, [_post_in_window()], T[0]).new_item_ids  # type: ignore[list-item]
        assert trends.update_counts(session, post_ids) == 1
    third = _refresh(engine, T[2])
    assert third["all"].computed_at == third["blogs"].computed_at == T[2]
    assert third["blogs"].window_docs == 1 and third["all"].window_docs == first["all"].window_docs + 1
    assert all(third[c].computed_at == T[0] for c in trends.CATEGORIES)
    with make() as session:  # a kept result is what computing it now gives
        for category in trends.CATEGORIES:
            fresh = trends.compute_report(session, end=END, scope=category, now=T[0])
            assert fresh.to_json() == third[category].to_json()
        stored = session.scalars(sa.select(TrendResult).where(TrendResult.is_latest.is_(True))).all()
        assert {(r.scope, r.end_day) for r in stored} == {(s, END) for s in trends.SCOPES}
        assert all(r.inputs and len(r.inputs) == 64 for r in stored)

    # a new paper-post link changes the papers' blog attention: every scope but "blogs" (where
    # a post counts itself) is recomputed
    with make() as session, session.begin():
        session.add(ItemLink(post_id=post_ids[0], paper_id=per_day[6][1], method="id", created_at=T[3]))
    fourth = _refresh(engine, T[3])
    assert {s: r.computed_at for s, r in fourth.items()} == {
        s: T[2] if s == "blogs" else T[3] for s in fourth
    }
    assert fourth["all"].terms[0].term == "zorblax routing" and fourth["all"].terms[0].posts == 1


def test_a_result_stored_without_inputs_is_recomputed(loaded: tuple[sa.Engine, list[list[int]]]) -> None:
    engine, _ = loaded
    _refresh(engine, T[0])
    with session_factory(engine)() as session, session.begin():
        session.execute(sa.update(TrendResult).where(TrendResult.scope == "cs.CV").values(inputs=None))
    again = _refresh(engine, T[1])
    assert again["cs.CV"].computed_at == T[1] and again["all"].computed_at == T[0]


def test_reports_computed_on_demand_are_kept_newest_first_and_bounded(
    loaded: tuple[sa.Engine, list[list[int]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Asking for many end days stores each report once, and only the newest
    ``ON_DEMAND_KEEP`` of them: the refresh-kept latest results are never deleted."""
    engine, _ = loaded
    _refresh(engine, T[0])
    monkeypatch.setattr(results, "ON_DEMAND_KEEP", 3)
    ends = [END - dt.timedelta(days=d) for d in range(1, 6)]
    for n, end in enumerate(ends):
        with session_factory(engine)() as session:
            report = trends.get_report(session, scope="cs.CL", end=end)
            assert report is not None and report.end == end
        with session_factory(engine)() as session:
            on_demand = session.scalars(
                sa.select(TrendResult.end_day).where(TrendResult.is_latest.is_(False))
            ).all()
            assert sorted(on_demand) == sorted(ends[max(0, n - 2) : n + 1])
    with session_factory(engine)() as session:
        latest = session.scalars(sa.select(TrendResult.scope).where(TrendResult.is_latest.is_(True))).all()
    assert set(latest) == set(_refresh(engine, T[1]))  # every refreshed scope kept its result
