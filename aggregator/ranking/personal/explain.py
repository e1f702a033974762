"""Explaining a score: the terms that contribute most to an (item, query) cosine similarity."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import scipy.sparse as sp

from aggregator.ranking.personal.item_matrix import ItemWindow
from aggregator.ranking.personal.scoring import WHY_TERMS

if TYPE_CHECKING:  # rank imports scikit-learn; only needed at run time when a model exists
    pass


def _vocabulary(
    window: ItemWindow, terms: np.ndarray
) -> tuple[list[str], np.ndarray, dict[int, tuple[int, ...]]]:
    """The terms as Python strings; per column, is it a bigram; bigram column → the columns of
    its words (−1 when a word is not a term). Memoised on the window (one model per window)."""

    def make() -> tuple[list[str], np.ndarray, dict[int, tuple[int, ...]]]:
        names = [str(t) for t in terms]
        col = {t: i for i, t in enumerate(names)}
        is_bi = np.fromiter((" " in t for t in names), dtype=bool, count=len(names))
        parts = {
            i: tuple(col.get(w, -1) for w in names[i].split(" ")) for i in np.flatnonzero(is_bi).tolist()
        }
        return names, is_bi, parts

    return window._memoised(("vocabulary", len(terms)), make)  # type: ignore[no-any-return]


def _quoted_terms(window: ItemWindow, terms: np.ndarray) -> list[str]:
    """Per term, the start of its ``why`` entry in JSON (``{"term":"…","weight":``), memoised
    on the window like :func:`_vocabulary`."""
    import json

    names = _vocabulary(window, terms)[0]
    return window._memoised(  # type: ignore[no-any-return]
        ("quoted", len(terms)), lambda: ['{"term":' + json.dumps(t) + ',"weight":' for t in names]
    )


#: Largest n_queries × n_terms explained with a dense copy of the queries (float32: 64 MB).
_DENSE_QUERIES = 16_000_000


@dataclass(frozen=True, slots=True)
class Folded:
    """The ``why`` terms of many (item, query) pairs, flat: pair ``i``'s entries, best first,
    are ``cols[bounds[i]:bounds[i + 1]]`` with their ``weights`` (contributions to the cosine
    similarity)."""

    bounds: list[int]
    cols: list[int]
    weights: list[float]

    def __len__(self) -> int:
        return len(self.bounds) - 1

    def pair(self, i: int) -> list[tuple[int, float]]:
        lo, hi = self.bounds[i], self.bounds[i + 1]
        return list(zip(self.cols[lo:hi], self.weights[lo:hi], strict=True))

    def json(
        self, prefixes: list[str], names: list[str], texts: Sequence[str], phrase_cols: PhraseColumns
    ) -> list[str]:
        """Each pair's ``why`` as JSON text (``prefixes``: :func:`_quoted_terms`), joined into
        whole phrases of the pair's item text (``texts``, one per pair; ``names``: the terms) by
        :func:`aggregator.ranking.text.join_phrases`. Which pairs may need it is found for all
        at once from ``phrase_cols`` (:func:`_phrase_columns`); the others cost nothing more."""
        import json

        from aggregator.ranking.text import join_phrases  # imports scikit-learn's stop words

        b = self.bounds
        joining = phrase_cols.pairs_to_join(
            np.asarray(self.cols, dtype=np.int64), np.asarray(b, dtype=np.int64)
        ).tolist()
        cols, weights, phrases = self.cols, self.weights, phrase_cols.phrases
        out = []
        for i, join in enumerate(joining):
            entries = zip(cols[b[i] : b[i + 1]], weights[b[i] : b[i + 1]], strict=True)
            if join:
                pairs = [(names[c], w) for c, w in entries]
                whole = join_phrases(pairs, texts[i], phrases, phrase_cols.continuations)
                out.append(
                    json.dumps([{"term": t, "weight": round(w, 4)} for t, w in whole], ensure_ascii=False)
                )
            else:  # most pairs: the entries as they are, JSON from the memoised term prefixes
                out.append("[" + ",".join([prefixes[c] + repr(round(w, 4)) + "}" for c, w in entries]) + "]")
        return out


@dataclass(frozen=True, slots=True)
class PhraseColumns:
    """Per term column: the id of its singular/plural form (:func:`~aggregator.ranking.text.twin_key`),
    for a phrase the ids of its first and last words (−1 for a single word), and whether its last
    (first) word can begin (end) one of the model's connector ``phrases`` ("mixture of experts")."""

    twin: np.ndarray
    first: np.ndarray
    last: np.ndarray
    n_words: int
    last_twin: np.ndarray  # a phrase's last word's twin id (a word's own for a word)
    tail: np.ndarray  # the id of a term's last word (all terms; own id space)
    head: np.ndarray  # the id of a term's first word
    connected: np.ndarray  # sorted tail id · n_ids + head id of the model's connector phrases
    phrases: frozenset[str]
    fragment: np.ndarray  # bool: a bigram the text may complete (ItemWindow.continuations)
    continuations: dict[str, frozenset[str]]

    def pairs_to_join(self, cols: np.ndarray, bounds: np.ndarray) -> np.ndarray:
        """n_pairs bool: pairs (entries ``cols[bounds[i]:bounds[i + 1]]``) holding two terms of one
        singular/plural form, a phrase ending with the word another begins with, a term that
        may begin a connector phrase and one that may end one, or a fragment bigram."""
        n_pairs = len(bounds) - 1
        pair = np.repeat(np.arange(n_pairs), np.diff(bounds))
        out = np.zeros(n_pairs, dtype=bool)
        if not len(cols):
            return out
        out[pair[self.fragment[cols]]] = True
        if len(self.connected):  # two terms x…, …y of a pair with "x of y" a connector phrase
            n_ids = int(max(self.tail.max(), self.head.max())) + 1
            lengths = np.diff(bounds)
            width = int(lengths.max())
            slot = np.arange(len(cols)) - np.repeat(bounds[:-1], lengths)
            tails = np.full((n_pairs, width), -1, dtype=np.int64)
            heads = np.full((n_pairs, width), -1, dtype=np.int64)
            tails[pair, slot], heads[pair, slot] = self.tail[cols], self.head[cols]
            keys = tails[:, :, None] * n_ids + heads[:, None, :]
            hit = np.isin(keys, self.connected) & (tails[:, :, None] >= 0) & (heads[:, None, :] >= 0)
            hit[:, np.arange(width), np.arange(width)] = False
            out |= hit.any(axis=(1, 2))
        keys = pair * (int(self.twin.max()) + 1) + self.twin[cols]
        uniq, counts = np.unique(keys, return_counts=True)
        out[(uniq[counts > 1] // (int(self.twin.max()) + 1)).astype(np.int64)] = True
        multi = self.first[cols] >= 0
        # a word alone that a phrase of the pair ends with ("expert", "mixture of experts")
        width_t = int(max(self.twin.max(), self.last_twin.max())) + 1
        words_alone = pair[~multi] * width_t + self.twin[cols][~multi]
        phrase_ends = pair[multi] * width_t + self.last_twin[cols][multi]
        out[pair[~multi][np.isin(words_alone, phrase_ends)]] = True
        width = self.n_words + 1
        ends = pair[multi] * width + self.last[cols][multi]
        starts = pair[multi] * width + self.first[cols][multi]
        out[pair[multi][np.isin(ends, starts)]] = True
        return out


def _phrase_columns(window: ItemWindow, terms: np.ndarray) -> PhraseColumns:
    """:class:`PhraseColumns` of the model's terms, memoised on the window like :func:`_vocabulary`."""

    def make() -> PhraseColumns:
        from aggregator.ranking.text import twin_key  # imports scikit-learn's stop words

        names = _vocabulary(window, terms)[0]
        twins: dict[str, int] = {}
        words: dict[str, int] = {}
        twin = np.empty(len(names), dtype=np.int64)
        first = np.full(len(names), -1, dtype=np.int64)
        last = np.full(len(names), -1, dtype=np.int64)
        ids: dict[str, int] = {}
        tail = np.empty(len(names), dtype=np.int64)
        head = np.empty(len(names), dtype=np.int64)
        last_twin = np.empty(len(names), dtype=np.int64)
        for c, t in enumerate(names):
            twin[c] = twins.setdefault(twin_key(t), len(twins))
            split = t.split(" ")
            last_twin[c] = twins.setdefault(twin_key(split[-1]), len(twins))
            tail[c], head[c] = ids.setdefault(split[-1], len(ids)), ids.setdefault(split[0], len(ids))
            if len(split) > 1:
                first[c] = words.setdefault(split[0], len(words))
                last[c] = words.setdefault(split[-1], len(words))
        pairs = [p.split(" ") for p in window.phrases]
        connected = np.unique(
            np.asarray(
                [ids[p[0]] * len(ids) + ids[p[-1]] for p in pairs if p[0] in ids and p[-1] in ids],
                dtype=np.int64,
            )
        )
        conts = window.continuations
        fragment = np.fromiter((t in conts for t in names), dtype=bool, count=len(names))
        return PhraseColumns(
            twin, first, last, len(words), last_twin, tail, head, connected, window.phrases, fragment, conts
        )

    return window._memoised(("phrase columns", len(terms)), make)  # type: ignore[no-any-return]


def _explain(
    window: ItemWindow,
    rows: np.ndarray,
    queries: sp.csr_matrix,
    owners: np.ndarray,
    terms: np.ndarray,
    k: int,
) -> Folded:
    """``why`` of item ``rows[i]`` for query row ``owners[i]``: the elementwise products of all
    pairs at once (each item entry looks its query's weight up in a dense copy of the queries,
    or with one ``searchsorted`` over their (row, column) keys when that copy would be large),
    one stable sort, then the unigram → bigram folding of :func:`aggregator.ranking.tfidf.explain` on at
    most 4·k terms per pair (:func:`_fold`)."""
    if len(rows) == 0:
        return Folded([0], [], [])
    names, is_bi, parts = _vocabulary(window, terms)
    items = window.matrix[rows]
    q = sp.csr_matrix(queries, dtype=np.float32)
    q.sum_duplicates()  # canonical: sorted columns within each row, so the keys below ascend
    n_terms = q.shape[1]
    entry_owner = np.repeat(np.asarray(owners, dtype=np.int64), np.diff(items.indptr))
    if q.shape[0] * n_terms <= _DENSE_QUERIES:  # the queries as a dense block: a direct gather
        values = (items.data * q.toarray()[entry_owner, items.indices]).astype(np.float32)
    else:  # each entry's (query, column) key found among the queries' nonzeros
        qkeys = np.repeat(np.arange(q.shape[0], dtype=np.int64), np.diff(q.indptr)) * n_terms + q.indices
        ikeys = entry_owner * n_terms + items.indices
        at = np.minimum(np.searchsorted(qkeys, ikeys), max(len(qkeys) - 1, 0))
        hit = qkeys[at] == ikeys if len(qkeys) else np.zeros(len(ikeys), dtype=bool)
        values = np.where(hit, items.data * q.data[at] if len(qkeys) else 0, 0).astype(np.float32)
    contrib = sp.csr_matrix((values, items.indices, items.indptr), shape=items.shape)
    contrib.sum_duplicates()
    contrib.eliminate_zeros()
    lengths = np.diff(contrib.indptr)
    pair = np.repeat(np.arange(len(rows)), lengths)
    # by pair, then contribution descending: one stable sort of pair + (1 − c)/2 (c ∈ (0, 1], so
    # the fraction stays below 0.5; float64 keeps float32 contributions apart down to ~1e-11)
    order = np.argsort(pair + (1.0 - contrib.data.astype(np.float64)) * 0.5, kind="stable")
    rank_in_pair = np.arange(len(order)) - np.repeat(contrib.indptr[:-1], lengths)
    take = order[rank_in_pair < 4 * k]
    counts = np.minimum(lengths, 4 * k)
    cols = contrib.indices[take].astype(np.int64)
    return _fold(
        np.repeat(np.arange(len(rows)), counts),
        cols,
        contrib.data[take].astype(np.float64),
        is_bi[cols],
        _part_columns(window, terms),
        len(rows),
        k,
        _quiet_columns(window, terms),
    )


def _quiet_columns(window: ItemWindow, terms: np.ndarray) -> np.ndarray:
    """n_terms bool: terms ``why`` never names alone (``author:`` names, filler words:
    :func:`aggregator.ranking.text.is_quiet_term`). Memoised on the window."""
    from aggregator.ranking.text import is_quiet_term

    def make() -> np.ndarray:
        names = _vocabulary(window, terms)[0]
        return np.fromiter((is_quiet_term(t) for t in names), dtype=bool, count=len(names))

    return window._memoised(("quiet", len(terms)), make)  # type: ignore[no-any-return]


def _part_columns(window: ItemWindow, terms: np.ndarray) -> np.ndarray:
    """n_terms × 2 int64: a bigram column's word columns (−1 when not a term; both −1 for a
    unigram). Memoised on the window like :func:`_vocabulary`."""

    def make() -> np.ndarray:
        out = np.full((len(terms), 2), -1, dtype=np.int64)
        for c, words in _vocabulary(window, terms)[2].items():
            out[c, : len(words[:2])] = words[:2]
        return out

    return window._memoised(("parts", len(terms)), make)  # type: ignore[no-any-return]


def _fold(
    pair: np.ndarray,
    cols: np.ndarray,
    weights: np.ndarray,
    is_bi: np.ndarray,
    parts: np.ndarray,
    n_pairs: int,
    k: int,
    quiet: np.ndarray | None = None,
) -> Folded:
    """The unigram → bigram folding of :func:`aggregator.ranking.tfidf.explain` for many (item, query)
    pairs at once, vectorised: entries ``(pair, column, weight, is bigram)`` sorted by pair,
    then weight descending; ``parts``: :func:`_part_columns`. A unigram entry is added to the
    best bigram entry of its pair that contains the word (its host), else it stands alone; per
    pair the ``k`` best of bigrams and lone unigrams are returned, ties in the order bigrams
    first, then entry order (as the Python loop it replaced, which cost 40 µs a pair and was
    the costliest step of precomputing). ``quiet`` (n_terms bool): columns never returned as
    a reason of their own (they may still add to a bigram)."""
    n_terms = int(parts.shape[0])
    entry = np.arange(len(cols))
    bi = np.flatnonzero(is_bi)
    host_keys = np.concatenate(
        [pair[bi] * n_terms + parts[cols[bi], 0], pair[bi] * n_terms + parts[cols[bi], 1]]
    )
    host_entry = np.concatenate([bi, bi])
    valid = np.concatenate([parts[cols[bi], 0], parts[cols[bi], 1]]) >= 0
    host_keys, host_entry = host_keys[valid], host_entry[valid]
    order = np.lexsort((host_entry, host_keys))  # the best (first) bigram per (pair, word)
    host_keys, host_entry = host_keys[order], host_entry[order]
    first = np.ones(len(host_keys), dtype=bool)
    first[1:] = host_keys[1:] != host_keys[:-1]
    host_keys, host_entry = host_keys[first], host_entry[first]
    uni = np.flatnonzero(~is_bi)
    keys = pair[uni] * n_terms + cols[uni]
    at = np.minimum(np.searchsorted(host_keys, keys), max(len(host_keys) - 1, 0))
    hosted = (host_keys[at] == keys) if len(host_keys) else np.zeros(len(uni), dtype=bool)
    target = entry.copy()
    target[uni[hosted]] = host_entry[at[hosted]]
    merged = np.bincount(target, weights=weights, minlength=len(cols))
    alone = is_bi.copy()
    alone[uni[~hosted]] = True
    cand = np.flatnonzero(alone)
    if quiet is not None:  # names and filler are never a reason on their own
        cand = cand[~quiet[cols[cand]]]
    cand = cand[np.lexsort((cand, ~is_bi[cand], -merged[cand], pair[cand]))]
    p = pair[cand]
    starts = (
        np.flatnonzero(np.concatenate([[True], p[1:] != p[:-1]])) if len(p) else np.zeros(0, dtype=np.int64)
    )
    rank = np.arange(len(cand)) - np.repeat(starts, np.diff(np.append(starts, len(cand))))
    keep = cand[rank < k]
    bounds = np.searchsorted(pair[keep], np.arange(n_pairs + 1)).tolist()
    return Folded(bounds, cols[keep].tolist(), merged[keep].tolist())


def explain_rows(
    window: ItemWindow, rows: Sequence[int], query: np.ndarray, terms: np.ndarray, k: int = WHY_TERMS
) -> list[list[dict[str, object]]]:
    """``why`` of each row: the same result as :func:`aggregator.ranking.tfidf.explain` with the
    item's text (top ``k`` terms by item[t] × query[t], unigrams folded into contributing
    bigrams, then joined into the text's whole phrases), computed from the CSR arrays directly
    for speed. ``query``: n_terms dense (or 1 × n_terms CSR)."""
    q = sp.csr_matrix(np.asarray(query, dtype=np.float32).reshape(1, -1) if not sp.issparse(query) else query)
    rows_ = np.asarray(rows, dtype=np.int64)
    names = _vocabulary(window, terms)[0]
    folded = _explain(window, rows_, q, np.zeros(len(rows_), dtype=np.int64), terms, k)
    from aggregator.ranking.text import join_phrases  # imports scikit-learn's stop words

    whole = [
        join_phrases(
            [(names[c], w) for c, w in folded.pair(i)], window.texts[r], window.phrases, window.continuations
        )
        for i, r in enumerate(rows_)
    ]
    return [[{"term": t, "weight": round(w, 4)} for t, w in why] for why in whole]
