"""Offline ranking quality on the real bulk arXiv data: ours vs arxiv-sanity-lite's SVM vs random.

Usage: python bench/rank_quality.py [--seeds 5] [--liked 5]
Prints P@20 and AP (mean ± std over categories × seeds) per split; see aggregator/evaluate.py.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aggregator.ranking import evaluate  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seeds", type=int, default=5, help="random seeds for which papers are liked")
    ap.add_argument("--liked", type=int, default=5, help="liked papers per simulated reader")
    ap.add_argument("--k", type=int, default=20)
    args = ap.parse_args()
    t0 = time.perf_counter()
    results = evaluate.run(
        seeds=tuple(range(args.seeds)),
        n_liked=args.liked,
        k=args.k,
        progress=lambda r: print(f"  {r.split.name}: {len(r.categories)} categories", file=sys.stderr),
    )
    print(evaluate.format_table(results, args.k))
    print(f"\n({time.perf_counter() - t0:.1f} s)")


if __name__ == "__main__":
    main()
