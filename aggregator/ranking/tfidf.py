"""Ranking: a TF-IDF model over title + abstract + authors, cosine similarity to an interest
profile, and ``why`` (the terms that contributed most to a score).

Settings follow arxiv-sanity-lite (karpathy): unigrams and bigrams, sublinear tf, English stop
words, token pattern ``\\b[a-zA-Z_][a-zA-Z0-9_]+\\b``, float32; but bigrams never cross
punctuation or a stop word, URLs and LaTeX are dropped, and authors are whole-name terms
(:mod:`aggregator.ranking.text`, issue 17). The model is fitted on a bounded
recent window of the corpus and stored in the ``rank_models`` table (vocabulary + IDF as a
compressed ``.npz`` blob, no pickle) in one transaction, so a reader never sees half a model.
Scores are precomputed into ``scores``; the request path only reads them.

Shapes: an item matrix is a ``scipy.sparse.csr_matrix`` of n_items × n_terms (float32, rows
L2-normalised); a profile vector is 1 × n_terms, L2-normalised, so a dot product is the
cosine similarity, in [0, 1].
"""

from __future__ import annotations

import datetime as dt
import functools
import io
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import scipy.sparse as sp
import sqlalchemy as sa
from sklearn.feature_extraction.text import CountVectorizer, TfidfVectorizer
from sklearn.preprocessing import normalize
from sqlalchemy.orm import Session

from aggregator.config import Interests
from aggregator.ranking.semantic import fit_topics
from aggregator.ranking.text import (
    AUTHOR_PREFIX,
    AUTHOR_SEP,
    AUTHORS_MARK,
    analyze,
    connector_phrases,
    fragment_continuations,
    is_quiet_term,
    join_phrases,
)
from aggregator.store.db import insert
from aggregator.store.tables import Item, RankModel, Score

TOKEN_PATTERN = r"(?u)\b[a-zA-Z_][a-zA-Z0-9_]+\b"
DEFAULT_PROFILE = "default"
KEYWORD_WEIGHT = 2.0  # keywords count twice the free text: the reader named them on purpose
_KEEP_MODELS = 3


def item_text(title: str, summary: str, authors: Sequence[str]) -> str:
    """The text a paper or post is ranked on: title (twice: it is the densest signal),
    abstract or summary, then the author names after ``text.AUTHORS_MARK`` (each one whole-name
    term for :func:`aggregator.ranking.text.analyze`, never words of the text)."""
    return f"{title}. {title}. {summary}{AUTHORS_MARK}{AUTHOR_SEP.join(authors)}"


@dataclass(frozen=True)
class TfidfModel:
    """A fitted vocabulary (term → column) and its IDF weights (n_terms float32)."""

    terms: np.ndarray  # n_terms array of str, index = column
    idf: np.ndarray  # n_terms float32
    n_docs: int
    model_id: int | None = None
    topics: np.ndarray | None = None  # k × n_terms float32 (aggregator.ranking.semantic), or None
    phrases: frozenset[str] = frozenset()  # "x of y" collocations (text.connector_phrases)

    def __post_init__(self) -> None:
        vocab = {str(t): i for i, t in enumerate(self.terms)}
        object.__setattr__(
            self,
            "_counter",
            CountVectorizer(vocabulary=vocab, analyzer=analyze, dtype=np.float32),
        )

    @property
    def n_terms(self) -> int:
        return len(self.terms)

    @functools.cached_property
    def continuations(self) -> dict[str, frozenset[str]]:
        """The words that complete each fragment bigram of the vocabulary ("large language" →
        {"model", "models"}: :func:`~aggregator.ranking.text.fragment_continuations`), with each
        term's document frequency recovered from its IDF (scikit-learn's smoothed IDF: idf =
        ln((1 + n_docs) / (1 + df)) + 1). Computed once per model, on first use."""
        df = (1.0 + self.n_docs) / np.exp(self.idf.astype(np.float64) - 1.0) - 1.0
        return fragment_continuations([str(t) for t in self.terms], df)

    def transform(self, texts: Sequence[str]) -> sp.csr_matrix:
        """n_texts × n_terms L2-normalised TF-IDF (sublinear tf), float32."""
        counts = self._counter.transform(texts).astype(np.float32)  # type: ignore[attr-defined]
        counts.data = 1.0 + np.log(counts.data)
        weighted = counts.multiply(self.idf[np.newaxis, :]).tocsr()
        return normalize(weighted, norm="l2", copy=False).astype(np.float32)

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        arrays = {"terms": self.terms.astype(str), "idf": self.idf, "n_docs": np.array([self.n_docs])}
        if self.topics is not None:  # float16 halves the blob; the topic space needs no more
            arrays["topics"] = self.topics.astype(np.float16)
        arrays["phrases"] = np.asarray(sorted(self.phrases), dtype=str)
        np.savez_compressed(buf, **arrays)  # type: ignore[arg-type]
        return buf.getvalue()

    @classmethod
    def from_bytes(cls, payload: bytes, model_id: int | None = None) -> TfidfModel:
        with np.load(io.BytesIO(payload), allow_pickle=False) as data:
            topics = data["topics"].astype(np.float32) if "topics" in data.files else None
            phrases = frozenset(str(p) for p in data["phrases"]) if "phrases" in data.files else frozenset()
            idf = data["idf"].astype(np.float32)
            return cls(data["terms"], idf, int(data["n_docs"][0]), model_id, topics, phrases)


def fit(texts: Sequence[str]) -> TfidfModel:
    """Fit TF-IDF on ``texts``. ``min_df`` scales with corpus size (5 from 2,000 docs, as in
    arxiv-sanity-lite; 1 for tiny corpora) and ``max_df=0.5`` drops near-stop-words. The
    model's topic space (:func:`aggregator.ranking.semantic.fit_topics`) is fitted on the same
    TF-IDF rows, and its connector phrases ("mixture of experts":
    :func:`aggregator.ranking.text.connector_phrases`) on the same texts. Raises ``ValueError``
    when ``texts`` is empty."""
    if not texts:
        raise ValueError("cannot fit TF-IDF on an empty corpus")
    n = len(texts)
    min_df = 5 if n >= 2000 else 2 if n >= 50 else 1
    vec = TfidfVectorizer(
        analyzer=analyze,
        sublinear_tf=True,
        min_df=min_df,
        max_df=0.5 if n >= 50 else 1.0,
        dtype=np.float32,
        max_features=200_000,
    )
    try:
        rows = vec.fit_transform(texts)
    except ValueError:  # every term pruned (tiny or stop-word-only corpus): keep all
        vec.set_params(min_df=1, max_df=1.0)
        rows = vec.fit_transform(texts)
    terms = np.empty(len(vec.vocabulary_), dtype=object)
    for term, col in vec.vocabulary_.items():
        terms[col] = term
    phrases = frozenset(connector_phrases(texts, min_docs=5 if n >= 2000 else 3))
    return TfidfModel(terms.astype(str), vec.idf_.astype(np.float32), n, None, fit_topics(rows), phrases)


def profile_vector(model: TfidfModel, interests: Interests, extra_texts: Sequence[str] = ()) -> sp.csr_matrix:
    """1 × n_terms L2-normalised profile: free text, keywords (weighted ``KEYWORD_WEIGHT``)
    and the texts of seed papers, each normalised before they are summed."""
    parts: list[sp.csr_matrix] = []
    if interests.text.strip():
        parts.append(model.transform([interests.text]))
    if interests.keywords:
        kw = model.transform(list(interests.keywords))
        parts.append(sp.csr_matrix(kw.sum(axis=0)) * KEYWORD_WEIGHT / max(1, len(interests.keywords)) ** 0.5)
    if extra_texts:
        seeds = model.transform(list(extra_texts))
        parts.append(sp.csr_matrix(seeds.sum(axis=0)) / len(extra_texts))
    if not parts:
        return sp.csr_matrix((1, model.n_terms), dtype=np.float32)
    total = parts[0]
    for p in parts[1:]:
        total = total + p
    return normalize(sp.csr_matrix(total, dtype=np.float32), norm="l2")


def explain(
    item_row: sp.csr_matrix, profile: sp.csr_matrix, model: TfidfModel, k: int, text: str | None = None
) -> list[dict[str, object]]:
    """Top ``k`` terms by contribution ``item[t] × profile[t]`` to the cosine similarity.

    A unigram that is part of a contributing bigram is folded into it ("language" into
    "language models"), so the list names distinct reasons; with the item's ``text``, those
    ``k`` are then joined into the text's whole phrases (:func:`~aggregator.ranking.text.join_phrases`).
    Each entry is ``{"term": str, "weight": float}``; the weights sum to at most the score.
    """
    contrib = item_row.multiply(profile).tocsr()
    if contrib.nnz == 0:
        return []
    order = np.argsort(-contrib.data)[: 4 * k]
    ranked = [(str(model.terms[contrib.indices[i]]), float(contrib.data[i])) for i in order]
    ranked = [(t, w) for t, w in ranked if not t.startswith(AUTHOR_PREFIX)]
    merged: dict[str, float] = {t: w for t, w in ranked if " " in t}
    bigrams = list(merged)
    for term, weight in ranked:
        if " " in term:
            continue
        host = next((b for b in bigrams if term in b.split(" ")), None)
        merged[host or term] = merged.get(host or term, 0.0) + weight
    best = sorted(((t, w) for t, w in merged.items() if not is_quiet_term(t)), key=lambda tw: -tw[1])[:k]
    if text is not None:
        best = join_phrases(best, text, model.phrases, model.continuations)
    return [{"term": t, "weight": round(w, 4)} for t, w in best]


def score_matrix(matrix: sp.csr_matrix, profile: sp.csr_matrix) -> np.ndarray:
    """Cosine similarity of each of n_items rows with the profile: n_items float32."""
    return np.asarray((matrix @ profile.T).toarray()).ravel().astype(np.float32)


# --- storage ----------------------------------------------------------------------------------


_models: dict[tuple[str, int, int, int], TfidfModel] = {}


def load_model(session: Session) -> TfidfModel | None:
    """The newest fitted model, or None. Deserialising one (a vocabulary of ~200k terms) takes
    0.1-0.2 s, so the last one is kept per process, keyed by database, model id and shape (ids
    restart when a database is recreated); checking costs one small query."""
    head = session.execute(
        sa.select(RankModel.id, RankModel.n_docs, RankModel.n_terms).order_by(RankModel.id.desc()).limit(1)
    ).first()
    if head is None:
        return None
    key = (session.get_bind().engine.url.render_as_string(hide_password=True), *head)
    model = _models.get(key)
    if model is None:
        payload = session.scalar(sa.select(RankModel.payload).where(RankModel.id == head.id))
        assert payload is not None
        model = TfidfModel.from_bytes(payload, head.id)
        _models.clear()
        _models[key] = model
    return model


def save_model(session: Session, model: TfidfModel, now: dt.datetime) -> TfidfModel:
    """Store ``model`` (the caller commits) and drop all but the newest few."""
    row = RankModel(created_at=now, n_docs=model.n_docs, n_terms=model.n_terms, payload=model.to_bytes())
    session.add(row)
    session.flush()
    old = list(session.scalars(sa.select(RankModel.id).order_by(RankModel.id.desc()).offset(_KEEP_MODELS)))
    if old:
        session.execute(sa.delete(RankModel).where(RankModel.id.in_(old)))
    return TfidfModel(model.terms, model.idf, model.n_docs, row.id, model.topics, model.phrases)


def _window_items(session: Session, since: dt.datetime | None, limit: int | None = None) -> list[sa.Row]:
    query = sa.select(Item.id, Item.title, Item.summary, Item.authors)
    if since is not None:
        query = query.where(Item.published >= since)
    return list(session.execute(query.order_by(Item.published.desc()).limit(limit)))


def seed_texts(session: Session, interests: Interests) -> list[str]:
    """Texts of the stored seed papers named (by arXiv id) in ``interests``."""
    from aggregator.feeds.arxiv import split_arxiv_id

    ids = [p[0] for s in interests.seed_papers if (p := split_arxiv_id(s))]
    if not ids:
        return []
    rows = session.execute(sa.select(Item.title, Item.summary, Item.authors).where(Item.arxiv_id.in_(ids)))
    return [item_text(r.title, r.summary, r.authors) for r in rows]


#: A window with fewer items than this is too small a vocabulary: take the newest ``FALLBACK_DOCS``.
MIN_WINDOW_DOCS = 2000
FALLBACK_DOCS = 20_000


def refit(session: Session, now: dt.datetime, window_days: int) -> TfidfModel | None:
    """Fit a new model on the items published in the last ``window_days`` and save it.

    When that window holds fewer than ``MIN_WINDOW_DOCS`` items (a new install, or replayed
    old data) the newest ``FALLBACK_DOCS`` items are used instead. Returns None when there are
    no items at all."""
    rows = _window_items(session, now - dt.timedelta(days=window_days))
    if len(rows) < MIN_WINDOW_DOCS:
        rows = _window_items(session, None, FALLBACK_DOCS)
    if not rows:
        return None
    model = fit([item_text(r.title, r.summary, r.authors) for r in rows])
    return save_model(session, model, now)


def rescore(
    session: Session,
    model: TfidfModel,
    interests: Interests,
    item_ids: Sequence[int] | None = None,
    profile: str = DEFAULT_PROFILE,
    why_terms: int = 5,
    batch: int = 5000,
) -> int:
    """Precompute ``scores`` of ``profile`` for ``item_ids`` (all items when None).
    Returns the number of items scored. The caller commits."""
    pvec = profile_vector(model, interests, seed_texts(session, interests))
    query = sa.select(Item.id, Item.title, Item.summary, Item.authors, Item.published).order_by(Item.id)
    if item_ids is not None:
        query = query.where(Item.id.in_(item_ids))
    conn = session.connection()
    stmt = insert(conn, Score.__table__)
    stmt = stmt.on_conflict_do_update(
        index_elements=["profile", "item_id"],
        set_={"score": stmt.excluded.score, "why": stmt.excluded.why, "model_id": stmt.excluded.model_id},
    )
    done = 0
    rows = session.execute(query).all()
    for start in range(0, len(rows), batch):
        chunk = rows[start : start + batch]
        matrix = model.transform([item_text(r.title, r.summary, r.authors) for r in chunk])
        scores = score_matrix(matrix, pvec)
        values = [
            {
                "profile": profile,
                "item_id": r.id,
                "score": float(s),
                "why": explain(matrix[i], pvec, model, why_terms, f"{r.title}\n{r.summary}") if s > 0 else [],
                "model_id": model.model_id,
                "published": r.published,
            }
            for i, (r, s) in enumerate(zip(chunk, scores, strict=True))
        ]
        conn.execute(stmt, values)
        done += len(values)
    return done
