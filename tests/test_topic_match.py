"""One topic matcher, one profile loader, one mute rule (issue 17): the pure rules of
``accounts.topic_filters`` and the ranking's vectorised masks agree on real papers, and the
reader's digest hides the same items with and without precomputed scores."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import numpy as np
import pytest
import sqlalchemy as sa
from conftest import bulk_papers
from test_readers import load_papers

from aggregator.accounts import profiles, readers
from aggregator.accounts.topic_filters import ItemFacts, is_excluded, is_muted, match_topic
from aggregator.digest import personal as digest_personal
from aggregator.errors import NotFound
from aggregator.ranking import personal
from aggregator.ranking import tfidf as rank
from aggregator.store.db import session_factory
from aggregator.store.tables import Item
from aggregator.types import TopicFilter

UTC = ZoneInfo("UTC")
NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.UTC)


def _t(*phrases: str, **kw: object) -> TopicFilter:
    return TopicFilter("t", "T", phrases=phrases, **kw)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("topic", "facts", "expected"),
    [
        (_t("gan"), ItemFacts("Gangs of New York"), False),
        (_t("gan"), ItemFacts("Stable GANs without tricks"), True),
        (_t("gan"), ItemFacts("Organ segmentation"), False),
        (_t("diffusion model"), ItemFacts("A diffusion-model prior"), True),
        (_t("diffusion-model"), ItemFacts("Diffusion models as priors"), True),
        (_t("diffusion model"), ItemFacts("Diffusion\n  models as priors"), True),
        (_t("agent"), ItemFacts("LLM Agents for the web"), True),
        (_t("agent"), ItemFacts("A reagent study"), False),
        (_t("agent"), ItemFacts("Agentic workflows"), False),
        (
            _t("robot", categories=("cs.RO", "cs.AI"), match="all"),
            ItemFacts("Robot", categories=["cs.RO"]),
            True,
        ),
        (_t("robot", negative=("survey",)), ItemFacts("Robot learning: a survey"), False),
        (_t(authors=("Ada Lovelace",)), ItemFacts("x", authors=["ada  LOVELACE"]), True),
        (_t(sources=("arXiv cs.RO",)), ItemFacts("x", sources=["arxiv  cs.ro"]), True),
        (_t(), ItemFacts("anything"), False),
    ],
)
def test_topic_cases(topic: TopicFilter, facts: ItemFacts, expected: bool) -> None:
    assert match_topic(topic, facts) is expected


def test_mute_and_filter_rules() -> None:
    item = ItemFacts(
        "Robots", "with GANs", authors=["Ada Lovelace"], categories=["cs.RO"], sources=["arXiv cs.RO"]
    )
    assert is_muted(["ada lovelace"], item) and is_muted(["gan"], item)
    assert not is_muted(["lovelace", "organ", " "], item)
    assert is_excluded(item, exclude_categories=["CS.RO"])
    assert is_excluded(item, exclude_sources=["arxiv cs.ro"])
    assert not is_excluded(item, include_categories=["cs.CV"], include_sources=["arXiv cs.RO"])
    assert is_excluded(item, include_categories=["cs.CV"])


def test_vectorised_masks_agree_with_the_pure_rules_on_real_papers() -> None:
    papers = bulk_papers("2026-06-15") + bulk_papers("2026-06-16")
    model = rank.fit([rank.item_text(p["title"], p["summary"], p["authors"]) for p in papers])
    window = personal.ItemWindow.build(
        model,
        list(range(len(papers))),
        [p["title"] for p in papers],
        [p["summary"] for p in papers],
        [p["authors"] for p in papers],
        [p["categories"] for p in papers],
        [("arXiv " + p["categories"][0],) for p in papers],
        [NOW] * len(papers),
    )
    facts = [
        ItemFacts(p["title"], p["summary"], p["authors"], p["categories"], ("arXiv " + p["categories"][0],))
        for p in papers
    ]
    author = papers[3]["authors"][0]
    topics = [
        _t("gan", "diffusion model"),
        _t("reinforcement learning", "language model", match="all"),
        _t("robot", categories=("cs.RO", "cs.CV"), match="all"),
        _t(authors=(author,), sources=("arXiv cs.CV",)),
        _t("diffusion", negative=("video", "survey")),
    ]
    for t in topics:
        pure = np.array([match_topic(t, f) for f in facts])
        assert (window.topic_mask(t) == pure).all() and 0 < pure.sum() < len(papers), t
    muted = ["language model", author.upper()]
    pure = np.array([is_muted(muted, f) for f in facts])
    assert (window.mute_mask(muted) == pure).all() and pure.sum() > 10


def test_one_loader_and_one_mute_rule_with_and_without_scores(engine: sa.Engine) -> None:
    load_papers(engine)
    with session_factory(engine)() as s, s.begin():
        a = readers.create_reader(s, "a@example.com").reader_id
        some = s.scalars(sa.select(Item).order_by(Item.id).limit(40)).all()
        author = some[7].authors[0]
        profiles.update_profile(
            s,
            a,
            interests="graph neural networks",
            muted=[author, "language model"],
            exclude_categories=["cs.CV"],
        )
        with pytest.raises(NotFound):
            profiles.load_profile(s, 10**6)
        prof = profiles.load_profile(s, a)
        assert prof == profiles.load_profiles(s, [a])[0] and prof.muted == (author, "language model")
        before = digest_personal.reader_digest(s, UTC, a, dt.date(2026, 6, 15), limit=1000)
        assert before.profile == "default" and before.hidden > 0
        shown = {e.entry.id for e in before.items}
        assert some[7].id not in shown
        model = rank.refit(s, NOW, 90)
        personal.precompute(s, model, prof, now=NOW, top_k=None)
    with session_factory(engine)() as s:
        after = digest_personal.reader_digest(s, UTC, a, dt.date(2026, 6, 15), limit=1000)
        assert after.profile == f"reader:{a}"
        assert {e.entry.id for e in after.items} == shown and 0 < after.hidden <= before.hidden
