"""Trend monitoring: which normalised terms are rising, per scope, and how fast.

Counting. Every item is counted once (``trend_counted``) into ``term_counts``: the document
frequency (df, items that contain the term at least once) of each normalised term per UTC day
and per scope, plus ``trend_day_totals`` (items per day and scope, the share denominator).
Terms get integer ids in ``terms`` (which also keeps each term's first day per scope); the dfs
of one (scope, day) are stored packed in one row (:func:`pack_counts`: sorted ids and dfs,
zlib), because a day of 2,000 papers has ~110k distinct terms (~270k (scope, term) pairs),
most with df 1. Scopes are ``all``, the followed arXiv categories ``cs.LG``, ``cs.CV``,
``cs.CL`` (a cross-listed paper counts in each of its followed categories, once in ``all``)
and ``blogs`` (posts). The counts are updated incrementally after each ingest
(:func:`update_counts`), never by recounting.

Terms. Title and abstract (or post summary) are case-folded; hyphens and slashes between word
characters become spaces ("vision-language-action" → ``vision language action``); a plural
last letter is dropped by a light rule (``llms`` → ``llm``, ``policies`` → ``policy``). English
stop words (scikit-learn's list, copied as :data:`ENGLISH_STOP_WORDS`), a short domain list of
reporting verbs, adverbs and markup debris (:data:`DOMAIN_STOP_WORDS`), numbers and one-letter
tokens split the text into runs; the counted grams are the 1- to 4-grams inside a run that
begin and end with a content word, the connectors "of the to for and" allowed inside
("mixture of experts", "chain of thought"). Which grams are *reportable terms* is learned from
the corpus (:mod:`.lexicon`): collocations by normalised PMI, not fragments of a longer term,
and topical by residual IDF (Church & Gale 1995) or document coherence; boilerplate ("test
set", "percentage point") is learned out, with a small documented hand list for what the data
cannot show. Acronyms survive as case-folded tokens (``grpo``, ``vla``); labels restore the
upper case when the texts mostly write the token that way.

Detection. For a window W (e.g. 7 days ending ``end``) and the baseline B before it (e.g. 56
days), a term in ``a`` of the ``N1`` window items and ``b`` of the ``N2`` baseline items is
tested for a rise of its share with an exact one-sided conditional test (:func:`rising_p_values`:
given the ``a + b`` items with the term, ``a`` is Binomial(a + b, N1 / (N1 + N2)) when the share
did not change). Shares, not counts, are compared, so days with few items and the sampled
history before June 2026 do not bias the result. A report tests many terms at once, so the
rising ones are chosen by false discovery rate, not by a fixed p: the Benjamini–Hochberg
procedure at :data:`FDR` (10 %: in expectation at most one listed term in ten is a chance
fluctuation) over the testable terms (:func:`fdr_select`). The tested family is decided
before looking at the rise: every term that could be reported — a phrase, or a single word that
is a coined name or acronym (mostly written with an inner capital or all-caps, or with a digit:
``GRPO``, ``LoRA``, ``qwen3``, but not a number with a one-letter unit such as ``3x`` or ``7b``;
plain words trend as phrases) — seen in the window and in at least the minimum support of items
over window and baseline together, less those whose smallest attainable p-value is too large to
ever pass (Tarone 1990, Gilbert 2005). The test takes items
as independent; related papers arriving together (one group's series) make its p-values a
little optimistic, which the support rule below tempers. A term's p-value
counts only when it has the minimum support (``a`` ≥ ``max(5, 0.3 % of N1)`` items, on ≥ 2 days
of the window), its smoothed share ratio ``lift = ((a+½)/(N1+1)) / ((b+½)/(N2+1))`` is ≥ 1.5 and
its window share is higher; otherwise it is 1. (The previous rule, Dunning's G² ≥ 10.83 without a
multiple-test correction, listed chance phrases in most reports of real papers whose days were
shuffled, so that nothing could rise: 1–5 phrases in 21 of 30 shuffles, against 1–2 terms in 4
of 30 now, see ``tests/test_trends_fdr.py``; G²'s χ² approximation understates p three- to tenfold at 5–20
items, and a few thousand terms are tested.) Rising terms are ranked by G² × (1 + ½·ln(1 +
posts)): Dunning's log-likelihood ratio G² on the 2×2 table (Dunning 1993, "Accurate methods for
the statistics of surprise and coincidence", Computational Linguistics 19(1)) weighs the size
of the rise with its evidence, and posts counts blog posts in the window that mention the term
or discuss one of its papers (blog attention as a signal). A term first seen no earlier than
one window before the window is flagged ``is_new`` and listed separately too (with sampled
history, "first seen" means first seen in the stored data). Near-duplicates are collapsed:
plural and singular are one term already; a phrase and a part of it (``diffusion
transformer`` / ``diffusion``), or an acronym and its expansion (``ner`` / ``named entity
recognition``), become one entry under the phrase when the phrase accounts for at least half of
the part's window items.

Mix shift (:mod:`.strata`). Expected counts follow the window's mix: each item is also counted
in its stratum (primary category × source feed), and a term's expected window count is
``Σ_s n1_s · b_s / n2_s``; window items of strata the baseline never saw are not tested (the
Jan–Feb 2026 replay comes from a cs.LG/cs.RO/cs.CR-heavy scraper absent from the baseline).
The test keeps its form with ``p0 = ρ·n1 / (ρ·n1 + n2)``, ρ the mix factor (1 without shift).

Never empty. Every report also keeps its **leading topics** (the window's most frequent lexicon
terms, with their change) and a **watch list** (the strongest rises that did not reach the
false-discovery rate, with their q-values); pages, API and the weekly email show them, labelled,
when nothing rises significantly. The default window ends at the newest day with papers
(:func:`latest_day`), never on a week of blog posts alone. Windows go up to 31 days and
baselines up to 730; :mod:`.monthly` gives the calendar month's report per scope (against the
365 days before) and the email's headline terms; :mod:`.series` gives one term's share per
day, week or month (the term explorer) and the items behind a point.

Modules, along the flow: :mod:`.terms` (text → grams), :mod:`.lexicon` (which grams are terms),
:mod:`.counts` (the incremental per-day counts), :mod:`.strata` (mix-shift correction),
:mod:`.detect` (the test, the ranking, near-duplicates, leading topics and watch list) with
:mod:`.report` (the typed records) and :mod:`.window` (the window's items: labels, examples,
blog attention), :mod:`.results` (stored results, refreshed after each ingest), :mod:`.monthly`
and :mod:`.series` (the views). This package re-exports their public names.

Serving. :func:`refresh_results`, run after each ingest, computes and stores the default 7 d /
56 d results of every scope into ``trend_results``: it keeps a scope's stored result when the
digest of its inputs (day totals, window items, links) is unchanged, and reads the window's
items once for the scopes it recomputes. The API only reads them (:func:`stored_report`);
other windows and ends are computed on first request and stored; the monthly reports of the
newest two months are stored by the worker (:func:`store_months`).
"""

from __future__ import annotations

from aggregator.trends.counts import (
    CATEGORIES,
    EMPTY_COUNTS,
    FIRST_COLUMNS,
    SCOPES,
    item_day,
    item_scopes,
    pack_counts,
    parse_scope,
    recount,
    unpack_counts,
    update_counts,
)
from aggregator.trends.detect import (
    DEFAULT_BASELINE_DAYS,
    DEFAULT_WINDOW_DAYS,
    FDR,
    MIN_LIFT,
    STORED_LIMIT,
    collapse,
    compute_report,
    fdr_select,
    latest_day,
    log_likelihood_g2,
    min_support,
    rising_p_values,
)
from aggregator.trends.monthly import (
    MONTH_BASELINE_DAYS,
    MonthSection,
    headline_terms,
    month_bounds,
    month_reports,
    store_months,
)
from aggregator.trends.report import DayCount, TrendItem, TrendReport, TrendTerm
from aggregator.trends.results import (
    get_report,
    refresh_results,
    store_report,
    stored_payload,
    stored_report,
    top_rising,
)
from aggregator.trends.terms import (
    CONNECTORS,
    DOMAIN_STOP_WORDS,
    ENGLISH_STOP_WORDS,
    MAX_N,
    STOP_WORDS,
    extract_terms,
    gram_counts,
    item_text,
    normalise_term,
    runs,
    singular,
    terms_of_runs,
)
from aggregator.trends.window import MAX_EXAMPLES, _WindowItems

__all__ = [
    "MONTH_BASELINE_DAYS",
    "MonthSection",
    "headline_terms",
    "month_bounds",
    "month_reports",
    "store_months",
    "CATEGORIES",
    "DEFAULT_BASELINE_DAYS",
    "DEFAULT_WINDOW_DAYS",
    "CONNECTORS",
    "DOMAIN_STOP_WORDS",
    "EMPTY_COUNTS",
    "ENGLISH_STOP_WORDS",
    "FDR",
    "FIRST_COLUMNS",
    "MAX_EXAMPLES",
    "MAX_N",
    "MIN_LIFT",
    "SCOPES",
    "STOP_WORDS",
    "STORED_LIMIT",
    "DayCount",
    "TrendItem",
    "TrendReport",
    "TrendTerm",
    "_WindowItems",
    "collapse",
    "compute_report",
    "extract_terms",
    "gram_counts",
    "fdr_select",
    "get_report",
    "item_day",
    "item_scopes",
    "item_text",
    "latest_day",
    "log_likelihood_g2",
    "min_support",
    "normalise_term",
    "pack_counts",
    "parse_scope",
    "recount",
    "refresh_results",
    "rising_p_values",
    "runs",
    "singular",
    "store_report",
    "stored_payload",
    "stored_report",
    "terms_of_runs",
    "top_rising",
    "unpack_counts",
    "update_counts",
]
