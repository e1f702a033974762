"""Held-out evaluation of the venue extractor (aggregator.feeds.venues) on 100 real arXiv
comments that were not used to write its rules.

The development set (tests/data/venue_labels.jsonl, 200 comments) was labelled next to the
extractor's output, and two rules were added while labelling; its precision is optimistic.
This held-out set was drawn afterwards, with the rules frozen at git blob
``FROZEN_BLOB`` of aggregator/feeds/venues.py, from another slice of
../shared/data/bulk/daily-arxiv-ai-enhanced: the 2025 files of the dw-dengwei scraper
(2025-03 .. 2025-12), minus every paper of the development set. 70 comments are drawn among
those that mention a venue name or "accept"/"review"/"workshop"/"conference" (where mistakes
can happen), 30 among the other non-empty comments, seed 2026. Labels
(tests/data/venue_heldout.jsonl) were written from the comment alone, without running the
extractor on it.

    .venv/bin/python bench/venue_heldout.py sample   # the 100 comments, unlabelled, as JSON lines
    .venv/bin/python bench/venue_heldout.py score    # precision and recall against the labels

A prediction is correct when (venue, year, workshop) equals the label exactly; precision is
over the comments where the extractor names a venue, recall over those where the label does.
"""

from __future__ import annotations

import json
import random
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BULK = ROOT.parent / "shared" / "data" / "bulk" / "daily-arxiv-ai-enhanced"
DEV = ROOT / "tests" / "data" / "venue_labels.jsonl"
LABELS = ROOT / "tests" / "data" / "venue_heldout.jsonl"
#: ``git rev-parse HEAD:aggregator/feeds/venues.py`` when the sample was drawn
FROZEN_BLOB = "5ce33ebaa7db29e8f44dadde4983ef1fe0553f2c"
SEED = 2026
MENTIONING, OTHER = 70, 30


def _mentions(comment: str) -> bool:
    sys.path.insert(0, str(ROOT))
    from aggregator.feeds.venues import VENUES

    names = "|".join(VENUES.values())
    cue = re.search(r"accept|review|workshop|conference", comment, re.I)
    return bool(re.search(rf"\b(?:{names})", comment) or cue)


def sample() -> list[dict[str, str]]:
    """The 100 held-out comments, ``{"id", "comment"}``, in a fixed order."""
    dev = {json.loads(line)["id"] for line in DEV.open()}
    papers: dict[str, str] = {}
    for path in sorted(BULK.glob("dw-dengwei-2025-*.jsonl")):
        for line in path.open(encoding="utf-8"):
            paper = json.loads(line)
            comment = " ".join((paper.get("comment") or "").split())
            if comment and paper["id"] not in dev:
                papers.setdefault(paper["id"], comment)
    ids = sorted(papers)
    mentioning = [i for i in ids if _mentions(papers[i])]
    other = [i for i in ids if not _mentions(papers[i])]
    rng = random.Random(SEED)
    chosen = rng.sample(mentioning, MENTIONING) + rng.sample(other, OTHER)
    return [{"id": i, "comment": papers[i]} for i in chosen]


def score() -> tuple[float, float, int, int, int]:
    """(precision, recall, correct, predicted, gold) on the held-out labels."""
    sys.path.insert(0, str(ROOT))
    from aggregator.feeds.venues import venue_in

    predicted = correct = gold = 0
    for line in LABELS.open():
        row = json.loads(line)
        v = venue_in(row["comment"])
        truth = (row["venue"], row["year"], row["workshop"]) if row["venue"] else None
        gold += truth is not None
        if v is not None:
            predicted += 1
            correct += (v.name, v.year, v.workshop) == truth
    return correct / predicted, correct / gold, correct, predicted, gold


if __name__ == "__main__":
    if sys.argv[1:] == ["sample"]:
        for row in sample():
            print(json.dumps(row, ensure_ascii=False))
    elif sys.argv[1:] == ["score"]:
        p, r, c, n, g = score()
        print(f"precision {c}/{n} = {p:.1%}, recall {c}/{g} = {r:.1%}")
    else:
        sys.exit(__doc__)
