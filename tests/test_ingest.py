"""Ingest on real paper metadata, on SQLite and PostgreSQL: one item per paper, idempotent,
transactional, with feed state (backoff, Retry-After, 410) recorded."""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest
import sqlalchemy as sa
from conftest import bulk_papers, paper_entry

from aggregator.config import FeedConfig
from aggregator.feeds.ingest import (
    apply_fetch,
    claim_due_feeds,
    decide,
    failure_delay,
    sync_feeds,
    write_entries,
)
from aggregator.store.db import session_factory
from aggregator.store.tables import Feed, Item, ItemSource
from aggregator.types import FetchResult, ParsedEntry, ParsedFeed

NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.UTC)
DAY = "2026-06-15"


def _feeds(engine: sa.Engine, *names: str) -> dict[str, int]:
    with session_factory(engine)() as s, s.begin():
        sync_feeds(s, [FeedConfig(n, f"http://127.0.0.1:9/{n}", "arxiv") for n in names], NOW)
    with session_factory(engine)() as s:
        return {f.name: f.id for f in s.scalars(sa.select(Feed))}


def _count(engine: sa.Engine, table: type) -> int:
    with engine.connect() as c:
        return c.execute(sa.select(sa.func.count()).select_from(table)).scalar_one()


def test_real_day_ingested_once_and_idempotent(engine: sa.Engine) -> None:
    papers = bulk_papers(DAY)
    ids = _feeds(engine, "cs.LG")
    entries = [paper_entry(p, DAY) for p in papers]
    with session_factory(engine)() as s, s.begin():
        first = write_entries(s, ids["cs.LG"], entries, NOW)
    assert first.new == len(papers) == 176  # SOURCES.md: 176 unique ids that day
    assert len(first.new_item_ids) == 176
    with session_factory(engine)() as s, s.begin():
        second = write_entries(s, ids["cs.LG"], entries, NOW)
    assert (second.new, second.updated, second.unchanged) == (0, 0, 176)
    assert _count(engine, Item) == 176
    assert _count(engine, ItemSource) == 176
    with session_factory(engine)() as s:
        item = s.scalar(sa.select(Item).where(Item.arxiv_id == papers[0]["id"]))
        assert item is not None
        assert item.title == " ".join(papers[0]["title"].split())
        assert item.authors == papers[0]["authors"]
        assert item.published == dt.datetime(2026, 6, 15, 4, 0, tzinfo=dt.UTC)


def test_cross_list_is_one_item_with_two_sources(engine: sa.Engine) -> None:
    paper = next(p for p in bulk_papers(DAY) if {"cs.LG", "cs.CL"} <= set(p["categories"]))
    ids = _feeds(engine, "cs.LG", "cs.CL")
    with session_factory(engine)() as s, s.begin():
        a = write_entries(s, ids["cs.LG"], [paper_entry(paper, DAY, announce_type="new")], NOW)
        b = write_entries(s, ids["cs.CL"], [paper_entry(paper, DAY, announce_type="cross")], NOW)
    assert (a.new, b.new, b.unchanged) == (1, 0, 1)
    with engine.connect() as c:
        rows = c.execute(
            sa.select(ItemSource.feed_id, ItemSource.announce_type).order_by(ItemSource.id)
        ).all()
    assert rows == [(ids["cs.LG"], "new"), (ids["cs.CL"], "cross")]


def test_replacement_updates_version_keeps_announcement_date(engine: sa.Engine) -> None:
    paper = bulk_papers(DAY)[3]
    ids = _feeds(engine, "cs.LG")
    with session_factory(engine)() as s, s.begin():
        write_entries(s, ids["cs.LG"], [paper_entry(paper, DAY)], NOW)
    v2 = dataclasses.replace(
        paper_entry(paper, "2026-06-22", version=2, announce_type="replace"),
        title="Revised: " + paper["title"],
    )
    with session_factory(engine)() as s, s.begin():
        res = write_entries(s, ids["cs.LG"], [v2], NOW + dt.timedelta(days=7))
    assert (res.new, res.updated) == (0, 1)
    with session_factory(engine)() as s:
        item = s.scalar(sa.select(Item))
        assert item is not None and item.version == 2 and item.title.startswith("Revised: ")
        assert item.published.date() == dt.date(2026, 6, 15)
        assert s.scalar(sa.select(sa.func.count()).select_from(ItemSource)) == 2
    # an older version announced again changes nothing
    with session_factory(engine)() as s, s.begin():
        again = write_entries(s, ids["cs.LG"], [paper_entry(paper, DAY)], NOW)
    assert (again.new, again.updated, again.unchanged) == (0, 0, 1)


def _post(link: str, summary: str) -> ParsedEntry:
    return ParsedEntry(
        kind="post",
        key=link,
        title="A post",
        url=link,
        authors=("A. Writer",),
        summary=summary,
        published=NOW,
    )


def test_decide_is_pure_and_dedupes_within_a_document() -> None:
    e1, e2 = _post("https://blog.example/a", "one"), _post("https://blog.example/b", "two")
    plan = decide([e1, e2, e1], {})
    assert [e.key for e, _ in plan.insert] == [e1.key, e2.key]
    from aggregator.feeds.ingest import Stored, content_hash

    plan = decide(
        [e1, dataclasses.replace(e2, summary="changed")],
        {e1.key: Stored(1, None, content_hash(e1)), e2.key: Stored(2, None, content_hash(e2))},
    )
    assert plan.unchanged == 1 and [(i, e.summary) for i, e, _ in plan.update] == [(2, "changed")]


def test_crash_mid_ingest_leaves_nothing_half_written(engine: sa.Engine) -> None:
    ids = _feeds(engine, "cs.LG")
    entries = [paper_entry(p, DAY) for p in bulk_papers(DAY)]
    parsed = ParsedFeed(kind="arxiv", title="cs.LG", link=None, entries=tuple(entries))
    result = FetchResult("u", "u", 200, body=b"x", etag='"v1"', last_modified="Mon, 15 Jun 2026 04:00:01 GMT")
    with pytest.raises(RuntimeError), session_factory(engine)() as s, s.begin():
        feed = s.get(Feed, ids["cs.LG"])
        assert feed is not None
        apply_fetch(s, feed, result, parsed, NOW, 86400)
        raise RuntimeError("killed mid-ingest")
    assert _count(engine, Item) == 0 and _count(engine, ItemSource) == 0
    with session_factory(engine)() as s:
        feed = s.get(Feed, ids["cs.LG"])
        assert feed is not None and feed.etag is None and feed.last_success_at is None


def test_failure_delay_backs_off_exponentially_with_cap_and_retry_after() -> None:
    assert [failure_delay(n, 60, None, 86400) for n in (1, 2, 3)] == [3600, 7200, 14400]
    assert failure_delay(10, 60, None, 86400) == 86400
    assert failure_delay(1, 1, 600, 86400) == 600  # Retry-After longer than the backoff wins
    assert failure_delay(1, 60, 10**9, 86400) == 86400  # but the cap still holds


def test_feed_state_after_errors_retry_after_and_gone(engine: sa.Engine) -> None:
    ids = _feeds(engine, "a")
    with session_factory(engine)() as s, s.begin():
        feed = s.get(Feed, ids["a"])
        assert feed is not None
        apply_fetch(
            s, feed, FetchResult("u", "u", 503, error="HTTP 503", retry_after=7200.0), None, NOW, 86400
        )
        assert (feed.error_count, feed.last_status, feed.last_error) == (1, 503, "HTTP 503")
        assert feed.next_check_at == NOW + dt.timedelta(seconds=7200)
        apply_fetch(s, feed, FetchResult("u", "u", 500, error="HTTP 500"), None, NOW, 86400)
        assert feed.error_count == 2 and feed.next_check_at == NOW + dt.timedelta(hours=2)
        empty = ParsedFeed(kind="arxiv", title="cs.LG", link=None, entries=())
        apply_fetch(s, feed, FetchResult("u", "u", 200, body=b"<rss/>", etag='"e"'), empty, NOW, 86400)
        assert feed.error_count == 0 and feed.last_error is None and feed.etag == '"e"'
        assert feed.next_check_at == NOW + dt.timedelta(minutes=60)
        apply_fetch(s, feed, FetchResult("u", "u", 410, error="HTTP 410 Gone"), None, NOW, 86400)
        assert feed.disabled and feed.next_check_at is None and "disabled" in (feed.last_error or "")
    with session_factory(engine)() as s:
        assert claim_due_feeds(s, NOW + dt.timedelta(days=30), 60, include_all=True) == []


def test_two_workers_never_claim_the_same_feed(engine: sa.Engine) -> None:
    _feeds(engine, "a", "b", "c")
    make = session_factory(engine)
    with make() as s1, make() as s2:
        first = claim_due_feeds(s1, NOW, 600)
        second = claim_due_feeds(s2, NOW, 600)
    assert len(first) == 3 and second == []
    with make() as s3:  # the lease expired: a dead worker's feeds are picked up again
        assert len(claim_due_feeds(s3, NOW + dt.timedelta(seconds=601), 600)) == 3


def test_sync_feeds_unschedules_removed_feeds_and_keeps_state(engine: sa.Engine) -> None:
    ids = _feeds(engine, "a", "b")
    with session_factory(engine)() as s, s.begin():
        s.get(Feed, ids["a"]).error_count = 4  # type: ignore[union-attr]
        sync_feeds(s, [FeedConfig("a renamed", "http://127.0.0.1:9/a", None, 30)], NOW)
    with session_factory(engine)() as s:
        a, b = s.get(Feed, ids["a"]), s.get(Feed, ids["b"])
        assert a is not None and b is not None
        assert (a.name, a.interval_minutes, a.error_count, a.scheduled, a.kind) == (
            "a renamed",
            30,
            4,
            True,
            "arxiv",
        )
        assert b.scheduled is False


def test_a_paper_committed_meanwhile_by_another_feed_is_not_counted_new(
    engine: sa.Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two feeds ingesting the same cross-listed paper at once: the one whose INSERT finds the
    row already there must not report it as new (RETURNING says what was inserted)."""
    import aggregator.feeds.ingest as ingest

    paper = bulk_papers(DAY)[0]
    ids = _feeds(engine, "cs.LG", "cs.CL")
    with session_factory(engine)() as s, s.begin():
        write_entries(s, ids["cs.LG"], [paper_entry(paper, DAY)], NOW)
    real = ingest.load_stored
    looks: list[int] = []

    def stale_first(session: object, keys: list[str], *rest: str) -> dict:
        looks.append(1)  # the first look sees the world before the other feed committed
        return {} if len(looks) == 1 else real(session, keys, *rest)  # type: ignore[arg-type]

    monkeypatch.setattr(ingest, "load_stored", stale_first)
    with session_factory(engine)() as s, s.begin():
        late = write_entries(s, ids["cs.CL"], [paper_entry(paper, DAY, announce_type="cross")], NOW)
    assert (late.new, late.new_item_ids) == (0, [])
    assert _count(engine, Item) == 1 and _count(engine, ItemSource) == 2
