"""Issue 15: the fast lxml reader and the feedparser reader give identical ParsedFeed records on
every captured document in ../shared/data (feeds, arXiv answers, and feedparser's own test
corpus under peer/), wherever the fast reader takes the document; and the fast reader takes
every well-formed UTF-8 arXiv document."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from conftest import DATA

from aggregator.feeds.parse import parse_feed

FETCHED = dt.datetime(2026, 8, 1, tzinfo=dt.UTC)
DECLINED = ("fast reader declined",)


def _documents() -> list[Path]:
    return sorted(
        p for p in DATA.rglob("*") if p.is_file() and p.suffix in (".xml", ".json", ".atom", ".rss")
    )


def test_both_readers_agree_on_every_capture() -> None:
    docs = _documents()
    assert len(docs) > 2000
    taken, differ = 0, []
    for path in docs:
        body = path.read_bytes()
        fast = parse_feed(body, fetched_at=FETCHED, url="https://feeds.example/feed", reader="fast")
        if fast.problems == DECLINED:
            continue
        taken += 1
        slow = parse_feed(body, fetched_at=FETCHED, url="https://feeds.example/feed", reader="feedparser")
        if fast != slow:
            differ.append(str(path.relative_to(DATA)))
    assert differ == []
    assert taken >= 700, taken  # 712 of 2,188 documents at the time of writing


def test_fast_reader_takes_the_arxiv_captures() -> None:
    names = [
        p.name
        for p in sorted((DATA / "arxiv-rss").glob("*.xml")) + sorted((DATA / "arxiv-api").glob("*.xml"))
        if "TRUNCATED" not in p.name
    ]
    declined = [
        n
        for n in names
        if parse_feed(
            (DATA / ("arxiv-rss" if "arxivpy" not in n and "api" not in n else "arxiv-api") / n).read_bytes(),
            fetched_at=FETCHED,
            reader="fast",
        ).problems
        == DECLINED
    ]
    assert declined == []
