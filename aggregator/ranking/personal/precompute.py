"""Precomputing readers' scores into ``scores``: batched scoring, explaining and writing."""

from __future__ import annotations

import datetime as dt
import json
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import scipy.sparse as sp
import sqlalchemy as sa
from sqlalchemy.orm import Session

from aggregator.ranking.personal.explain import _explain, _phrase_columns, _quoted_terms, _vocabulary
from aggregator.ranking.personal.item_matrix import (
    _EMPTY,
    ItemWindow,
    _concat,
    item_window,
    load_items,
    window_bounds,
)
from aggregator.ranking.personal.scoring import (
    _READER_CHUNK,
    ALPHA,
    BETA,
    DAY_TOP,
    GAMMA,
    TOP_K,
    WHY_TERMS,
    WHY_TOP,
    WINDOW_DAYS,
    ReaderInputs,
    _adjust_rows,
    _kept_rows,
    _matched,
    _mute_mask,
    _query_matrix,
    profile_vectors,
    recency,
)
from aggregator.ranking.personal.votes import VoteEffect
from aggregator.store.db import dbapi_datetime
from aggregator.store.tables import Item, Score
from aggregator.types import ReaderProfile

if TYPE_CHECKING:  # rank imports scikit-learn; only needed at run time when a model exists
    from aggregator.ranking.tfidf import TfidfModel


def _reader_matrices(
    session: Session, model: TfidfModel, window: ItemWindow, profiles: Sequence[ReaderProfile]
) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    """``base`` and ``disliked`` (see :class:`ReaderInputs`) of all readers as two n_readers ×
    n_terms CSR matrices, in one pass: one ``model.transform`` for every profile text, keyword
    and seed paper (:func:`profile_vectors`); the rated items' rows taken from the window (or
    read and transformed when older) and averaged per reader by a sparse (n_readers × n_rated)
    weight matrix product."""
    from aggregator.feeds.arxiv import split_arxiv_id
    from aggregator.ranking.tfidf import item_text

    n = len(profiles)
    seeds_wanted = {a[0] for p in profiles for s in p.seed_papers if (a := split_arxiv_id(s))}
    seed_texts: dict[str, str] = {}
    if seeds_wanted:
        found = session.execute(
            sa.select(Item.arxiv_id, Item.title, Item.summary, Item.authors).where(
                Item.arxiv_id.in_(sorted(seeds_wanted))
            )
        )
        seed_texts = {r.arxiv_id: item_text(r.title, r.summary, r.authors) for r in found}
    seeds = [
        [seed_texts[a[0]] for s in p.seed_papers if (a := split_arxiv_id(s)) and a[0] in seed_texts]
        for p in profiles
    ]
    pvecs = profile_vectors(model, profiles, seeds)

    wanted = sorted({i for p in profiles for i in (*p.liked_item_ids, *p.disliked_item_ids)})
    pos = window.position
    inside = [i for i in wanted if i in pos]
    parts = [window.matrix[np.asarray([pos[i] for i in inside], dtype=np.int64)]]
    ids = inside
    missing = [i for i in wanted if i not in pos]
    if missing:
        extra = load_items(session, model, missing)
        parts.append(extra.matrix)
        ids = inside + extra.ids.tolist()
    rated = sp.csr_matrix(sp.vstack(parts, format="csr"), dtype=np.float32)
    col = {i: c for c, i in enumerate(ids)}

    def weights(attr: str) -> sp.csr_matrix:
        r_, c_, w_ = [], [], []
        for j, p in enumerate(profiles):
            cols = [col[i] for i in getattr(p, attr) if i in col]
            r_ += [j] * len(cols)
            c_ += cols
            w_ += [1.0 / max(1, len(cols))] * len(cols)
        return sp.csr_matrix(
            (
                np.asarray(w_, dtype=np.float32),
                (np.asarray(r_, dtype=np.int64), np.asarray(c_, dtype=np.int64)),
            ),
            shape=(n, len(ids)),
        )

    disliked = sp.csr_matrix(GAMMA * (weights("disliked_item_ids") @ rated), dtype=np.float32)
    base = ALPHA * pvecs + BETA * (weights("liked_item_ids") @ rated) - disliked
    return sp.csr_matrix(base, dtype=np.float32), disliked


def _compile_all(
    session: Session, model: TfidfModel, window: ItemWindow, profiles: Sequence[ReaderProfile]
) -> list[ReaderInputs]:
    """:class:`ReaderInputs` of each profile (see :func:`_reader_matrices`)."""
    base, disliked = _reader_matrices(session, model, window, profiles)
    return [
        ReaderInputs(p, base[j], disliked[j], frozenset(p.liked_item_ids) | frozenset(p.disliked_item_ids))
        for j, p in enumerate(profiles)
    ]


@dataclass(slots=True)
class PrecomputeTimings:
    """Seconds spent in each phase of one :func:`precompute_all` call (its ``timings=``)."""

    window: float = 0.0
    compile: float = 0.0
    score: float = 0.0
    why: float = 0.0
    write: float = 0.0


_COLUMNS = ("profile", "item_id", "score", "why", "model_id", "topics", "authors", "muted", "published")
_NO_LIST = "[]"


def precompute_all(
    session: Session,
    model: TfidfModel,
    profiles: Sequence[ReaderProfile],
    item_ids: Sequence[int] | None = None,
    *,
    now: dt.datetime | None = None,
    window_days: int = WINDOW_DAYS,
    top_k: int | None = TOP_K,
    why_top: int | None = WHY_TOP,
    day_top: int = DAY_TOP,
    why_terms: int = WHY_TERMS,
    write: bool = True,
    timings: PrecomputeTimings | None = None,
) -> int:
    """Score ``profiles`` (n_readers) against the window's items and store each reader's best
    ``top_k`` in ``scores`` (``profile = score_key``; ``why``, ``topics``, ``authors``,
    ``model_id``). ``item_ids``: score only these items (e.g. the newly fetched ones) — the
    window is still used for the background and pseudo-relevance feedback; default: every item
    published from ``window_days`` days before the newest paper on (see :func:`window_bounds`).

    All readers' query parts are built in one pass (:func:`_reader_matrices`); then, per
    ``_READER_CHUNK`` readers, two products (n_items × n_terms CSC) @ (n_terms × chunk dense)
    give a dense chunk × n_items block (Rocchio, then PRF: :func:`_query_matrix`), boosts and
    filters are applied per reader with vector operations, and one ``argpartition`` over the
    block picks each reader's top-K, plus the best ``day_top`` of the newest day (the 24 h up
    to the newest paper). ``why`` is computed for each reader's best ``why_top`` rows (None:
    all; others get ``[]``) and those newest-day rows, all pairs of a chunk at once. A second
    thread scores the next chunk while this one explains the last, and a third upserts each
    chunk's rows as soon as they are encoded (:func:`_upsert`; SQLite and psycopg leave the
    interpreter lock while the database works; a SQLite connection must therefore allow use
    from another thread, as :func:`aggregator.store.db.make_engine` sets up). The readers'
    other rows for the scored items are then deleted (:func:`_delete_stale`), so excluded and
    dropped items disappear.
    ``write=False`` scores without touching the database (benchmarks); ``timings``, when given,
    receives the seconds of each phase (``write``: the upserts' own seconds in their thread,
    plus waiting for the last and the deletes).
    Returns rows written (or that would be written). The caller
    commits.

    Long because the two-thread pipeline (``scored`` in the pool, explaining and encoding
    here) shares the window, the readers' matrices and the row buffer; split, each piece would
    take a dozen arguments. 👎'd items are added to the kept rows last and flagged hidden."""
    timings = timings if timings is not None else PrecomputeTimings()
    profiles = list({p.score_key: p for p in profiles}.values())  # one result per reader
    if not profiles:
        return 0
    t0 = time.perf_counter()
    bounds = window_bounds(session, now, window_days)
    if bounds is None:
        return 0
    since, newest = bounds
    window = item_window(session, model, since)
    restrict: np.ndarray | None = None
    if item_ids is not None:
        wanted = {int(i) for i in item_ids}
        outside = sorted(i for i in wanted if i not in window.position)
        if outside:  # older items named explicitly: score them too, in a window of their own
            window = _concat(window, load_items(session, model, outside))
        pos = window.position
        restrict = np.ones(len(window), dtype=bool)
        restrict[[pos[i] for i in wanted if i in pos]] = False  # True: not scored
    rec = recency(window.published, (now or newest).timestamp())
    # the newest day (the 24 h up to the newest paper, which set the window's start)
    anchor = (since + dt.timedelta(days=window_days)).timestamp()
    day_rows = np.flatnonzero((window.published > anchor - 86400) & (window.published <= anchor))
    timings.window = time.perf_counter() - t0

    t1 = time.perf_counter()
    base, disliked = _reader_matrices(session, model, window, profiles)
    pos = window.position
    rated = [
        np.asarray(
            sorted({pos[i] for i in (*p.liked_item_ids, *p.disliked_item_ids) if i in pos}), dtype=np.int64
        )
        for p in profiles
    ]
    timings.compile = time.perf_counter() - t1

    n_rows = 0
    conn = session.connection() if write else None
    run = time.time_ns()  # this run's tag on every row it writes (``scores.run``)
    ids = window.ids.tolist()
    stamps = _Stamps(window.published, session.get_bind().dialect.name)
    encoded: dict[tuple[str, ...], str] = {}

    def encode(names: list[str]) -> str:  # topic slugs / author lists repeat: encode each once
        key = tuple(names)
        text = encoded.get(key)
        if text is None:
            text = encoded[key] = json.dumps(names)
        return text

    def scored(
        start: int,
    ) -> tuple[sp.csr_matrix, np.ndarray, list[np.ndarray], list[np.ndarray], VoteEffect, float]:
        """The chunk of readers from ``start``: queries, scores, kept and explained rows."""
        t2 = time.perf_counter()
        sl = slice(start, start + _READER_CHUNK)
        queries, score = _query_matrix(window, base[sl], disliked[sl], rated[sl])
        effect = _adjust_rows(window, profiles[sl], score, rec)
        thumbs_down = effect.disliked
        if restrict is not None:
            score[:, restrict] = -np.inf
        kept, explained = _kept_rows(score, top_k, why_top, day_rows, day_top)
        for j, rows in enumerate(thumbs_down):  # 👎'd items are stored last, flagged hidden
            extra = rows[np.isfinite(score[j, rows]) & ~np.isin(rows, kept[j])]
            if len(extra):
                kept[j] = np.concatenate([kept[j], extra])
                explained[j] = np.concatenate([explained[j], np.zeros(len(extra), dtype=bool)])
        return queries, score, kept, explained, effect, time.perf_counter() - t2

    def upsert(rows: list[tuple[Any, ...]]) -> float:
        t = time.perf_counter()
        assert conn is not None
        _upsert(conn, rows, run)
        return time.perf_counter() - t

    # Pipelined over three threads: while this thread explains and encodes one chunk (Python,
    # holding the GIL), the next chunk's sparse products run in the pool (scipy's sparsetools
    # and numpy's partitions release the GIL), and the last chunk's rows are upserted by the
    # writer (the database's own work runs without the GIL), so both cores work. Only the
    # writer uses the connection until the upserts are done.
    starts = list(range(0, len(profiles), _READER_CHUNK))
    upserts = []
    with (
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="precompute") as pool,
        ThreadPoolExecutor(max_workers=1, thread_name_prefix="precompute-write") as writer,
    ):
        pending = pool.submit(scored, starts[0])
        for n_chunk, start in enumerate(starts):
            queries, score, kept, explained, effect, took = pending.result()
            if n_chunk + 1 < len(starts):
                pending = pool.submit(scored, starts[n_chunk + 1])
            timings.score += took
            t3 = time.perf_counter()
            chunk = profiles[start : start + _READER_CHUNK]
            why_rows = (
                np.concatenate([r[m] for r, m in zip(kept, explained, strict=True)]) if kept else _EMPTY
            )
            owners = np.repeat(np.arange(len(chunk)), [int(m.sum()) for m in explained])
            prefixes = _quoted_terms(window, model.terms)
            folded = _explain(window, why_rows, queries, owners, model.terms, why_terms)
            texts = [window.texts[r] for r in why_rows.tolist()]
            names, phrase_cols = _vocabulary(window, model.terms)[0], _phrase_columns(window, model.terms)
            whys = iter(folded.json(prefixes, names, texts, phrase_cols))
            rows_out: list[tuple[Any, ...]] = []
            for j, (prof, rows) in enumerate(zip(chunk, kept, strict=True)):
                key = prof.score_key
                vals = score[j, rows].tolist()
                authors, topics = _matched(window, prof, rows)
                mute = _mute_mask(window, prof.muted)
                hide = np.isin(rows, effect.disliked[j])
                voted = effect.reasons(window, j, rows)
                if mute is not None:
                    hide |= mute[rows]
                muted = hide.tolist()
                for i, (r, has_why) in enumerate(zip(rows.tolist(), explained[j].tolist(), strict=True)):
                    rows_out.append(
                        (
                            key,
                            ids[r],
                            vals[i],
                            _with_votes(voted[i], next(whys)) if has_why else _NO_LIST,
                            model.model_id,
                            _NO_LIST if topics[i] is None else encode(topics[i]),
                            _NO_LIST if authors[i] is None else encode(authors[i]),
                            muted[i],
                            stamps[r],
                        )
                    )
            n_rows += len(rows_out)
            if write:
                upserts.append(writer.submit(upsert, rows_out))
            timings.why += time.perf_counter() - t3
        t4 = time.perf_counter()
        timings.write = sum(u.result() for u in upserts)
    if conn is not None:
        keys = [p.score_key for p in profiles]
        _delete_stale(conn, keys, run, since if item_ids is None else None, item_ids)
        timings.write += time.perf_counter() - t4
    return n_rows


def _with_votes(entries: str, why: str) -> str:
    """The ``why`` JSON list with the vote reasons (JSON objects each followed by a comma)
    first."""
    if not entries:
        return why
    return "[" + (entries[:-1] if why == "[]" else entries + why[1:-1]) + "]"


class _Stamps(dict[int, Any]):
    """Window row → ``scores.published`` as the DBAPI takes it (:func:`dbapi_datetime`),
    converted on first use. The float64 POSIX seconds of the window round-trip to the exact
    microsecond."""

    def __init__(self, published: np.ndarray, dialect: str) -> None:
        super().__init__()
        self.published, self.dialect = published, dialect

    def __missing__(self, row: int) -> Any:
        value = dt.datetime.fromtimestamp(float(self.published[row]), dt.UTC)
        self[row] = out = dbapi_datetime(self.dialect, value)
        return out


#: an upsert rewrites a row's values in place; ``published`` is immutable (copied from the
#: item), and leaving it out of the SET leaves ``ix_scores_profile_published`` untouched
_UPSERT_SET = ", ".join(f"{c} = excluded.{c}" for c in (*_COLUMNS[2:], "run") if c != "published")


def _delete_stale(
    conn: sa.Connection,
    keys: Sequence[str],
    run: int,
    since: dt.datetime | None,
    item_ids: Sequence[int] | None,
) -> None:
    """Make the rows upserted by run ``run`` (:func:`_upsert`) the only rows of the readers
    ``keys`` for the scored items (those published from ``since`` on, or else ``item_ids``):
    the readers' rows of those items that this run did not write (items no longer kept,
    excluded or dropped) are deleted, one statement per 500 readers.

    Upserting and then deleting the rest, rather than deleting and inserting: most of a
    reader's kept items stay kept from run to run, so most rows are updated where they are: on
    SQLite that is 0.8–1.5 s instead of 2.2 s for 238k rows (``bench/rank_speed.py``). The
    upsert also keeps a concurrent rescore of the same reader from failing."""
    stale = sa.or_(Score.run.is_(None), Score.run != run)
    ids = None if item_ids is None else list(dict.fromkeys(int(i) for i in item_ids))
    for start in range(0, len(keys), 500):
        delete = sa.delete(Score).where(Score.profile.in_(list(keys[start : start + 500])), stale)
        if ids is not None:
            for s in range(0, len(ids), 5000):
                conn.execute(delete.where(Score.item_id.in_(ids[s : s + 5000])))
        else:
            assert since is not None
            # the readers' rows of the window: one range of ix_scores_profile_published each
            conn.execute(delete.where(Score.published >= since))


def _upsert(conn: sa.Connection, rows: list[tuple[Any, ...]], run: int) -> None:
    """Insert or update ``rows`` (tuples in ``_COLUMNS`` order, JSON columns already encoded),
    each tagged ``scores.run = run``: one DBAPI ``executemany`` on SQLite; a COPY into a
    temporary table and one ``INSERT … SELECT … ON CONFLICT`` on PostgreSQL."""
    if not rows:
        return
    cols = ", ".join(_COLUMNS)
    if conn.dialect.name != "postgresql":
        marks = ", ".join("?" for _ in _COLUMNS)
        conn.exec_driver_sql(
            f"INSERT INTO scores ({cols}, run) VALUES ({marks}, {run}) "
            f"ON CONFLICT (profile, item_id) DO UPDATE SET {_UPSERT_SET}",
            rows,
        )
        return
    cur = conn.connection.driver_connection.cursor()  # type: ignore[union-attr]
    try:
        cur.execute(
            "CREATE TEMP TABLE IF NOT EXISTS scores_incoming ON COMMIT DELETE ROWS AS "
            f"SELECT {cols} FROM scores WITH NO DATA"
        )
        cur.execute("TRUNCATE scores_incoming")
        with cur.copy(f"COPY scores_incoming ({cols}) FROM STDIN") as copy:
            for row in rows:
                copy.write_row(row)
        cur.execute(
            f"INSERT INTO scores ({cols}, run) SELECT {cols}, {run} FROM scores_incoming "
            f"ON CONFLICT (profile, item_id) DO UPDATE SET {_UPSERT_SET}"
        )
        cur.execute("TRUNCATE scores_incoming")
    finally:
        cur.close()


def precompute(
    session: Session,
    model: TfidfModel,
    profile: ReaderProfile,
    item_ids: Sequence[int] | None = None,
    *,
    now: dt.datetime | None = None,
    window_days: int = WINDOW_DAYS,
    top_k: int | None = TOP_K,
    why_top: int | None = None,
    day_top: int = DAY_TOP,
) -> int:
    """Score one reader (see :func:`precompute_all`; here ``why`` is filled for every row
    written). Used after a reader changes their profile or gives feedback. Returns rows
    written; the caller commits."""
    return precompute_all(
        session,
        model,
        [profile],
        item_ids,
        now=now,
        window_days=window_days,
        top_k=top_k,
        why_top=why_top,
        day_top=day_top,
    )
