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
stop words (scikit-learn's list, copied as :data:`ENGLISH_STOP_WORDS`), a domain stop-list of
paper boilerplate ("propose", "novel", "results", "state of the art" …), numbers and
one-letter tokens split the text into runs; terms are the 1- to 3-grams inside a run, so a
phrase never spans a stop word or punctuation; a unigram of a generic word (:data:`WEAK_WORDS`:
"model", "data" …) is not a term. Acronyms survive as case-folded tokens (``grpo``, ``rlvr``,
``vla``); labels shown to readers restore the upper case when the texts mostly write the token
that way.

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

Serving. :func:`refresh_results`, run after each ingest, computes and stores the default 7 d /
56 d results of every scope into ``trend_results``: it keeps a scope's stored result when the
digest of its inputs (day totals, window items, links) is unchanged, and reads the window's
items once for the scopes it recomputes. The API only reads them (:func:`stored_report`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import json
import math
import re
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from itertools import compress, repeat
from operator import add, mul
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.orm import Session

from .store.db import insert
from .store.tables import DayTotal, Item, ItemLink, Term, TermCount, TrendCounted, TrendResult

#: The scopes trend results are kept for, in display order.
SCOPES: tuple[str, ...] = ("all", "cs.LG", "cs.CV", "cs.CL", "blogs")
#: arXiv categories that have their own scope.
CATEGORIES: tuple[str, ...] = ("cs.LG", "cs.CV", "cs.CL")
DEFAULT_WINDOW_DAYS = 7
DEFAULT_BASELINE_DAYS = 56
#: Target false discovery rate of the rising terms of one report (Benjamini–Hochberg).
FDR = 0.1
MIN_LIFT = 1.5
MAX_N = 3
#: How many ranked terms a stored result keeps (the API's ``limit`` is at most this).
STORED_LIMIT = 50
MAX_EXAMPLES = 6


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


#: scikit-learn's ``ENGLISH_STOP_WORDS`` (BSD-3-Clause; from the Glasgow Information Retrieval
#: Group's list), copied so that counting does not import scikit-learn (1.4 s).
ENGLISH_STOP_WORDS = _words(
    """
    a about above across after afterwards again against all almost alone along already also although
    always am among amongst amoungst amount an and another any anyhow anyone anything anyway
    anywhere are around as at back be became because become becomes becoming been before beforehand
    behind being below beside besides between beyond bill both bottom but by call can cannot cant co
    con could couldnt cry de describe detail do done down due during each eg eight either eleven
    else elsewhere empty enough etc even ever every everyone everything everywhere except few
    fifteen fifty fill find fire first five for former formerly forty found four from front full
    further get give go had has hasnt have he hence her here hereafter hereby herein hereupon hers
    herself him himself his how however hundred i ie if in inc indeed interest into is it its itself
    keep last latter latterly least less ltd made many may me meanwhile might mill mine more
    moreover most mostly move much must my myself name namely neither never nevertheless next nine
    no nobody none noone nor not nothing now nowhere of off often on once one only onto or other
    others otherwise our ours ourselves out over own part per perhaps please put rather re same see
    seem seemed seeming seems serious several she should show side since sincere six sixty so some
    somehow someone something sometime sometimes somewhere still such system take ten than that the
    their them themselves then thence there thereafter thereby therefore therein thereupon these
    they thick thin third this those though three through throughout thru thus to together too top
    toward towards twelve twenty two un under until up upon us very via was we well were what
    whatever when whence whenever where whereafter whereas whereby wherein whereupon wherever
    whether which while whither who whoever whole whom whose why will with within without would yet
    you your yours yourself yourselves
    """
)

# Paper boilerplate: these split phrases like stop words do (after "propose", "novel", … in
# arxiv-sanity-style lists, plus what the June 2026 data showed near the top unfiltered).
DOMAIN_STOP_WORDS = _words(
    """
    propose proposed proposes proposing present presents presented introduce introduces introduced
    introducing paper papers work works study studies result results method methods approach
    approaches novel new state art sota demonstrate demonstrates demonstrated show shows shown
    showing achieve achieves achieved achieving outperform outperforms outperformed outperforming
    experiment experiments experimental extensive extensively significant significantly existing
    previous prior recent recently current based using use used uses leverage leverages leveraging
    effective effectively efficient efficiently improve improves improved improving improvement
    improvements furthermore moreover additionally specifically particular particularly various
    different including include includes however while whereas key main finally respectively
    superior competitive comprehensive comprehensively remarkable promising strong stronger
    substantially substantial consistently consistent validate validates enable enables enabling
    address addresses addressing challenge challenges challenging problem problems issue issues
    task tasks performance performances framework frameworks technique techniques available code
    publicly github https http www com org html abs pdf arxiv et al ie eg etc vs via
    mathcal mathbf mathrm mathbb frac text textbf textit emph cdot ldots leq geq sqrt times
    upvote upvotes summary authors author thumbnail img src alt style
    """
)

STOP_WORDS = ENGLISH_STOP_WORDS | DOMAIN_STOP_WORDS

# Too generic to be a trend alone; still fine inside a phrase ("large language model").
WEAK_WORDS = _words(
    """
    model learning data network training dataset benchmark large language image images system
    systems high low better best good level end real world time large scale multi single
    analysis accuracy quality evaluation evaluate evaluated evaluating approach design
    information feature representation representations generation process output input
    method algorithm algorithms setting settings way ability capability number set case
    application applications result domain domains type types structure value values
    """
)

_NO_SINGULAR = _words(
    """
    bias alias atlas canvas gas lens news series species physics mathematics robotics dynamics
    statistics economics ethics graphics analytics kinematics semantics linguistics always perhaps
    its this has was does less plus thus towards across upwards sometimes whereas
    """
)

# One pass over the case-folded text: a token, or something that ends a run (punctuation, a
# dash or quote between spaces). A hyphen or slash between word characters matches neither, so
# "vision-language" gives the adjacent tokens "vision", "language".
_SCAN = re.compile(r"[a-z0-9]+|[.,;:!?()\[\]{}\"“”‘’<>|=+*&$%#@\\~^`_]+|\s[-–—']+\s|'\s|\s'")
_RAW_TOKEN = re.compile(r"[A-Za-z0-9]+")
_NUMBER_UNIT = re.compile(r"[0-9]+[a-z]")
#: Marks the end of a run in a token list (never a token: tokens are [a-z0-9]+).
_BREAK = "|"


def singular(token: str) -> str:
    """A light English singular of a case-folded token (``llms`` → ``llm``, ``policies`` →
    ``policy``, ``boxes`` → ``box``); words ending in -ss, -us, -is and a short list stay."""
    if len(token) <= 3 or not token.endswith("s") or token in _NO_SINGULAR or token[-2].isdigit():
        return token
    if token.endswith("ies") and len(token) > 4:
        return token[:-3] + "y"
    if token.endswith(("sses", "shes", "ches", "xes", "zes")):
        return token[:-2]
    if token.endswith(("ss", "us", "is")):
        return token
    return token[:-1]


def _normal(raw: str) -> str:
    """The normalised form of a case-folded ``[a-z0-9]+`` token; "" for a stop word, a number or
    a one-letter token (they end runs)."""
    token = singular(raw)
    if len(raw) < 2 or raw.isdigit() or raw in STOP_WORDS or token in STOP_WORDS:
        return ""
    return token


class _Normaliser(dict[str, str]):
    """A cache: a ``_SCAN`` match → its normalised token, or ``_BREAK`` for a stop word, number,
    one-letter token or punctuation. Misses are computed; at most a million entries are kept."""

    def __missing__(self, raw: str) -> str:
        token = (_normal(raw) if raw[0].isalnum() else "") or _BREAK
        if len(self) < 1_000_000:
            self[raw] = token
        return token


_NORMAL = _Normaliser()


def _tokens(text: str) -> list[str]:
    """The normalised tokens of ``text`` in order, with ``_BREAK`` wherever a run ends."""
    return list(map(_NORMAL.__getitem__, _SCAN.findall(text.casefold())))


def runs(text: str) -> list[list[str]]:
    """Normalised token runs of ``text``: lists of case-folded, singular tokens, split at
    punctuation, stop words (English + :data:`DOMAIN_STOP_WORDS`), numbers and one-letter tokens."""
    return [run for part in " ".join(_tokens(text)).split(_BREAK) if (run := part.split())]


#: A token's code for :func:`_grams`: 0 a break, 1 a weak word, 2 (the default) any other.
_CODES = {_BREAK: 0, **dict.fromkeys(WEAK_WORDS, 1)}
_CODE = _CODES.get
_IS_STRONG = (2).__eq__
_AT_LEAST_TWO = (2).__le__


def _grams(tokens: list[str], max_n: int = MAX_N) -> set[str]:
    """The distinct 1..``max_n``-grams of a token list (``_BREAK`` between runs) that do not
    span a break, without unigrams of :data:`WEAK_WORDS` and grams made only of weak words.

    Built with C-level ``map``/``compress`` over the whole list (no per-run Python loop): the
    product of the tokens' codes (:data:`_CODES`) in a gram is 0 when it spans a break, 1 when
    all its words are weak, ≥ 2 when it is kept; a gram's string is only made where it is kept.
    """
    t = tokens
    codes = list(map(_CODE, t, repeat(2)))
    found = set(compress(t, map(_IS_STRONG, codes)))
    if max_n >= 2 and len(t) > 1:
        spaced = list(map(add, t, repeat(" ")))
        product = codes
        for n in range(2, max_n + 1):
            product = list(map(mul, product, codes[n - 1 :]))
            keep = list(map(_AT_LEAST_TWO, product))
            grams: Iterable[str] = compress(spaced, keep)
            for j in range(1, n - 1):
                grams = map(add, grams, compress(spaced[j:], keep))
            found.update(map(add, grams, compress(t[n - 1 :], keep)))
    if found and max(map(len, found)) > 200:
        found = {g for g in found if len(g) <= 200}
    return found


def terms_of_runs(token_runs: Iterable[Sequence[str]], max_n: int = MAX_N) -> set[str]:
    """The distinct 1..``max_n``-grams inside the runs, without unigrams of :data:`WEAK_WORDS`
    and without phrases made only of weak words."""
    flat: list[str] = []
    for run in token_runs:
        flat.extend(run)
        flat.append(_BREAK)
    return _grams(flat, max_n)


def extract_terms(text: str) -> set[str]:
    """The distinct normalised terms (uni-, bi- and trigrams) of one text; see the module doc.
    About 160 µs for a 1,400-character abstract on the benchmark VM (one regex pass, a cached
    token map, and the n-grams built over the whole token list), 270 µs before 2026-07."""
    return _grams(_tokens(text))


def normalise_term(text: str) -> str:
    """A user-typed term in the normalised form the counts use (``"Vision-Language-Action
    models"`` → ``"vision language action model"``); stop words are dropped."""
    return " ".join(t for t in _tokens(text) if t != _BREAK)


def item_text(title: str, summary: str) -> str:
    return f"{title}. {summary}"


def parse_scope(text: str | None) -> str:
    """A scope from user input: ``all`` (or empty), ``blogs``, or a followed arXiv category in
    any case (``cs.lg`` → ``cs.LG``). Raises ``ValueError`` naming the valid scopes."""
    value = (text or "all").strip()
    for scope in SCOPES:
        if value.casefold() in (scope.casefold(), scope.casefold().rstrip("s")):
            return scope
    raise ValueError(f"unknown category {value!r}; use one of: {', '.join(SCOPES)}")


def item_scopes(kind: str, categories: Sequence[str]) -> tuple[str, ...]:
    """The scopes one item counts in: always ``all``; ``blogs`` for posts; each followed arXiv
    category it is listed in for papers."""
    if kind == "post":
        return ("all", "blogs")
    return ("all", *(c for c in CATEGORIES if c in categories))


def item_day(published: dt.datetime) -> dt.date:
    """The UTC day an item counts on (announcement time for papers, publication for posts)."""
    return published.astimezone(dt.UTC).date()


# --- incremental counting ----------------------------------------------------------------------


def _batched(seq: Sequence[Any], n: int) -> Iterable[Sequence[Any]]:
    for i in range(0, len(seq), n):
        yield seq[i : i + n]


#: ``terms`` column holding the first day (``date.toordinal()``) a term was counted in a scope.
FIRST_COLUMNS: dict[str, str] = {
    "all": "first_all",
    "cs.LG": "first_cs_lg",
    "cs.CV": "first_cs_cv",
    "cs.CL": "first_cs_cl",
    "blogs": "first_blogs",
}


def pack_counts(ids: np.ndarray, dfs: np.ndarray) -> bytes:
    """The ``term_counts.data`` of sorted unique term ids and their dfs: zlib of little-endian
    uint32 id deltas followed by the dfs (small deltas and dfs of 1 compress well)."""
    deltas = np.diff(ids, prepend=0).astype("<u4")
    return zlib.compress(deltas.tobytes() + dfs.astype("<u4").tobytes(), 6)


def unpack_counts(n_terms: int, data: bytes) -> tuple[np.ndarray, np.ndarray]:
    """Sorted term ids and their dfs (int64 arrays) from :func:`pack_counts` output."""
    raw = np.frombuffer(zlib.decompress(data), dtype="<u4")
    return np.cumsum(raw[:n_terms], dtype=np.int64), raw[n_terms:].astype(np.int64)


EMPTY_COUNTS = zlib.compress(b"", 6)


def update_counts(session: Session, item_ids: Iterable[int]) -> int:
    """Add the terms of the given items to the per-day, per-scope document frequencies.

    Idempotent per item: an item already recorded in ``trend_counted`` is skipped, and the
    claim is made with ``INSERT … ON CONFLICT DO NOTHING RETURNING`` in the same transaction as
    the counts, so two concurrent callers never count an item twice (the packed day rows are
    read ``FOR UPDATE`` in key order on PostgreSQL). Unknown ids are ignored. Runs inside the
    caller's transaction (the caller commits). Returns how many items were counted now.

    Cost, for a day of 2,000 papers (~110k distinct terms, ~70k of them never seen before), on
    SQLite on the shared 2-core benchmark VM (``bench/trends.py``): 0.3 s tokenising
    (:func:`extract_terms`), 0.7 s upserting the day's distinct terms into ``terms``
    (:func:`_term_ids`; 1 s on PostgreSQL) and 0.4 s for the rest (reading and claiming the
    items, counting, rewriting one packed row per (scope, day)): about 1.4 s (1.9 s on
    PostgreSQL), against 2.0 s (2.5 s) before 2026-07.
    """
    ids = sorted(set(item_ids))
    if not ids:
        return 0
    conn = session.connection()
    claim = (
        insert(conn, TrendCounted.__table__)
        .on_conflict_do_nothing(index_elements=["item_id"])
        .returning(TrendCounted.__table__.c.item_id)
    )
    term_df: dict[tuple[str, dt.date], Counter[str]] = defaultdict(Counter)
    totals: Counter[tuple[str, dt.date]] = Counter()
    counted = 0
    for chunk in _batched(ids, 500):
        rows = conn.execute(
            sa.select(Item.id, Item.kind, Item.title, Item.summary, Item.categories, Item.published).where(
                Item.id.in_(chunk)
            )
        ).all()
        if not rows:
            continue
        days = {r.id: item_day(r.published) for r in rows}
        claimed = set(conn.execute(claim, [{"item_id": i, "day": d} for i, d in days.items()]).scalars())
        for r in rows:
            if r.id not in claimed:
                continue
            counted += 1
            day = days[r.id]
            terms = extract_terms(item_text(r.title, r.summary or ""))
            for scope in item_scopes(r.kind, r.categories or ()):
                totals[scope, day] += 1
                term_df[scope, day].update(terms)
    if not counted:
        return 0
    term_id: dict[str, int] = {}
    for day in sorted({d for _, d in term_df}):
        masks: dict[str, int] = dict.fromkeys(term_df.get(("all", day), ()), 1)  # "all" has every term
        for j, scope in enumerate(SCOPES[1:], 1):
            for term in term_df.get((scope, day), ()):
                masks[term] = masks.get(term, 0) | 1 << j
        term_id.update(_term_ids(conn, day, masks))
    _add_counts(conn, term_df, totals, term_id)
    return counted


def _add_counts(
    conn: sa.Connection,
    term_df: dict[tuple[str, dt.date], Counter[str]],
    totals: Counter[tuple[str, dt.date]],
    term_id: dict[str, int],
) -> None:
    """Merge per-(scope, day) term dfs into the store (term ids in ``term_id``): one packed
    ``term_counts`` row per (scope, day), then the day totals."""
    tc: Any = TermCount.__table__
    keys = sorted(term_df)
    # lock the (scope, day) rows in key order: create missing ones, then read them FOR UPDATE
    conn.execute(
        insert(conn, tc).on_conflict_do_nothing(index_elements=["scope", "day"]),
        [{"scope": s, "day": d, "n_terms": 0, "data": EMPTY_COUNTS} for s, d in keys],
    )
    for scope, day in keys:
        row = conn.execute(
            sa.select(tc.c.n_terms, tc.c.data).where(tc.c.scope == scope, tc.c.day == day).with_for_update()
        ).one()
        counter = term_df[scope, day]
        new_ids = np.fromiter(map(term_id.__getitem__, counter), dtype=np.int64, count=len(counter))
        new_dfs = np.fromiter(counter.values(), dtype=np.int64, count=len(counter))
        order = np.argsort(new_ids)
        new_ids, new_dfs = new_ids[order], new_dfs[order]
        if row.n_terms:  # merge with the stored counts of that day
            old_ids, old_dfs = unpack_counts(row.n_terms, row.data)
            all_ids = np.concatenate([old_ids, new_ids])
            uniq, inverse = np.unique(all_ids, return_inverse=True)
            new_dfs = np.bincount(inverse, weights=np.concatenate([old_dfs, new_dfs])).astype(np.int64)
            new_ids = uniq
        conn.execute(
            sa.update(tc)
            .where(tc.c.scope == scope, tc.c.day == day)
            .values(n_terms=len(new_ids), data=pack_counts(new_ids, new_dfs))
        )
    dtt = DayTotal.__table__
    stmt2 = insert(conn, dtt)
    stmt2 = stmt2.on_conflict_do_update(
        index_elements=["scope", "day"], set_={"n_docs": dtt.c.n_docs + stmt2.excluded.n_docs}
    )
    conn.execute(stmt2, [{"scope": s, "day": d, "n_docs": n} for (s, d), n in sorted(totals.items())])


_FIRST = [FIRST_COLUMNS[s] for s in SCOPES]
_LOWER = ", ".join(
    f"{c} = CASE WHEN excluded.{c} < terms.{c} OR terms.{c} IS NULL THEN coalesce(excluded.{c}, "
    f"terms.{c}) ELSE terms.{c} END"
    for c in _FIRST
)
_CHANGED = " OR ".join(
    f"excluded.{c} < terms.{c} OR (terms.{c} IS NULL AND excluded.{c} IS NOT NULL)" for c in _FIRST
)


def _term_ids(conn: sa.Connection, day: dt.date, masks: dict[str, int]) -> dict[str, int]:
    """Ids of terms counted on ``day`` (``masks``: term → bit mask of the :data:`SCOPES` it is
    counted in), adding new ones to ``terms`` and lowering each scope's first day to ``day``
    where later or unset.

    The terms go in as one parameter (a JSON array read with ``json_each``) on SQLite, or by
    ``COPY`` into a temporary table on PostgreSQL, then one set-based upsert in term order (so
    concurrent callers lock rows in the same order) returns the ids. On SQLite it updates every
    known row (to the same values when no first day moves), so that it returns them all: a
    rewritten row costs nothing lasting there and is cheaper than looking the ids up again. On
    PostgreSQL, where each update leaves a dead row version, only rows whose first days move are
    updated and one indexed look-up finds the ids of the others. For a day of 2,000 papers
    (~110k terms, ~70k new) about 0.55 s on SQLite and 1 s on PostgreSQL, most of it inserting
    the new terms into the unique index on ``terms.term`` (inserting those 70k rows alone takes
    0.3 s on SQLite, 0.55 s on PostgreSQL)."""
    if not masks:
        return {}
    postgres = conn.dialect.name == "postgresql"
    o = int(day.toordinal())  # an int, safe to inline
    values = ", ".join(f"CASE WHEN m & {1 << j} <> 0 THEN {o} END" for j in range(len(_FIRST)))
    raw: Any = conn.connection.driver_connection
    params: tuple[Any, ...]
    cur = raw.cursor()
    try:
        if postgres:
            cur.execute(
                "CREATE TEMP TABLE IF NOT EXISTS trend_batch_terms (term TEXT, m INTEGER) ON COMMIT DROP"
            )
            cur.execute("TRUNCATE trend_batch_terms")
            with cur.copy("COPY trend_batch_terms (term, m) FROM STDIN") as copy:
                # COPY text format needs no escaping: terms are [a-z0-9]+ words and single spaces
                copy.write("".join(map("{}\t{}\n".format, masks, masks.values())))
            batch, params = "trend_batch_terms", ()
        else:
            batch = "(SELECT value ->> 0 AS term, value ->> 1 AS m FROM json_each(?))"
            params = (json.dumps(list(masks.items())),)
        only_changed = f" WHERE {_CHANGED}" if postgres else ""
        cur.execute(
            f"INSERT INTO terms (term, {', '.join(_FIRST)}) SELECT term, {values} FROM {batch} b "
            f"WHERE true ORDER BY term ON CONFLICT (term) DO UPDATE SET {_LOWER}{only_changed} "
            "RETURNING term, id",
            params,
        )
        ids: dict[str, int] = dict(cur.fetchall())
        if len(ids) < len(masks):  # (PostgreSQL) the known terms whose first days stayed
            rest = [t for t in masks if t not in ids]
            if postgres:
                cur.execute("SELECT term, id FROM terms WHERE term = ANY(%s)", (rest,))
            else:
                cur.execute(
                    "SELECT t.term, t.id FROM json_each(?) j JOIN terms t ON t.term = j.value",
                    (json.dumps(rest),),
                )
            ids.update(cur.fetchall())
    finally:
        cur.close()
    return ids


def recount(session: Session) -> int:
    """Forget every count and count all items again (for repairs and tests; the service never
    needs it). Returns the number of items counted."""
    for table in (TermCount, DayTotal, TrendCounted, Term):
        session.execute(sa.delete(table))
    ids = list(session.scalars(sa.select(Item.id).order_by(Item.id)))
    return update_counts(session, ids)


# --- detection ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TrendItem:
    """A paper or post behind a trend."""

    id: int
    title: str
    url: str | None
    kind: str  # "paper" | "post"


@dataclass(frozen=True, slots=True)
class DayCount:
    """Items containing the term on one UTC day (``count``) of the ``total`` items counted that day."""

    date: dt.date
    count: int
    total: int


@dataclass(frozen=True, slots=True)
class TrendTerm:
    """One rising term.

    ``term`` is the normalised form (case-folded, singular, hyphens as spaces); ``label`` is
    how to show it (acronyms upper-cased). ``score`` is the rank score (G² × blog-attention
    factor, see the module doc); ``g2`` is Dunning's G² alone. Counts are items (document
    frequency): ``window_count`` of ``window_docs`` window items, ``baseline_count`` of the
    baseline's items; shares are those ratios (0..1); ``lift`` is the smoothed share ratio.
    ``series`` holds one :class:`DayCount` per day with counted items from the baseline start
    to ``end``. ``first_seen`` is the first day the term was counted in the scope; ``is_new``
    when that is no earlier than one window before the window. ``posts`` counts blog posts in
    the window that mention the term or discuss one of its papers. ``examples`` are up to six
    items of the window behind the trend (posts and discussed papers first, then newest).
    ``variants`` are near-duplicates collapsed into this entry. ``p_value`` is the one-sided
    exact p-value of the rise (:func:`rising_p_values`), ``q_value`` its Benjamini–Hochberg
    adjusted value among the report's tested terms (the term is listed because ``q_value`` ≤
    :data:`FDR`); both are None in results stored before they existed.
    """

    term: str
    label: str
    score: float
    g2: float
    window_count: int
    baseline_count: int
    window_share: float
    baseline_share: float
    lift: float
    first_seen: dt.date | None
    is_new: bool
    posts: int = 0
    series: tuple[DayCount, ...] = ()
    examples: tuple[TrendItem, ...] = ()
    variants: tuple[str, ...] = ()
    p_value: float | None = None
    q_value: float | None = None


@dataclass(frozen=True, slots=True)
class TrendReport:
    """The rising terms (``terms``, best first) and brand-new terms (``new_terms``) of one scope
    for the ``window_days`` days ending ``end`` (inclusive, UTC) against the ``baseline_days``
    days before them. ``tested`` is how many terms were tested (the false-discovery-rate family,
    see the module doc; 0 in results stored before it existed)."""

    scope: str
    end: dt.date
    window_days: int
    baseline_days: int
    window_docs: int
    baseline_docs: int
    computed_at: dt.datetime
    terms: tuple[TrendTerm, ...] = ()
    new_terms: tuple[TrendTerm, ...] = ()
    tested: int = 0

    @property
    def window_start(self) -> dt.date:
        return self.end - dt.timedelta(days=self.window_days - 1)

    def to_json(self) -> dict[str, Any]:
        def enc(value: Any) -> Any:
            if isinstance(value, dt.datetime | dt.date):
                return value.isoformat()
            if isinstance(value, list | tuple):
                return [enc(v) for v in value]
            if isinstance(value, dict):
                return {k: enc(v) for k, v in value.items()}
            return value

        return enc(dataclasses.asdict(self))  # type: ignore[no-any-return]

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> TrendReport:
        def term(d: dict[str, Any]) -> TrendTerm:
            return TrendTerm(
                **{
                    **d,
                    "first_seen": dt.date.fromisoformat(d["first_seen"]) if d["first_seen"] else None,
                    "series": tuple(
                        DayCount(dt.date.fromisoformat(s["date"]), s["count"], s["total"])
                        for s in d["series"]
                    ),
                    "examples": tuple(TrendItem(**e) for e in d["examples"]),
                    "variants": tuple(d["variants"]),
                }
            )

        return cls(
            scope=data["scope"],
            end=dt.date.fromisoformat(data["end"]),
            window_days=data["window_days"],
            baseline_days=data["baseline_days"],
            window_docs=data["window_docs"],
            baseline_docs=data["baseline_docs"],
            computed_at=dt.datetime.fromisoformat(data["computed_at"]),
            terms=tuple(term(t) for t in data["terms"]),
            new_terms=tuple(term(t) for t in data["new_terms"]),
            tested=data.get("tested", 0),
        )


def log_likelihood_g2(a: np.ndarray, b: np.ndarray, n1: int, n2: int) -> np.ndarray:
    """Dunning's G² (Dunning 1993) for each term: ``a`` of ``n1`` window items and ``b`` of
    ``n2`` baseline items contain it. Arrays of equal shape (float64); returns G² ≥ 0, same
    shape. G² = 2 Σ O·ln(O/E) over the 2×2 contingency table; terms with O = 0 add nothing."""
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    obs = np.stack([a, b, n1 - a, n2 - b])
    total = float(n1 + n2)
    row_term = a + b
    row_rest = total - row_term
    exp = np.stack(
        [row_term * n1 / total, row_term * n2 / total, row_rest * n1 / total, row_rest * n2 / total]
    )
    with np.errstate(divide="ignore", invalid="ignore"):
        parts = np.where(obs > 0, obs * np.log(obs / exp), 0.0)
    return np.maximum(2.0 * parts.sum(axis=0), 0.0)


def rising_p_values(a: np.ndarray, b: np.ndarray, n1: int, n2: int) -> np.ndarray:
    """One-sided exact p-values that each term's share rose: ``a`` of ``n1`` window items and
    ``b`` of ``n2`` baseline items contain it (integer arrays of equal shape; returns float64
    in (0, 1], same shape). Conditional on the ``k = a + b`` items that contain the term, an
    unchanged share makes ``a`` Binomial(k, n1 / (n1 + n2)); the p-value is P(X ≥ a) (the
    conditional test of two rates, Przyborowski & Wilenski 1940, "Homogeneity of results in
    testing samples from Poisson series", Biometrika 31). It is Fisher's exact test without the
    finite-population correction, and never below Fisher's one-sided p for ``a`` ≥ 2 (checked
    on random tables; tested terms have ``a`` ≥ 5): slightly conservative. Unlike the χ²
    approximation of G², it is exact at the counts of 5–20 items most rising terms have, where
    the approximation understates p three- to tenfold."""
    from scipy.special import bdtrc  # scipy.special only (0.3 s to import, not scipy.stats)

    a = np.asarray(a, dtype=np.int64)
    k = a + np.asarray(b, dtype=np.int64)
    if n1 + n2 == 0:
        return np.ones(a.shape)
    p = bdtrc(np.maximum(a - 1, 0), k, n1 / (n1 + n2))
    return np.where(a > 0, np.clip(p, 0.0, 1.0), 1.0)


def fdr_select(p: np.ndarray, p_min: np.ndarray, alpha: float = FDR) -> tuple[np.ndarray, np.ndarray, int]:
    """Which hypotheses to reject at false discovery rate ``alpha``: the Benjamini–Hochberg
    step-up procedure (Benjamini & Hochberg 1995, JRSS B 57) over the testable hypotheses only,
    as Gilbert (2005, "A modified false discovery rate multiple-comparisons procedure for
    discrete data", JRSS C 54) does after Tarone (1990, Biometrics 46): ``p_min`` is each
    hypothesis' smallest attainable p-value (discrete tests: a term in few items can never reach
    a small p), ``k`` the smallest number with at most ``k`` hypotheses having ``p_min < alpha /
    k``, and only those are tested. ``p`` and ``p_min`` are float arrays of one shape. Returns
    (rejected: bool array, q: BH-adjusted p-values, 1.0 for hypotheses not tested, number tested).
    """
    n = len(p)
    q = np.ones(n)
    if n == 0:
        return np.zeros(0, dtype=bool), q, 0
    order = np.sort(p_min)
    ks = np.arange(1, n + 1)
    fits = np.flatnonzero(np.searchsorted(order, alpha / ks, side="left") <= ks)
    k = int(ks[fits[0]]) if len(fits) else n
    tested = np.flatnonzero(p_min < alpha / k)
    m = len(tested)
    if m == 0:
        return np.zeros(n, dtype=bool), q, 0
    pt = p[tested]
    rank = np.argsort(pt, kind="stable")
    adjusted = pt[rank] * m / np.arange(1, m + 1)
    adjusted = np.minimum(np.minimum.accumulate(adjusted[::-1])[::-1], 1.0)
    q[tested[rank]] = adjusted
    return q <= alpha, q, m


def min_support(window_docs: int) -> int:
    """Minimum window document frequency for a term to be considered: 5 items or 0.3 % of the
    window's items, whichever is larger."""
    return max(5, math.ceil(0.003 * window_docs))


def latest_day(session: Session, today: dt.date | None = None) -> dt.date | None:
    """The latest UTC day with counted items no later than ``today`` (default: today)."""
    today = today or dt.datetime.now(dt.UTC).date()
    return session.scalar(
        sa.select(sa.func.max(DayTotal.day)).where(DayTotal.scope == "all", DayTotal.day <= today)
    )


@dataclass(slots=True)
class _Cand:
    term: str
    a: int
    b: int
    g2: float
    lift: float
    first_seen: dt.date | None
    is_new: bool
    score: float = 0.0
    posts: int = 0
    examples: list[TrendItem] = field(default_factory=list)
    variants: list[str] = field(default_factory=list)
    term_id: int = 0
    p: float = 1.0
    q: float = 1.0

    @property
    def tokens(self) -> tuple[str, ...]:
        return tuple(self.term.split())


def _contains(longer: tuple[str, ...], shorter: tuple[str, ...]) -> bool:
    """``shorter`` is a contiguous part of ``longer``, or an acronym of it (``ner`` of
    ``named entity recognition``)."""
    n = len(shorter)
    if n == 1 and len(longer) >= 2 and shorter[0] == "".join(t[0] for t in longer):
        return True
    return len(longer) > n and any(longer[i : i + n] == shorter for i in range(len(longer) - n + 1))


def collapse(cands: Sequence[_Cand]) -> list[_Cand]:
    """Collapse phrase/part near-duplicates in a ranked list (best first): a part merges into a
    phrase containing it when the phrase has at least half of the part's window items (the
    phrase is kept, phrases are preferred over their parts); otherwise both stay."""
    kept: list[_Cand] = []
    for c in cands:
        merged = False
        for i, k in enumerate(kept):
            if _contains(k.tokens, c.tokens) and k.a >= 0.5 * c.a:
                k.variants.append(c.term)
                merged = True
            elif _contains(c.tokens, k.tokens) and c.a >= 0.5 * k.a:
                c.variants.extend([k.term, *k.variants])
                c.score = max(c.score, k.score)
                kept[i] = c
                merged = True
            if merged:
                break
        if not merged:
            kept.append(c)
    # a phrase that replaced a part may now duplicate another kept entry
    out: list[_Cand] = []
    for c in kept:
        if any(c.term == o.term for o in out):
            continue
        out.append(c)
    return out


def compute_report(
    session: Session,
    *,
    end: dt.date,
    window_days: int = DEFAULT_WINDOW_DAYS,
    baseline_days: int = DEFAULT_BASELINE_DAYS,
    scope: str = "all",
    limit: int = STORED_LIMIT,
    now: dt.datetime | None = None,
) -> TrendReport:
    """Compute the rising and brand-new terms of ``scope`` for the ``window_days`` UTC days
    ending ``end`` (inclusive) against the ``baseline_days`` days before them (see the module
    doc for the statistic). Reads the packed ``term_counts`` rows of those days only, ``terms``
    for the terms in enough items to be tested, and the window's items; does not write.
    Raises ``ValueError`` for an unknown scope or non-positive day counts."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; one of {', '.join(SCOPES)}")
    if window_days < 1 or baseline_days < 1:
        raise ValueError("window and baseline must be at least one day")
    return _compute(session, scope, end, window_days, baseline_days, limit, now, None)


def _compute(
    session: Session,
    scope: str,
    end: dt.date,
    window_days: int,
    baseline_days: int,
    limit: int,
    now: dt.datetime | None,
    items: _WindowItems | None,
) -> TrendReport:
    now = now or dt.datetime.now(dt.UTC)
    ws = end - dt.timedelta(days=window_days - 1)
    bs = ws - dt.timedelta(days=baseline_days)
    day_rows = session.execute(
        sa.select(DayTotal.day, DayTotal.n_docs).where(
            DayTotal.scope == scope, DayTotal.day >= bs, DayTotal.day <= end
        )
    ).all()
    day_totals = {d: n for d, n in day_rows}
    n1 = sum(n for d, n in day_totals.items() if d >= ws)
    n2 = sum(n for d, n in day_totals.items() if d < ws)
    empty = TrendReport(scope, end, window_days, baseline_days, n1, n2, now)
    if n1 == 0:
        return empty
    support = min_support(n1)
    # one read of the window + baseline days' packed rows (primary key range scope, day)
    tc: Any = TermCount.__table__
    per_day: dict[dt.date, tuple[np.ndarray, np.ndarray]] = {}
    for day, n_terms, data in session.execute(
        sa.select(tc.c.day, tc.c.n_terms, tc.c.data).where(
            tc.c.scope == scope, tc.c.day >= bs, tc.c.day <= end
        )
    ):
        per_day[day] = unpack_counts(n_terms, data)
    win_days = [v for d, v in per_day.items() if d >= ws and len(v[0])]
    if not win_days:
        return empty
    # window dfs and days of every term in the window (sparse: ids are not dense over time)
    ids, inverse = np.unique(np.concatenate([i for i, _ in win_days]), return_inverse=True)
    a_all = np.bincount(inverse, weights=np.concatenate([f for _, f in win_days])).astype(np.int64)
    days_all = np.bincount(inverse)
    # baseline dfs of those terms: one binary search of each baseline day's sorted ids
    b_all = np.zeros(len(ids), np.int64)
    for d, (day_ids, day_dfs) in per_day.items():
        if d < ws and len(day_ids):
            pos = np.minimum(np.searchsorted(ids, day_ids), len(ids) - 1)
            hit = ids[pos] == day_ids
            b_all[pos[hit]] += day_dfs[hit]
    # terms in enough items to be tested at all (a + b ≥ support; all have a ≥ 1)
    idx = np.flatnonzero(a_all + b_all >= support)
    if not len(idx):
        return empty
    names = _term_rows(session, scope, ids[idx])
    items = items or _WindowItems(session, ws, end)
    win = items.view(scope)
    # testable: phrases, and single words that are coined names or acronyms
    reportable = np.fromiter(
        (" " in (t := names[int(i)][0]) or win.is_name(t) for i in ids[idx]), dtype=bool, count=len(idx)
    )
    idx = idx[reportable]
    a = a_all[idx]
    b = b_all[idx]
    lift = ((a + 0.5) / (n1 + 1)) / ((b + 0.5) / (n2 + 1))
    eligible = (a >= support) & (days_all[idx] >= 2) & (lift >= MIN_LIFT) & (a * n2 > b * n1)
    p = np.ones(len(idx))
    p[eligible] = rising_p_values(a[eligible], b[eligible], n1, n2)
    p_min = (n1 / (n1 + n2)) ** (a + b).astype(np.float64)  # all K items in the window
    rejected, q, tested = fdr_select(p, p_min, FDR)
    empty = dataclasses.replace(empty, tested=tested)
    kept = np.flatnonzero(rejected)
    if not len(kept):
        return empty
    g2 = log_likelihood_g2(a[kept], b[kept], n1, max(n2, 0))
    new_since = ws - dt.timedelta(days=window_days)
    cands: list[_Cand] = []
    for j, i in enumerate(kept):
        term_id = int(ids[idx[i]])
        term, first_ord = names[term_id]
        first_day = dt.date.fromordinal(first_ord) if first_ord else None
        is_new = first_day is not None and first_day >= new_since
        cand = _Cand(term, int(a[i]), int(b[i]), float(g2[j]), float(lift[i]), first_day, is_new)
        cand.term_id, cand.p, cand.q = term_id, float(p[i]), float(q[i])
        cands.append(cand)
    cands.sort(key=lambda c: (-c.g2, c.term))
    # blog attention and examples for the best candidates only
    top = cands[: max(3 * limit, 60)]
    top_ids = {id(c) for c in top}
    top += [c for c in cands if c.is_new and id(c) not in top_ids][: 2 * limit]
    win.attach_examples(top)
    for c in top:
        c.score = c.g2 * (1.0 + 0.5 * math.log1p(c.posts))
    top.sort(key=lambda c: (-c.score, c.term))
    rising = collapse([c for c in top])[:limit]
    new = collapse([c for c in top if c.is_new])[:limit]
    series = _series({c.term: c.term_id for c in rising + new}, per_day, day_totals)

    def out(c: _Cand) -> TrendTerm:
        return TrendTerm(
            term=c.term,
            label=win.label(c.term),
            score=round(c.score, 3),
            g2=round(c.g2, 3),
            window_count=c.a,
            baseline_count=c.b,
            window_share=round(c.a / n1, 6),
            baseline_share=round(c.b / n2, 6) if n2 else 0.0,
            lift=round(c.lift, 3),
            first_seen=c.first_seen,
            is_new=c.is_new,
            posts=c.posts,
            series=series.get(c.term, ()),
            examples=tuple(c.examples[:MAX_EXAMPLES]),
            variants=tuple(dict.fromkeys(c.variants)),
            p_value=float(f"{c.p:.3g}"),
            q_value=float(f"{c.q:.3g}"),
        )

    return dataclasses.replace(empty, terms=tuple(map(out, rising)), new_terms=tuple(map(out, new)))


def _term_rows(session: Session, scope: str, ids: np.ndarray) -> dict[int, tuple[str, int | None]]:
    """Term text and first day in ``scope`` (``date.toordinal()`` or None) by term id: one
    indexed look-up per 100,000 ids (a JSON array on SQLite, an array parameter on PostgreSQL),
    fetched through the driver's cursor (tens of thousands of rows for a large window)."""
    conn = session.connection()
    postgres = conn.dialect.name == "postgresql"
    first = FIRST_COLUMNS[scope]
    out: dict[int, tuple[str, int | None]] = {}
    cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        for part in _batched([int(i) for i in ids], 100_000):
            if postgres:
                cur.execute(f"SELECT id, term, {first} FROM terms WHERE id = ANY(%s)", (list(part),))
            else:
                cur.execute(
                    f"SELECT t.id, t.term, t.{first} FROM json_each(?) j JOIN terms t ON t.id = j.value",
                    (json.dumps(list(part)),),
                )
            out.update((term_id, (term, day)) for term_id, term, day in cur.fetchall())
    finally:
        cur.close()
    return out


def _series(
    term_ids: dict[str, int],
    per_day: dict[dt.date, tuple[np.ndarray, np.ndarray]],
    day_totals: dict[dt.date, int],
) -> dict[str, tuple[DayCount, ...]]:
    days = sorted(d for d, n in day_totals.items() if n > 0)
    wanted = np.array(sorted(set(term_ids.values())), dtype=np.int64)
    counts: dict[int, dict[dt.date, int]] = defaultdict(dict)
    for day in days:
        ids, dfs = per_day.get(day, (np.zeros(0, np.int64), np.zeros(0, np.int64)))
        pos = np.searchsorted(ids, wanted)
        for k, j in enumerate(pos):
            if j < len(ids) and ids[j] == wanted[k]:
                counts[int(wanted[k])][day] = int(dfs[j])
    return {
        t: tuple(DayCount(d, counts[i].get(d, 0), day_totals[d]) for d in days)
        for t, i in sorted(term_ids.items())
    }


class _WindowItems:
    """The items published in a window (every scope), read once and shared by the scopes'
    reports of one refresh: their post links, token case statistics (for labels and coined
    names) and, lazily, their normalised texts (for examples and blog attention)."""

    def __init__(self, session: Session, start: dt.date, end: dt.date) -> None:
        lo = dt.datetime.combine(start, dt.time(0), dt.UTC)
        hi = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(0), dt.UTC)
        self.rows: list[Any] = list(
            session.execute(
                sa.select(
                    Item.id, Item.kind, Item.title, Item.url, Item.summary, Item.categories, Item.published
                ).where(Item.published >= lo, Item.published < hi)
            )
        )
        self.scopes = [frozenset(item_scopes(r.kind, r.categories or ())) for r in self.rows]
        self.linked: dict[int, set[int]] = defaultdict(set)
        paper_ids = [r.id for r in self.rows if r.kind == "paper"]
        for part in _batched(paper_ids, 500):
            for post_id, paper_id in session.execute(
                sa.select(ItemLink.post_id, ItemLink.paper_id).where(ItemLink.paper_id.in_(part))
            ):
                self.linked[paper_id].add(post_id)
        self._texts: dict[int, str] = {}
        self._raw: dict[frozenset[str], Counter[str]] | None = None
        self._forms: dict[str, list[str]] = {}

    def text(self, i: int) -> str:
        """Row ``i``'s normalised tokens, space-separated with ``|`` between runs and a space at
        both ends, so ``f" {term} "`` is found exactly where the term was counted."""
        text = self._texts.get(i)
        if text is None:
            r = self.rows[i]
            text = self._texts[i] = f" {' '.join(_tokens(item_text(r.title, r.summary or '')))} "
        return text

    def raw_counts(self) -> tuple[dict[frozenset[str], Counter[str]], dict[str, list[str]]]:
        """Occurrences of each raw token (``[A-Za-z0-9]+``, case kept) per group of rows with the
        same scopes, and the raw forms of each normalised token written in upper case: one
        regex pass and one C-level count per group, so per-scope case statistics need no pass
        over the texts."""
        if self._raw is None:
            texts: dict[frozenset[str], list[str]] = defaultdict(list)
            for r, scopes in zip(self.rows, self.scopes, strict=True):
                texts[scopes].append(item_text(r.title, r.summary or ""))
            self._raw = {g: Counter(_RAW_TOKEN.findall("\n".join(t))) for g, t in texts.items()}
            forms: dict[str, list[str]] = defaultdict(list)
            for raw in set().union(*self._raw.values()):
                token = _NORMAL[raw.lower()]
                if token != _BREAK:
                    forms[token].append(raw)
            # only tokens written all-caps or with an upper-case letter after the first somewhere
            # can be labelled upper-case or count as names ("The" is neither)
            self._forms = {
                t: f for t, f in forms.items() if any(r.isupper() or r[1:] != r[1:].lower() for r in f)
            }
        return self._raw, self._forms

    def view(self, scope: str) -> _Window:
        order = sorted(
            (i for i, scopes in enumerate(self.scopes) if scope in scopes),
            key=lambda i: (
                self.rows[i].kind != "post",
                -len(self.linked.get(self.rows[i].id, ())),
                -self.rows[i].published.timestamp(),
            ),
        )
        return _Window(self, scope, order)


class _Window:
    """The window's items of one scope (a view of :class:`_WindowItems`): labels, coined-name
    test, examples and blog attention."""

    def __init__(self, items: _WindowItems, scope: str, order: list[int]) -> None:
        self.items = items
        self.scope = scope
        self.order = order  # posts, then papers by posts linking them, then newest first
        self._case: dict[str, tuple[int, int, int]] = {}

    def case(self, token: str) -> tuple[int, int, int]:
        """(occurrences, all-caps occurrences, occurrences with an upper-case letter after the
        first) of a normalised token in the scope's window texts; (0, 0, 0) for a token never
        written all-caps or with an upper-case letter after the first (all that labels and names
        need to know)."""
        stats = self._case.get(token)
        if stats is None:
            groups, forms = self.items.raw_counts()
            seen = upper = coined = 0
            if token not in forms:  # never all-caps, never an inner capital
                return (0, 0, 0)
            for group, counts in groups.items():
                if self.scope not in group:
                    continue
                for raw in forms.get(token, ()):
                    n = counts.get(raw, 0)
                    if n:
                        seen += n
                        if raw.isupper() and not raw.isdigit():
                            upper += n
                        if raw[1:] != raw[1:].lower():
                            coined += n
            stats = self._case[token] = (seen, upper, coined)
        return stats

    def label(self, term: str) -> str:
        """``term`` with acronym tokens upper-cased (when most occurrences are all-caps)."""
        out = []
        for w in term.split():
            seen, upper, _ = self.case(w)
            out.append(w.upper() if upper * 2 > seen > 0 else w)
        return " ".join(out)

    def is_name(self, token: str) -> bool:
        """A coined name or acronym: most occurrences have an upper-case letter after the first
        (``GRPO``, ``LoRA``, ``DINOv2``) or a digit (``qwen3``, ``o3``), but not a number with a
        one-letter unit (``3x``, ``7b``, ``4k``, ``3d``: a size or speed-up, not a topic)."""
        if _NUMBER_UNIT.fullmatch(token):
            return False
        if any(ch.isdigit() for ch in token):
            return True
        seen, _, coined = self.case(token)
        return coined * 2 > seen > 0

    def attach_examples(self, cands: Sequence[_Cand]) -> None:
        """Find the window items behind each candidate (``examples``, ``posts``) by matching the
        normalised runs of their texts. Posts and papers linked from posts are all checked (they
        make ``posts``); other papers only until six examples are found."""
        rows, linked = self.items.rows, self.items.linked
        for c in cands:
            needle = f" {c.term} "
            posts: set[int] = set()
            for i in self.order:
                r = rows[i]
                links = linked.get(r.id)
                if r.kind != "post" and not links and len(c.examples) >= MAX_EXAMPLES:
                    break  # only unlinked papers remain: they add no posts
                if needle not in self.items.text(i):
                    continue
                if r.kind == "post":
                    posts.add(r.id)
                if links:
                    posts |= links
                if len(c.examples) < MAX_EXAMPLES:
                    c.examples.append(TrendItem(r.id, r.title, r.url, r.kind))
            c.posts = len(posts)


# --- stored results ----------------------------------------------------------------------------


def store_report(
    session: Session, report: TrendReport, *, latest: bool = False, inputs: str | None = None
) -> None:
    """Save a report in ``trend_results`` (replacing one with the same key); with ``latest``
    it becomes the one served when no end day is asked for. ``inputs`` is the digest of what it
    was computed from (:func:`refresh_results`)."""
    key = (report.scope, report.window_days, report.baseline_days)
    if latest:
        session.execute(
            sa.update(TrendResult)
            .where(
                TrendResult.scope == key[0],
                TrendResult.window_days == key[1],
                TrendResult.baseline_days == key[2],
                TrendResult.is_latest.is_(True),
                TrendResult.end_day != report.end,
            )
            .values(is_latest=False)
        )
    row = session.get(TrendResult, (*key, report.end))
    if row is None:
        row = TrendResult(scope=key[0], window_days=key[1], baseline_days=key[2], end_day=report.end)
        session.add(row)
    row.is_latest = latest or bool(row.is_latest)
    row.computed_at = report.computed_at
    row.payload = report.to_json()
    row.inputs = inputs
    session.flush()


#: Part of every result's inputs digest: changed whenever detection changes, so that stored
#: results are recomputed by the next refresh.
DETECTION_VERSION = "2026-07 exact test, BH FDR over the testable terms"


def _inputs(
    session: Session, end: dt.date, window_days: int, baseline_days: int, scopes: Sequence[str]
) -> dict[str, str]:
    """A digest per scope of everything its result depends on: the scope's day totals over the
    window and baseline (counts only grow with counted items, so equal totals mean equal counts),
    the number and last update of the window's posts (``all``, ``blogs``) or papers (``all``,
    the categories), the number and last creation of paper-post links (not ``blogs``: posts
    there count themselves), :data:`DETECTION_VERSION` and the parameters. Three small queries
    for all scopes."""
    ws = end - dt.timedelta(days=window_days - 1)
    bs = ws - dt.timedelta(days=baseline_days)
    totals: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for scope, day, n in session.execute(
        sa.select(DayTotal.scope, DayTotal.day, DayTotal.n_docs)
        .where(DayTotal.day >= bs, DayTotal.day <= end)
        .order_by(DayTotal.scope, DayTotal.day)
    ):
        totals[scope].append((day.isoformat(), n))
    links = tuple(session.execute(sa.select(sa.func.count(), sa.func.max(ItemLink.created_at))).one())
    lo = dt.datetime.combine(ws, dt.time(0), dt.UTC)
    hi = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(0), dt.UTC)
    items = {
        kind: (n, last)
        for kind, n, last in session.execute(
            sa.select(Item.kind, sa.func.count(), sa.func.max(Item.updated_at))
            .where(Item.published >= lo, Item.published < hi)
            .group_by(Item.kind)
        )
    }
    common = (DETECTION_VERSION, FDR, STORED_LIMIT, end.isoformat(), window_days, baseline_days)
    out = {}
    for scope in scopes:
        kinds = {"all": ("paper", "post"), "blogs": ("post",)}.get(scope, ("paper",))
        parts = (
            *common,
            scope,
            totals.get(scope, []),
            [items.get(k) for k in kinds],
            None if scope == "blogs" else links,
        )
        out[scope] = hashlib.sha256(repr(parts).encode()).hexdigest()
    return out


def refresh_results(
    session: Session,
    *,
    end: dt.date | None = None,
    window_days: int = DEFAULT_WINDOW_DAYS,
    baseline_days: int = DEFAULT_BASELINE_DAYS,
    scopes: Sequence[str] = SCOPES,
    now: dt.datetime | None = None,
) -> list[TrendReport]:
    """Compute and store the results of every scope for the window ending ``end`` (default:
    the latest day with counted items), marked as the latest. Returns the reports.

    Cheap after every ingest: a scope whose latest stored result for that window has the same
    inputs digest (:func:`_inputs`: day totals, links, window items, detection version) is kept
    as it is (a blog-only ingest leaves the three arXiv categories alone, a repeated one
    everything); the others are computed with the window's items read once and shared.
    Raises ``ValueError`` for an unknown scope or non-positive day counts."""
    end = end or latest_day(session)
    if end is None:
        return []
    unknown = [s for s in scopes if s not in SCOPES]
    if unknown:
        raise ValueError(f"unknown scope {unknown[0]!r}; one of {', '.join(SCOPES)}")
    if window_days < 1 or baseline_days < 1:
        raise ValueError("window and baseline must be at least one day")
    digests = _inputs(session, end, window_days, baseline_days, scopes)
    items: _WindowItems | None = None
    reports = []
    for scope in scopes:
        row = session.get(TrendResult, (scope, window_days, baseline_days, end))
        if row is not None and row.is_latest and row.inputs == digests[scope]:
            reports.append(TrendReport.from_json(row.payload))  # unchanged since computed
            continue
        # the window's items are read (and tokenised for examples) once for all scopes
        items = items or _WindowItems(session, end - dt.timedelta(days=window_days - 1), end)
        report = _compute(session, scope, end, window_days, baseline_days, STORED_LIMIT, now, items)
        store_report(session, report, latest=True, inputs=digests[scope])
        reports.append(report)
    return reports


def stored_payload(
    session: Session,
    *,
    scope: str = "all",
    window_days: int = DEFAULT_WINDOW_DAYS,
    baseline_days: int = DEFAULT_BASELINE_DAYS,
    end: dt.date | None = None,
) -> dict[str, Any] | None:
    """The stored JSON of a report (:meth:`TrendReport.to_json` shape) for the key, the latest
    one when ``end`` is None; None when not stored. One primary-key or small-index read."""
    q = sa.select(TrendResult.payload).where(
        TrendResult.scope == scope,
        TrendResult.window_days == window_days,
        TrendResult.baseline_days == baseline_days,
    )
    q = q.where(TrendResult.is_latest.is_(True)) if end is None else q.where(TrendResult.end_day == end)
    return session.scalar(q.order_by(TrendResult.end_day.desc()).limit(1))


def stored_report(
    session: Session,
    *,
    scope: str = "all",
    window_days: int = DEFAULT_WINDOW_DAYS,
    baseline_days: int = DEFAULT_BASELINE_DAYS,
    end: dt.date | None = None,
) -> TrendReport | None:
    """The stored report for the key (the latest one when ``end`` is None), or None."""
    payload = stored_payload(
        session, scope=scope, window_days=window_days, baseline_days=baseline_days, end=end
    )
    return None if payload is None else TrendReport.from_json(payload)


def get_report(
    session: Session,
    *,
    scope: str = "all",
    window_days: int = DEFAULT_WINDOW_DAYS,
    baseline_days: int = DEFAULT_BASELINE_DAYS,
    end: dt.date | None = None,
) -> TrendReport | None:
    """A stored report, or (for a window/baseline/end not precomputed) one computed now and
    stored as a cache. None when nothing has been counted yet."""
    report = stored_report(
        session, scope=scope, window_days=window_days, baseline_days=baseline_days, end=end
    )
    if report is not None:
        return report
    day = end or latest_day(session)
    if day is None:
        return None
    report = compute_report(
        session, end=day, window_days=window_days, baseline_days=baseline_days, scope=scope
    )
    store_report(session, report, latest=end is None)
    session.commit()
    return report


def top_rising(
    session: Session,
    *,
    end: dt.date,
    window_days: int = DEFAULT_WINDOW_DAYS,
    baseline_days: int = DEFAULT_BASELINE_DAYS,
    scope: str = "all",
    limit: int = 10,
) -> list[TrendTerm]:
    """The ``limit`` best rising terms of ``scope`` for the ``window_days`` UTC days ending
    ``end`` (inclusive) against the ``baseline_days`` days before (chosen at :data:`FDR`, ranked
    by Dunning's G² and blog attention, see the module doc), best first; possibly none. For the
    weekly email. Reads the stored result for that end day when there is one, else computes it
    (a few hundred ms on a month of arXiv) without storing. Raises ``ValueError`` for an
    unknown scope."""
    report = stored_report(
        session, scope=scope, window_days=window_days, baseline_days=baseline_days, end=end
    )
    if report is None:
        report = compute_report(
            session, end=end, window_days=window_days, baseline_days=baseline_days, scope=scope, limit=limit
        )
    return list(report.terms[:limit])
