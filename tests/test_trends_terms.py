"""Issue 16, terms: the field's real phrases are terms, boilerplate is learned out, and a new
phrase is listed once, on the real bulk papers.

* The lexicon learned from the real bulk corpus (2025-03..2026-07) holds "world model", "large
  language model", "tool use", "code generation", "image generation", "representation
  learning", "multi-task", "state space model", "mixture of experts", "chain of thought",
  "agentic" and "Mamba", and not the evaluation boilerplate the issue lists, nor fragments
  ("space model", "large language").
* Their stored day counts equal a direct regular-expression count over the abstracts.
* A phrase injected into 40 abstracts of one week (twice each, in varied sentences, as a paper
  about a topic names it) is the top rising term of ``all`` and listed once; no fragment of it
  and no word of its sentences is a term of its own; a phrase in ~2 % of the papers all along
  is not listed.
"""

from __future__ import annotations

import datetime as dt
import functools
import glob
import json
import re
from collections import Counter
from itertools import chain

import numpy as np
import pytest
import sqlalchemy as sa
from conftest import BULK, bulk_papers, paper_entry

from aggregator import trends
from aggregator.feeds.ingest import write_entries
from aggregator.store.db import session_factory
from aggregator.store.tables import Feed
from aggregator.store.trends_tables import Term, TermCount
from aggregator.trends import lexicon, usage
from aggregator.trends.terms import _BREAK, CONNECTORS, _gram_list, _tokens

NAMED = {
    "world model": r"world[- ]models?",
    "large language model": r"large[- ]language[- ]models?",
    "tool use": r"tool[- ]use",
    "code generation": r"code[- ]generations?",
    "image generation": r"image[- ]generations?",
    "representation learning": r"representation[- ]learnings?",
    "multi task": r"multi[- ]tasks?",
    "state space model": r"state[- ]space[- ]models?",
    "mixture of expert": r"mixtures?[- ]of[- ]experts?",
    "chain of thought": r"chains?[- ]of[- ]thoughts?",
}
BOILERPLATE = [
    "percentage point",
    "largest gain",
    "mcnemar",
    "macro f1",
    "test set",
    "pass rate",
    "operating point",
    "model family",
    "space model",
    "large language",
    "world action",
]


@functools.cache
def _corpus() -> tuple[str, ...]:
    """Every bulk paper's title and abstract, once each, oldest day first (read once per
    process: two tests use it)."""
    seen: set[str] = set()
    texts = []
    for path in sorted(glob.glob(str(BULK / "*.jsonl"))):
        for line in open(path, encoding="utf-8").read().splitlines():  # noqa: SIM115
            p = json.loads(line)
            if p["id"] not in seen:
                seen.add(p["id"])
                texts.append(
                    trends.item_text(" ".join(p["title"].split()), " ".join((p.get("summary") or "").split()))
                )
    return tuple(texts)


@pytest.mark.slow
def test_lexicon_learned_from_the_bulk_corpus_has_the_fields_phrases() -> None:
    texts = list(_corpus())
    older = texts[: -lexicon.SAMPLE_NEWEST]
    sample = texts[-lexicon.SAMPLE_NEWEST :] + older[:: max(1, len(older) // lexicon.SAMPLE_OLDER)]
    lex = lexicon.learn(sample)
    missing = [
        t for t in [*NAMED, "agentic", "mamba", "gaussian splatting", "diffusion model"] if t not in lex
    ]
    assert not missing, missing
    learned_boilerplate = [t for t in BOILERPLATE if t in lex]
    assert not learned_boilerplate, learned_boilerplate
    assert "model" not in lex and "large" not in lex and "data" not in lex


def test_modifiers_are_measured_from_the_text_and_are_not_terms() -> None:
    """The modifier rule on the real corpus: the share of a gram's occurrences right before
    another content word, read from the counted grams (``cf["medical image"]`` counts "medical"
    before "image"), equals a direct scan of the token lists; modifiers ("medical", "multi
    turn", "physical") are not terms, and topics written as nouns on their own are, including
    the documented topic modifiers ("agentic": 0.91 before a noun, like "physical")."""
    texts = list(_corpus()[-4000:])
    token_lists = [_tokens(t) for t in texts]
    cf = Counter(chain.from_iterable(_gram_list(t) for t in token_lists))
    grams = ["medical", "physical", "hierarchical", "multi turn", "world model", "chain of thought", "camera"]
    mods = usage.modifiers(grams, cf)
    # where each token occurs, per text: the scan below starts only where a gram's first word is
    where: list[dict[str, list[int]]] = []
    for tokens in token_lists:
        positions: dict[str, list[int]] = {}
        for i, t in enumerate(tokens):
            positions.setdefault(t, []).append(i)
        where.append(positions)
    for g in grams:  # the rule's reading of cf agrees with a scan of the texts
        words = g.split()
        n = len(words)
        at = [
            (tokens, i)
            for tokens, positions in zip(token_lists, where, strict=True)
            for i in positions.get(words[0], ())
            if tokens[i : i + n] == words
        ]
        before = sum(
            i + n < len(tokens) and tokens[i + n] not in CONNECTORS and tokens[i + n] != _BREAK
            for tokens, i in at
        )
        assert len(at) == cf[g] > 20, g
        assert (g in mods) == (before >= usage.MODIFIER_SHARE * len(at)), (g, before / len(at))
    assert {"medical", "physical", "hierarchical", "multi turn"} <= mods, mods
    assert not {"world model", "chain of thought", "camera"} & mods, mods
    assert usage.modifiers(["agentic", "multi task"], cf) == set()  # TOPIC_MODIFIERS


def _feed(session) -> int:  # type: ignore[no-untyped-def]
    feed = Feed(
        url="test://bulk",
        name="bulk",
        kind="arxiv",
        created_at=dt.datetime.now(dt.UTC),
        error_count=0,
        disabled=False,
    )
    session.add(feed)
    session.flush()
    return feed.id


def test_counts_of_named_phrases_match_a_direct_count(engine: sa.Engine) -> None:
    days = ["2026-06-15", "2026-06-16", "2026-06-17"]
    make = session_factory(engine)
    direct = dict.fromkeys(NAMED, 0)
    with make() as session, session.begin():
        feed_id = _feed(session)
        for day in days:
            papers = bulk_papers(day)
            summary = write_entries(
                session, feed_id, [paper_entry(p, day) for p in papers], dt.datetime.now(dt.UTC)
            )
            trends.update_counts(session, summary.new_item_ids)
            for p in papers:
                text = (
                    " ".join(p["title"].split()) + ". " + " ".join((p.get("summary") or "").split())
                ).lower()
                for term, pattern in NAMED.items():
                    direct[term] += bool(re.search(rf"\b{pattern}\b", text))
    with make() as session:
        ids = dict(session.execute(sa.select(Term.term, Term.id).where(Term.term.in_(NAMED))).all())
        stored = dict.fromkeys(NAMED, 0)
        for n_terms, data in session.execute(
            sa.select(TermCount.n_terms, TermCount.data).where(TermCount.scope == "all")
        ):
            got, dfs = trends.unpack_counts(n_terms, data)
            for term, term_id in ids.items():
                hit = np.flatnonzero(got == term_id)
                stored[term] += int(dfs[hit[0]]) if len(hit) else 0
    assert sum(direct.values()) > 20
    assert stored == direct


SENTENCES = [
    "We introduce spectral lattice distillation for compact students.",
    "Our spectral lattice distillation objective transfers structure.",
    "Spectral-lattice distillation is cheap to train.",
    "Experiments confirm that spectral lattice distillation scales.",
]


def _entries(day: str, k: int, window: bool) -> list:
    out = []
    for i, paper in enumerate(bulk_papers(day)[:60]):
        extra = []
        if i % 50 == 0:  # ~2 % of the papers, all along, named twice as a topic is
            extra.append("We rely on the quuxian kernel. The quuxian kernel is stable.")
        if window and (i * 7 + k) % 10 == 0 and i < 58:  # ~40 papers of the window week
            extra.append(f"{SENTENCES[i % 4]} {SENTENCES[(i + 1) % 4]}")
        if extra:
            paper = {**paper, "summary": (paper.get("summary") or "") + " " + " ".join(extra)}
        out.append(paper_entry(paper, day))
    return out


@pytest.mark.slow
def test_injected_phrase_is_top_listed_once_and_flat_phrase_is_not(engine: sa.Engine) -> None:
    start = dt.date(2026, 6, 2)
    days = [(start + dt.timedelta(days=d)).isoformat() for d in range(28)]
    make = session_factory(engine)
    injected = 0
    with make() as session, session.begin():
        feed_id = _feed(session)
    for k, day in enumerate(days):
        window = k >= 21
        with make() as session, session.begin():
            entries = _entries(day, k, window)
            injected += sum("spectral lattice" in (e.summary or "").lower() for e in entries)
            summary = write_entries(session, feed_id, entries, dt.datetime.now(dt.UTC))
            trends.update_counts(session, summary.new_item_ids)
    assert 35 <= injected <= 45, injected
    with make() as session, session.begin():
        [report] = trends.refresh_results(
            session, end=dt.date(2026, 6, 29), window_days=7, baseline_days=21, scopes=["all"]
        )
    listed = [t.term for t in report.terms]
    assert listed and listed[0] == "spectral lattice distillation", listed
    words = {
        "spectral",
        "lattice",
        "distillation",
        "spectral lattice",
        "lattice distillation",
        "compact student",
        "objective",
        "cheap",
        "structure",
    }
    assert not words & set(listed), listed
    assert not any("quuxian" in t for t in listed), listed
