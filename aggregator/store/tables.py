"""Tables. The Alembic migrations in ``migrations/`` create exactly these.

Every paper and post is stored once in ``items``. Papers are keyed by arXiv id (``key`` is
``arxiv:<id>``), posts by normalised link or guid. ``item_sources`` records which feed announced
which item, when, with which announce type and version. Scheduling state (``next_check_at``,
``error_count``, …) lives on ``feeds`` so that a restart neither refetches everything nor
forgets failures. Datetimes are stored as UTC.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class UTCDateTime(sa.types.TypeDecorator[dt.datetime]):
    """A datetime stored as UTC and always returned timezone-aware (SQLite keeps no zone)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(dt.UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: dt.datetime | None, dialect: sa.Dialect) -> dt.datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=dt.UTC) if value.tzinfo is None else value.astimezone(dt.UTC)


class Base(DeclarativeBase):
    type_annotation_map = {dt.datetime: UTCDateTime(), dict[str, Any]: sa.JSON(), list[Any]: sa.JSON()}


class Feed(Base):
    __tablename__ = "feeds"

    id: Mapped[int] = mapped_column(primary_key=True)
    url: Mapped[str] = mapped_column(sa.String(2048), unique=True)
    name: Mapped[str] = mapped_column(sa.String(300))
    kind: Mapped[str | None] = mapped_column(sa.String(16))
    interval_minutes: Mapped[int] = mapped_column(default=60)
    tags: Mapped[list[Any]] = mapped_column(default=list)
    scheduled: Mapped[bool] = mapped_column(default=True)
    title: Mapped[str | None] = mapped_column(sa.Text)
    etag: Mapped[str | None] = mapped_column(sa.String(1024))
    last_modified: Mapped[str | None] = mapped_column(sa.String(128))
    last_status: Mapped[int | None]
    last_fetch_at: Mapped[dt.datetime | None]
    last_success_at: Mapped[dt.datetime | None]
    error_count: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    parse_problems: Mapped[str | None] = mapped_column(sa.Text)
    next_check_at: Mapped[dt.datetime | None] = mapped_column(index=True)
    disabled: Mapped[bool] = mapped_column(default=False)
    lease_until: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime]
    # Feeds readers added (POST /api/me/feeds): fetched through the SSRF guard
    # (aggregator.feeds.ssrf) and kept scheduled by sync_feeds. ``added_by`` is NULL for the
    # operator's feeds (feeds.toml, OPML), and again if the reader account is deleted.
    added_by: Mapped[int | None] = mapped_column(sa.ForeignKey("readers.id", ondelete="SET NULL"), index=True)
    reader_added: Mapped[bool] = mapped_column(default=False, server_default=sa.false())


class Item(Base):
    __tablename__ = "items"
    __table_args__ = (
        sa.Index("ix_items_published", "published"),
        sa.Index("ix_items_first_seen_at", "first_seen_at"),
        sa.Index(
            "ix_items_card_missing",
            "published",
            sqlite_where=sa.text("card IS NULL"),
            postgresql_where=sa.text("card IS NULL"),
        ),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(sa.String(2048), unique=True)
    kind: Mapped[str] = mapped_column(sa.String(8))
    arxiv_id: Mapped[str | None] = mapped_column(sa.String(64), unique=True)
    version: Mapped[int | None]
    title: Mapped[str] = mapped_column(sa.Text)
    url: Mapped[str | None] = mapped_column(sa.Text)
    authors: Mapped[list[Any]] = mapped_column(default=list)
    summary: Mapped[str] = mapped_column(sa.Text, default="")
    summary_html: Mapped[str | None] = mapped_column(sa.Text)
    content_html: Mapped[str | None] = mapped_column(sa.Text)  # issue 15: full content beside the summary
    categories: Mapped[list[Any]] = mapped_column(default=list)
    primary_category: Mapped[str | None] = mapped_column(sa.String(64))
    comment: Mapped[str | None] = mapped_column(sa.Text)
    guid: Mapped[str | None] = mapped_column(sa.Text)
    published: Mapped[dt.datetime]
    date_from_fetch: Mapped[bool] = mapped_column(default=False)
    content_hash: Mapped[str] = mapped_column(sa.String(64))
    first_seen_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]
    #: The item's public digest JSON (aggregator.digest.cards); NULL when it must be (re)built.
    card: Mapped[str | None] = mapped_column(sa.Text, default=None)
    # venue and code links (aggregator.feeds.venues; migration 0041, issue 13)
    venue: Mapped[str | None] = mapped_column(sa.String(32), index=True)
    venue_year: Mapped[int | None]
    venue_workshop: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    venue_label: Mapped[str | None] = mapped_column(sa.String(80))
    has_code: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    links: Mapped[list[Any] | None] = mapped_column(sa.JSON)
    journal_ref: Mapped[str | None] = mapped_column(sa.Text)
    #: when the arXiv API was asked for the comment and journal reference (NULL: not yet)
    enriched_at: Mapped[dt.datetime | None]


class ItemSource(Base):
    __tablename__ = "item_sources"
    __table_args__ = (
        sa.UniqueConstraint("item_id", "feed_id", "announce_type", "version", name="uq_item_sources"),
        sa.Index("ix_item_sources_feed", "feed_id"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(sa.ForeignKey("items.id", ondelete="CASCADE"))
    feed_id: Mapped[int] = mapped_column(sa.ForeignKey("feeds.id", ondelete="CASCADE"))
    announce_type: Mapped[str] = mapped_column(sa.String(16), default="")
    version: Mapped[int] = mapped_column(default=0)
    seen_at: Mapped[dt.datetime]


class RankModel(Base):
    """A fitted TF-IDF vocabulary and IDF vector, saved in one transaction (so atomically)."""

    __tablename__ = "rank_models"

    id: Mapped[int] = mapped_column(primary_key=True)
    created_at: Mapped[dt.datetime]
    n_docs: Mapped[int]
    n_terms: Mapped[int]
    payload: Mapped[bytes] = mapped_column(sa.LargeBinary)


class Score(Base):
    """Precomputed score of one item for one interest profile; the digest only reads these."""

    __tablename__ = "scores"
    __table_args__ = (sa.Index("ix_scores_profile_published", "profile", "published"),)

    profile: Mapped[str] = mapped_column(sa.String(128), primary_key=True)
    item_id: Mapped[int] = mapped_column(sa.ForeignKey("items.id", ondelete="CASCADE"), primary_key=True)
    score: Mapped[float]
    why: Mapped[list[Any]] = mapped_column(default=list)
    model_id: Mapped[int | None]
    topics: Mapped[list[Any] | None] = mapped_column(sa.JSON)  # slugs of matched topic filters
    authors: Mapped[list[Any] | None] = mapped_column(sa.JSON)  # followed authors on the item
    #: a muted phrase or author matched: the reader's digest hides the item
    muted: Mapped[bool] = mapped_column(default=False, server_default=sa.false())
    #: the item's publication time (immutable, copied): a reader's rows of a day are one range
    published: Mapped[dt.datetime]
    #: the precompute run that last wrote the row (``time.time_ns()`` at the write): a run
    #: upserts its rows in place, then deletes the readers' rows it did not write
    run: Mapped[int | None] = mapped_column(sa.BigInteger)


class BackfillCursor(Base):
    """Where a paged arXiv API backfill stopped, so an interrupted one resumes there."""

    __tablename__ = "backfill_cursors"

    query: Mapped[str] = mapped_column(sa.String(512), primary_key=True)
    since: Mapped[dt.date]
    next_start: Mapped[int] = mapped_column(default=0)
    total: Mapped[int | None]
    done: Mapped[bool] = mapped_column(default=False)
    updated_at: Mapped[dt.datetime]


# --- readers (issue: personal ranked digest) ---------------------------------------------------


class Reader(Base):
    """A reader account; tokens stored as SHA-256 hex digests. Addresses are unique in any case
    (index on ``lower(email)``); ``email_verified_at`` NULL: no mail but a link goes there."""

    __tablename__ = "readers"
    __table_args__ = (sa.Index("uq_readers_email_lower", sa.text("lower(email)"), unique=True),)

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(sa.String(320), unique=True)
    token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    feed_token_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    created_at: Mapped[dt.datetime]
    # weekly email settings
    weekly_email: Mapped[bool] = mapped_column(default=False)
    email_weekday: Mapped[int] = mapped_column(default=0)  # 0 = Monday (ISO weekday - 1)
    email_time: Mapped[str] = mapped_column(sa.String(5), default="08:00")  # HH:MM local
    timezone: Mapped[str] = mapped_column(sa.String(64), default="UTC")
    email_bounced: Mapped[bool] = mapped_column(default=False)
    email_verified_at: Mapped[dt.datetime | None]


class Profile(Base):
    """A reader's interest profile. List fields hold strings."""

    __tablename__ = "profiles"

    reader_id: Mapped[int] = mapped_column(sa.ForeignKey("readers.id", ondelete="CASCADE"), primary_key=True)
    interests: Mapped[str] = mapped_column(sa.Text, default="")
    keywords: Mapped[list[Any]] = mapped_column(default=list)
    muted: Mapped[list[Any]] = mapped_column(default=list)
    followed_authors: Mapped[list[Any]] = mapped_column(default=list)
    include_categories: Mapped[list[Any]] = mapped_column(default=list)
    exclude_categories: Mapped[list[Any]] = mapped_column(default=list)
    include_sources: Mapped[list[Any]] = mapped_column(default=list)
    exclude_sources: Mapped[list[Any]] = mapped_column(default=list)
    seed_papers: Mapped[list[Any]] = mapped_column(default=list)
    updated_at: Mapped[dt.datetime]


class Topic(Base):
    """A topic filter: a named, shareable saved query."""

    __tablename__ = "topics"

    id: Mapped[int] = mapped_column(primary_key=True)
    slug: Mapped[str] = mapped_column(sa.String(100), unique=True)
    name: Mapped[str] = mapped_column(sa.String(200))
    description: Mapped[str] = mapped_column(sa.Text, default="")
    phrases: Mapped[list[Any]] = mapped_column(default=list)
    categories: Mapped[list[Any]] = mapped_column(default=list)
    authors: Mapped[list[Any]] = mapped_column(default=list)
    sources: Mapped[list[Any]] = mapped_column(default=list)
    negative: Mapped[list[Any]] = mapped_column(default=list)
    match: Mapped[str] = mapped_column(sa.String(3), default="any")  # "any" | "all"
    created_by: Mapped[int | None] = mapped_column(sa.ForeignKey("readers.id", ondelete="SET NULL"))
    created_at: Mapped[dt.datetime]
    #: visible to every reader (built-in filters, and readers' filters their owner shared);
    #: a private filter is seen, edited and followed by its owner only (migration 0080)
    shared: Mapped[bool] = mapped_column(default=False, server_default=sa.true())


class Subscription(Base):
    __tablename__ = "subscriptions"

    reader_id: Mapped[int] = mapped_column(sa.ForeignKey("readers.id", ondelete="CASCADE"), primary_key=True)
    topic_id: Mapped[int] = mapped_column(sa.ForeignKey("topics.id", ondelete="CASCADE"), primary_key=True)
    created_at: Mapped[dt.datetime]


class RescoreRequest(Base):
    """A reader whose scores must be recomputed, queued by an API process that does not score
    (``aggregator api``) and taken by a worker. One row per reader: a newer request replaces the
    older; the worker deletes the row it saw once the rescore is committed."""

    __tablename__ = "rescore_requests"

    reader_id: Mapped[int] = mapped_column(sa.ForeignKey("readers.id", ondelete="CASCADE"), primary_key=True)
    requested_at: Mapped[dt.datetime]
    around: Mapped[dt.datetime | None]  # a vote on an older item: rescore the days around it
    seeds: Mapped[bool] = mapped_column(default=False, server_default=sa.false())  # fetch seed papers first


class SimilarItems(Base):
    """An item's stored "more like this" neighbours (aggregator.ranking.similar): ``[[item id, score,
    why], ...]`` best first, from model ``model_id``; ``requested_at`` set while an API process
    waits for a worker to (re)compute them."""

    __tablename__ = "similar_items"
    __table_args__ = (
        sa.Index(
            "ix_similar_items_requested",
            "requested_at",
            sqlite_where=sa.text("requested_at IS NOT NULL"),
            postgresql_where=sa.text("requested_at IS NOT NULL"),
        ),
    )

    item_id: Mapped[int] = mapped_column(sa.ForeignKey("items.id", ondelete="CASCADE"), primary_key=True)
    model_id: Mapped[int | None]
    neighbours: Mapped[list[Any] | None] = mapped_column(sa.JSON)
    computed_at: Mapped[dt.datetime | None]
    requested_at: Mapped[dt.datetime | None]


class Feedback(Base):
    """A reader's 👍 (+1) or 👎 (-1) on an item; 0 removes the row."""

    __tablename__ = "feedback"

    reader_id: Mapped[int] = mapped_column(sa.ForeignKey("readers.id", ondelete="CASCADE"), primary_key=True)
    item_id: Mapped[int] = mapped_column(sa.ForeignKey("items.id", ondelete="CASCADE"), primary_key=True)
    value: Mapped[int]
    created_at: Mapped[dt.datetime]


# --- paper-post links (the trend tables are in aggregator.store.trends_tables) ------------------


class ItemLink(Base):
    """A blog post that discusses a paper, found by arXiv id, arXiv link or exact title."""

    __tablename__ = "item_links"
    __table_args__ = (sa.Index("ix_item_links_paper", "paper_id"),)

    post_id: Mapped[int] = mapped_column(sa.ForeignKey("items.id", ondelete="CASCADE"), primary_key=True)
    paper_id: Mapped[int] = mapped_column(sa.ForeignKey("items.id", ondelete="CASCADE"), primary_key=True)
    method: Mapped[str] = mapped_column(sa.String(8))  # "id" | "link" | "title"
    created_at: Mapped[dt.datetime]


class AppSecret(Base):
    """A process-wide secret shared by every instance (e.g. the session-cookie signing key when
    ``AGGREGATOR_SECRET_KEY`` is unset), generated once and kept so restarts keep sessions."""

    __tablename__ = "app_secrets"

    name: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    value: Mapped[str] = mapped_column(sa.String(256))
    created_at: Mapped[dt.datetime]


# --- coordination between workers --------------------------------------------------------------


class JobLock(Base):
    """A named lease: the holder may run the job until ``lease_until`` (UTC); after that any
    worker may take it over, so a dead worker's job is picked up again."""

    __tablename__ = "job_locks"

    name: Mapped[str] = mapped_column(sa.String(100), primary_key=True)
    holder: Mapped[str] = mapped_column(sa.String(200))
    lease_until: Mapped[dt.datetime]


class ArxivNotFound(Base):
    """An arXiv id the API returned no entry for, and when it was asked (UTC): not asked again
    until the check is a day old (:data:`aggregator.worker.backfill.NOT_FOUND_TTL`)."""

    __tablename__ = "arxiv_not_found"

    arxiv_id: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    checked_at: Mapped[dt.datetime]


# --- email (issue: weekly email) ---------------------------------------------------------------


class EmailSend(Base):
    """One weekly email to one reader for one ISO week (``2026-W25``): the exactly-once record.

    ``state`` moves ``pending`` → ``sending`` (claimed by one worker until ``lease_until``,
    UTC) → ``sent`` | ``failed`` (retried at ``next_attempt_at``; NULL = gave up) |
    ``bounced`` (permanent 5xx for the recipient). ``message_id`` (RFC 5322 ``Message-ID``) is
    stored before the SMTP transaction and reused by every retry. See :mod:`aggregator.mail.send`.
    """

    __tablename__ = "email_sends"
    __table_args__ = (
        sa.UniqueConstraint("reader_id", "iso_week", name="uq_email_sends_reader_week"),
        sa.Index("ix_email_sends_state_next", "state", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(primary_key=True)
    reader_id: Mapped[int] = mapped_column(sa.ForeignKey("readers.id", ondelete="CASCADE"))
    iso_week: Mapped[str] = mapped_column(sa.String(8))
    state: Mapped[str] = mapped_column(sa.String(8), default="pending")
    attempts: Mapped[int] = mapped_column(default=0)
    last_error: Mapped[str | None] = mapped_column(sa.Text)
    next_attempt_at: Mapped[dt.datetime | None]
    lease_until: Mapped[dt.datetime | None]
    claimed_by: Mapped[str | None] = mapped_column(sa.String(200))
    message_id: Mapped[str | None] = mapped_column(sa.String(255))
    scheduled_at: Mapped[dt.datetime]
    created_at: Mapped[dt.datetime]
    sent_at: Mapped[dt.datetime | None]


# --- trends lexicon (issue 16: terms learned from the corpus) ----------------------------------


# --- arXiv metadata snapshot import (issue 15) -------------------------------------------------


class SnapshotImport(Base):
    """Where an ``aggregator import-snapshot`` of one file with one filter stopped.

    ``fingerprint`` names the file's content (size and SHA-1 of its first 64 KiB), ``filter``
    the options (``categories=cs.CV,cs.LG;since=2020-01-01``): another snapshot, or the same
    one with other options, starts from line 1. ``offset`` (bytes) and ``line`` are those of the
    first line not yet imported; they are written in the transaction that stores the lines
    before them. ``bad_lines`` holds the first 100 bad lines as ``[line, reason]``.
    """

    __tablename__ = "snapshot_imports"
    __table_args__ = (sa.UniqueConstraint("fingerprint", "filter", name="uq_snapshot_imports"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    fingerprint: Mapped[str] = mapped_column(sa.String(80))
    filter: Mapped[str] = mapped_column(sa.String(2000))
    path: Mapped[str] = mapped_column(sa.Text)
    size: Mapped[int] = mapped_column(sa.BigInteger)
    offset: Mapped[int] = mapped_column(sa.BigInteger, default=0)
    line: Mapped[int] = mapped_column(default=0)
    kept: Mapped[int] = mapped_column(default=0)
    new: Mapped[int] = mapped_column(default=0)
    bad: Mapped[int] = mapped_column(default=0)
    bad_lines: Mapped[list[Any]] = mapped_column(default=list)
    done: Mapped[bool] = mapped_column(default=False)
    started_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]


# --- library, read state, venues and code links (issue 13, part A) ----------------------------


class LibraryItem(Base):
    """An item a reader saved, with their free tags (``tags``: a JSON list of strings, in the
    reader's order; mirrored one row per tag in ``library_tags`` for filtering) and a note.
    Bounds: :mod:`aggregator.accounts.library`."""

    __tablename__ = "library_items"
    __table_args__ = (sa.Index("ix_library_items_reader_saved", "reader_id", "saved_at", "item_id"),)

    reader_id: Mapped[int] = mapped_column(sa.ForeignKey("readers.id", ondelete="CASCADE"), primary_key=True)
    item_id: Mapped[int] = mapped_column(sa.ForeignKey("items.id", ondelete="CASCADE"), primary_key=True)
    tags: Mapped[list[Any]] = mapped_column(default=list)
    note: Mapped[str] = mapped_column(sa.Text, default="")
    saved_at: Mapped[dt.datetime]
    updated_at: Mapped[dt.datetime]


class LibraryTag(Base):
    """One tag of one saved item (the ``?tag=`` filter reads ``ix_library_tags_reader_tag``)."""

    __tablename__ = "library_tags"
    __table_args__ = (
        sa.ForeignKeyConstraint(
            ["reader_id", "item_id"],
            ["library_items.reader_id", "library_items.item_id"],
            ondelete="CASCADE",
        ),
        sa.Index("ix_library_tags_reader_tag", "reader_id", "tag"),
    )

    reader_id: Mapped[int] = mapped_column(primary_key=True)
    item_id: Mapped[int] = mapped_column(primary_key=True)
    tag: Mapped[str] = mapped_column(sa.String(64), primary_key=True)


class ReadMark(Base):
    """An item a reader has read (``how``: ``opened`` through ``/me/items/{id}/open``,
    ``marked`` by hand, ``seen`` when it was shown on an earlier day and announced again).
    ``published`` is the item's publication time, copied: a day's marks are one index range."""

    __tablename__ = "read_marks"
    __table_args__ = (sa.Index("ix_read_marks_reader_published", "reader_id", "published"),)

    reader_id: Mapped[int] = mapped_column(sa.ForeignKey("readers.id", ondelete="CASCADE"), primary_key=True)
    item_id: Mapped[int] = mapped_column(sa.ForeignKey("items.id", ondelete="CASCADE"), primary_key=True)
    how: Mapped[str] = mapped_column(sa.String(8))
    read_at: Mapped[dt.datetime]
    published: Mapped[dt.datetime]


# --- security: item ownership (issue 14, finding 1; see aggregator.feeds.trust) ---------------


class ItemOwner(Base):
    """The feed that owns an item: the one that created it, or a more trusted feed that took it
    over. Only its owner (or arXiv, for papers) may change an item. No row, or ``feed_id``
    NULL after the feed was deleted: owned by nobody, an operator or arXiv feed may claim it."""

    __tablename__ = "item_owners"

    item_id: Mapped[int] = mapped_column(sa.ForeignKey("items.id", ondelete="CASCADE"), primary_key=True)
    feed_id: Mapped[int | None] = mapped_column(sa.ForeignKey("feeds.id", ondelete="SET NULL"), index=True)
