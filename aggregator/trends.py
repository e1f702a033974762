"""Trend monitoring: which normalised terms are rising, per scope, and how fast.

Counting. Every item is counted once (``trend_counted``) into ``term_counts``: the document
frequency (df, items that contain the term at least once) of each normalised term per UTC day
and per scope, plus ``trend_day_totals`` (items per day and scope, the share denominator).
Terms get integer ids in ``terms`` (which also keeps each term's first day per scope); the dfs
of one (scope, day) are stored packed in one row (:func:`pack_counts`: sorted ids and dfs,
zlib), because a day of 2,000 papers has ~270k distinct (scope, term) pairs, 84 % with df 1.
Scopes are ``all``, the followed arXiv categories ``cs.LG``, ``cs.CV``, ``cs.CL`` (a cross-listed
paper counts in each of its followed categories, once in ``all``) and ``blogs`` (posts). The
counts are updated incrementally after each ingest (:func:`update_counts`), never by recounting.

Terms. Title and abstract (or post summary) are case-folded; hyphens and slashes between word
characters become spaces ("vision-language-action" → ``vision language action``); a plural
last letter is dropped by a light rule (``llms`` → ``llm``, ``policies`` → ``policy``). English
stop words (scikit-learn's list), a domain stop-list of paper boilerplate ("propose", "novel",
"results", "state of the art" …), numbers and one-letter tokens split the text into runs; terms
are the 1- to 3-grams inside a run, so a phrase never spans a stop word or punctuation; a
unigram of a generic word (:data:`WEAK_WORDS`: "model", "data" …) is not a term. Acronyms
survive as case-folded tokens (``grpo``, ``rlvr``, ``vla``); labels shown to readers restore
the upper case when the texts mostly write the token that way.

Detection. For a window W (e.g. 7 days ending ``end``) and the baseline B before it (e.g. 56
days), a term with window df ``a`` of ``N1`` window items and baseline df ``b`` of ``N2`` is
scored with Dunning's log-likelihood ratio G² on the 2×2 table (Dunning 1993, "Accurate methods
for the statistics of surprise and coincidence", Computational Linguistics 19(1)). Shares, not
counts, are compared, so days with few items and the sampled history before June 2026 do not
bias the result. A term is rising when G² ≥ 10.83 (p < 0.001, 1 degree of freedom), its smoothed
share ratio ``lift = ((a+½)/(N1+1)) / ((b+½)/(N2+1))`` ≥ 1.5, it has minimum support (``a`` ≥
``max(5, 0.3 % of N1)`` items, on ≥ 2 days of the window) and its window share is higher. The
rank score is G² × (1 + ½·ln(1 + posts)), where posts counts blog posts in the window that
mention the term or discuss one of its papers (blog attention as a signal). A single word
is reported only when it is a coined name or acronym (mostly written with an inner capital or
all-caps, or with a digit: ``GRPO``, ``LoRA``, ``qwen3``); plain words trend as phrases. A term
first seen no earlier than one window before the window is flagged ``is_new`` and listed
separately too (with sampled history, "first seen" means first seen in the stored data).
Near-duplicates are collapsed: plural and singular are one term already; a phrase and a part of
it (``diffusion transformer`` / ``diffusion``), or an acronym and its expansion (``ner`` / ``named
entity recognition``), become one entry under the phrase when the phrase accounts for at least
half of the part's window items.

Serving. :func:`refresh_results` computes and stores the default 7 d / 56 d results of every
scope into ``trend_results``; the API only reads them (:func:`stored_report`).
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import math
import re
import zlib
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
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
#: G² critical value for p < 0.001 with one degree of freedom (chi-square table).
G2_CRITICAL = 10.83
MIN_LIFT = 1.5
MAX_N = 3
#: How many ranked terms a stored result keeps (the API's ``limit`` is at most this).
STORED_LIMIT = 50
MAX_EXAMPLES = 6


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


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

_JOINER = re.compile(r"(?<=[a-z0-9])[-‐‑–/](?=[a-z0-9])")
_SPLIT = re.compile(r"[.,;:!?()\[\]{}\"“”‘’<>|=+*&$%#@\\~^`_]+|\s[-–—']+\s|'\s|\s'")
_TOKEN = re.compile(r"[a-z0-9]+")
_RAW_TOKEN = re.compile(r"[A-Za-z0-9]+")


@functools.cache
def _stop_words() -> frozenset[str]:
    from sklearn.feature_extraction.text import ENGLISH_STOP_WORDS  # loaded on first use only

    return frozenset(ENGLISH_STOP_WORDS) | DOMAIN_STOP_WORDS


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


_NORMAL: dict[str, str] = {}  # token → normalised token, "" for a run breaker (a cache)


def _normal(raw: str) -> str:
    token = _NORMAL.get(raw)
    if token is None:
        stop = _stop_words()
        token = singular(raw)
        if len(raw) < 2 or raw.isdigit() or raw in stop or token in stop:
            token = ""
        if len(_NORMAL) < 1_000_000:
            _NORMAL[raw] = token
    return token


def runs(text: str) -> list[list[str]]:
    """Normalised token runs of ``text``: lists of case-folded, singular tokens, split at
    punctuation, stop words (English + :data:`DOMAIN_STOP_WORDS`), numbers and one-letter tokens."""
    out: list[list[str]] = []
    text = _JOINER.sub(" ", text.casefold())
    for chunk in _SPLIT.split(text):
        current: list[str] = []
        for raw in _TOKEN.findall(chunk):
            token = _NORMAL.get(raw)
            if token is None:
                token = _normal(raw)
            if token:
                current.append(token)
            elif current:
                out.append(current)
                current = []
        if current:
            out.append(current)
    return out


def terms_of_runs(token_runs: Iterable[Sequence[str]], max_n: int = MAX_N) -> set[str]:
    """The distinct 1..``max_n``-grams inside the runs, without unigrams of :data:`WEAK_WORDS`
    and without phrases made only of weak words."""
    found: set[str] = set()
    weak = WEAK_WORDS
    for run in token_runs:
        if len(run) == 1 or max_n == 1:
            found.update(t for t in run if t not in weak)
            continue
        strong = [t not in weak for t in run]
        if all(strong):  # the common case: no weak word, every gram is a term
            found.update(run)
            for n in range(2, min(max_n, len(run)) + 1):
                found.update(map(" ".join, zip(*(run[i:] for i in range(n)), strict=False)))
        else:
            for n in range(1, min(max_n, len(run)) + 1):
                for i in range(len(run) - n + 1):
                    if any(strong[i : i + n]):
                        found.add(" ".join(run[i : i + n]))
    if any(len(t) > 200 for t in found):
        found = {t for t in found if len(t) <= 200}
    return found


def extract_terms(text: str) -> set[str]:
    """The distinct normalised terms (uni-, bi- and trigrams) of one text; see the module doc."""
    return terms_of_runs(runs(text))


def normalise_term(text: str) -> str:
    """A user-typed term in the normalised form the counts use (``"Vision-Language-Action
    models"`` → ``"vision language action model"``); stop words are dropped."""
    return " ".join(t for run in runs(text) for t in run)


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
    Cost: tokenising (about 4,000 items a second), one bulk upsert of the batch's distinct
    terms into ``terms``, and one packed row rewritten per (scope, day) touched.
    """
    ids = sorted(set(item_ids))
    if not ids:
        return 0
    conn = session.connection()
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
        claim = (
            insert(conn, TrendCounted.__table__)
            .on_conflict_do_nothing(index_elements=["item_id"])
            .returning(TrendCounted.__table__.c.item_id)
        )
        claimed: set[int] = set()
        for part in _batched([{"item_id": i, "day": d} for i, d in days.items()], 200):
            claimed.update(conn.execute(claim.values(list(part))).scalars())
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
    _add_counts(conn, term_df, totals)
    return counted


def _add_counts(
    conn: sa.Connection,
    term_df: dict[tuple[str, dt.date], Counter[str]],
    totals: Counter[tuple[str, dt.date]],
) -> None:
    """Merge per-(scope, day) term dfs into the store: term ids and first days, then one
    packed ``term_counts`` row per (scope, day), then the day totals."""
    term_id: dict[str, int] = {}
    for day in sorted({d for _, d in term_df}):
        masks: Counter[str] = Counter()  # term → bit mask of the scopes it is counted in that day
        for j, scope in enumerate(SCOPES):
            if (scope, day) in term_df:
                masks.update(dict.fromkeys(term_df[scope, day], 1 << j))
        term_id.update(_term_ids(conn, day, masks))
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
        old_ids, old_dfs = unpack_counts(row.n_terms, row.data)
        counter = term_df[scope, day]
        new_ids = np.fromiter(map(term_id.__getitem__, counter), dtype=np.int64, count=len(counter))
        new_dfs = np.fromiter(counter.values(), dtype=np.int64, count=len(counter))
        all_ids = np.concatenate([old_ids, new_ids])
        uniq, inverse = np.unique(all_ids, return_inverse=True)
        dfs = np.bincount(inverse, weights=np.concatenate([old_dfs, new_dfs])).astype(np.int64)
        conn.execute(
            sa.update(tc)
            .where(tc.c.scope == scope, tc.c.day == day)
            .values(n_terms=len(uniq), data=pack_counts(uniq, dfs))
        )
    dtt = DayTotal.__table__
    stmt2 = insert(conn, dtt)
    stmt2 = stmt2.on_conflict_do_update(
        index_elements=["scope", "day"], set_={"n_docs": dtt.c.n_docs + stmt2.excluded.n_docs}
    )
    conn.execute(stmt2, [{"scope": s, "day": d, "n_docs": n} for (s, d), n in sorted(totals.items())])


def _term_ids(conn: sa.Connection, day: dt.date, masks: dict[str, int]) -> dict[str, int]:
    """Ids of the terms counted on ``day`` (``masks``: term → bit mask of the :data:`SCOPES`
    it was counted in), adding new ones to ``terms`` and lowering each scope's first day to
    ``day`` where later or unset. One bulk load into a temporary table (COPY on PostgreSQL),
    one set-based upsert and one join."""
    cols = [FIRST_COLUMNS[s] for s in SCOPES]
    postgres = conn.dialect.name == "postgresql"
    conn.exec_driver_sql(
        "CREATE TEMP TABLE IF NOT EXISTS trend_batch_terms (term VARCHAR(200) PRIMARY KEY, mask INTEGER)"
        + (" ON COMMIT DROP" if postgres else "")
    )
    conn.exec_driver_sql("DELETE FROM trend_batch_terms")
    raw = conn.connection.driver_connection
    if postgres:
        with raw.cursor() as cur, cur.copy("COPY trend_batch_terms FROM STDIN") as copy:  # type: ignore[union-attr]
            for row in masks.items():
                copy.write_row(row)
    else:
        raw.executemany("INSERT INTO trend_batch_terms VALUES (?, ?)", masks.items())  # type: ignore[union-attr]
    o = int(day.toordinal())  # an int, safe to inline
    values = ", ".join(f"CASE WHEN mask & {1 << j} <> 0 THEN {o} END" for j in range(len(cols)))
    lower = ", ".join(
        f"{c} = CASE WHEN excluded.{c} < terms.{c} OR terms.{c} IS NULL THEN coalesce(excluded.{c}, "
        f"terms.{c}) ELSE terms.{c} END"
        for c in cols
    )
    changed = " OR ".join(
        f"excluded.{c} < terms.{c} OR (terms.{c} IS NULL AND excluded.{c} IS NOT NULL)" for c in cols
    )
    conn.exec_driver_sql(
        f"INSERT INTO terms (term, {', '.join(cols)}) SELECT term, {values} "
        f"FROM trend_batch_terms WHERE true ORDER BY term "
        f"ON CONFLICT (term) DO UPDATE SET {lower} WHERE {changed}"
    )
    cur = raw.cursor()  # type: ignore[union-attr]
    try:
        cur.execute("SELECT b.term, t.id FROM trend_batch_terms b JOIN terms t ON t.term = b.term")
        return dict(cur.fetchall())
    finally:
        cur.close()


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
    ``variants`` are near-duplicates collapsed into this entry.
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


@dataclass(frozen=True, slots=True)
class TrendReport:
    """The rising terms (``terms``, best first) and brand-new terms (``new_terms``) of one scope
    for the ``window_days`` days ending ``end`` (inclusive, UTC) against the ``baseline_days``
    days before them."""

    scope: str
    end: dt.date
    window_days: int
    baseline_days: int
    window_docs: int
    baseline_docs: int
    computed_at: dt.datetime
    terms: tuple[TrendTerm, ...] = ()
    new_terms: tuple[TrendTerm, ...] = ()

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
    doc for the statistic). Reads the packed ``term_counts`` rows of those days only (summed with numpy) and
    ``terms`` for the candidates; does not write.
    Raises ``ValueError`` for an unknown scope or non-positive day counts."""
    if scope not in SCOPES:
        raise ValueError(f"unknown scope {scope!r}; one of {', '.join(SCOPES)}")
    if window_days < 1 or baseline_days < 1:
        raise ValueError("window and baseline must be at least one day")
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
    win_days = [v for d, v in per_day.items() if d >= ws]
    base_days = [v for d, v in per_day.items() if d < ws]
    size = 1 + max((int(ids[-1]) for ids, _ in per_day.values() if len(ids)), default=0)

    def total(arrays: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
        if not arrays:
            return np.zeros(size, np.int64)
        ids = np.concatenate([i for i, _ in arrays])
        return np.bincount(ids, weights=np.concatenate([f for _, f in arrays]), minlength=size).astype(
            np.int64
        )

    a_all = total(win_days)
    days_in_window = (
        np.bincount(np.concatenate([i for i, _ in win_days]), minlength=size) if win_days else a_all
    )
    idx = np.flatnonzero((a_all >= support) & (days_in_window >= 2))
    if not len(idx):
        return empty
    a = a_all[idx].astype(np.float64)
    b = total(base_days)[idx].astype(np.float64)
    g2 = log_likelihood_g2(a, b, n1, max(n2, 0))
    lift = ((a + 0.5) / (n1 + 1)) / ((b + 0.5) / (n2 + 1))
    new_since = ws - dt.timedelta(days=window_days)
    keep = (g2 >= G2_CRITICAL) & (lift >= MIN_LIFT) & (a / n1 > b / max(n2, 1))
    kept = np.flatnonzero(keep)
    names = _term_rows(session, scope, [int(idx[i]) for i in kept])
    cands: list[_Cand] = []
    for i in kept:
        term, first_ord = names[int(idx[i])]
        first_day = dt.date.fromordinal(first_ord) if first_ord else None
        is_new = first_day is not None and first_day >= new_since
        cand = _Cand(term, int(a[i]), int(b[i]), float(g2[i]), float(lift[i]), first_day, is_new)
        cand.term_id = int(idx[i])
        cands.append(cand)
    win = _window(session, scope, ws, end)
    # plain words are too vague alone: a single-word trend must be a coined name or acronym
    cands = [c for c in cands if " " in c.term or win.is_name(c.term)]
    cands.sort(key=lambda c: (-c.g2, c.term))
    # blog attention and examples for the best candidates only
    top = cands[: max(3 * limit, 60)]
    top_ids = {id(c) for c in top}
    top += [c for c in cands if c.is_new and id(c) not in top_ids][: 2 * limit]
    _attach_examples(win, top)
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
        )

    return dataclasses.replace(empty, terms=tuple(map(out, rising)), new_terms=tuple(map(out, new)))


def _term_rows(session: Session, scope: str, ids: Sequence[int]) -> dict[int, tuple[str, int | None]]:
    """Term text and first day in ``scope`` (``date.toordinal()`` or None) by term id."""
    first = getattr(Term, FIRST_COLUMNS[scope])
    out: dict[int, tuple[str, int | None]] = {}
    for part in _batched(sorted(ids), 500):
        for term_id, term, day in session.execute(
            sa.select(Term.id, Term.term, first).where(Term.id.in_(part))
        ):
            out[term_id] = (term, day)
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


@dataclass(slots=True)
class _Window:
    """The window's items of a scope, their normalised texts, post links and token case stats."""

    rows: list[Any]
    texts: list[str]
    linked: dict[int, set[int]]
    upper: Counter[str]
    coined: Counter[str]
    seen: Counter[str]
    order: list[int]

    def label(self, term: str) -> str:
        """``term`` with acronym tokens upper-cased (when most occurrences are all-caps)."""
        return " ".join(w.upper() if self.upper[w] * 2 > self.seen[w] > 0 else w for w in term.split())

    def is_name(self, token: str) -> bool:
        """A coined name or acronym: most occurrences have an upper-case letter after the first
        (``GRPO``, ``LoRA``, ``DINOv2``) or a digit (``qwen3``)."""
        return any(ch.isdigit() for ch in token) or self.coined[token] * 2 > self.seen[token] > 0


def _window(session: Session, scope: str, start: dt.date, end: dt.date) -> _Window:
    lo = dt.datetime.combine(start, dt.time(0), dt.UTC)
    hi = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(0), dt.UTC)
    q = sa.select(
        Item.id, Item.kind, Item.title, Item.url, Item.summary, Item.categories, Item.published
    ).where(Item.published >= lo, Item.published < hi)
    if scope == "blogs":
        q = q.where(Item.kind == "post")
    rows = [r for r in session.execute(q) if scope in item_scopes(r.kind, r.categories or ())]
    linked: dict[int, set[int]] = defaultdict(set)
    paper_ids = [r.id for r in rows if r.kind == "paper"]
    for part in _batched(paper_ids, 500):
        for post_id, paper_id in session.execute(
            sa.select(ItemLink.post_id, ItemLink.paper_id).where(ItemLink.paper_id.in_(part))
        ):
            linked[paper_id].add(post_id)
    texts = []
    upper: Counter[str] = Counter()
    coined: Counter[str] = Counter()
    seen: Counter[str] = Counter()
    for r in rows:
        text = item_text(r.title, r.summary or "")
        texts.append(" | " + " | ".join(" ".join(run) for run in runs(text)) + " | ")
        for raw in _RAW_TOKEN.findall(text):
            token = _normal(raw.casefold())
            if not token:
                continue
            seen[token] += 1
            if raw.isupper() and not raw.isdigit():
                upper[token] += 1
            if any(ch.isupper() for ch in raw[1:]):
                coined[token] += 1
    order = sorted(
        range(len(rows)),
        key=lambda i: (
            rows[i].kind != "post",
            -len(linked.get(rows[i].id, ())),
            -rows[i].published.timestamp(),
        ),
    )
    return _Window(rows, texts, linked, upper, coined, seen, order)


def _attach_examples(win: _Window, cands: Sequence[_Cand]) -> None:
    """Find the window items behind each candidate (``examples``, ``posts``) by matching the
    normalised runs of their texts."""
    for c in cands:
        needle = f" {c.term} "
        posts: set[int] = set()
        for i in win.order:
            if needle not in win.texts[i]:
                continue
            r = win.rows[i]
            if r.kind == "post":
                posts.add(r.id)
            posts |= win.linked.get(r.id, set())
            if len(c.examples) < MAX_EXAMPLES:
                c.examples.append(TrendItem(r.id, r.title, r.url, r.kind))
        c.posts = len(posts)


# --- stored results ----------------------------------------------------------------------------


def store_report(session: Session, report: TrendReport, *, latest: bool = False) -> None:
    """Save a report in ``trend_results`` (replacing one with the same key); with ``latest``
    it becomes the one served when no end day is asked for."""
    key = (report.scope, report.window_days, report.baseline_days)
    if latest:
        session.execute(
            sa.update(TrendResult)
            .where(
                TrendResult.scope == key[0],
                TrendResult.window_days == key[1],
                TrendResult.baseline_days == key[2],
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
    session.flush()


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
    the latest day with counted items), marked as the latest. Returns the reports."""
    end = end or latest_day(session)
    if end is None:
        return []
    reports = []
    for scope in scopes:
        report = compute_report(
            session, end=end, window_days=window_days, baseline_days=baseline_days, scope=scope, now=now
        )
        store_report(session, report, latest=True)
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
    """The ``limit`` most significantly rising terms of ``scope`` for the ``window_days`` UTC
    days ending ``end`` (inclusive) against the ``baseline_days`` days before (Dunning G², see
    the module doc), best first. For the weekly email. Reads the stored result for that end day
    when there is one, else computes it (a few hundred ms on a month of arXiv) without storing.
    Raises ``ValueError`` for an unknown scope."""
    report = stored_report(
        session, scope=scope, window_days=window_days, baseline_days=baseline_days, end=end
    )
    if report is None:
        report = compute_report(
            session, end=end, window_days=window_days, baseline_days=baseline_days, scope=scope, limit=limit
        )
    return list(report.terms[:limit])
