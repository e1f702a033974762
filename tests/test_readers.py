"""Store-level reader functions on SQLite and PostgreSQL: accounts and hashed tokens, profiles,
email settings, topic filters (catalogue, ownership, matching), subscriptions, feedback, and
the reader's digest (fallback order, muted and excluded items, topic labels)."""

from __future__ import annotations

import datetime as dt
import hashlib
from zoneinfo import ZoneInfo

import pytest
import sqlalchemy as sa
from conftest import bulk_papers, paper_entry

from aggregator import errors
from aggregator.accounts import builtin_topics, feedback, profiles, readers, subscriptions, topic_filters
from aggregator.digest import personal
from aggregator.feeds.ingest import write_entries
from aggregator.store.db import session_factory
from aggregator.store.tables import Feed, Feedback, Reader, Score, Subscription, Topic
from aggregator.types import TopicFilter

UTC = ZoneInfo("UTC")
NOW = dt.datetime(2026, 6, 15, 12, 0, tzinfo=dt.UTC)


def load_papers(
    engine: sa.Engine, days: tuple[str, ...] = ("2026-06-15",), feed: str = "arXiv cs.LG"
) -> None:
    """Real arXiv papers of ``days`` as items announced by one feed."""
    with session_factory(engine)() as s, s.begin():
        row = Feed(
            url=f"http://127.0.0.1:9/rss/{feed.split()[-1]}",
            name=feed,
            kind="arxiv",
            created_at=NOW,
            error_count=0,
            disabled=False,
            scheduled=True,
            interval_minutes=60,
            tags=[],
        )
        s.add(row)
        s.flush()
        for day in days:
            write_entries(s, row.id, [paper_entry(p, day) for p in bulk_papers(day)], NOW)


def test_reader_tokens_are_hashed_and_emails_validated(engine: sa.Engine) -> None:
    with session_factory(engine)() as s, s.begin():
        new = readers.create_reader(s, "Ada@Example.COM", NOW)
        assert new.email == "Ada@example.com"  # domain lower-cased by email-validator
        row = s.get(Reader, new.reader_id)
        assert row is not None
        assert row.token_hash == hashlib.sha256(new.token.encode()).hexdigest() != new.token
        assert row.feed_token_hash == readers.hash_token(new.feed_token)
        assert len(new.token) >= 43 and new.token != new.feed_token
        stored = " ".join(str(v) for v in s.execute(sa.select(Reader.__table__)).one())
        assert new.token not in stored and new.feed_token not in stored
        with pytest.raises(errors.Conflict, match="already exists"):
            readers.create_reader(s, "ada@example.com")
        for bad in ("", "not-an-email", "a@b", "two@@example.com"):
            with pytest.raises(errors.ReaderError, match="email"):
                readers.create_reader(s, bad)
        assert readers.reader_for_token(s, new.token).id == new.reader_id  # type: ignore[union-attr]
        assert readers.reader_for_token(s, new.feed_token) is None  # a feed token is no API token
        assert readers.reader_for_feed_token(s, new.token) is None
        assert readers.reader_for_token(s, "x" * 1000) is None and readers.reader_for_token(s, "") is None
        fresh = readers.rotate_feed_token(s, new.reader_id)
        assert readers.reader_for_feed_token(s, new.feed_token) is None
        assert readers.reader_for_feed_token(s, fresh).id == new.reader_id  # type: ignore[union-attr]
        assert [r.email for r in readers.list_readers(s)] == ["Ada@example.com"]


def test_profile_fields_are_cleaned_and_seed_papers_normalised(engine: sa.Engine) -> None:
    with session_factory(engine)() as s, s.begin():
        rid = readers.create_reader(s, "p@example.com").reader_id
        assert profiles.get_profile(s, rid).keywords == ()
        p = profiles.update_profile(
            s,
            rid,
            interests="  diffusion models for video  ",
            keywords=[" diffusion  models", "Diffusion Models", "", "video"],
            seed_papers=[
                "https://arxiv.org/abs/2606.14173v2",
                "arXiv:2606.14173",
                "http://arxiv.org/pdf/hep-th/0601001v1",
                "2606.13733",
            ],
        )
        assert p.interests == "diffusion models for video"
        assert p.keywords == ("diffusion models", "video")
        assert p.seed_papers == ("2606.14173", "hep-th/0601001", "2606.13733")
        profiles.update_profile(s, rid, muted=["survey"])
        assert profiles.get_profile(s, rid).keywords == ("diffusion models", "video")  # untouched
        with pytest.raises(errors.ReaderError, match="not an arXiv id.*'see my blog'"):
            profiles.update_profile(s, rid, seed_papers=["2606.14173", "see my blog"])
        with pytest.raises(errors.ReaderError, match="unknown profile fields: colour"):
            profiles.update_profile(s, rid, colour="blue")
        with pytest.raises(errors.ReaderError, match="at most 200"):
            profiles.update_profile(s, rid, keywords=[f"k{i}" for i in range(201)])
        with pytest.raises(errors.ReaderError, match="must be a string"):
            profiles.update_profile(s, rid, keywords=[3])
        assert profiles.missing_seed_papers(s, ["2606.14173"]) == ["2606.14173"]


def test_email_settings_are_validated(engine: sa.Engine) -> None:
    with session_factory(engine)() as s, s.begin():
        rid = readers.create_reader(s, "e@example.com").reader_id
        st = readers.update_reader_settings(
            s, rid, weekly_email=True, email_weekday=4, email_time="07:30", timezone="Europe/Paris"
        )
        assert (st.weekly_email, st.email_weekday, st.email_time, st.timezone) == (
            True,
            4,
            "07:30",
            "Europe/Paris",
        )
        for kwargs, msg in (
            ({"email_weekday": 7}, "email_weekday"),
            ({"email_time": "25:00"}, "email_time"),
            ({"email_time": "7am"}, "email_time"),
            ({"timezone": "Mars/Olympus"}, "timezone"),
        ):
            with pytest.raises(errors.ReaderError, match=msg):
                readers.update_reader_settings(s, rid, **kwargs)  # type: ignore[arg-type]


def test_topic_catalogue_ownership_and_subscriptions(engine: sa.Engine) -> None:
    with session_factory(engine)() as s, s.begin():
        assert builtin_topics.ensure_default_topics(s, NOW) == len(builtin_topics.DEFAULT_TOPICS)
        assert builtin_topics.ensure_default_topics(s, NOW) == 0
        slugs = [t.slug for t in topic_filters.list_topics(s)]
        for slug in ("diffusion-models", "llm-reasoning", "rl-for-llms", "vision-language", "robotics"):
            assert slug in slugs
        a = readers.create_reader(s, "a@example.com").reader_id
        b = readers.create_reader(s, "b@example.com").reader_id
        mine = TopicFilter(
            "graph-nets", "Graph nets", phrases=("graph neural network",), negative=("survey",)
        )
        created = topic_filters.create_topic(s, a, mine, "GNNs", shared=True)
        assert created.created_by == a and topic_filters.list_topics(s)[-1].slug == "graph-nets"
        with pytest.raises(errors.Conflict):
            topic_filters.create_topic(s, b, mine)
        for bad_slug in ("Graph Nets", "-x", "a_b"):  # an empty slug is derived from the name
            with pytest.raises(errors.ReaderError, match="slug"):
                topic_filters.create_topic(s, a, TopicFilter(bad_slug, "x", phrases=("x",)))
        with pytest.raises(errors.ReaderError, match="at least one"):
            topic_filters.create_topic(s, a, TopicFilter("empty", "Empty", negative=("x",)))
        # B can neither change nor delete A's filter; nobody can touch a built-in one
        with pytest.raises(errors.Forbidden, match="another reader"):
            topic_filters.update_topic(
                s, b, "graph-nets", TopicFilter("graph-nets", "Mine now", phrases=("x",))
            )
        with pytest.raises(errors.Forbidden, match="another reader"):
            topic_filters.delete_topic(s, b, "graph-nets")
        with pytest.raises(errors.Forbidden, match="built in"):
            topic_filters.delete_topic(s, a, "agents")
        with pytest.raises(errors.NotFound):
            topic_filters.delete_topic(s, a, "nope")
        assert topic_filters.get_topic(s, "graph-nets").filter.name == "Graph nets"
        updated = topic_filters.update_topic(
            s, a, "graph-nets", TopicFilter("ignored", "Graph networks", phrases=("gnn",)), "new"
        )
        assert updated.slug == "graph-nets" and updated.filter.phrases == ("gnn",)

        subscriptions.subscribe(s, a, "graph-nets")
        subscriptions.subscribe(s, a, "graph-nets")  # again: no-op
        subscriptions.subscribe(s, b, "graph-nets")
        subscriptions.subscribe(s, b, "agents")
        assert [t.slug for t in subscriptions.list_subscriptions(s, a)] == ["graph-nets"]
        assert topic_filters.get_topic(s, "graph-nets").subscribers == 2
        with pytest.raises(errors.NotFound, match="not subscribed"):
            subscriptions.unsubscribe(s, a, "agents")  # B's subscription is not A's to remove
        assert [t.slug for t in subscriptions.list_subscriptions(s, b)] == ["graph-nets", "agents"]
        with pytest.raises(errors.NotFound):
            subscriptions.subscribe(s, a, "no-such-topic")
        topic_filters.delete_topic(s, a, "graph-nets")
        assert [t.slug for t in subscriptions.list_subscriptions(s, b)] == ["agents"]
        assert s.scalar(sa.select(sa.func.count()).select_from(Subscription)) == 1
        assert s.scalar(sa.select(Topic.id).where(Topic.slug == "graph-nets")) is None


@pytest.mark.parametrize(
    ("topic", "facts", "expected"),
    [
        (TopicFilter("t", "t", phrases=("agent",)), topic_filters.ItemFacts("LLM Agents for the web"), True),
        (TopicFilter("t", "t", phrases=("agent",)), topic_filters.ItemFacts("A reagent study"), False),
        (
            TopicFilter("t", "t", phrases=("diffusion model",), negative=("survey",)),
            topic_filters.ItemFacts("Diffusion Models: a Survey"),
            False,
        ),
        (
            TopicFilter("t", "t", categories=("cs.RO",)),
            topic_filters.ItemFacts("x", categories=["cs.ro"]),
            True,
        ),
        (
            TopicFilter("t", "t", authors=("Ada Lovelace",)),
            topic_filters.ItemFacts("x", authors=["ada  lovelace"]),
            True,
        ),
        (
            TopicFilter("t", "t", sources=("Lil'Log",)),
            topic_filters.ItemFacts("x", sources=["Lil'Log"]),
            True,
        ),
        (
            TopicFilter("t", "t", phrases=("reinforcement learning", "language model"), match="all"),
            topic_filters.ItemFacts("Reinforcement learning", "for a large language model"),
            True,
        ),
        (
            TopicFilter("t", "t", phrases=("reinforcement learning", "language model"), match="all"),
            topic_filters.ItemFacts("Reinforcement learning for robots"),
            False,
        ),
        (
            TopicFilter("t", "t", phrases=("robot",), categories=("cs.RO",), match="all"),
            topic_filters.ItemFacts("Robot arms", categories=["cs.LG"]),
            False,
        ),
    ],
)
def test_topic_matching(topic: TopicFilter, facts: topic_filters.ItemFacts, expected: bool) -> None:
    assert topic_filters.match_topic(topic, facts) is expected


def test_feedback_profile_and_digest_filters(engine: sa.Engine) -> None:
    load_papers(engine)
    with session_factory(engine)() as s, s.begin():
        builtin_topics.ensure_default_topics(s)
        a = readers.create_reader(s, "a@example.com").reader_id
        b = readers.create_reader(s, "b@example.com").reader_id
        d = personal.reader_digest(s, UTC, a, dt.date(2026, 6, 15), limit=500)
        assert d.profile == "default" and len(d.items) == d.digest.total > 100 and d.hidden == 0
        kept = [
            e.entry
            for e in d.items
            if "language model" not in f"{e.entry.title} {e.entry.summary}".lower()
            and "cs.CV" not in e.entry.categories
        ]
        first, second = kept[0], kept[1]
        with pytest.raises(errors.NotFound, match="no item"):
            feedback.set_feedback(s, a, 10**9, 1)
        with pytest.raises(errors.ReaderError):
            feedback.set_feedback(s, a, first.id, 2)
        feedback.set_feedback(s, a, first.id, 1)
        feedback.set_feedback(s, a, second.id, -1)
        feedback.set_feedback(s, b, first.id, -1)
        feedback.set_feedback(s, a, second.id, 1)  # a change of mind replaces the vote
        subscriptions.subscribe(s, a, "llm-reasoning")
        profile = profiles.load_profile(s, a)
        assert profile.liked_item_ids == tuple(sorted((first.id, second.id)))
        assert profile.disliked_item_ids == ()
        assert [t.slug for t in profile.topics] == ["llm-reasoning"] and profile.score_key == f"reader:{a}"
        assert profiles.load_profile(s, b).disliked_item_ids == (first.id,)
        feedback.set_feedback(s, a, second.id, 0)
        assert s.scalar(sa.select(sa.func.count()).select_from(Feedback).where(Feedback.reader_id == a)) == 1

        # muted phrases, excluded categories and sources leave the digest; topics label items
        profiles.update_profile(s, a, muted=["language model"], exclude_categories=["cs.CV"])
        d2 = personal.reader_digest(s, UTC, a, dt.date(2026, 6, 15), limit=500)
        assert d2.hidden > 0 and len(d2.items) + d2.hidden == d2.digest.total
        for e in d2.items:
            text = f"{e.entry.title} {e.entry.summary}".lower()
            assert "language model" not in text and "cs.CV" not in e.entry.categories
        labelled = [e for e in d2.items if e.topics]
        assert labelled and all(e.topics == ["llm-reasoning"] for e in labelled)
        assert [g.slug for g in d2.groups()] == ["llm-reasoning", None]
        assert next(e for e in d2.items if e.entry.id == first.id).feedback == 1
        profiles.update_profile(s, a, exclude_sources=["arXiv cs.LG"])
        assert personal.reader_digest(s, UTC, a, dt.date(2026, 6, 15)).items == []


def test_digest_reads_the_readers_own_scores(engine: sa.Engine) -> None:
    load_papers(engine)
    with session_factory(engine)() as s, s.begin():
        a = readers.create_reader(s, "a@example.com").reader_id
        ids = list(s.scalars(sa.select(sa.func.min(Score.item_id))))  # no scores at all yet
        assert ids == [None]
        from aggregator.store.tables import Item

        items = s.execute(sa.select(Item.id, Item.published).order_by(Item.id)).all()
        item_ids = [r.id for r in items]
        # hand-written scores: reader A prefers the last items; another reader the first
        for n, (i, published) in enumerate(items):
            s.add(Score(profile=f"reader:{a}", item_id=i, score=float(n), why=[], published=published))
            s.add(Score(profile="reader:999", item_id=i, score=-float(n), why=[], published=published))
        s.flush()
        d = personal.reader_digest(s, UTC, a, dt.date(2026, 6, 15), limit=3)
        assert d.profile == f"reader:{a}"
        assert [e.entry.id for e in d.items] == item_ids[::-1][:3]
