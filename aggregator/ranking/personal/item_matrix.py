"""The item window: the recent items as a TF-IDF matrix and lookup tables, cached per process and model."""

from __future__ import annotations

import datetime as dt
import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
import sqlalchemy as sa
from sqlalchemy.orm import Session

from aggregator.accounts.topic_filters import normal_name as _norm
from aggregator.accounts.topic_filters import phrase_pattern
from aggregator.store.tables import Feed, Item, ItemSource
from aggregator.types import TopicFilter

#: Phrase and topic masks an item window keeps (an LRU; issue 14, finding 6): at 20,000 items
#: each is 20 kB, and readers' phrases change with every profile save.
MEMO_QUERIES = 1024

if TYPE_CHECKING:  # rank imports scikit-learn; only needed at run time when a model exists
    from aggregator.ranking.tfidf import TfidfModel

# --- the item window ----------------------------------------------------------------------------


@dataclass(eq=False)
class ItemWindow:
    """The items a reader's ranking looks at, with everything scoring needs as arrays.

    ``matrix`` is n_items × n_terms (CSR float32, rows L2-normalised); ``ids`` n_items int64;
    ``published`` n_items float64 (POSIX seconds, UTC); ``texts`` "title\\nsummary" per item;
    ``authors``/``categories``/``sources`` tuples per item. Lookup tables (author, category,
    source → rows) and phrase/topic masks are built lazily and memoised on the window.
    """

    ids: np.ndarray
    matrix: sp.csr_matrix
    published: np.ndarray
    texts: list[str]
    authors: list[tuple[str, ...]]
    categories: list[tuple[str, ...]]
    sources: list[tuple[str, ...]]
    model_id: int | None = None
    updated: np.ndarray | None = None  # n_items float64, items.updated_at (cache refresh)
    stamp: tuple[Any, ...] | None = None  # the items' fingerprint when cached (item_window)
    topics: np.ndarray | None = None  # the model's topic space, k × n_terms (ranking.semantic)
    phrases: frozenset[str] = frozenset()  # the model's connector phrases ("mixture of experts")
    #: the model's fragment bigrams and the words completing them (TfidfModel.continuations)
    continuations: dict[str, frozenset[str]] = field(default_factory=dict)
    _memo: dict[Any, Any] = field(default_factory=dict, repr=False)
    _queries: OrderedDict[Any, None] = field(default_factory=OrderedDict, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @classmethod
    def build(
        cls,
        model: TfidfModel,
        ids: Sequence[int],
        titles: Sequence[str],
        summaries: Sequence[str],
        authors: Sequence[Sequence[str]],
        categories: Sequence[Sequence[str]],
        sources: Sequence[Sequence[str]],
        published: Sequence[dt.datetime] | np.ndarray,
        updated: np.ndarray | None = None,
    ) -> ItemWindow:
        """Transform the items' text (``rank.item_text``) with ``model`` and pack the arrays."""
        from aggregator.ranking.tfidf import item_text

        texts = [item_text(t, s, a) for t, s, a in zip(titles, summaries, authors, strict=True)]
        matrix = model.transform(texts) if texts else sp.csr_matrix((0, model.n_terms), dtype=np.float32)
        pub = np.asarray(
            [p.timestamp() if isinstance(p, dt.datetime) else float(p) for p in published], dtype=np.float64
        )
        return cls(
            ids=np.asarray(ids, dtype=np.int64),
            matrix=sp.csr_matrix(matrix, dtype=np.float32),
            published=pub,
            texts=[f"{t}\n{s}" for t, s in zip(titles, summaries, strict=True)],
            authors=[tuple(a) for a in authors],
            categories=[tuple(c) for c in categories],
            sources=[tuple(s) for s in sources],
            model_id=model.model_id,
            updated=updated,
            topics=model.topics,
            phrases=model.phrases,
            continuations=model.continuations,
        )

    def __len__(self) -> int:
        return len(self.ids)

    def _memoised(self, key: Any, make: Any) -> Any:
        """``make()`` once per ``key``. Per-query keys (tuples: a phrase's or a topic's mask,
        n_items bools each) are kept for the last :data:`MEMO_QUERIES` only, oldest dropped
        first; the window's own tables (string keys) for its lifetime."""
        value = self._memo.get(key)
        if value is None:
            value = make()
            with self._lock:
                self._memo[key] = value
                if isinstance(key, tuple):
                    self._queries[key] = None
                    while len(self._queries) > MEMO_QUERIES:
                        old, _ = self._queries.popitem(last=False)
                        self._memo.pop(old, None)
        elif isinstance(key, tuple) and key in self._queries:
            with self._lock:
                if key in self._queries:
                    self._queries.move_to_end(key)
        return value

    @property
    def position(self) -> dict[int, int]:
        """item id → row."""
        return self._memoised("position", lambda: {int(i): r for r, i in enumerate(self.ids)})

    @property
    def background(self) -> np.ndarray:
        """Mean row of ``matrix``: n_terms float32 (zeros for an empty window)."""

        def make() -> np.ndarray:
            if len(self) == 0:
                return np.zeros(self.matrix.shape[1], dtype=np.float32)
            return np.asarray(self.matrix.mean(axis=0), dtype=np.float32).ravel()

        return self._memoised("background", make)

    @property
    def basis(self) -> np.ndarray | None:
        """The model's topics transposed, n_terms × k float32 in C order, or None."""
        if self.topics is None:
            return None
        return self._memoised("basis", lambda: np.ascontiguousarray(self.topics.T))  # type: ignore[no-any-return,union-attr]

    @property
    def semantic(self) -> np.ndarray | None:
        """The items in the model's topic space (n_items × k float32, unit rows;
        :mod:`aggregator.ranking.semantic`), or None when the model has none."""
        basis = self.basis
        if basis is None or len(self) == 0:
            return None
        from aggregator.ranking.semantic import project

        return self._memoised("semantic", lambda: project(self.matrix, basis))  # type: ignore[no-any-return]

    def _index(self, name: str, values: list[tuple[str, ...]], norm: Any) -> dict[str, np.ndarray]:
        def make() -> dict[str, np.ndarray]:
            rows: dict[str, list[int]] = {}
            for r, vals in enumerate(values):
                for v in {norm(x) for x in vals}:
                    rows.setdefault(v, []).append(r)
            return {k: np.asarray(v, dtype=np.int64) for k, v in rows.items()}

        return self._memoised(name, make)

    def rows_with_author(self, name: str) -> np.ndarray:
        return self._index("authors", self.authors, _norm).get(_norm(name), _EMPTY)

    def rows_with_category(self, cat: str) -> np.ndarray:
        return self._index("categories", self.categories, str.casefold).get(cat.casefold(), _EMPTY)

    def rows_with_source(self, source: str) -> np.ndarray:
        return self._index("sources", self.sources, _norm).get(_norm(source), _EMPTY)

    def phrase_mask(self, phrase: str) -> np.ndarray:
        """n_items bool: ``phrase`` occurs in title/abstract (:func:`phrase_pattern`).

        Only texts whose case-folded form holds the phrase's first word are tried (found by
        one scan of all of them joined). In an ASCII text an ASCII phrase can only match where
        that word occurs, so the pattern is tried there only (``match`` at each occurrence,
        its look-behind seeing the text before); other texts are searched whole."""

        def make() -> np.ndarray:
            pat = phrase_pattern(phrase)
            head = re.split(r"[\s\-]+", phrase.strip().casefold())[0] if phrase.strip() else ""
            mask = np.zeros(len(self), dtype=bool)
            if not head:  # every text is a candidate
                for r, t in enumerate(self.texts):
                    mask[r] = pat.search(t) is not None
                return mask
            joined, starts, is_ascii = self._folded()
            found = []
            at = joined.find(head)
            while at >= 0:  # a head has no whitespace: never across two texts
                found.append(at)
                at = joined.find(head, at + 1)
            words = [w for w in re.split(r"[\s\-]+", phrase.strip()) if w]
            anchored = phrase.isascii() and bool(words) and words[0].lower() == head
            positions = np.asarray(found, dtype=np.int64)
            rows = np.searchsorted(starts, positions, side="right") - 1
            done: set[int] = set()
            for r, local in zip(rows.tolist(), (positions - starts[rows]).tolist(), strict=True):
                if r in done:
                    continue
                if anchored and is_ascii[r]:
                    if pat.match(self.texts[r], local) is not None:
                        mask[r] = True
                        done.add(r)
                else:
                    mask[r] = pat.search(self.texts[r]) is not None
                    done.add(r)
            return mask

        return self._memoised(("phrase", phrase), make)

    def _folded(self) -> tuple[str, np.ndarray, list[bool]]:
        """The texts case-folded and joined by newlines, each one's start in it (int64), and
        whether each text is ASCII (its folded form then has the same positions). Memoised."""

        def make() -> tuple[str, np.ndarray, list[bool]]:
            folded = [t.casefold() for t in self.texts]
            lengths = np.asarray([len(t) + 1 for t in folded], dtype=np.int64)
            starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(np.int64)
            return "\n".join(folded), starts, [t.isascii() for t in self.texts]

        return self._memoised("folded", make)  # type: ignore[no-any-return]

    def _rows_mask(self, rows: np.ndarray) -> np.ndarray:
        mask = np.zeros(len(self), dtype=bool)
        mask[rows] = True
        return mask

    def topic_mask(self, topic: TopicFilter) -> np.ndarray:
        """n_items bool: ``accounts.topic_filters.match_topic`` for every item, vectorised and
        memoised (the same rule: "all" needs every phrase and a hit in each non-empty list)."""

        def make() -> np.ndarray:
            phrases = [self.phrase_mask(p) for p in topic.phrases]
            groups = [
                np.isin(np.arange(len(self)), np.concatenate([rows(v) for v in values]))
                for values, rows in (
                    (topic.categories, self.rows_with_category),
                    (topic.authors, self.rows_with_author),
                    (topic.sources, self.rows_with_source),
                )
                if values
            ]
            if not phrases and not groups:
                return np.zeros(len(self), dtype=bool)
            if topic.match == "all":
                hit = np.vstack(phrases + groups).all(axis=0)
            else:
                hit = np.vstack(phrases + groups).any(axis=0)
            for n in topic.negative:
                hit &= ~self.phrase_mask(n)
            return np.asarray(hit, dtype=bool)

        return self._memoised(("topic", topic), make)

    def mute_mask(self, muted: Sequence[str]) -> np.ndarray:
        """n_items bool: an entry of ``muted`` is an author of the item or a phrase in it."""
        mask = np.zeros(len(self), dtype=bool)
        for m in muted:
            if m.strip():
                mask[self.rows_with_author(m)] = True
                mask |= self.phrase_mask(m)
        return mask

    def subset(self, rows: np.ndarray) -> ItemWindow:
        """A window of the given rows (no memo carried over)."""
        rows = np.asarray(rows, dtype=np.int64)
        return ItemWindow(
            ids=self.ids[rows],
            matrix=self.matrix[rows],
            published=self.published[rows],
            texts=[self.texts[r] for r in rows],
            authors=[self.authors[r] for r in rows],
            categories=[self.categories[r] for r in rows],
            sources=[self.sources[r] for r in rows],
            model_id=self.model_id,
            updated=None if self.updated is None else self.updated[rows],
            topics=self.topics,
            phrases=self.phrases,
            continuations=self.continuations,
        )


_EMPTY = np.zeros(0, dtype=np.int64)


# --- database -----------------------------------------------------------------------------------

_CACHE: dict[tuple[str, tuple[int | None, int, int], float], ItemWindow] = {}
_CACHE_LOCK = threading.Lock()


def clear_cache() -> None:
    """Forget cached windows (tests; after deleting items)."""
    with _CACHE_LOCK:
        _CACHE.clear()


def _ts(value: dt.datetime | None) -> float:
    return 0.0 if value is None else value.timestamp()


def _sources_of(session: Session, ids: Sequence[int]) -> dict[int, tuple[str, ...]]:
    out: dict[int, list[str]] = {}
    for start in range(0, len(ids), 5000):
        chunk = list(ids[start : start + 5000])
        rows = session.execute(
            sa.select(ItemSource.item_id, Feed.name)
            .join(Feed, Feed.id == ItemSource.feed_id)
            .where(ItemSource.item_id.in_(chunk))
        )
        for iid, name in rows:
            names = out.setdefault(iid, [])
            if name not in names:
                names.append(name)
    return {k: tuple(v) for k, v in out.items()}


def load_items(session: Session, model: TfidfModel, ids: Sequence[int]) -> ItemWindow:
    """A window of the given items (read and transformed now; not cached), in id order."""
    rows: list[Any] = []
    for start in range(0, len(ids), 5000):
        chunk = list(ids[start : start + 5000])
        rows += session.execute(
            sa.select(
                Item.id,
                Item.title,
                Item.summary,
                Item.authors,
                Item.categories,
                Item.published,
                Item.updated_at,
            ).where(Item.id.in_(chunk))
        ).all()
    rows.sort(key=lambda r: r.id)
    sources = _sources_of(session, [r.id for r in rows])
    return ItemWindow.build(
        model,
        [r.id for r in rows],
        [r.title for r in rows],
        [r.summary or "" for r in rows],
        [list(r.authors or []) for r in rows],
        [list(r.categories or []) for r in rows],
        [sources.get(r.id, ()) for r in rows],
        [r.published for r in rows],
        updated=np.asarray([_ts(r.updated_at) for r in rows], dtype=np.float64),
    )


def _updated(w: ItemWindow) -> np.ndarray:
    return w.updated if w.updated is not None else np.zeros(len(w), dtype=np.float64)


def _concat(a: ItemWindow, b: ItemWindow) -> ItemWindow:
    order = np.argsort(np.concatenate([a.ids, b.ids]), kind="stable")
    both = ItemWindow(
        ids=np.concatenate([a.ids, b.ids]),
        matrix=sp.vstack([a.matrix, b.matrix], format="csr"),
        published=np.concatenate([a.published, b.published]),
        texts=a.texts + b.texts,
        authors=a.authors + b.authors,
        categories=a.categories + b.categories,
        sources=a.sources + b.sources,
        model_id=a.model_id,
        updated=np.concatenate([_updated(a), _updated(b)]),
        topics=a.topics,
        phrases=a.phrases,
        continuations=a.continuations,
    )
    return both.subset(order)


def window_bounds(
    session: Session, now: dt.datetime | None, window_days: int
) -> tuple[dt.datetime, dt.datetime] | None:
    """(since, newest): the window holds every item published from ``window_days`` days before
    the newest *paper* published at or before ``now`` (any time when ``now`` is None) on;
    ``newest`` is the newest such item of any kind. Papers set the start because arXiv
    announces every weekday, so the newest paper is today's in normal operation, while a blog's
    dates can be anything (on replayed or imported data, posts from months after the papers
    would otherwise push every paper out of the window). Without papers the newest item sets
    it. None when there are no items."""

    def newest_of(*where: Any) -> dt.datetime | None:
        query = sa.select(sa.func.max(Item.published)).where(*where)
        if now is not None:
            query = query.where(Item.published <= now)
        value = session.scalar(query)
        return None if value is None else value if value.tzinfo else value.replace(tzinfo=dt.UTC)

    newest = newest_of()
    if newest is None:
        return None
    anchor = newest_of(Item.kind == "paper") or newest
    return anchor - dt.timedelta(days=window_days), newest


def _window_stamp(session: Session, since: dt.datetime) -> tuple[Any, ...]:
    """A cheap fingerprint of the items published at or after ``since``: count, min/max/sum of
    ids and newest ``updated_at``, in one aggregate query (no rows transferred). An added or
    deleted item changes count/sum/max id; a changed item gets a newer ``updated_at``."""
    row = session.execute(
        sa.select(
            sa.func.count(),
            sa.func.min(Item.id),
            sa.func.max(Item.id),
            sa.func.sum(Item.id),
            sa.func.max(Item.updated_at),
        ).where(Item.published >= since)
    ).one()
    count, lo, hi, total, newest = row
    return (int(count), lo and int(lo), hi and int(hi), total and int(total), _ts(newest))


def item_window(session: Session, model: TfidfModel, since: dt.datetime) -> ItemWindow:
    """The cached window of items published at or after ``since`` for ``model``.

    The cache key is (database URL, (model id, n_terms, n_docs), since). Validity is checked
    with one aggregate query (:func:`_window_stamp`); only when it differs are the stored (id,
    ``updated_at``) pairs read and the window refreshed: unchanged rows are reused, only new or changed items
    are transformed and read; sources are re-read for the window. A window of the same model
    for another ``since`` (a rescore around an older item) is reused the same way. Thread-safe;
    one window per model is kept (older ones are dropped)."""
    url = session.get_bind().engine.url.render_as_string(hide_password=True)
    # model ids restart when a database is recreated: the vocabulary's size and corpus size tell
    # two models with the same id apart, so a cached matrix never meets the wrong vocabulary
    key = (url, (model.model_id, model.n_terms, model.n_docs), since.timestamp())
    stamp = _window_stamp(session, since)
    with _CACHE_LOCK:
        cached = _CACHE.get(key)
        if cached is None:  # same model, other window start: reuse its rows
            cached = next((w for k, w in reversed(_CACHE.items()) if k[:2] == key[:2]), None)
        elif cached.stamp == stamp:
            return cached
    current = session.execute(
        sa.select(Item.id, Item.updated_at).where(Item.published >= since).order_by(Item.id)
    ).all()
    ids = np.asarray([r.id for r in current], dtype=np.int64)
    updated = np.asarray([_ts(r.updated_at) for r in current], dtype=np.float64)
    reuse_rows: np.ndarray = _EMPTY
    if cached is not None and model.model_id is not None and cached.updated is not None:
        pos = cached.position
        old_updated = cached.updated
        keep = [
            pos[i]
            for i, u in zip(ids.tolist(), updated.tolist(), strict=True)
            if i in pos and old_updated[pos[i]] == u
        ]
        reuse_rows = np.asarray(keep, dtype=np.int64)
    if cached is not None and len(reuse_rows) == len(ids) and len(cached) == len(ids):
        window = cached  # same rows (e.g. a stale stamp after a no-op update): keep the memo
    else:
        reused_ids = set(cached.ids[reuse_rows].tolist()) if cached is not None and len(reuse_rows) else set()
        fresh_ids = [i for i in ids.tolist() if i not in reused_ids]
        fresh = load_items(session, model, fresh_ids)
        if reused_ids and cached is not None:
            old = cached.subset(reuse_rows)
            sources = _sources_of(session, old.ids.tolist())
            old.sources = [sources.get(int(i), ()) for i in old.ids]
            window = _concat(old, fresh)
        else:
            window = fresh
    window.stamp = stamp
    with _CACHE_LOCK:
        for k in [k for k in _CACHE if k[:2] == key[:2]]:
            del _CACHE[k]
        if model.model_id is not None:
            _CACHE[key] = window
        # keep only the newest few models' windows
        while len(_CACHE) > 3:
            del _CACHE[next(iter(_CACHE))]
    return window
