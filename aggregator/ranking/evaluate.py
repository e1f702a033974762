"""Offline evaluation of per-reader ranking on real arXiv papers (the bulk daily scrapes).

Task (temporal split): a simulated reader likes ``n_liked`` papers of one fine-grained arXiv
category (cs.RO, cs.CR, eess.AS, …) published in the *training* weeks; every paper of the
later *test* week is ranked, and a paper is relevant when it carries that category. Rankers
see text only (title, abstract, authors: :func:`aggregator.ranking.tfidf.item_text`); categories are
hidden from them. The TF-IDF model is fitted on the training + test weeks' texts, as the
service fits it on its recent window (unsupervised: no labels involved).

Rankers:

* ``random`` — a random permutation (seeded);
* ``svm`` — arxiv-sanity-lite's method (karpathy/arxiv-sanity-lite, ``serve.py``): a per-reader
  ``LinearSVC(C=0.01, class_weight="balanced")`` on the same TF-IDF features, liked papers as
  positives and every other training-week paper as negatives, ranking by decision function;
* ``ours`` — :mod:`aggregator.ranking.personal` exactly as the service runs it (liked papers as 👍,
  nothing else: Rocchio + background subtraction + pseudo-relevance feedback, recency on);
* ``centroid`` — plain cosine to the mean of the liked papers (our ranker without the two
  improvements), for reference.

Metrics: precision at ``k`` (20) and average precision over the full test-week ranking, as
mean ± standard deviation over categories × seeds, plus the paired difference ours − svm.

Splits: ``tune`` (train 1–7 June 2026, test 8–14 June) is the only split the constants of
:mod:`aggregator.ranking.personal` were chosen on; ``late-june`` (train 8–21 June, test 22 June–1 July)
and ``springkill`` (cs.LG-heavy fork, train 17–30 Jan 2026, test 31 Jan–8 Feb) are held out.
A paper belongs to the first day file that lists it (scrapes repeat over weekends).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

BROAD = frozenset({"cs.AI", "cs.CV", "cs.CL", "cs.LG"})  # the scrapers' own categories: not fine-grained


@dataclass(frozen=True, slots=True)
class Paper:
    id: str
    day: str  # ISO date of the first day file listing it
    source: str  # "dw" (dw-dengwei) or "sk" (springkill)
    title: str
    summary: str
    authors: tuple[str, ...]
    categories: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Split:
    """Training and test periods: (source, first day, last day), both inclusive."""

    name: str
    train: tuple[str, str, str]
    test: tuple[str, str, str]
    role: str = "held-out"  # or "tune"


SPLITS: tuple[Split, ...] = (
    Split("tune", ("dw", "2026-06-01", "2026-06-07"), ("dw", "2026-06-08", "2026-06-14"), "tune"),
    Split("late-june", ("dw", "2026-06-08", "2026-06-21"), ("dw", "2026-06-22", "2026-07-01")),
    Split("springkill", ("sk", "2026-01-17", "2026-01-30"), ("sk", "2026-01-31", "2026-02-08")),
)


def default_bulk_dir() -> Path:
    """``../shared/data/bulk/daily-arxiv-ai-enhanced`` next to the checkout (or
    ``$AGGREGATOR_SHARED_DIR/data/...``)."""
    import os

    root = Path(__file__).resolve().parents[2]
    shared = Path(os.environ.get("AGGREGATOR_SHARED_DIR", root.parent / "shared"))
    return shared / "data" / "bulk" / "daily-arxiv-ai-enhanced"


def load_bulk(folder: Path | None = None) -> list[Paper]:
    """Every unique paper of the bulk JSONL files, each dated by the first file listing it.
    Raises ``FileNotFoundError`` when the folder holds no ``*.jsonl``."""
    folder = folder or default_bulk_dir()
    files = sorted(folder.glob("*.jsonl"), key=lambda p: (p.stem[-10:], p.stem))
    if not files:
        raise FileNotFoundError(f"no bulk JSONL files in {folder}")
    seen: dict[str, Paper] = {}
    for f in files:
        source = "sk" if f.stem.startswith("springkill") else "dw"
        day = f.stem[-10:]
        for line in f.open(encoding="utf-8"):
            p = json.loads(line)
            if p["id"] in seen:
                continue
            seen[p["id"]] = Paper(
                p["id"],
                day,
                source,
                " ".join(p["title"].split()),
                " ".join((p.get("summary") or "").split()),
                tuple(p.get("authors") or ()),
                tuple(p.get("categories") or ()),
            )
    return list(seen.values())


def select(papers: Sequence[Paper], period: tuple[str, str, str]) -> list[Paper]:
    source, first, last = period
    return [p for p in papers if p.source == source and first <= p.day <= last]


def average_precision(relevant: np.ndarray) -> float:
    """AP of a ranked 0/1 relevance vector (best first): mean precision at each relevant rank."""
    if relevant.sum() == 0:
        return 0.0
    hits = np.cumsum(relevant)
    ranks = np.arange(1, len(relevant) + 1)
    return float((hits / ranks * relevant).sum() / relevant.sum())


@dataclass(slots=True)
class MethodResult:
    precision: list[float] = field(default_factory=list)
    ap: list[float] = field(default_factory=list)


@dataclass(slots=True)
class SplitResult:
    split: Split
    n_train: int
    n_test: int
    categories: list[str]
    methods: dict[str, MethodResult] = field(default_factory=dict)


def _day_ts(day: str) -> float:
    return dt.datetime.fromisoformat(day + "T04:00:00+00:00").timestamp()


def evaluate_split(
    papers: Sequence[Paper],
    split: Split,
    *,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    n_liked: int = 5,
    k: int = 20,
    min_test: int = 10,
    min_train: int = 10,
    methods: Sequence[str] = ("random", "svm", "centroid", "ours"),
    categories: Sequence[str] | None = None,
) -> SplitResult:
    """Run every method on one split; categories with ≥ ``min_test`` positives in the test
    period and ≥ ``min_train`` in the training period (excluding :data:`BROAD`) unless
    ``categories`` is given. Deterministic for fixed ``seeds``.

    Long because it runs every method of the comparison on the same candidates, one after another;
    split, the shared setup would have to be passed around.
    """
    from aggregator.ranking import personal
    from aggregator.types import ReaderProfile

    train, test = select(papers, split.train), select(papers, split.test)
    both = train + test
    model, window = paper_window(both)
    x_train, x_test = window.matrix[: len(train)], window.matrix[len(train) :]
    test_rows = np.arange(len(train), len(both))
    n_train_pos = Counter(c for p in train for c in set(p.categories))
    n_test_pos = Counter(c for p in test for c in set(p.categories))
    if categories is None:
        categories = sorted(
            c
            for c in n_test_pos
            if c not in BROAD and n_test_pos[c] >= min_test and n_train_pos[c] >= min_train
        )
    result = SplitResult(split, len(train), len(test), list(categories), {m: MethodResult() for m in methods})

    def record(method: str, scores: np.ndarray, relevant: np.ndarray) -> None:
        order = np.argsort(-scores, kind="stable")
        rel = relevant[order]
        result.methods[method].precision.append(float(rel[:k].mean()))
        result.methods[method].ap.append(average_precision(rel))

    for cat in categories:
        positives = np.asarray([i for i, p in enumerate(train) if cat in p.categories])
        relevant = np.asarray([cat in p.categories for p in test], dtype=np.float64)
        if len(positives) < n_liked:
            continue
        for seed in seeds:
            rng = np.random.default_rng([seed, sum(map(ord, cat))])
            liked = np.sort(rng.choice(positives, n_liked, replace=False))
            if "random" in methods:
                record("random", rng.random(len(test)), relevant)
            if "svm" in methods:
                record("svm", svm_scores(x_train, liked, x_test), relevant)
            if "centroid" in methods:
                centroid = np.asarray(x_train[liked].mean(axis=0)).ravel()
                record("centroid", x_test @ centroid, relevant)
            if "ours" in methods:
                profile = ReaderProfile(reader_id=0, liked_item_ids=tuple(int(i) for i in liked))
                reader = personal.compile_reader(
                    model, profile, window.matrix[liked], window.matrix[:0], seed_texts=()
                )
                _, ranked = personal.rank_window(window, [reader])
                record("ours", ranked[0].score[test_rows], relevant)
    return result


def paper_window(papers: Sequence[Paper], categories: bool = False):  # type: ignore[no-untyped-def]
    """``(model, window)``: a TF-IDF model fitted on the papers' texts and their
    :class:`~aggregator.ranking.personal.ItemWindow` (rows in the order of ``papers``; sources
    hidden, categories too unless ``categories``; published at 04:00 UTC of the paper's day)."""
    from aggregator.ranking import personal
    from aggregator.ranking import tfidf as rank

    model = rank.fit([rank.item_text(p.title, p.summary, p.authors) for p in papers])
    window = personal.ItemWindow.build(
        model,
        list(range(len(papers))),
        [p.title for p in papers],
        [p.summary for p in papers],
        [p.authors for p in papers],
        [p.categories if categories else () for p in papers],
        [() for _ in papers],
        np.asarray([_day_ts(p.day) for p in papers]),
    )
    return model, window


def svm_scores(x_train, liked: np.ndarray, x_test) -> np.ndarray:  # type: ignore[no-untyped-def]
    """arxiv-sanity-lite's per-reader SVM: liked rows positive, all other training rows
    negative; decision function on ``x_test`` (n_test float)."""
    from sklearn.svm import LinearSVC

    y = np.zeros(x_train.shape[0], dtype=np.int64)
    y[liked] = 1
    clf = LinearSVC(C=0.01, class_weight="balanced", max_iter=10_000, tol=1e-6)
    clf.fit(x_train, y)
    return np.asarray(clf.decision_function(x_test), dtype=np.float64)


def run(
    splits: Sequence[Split] = SPLITS,
    papers: Sequence[Paper] | None = None,
    progress: Callable[[SplitResult], None] | None = None,
    **kwargs: object,
) -> list[SplitResult]:
    """Evaluate every split (see :func:`evaluate_split` for ``kwargs``)."""
    papers = load_bulk() if papers is None else papers
    out = []
    for split in splits:
        res = evaluate_split(papers, split, **kwargs)  # type: ignore[arg-type]
        out.append(res)
        if progress is not None:
            progress(res)
    return out


def summary_rows(results: Sequence[SplitResult], k: int = 20, anchor: str = "svm") -> list[dict[str, object]]:
    """One row per split × method: n (categories × seeds), P@k and AP mean ± std, and for every
    other method the paired difference to ``anchor`` (mean ± standard error, and the share of
    category × seed runs where the method is at least as good)."""
    rows: list[dict[str, object]] = []
    for res in results:
        svm = res.methods.get(anchor)
        for name, m in res.methods.items():
            p, a = np.asarray(m.precision), np.asarray(m.ap)
            row: dict[str, object] = {
                "split": res.split.name,
                "role": res.split.role,
                "train/test papers": f"{res.n_train}/{res.n_test}",
                "categories": len(res.categories),
                "method": name,
                "n": len(p),
                f"P@{k}": f"{p.mean():.3f} ± {p.std():.3f}" if len(p) else "-",
                "AP": f"{a.mean():.3f} ± {a.std():.3f}" if len(a) else "-",
                f"ΔAP vs {anchor}": "",
                "wins": "",
            }
            if name != anchor and svm is not None and len(svm.ap) == len(a) and len(a):
                d = a - np.asarray(svm.ap)
                dp = p - np.asarray(svm.precision)
                row[f"ΔAP vs {anchor}"] = f"{d.mean():+.3f} ± {d.std(ddof=1) / np.sqrt(len(d)):.3f}"
                row[f"ΔP@{k} vs {anchor}"] = f"{dp.mean():+.3f} ± {dp.std(ddof=1) / np.sqrt(len(dp)):.3f}"
                row["wins"] = f"{(d >= 0).mean():.0%}"
            rows.append(row)
    return rows


def format_table(results: Sequence[SplitResult], k: int = 20, anchor: str = "svm") -> str:
    """A plain-text table of :func:`summary_rows`."""
    rows = summary_rows(results, k, anchor)
    cols = [
        "split",
        "role",
        "train/test papers",
        "categories",
        "method",
        "n",
        f"P@{k}",
        "AP",
        f"ΔP@{k} vs {anchor}",
        f"ΔAP vs {anchor}",
        "wins",
    ]
    width = {c: max(len(c), *(len(str(r.get(c, ""))) for r in rows)) for c in cols}
    lines = ["  ".join(c.ljust(width[c]) for c in cols), "  ".join("-" * width[c] for c in cols)]
    lines += ["  ".join(str(r.get(c, "")).ljust(width[c]) for c in cols) for r in rows]
    cats = [f"{r.split.name}: {' '.join(r.categories)}" for r in results]
    return "\n".join(lines + ["", "categories per split:", *cats])
