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
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]
BULK = ROOT.parent / "shared" / "data" / "bulk" / "daily-arxiv-ai-enhanced"
DEV = ROOT / "tests" / "data" / "venue_labels.jsonl"


@dataclass(frozen=True)
class HeldOut:
    """One held-out set: its labels, the files it is drawn from, the sets it must not overlap,
    and the git blob of aggregator/feeds/venues.py frozen when it was drawn."""

    labels: Path
    files: str
    excluded: tuple[Path, ...]
    frozen_blob: str
    seed: int


SETS = {
    # drawn with the rules of the first commit, before any held-out comment was seen
    "1": HeldOut(
        ROOT / "tests/data/venue_heldout.jsonl",
        "dw-dengwei-2025-*.jsonl",
        (DEV,),
        "5ce33ebaa7db29e8f44dadde4983ef1fe0553f2c",
        2026,
    ),
    # drawn after the rules were changed for set 1's errors (set 1 is no longer held out)
    "2": HeldOut(
        ROOT / "tests/data/venue_heldout2.jsonl",
        "dw-dengwei-2026-*.jsonl",
        (DEV, ROOT / "tests/data/venue_heldout.jsonl"),
        "e03c4ddf4177a3138e75df905d05c870c2e08b6f",
        2027,
    ),
}
MENTIONING, OTHER = 70, 30


def _mentions(comment: str, names: str) -> bool:
    cue = re.search(r"accept|review|workshop|conference", comment, re.I)
    return bool(re.search(rf"\b(?:{names})", comment) or cue)


def _rules(blob: str | None) -> ModuleType:
    """aggregator.feeds.venues as it is now, or as git blob ``blob`` (the frozen rules)."""
    sys.path.insert(0, str(ROOT))
    if blob is None:
        from aggregator.feeds import venues

        return venues
    source = subprocess.run(["git", "cat-file", "-p", blob], cwd=ROOT, capture_output=True, check=True).stdout
    module = ModuleType(f"venues_{blob[:7]}")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(source, f"venues.py@{blob[:7]}", "exec"), module.__dict__)  # noqa: S102 - our own file
    return module


def sample(which: str) -> list[dict[str, str]]:
    """The 100 comments of held-out set ``which``, ``{"id", "comment"}``, in a fixed order."""
    spec = SETS[which]
    names = "|".join(_rules(spec.frozen_blob).VENUES.values())
    seen = {json.loads(line)["id"] for path in spec.excluded for line in path.open()}
    papers: dict[str, str] = {}
    for path in sorted(BULK.glob(spec.files)):
        for line in path.open(encoding="utf-8"):
            paper = json.loads(line)
            comment = " ".join((paper.get("comment") or "").split())
            if comment and paper["id"] not in seen:
                papers.setdefault(paper["id"], comment)
    ids = sorted(papers)
    mentioning = [i for i in ids if _mentions(papers[i], names)]
    other = [i for i in ids if not _mentions(papers[i], names)]
    rng = random.Random(spec.seed)
    chosen = rng.sample(mentioning, MENTIONING) + rng.sample(other, OTHER)
    return [{"id": i, "comment": papers[i]} for i in chosen]


def score(labels: Path, rules: ModuleType) -> tuple[int, int, int]:
    """(correct, predicted, gold) of ``rules.venue_in`` on the labelled comments."""
    predicted = correct = gold = 0
    for line in labels.open():
        row = json.loads(line)
        v = rules.venue_in(row["comment"])
        truth = (row["venue"], row["year"], row["workshop"]) if row["venue"] else None
        gold += truth is not None
        if v is not None:
            predicted += 1
            correct += (v.name, v.year, v.workshop) == truth
    return correct, predicted, gold


if __name__ == "__main__":
    args = sys.argv[1:]
    if len(args) == 2 and args[0] == "sample" and args[1] in SETS:
        for row in sample(args[1]):
            print(json.dumps(row, ensure_ascii=False))
    elif len(args) in (2, 3) and args[0] == "score" and args[1] in SETS:
        spec = SETS[args[1]]
        c, n, g = score(spec.labels, _rules(spec.frozen_blob if args[2:] == ["--frozen"] else None))
        print(f"precision {c}/{n} = {c / n:.1%}, recall {c}/{g} = {c / g:.1%}")
    else:
        sys.exit(__doc__)
