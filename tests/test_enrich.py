"""Enrichment of newly announced papers from the (replayed) arXiv API after an RSS ingest:
id_list batches of at most 100, arXiv's 3 s rule, resuming after a failure, journal references
from a real API answer, and the cards rebuilt with venues and code links."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
import urllib.parse
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import DATA, Replay
from prometheus_client import REGISTRY

from aggregator.config import Settings, load_feeds_file
from aggregator.feeds.ingest import write_entries
from aggregator.feeds.parse import parse_feed
from aggregator.feeds.venues import extract
from aggregator.store.db import make_engine, session_factory
from aggregator.store.tables import Feed, Item
from aggregator.worker import enrich, refresh
from aggregator.worker.scheduler import refresh_job

BULK = DATA / "bulk" / "daily-arxiv-ai-enhanced"
ARXIV_FEEDS = ["arXiv cs.LG", "arXiv cs.CV", "arXiv cs.CL"]
API_CAPTURE = "arxiv-api/arxivpy-2026-04-12-api-new-q_testing_s0_m100_cfe7536492ca-http200.xml"


def _settings(replay: Replay, database_url: str, tmp_path: Path, **kw: object) -> Settings:
    feeds = replay.feeds_toml(tmp_path, only=ARXIV_FEEDS, extra='\n[interests]\ntext = "language models"\n')
    base: dict[str, object] = dict(
        database_url=database_url,
        feeds_file=feeds,
        arxiv_delay_seconds=0.05,
        arxiv_api_url=replay.url("/api/query"),
    )
    base.update(kw)
    return Settings(**base)  # type: ignore[arg-type]


def _bulk_comments(day: str) -> dict[str, str | None]:
    """arXiv id → the authors' comment, from the real metadata the replay serves for ``day``."""
    out: dict[str, str | None] = {}
    for path in sorted(BULK.glob(f"*-{day}.jsonl")):
        for line in path.open(encoding="utf-8"):
            paper = json.loads(line)
            comment = " ".join((paper.get("comment") or "").split())
            out.setdefault(paper["id"], comment or None)
    return out


def _api_requests(replay: Replay) -> list[dict]:
    return [r for r in replay.log() if r["path"].startswith("/api/query")]


def _id_lists(requests: list[dict]) -> list[list[str]]:
    out = []
    for r in requests:
        query = urllib.parse.parse_qs(urllib.parse.urlsplit(r["path"]).query)
        out.append(query["id_list"][0].split(","))
    return out


@pytest.mark.slow
def test_worker_enriches_new_papers_at_arxivs_pace(replay: Replay, database_url: str, tmp_path: Path) -> None:
    """The worker's pass (refresh_job) ingests the RSS listing, then asks the API for the new
    papers' comments in id_list batches of <= 100, the configured delay apart (3 s by default,
    arXiv API terms: one request every 3 s; 1 s here), and the cards show venues."""
    assert Settings.model_fields["arxiv_delay_seconds"].default == 3.0
    delay = 1.0
    settings = _settings(replay, database_url, tmp_path, arxiv_delay_seconds=delay)
    engine = make_engine(database_url)
    truth = _bulk_comments("2026-06-15")

    refresh_job(engine, settings)

    with session_factory(engine)() as s:
        cols = (Item.arxiv_id, Item.comment, Item.enriched_at, Item.card, Item.venue)
        rows = s.execute(sa.select(*cols)).all()
    assert len(rows) > 100  # more than one batch
    assert all(r.enriched_at is not None for r in rows)
    requests = _api_requests(replay)
    batches = _id_lists(requests)
    assert len(requests) == -(-len(rows) // 100) and all(len(b) <= 100 for b in batches)
    asked = [i for b in batches for i in b]
    assert sorted(asked) == sorted(r.arxiv_id for r in rows)  # each paper asked once
    assert all("max_results=" in r["path"] for r in requests)
    gaps = [b["time"] - a["time"] for a, b in zip(requests, requests[1:], strict=False)]
    assert gaps and min(gaps) >= delay - 0.02, gaps

    # the comments are arXiv's own (the replay serves the real metadata), and give the venues
    assert {r.arxiv_id: r.comment for r in rows} == {r.arxiv_id: truth[r.arxiv_id] for r in rows}
    with_venue = [r for r in rows if r.venue]
    assert len(with_venue) >= 3
    for r in rows:
        assert r.venue == (v.name if (v := extract(r.comment).venue) else None)
        assert r.card is not None  # rebuilt by the same pass after the enrichment made it stale
    card = json.loads(next(r.card for r in with_venue))
    assert card["venue"] and card["venue_label"].startswith(card["venue"])

    again = enrich.enrich_papers(engine, settings)
    assert again.requests == 0 and again.pending == 0  # nothing asked twice
    engine.dispose()


def test_enrichment_resumes_after_a_failure(replay: Replay, database_url: str, tmp_path: Path) -> None:
    settings = _settings(replay, database_url, tmp_path)
    engine = make_engine(database_url)
    refresh.refresh_feeds(engine, settings, load_feeds_file(settings.feeds_file))  # RSS only: no comments
    total = len(enrich.pending(engine))
    assert total > 100
    with session_factory(engine)() as s:
        assert s.scalar(sa.select(sa.func.count()).where(Item.comment.is_not(None))) == 0

    counter, answered_label = "aggregator_papers_enriched_total", {"result": "answered"}
    answered_before = REGISTRY.get_sample_value(counter, answered_label) or 0
    first = enrich.enrich_papers(engine, settings, max_batches=1)
    assert (first.requests, first.enriched, first.pending) == (1, 100, total - 100)
    assert REGISTRY.get_sample_value(counter, answered_label) == answered_before + 100
    assert REGISTRY.get_sample_value("aggregator_enrich_pending") == total - 100

    failing = settings.model_copy(update={"arxiv_api_url": replay.url("/_fault/status-500/api/query")})
    broken = enrich.enrich_papers(engine, failing)
    assert broken.error == "HTTP 500 Internal Server Error" and broken.enriched == 0
    assert broken.pending == total - 100  # nothing lost, nothing marked done

    replay.log(clear=True)
    rest = enrich.enrich_papers(engine, settings)
    assert rest.error is None and rest.pending == 0 and rest.enriched == total - 100
    resumed = [i for b in _id_lists(_api_requests(replay)) for i in b]
    assert len(resumed) == total - 100  # the first batch was not asked again
    with session_factory(engine)() as s:
        assert (s.scalar(sa.select(sa.func.count()).where(Item.comment.is_not(None))) or 0) > total / 3
    engine.dispose()


def test_journal_references_from_a_real_api_answer(replay: Replay, database_url: str, tmp_path: Path) -> None:
    """Papers stored from a listing (no comment, no journal reference) get both from a real
    export.arxiv.org answer (18 of its 100 papers have a journal reference)."""
    body = (DATA / API_CAPTURE).read_bytes()
    now = dt.datetime.now(dt.UTC)
    real = parse_feed(body, fetched_at=now, url="https://export.arxiv.org/api/query", kind="arxiv").entries
    assert len(real) == 100 and all(e.from_api for e in real)
    listed = [dataclasses.replace(e, comment=None, journal_ref=None, from_api=False) for e in real]
    engine = make_engine(database_url)
    with session_factory(engine)() as s, s.begin():
        feed = Feed(url="https://rss.arxiv.org/rss/cs.SE", name="arXiv cs.SE", kind="arxiv", created_at=now)
        s.add(feed)
        s.flush()
        write_entries(s, feed.id, listed, now)
    # the static route answers with the capture whatever the id_list
    settings = _settings(replay, database_url, tmp_path, arxiv_api_url=replay.url(f"/static/{API_CAPTURE}"))
    report = enrich.enrich_papers(engine, settings)
    assert (report.requests, report.enriched, report.missing, report.error) == (1, 100, 0, None)
    with session_factory(engine)() as s:
        stored = {r.arxiv_id: r for r in s.execute(sa.select(Item.arxiv_id, Item.comment, Item.journal_ref))}
    assert {k: v.journal_ref for k, v in stored.items()} == {e.arxiv_id: e.journal_ref for e in real}
    assert {k: v.comment for k, v in stored.items()} == {e.arxiv_id: e.comment for e in real}
    assert sum(1 for v in stored.values() if v.journal_ref) == 18
    engine.dispose()


def test_a_replacement_from_rss_is_enriched_again(database_url: str) -> None:
    """An API entry is stored enriched; a newer version announced by RSS keeps the stored
    comment (and venue) but is asked for again: the new version's comment may say accepted."""
    body = (DATA / API_CAPTURE).read_bytes()
    now = dt.datetime.now(dt.UTC)
    real = parse_feed(body, fetched_at=now, url="https://export.arxiv.org/api/query", kind="arxiv")
    entry = next(e for e in real.entries if e.comment and e.journal_ref)
    engine = make_engine(database_url)
    with session_factory(engine)() as s, s.begin():
        feed = Feed(url="https://rss.arxiv.org/rss/cs.SE", name="arXiv cs.SE", kind="arxiv", created_at=now)
        s.add(feed)
        s.flush()
        write_entries(s, feed.id, [entry], now)
        item = s.scalar(sa.select(Item))
        assert item is not None and item.enriched_at is not None and item.comment == entry.comment
        newer = dataclasses.replace(
            entry, comment=None, journal_ref=None, from_api=False, version=(entry.version or 1) + 1
        )
        assert write_entries(s, feed.id, [newer], now + dt.timedelta(days=1)).updated == 1
        s.expire_all()
        item = s.scalar(sa.select(Item))
        assert item is not None
        assert (item.comment, item.journal_ref) == (entry.comment, entry.journal_ref)
        assert item.enriched_at is None and item.version == newer.version
    assert [a for _, a in enrich.pending(engine)] == [entry.arxiv_id]
    engine.dispose()


def test_cli_fetch_enriches(replay: Replay, tmp_path: Path) -> None:
    """``aggregator fetch`` runs the same step and says what it did."""
    from typer.testing import CliRunner

    from aggregator.cli.app import app
    from aggregator.config import get_settings

    feeds = replay.feeds_toml(tmp_path, only=ARXIV_FEEDS, extra='\n[interests]\ntext = "language"\n')
    env = {
        "AGGREGATOR_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "AGGREGATOR_FEEDS_FILE": str(feeds),
        "AGGREGATOR_ARXIV_DELAY_SECONDS": "0.05",
        "AGGREGATOR_ARXIV_API_URL": replay.url("/api/query"),
    }
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["fetch", "--all"], env={**env, "COLUMNS": "250"})
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    match = re.search(r"arXiv API: (\d+) papers enriched in (\d+) requests .* (\d+) pending", result.output)
    assert match is not None, result.output
    enriched, requests, pending = map(int, match.groups())
    assert enriched > 100 and requests == -(-enriched // 100) and pending == 0
