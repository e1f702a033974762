"""``why`` reads like a colleague's reason (issue 17), on a real day's papers: whole phrases
from the text, no author surnames, no URL or LaTeX pieces, no bigram across punctuation or a
stop word, no filler word alone."""

from __future__ import annotations

import datetime as dt
import re

import numpy as np
import pytest
from conftest import bulk_papers

from aggregator.ranking import personal
from aggregator.ranking import tfidf as rank
from aggregator.ranking.text import FILLER, analyze, join_phrases
from aggregator.types import ReaderProfile

DAY = "2026-06-16"
PROFILES = [
    "reinforcement learning with verifiable rewards for reasoning in LLMs",
    "group relative policy optimization",
    "vision-language models for robot manipulation",
    "diffusion models for image and video generation",
    "code generation agents and software engineering",
    "efficient inference and quantization of large language models",
    "graph neural networks",
    "speech recognition",
]


@pytest.fixture(scope="module")
def day():
    papers = bulk_papers(DAY)
    model = rank.fit([rank.item_text(p["title"], p["summary"], p["authors"]) for p in papers])
    window = personal.ItemWindow.build(
        model,
        list(range(len(papers))),
        [" ".join(p["title"].split()) for p in papers],
        [" ".join(p["summary"].split()) for p in papers],
        [p["authors"] for p in papers],
        [p["categories"] for p in papers],
        [("arXiv",) for _ in papers],
        [dt.datetime.fromisoformat(DAY + "T04:00:00+00:00")] * len(papers),
    )
    return papers, model, window


def _whys(day) -> list[tuple[dict, list[str]]]:
    papers, model, window = day
    out = []
    for interests in PROFILES:
        profile = ReaderProfile(1, interests=interests)
        reader = personal.compile_reader(model, profile, window.matrix[[]], window.matrix[[]])
        queries, res = personal.rank_window(window, [reader])
        rows = personal.top_rows(res[0], 20)
        whys = personal.explain_rows(window, rows, queries[0], model.terms)
        for r, why in zip(rows.tolist(), whys, strict=True):
            out.append((papers[r], [str(w["term"]) for w in why]))
    return out


def _adjacent(term: str, text: str) -> bool:
    """The term's words appear next to each other in the text (spaces or a hyphen between)."""
    words = [re.escape(w) for w in term.split(" ")]
    pattern = r"(?<![a-z0-9_])" + r"[\s\-]+".join(words) + r"(?![a-z0-9_])"
    return re.search(pattern, text.casefold()) is not None


def test_why_terms_on_a_real_day_are_phrases_of_the_text(day) -> None:
    pairs = _whys(day)
    assert len(pairs) == 20 * len(PROFILES)
    urls = sum(bool(re.search(r"https?://|github", p["summary"])) for p, _ in pairs)
    latex = sum("\\" in p["summary"] or "$" in p["summary"] for p, _ in pairs)
    assert urls >= 5 and latex >= 1, (urls, latex)  # the day has the cases the issue saw
    bad: list[tuple[str, str]] = []
    n_terms = 0
    for paper, terms in pairs:
        text = paper["title"] + " " + paper["summary"]
        text_words = set(re.findall(r"[a-z0-9_]+", re.sub(r"https?://\S+", " ", text.casefold())))
        surnames = {w for a in paper["authors"] for w in a.casefold().split()} - text_words
        for t in terms:
            n_terms += 1
            if t.startswith("author:") or set(t.split(" ")) & surnames:
                bad.append(("author", t))
            elif set(t.split(" ")) & {"github", "https", "http", "com", "www", "textbf", "mathbf", "emph"}:
                bad.append(("markup", t))
            elif t in FILLER:
                bad.append(("filler", t))
            elif not _adjacent(t, text):
                bad.append(("not a phrase of the text", t))
    assert n_terms > 400
    assert not bad, bad[:20]
    # whole phrases: no two terms the text writes as one phrase ("large language" and "language
    # models" of "large language models"), no singular beside its plural ("policy", "policies")
    pieces = []
    for paper, terms in pairs:
        text = paper["title"] + " " + paper["summary"]
        for a in terms:
            for b in terms:
                overlap = a != b and " " in a and " " in b and a.split(" ")[-1] == b.split(" ")[0]
                if overlap and _adjacent(" ".join(a.split(" ") + b.split(" ")[1:]), text):
                    pieces.append((a, b))
        stems = [t.rstrip("s") for t in terms]
        pieces += [(t, t) for t in terms if stems.count(t.rstrip("s")) > 1]
    assert not pieces, pieces[:20]
    assert any(len(t.split(" ")) > 2 for _, terms in pairs for t in terms)  # joined phrases appear


def test_join_phrases() -> None:
    text = "Mixture-of-Experts for large language models. Test time scaling of policies; a policy."
    why = [("large language", 0.3), ("language models", 0.2), ("test time", 0.1), ("time scaling", 0.05)]
    why += [("policies", 0.04), ("policy", 0.03)]
    joined = join_phrases(why, text)
    assert [t for t, _ in joined] == ["large language models", "test time scaling", "policies"]
    assert [round(w, 4) for _, w in joined] == [0.5, 0.15, 0.07]
    # only what the text writes as one phrase: not across punctuation
    apart = [("large language", 0.3), ("language models", 0.2)]
    assert join_phrases(apart, "large language. Language models") == apart


def test_analyzer_breaks_at_punctuation_and_drops_urls_and_latex() -> None:
    terms = analyze(
        rank.item_text(
            "Rewards (RLVR) and Group Relative Policy Optimization (GRPO)",
            "We propose \\textbf{SPO}, code at https://github.com/x/spo; vision-language models.",
            ["Wei Zhang", "Jo Lin"],
        )
    )
    assert "rewards rlvr" not in terms and "optimization grpo" not in terms
    assert "policy optimization" in terms and "vision language" in terms and "language models" in terms
    assert not {"github", "https", "com", "textbf", "github com", "propose textbf"} & set(terms)
    assert {"author:wei_zhang", "author:jo_lin"} <= set(terms) and "zhang" not in terms
    assert np.all([" " not in t for t in terms if t.startswith("author:")])
