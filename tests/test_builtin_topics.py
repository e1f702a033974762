"""The built-in topic filters are precise (issue 17): each one's precision on 200 real papers
labelled by hand (tests/data/builtin_topic_labels.json) is at least 0.8, and stored built-in
filters are brought up to date on start."""

from __future__ import annotations

import json
from pathlib import Path

import sqlalchemy as sa
from conftest import bulk_papers

from aggregator.accounts import builtin_topics, topic_filters
from aggregator.accounts.topic_filters import ItemFacts, match_topic
from aggregator.store.db import session_factory
from aggregator.store.tables import Topic

LABELS = json.loads((Path(__file__).parent / "data" / "builtin_topic_labels.json").read_text())


def _papers() -> dict[str, dict]:
    out: dict[str, dict] = {}
    for day in LABELS["days"]:
        for p in bulk_papers(day):
            out.setdefault(p["id"], p)
    return out


def _facts(p: dict) -> ItemFacts:
    return ItemFacts(p["title"], p["summary"], p["authors"], p["categories"])


def test_each_builtin_filter_is_at_least_80_percent_precise() -> None:
    papers = _papers()
    assert len(LABELS["items"]) == 200
    report = {}
    for topic, _ in builtin_topics.DEFAULT_TOPICS:
        tagged = [it for it in LABELS["items"] if match_topic(topic, _facts(papers[it["id"]]))]
        right = sum(topic.slug in it["relevant"] for it in tagged)
        assert len(tagged) >= 6, topic.slug  # enough matches to measure
        report[topic.slug] = right / len(tagged)
    assert min(report.values()) >= 0.8, report


def test_rl_for_llms_leaves_diffusion_and_video_papers_alone() -> None:
    rl = dict((t.slug, t) for t, _ in builtin_topics.DEFAULT_TOPICS)["rl-for-llms"]
    visual = [
        p
        for p in _papers().values()
        if any(w in p["title"].lower() for w in ("diffusion", "video generation", "image generation"))
        and "language model" not in p["title"].lower()  # RL for diffusion LLMs is RL for LLMs
    ]
    assert len(visual) > 30
    assert [p["title"] for p in visual if match_topic(rl, _facts(p))] == []


def test_stored_builtin_filters_are_updated(engine: sa.Engine) -> None:
    with session_factory(engine)() as s, s.begin():
        assert builtin_topics.ensure_default_topics(s) == len(builtin_topics.DEFAULT_TOPICS)
        row = s.scalar(sa.select(Topic).where(Topic.slug == "rl-for-llms"))
        assert row is not None
        row.phrases, row.negative = ["reward model", "rlhf"], []
    with session_factory(engine)() as s, s.begin():
        assert builtin_topics.ensure_default_topics(s) == 0
        current = topic_filters.get_topic(s, "rl-for-llms").filter
        assert "rlhf" not in current.phrases and "diffusion model" in current.negative
