"""Feedback loop on the real bulk arXiv data (issue 17): a simulated reader starts from a
one-line description of an arXiv category (``bench/free_text_eval.py``'s ``DESC``), reads its
daily top 20 for a week and votes 👍 on the relevant items (the category's) and 👎 on the
rest; then the next week is ranked. P@20 and AP of that week: ours before feedback (the text
alone), ours after, arxiv-sanity-lite's SVM trained on the same votes (👍 positive, every
other item of the voting week negative), and plain TF-IDF cosine of the text.

Usage: python bench/feedback_loop_eval.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np  # noqa: E402
from free_text_eval import DESC  # noqa: E402

from aggregator.ranking import evaluate, personal  # noqa: E402
from aggregator.ranking import tfidf as rank  # noqa: E402
from aggregator.types import ReaderProfile  # noqa: E402

#: (name, voting week, ranked week): dw days of June 2026 (none used for tuning)
WEEKS = (
    ("8–14 Jun → 15–21 Jun", ("2026-06-08", "2026-06-14"), ("2026-06-15", "2026-06-21")),
    ("15–21 Jun → 22 Jun–1 Jul", ("2026-06-15", "2026-06-21"), ("2026-06-22", "2026-07-01")),
)
METHODS = ("tfidf", "before", "svm", "after")


def _scores(window: personal.ItemWindow, model: rank.TfidfModel, profile: ReaderProfile) -> np.ndarray:
    rows = lambda ids: window.matrix[list(ids)]  # noqa: E731
    liked, disliked = rows(profile.liked_item_ids), rows(profile.disliked_item_ids)
    reader = personal.compile_reader(model, profile, liked, disliked)
    return personal.rank_window(window, [reader])[1][0].score


def _voted(text: str, liked: list[int], disliked: list[int]) -> ReaderProfile:
    return ReaderProfile(0, interests=text, liked_item_ids=tuple(liked), disliked_item_ids=tuple(disliked))


def run_weeks(papers: list[evaluate.Paper], name: str, vote: tuple[str, str], ranked: tuple[str, str]) -> str:
    """One line of results: P@20 / AP of the ranked week per method, averaged over categories."""
    a = [p for p in papers if p.source == "dw" and vote[0] <= p.day <= vote[1]]
    b = [p for p in papers if p.source == "dw" and ranked[0] <= p.day <= ranked[1]]
    both = a + b
    model = rank.fit([rank.item_text(p.title, p.summary, p.authors) for p in both])
    window = personal.ItemWindow.build(
        model,
        list(range(len(both))),
        [p.title for p in both],
        [p.summary for p in both],
        [p.authors for p in both],
        [() for _ in both],
        [() for _ in both],
        np.asarray([evaluate._day_ts(p.day) for p in both]),
    )
    b_rows = np.arange(len(a), len(both))
    days = sorted({p.day for p in a})
    res: dict[str, tuple[list[float], list[float]]] = {m: ([], []) for m in METHODS}
    def count(c: str, ps: list[evaluate.Paper]) -> int:
        return sum(c in p.categories for p in ps)

    cats = [c for c in DESC if count(c, b) >= 10 and count(c, a) >= 5]
    for cat in cats:
        rel = np.asarray([cat in p.categories for p in b], dtype=np.float64)
        profile = ReaderProfile(0, interests=DESC[cat])
        scores = {
            "tfidf": np.asarray((window.matrix[b_rows] @ model.transform([DESC[cat]]).T).toarray()).ravel(),
            "before": _scores(window, model, profile)[b_rows],
        }
        liked: list[int] = []
        disliked: list[int] = []
        for day in days:  # the reader reads each day's top 20 with the votes so far
            profile = _voted(DESC[cat], liked, disliked)
            s = _scores(window, model, profile)
            today = np.asarray([i for i, p in enumerate(a) if p.day == day and i not in liked + disliked])
            for r in today[np.argsort(-s[today], kind="stable")][:20].tolist():
                (liked if cat in a[r].categories else disliked).append(r)
        profile = _voted(DESC[cat], liked, disliked)
        scores["after"] = _scores(window, model, profile)[b_rows]
        if liked:
            x_a = window.matrix[: len(a)]
            scores["svm"] = evaluate.svm_scores(x_a, np.asarray(liked), window.matrix[b_rows])
        else:  # no 👍 to learn from: the SVM has nothing but the text
            scores["svm"] = scores["tfidf"]
        for m in METHODS:
            r = rel[np.argsort(-scores[m], kind="stable")]
            res[m][0].append(float(r[:20].mean()))
            res[m][1].append(evaluate.average_precision(r))
    cols = " | ".join(f"{m} {np.mean(res[m][0]):.3f} / {np.mean(res[m][1]):.3f}" for m in METHODS)
    return f"{name}: {len(cats)} categories | P@20 / AP: {cols}"


def main() -> None:
    papers = evaluate.load_bulk()
    for name, vote, ranked in WEEKS:
        print(run_weeks(papers, name, vote, ranked), flush=True)


if __name__ == "__main__":
    main()
