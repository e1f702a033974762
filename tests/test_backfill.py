"""Backfill from the (replayed) arXiv API: paging, the 3 s politeness rule, resuming after an
interruption, and seed papers by id_list."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import sqlalchemy as sa
from conftest import Replay

from aggregator.config import Settings
from aggregator.store.db import make_engine, session_factory
from aggregator.store.tables import BackfillCursor, Item, ItemSource
from aggregator.worker import backfill


def _settings(replay: Replay, database_url: str, tmp_path: Path, **kw: object) -> Settings:
    feeds = replay.feeds_toml(tmp_path, only=["arXiv cs.CL"])
    base: dict[str, object] = dict(
        database_url=database_url,
        feeds_file=feeds,
        arxiv_delay_seconds=0.3,
        arxiv_api_url=replay.url("/api/query"),
        arxiv_page_size=100,
    )
    base.update(kw)
    return Settings(**base)  # type: ignore[arg-type]


def _expected_ids(replay: Replay, since: str) -> set[str]:
    """Every cs.CL paper the replayed API holds announced on or after ``since`` (raw XML)."""
    body = replay.get("/api/query?search_query=cat:cs.CL&max_results=2000").decode()
    out = set()
    for entry in body.split("<entry>")[1:]:
        published = re.search(r"<published>(\S+)</published>", entry).group(1)  # type: ignore[union-attr]
        if published[:10] >= since:
            out.add(re.search(r"<id>http://arxiv.org/abs/([0-9.]+)v\d", entry).group(1))  # type: ignore[union-attr]
    return out


def test_backfill_pages_resumes_and_respects_the_delay(
    replay: Replay, database_url: str, tmp_path: Path
) -> None:
    replay.set_day("2026-06-19")
    settings = _settings(replay, database_url, tmp_path)
    engine = make_engine(database_url)
    expected = _expected_ids(replay, "2026-06-15")
    assert len(expected) > 250  # more than two pages of 100
    replay.log(clear=True)

    first = backfill.backfill(engine, settings, ["cs.CL"], dt.date(2026, 6, 15), max_pages=1)
    assert first.pages == 1 and not first.done and first.new_items == 100
    with session_factory(engine)() as s:
        cursor = s.scalar(sa.select(BackfillCursor))
        assert cursor is not None and cursor.next_start == 100 and not cursor.done

    rest = backfill.backfill(engine, settings, ["cs.CL"], dt.date(2026, 6, 15))  # resumes at start=100
    assert rest.done and rest.error is None
    with session_factory(engine)() as s:
        stored = set(s.scalars(sa.select(Item.arxiv_id)))
        assert s.scalar(sa.select(sa.func.count()).select_from(ItemSource)) == len(stored)
    assert stored == expected

    requests = [r for r in replay.log() if r["path"].startswith("/api/query")]
    starts = [int(re.search(r"start=(\d+)", r["path"]).group(1)) for r in requests]  # type: ignore[union-attr]
    assert starts[:3] == [0, 100, 200]  # the second run did not start again at 0
    assert all("sortBy=submittedDate" in r["path"] for r in requests)
    gaps = [b["time"] - a["time"] for a, b in zip(requests[1:], requests[2:], strict=False)]
    assert gaps and min(gaps) >= 0.3 - 0.02  # arXiv's rule, at the delay the settings give

    again = backfill.backfill(engine, settings, ["cs.CL"], dt.date(2026, 6, 15))
    assert again.done and again.pages == 0  # a finished backfill is not repeated
    engine.dispose()


def test_seed_papers_are_fetched_by_id_list(replay: Replay, database_url: str, tmp_path: Path) -> None:
    settings = _settings(replay, database_url, tmp_path)
    engine = make_engine(database_url)
    body = replay.get("/api/query?search_query=cat:cs.CV&max_results=3").decode()
    ids = re.findall(r"<id>http://arxiv.org/abs/([0-9.]+)v\d</id>", body)
    assert len(ids) == 3
    report = backfill.fetch_papers(
        engine, settings, [f"https://arxiv.org/abs/{ids[0]}v1", ids[1], f"arXiv:{ids[2]}"]
    )
    assert report.error is None and report.new_items == 3
    with session_factory(engine)() as s:
        assert set(s.scalars(sa.select(Item.arxiv_id))) == set(ids)
    assert backfill.fetch_papers(engine, settings, ids).pages == 0  # already stored: no request
    engine.dispose()


def test_backfill_api_error_is_reported_and_resumable(replay: Replay, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'b.db'}"
    from aggregator.store.db import upgrade

    engine = make_engine(url)
    upgrade(engine)
    settings = _settings(
        replay,
        url,
        tmp_path,
        arxiv_api_url=replay.url("/_fault/status-503/api/query"),
        arxiv_delay_seconds=0.05,
    )
    report = backfill.backfill(engine, settings, ["cs.CL"], dt.date(2026, 6, 1))
    assert report.error is not None and "503" in report.error and report.pages == 0
    engine.dispose()
