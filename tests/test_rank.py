"""TF-IDF ranking on real arXiv abstracts: cosine scores, `why` terms, storage, the digest order."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import pytest
import sqlalchemy as sa
from conftest import bulk_papers, paper_entry

from aggregator.config import FeedConfig, Interests
from aggregator.digest.public import build_digest, day_window
from aggregator.feeds.ingest import sync_feeds, write_entries
from aggregator.ranking import tfidf as rank
from aggregator.store.db import session_factory
from aggregator.store.tables import Feed, Score

DAYS = ["2026-06-15", "2026-06-16", "2026-06-17"]
UTC = dt.UTC


@pytest.fixture(scope="module")
def corpus() -> list[dict]:
    return [p for d in DAYS for p in bulk_papers(d)]


@pytest.fixture(scope="module")
def model(corpus: list[dict]) -> rank.TfidfModel:
    return rank.fit([rank.item_text(p["title"], p["summary"], p["authors"]) for p in corpus])


def test_fit_and_transform_shapes(model: rank.TfidfModel, corpus: list[dict]) -> None:
    texts = [rank.item_text(p["title"], p["summary"], p["authors"]) for p in corpus[:50]]
    matrix = model.transform(texts)
    assert matrix.shape == (50, model.n_terms) and matrix.dtype == np.float32
    norms = np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
    assert np.allclose(norms, 1.0, atol=1e-5)
    assert "diffusion models" in set(model.terms) and "the" not in set(model.terms)  # bigrams, no stop words


def test_interest_profile_ranks_matching_papers_first(model: rank.TfidfModel, corpus: list[dict]) -> None:
    interests = Interests(text="diffusion models for image and video generation", keywords=("diffusion",))
    profile = rank.profile_vector(model, interests)
    matrix = model.transform([rank.item_text(p["title"], p["summary"], p["authors"]) for p in corpus])
    scores = rank.score_matrix(matrix, profile)
    top = np.argsort(-scores)[:10]
    hits = sum("diffusion" in (corpus[i]["title"] + corpus[i]["summary"]).lower() for i in top)
    assert hits == 10
    base_rate = np.mean(["diffusion" in (p["title"] + p["summary"]).lower() for p in corpus])
    assert base_rate < 0.3  # so ten of ten is not luck
    why = rank.explain(matrix[top[0]], profile, model, 5)
    assert any("diffusion" in w["term"] for w in why)
    assert sum(w["weight"] for w in why) <= scores[top[0]] + 1e-4
    assert why == sorted(why, key=lambda w: -w["weight"])


def test_model_round_trips_through_bytes(model: rank.TfidfModel) -> None:
    again = rank.TfidfModel.from_bytes(model.to_bytes())
    text = ["Reinforcement learning with verifiable rewards improves reasoning in large language models"]
    assert (model.transform(text) != again.transform(text)).nnz == 0
    # the topic space (aggregator.ranking.semantic) is stored with it, exactly as fitted
    assert model.topics is not None and again.topics is not None
    assert model.topics.shape == (64, model.n_terms) and np.array_equal(model.topics, again.topics)


def test_rescore_and_digest_order(engine: sa.Engine) -> None:
    now = dt.datetime(2026, 6, 17, 12, tzinfo=UTC)
    with session_factory(engine)() as s, s.begin():
        sync_feeds(s, [FeedConfig("arXiv cs.LG", "http://127.0.0.1:9/cs.LG", "arxiv")], now)
        feed_id = s.scalar(sa.select(Feed.id))
        for d in DAYS:
            write_entries(s, feed_id, [paper_entry(p, d) for p in bulk_papers(d)], now)
    interests = Interests(
        text="reinforcement learning for reasoning in large language models",
        keywords=("reinforcement learning", "reasoning"),
    )
    with session_factory(engine)() as s, s.begin():
        model = rank.refit(s, now, 90)
        assert model is not None and model.model_id is not None
        n = rank.rescore(s, model, interests)
    with session_factory(engine)() as s:
        assert n == s.scalar(sa.select(sa.func.count()).select_from(Score))
        digest = build_digest(s, ZoneInfo("UTC"), dt.date(2026, 6, 16), limit=20)
    assert digest.total == len(bulk_papers("2026-06-16"))
    scores = [e.score for e in digest.items]
    assert scores == sorted(scores, reverse=True) and scores[0] > 0.1
    top = digest.items[0]
    assert top.why and top.source == "arXiv cs.LG"
    assert any(t in (top.title + top.summary).lower() for t in ("reinforcement", "reasoning"))
    start, end = day_window(dt.date(2026, 6, 16), 1, ZoneInfo("UTC"))
    assert all(start <= e.published < end for e in digest.items)


def test_day_window_in_a_time_zone() -> None:
    start, end = day_window(dt.date(2026, 6, 15), 2, ZoneInfo("America/New_York"))
    assert start == dt.datetime(2026, 6, 14, 4, tzinfo=UTC) and end == dt.datetime(2026, 6, 16, 4, tzinfo=UTC)


def test_score_unscored_fills_in_items_committed_around_a_refit(engine: sa.Engine) -> None:
    """Items another worker committed while a refit was reading get scored on the next tick;
    only recent items are looked at."""
    from aggregator.config import Settings
    from aggregator.worker import tasks as jobs

    now = dt.datetime.now(UTC)
    day = "2026-06-15"
    papers = bulk_papers(day)
    with session_factory(engine)() as s, s.begin():
        sync_feeds(s, [FeedConfig("arXiv cs.LG", "http://127.0.0.1:9/cs.LG", "arxiv")], now)
        feed_id = s.scalar(sa.select(Feed.id))
        write_entries(s, feed_id, [paper_entry(p, day) for p in papers[:100]], now - dt.timedelta(days=2))
    interests = Interests(text="reasoning in large language models")
    settings = Settings(database_url=str(engine.url), why_terms=3)  # type: ignore[call-arg]
    assert jobs.ranking_is_stale(engine)
    assert jobs.update_ranking(engine, settings, interests) == 100
    assert not jobs.ranking_is_stale(engine)
    with session_factory(engine)() as s, s.begin():  # committed just before the fit finished
        write_entries(
            s, feed_id, [paper_entry(p, day) for p in papers[100:130]], now - dt.timedelta(minutes=5)
        )
    assert not jobs.ranking_is_stale(engine)  # first seen before the fit: no refit, but unscored
    assert jobs.score_unscored(engine, settings, interests) == 30
    assert jobs.score_unscored(engine, settings, interests) == 0
    with session_factory(engine)() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Score)) == 130
    with session_factory(engine)() as s, s.begin():  # arrives after the fit: stale again
        write_entries(s, feed_id, [paper_entry(p, day) for p in papers[130:131]], dt.datetime.now(UTC))
    assert jobs.ranking_is_stale(engine)
