"""The lexicon: which counted grams are reportable terms, learned from the stored corpus.

Counting (:mod:`.terms`) keeps every 1..4-gram that begins and ends with a content word; most
are not topics ("extensive experiment", "large language" without "model", "test set"). The
lexicon decides which are, from a sample of the stored items (:func:`learn`, at most
:data:`SAMPLE_NEWEST` newest items plus :data:`SAMPLE_OLDER` evenly spaced older ones), with
three statistics per gram that occurs in at least :data:`MIN_DF` sampled items:

* **Collocation** (phrases): normalised PMI (Bouma 2009) of the phrase's two sides, as in the
  phrase detection of Mikolov et al. 2013 and gensim's ``Phrases`` with ``npmi`` scoring:
  ``npmi = ln(p(xy) / (p(x) p(y))) / -ln p(xy)``, token probabilities over the sample; connector
  words at the split are ignored (gensim's ``connector_words``), and a phrase of three or more
  content words takes the smallest score over its split points. Kept when ≥ :data:`MIN_NPMI`.
* **Not a fragment**: a gram most of whose occurrences (≥ :data:`FRAGMENT_SHARE`) sit inside
  one longer gram is a piece of it ("large language" of "large language model", "space
  model" of "state space model", "splatting" of "gaussian splatting"), not a term.
* **Not a right part**: a phrase ≥ :data:`FRAGMENT_SHARE` of whose occurrences follow some
  content word, whichever ("use agent" after "computer" or "tool"), is a piece of several terms.
* **Topicality**: residual IDF (Church & Gale 1995, "Poisson mixtures", NLE 1(2)): observed IDF
  minus the IDF a Poisson spread of the same occurrences predicts, ``-log2(df/D) + log2(1 -
  exp(-cf/D))``; topic words repeat within the documents that use them, boilerplate ("test
  set", "percentage point") occurs once wherever it occurs. And coherence: the mean pairwise
  cosine of the term's documents (tf-idf, random projection to 128 dimensions) over that of
  random documents; "mixture of experts" papers resemble each other, "ablation study" papers do
  not. A term is topical when residual IDF ≥ :data:`MIN_RIDF` or coherence ≥
  :data:`MIN_COHERENCE`; an expansion is topical when its acronym is (``large language model``
  is abbreviated after the first mention, so its own residual IDF is low; ``llm``'s is high).
  A single word needs both, with residual IDF ≥ :data:`MIN_WORD_RIDF` (0.6; at 0.4 alone
  3,900 plain words such as "update", "rule", "event" were terms), must be in at most
  :data:`MAX_WORD_SHARE` of the items ("model", "data"), and not in :data:`GENRE_WORDS`
  (coined names and acronyms are testable anyway, see ``detect._reportable``). An expansion
  borrows its acronym's topicality only when ≥ :data:`ACRONYM_TOGETHER` of the acronym's
  documents spell it out (two-letter initials collide: "sa" is not "state of the art").

Measured on the 22k bulk papers (2025-03..2026-07): residual IDF 0.33–1.5 and coherence 1.5–3.5
for "world model", "tool use", "mixture of experts", "chain of thought", "Mamba", "agentic";
residual IDF ≤ 0.26 and coherence ≤ 1.6 for "test set", "percentage point", "state of the art",
"ablation study", "experimental result", "large scale".

Every phrase also needs residual IDF ≥ :data:`MIN_PHRASE_RIDF` (phrases written once wherever
they are written are the register of abstracts: "future research", "method typically rely"),
unless a topical acronym of three letters or more lends it topicality; a phrase next to one
connector in ≥ :data:`CONNECTOR_SHARE` of its occurrences ("the art performance") and a word
after a content word in ≥ :data:`BOUND_SHARE` of them ("cross modal", "long horizon") are
pieces of longer terms; words of two letters ("CI", "CV") are never terms.

What the data cannot show is listed by hand (:data:`EVALUATION_HEADS`, :data:`EVALUATION_WORDS`):
evaluation quantities ("pass rate", "macro F1", "operating point") are concentrated in the
subfields that measure them, so they look topical, but they report results and are never the
subject. The lexicon is stored (``trend_lexicon``, one packed row) and relearned by
:func:`aggregator.trends.refresh_results` when newer items have been counted.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np
import scipy.sparse as sp
import sqlalchemy as sa
from sqlalchemy.orm import Session

from aggregator.store.tables import Item
from aggregator.store.trends_tables import TrendLexicon
from aggregator.trends.terms import _BREAK, _NUMBER_UNIT, CONNECTORS, _gram_list, _tokens, item_text
from aggregator.trends.usage import (
    FRAGMENT_SHARE,
    MIN_DF,
    bound_words,
    connector_fragments,
    modifiers,
    right_parts,
)

#: The lexicon is relearned when it is this many days older than the newest counted day.
RELEARN_DAYS = 7
#: The version of the rules below, stored with a learned lexicon: one learned by other rules is
#: relearned at the next refresh, whatever its age. Change it when a rule changes.
RULES_VERSION = "2026-12d modifiers, topic modifiers kept"
SAMPLE_NEWEST = 5000
SAMPLE_OLDER = 3000
MIN_NPMI = 0.15
MIN_RIDF = 0.4
#: Every phrase needs at least this residual IDF (about 7 % of its documents repeat it), however
#: alike its documents: a phrase written once wherever it is written is the register of abstracts
#: ("future research", "real world scenario", "method typically rely", "benchmark for
#: evaluating"), not a topic. Expansions of a topical acronym are exempt (``direct preference
#: optimization``, spelled out once and then written ``DPO``).
MIN_PHRASE_RIDF = 0.1
#: Single words need more repetition, and coherence too: thousands of plain words ("update",
#: "rule", "continuous", "event") repeat within the documents that use them.
MIN_WORD_RIDF = 0.6
MIN_COHERENCE = 1.5
#: Added to :data:`MIN_COHERENCE` divided by √df: the coherence of few documents is noisy.
COHERENCE_NOISE = 2.0
MAX_WORD_SHARE = 0.05
MIN_PAPERS = 1000  # papers before the lexicon is learned from papers alone (see sample_texts)
#: An expansion borrows its acronym's topicality when at least this share of the acronym's
#: documents also spell the expansion out.
ACRONYM_TOGETHER = 0.2
_DIMS = 128

#: Last words that make a phrase an evaluation quantity or a reporting device, not a topic.
EVALUATION_HEADS = frozenset(
    [
        "point",
        "gain",
        "f1",
        "rate",
        "score",
        "accuracy",
        "auc",
        "auroc",
        "bleu",
        "rouge",
        "precision",
        "recall",
        "margin",
        "percent",
        "percentage",
        "baseline",
        "family",
        "result",
        "set",
        "study",
        "range",
        "drop",
        "improvement",
        "error",
        "correctness",
    ]
)
#: Single words of mathematical writing: they repeat within theory papers (residual IDF 0.7–0.8)
#: and those papers are alike (coherence ≈ 1.3–1.6, as "agentic" has 1.54), so the statistics
#: cannot tell them from topics; they are the register of a genre, never the subject.
GENRE_WORDS = frozenset(
    [
        "sum",
        "proof",
        "theorem",
        "lemma",
        "bound",
        "corollary",
        "proposition",
        "inequality",
        "equation",
        "formula",
        "estimate",
        "assumption",
        "condition",
        "constant",
        "coefficient",
    ]
)
#: Words that make any term evaluation vocabulary (statistical tests, reporting units).
EVALUATION_WORDS = frozenset(["mcnemar", "wilcoxon", "bonferroni", "kruskal", "percentage", "pp"])


@dataclass(frozen=True, slots=True)
class Lexicon:
    """Reportable terms learned from ``n_docs`` sampled items up to ``through`` (UTC day):
    ``terms`` maps a normalised term to (sample df, residual IDF, coherence ratio, NPMI or
    None for single words)."""

    n_docs: int
    through: dt.date | None
    terms: dict[str, tuple[int, float, float, float | None]]
    rules: str = RULES_VERSION

    def __contains__(self, term: object) -> bool:
        return term in self.terms

    def pack(self) -> bytes:
        """zlib of JSON term → statistics, with the rules' version under ``"#rules"`` (never a
        term: terms are ``[a-z0-9]`` words)."""
        data = {"#rules": self.rules, **self.terms}
        return zlib.compress(json.dumps(data, separators=(",", ":")).encode(), 6)

    @classmethod
    def unpack(cls, n_docs: int, through: dt.date | None, data: bytes) -> Lexicon:
        raw = json.loads(zlib.decompress(data))
        rules = str(raw.pop("#rules", ""))  # "" for a lexicon stored before the version was
        return cls(n_docs, through, {t: (v[0], v[1], v[2], v[3]) for t, v in raw.items()}, rules)


def is_evaluation(term: str) -> bool:
    """An evaluation quantity by the hand list (see the module doc)."""
    words = term.split()
    return words[-1] in EVALUATION_HEADS or any(w in EVALUATION_WORDS for w in words)


def _npmi(gram: str, cf: Counter[str], total: int) -> float:
    """The smallest normalised PMI over the split points of ``gram`` (connectors ignored)."""
    words = gram.split()
    best = 1.0
    p = cf[gram] / total
    for i in range(1, len(words)):
        left, right = words[:i], words[i:]
        if left[-1] in CONNECTORS or right[0] in CONNECTORS:
            continue  # the split at the content word next to it covers this one
        lc, rc = cf.get(" ".join(left), 0), cf.get(" ".join(right), 0)
        if lc and rc and p < 1:
            best = min(best, math.log(p * total * total / (lc * rc)) / -math.log(p))
    return best


def _fragments(grams: Iterable[str], cf: Counter[str], total: int) -> set[str]:
    """Grams with ≥ :data:`FRAGMENT_SHARE` of their occurrences inside one longer gram that is
    as strong a collocation (NPMI at most 0.1 lower): "space model" inside "state space
    model", but not "ZorbLax routing" inside the sentence piece "use the ZorbLax routing"."""
    out = set()
    for g in grams:
        words = g.split()
        n = len(words)
        strength: float | None = None
        for i in range(n):
            for j in range(i + 1, n + 1):
                if (i, j) == (0, n):
                    continue
                part = " ".join(words[i:j])
                if part in out or part not in cf or cf[g] < FRAGMENT_SHARE * cf[part]:
                    continue
                if strength is None:
                    strength = _npmi(g, cf, total)
                if j - i == 1 or strength >= _npmi(part, cf, total) - 0.1:
                    out.add(part)
    return out


def _embed(token_lists: Sequence[Sequence[str]]) -> np.ndarray:
    """Unit-length random projections (128-d, fixed seed) of the texts' sublinear tf-idf word
    vectors (``token_lists``: normalised tokens, breaks included and skipped): cosines between
    them approximate tf-idf cosines (Johnson–Lindenstrauss), at a fraction of the cost."""
    vocab: dict[str, int] = {}
    ids = [[vocab.setdefault(t, len(vocab)) for t in tokens if t != _BREAK] for tokens in token_lists]
    rows = np.repeat(np.arange(len(ids)), [len(x) for x in ids])
    cols = np.fromiter(chain.from_iterable(ids), dtype=np.int64, count=len(rows))
    x = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(ids), max(len(vocab), 1)))
    x.sum_duplicates()
    x.data = np.log1p(x.data)
    df = np.bincount(x.indices, minlength=x.shape[1])
    idf = (np.log((1 + len(ids)) / (1 + df)) + 1).astype(np.float32)
    x = sp.csr_matrix(x @ sp.diags(idf))
    proj = np.random.default_rng(0).standard_normal((x.shape[1], _DIMS)).astype(np.float32)
    e = np.asarray(x @ proj)
    return np.asarray(e / (np.linalg.norm(e, axis=1, keepdims=True) + 1e-12))


def learn(texts: Sequence[str], through: dt.date | None = None) -> Lexicon:
    """Learn the lexicon from item texts (``item_text`` of title and abstract); see the module
    doc. About 0.6 ms per text (6 s for the default 10k-item sample on the 2-core VM).

    Long because the statistics (fragments, collocation, topicality, acronyms) share the
    sample's counts and are applied in one pass; each step is commented."""
    token_lists = [_tokens(t) for t in texts]
    per_doc = [_gram_list(tokens) for tokens in token_lists]
    cf = Counter(chain.from_iterable(per_doc))
    doc_sets = [set(g) for g in per_doc]
    df = Counter(chain.from_iterable(doc_sets))
    n = len(texts)
    total = sum(c for g, c in cf.items() if " " not in g) or 1
    frequent = [g for g, d in df.items() if d >= MIN_DF]
    fragments = _fragments(frequent, cf, total) | right_parts(frequent, cf)
    fragments |= connector_fragments(token_lists, {g for g in frequent if " " in g}, cf)
    fragments |= bound_words(token_lists, cf) | modifiers(frequent, cf)
    cands: dict[str, float | None] = {}
    for g in frequent:
        if g in fragments or is_evaluation(g):
            continue
        if " " in g:
            score = _npmi(g, cf, total)
            if score >= MIN_NPMI:
                cands[g] = score
        elif df[g] <= MAX_WORD_SHARE * n and len(g) > 2 and not _NUMBER_UNIT.fullmatch(g):
            cands[g] = None  # not "2d", "7b"; not two letters ("CI", "CV", "AP": many meanings)
    if not cands:
        return Lexicon(n, through, {})
    index = {g: i for i, g in enumerate(cands)}
    rows, cols = [], []
    for d, grams in enumerate(doc_sets):
        hits = [index[g] for g in grams if g in index]
        rows.extend(hits)
        cols.extend([d] * len(hits))
    m = sp.csr_matrix((np.ones(len(rows), np.float32), (rows, cols)), shape=(len(index), n))
    emb = _embed(token_lists)
    mean = emb.mean(axis=0)
    base = float(mean @ mean) or 1e-9
    sums = np.asarray(m @ emb)
    dfs = np.asarray(m.sum(axis=1)).ravel()
    coherence = ((sums * sums).sum(axis=1) / dfs**2 - 1 / dfs) / np.maximum(1 - 1 / dfs, 1e-9) / base
    terms: dict[str, tuple[int, float, float, float | None]] = {}
    for g, i in index.items():
        terms[g] = (df[g], round(_ridf(df[g], cf[g], n), 3), round(float(coherence[i]), 3), cands[g])

    # phrases: repeated within their documents, or documents alike; single words: both
    def is_topical(g: str, d: int, r: float, c: float) -> bool:
        alike = c >= MIN_COHERENCE + COHERENCE_NOISE / d**0.5
        if " " in g:  # a phrase: repeated within its documents, or documents alike
            return r >= MIN_PHRASE_RIDF and (r >= MIN_RIDF or alike)
        return r >= MIN_WORD_RIDF and alike and g not in GENRE_WORDS  # a word: both

    topical = {g for g, (d, r, c, _) in terms.items() if is_topical(g, d, r, c)}
    # an expansion is topical when its acronym is, however frequent the acronym ("llm"), if
    # the two go together: the acronym's documents often spell it out ("sa" is not "state of
    # the art", "ls" not "large scale")
    # (three letters or more: two-letter initials collide, "nl", "hq", "rt")
    lenders = [g for g in terms if " " in g and len(_acronym(g)) > 2 and df.get(_acronym(g), 0) >= MIN_DF]
    both = _acronym_pairs(doc_sets, lenders)
    topical |= {
        g
        for g, k in both.items()
        if k >= ACRONYM_TOGETHER * df[a := _acronym(g)] and _ridf(df[a], cf[a], n) >= MIN_RIDF
    }
    topical -= {g for g in topical if _adverb_edge(g) or _participle_end(g)}
    return Lexicon(n, through, {g: terms[g] for g in sorted(topical)})


def _acronym_pairs(doc_sets: Sequence[set[str]], expansions: list[str]) -> dict[str, int]:
    """For each expansion, the number of documents holding both it and its acronym."""
    wanted = {g: _acronym(g) for g in expansions}
    both: Counter[str] = Counter()
    for grams in doc_sets:
        for g in grams & wanted.keys():
            if wanted[g] in grams:
                both[g] += 1
    return {g: both.get(g, 0) for g in wanted}


def _ridf(df: int, cf: int, n: int) -> float:
    """Residual IDF in bits (Church & Gale 1995) of a gram in ``df`` of ``n`` items, ``cf`` times."""
    return -math.log2(df / n) + math.log2(-math.expm1(-cf / n))


#: Words ending in -ly that are nouns, not adverbs (they may begin or end a term).
_LY_NOUNS = frozenset(
    ["family", "anomaly", "assembly", "supply", "monopoly", "italy", "poly", "ply", "reply", "rely"]
)


def _adverb_edge(term: str) -> bool:
    """The term begins or ends with an -ly adverb ("highly correlated", "model internally")."""
    words = term.split()
    return any(len(w) > 4 and w.endswith("ly") and w not in _LY_NOUNS for w in (words[0], words[-1]))


#: Words ending in -ed that are nouns (a phrase may end with them).
_ED_NOUNS = frozenset(["seed", "speed", "bed", "feed", "need", "embed", "red", "bird", "shred"])


def _participle_end(term: str) -> bool:
    """A phrase ending in an -ed participle ("manually annotated", "approach called")."""
    last = term.rsplit(" ", 1)[-1]
    return " " in term and len(last) > 4 and last.endswith("ed") and last not in _ED_NOUNS


def _acronym(phrase: str) -> str:
    """The initials of a phrase's content words (``large language model`` → ``llm``)."""
    return "".join(w[0] for w in phrase.split() if w not in CONNECTORS)


def sample_texts(session: Session, through: dt.date | None = None) -> tuple[list[str], dt.date | None]:
    """The texts the lexicon is learned from: the :data:`SAMPLE_NEWEST` newest items published
    up to ``through`` (inclusive, UTC; default all) and :data:`SAMPLE_OLDER` evenly spaced
    older ones; and the newest day among them. Papers only, once there are
    :data:`MIN_PAPERS` of them: blog posts are long and repeat plain words ("real world", "large
    scale", "open source"), which would pass the topicality test, and the first fetch brings years
    of them (measured on a fresh install, 3,260 papers and 1,267 posts: learned from both, those
    three and "high quality", "end to end" were terms; from the papers alone, none of them)."""
    q = sa.select(Item.id, Item.published).order_by(Item.published.desc(), Item.id.desc())
    papers = session.scalar(sa.select(sa.func.count()).select_from(Item).where(Item.kind == "paper")) or 0
    if papers >= MIN_PAPERS:
        q = q.where(Item.kind == "paper")
    if through is not None:
        q = q.where(Item.published < dt.datetime.combine(through + dt.timedelta(days=1), dt.time(0), dt.UTC))
    ids = session.execute(q).all()
    if not ids:
        return [], None
    newest = [r.id for r in ids[:SAMPLE_NEWEST]]
    older = ids[SAMPLE_NEWEST:]
    step = max(1, len(older) // SAMPLE_OLDER)
    chosen = newest + [r.id for r in older[::step][:SAMPLE_OLDER]]
    last = ids[0].published.astimezone(dt.UTC).date()
    texts: dict[int, str] = {}
    for i in range(0, len(chosen), 1000):
        part = chosen[i : i + 1000]
        texts.update(
            (item_id, item_text(title, summary or ""))
            for item_id, title, summary in session.execute(
                sa.select(Item.id, Item.title, Item.summary).where(Item.id.in_(part))
            )
        )
    # in the chosen order, whatever order the database returns rows in: the coherence's random
    # projection depends on the order words are first seen, so SQLite and PostgreSQL holding
    # the same items learn the same lexicon
    return [texts[item_id] for item_id in chosen if item_id in texts], last


_CACHE: dict[tuple[object, ...], Lexicon] = {}


def current(session: Session) -> Lexicon:
    """The stored lexicon (cached per process by database, row id and learning time), or, when
    none is stored yet, one learned now from the stored items (not stored; cached by database,
    item count and newest id)."""
    database = str(session.connection().engine.url)
    row = session.execute(
        sa.select(
            TrendLexicon.id, TrendLexicon.n_docs, TrendLexicon.through, TrendLexicon.learned_at
        ).order_by(TrendLexicon.id.desc())
    ).first()
    if row is not None:
        key: tuple[object, ...] = (database, row.id, str(row.learned_at))
        if key not in _CACHE:
            data = session.scalar(sa.select(TrendLexicon.data).where(TrendLexicon.id == row.id))
            _CACHE.clear()
            _CACHE[key] = Lexicon.unpack(row.n_docs, row.through, data or b"")
        return _CACHE[key]
    n, top = session.execute(sa.select(sa.func.count(Item.id), sa.func.max(Item.id))).one()
    key = (database, -1 - int(n), int(top or 0))
    if key not in _CACHE:
        _CACHE.clear()
        _CACHE[key] = learn(*sample_texts(session))
    return _CACHE[key]


def refresh(session: Session, through: dt.date) -> Lexicon:
    """Relearn and store the lexicon when the stored one was learned :data:`RELEARN_DAYS` or
    more days before ``through`` (the newest counted day), or by other rules
    (:data:`RULES_VERSION`); otherwise return the stored one. Keeps only the newest row.
    Learning costs 6 s on an idle 2-core VM and 30–50 s on the shared one (2026-12), far
    above the 2 s an incremental update may take, so it runs once a week, not after every
    day's ingest: a phrase coined this week is reportable before that as the full form of a
    coined name (``detect._reportable``)."""
    stored = session.scalar(sa.select(sa.func.max(TrendLexicon.through)))
    if stored is not None and stored >= through - dt.timedelta(days=RELEARN_DAYS - 1):
        lex = current(session)
        if lex.rules == RULES_VERSION:  # (one learned by other rules is relearned now)
            return lex
    lex = learn(*sample_texts(session, through))
    session.execute(sa.delete(TrendLexicon))
    session.add(
        TrendLexicon(
            n_docs=lex.n_docs,
            through=lex.through or through,
            learned_at=dt.datetime.now(dt.UTC),
            data=lex.pack(),
        )
    )
    session.flush()
    return current(session)
