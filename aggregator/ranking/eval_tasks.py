"""The free-text and feedback-loop tasks of ``aggregator eval`` (the seed-paper task is
:func:`aggregator.ranking.evaluate.evaluate_split`), on the same real bulk arXiv papers.

* **free text** (cold start): the profile is a one-line description of an arXiv category
  (:data:`DESCRIPTIONS`, written once and never tuned on), relevance is the category, text only
  (categories hidden from the rankers). Ours (the service's ranker with nothing but
  ``interests``) against plain TF-IDF cosine of the same text, on each split's test weeks.
* **feedback loop**: the simulated reader starts from the same description, reads its daily top
  20 of a voting week, 👍 the category's items and 👎 the rest, and the next week is ranked.
  Ours before and after the votes against arxiv-sanity-lite's SVM trained on the same votes
  (👍 positive, every other item of the voting week negative) and TF-IDF cosine of the text.

Results use :class:`~aggregator.ranking.evaluate.SplitResult`, so
:func:`~aggregator.ranking.evaluate.format_table` prints every task the same way.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from aggregator.ranking.evaluate import (
    MethodResult,
    Paper,
    Split,
    SplitResult,
    average_precision,
    paper_window,
    select,
    svm_scores,
)

#: One-line descriptions of fine-grained arXiv categories, as a new reader would type them.
DESCRIPTIONS: dict[str, str] = {
    "cs.CE": "computational engineering, finance and science: numerical simulation for engineering design",
    "cs.CR": "cryptography and security: attacks, privacy, malware, secure systems",
    "cs.CY": "computers and society: ethics, policy, education and social impact of AI",
    "cs.GR": "computer graphics: rendering, 3D shape modelling, animation",
    "cs.GT": "game theory and mechanism design: auctions, equilibria, incentives",
    "cs.HC": "human-computer interaction: user studies, interfaces, people using AI tools",
    "cs.IR": "information retrieval: search, ranking and recommender systems",
    "cs.IT": "information theory: channel coding, capacity, communication",
    "cs.MA": "multi-agent systems: cooperation and coordination among agents",
    "cs.MM": "multimedia: audio-visual content, video and image compression and streaming",
    "cs.RO": "robotics: robot manipulation, locomotion, navigation and control",
    "cs.DL": "digital libraries: scholarly publications, citations and metadata",
    "cs.SD": "sound: audio signal processing, music and speech audio generation",
    "eess.AS": "audio and speech processing: speech recognition, speech synthesis, audio",
    "eess.IV": "image and video processing: medical imaging, image restoration and compression",
    "eess.SP": "signal processing: wireless signals, radar, sensors and estimation",
    "cs.DB": "databases: query processing, data management and SQL",
    "cs.DC": "distributed, parallel and cluster computing: GPUs, scheduling and systems at scale",
    "cs.ET": "emerging technologies: quantum, neuromorphic and novel computing hardware",
    "cs.LO": "logic in computer science: formal verification, proofs and semantics",
    "cs.NE": "neural and evolutionary computing: spiking neural networks, evolutionary algorithms",
    "cs.NI": "networking and internet architecture: wireless networks, protocols, edge computing",
    "cs.PL": "programming languages: compilers, type systems and program analysis",
    "cs.SE": "software engineering: code, testing, bugs and software development tools",
    "eess.SY": "systems and control: control theory, power systems and controllers",
    "math.NA": "numerical analysis: numerical methods for differential equations",
    "math.OC": "optimization and control: convex optimization, optimal control",
    "stat.ML": "statistical machine learning: statistical theory, inference and estimation",
}

#: Feedback-loop weeks: (voting week, ranked week), days of June 2026 from the ``dw`` scrapes.
#: The vote model's constants (:mod:`aggregator.ranking.personal.vote_model`) were chosen on the
#: first only.
FEEDBACK_WEEKS: tuple[Split, ...] = (
    Split(
        "vote 8–14 Jun → 15–21 Jun",
        ("dw", "2026-06-08", "2026-06-14"),
        ("dw", "2026-06-15", "2026-06-21"),
        "tune",
    ),
    Split(
        "vote 15–21 Jun → 22 Jun–1 Jul",
        ("dw", "2026-06-15", "2026-06-21"),
        ("dw", "2026-06-22", "2026-07-01"),
    ),
)
FREE_TEXT_METHODS = ("tfidf", "ours")
FEEDBACK_METHODS = ("tfidf", "before", "svm", "after")


def _record(result: SplitResult, method: str, scores: np.ndarray, relevant: np.ndarray, k: int) -> None:
    rel = relevant[np.argsort(-scores, kind="stable")]
    result.methods[method].precision.append(float(rel[:k].mean()))
    result.methods[method].ap.append(average_precision(rel))


def _ours(window, model, text: str, liked: Sequence[int] = (), disliked: Sequence[int] = ()) -> np.ndarray:  # type: ignore[no-untyped-def]
    """The service's ranker for a reader with ``interests=text`` and these votes (row numbers of
    ``window``): one float score per window row."""
    from aggregator.ranking import personal
    from aggregator.types import ReaderProfile

    profile = ReaderProfile(0, interests=text, liked_item_ids=tuple(liked), disliked_item_ids=tuple(disliked))
    reader = personal.compile_reader(
        model, profile, window.matrix[list(liked)], window.matrix[list(disliked)]
    )
    return np.asarray(personal.rank_window(window, [reader])[1][0].score, dtype=np.float64)


def free_text_split(
    papers: Sequence[Paper],
    split: Split,
    *,
    k: int = 20,
    min_test: int = 10,
    categories: Sequence[str] | None = None,
) -> SplitResult:
    """The free-text task on ``split``'s test period, for each category of :data:`DESCRIPTIONS`
    (or of ``categories``) with ≥ ``min_test`` papers there. The TF-IDF model is fitted on
    training + test texts."""
    train, test = select(papers, split.train), select(papers, split.test)
    model, window = paper_window(train + test)
    rows = np.arange(len(train), len(train) + len(test))
    cats = [c for c in categories or DESCRIPTIONS if sum(c in p.categories for p in test) >= min_test]
    result = SplitResult(split, len(train), len(test), cats, {m: MethodResult() for m in FREE_TEXT_METHODS})
    for cat in cats:
        relevant = np.asarray([cat in p.categories for p in test], dtype=np.float64)
        query = model.transform([DESCRIPTIONS[cat]])
        _record(result, "tfidf", np.asarray((window.matrix[rows] @ query.T).toarray()).ravel(), relevant, k)
        _record(result, "ours", _ours(window, model, DESCRIPTIONS[cat])[rows], relevant, k)
    return result


def feedback_split(
    papers: Sequence[Paper],
    split: Split,
    *,
    k: int = 20,
    min_test: int = 10,
    min_train: int = 5,
    categories: Sequence[str] | None = None,
) -> SplitResult:
    """The feedback-loop task: vote through ``split.train`` day by day (top ``k`` of each day,
    votes so far applied), rank ``split.test``. Categories with ≥ ``min_test`` papers in the
    ranked week and ≥ ``min_train`` in the voting week (of :data:`DESCRIPTIONS`, or of
    ``categories``)."""
    a, b = select(papers, split.train), select(papers, split.test)
    model, window = paper_window(a + b)
    b_rows = np.arange(len(a), len(a) + len(b))
    days = sorted({p.day for p in a})
    cats = [
        c
        for c in categories or DESCRIPTIONS
        if sum(c in p.categories for p in b) >= min_test and sum(c in p.categories for p in a) >= min_train
    ]
    result = SplitResult(split, len(a), len(b), cats, {m: MethodResult() for m in FEEDBACK_METHODS})
    for cat in cats:
        text = DESCRIPTIONS[cat]
        relevant = np.asarray([cat in p.categories for p in b], dtype=np.float64)
        tfidf = np.asarray((window.matrix[b_rows] @ model.transform([text]).T).toarray()).ravel()
        _record(result, "tfidf", tfidf, relevant, k)
        _record(result, "before", _ours(window, model, text)[b_rows], relevant, k)
        liked: list[int] = []
        disliked: list[int] = []
        for day in days:  # each day's top k with the votes so far; every shown item gets a vote
            scores = _ours(window, model, text, liked, disliked)
            voted = set(liked) | set(disliked)
            today = np.asarray(
                [i for i, p in enumerate(a) if p.day == day and i not in voted], dtype=np.int64
            )
            for row in today[np.argsort(-scores[today], kind="stable")][:k].tolist():
                (liked if cat in a[row].categories else disliked).append(row)
        # no 👍 to learn from: the SVM has nothing but the text
        svm = (
            svm_scores(window.matrix[: len(a)], np.asarray(liked), window.matrix[b_rows]) if liked else tfidf
        )
        _record(result, "svm", svm, relevant, k)
        _record(result, "after", _ours(window, model, text, liked, disliked)[b_rows], relevant, k)
    return result
