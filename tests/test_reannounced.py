"""After an ingest, an item shown to a reader on an earlier day and announced again (a
replacement or a cross-list) is marked seen for that reader; on a real rss.arxiv.org listing
(569 replacements, 9 cross-lists, 926 new papers) served by feedreplay."""

from __future__ import annotations

import dataclasses
import datetime as dt
from pathlib import Path

import sqlalchemy as sa
from conftest import DATA, Replay

from aggregator.accounts.readers import create_reader
from aggregator.config import Settings, load_feeds_file
from aggregator.feeds.ingest import write_entries
from aggregator.feeds.parse import parse_feed
from aggregator.store.db import make_engine, session_factory
from aggregator.store.tables import Feed, Item, ReadMark, Score
from aggregator.types import ParsedEntry
from aggregator.worker import enrich, refresh

LISTING = "arxiv-rss/all-archives-2024-11-28-rss2-FULL-aioarxiv.xml"


def _earlier(entry: ParsedEntry) -> ParsedEntry:
    """The entry as first announced: version one lower for a replacement, "new" for both."""
    version = (entry.version or 2) - 1 if entry.announce_type == "replace" else entry.version
    return dataclasses.replace(entry, version=version, announce_type="new")


def _score(item_id: int, reader_id: int, published: dt.datetime) -> Score:
    return Score(profile=f"reader:{reader_id}", item_id=item_id, score=1.0, why=[], published=published)


def test_items_announced_again_are_marked_seen(replay: Replay, database_url: str, tmp_path: Path) -> None:
    feeds = tmp_path / "feeds.toml"
    feeds.write_text(
        f'[[feeds]]\nname = "arXiv all"\nurl = "{replay.url("/static/" + LISTING)}"\nkind = "arxiv"\n'
        'interval = 60\n\n[interests]\ntext = "physics"\n'
    )
    settings = Settings(
        database_url=database_url,
        feeds_file=feeds,
        arxiv_delay_seconds=0.02,
        arxiv_api_url=replay.url("/api/query"),  # knows none of these 2024 papers
    )
    now = dt.datetime.now(dt.UTC)
    listing = parse_feed((DATA / LISTING).read_bytes(), fetched_at=now, url="x", kind="arxiv").entries
    replaced = [e for e in listing if e.announce_type == "replace"][:6]
    crossed = [e for e in listing if e.announce_type == "cross"][:3]
    fresh = [e for e in listing if e.announce_type == "new"][:2]
    assert len(replaced) == 6 and len(crossed) == 3 and len(fresh) == 2

    engine = make_engine(database_url)
    with session_factory(engine)() as s, s.begin():
        feed = Feed(url="https://rss.arxiv.org/rss/physics", name="earlier", kind="arxiv", created_at=now)
        s.add(feed)
        s.flush()
        two_days_ago, this_morning = now - dt.timedelta(days=2), now - dt.timedelta(hours=3)
        write_entries(s, feed.id, [_earlier(e) for e in replaced[:5] + crossed], two_days_ago)
        write_entries(s, feed.id, [_earlier(replaced[5])], this_morning)  # the same day: not "again"
        alice = create_reader(s, "alice@example.org", now).reader_id
        bob = create_reader(s, "bob@example.org", now).reader_id
        ids = dict(s.execute(sa.select(Item.key, Item.id)).all())
        for e in replaced + crossed:
            s.add(_score(ids[e.key], alice, e.published))
        s.add(_score(ids[crossed[0].key], bob, crossed[0].published))
        first = ids[replaced[0].key]
        s.add(ReadMark(reader_id=alice, item_id=first, how="opened", read_at=now, published=now))

    started = dt.datetime.now(dt.UTC)
    report = refresh.refresh_feeds(engine, settings, load_feeds_file(feeds))
    assert report.new_items == len(listing) - len(replaced) - len(crossed)
    with session_factory(engine)() as s, s.begin():  # Bob was shown a fresh paper today: not "again"
        fresh_id = s.scalar(sa.select(Item.id).where(Item.key == fresh[0].key))
        assert fresh_id is not None
        s.add(_score(fresh_id, bob, fresh[0].published))

    done = enrich.after_ingest(engine, settings, started)  # what the worker and `fetch` run

    with session_factory(engine)() as s:
        marks = {(r.reader_id, r.item_id): r.how for r in s.scalars(sa.select(ReadMark))}
    expected = {(alice, ids[e.key]): "seen" for e in replaced[1:5] + crossed}
    expected[(alice, ids[replaced[0].key])] = "opened"  # already read: left as it was
    expected[(bob, ids[crossed[0].key])] = "seen"
    assert marks == expected
    assert done.seen_marks == len(expected) - 1
    assert done.enrich.missing == len(listing) and done.enrich.error is None  # all from listings

    again = enrich.after_ingest(engine, settings, started)
    assert again.seen_marks == 0  # marks are written once
    engine.dispose()
