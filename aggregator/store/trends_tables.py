"""The tables of trend monitoring (:mod:`aggregator.trends`): the term dictionary, per-day
counts and totals, what was counted, stored results and the learned lexicon. They share
:class:`aggregator.store.tables.Base`, so one ``metadata`` holds every table."""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from aggregator.store.tables import Base


class Term(Base):
    """The term dictionary: one row per normalised term ever counted, with an integer id that
    ``term_counts`` refers to, and the first UTC day (``date.toordinal()``) it was counted in
    each scope (``first_all``, ``first_cs_lg``, ``first_cs_cv``, ``first_cs_cl``,
    ``first_blogs``; NULL when never counted there)."""

    __tablename__ = "terms"

    id: Mapped[int] = mapped_column(primary_key=True)
    term: Mapped[str] = mapped_column(sa.String(200), unique=True)
    first_all: Mapped[int | None]
    first_cs_lg: Mapped[int | None]
    first_cs_cv: Mapped[int | None]
    first_cs_cl: Mapped[int | None]
    first_blogs: Mapped[int | None]


class TermCount(Base):
    """Document frequencies of all terms on one UTC day in one scope, as one packed row.

    ``scope`` is ``all``, an arXiv category (``cs.LG``, ``cs.CV``, ``cs.CL``) or ``blogs``.
    ``data`` is zlib-compressed little-endian uint32: ``n_terms`` delta-encoded sorted term ids
    (``terms.id``) followed by their ``n_terms`` document frequencies (see
    :func:`aggregator.trends.pack_counts`). About 270k terms a day in ``all`` (84 % with df 1)
    pack into a few hundred kB, instead of that many rows.
    """

    __tablename__ = "term_counts"

    scope: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    day: Mapped[dt.date] = mapped_column(primary_key=True)
    n_terms: Mapped[int]
    data: Mapped[bytes] = mapped_column(sa.LargeBinary)


class DayTotal(Base):
    """How many items were counted on one UTC day in one scope (the share denominator)."""

    __tablename__ = "trend_day_totals"

    scope: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    day: Mapped[dt.date] = mapped_column(primary_key=True)
    n_docs: Mapped[int]


class TrendCounted(Base):
    """Items already added to ``term_counts``: counting is idempotent per item."""

    __tablename__ = "trend_counted"

    item_id: Mapped[int] = mapped_column(sa.ForeignKey("items.id", ondelete="CASCADE"), primary_key=True)
    day: Mapped[dt.date]


class TrendResult(Base):
    """A stored trend computation (JSON payload of rising and new terms) that the API serves."""

    __tablename__ = "trend_results"

    scope: Mapped[str] = mapped_column(sa.String(16), primary_key=True)
    window_days: Mapped[int] = mapped_column(primary_key=True)
    baseline_days: Mapped[int] = mapped_column(primary_key=True)
    end_day: Mapped[dt.date] = mapped_column(primary_key=True)
    is_latest: Mapped[bool] = mapped_column(default=False)
    computed_at: Mapped[dt.datetime]
    payload: Mapped[dict[str, Any]] = mapped_column(sa.JSON)
    #: Digest of what the result was computed from (``aggregator.trends.refresh_results`` skips
    #: a scope whose inputs did not change); NULL when unknown (the next refresh recomputes it).
    inputs: Mapped[str | None] = mapped_column(sa.String(64), default=None)


class TrendLexicon(Base):
    """The learned lexicon of reportable terms (:mod:`aggregator.trends.lexicon`): one row, the
    newest; ``data`` is zlib-compressed JSON term → [sample df, residual IDF, coherence, NPMI].
    ``through`` is the newest UTC day of the items it was learned from."""

    __tablename__ = "trend_lexicon"

    id: Mapped[int] = mapped_column(primary_key=True)
    n_docs: Mapped[int]
    through: Mapped[dt.date]
    learned_at: Mapped[dt.datetime]
    data: Mapped[bytes] = mapped_column(sa.LargeBinary)
