"""Per-reader ranking: score the recent window of items for each reader and store the result in
``scores`` under the reader's key (``reader:<id>``), so the request path only reads.

The score of item *d* for a reader is::

    q1   = clip(α·p + β·mean(liked) − γ·mean(disliked) − b·background, 0)     (Rocchio 1971)
    q2   = clip(q1/|q1| + λ·prf/|prf| − γ·mean(disliked) − b·background, 0)    (pseudo-relevance feedback)
    sim  = cos(d, q2)                                                           in [0, 1]
    score = (sim + AUTHOR_BOOST·[followed author on d] + TOPIC_BOOST·n_topics(d)) · recency(d)

* ``p`` is the interest profile of :func:`aggregator.ranking.tfidf.profile_vector` (free text, keywords
  counted twice, seed papers), L2-normalised; ``liked``/``disliked`` are the TF-IDF rows of the
  reader's 👍/👎 items. Rocchio (1971), "Relevance feedback in information retrieval"; weights
  α = 1, β = 0.75 as in Salton & Buckley (1990), and γ = 0.5 (stronger than their 0.15, so a
  single 👎 visibly pushes similar items down). Negative weights are clipped at 0.
* ``background`` is the mean TF-IDF row of the window: subtracting it (b = 2) removes terms that
  are common in every paper of the week, the part of the profile that does not discriminate.
* ``prf`` is the mean of the window's ``PRF_DOCS`` = 20 items most similar to ``q1`` (the reader's
  own rated items left out), weight λ = 1: classic pseudo-relevance feedback (Rocchio; Buckley et
  al., TREC 1994). b, ``PRF_DOCS`` and λ were chosen on the early-June 2026 split of
  :mod:`aggregator.ranking.evaluate` only, and checked on held-out weeks (``aggregator eval``).
* ``recency(d) = RECENCY_FLOOR + (1 − RECENCY_FLOOR)·2^(−age/7 days)``: a mild decay (an item a
  week old keeps 87.5 %, a month old ≈ 77 %); it only matters when several days are compared.
* Muted (``ReaderProfile.muted``): an entry equal to an author of the item, or a phrase found
  in its title/abstract, marks the item muted. Its score is left as it is and its row is stored
  with ``muted`` set: every digest of the reader hides it and counts it in ``hidden`` ("12 items
  hidden by your filters" are the ones that would have made the digest).
* Votes in item space (:mod:`.votes`): 👍 adds ``LIKE_PULL·max(sim − 0.05, 0)`` with the
  nearest liked item, 👎 subtracts ``DISLIKE_PUSH·max(sim − 0.05, 0)`` with the nearest
  disliked one (sim: cosine with the voted item's 25 heaviest terms), and a 👎'd item itself
  is stored last with ``muted`` set, so the digest hides and counts it (issue 17).
* Filters: an item with an excluded category or source is **excluded**; when include lists are
  given an item must carry one of the included categories **or** come from one of the included
  sources (union). Excluded items get no ``scores`` row (an old one is deleted).

Rows written: each call keeps the reader's best ``top_k`` (default 200) of the scored items
plus the best ``day_top`` (50) of the newest day's (so the digest people read most, the newest
day's, is never short), and deletes the reader's other rows among those items. **A reader's
digest must therefore inner-join ``scores`` on ``profile = score_key``**: an item without a row
is excluded or below the reader's top-K. ``why`` is filled for the best ``why_top`` (20) rows
and the newest day's best (the rest get ``[]``): explaining is the costliest part.

Speed: the window's item matrix (n_items × n_terms, CSR float32), ids, publication times,
authors, categories and sources are cached per process and model (:func:`item_window`); its
validity is checked with one aggregate query (count, min/max/sum of ids, newest
``updated_at``), and it is refreshed incrementally when items are added or changed.
:func:`precompute_all` builds all readers' query parts as one n_readers × n_terms sparse
matrix in one pass, then per chunk of readers runs two products (n_items × n_terms CSC) @
(n_terms × chunk dense) — Rocchio, then PRF, whose centroids are one more sparse product —
applies boosts and filters as vector operations on memoised masks, takes every reader's
top-K with one ``argpartition`` over the block, computes ``why`` for the best ``why_top`` rows
only (one sparse elementwise product per chunk), and writes each chunk's rows with one
executemany (SQLite) or COPY (PostgreSQL) in a writer thread while the next chunks are
scored. Queries stay sparse: ``clip(x − b·background, 0)`` is computed on the nonzeros of
``x`` (the background is ≥ 0, so every other term clips to 0). A single
reader (:func:`precompute` after feedback) takes a dense-free path on the query's terms.

Modules: ``aggregator.accounts.topic_filters`` (the one topic-filter, mute and filter
rule), ``aggregator.accounts.profiles`` (the one profile loader), :mod:`.item_matrix` (the item
window and its cache), :mod:`.scoring` (the formula above, pure; its row helpers in
:mod:`.sparse_rows`), :mod:`.explain` (``why``), :mod:`.precompute` (batched scoring and
writing ``scores``); this package re-exports their public names.

Imports: this package loads numpy/scipy only; scikit-learn is imported by :mod:`aggregator.ranking.tfidf`
when a model is loaded, not by importing this module (so ``match_topic``/``load_profile`` stay
light for the API).
"""

from __future__ import annotations

from aggregator.accounts.profiles import load_profile, load_profiles, topic_filter
from aggregator.accounts.topic_filters import ItemFacts, match_topic, phrase_pattern
from aggregator.ranking.personal.explain import explain_rows
from aggregator.ranking.personal.item_matrix import (
    ItemWindow,
    clear_cache,
    item_window,
    load_items,
    window_bounds,
)
from aggregator.ranking.personal.precompute import (
    PrecomputeTimings,
    _compile_all,
    precompute,
    precompute_all,
)
from aggregator.ranking.personal.scoring import (
    ALPHA,
    AUTHOR_BOOST,
    BACKGROUND,
    BETA,
    DAY_TOP,
    GAMMA,
    MAX_TOPIC_BOOSTS,
    PRF_DOCS,
    PRF_WEIGHT,
    RECENCY_FLOOR,
    RECENCY_HALF_LIFE_DAYS,
    TOP_K,
    TOPIC_BOOST,
    WHY_TERMS,
    WHY_TOP,
    WINDOW_DAYS,
    Ranked,
    ReaderInputs,
    adjust,
    compile_reader,
    profile_vectors,
    rank_window,
    reader_queries,
    recency,
    similarities,
    top_rows,
)

__all__ = [
    "ALPHA",
    "AUTHOR_BOOST",
    "BACKGROUND",
    "BETA",
    "DAY_TOP",
    "GAMMA",
    "MAX_TOPIC_BOOSTS",
    "PRF_DOCS",
    "PRF_WEIGHT",
    "RECENCY_FLOOR",
    "RECENCY_HALF_LIFE_DAYS",
    "TOPIC_BOOST",
    "TOP_K",
    "WHY_TERMS",
    "WHY_TOP",
    "WINDOW_DAYS",
    "ItemFacts",
    "ItemWindow",
    "PrecomputeTimings",
    "Ranked",
    "ReaderInputs",
    "_compile_all",
    "adjust",
    "clear_cache",
    "compile_reader",
    "explain_rows",
    "item_window",
    "load_items",
    "load_profile",
    "load_profiles",
    "match_topic",
    "phrase_pattern",
    "precompute",
    "precompute_all",
    "profile_vectors",
    "rank_window",
    "reader_queries",
    "recency",
    "similarities",
    "top_rows",
    "topic_filter",
    "window_bounds",
]
