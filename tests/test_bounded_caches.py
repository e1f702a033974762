"""Module-level and per-window caches are bounded (issue 14, finding 6): 150 profile saves of 200
new phrases each (30,000 phrases, made from the words of real paper titles), each phrase
compiled (:func:`phrase_pattern`) and matched against an item window of 200 real papers
(:meth:`ItemWindow.phrase_mask`), as a save's rescore does. Memory after the last 50 saves is
what it was after the first 100 (flat), and the caches hold at most their bound. Before, the
compiled-phrase cache alone grew by ~3 kB a phrase (98 MB for 30,000) and the window kept a
mask per phrase ever asked (200 B each here, 20 kB at 20,000 items)."""

from __future__ import annotations

import gc
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import bulk_papers

from aggregator.accounts import topic_filters
from aggregator.ranking.personal import item_matrix
from aggregator.ranking.personal.item_matrix import ItemWindow


def _rss() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def _window() -> ItemWindow:
    papers = [p for day in ("2026-06-15", "2026-06-16", "2026-06-17") for p in bulk_papers(day)]
    papers = papers[:200]
    n = len(papers)
    return ItemWindow(
        ids=np.arange(n, dtype=np.int64),
        matrix=sp.csr_matrix((n, 1), dtype=np.float32),
        published=np.zeros(n),
        texts=[f"{p['title']}\n{p.get('summary') or ''}" for p in papers],
        authors=[tuple(p["authors"]) for p in papers],
        categories=[tuple(p["categories"]) for p in papers],
        sources=[() for _ in papers],
    )


def _phrases(window: ItemWindow) -> list[str]:
    """30,000 distinct two- and three-word phrases from the papers' titles."""
    words = sorted({w.strip(".,:;()").lower() for t in window.texts for w in t.split("\n")[0].split()} - {""})
    out: list[str] = []
    for step in range(1, 40):
        out += [f"{a} {b}" for a, b in zip(words, words[step:], strict=False)]
    out = list(dict.fromkeys(out))
    assert len(out) >= 30_000, len(out)
    return out[:30_000]


@pytest.mark.slow
def test_memory_stays_flat_under_150_saves_of_200_new_phrases() -> None:
    window = _window()
    phrases = _phrases(window)
    getattr(topic_filters.phrase_pattern, "cache_clear", dict)()  # (a plain dict before the fix)
    sizes = []
    for save in range(150):
        for phrase in phrases[save * 200 : (save + 1) * 200]:
            window.phrase_mask(phrase)
        if save in (99, 149):
            gc.collect()
            sizes.append(_rss())
    after_100, after_150 = sizes
    grown = (after_150 - after_100) / 2**20
    assert grown < 5, f"RSS grew {grown:.1f} MB in the last 50 saves"
    assert topic_filters.phrase_pattern.cache_info().currsize <= topic_filters.PHRASE_CACHE_SIZE
    assert sum(isinstance(k, tuple) for k in window._memo) <= item_matrix.MEMO_QUERIES
