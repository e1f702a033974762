"""The per-reader vote model on real papers: used only once a reader has voted enough,
deterministic, keeps the score's scale, and moves the reader's category up."""

from __future__ import annotations

import numpy as np
import pytest

from aggregator.ranking import evaluate, personal
from aggregator.ranking.personal import vote_model
from aggregator.types import ReaderProfile

TEXT = "robotics: robot manipulation, locomotion, navigation and control"


@pytest.fixture(scope="module")
def week() -> tuple[list[evaluate.Paper], object, personal.ItemWindow]:
    papers = evaluate.select(evaluate.load_bulk(), ("dw", "2026-06-08", "2026-06-21"))
    model, window = evaluate.paper_window(papers)
    return papers, model, window


def _ranked(model, window: personal.ItemWindow, profile: ReaderProfile) -> np.ndarray:  # type: ignore[no-untyped-def]
    m = window.matrix
    reader = personal.compile_reader(
        model, profile, m[list(profile.liked_item_ids)], m[list(profile.disliked_item_ids)]
    )
    return personal.rank_window(window, [reader])[1][0].score


def _votes(
    papers: list[evaluate.Paper], n_liked: int, n_disliked: int
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """👍 on the first robotics papers of the first week, 👎 on the first others (window rows =
    item ids here)."""
    first = [i for i, p in enumerate(papers) if p.day <= "2026-06-14"]
    liked = [i for i in first if "cs.RO" in papers[i].categories][:n_liked]
    disliked = [i for i in first if "cs.RO" not in papers[i].categories][:n_disliked]
    return tuple(liked), tuple(disliked)


def test_threshold() -> None:
    rows = lambda n: np.arange(n, dtype=np.int64)  # noqa: E731
    assert not vote_model.learns(rows(4), rows(20))  # too few 👍
    assert not vote_model.learns(rows(5), rows(4))  # too few votes
    assert vote_model.learns(rows(5), rows(5))


def test_vote_model_moves_the_category_up_and_only_when_learning(
    week, monkeypatch: pytest.MonkeyPatch
) -> None:  # type: ignore[no-untyped-def]
    papers, model, window = week
    liked, disliked = _votes(papers, 12, 60)
    later = np.asarray([i for i, p in enumerate(papers) if p.day > "2026-06-14"])
    robotics = np.asarray([("cs.RO" in papers[i].categories) for i in later], dtype=np.float64)

    voted = ReaderProfile(7, interests=TEXT, liked_item_ids=liked, disliked_item_ids=disliked)
    with_model = _ranked(model, window, voted)
    few = ReaderProfile(7, interests=TEXT, liked_item_ids=liked[:3], disliked_item_ids=disliked[:3])
    few_scores = _ranked(model, window, few)
    with monkeypatch.context() as m:
        m.setattr(vote_model, "MIN_LIKED", 10**6)  # no reader learns
        without = _ranked(model, window, voted)
        few_reference = _ranked(model, window, few)

    def ap(score: np.ndarray) -> float:  # average precision of cs.RO over the later week
        return evaluate.average_precision(robotics[np.argsort(-score[later], kind="stable")])

    assert ap(with_model) > ap(without) + 0.02
    # the scale of the score is kept: the best unvoted items stay within the cosine's range
    finite = with_model[np.isfinite(with_model) & (with_model > -5)]
    assert 0.05 < float(np.sort(finite)[-20:].mean()) < 3.0
    # deterministic: the same votes give the same scores
    assert np.array_equal(with_model, _ranked(model, window, voted))
    # a reader below the threshold is scored exactly as without a model
    assert np.array_equal(few_scores, few_reference)
