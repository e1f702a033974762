"""Paper ↔ post links on real data: HF daily papers and Takara TLDR posts link arxiv.org/abs
ids; titles and bare ids are matched too; short common titles are not."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from conftest import DATA
from helpers import add_feed

from aggregator.feeds import paper_links as links
from aggregator.feeds.ingest import write_entries
from aggregator.feeds.parse import parse_feed
from aggregator.store import queries
from aggregator.store.db import session_factory
from aggregator.store.tables import Item, ItemLink
from aggregator.types import ParsedEntry

NOW = dt.datetime(2026, 5, 1, tzinfo=dt.UTC)


def _paper(arxiv_id: str, title: str) -> ParsedEntry:
    return ParsedEntry(
        kind="paper",
        key=f"arxiv:{arxiv_id}",
        title=title,
        url=f"https://arxiv.org/abs/{arxiv_id}",
        authors=("A. Author",),
        summary="An abstract.",
        published=NOW,
        categories=("cs.LG",),
        arxiv_id=arxiv_id,
        version=1,
    )


def _post(key: str, title: str, summary: str, html: str | None = None, url: str | None = None) -> ParsedEntry:
    return ParsedEntry(
        kind="post",
        key=key,
        title=title,
        url=url or key,
        authors=(),
        summary=summary,
        summary_html=html,
        published=NOW,
    )


def _ingest(engine: sa.Engine, feed: str, entries: list[ParsedEntry]) -> list[int]:
    with session_factory(engine)() as session, session.begin():
        kind = "arxiv" if feed.startswith("arxiv") else "blog"  # only arXiv feeds write papers (feeds.trust)
        feed_id = add_feed(session, feed, kind=kind, now=NOW)
        ids = write_entries(session, feed_id, entries, NOW).new_item_ids
        links.link_items(session, ids, NOW)
    return ids


def _links(engine: sa.Engine) -> dict[tuple[str, str], str]:
    with session_factory(engine)() as session:
        post = sa.orm.aliased(Item)
        paper = sa.orm.aliased(Item)
        rows = session.execute(
            sa.select(post.key, paper.arxiv_id, ItemLink.method)
            .join(post, post.id == ItemLink.post_id)
            .join(paper, paper.id == ItemLink.paper_id)
        ).all()
    return {(p, a): m for p, a, m in rows}


def test_real_hf_daily_papers_link_by_abs_link_both_ways(engine: sa.Engine) -> None:
    body = (DATA / "blogs" / "hf-daily-papers-feedgen-2026-04-30-rss2-brevio.xml").read_bytes()
    feed = parse_feed(body, fetched_at=NOW, url="https://huggingface.co/papers", kind="blog")
    posts = [e for e in feed.entries if e.kind == "post"]
    assert posts
    first = links.mentions(posts[0].url or "")
    arxiv_id = next(iter(first))
    # paper first, then the post (new post → existing paper)
    _ingest(engine, "arxiv", [_paper(arxiv_id, "Some Paper Title Not In The Post")])
    _ingest(engine, "hf", posts[:1])
    assert _links(engine) == {(posts[0].key, arxiv_id): "link"}
    # post first, then the paper (new paper → existing posts): a second real post
    second = links.mentions(posts[1].url or "")
    other_id = next(iter(second))
    _ingest(engine, "hf2", posts[1:2])
    _ingest(engine, "arxiv2", [_paper(other_id, "Another Unrelated Paper Title Here")])
    assert _links(engine)[(posts[1].key, other_id)] == "link"


def test_link_by_bare_id_and_by_exact_title(engine: sa.Engine) -> None:
    _ingest(
        engine,
        "arxiv",
        [
            _paper("2606.11111", "Scaling Test-Time Compute for Vision-Language-Action Models"),
            _paper("2606.22222", "Diffusion Transformers Are Secretly Good Planners"),
            _paper("2606.33333", "Attention Is All"),  # three words: too short to match by title
        ],
    )
    _ingest(
        engine,
        "blog",
        [
            _post("https://blog.example/a", "Notes", "We read arXiv:2606.11111v2 this week."),
            _post(
                "https://blog.example/b",
                "Weekly picks",
                "First up:   diffusion TRANSFORMERS are secretly good\nplanners, a fun read. "
                "Attention is all.",
            ),
            _post("https://blog.example/c", "Numbers", "Pi is 3.14159 and 12606.111110 is not an id."),
        ],
    )
    found = _links(engine)
    assert found == {
        ("https://blog.example/a", "2606.11111"): "id",
        ("https://blog.example/b", "2606.22222"): "title",
    }


def test_not_linked_by_a_short_common_title(engine: sa.Engine) -> None:
    _ingest(engine, "arxiv", [_paper("2606.44444", "Language Models"), _paper("2606.55555", "Deep Learning")])
    _ingest(
        engine,
        "blog",
        [_post("https://blog.example/d", "On language models", "Deep learning and language models.")],
    )
    assert _links(engine) == {}


def test_discussed_in_counts_posts_per_paper(engine: sa.Engine) -> None:
    _ingest(engine, "arxiv", [_paper("2606.66666", "A Paper")])
    _ingest(
        engine,
        "blog",
        [
            _post("https://blog.example/e", "One", "https://arxiv.org/abs/2606.66666"),
            _post("https://blog.example/f", "Two", "see https://arxiv.org/pdf/2606.66666v1"),
        ],
    )
    with session_factory(engine)() as session:
        paper_id = session.scalar(sa.select(Item.id).where(Item.arxiv_id == "2606.66666"))
        assert queries.discussed_in(session, [paper_id]) == {paper_id: 2}
