"""Free-text cold start on the real bulk arXiv data (issue 17): the profile is a one-line
description of an arXiv category, relevance is the category, text only (categories hidden from
the rankers). Ours (background subtraction, bounded PRF, recency) vs plain TF-IDF cosine of
the same text, on each split's test weeks. Nothing was tuned on these descriptions.

Usage: python bench/free_text_eval.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from aggregator.ranking import evaluate, personal  # noqa: E402
from aggregator.ranking import tfidf as rank  # noqa: E402
from aggregator.types import ReaderProfile  # noqa: E402

DESC = {
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



def run_split(papers: list[evaluate.Paper], split: evaluate.Split) -> str:
    """One line of results for ``split``: P@20 and AP of both methods, paired ΔAP."""
    train, test = evaluate.select(papers, split.train), evaluate.select(papers, split.test)
    both = train + test
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
    x_test = window.matrix[len(train) :]
    test_rows = np.arange(len(train), len(both))
    res: dict[str, tuple[list[float], list[float]]] = {"tfidf": ([], []), "ours": ([], [])}
    cats = [c for c in DESC if sum(c in p.categories for p in test) >= 10]
    empty = window.matrix[:0]
    for cat in cats:
        rel = np.asarray([cat in p.categories for p in test], dtype=np.float64)
        scores = {"tfidf": np.asarray((x_test @ model.transform([DESC[cat]]).T).toarray()).ravel()}
        reader = personal.compile_reader(model, ReaderProfile(0, interests=DESC[cat]), empty, empty)
        scores["ours"] = personal.rank_window(window, [reader])[1][0].score[test_rows]
        for m, s in scores.items():
            r = rel[np.argsort(-s, kind="stable")]
            res[m][0].append(float(r[:20].mean()))
            res[m][1].append(evaluate.average_precision(r))
    d = np.asarray(res["ours"][1]) - np.asarray(res["tfidf"][1])
    t, o = res["tfidf"], res["ours"]
    return (
        f"{split.name}: {len(cats)} categories"
        f" | TF-IDF cosine P@20 {np.mean(t[0]):.3f} AP {np.mean(t[1]):.3f}"
        f" | ours P@20 {np.mean(o[0]):.3f} AP {np.mean(o[1]):.3f}"
        f" | ΔAP {d.mean():+.3f} ± {d.std(ddof=1) / np.sqrt(len(d)):.3f}, wins {np.mean(d > 0):.0%}"
    )


def main() -> None:
    papers = evaluate.load_bulk()
    for split in evaluate.SPLITS:
        print(run_split(papers, split), flush=True)


if __name__ == "__main__":
    main()
