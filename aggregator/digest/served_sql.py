"""The statements of the served digest (:mod:`aggregator.digest.served`), built once as module
constants so that :func:`aggregator.digest.row_source.driver_statement` compiles each once per
dialect: the reader of a token with votes and subscriptions (:data:`READER`), with the state
of a page of a window as well (:data:`READER_STATE`), the reader's ranked rows of a window
(:data:`RANKED`), all in one statement (:data:`READER_AND_RANKED`), the window's item count
(:data:`TOTAL`) and the default profile's state of a window (:data:`SITE_STATE`). Bound
parameters: ``token_hash``, ``start``/``end`` (UTC, as :func:`aggregator.store.db.dbapi_datetime`
gives them), ``limit``."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from aggregator.digest.public import DEFAULT_PROFILE
from aggregator.store.tables import Feedback, Item, Reader, ReadMark, Score, Subscription, Topic

_S, _I = Score.__table__.c, Item.__table__.c
_START: sa.BindParameter[dt.datetime] = sa.bindparam("start")
_END: sa.BindParameter[dt.datetime] = sa.bindparam("end")
TOTAL = sa.select(sa.func.count()).where(_I.published >= _START, _I.published < _END)
_ONE: sa.ColumnClause[int] = sa.literal_column("1")  # inline literals: no generated parameters
_ZERO: sa.ColumnClause[int] = sa.literal_column("0")
_R = Reader.__table__.c
_HASH: sa.BindParameter[str] = sa.bindparam("token_hash")
#: the score key (``ReaderProfile.score_key``) of the token's reader, so that the ranked rows
#: can be asked for in the same round trip as the reader
_PROFILE = (
    sa.select(sa.literal_column("'reader:'") + sa.cast(_R.id, sa.String))
    .where(_R.token_hash == _HASH)
    .scalar_subquery()
)
_M = Score.__table__.alias("muted_scores").c  # the muted count's own scan (not correlated)
_IN_WINDOW = sa.and_(_S.profile == _PROFILE, _S.published >= _START, _S.published < _END)
_BEST_FIRST = (_S.score.desc(), _S.published.desc(), _S.item_id.desc())  # ties: the newer item
_RM = ReadMark.__table__.c
#: (score, why, topics, followed, item id, n_muted, published) of a token's reader's unmuted
#: rows of a window, best first; ``n_muted`` (the same on every row: a scalar subquery, run
#: once) counts the window's muted rows. The read marks come with the reader
#: (:data:`READER_STATE`), the cards from the served digest's cache.
RANKED = (
    sa.select(
        _S.score,
        sa.cast(_S.why, sa.Text),
        sa.cast(_S.topics, sa.Text),
        sa.cast(_S.authors, sa.Text),
        _S.item_id,
        sa.select(sa.func.count())
        .where(_M.profile == _PROFILE, _M.published >= _START, _M.published < _END, _M.muted)
        .scalar_subquery()
        .label("n_muted"),
        _S.published,
    )
    .where(_IN_WINDOW, sa.not_(_S.muted))
    .order_by(*_BEST_FIRST)
    .limit(sa.bindparam("limit"))
)
_NULL = sa.null()


def _window_state(reader_id: Any) -> tuple[Any, Any, Any]:
    """(largest item id, the reader's newest run, their row count) of the window as scalar
    subqueries, ``reader_id`` the outer reader's id column: what a page's ``next_cursor`` needs
    (:class:`aggregator.digest.served.PageState`), read with the reader in one statement."""
    scores = Score.__table__.alias("mine_scores").c
    mine = sa.and_(
        scores.profile == sa.literal_column("'reader:'") + sa.cast(reader_id, sa.String),
        scores.published >= _START,
        scores.published < _END,
    )
    return (
        sa.select(sa.func.max(_I.id)).scalar_subquery(),
        sa.select(sa.func.max(scores.run)).where(mine).scalar_subquery(),
        sa.select(sa.func.count()).where(mine).scalar_subquery(),
    )


def _reader_selects(padded: bool, state: bool, who: Any = None) -> list[sa.Select[Any]]:
    """The parts of :data:`READER`; ``padded``: with the columns of :data:`READER_AND_RANKED`;
    ``state``: with the window's page state on the reader's row and the read items of the
    window (:data:`READER_STATE`); ``who``: the readers, a condition on ``readers`` (default:
    the one of ``token_hash``), each row then led by the reader's ``token_hash`` when given."""
    lead = () if who is None else (_R.token_hash,)
    who = _R.token_hash == _HASH if who is None else who

    def columns(kind: Any, number: Any, value: Any, slug: Any, page: tuple[Any, ...] = ()) -> tuple[Any, ...]:
        if state and not page:
            page = (sa.cast(_NULL, sa.Integer),) * 3
        if not padded:
            return (*lead, kind, number, value, slug, *page)
        no_score = sa.cast(_NULL, sa.Float)  # typed: PostgreSQL would read a bare NULL as text
        no_time = sa.cast(_NULL, Score.published.type)
        return (
            kind,
            _ZERO.label("position"),
            no_score,
            _NULL,
            _NULL,
            _NULL,
            number,
            value,
            slug,
            no_time,
            *page,
        )

    # the reader has read or seen the item of a scores row of the window (``read_marks``,
    # issue 13): one look-up of its primary key per row of the reader's window
    read_table = Score.__table__.alias("read_scores")
    read = read_table.c
    is_read = sa.exists().where(_RM.reader_id == _R.id, _RM.item_id == read.item_id)
    return [
        sa.select(*columns(_ZERO, _R.id, _ZERO, _NULL, _window_state(_R.id) if state else ())).where(who),
        sa.select(*columns(_ONE, Feedback.item_id, Feedback.value, _NULL))
        .join(Reader, Reader.id == Feedback.reader_id)
        .where(who, Feedback.value != _ZERO),
        sa.select(*columns(sa.literal_column("2"), _NULL, _ZERO, Topic.slug))
        .join(Subscription, Subscription.topic_id == Topic.id)
        .join(Reader, Reader.id == Subscription.reader_id)
        .where(who),
        *(
            [
                sa.select(*columns(sa.literal_column("4"), read.item_id, _ZERO, _NULL))
                .select_from(Reader)
                .join(read_table, read.profile == sa.literal_column("'reader:'") + sa.cast(_R.id, sa.String))
                .where(who, read.published >= _START, read.published < _END, is_read)
            ]
            if state
            else []
        ),
    ]


#: the reader, their votes and their subscriptions in one round trip: (kind, number, value, slug)
#: rows with kind 0 = the reader's id, 1 = a vote (item id, value), 2 = a subscribed slug
READER = sa.union_all(*_reader_selects(padded=False, state=False))
#: :data:`READER` with what the reader's digest of a window (``start``, ``end``) depends on
#: besides the ranked rows: the page state on the reader's row, and one row (kind 4, number =
#: item id) per item of the window the reader has read or seen. (kind, number, value, slug,
#: max_id, run, n) rows, the last three None but on kind 0
READER_STATE = sa.union_all(*_reader_selects(padded=False, state=True))
#: the token hashes bound as ``hashes`` (an array on PostgreSQL, JSON text on SQLite) as a
#: condition on ``readers``
_ANY_HASH = {
    "postgresql": _R.token_hash == sa.any_(sa.bindparam("hashes", type_=postgresql.ARRAY(sa.String))),
    "sqlite": _R.token_hash.in_(
        sa.select(sa.literal_column("value")).select_from(sa.func.json_each(sa.bindparam("hashes")))
    ),
}
#: :data:`READER_STATE` of several readers at once, the readers whose token hashes are bound
#: as ``hashes`` (a list on PostgreSQL, a JSON array text on SQLite; see :func:`array_param`),
#: by dialect name: (token_hash, kind, number, value, slug, max_id, run, n) rows
READER_STATES = {
    name: sa.union_all(*_reader_selects(padded=False, state=True, who=who)) for name, who in _ANY_HASH.items()
}


def array_param(dialect: str, values: list[Any]) -> Any:
    """``values`` as the statements here bind a list (``hashes`` of :data:`READER_STATES`,
    the item ids of the served digest's card reads): an array on PostgreSQL, a JSON array text
    on SQLite (read there with ``json_each``)."""
    return json.dumps(values, separators=(",", ":")) if dialect == "sqlite" else values


RANKED_AT = RANKED.add_columns(sa.func.row_number().over(order_by=_BEST_FIRST).label("position")).subquery(
    "ranked"
)
#: :data:`READER_STATE` and :data:`RANKED` as one statement, for a database with a round trip
#: (on PostgreSQL one statement costs the client about 0.1 ms less than two in a pipeline):
#: (kind, position, score, why, topics, followed, number, value, slug, published, max_id, run,
#: n) rows, kinds 0–2 and 4 as in ``READER_STATE`` and 3 = a ranked row (number = item id,
#: value = the muted count), ordered by kind and rank
READER_AND_RANKED = sa.union_all(
    *_reader_selects(padded=True, state=True),
    sa.select(
        sa.literal_column("3"),
        RANKED_AT.c.position,
        RANKED_AT.c.score,
        RANKED_AT.c.why,
        RANKED_AT.c.topics,
        RANKED_AT.c.authors,
        RANKED_AT.c.item_id,
        RANKED_AT.c.n_muted,
        _NULL,
        RANKED_AT.c.published,
        *(sa.cast(_NULL, sa.Integer),) * 3,
    ),
).order_by(sa.literal_column("1"), sa.literal_column("2"))


def split_all(found: list[Any]) -> tuple[list[Any], list[Any]]:
    """The rows of :data:`READER_AND_RANKED` as those of :data:`READER_STATE` and of
    :data:`RANKED`."""
    who, rows = [], []
    for kind, _, score, why, topics, followed, number, value, slug, published, *page in found:
        if kind == 3:
            rows.append((score, why, topics, followed, number, value, published))
        else:
            who.append((kind, number, value, slug, *page))
    return who, rows


_SITE_SCORES = Score.__table__.alias("site_scores").c
#: (the default profile's newest run and row count) of a window: the same for every reader, so
#: the served digest reuses it for a few seconds (a refit meanwhile only makes the next page
#: start again from the top, leaving out what was shown)
SITE_STATE = sa.select(sa.func.max(_SITE_SCORES.run), sa.func.count()).where(
    _SITE_SCORES.profile == sa.literal(DEFAULT_PROFILE),
    _SITE_SCORES.published >= _START,
    _SITE_SCORES.published < _END,
)
