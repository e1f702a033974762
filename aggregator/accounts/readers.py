"""Readers: accounts and tokens, interest profiles, topic filters, subscriptions, feedback, and
each reader's own digest read from precomputed scores.

Store-level functions: they take a SQLAlchemy ``Session`` and never commit (the caller owns the
transaction), except :func:`rescore`, which commits the scores it writes. Bad input raises
:class:`ReaderError` (a ``ValueError``) with a message a person can act on; a missing row
raises :class:`NotFound`; touching another reader's topic filter raises :class:`Forbidden`;
a duplicate raises :class:`Conflict`.

Tokens: an API token and a feed token per reader, each ``secrets.token_urlsafe(32)`` (32
random bytes, 43 characters). Only their SHA-256 hex digests are stored, so a token is shown
once, when it is made (and the feed token again when it is rotated).

Topic filters (:class:`aggregator.types.TopicFilter`) match an item by case-insensitive
phrases in its title and abstract (a phrase must start at a word boundary: "agent" matches
"agents" but not "reagent"), arXiv categories, authors (whole names) and source feed names.
With ``match="any"`` one hit of any kind is enough; with ``match="all"`` every phrase must
occur and each non-empty list of categories, authors and sources must have a hit. A negative
phrase that occurs rules the item out either way.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import secrets
import zoneinfo
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import sqlalchemy as sa
from sqlalchemy.orm import Session

from aggregator.digest.public import (
    DEFAULT_PROFILE,
    Digest,
    DigestEntry,
    build_digest,
    day_window,
    default_day,
)
from aggregator.feeds.arxiv import split_arxiv_id
from aggregator.store.db import insert
from aggregator.store.tables import (
    Feedback,
    Item,
    Profile,
    Reader,
    RescoreRequest,
    Score,
    Subscription,
    Topic,
)
from aggregator.types import ReaderProfile, TopicFilter

log = logging.getLogger(__name__)

#: Random bytes in a token (``secrets.token_urlsafe``): 256 bits, as in Python's ``secrets`` docs.
TOKEN_BYTES = 32
#: A list field of a profile or topic filter holds at most this many entries of at most
#: ``MAX_ENTRY_CHARS`` characters each.
MAX_LIST_ENTRIES = 200
MAX_ENTRY_CHARS = 300
MAX_INTERESTS_CHARS = 10_000

SLUG_RE = re.compile(r"\A[a-z0-9](?:[a-z0-9-]{0,98}[a-z0-9])?\Z")
_HHMM_RE = re.compile(r"\A(?:[01]\d|2[0-3]):[0-5]\d\Z")


class ReaderError(ValueError):
    """Invalid input; the message names the field and what is wrong with it."""


class NotFound(LookupError):
    """No such reader, item, topic filter or subscription."""


class Forbidden(PermissionError):
    """The resource belongs to another reader (or to nobody, like the built-in topic filters)."""


class Conflict(ValueError):
    """The email address or topic slug is taken."""


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


# --- tokens and accounts ------------------------------------------------------------------------


def new_token() -> str:
    """A fresh random token: ``secrets.token_urlsafe(TOKEN_BYTES)`` (43 URL-safe characters)."""
    return secrets.token_urlsafe(TOKEN_BYTES)


def hash_token(token: str) -> str:
    """SHA-256 hex digest (64 characters) of a token, as stored in ``readers``."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def normalise_email(email: str) -> str:
    """The normalised form of an email address (email-validator, syntax only, no DNS lookup).

    Raises :class:`ReaderError` saying why the address is not valid."""
    from email_validator import EmailNotValidError, validate_email

    if not isinstance(email, str) or not email.strip():
        raise ReaderError("email: an email address is required")
    try:
        return str(validate_email(email.strip(), check_deliverability=False).normalized)
    except EmailNotValidError as err:
        raise ReaderError(f"email: {email.strip()!r} is not a valid email address: {err}") from err


@dataclass(frozen=True, slots=True)
class NewReader:
    """A just-created reader with its two tokens in clear, the only time they exist in clear."""

    reader_id: int
    email: str
    token: str
    feed_token: str


@dataclass(frozen=True, slots=True)
class ReaderInfo:
    id: int
    email: str
    created_at: dt.datetime
    subscriptions: int = 0


def create_reader(session: Session, email: str, now: dt.datetime | None = None) -> NewReader:
    """Create a reader with an empty interest profile and fresh API and feed tokens.

    Raises :class:`ReaderError` for an invalid address, :class:`Conflict` when a reader with
    that address (compared case-insensitively) exists."""
    now = now or utcnow()
    address = normalise_email(email)
    taken = session.scalar(sa.select(Reader.id).where(sa.func.lower(Reader.email) == address.lower()))
    if taken is not None:
        raise Conflict(f"email: a reader with address {address} already exists")
    token, feed_token = new_token(), new_token()
    reader = Reader(
        email=address,
        token_hash=hash_token(token),
        feed_token_hash=hash_token(feed_token),
        created_at=now,
        weekly_email=False,
        email_weekday=0,
        email_time="08:00",
        timezone="UTC",
        email_bounced=False,
    )
    session.add(reader)
    session.flush()
    session.add(_empty_profile(reader.id, now))
    session.flush()
    return NewReader(reader.id, address, token, feed_token)


def _empty_profile(reader_id: int, now: dt.datetime) -> Profile:
    return Profile(
        reader_id=reader_id,
        interests="",
        keywords=[],
        muted=[],
        followed_authors=[],
        include_categories=[],
        exclude_categories=[],
        include_sources=[],
        exclude_sources=[],
        seed_papers=[],
        updated_at=now,
    )


def list_readers(session: Session) -> list[ReaderInfo]:
    """Every reader, oldest first, with their number of topic subscriptions."""
    counts = dict(
        session.execute(
            sa.select(Subscription.reader_id, sa.func.count()).group_by(Subscription.reader_id)
        ).all()
    )
    return [
        ReaderInfo(r.id, r.email, r.created_at, counts.get(r.id, 0))
        for r in session.scalars(sa.select(Reader).order_by(Reader.id))
    ]


def reader_for_token(session: Session, token: str | None) -> Reader | None:
    """The reader whose API token this is, or None (empty, malformed or unknown token)."""
    if not token or len(token) > 256:
        return None
    return session.scalar(sa.select(Reader).where(Reader.token_hash == hash_token(token)))


def reader_for_feed_token(session: Session, token: str | None) -> Reader | None:
    """The reader whose feed token this is, or None. An API token is not a feed token."""
    if not token or len(token) > 256:
        return None
    return session.scalar(sa.select(Reader).where(Reader.feed_token_hash == hash_token(token)))


def rotate_feed_token(session: Session, reader_id: int) -> str:
    """Replace a reader's feed token; the old feed URL stops working. Returns the new token."""
    reader = session.get(Reader, reader_id)
    if reader is None:
        raise NotFound(f"no reader with id {reader_id}")
    token = new_token()
    reader.feed_token_hash = hash_token(token)
    session.flush()
    return token


# --- interest profile -----------------------------------------------------------------------------

PROFILE_LIST_FIELDS = (
    "keywords",
    "muted",
    "followed_authors",
    "include_categories",
    "exclude_categories",
    "include_sources",
    "exclude_sources",
    "seed_papers",
)


@dataclass(frozen=True, slots=True)
class ProfileData:
    """A reader's interest profile as stored. ``seed_papers`` are bare arXiv ids."""

    interests: str = ""
    keywords: tuple[str, ...] = ()
    muted: tuple[str, ...] = ()
    followed_authors: tuple[str, ...] = ()
    include_categories: tuple[str, ...] = ()
    exclude_categories: tuple[str, ...] = ()
    include_sources: tuple[str, ...] = ()
    exclude_sources: tuple[str, ...] = ()
    seed_papers: tuple[str, ...] = ()
    updated_at: dt.datetime | None = None


def clean_list(values: Iterable[Any] | None, name: str) -> list[str]:
    """Strip, collapse inner whitespace, drop empty and duplicate (case-insensitive) entries.

    Raises :class:`ReaderError` for a non-string entry, one over ``MAX_ENTRY_CHARS``
    characters, or more than ``MAX_LIST_ENTRIES`` entries."""
    out: list[str] = []
    seen: set[str] = set()
    for value in values or ():
        if not isinstance(value, str):
            raise ReaderError(f"{name}: every entry must be a string, not {value!r}")
        text = " ".join(value.split())
        if not text or text.lower() in seen:
            continue
        if len(text) > MAX_ENTRY_CHARS:
            raise ReaderError(f"{name}: entry {text[:40]!r}… is longer than {MAX_ENTRY_CHARS} characters")
        seen.add(text.lower())
        out.append(text)
    if len(out) > MAX_LIST_ENTRIES:
        raise ReaderError(f"{name}: at most {MAX_LIST_ENTRIES} entries, got {len(out)}")
    return out


def normalise_seed_papers(values: Iterable[str] | None) -> list[str]:
    """arXiv ids (bare, without version) of seed papers given as ids, ``arXiv:`` references or
    abs/pdf links, in order, without duplicates (normalised with
    :func:`aggregator.feeds.arxiv.split_arxiv_id`). Raises :class:`ReaderError` naming every entry
    that holds no arXiv id."""
    ids: list[str] = []
    bad: list[str] = []
    for value in clean_list(values, "seed_papers"):
        parts = split_arxiv_id(value)
        if parts is None:
            bad.append(value)
        elif parts[0] not in ids:
            ids.append(parts[0])
    if bad:
        raise ReaderError(
            "seed_papers: not an arXiv id or link: "
            + ", ".join(repr(b) for b in bad)
            + " (expected e.g. 2606.13733 or https://arxiv.org/abs/2606.13733)"
        )
    return ids


def _profile_row(session: Session, reader_id: int) -> Profile:
    row = session.get(Profile, reader_id)
    if row is None:
        if session.get(Reader, reader_id) is None:
            raise NotFound(f"no reader with id {reader_id}")
        row = _empty_profile(reader_id, utcnow())
        session.add(row)
        session.flush()
    return row


def get_profile(session: Session, reader_id: int) -> ProfileData:
    """The reader's interest profile (an empty one when none was saved). Raises :class:`NotFound`."""
    row = _profile_row(session, reader_id)
    return ProfileData(
        interests=row.interests or "",
        **{name: tuple(getattr(row, name) or ()) for name in PROFILE_LIST_FIELDS},
        updated_at=row.updated_at,
    )


def update_profile(session: Session, reader_id: int, **fields: Any) -> ProfileData:
    """Replace the given fields of the reader's profile (others stay). Field names are those
    of :class:`ProfileData` but ``updated_at``; list fields are cleaned with :func:`clean_list`,
    seed papers normalised with :func:`normalise_seed_papers`. Raises :class:`ReaderError` for
    an unknown field or bad value, :class:`NotFound` for an unknown reader."""
    unknown = set(fields) - {"interests", *PROFILE_LIST_FIELDS}
    if unknown:
        raise ReaderError(f"unknown profile fields: {', '.join(sorted(unknown))}")
    row = _profile_row(session, reader_id)
    for name, value in fields.items():
        if value is None:
            continue
        if name == "interests":
            if not isinstance(value, str):
                raise ReaderError("interests: must be text")
            if len(value) > MAX_INTERESTS_CHARS:
                raise ReaderError(f"interests: at most {MAX_INTERESTS_CHARS} characters")
            row.interests = value.strip()
        elif name == "seed_papers":
            row.seed_papers = normalise_seed_papers(value)
        else:
            setattr(row, name, clean_list(value, name))
    row.updated_at = utcnow()
    session.flush()
    return get_profile(session, reader_id)


def missing_seed_papers(session: Session, arxiv_ids: Sequence[str]) -> list[str]:
    """Those of ``arxiv_ids`` (bare ids) not stored as items yet, in order."""
    if not arxiv_ids:
        return []
    have = set(session.scalars(sa.select(Item.arxiv_id).where(Item.arxiv_id.in_(list(arxiv_ids)))))
    return [i for i in arxiv_ids if i not in have]


# --- email settings -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReaderSettings:
    """Weekly email settings: ``email_weekday`` 0 = Monday … 6 = Sunday, ``email_time`` HH:MM
    in the reader's IANA ``timezone``."""

    weekly_email: bool
    email_weekday: int
    email_time: str
    timezone: str


def get_reader_settings(session: Session, reader_id: int) -> ReaderSettings:
    reader = session.get(Reader, reader_id)
    if reader is None:
        raise NotFound(f"no reader with id {reader_id}")
    return ReaderSettings(reader.weekly_email, reader.email_weekday, reader.email_time, reader.timezone)


def update_reader_settings(
    session: Session,
    reader_id: int,
    *,
    weekly_email: bool | None = None,
    email_weekday: int | None = None,
    email_time: str | None = None,
    timezone: str | None = None,
) -> ReaderSettings:
    """Change the given email settings. Raises :class:`ReaderError` for a weekday outside
    0..6, a time not HH:MM (24 h), or an unknown IANA time zone."""
    reader = session.get(Reader, reader_id)
    if reader is None:
        raise NotFound(f"no reader with id {reader_id}")
    if email_weekday is not None:
        if not 0 <= email_weekday <= 6:
            raise ReaderError("email_weekday: 0 (Monday) to 6 (Sunday)")
        reader.email_weekday = email_weekday
    if email_time is not None:
        if not _HHMM_RE.match(email_time):
            raise ReaderError(f"email_time: {email_time!r} is not a 24-hour time HH:MM")
        reader.email_time = email_time
    if timezone is not None:
        check_timezone(timezone)
        reader.timezone = timezone
    if weekly_email is not None:
        reader.weekly_email = weekly_email
    session.flush()
    return get_reader_settings(session, reader_id)


def check_timezone(name: str) -> str:
    """``name`` when it is a known IANA time zone; raises :class:`ReaderError` otherwise."""
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as err:
        raise ReaderError(f"timezone: unknown IANA time zone {name!r}") from err
    return name


# --- topic filters --------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TopicInfo:
    """A stored topic filter. ``created_by`` is None for the built-in catalogue."""

    filter: TopicFilter
    description: str = ""
    created_by: int | None = None
    subscribers: int = 0

    @property
    def slug(self) -> str:
        return self.filter.slug


def _tf(
    slug: str,
    name: str,
    phrases: Sequence[str] = (),
    categories: Sequence[str] = (),
    negative: Sequence[str] = (),
    match: Literal["any", "all"] = "any",
) -> TopicFilter:
    return TopicFilter(
        slug,
        name,
        tuple(phrases),
        tuple(categories),
        (),
        (),
        tuple(negative),
        match,  # type: ignore[arg-type]
    )


#: The built-in catalogue, created at start when missing (never edited by readers).
DEFAULT_TOPICS: tuple[tuple[TopicFilter, str], ...] = (
    (
        _tf(
            "diffusion-models",
            "Diffusion models",
            [
                "diffusion model",
                "denoising diffusion",
                "score-based generative",
                "flow matching",
                "latent diffusion",
                "diffusion transformer",
            ],
        ),
        "Denoising diffusion, score-based and flow-matching generative models.",
    ),
    (
        _tf(
            "llm-reasoning",
            "LLM reasoning",
            [
                "chain-of-thought",
                "chain of thought",
                "reasoning model",
                "mathematical reasoning",
                "test-time scaling",
                "test-time compute",
                "llm reasoning",
                "reasoning of large language",
                "reasoning in large language",
                "reasoning capabilities",
            ],
        ),
        "Chain-of-thought, test-time compute and reasoning in large language models.",
    ),
    (
        _tf(
            "rl-for-llms",
            "RL for LLMs",
            [
                "rlhf",
                "reinforcement learning from human feedback",
                "grpo",
                "rlvr",
                "verifiable reward",
                "reward model",
                "direct preference optimization",
                "preference optimization",
                "reinforcement learning for large language",
                "reinforcement learning for llm",
            ],
        ),
        "Reinforcement learning and preference optimisation to train language models.",
    ),
    (
        _tf(
            "vision-language",
            "Vision-language",
            [
                "vision-language",
                "vision language model",
                "multimodal large language",
                "vlm",
                "mllm",
                "visual question answering",
                "image captioning",
                "multimodal llm",
            ],
        ),
        "Vision-language models, multimodal LLMs, VQA and captioning.",
    ),
    (
        _tf(
            "efficient-inference",
            "Efficient inference",
            [
                "quantization",
                "speculative decoding",
                "kv cache",
                "kv-cache",
                "efficient inference",
                "inference acceleration",
                "model compression",
                "low-bit",
                "pruning",
                "sparse attention",
            ],
        ),
        "Quantisation, pruning, speculative decoding, KV caches: making models cheaper to run.",
    ),
    (
        _tf(
            "interpretability",
            "Interpretability",
            [
                "interpretability",
                "mechanistic",
                "sparse autoencoder",
                "explainability",
                "probing",
                "feature attribution",
                "circuit discovery",
            ],
        ),
        "Mechanistic interpretability, probing, attribution and explanations.",
    ),
    (
        _tf(
            "agents",
            "Agents",
            [
                "llm agent",
                "language agent",
                "agentic",
                "multi-agent",
                "tool use",
                "tool-use",
                "web agent",
                "autonomous agent",
                "computer-use",
            ],
        ),
        "LLM agents: tool use, planning, multi-agent systems, web and computer use.",
    ),
    (
        _tf(
            "robotics",
            "Robotics",
            ["robot", "manipulation", "embodied", "locomotion", "vision-language-action"],
            categories=["cs.RO"],
        ),
        "Robot learning, manipulation, locomotion and embodied AI (and everything in cs.RO).",
    ),
)


def non_blank_strings(values: Any) -> tuple[str, ...]:
    """The non-blank strings of a JSON list column (None → empty)."""
    return tuple(str(v) for v in (values or ()) if str(v).strip())


def topic_filter(row: Topic) -> TopicFilter:
    """The typed record of a ``topics`` row (blank phrases, names and the like dropped)."""
    return TopicFilter(
        slug=row.slug,
        name=row.name,
        phrases=non_blank_strings(row.phrases),
        categories=non_blank_strings(row.categories),
        authors=non_blank_strings(row.authors),
        sources=non_blank_strings(row.sources),
        negative=non_blank_strings(row.negative),
        match="all" if row.match == "all" else "any",
    )


def _topic_values(topic: TopicFilter) -> dict[str, Any]:
    return {
        "slug": topic.slug,
        "name": topic.name,
        "phrases": list(topic.phrases),
        "categories": list(topic.categories),
        "authors": list(topic.authors),
        "sources": list(topic.sources),
        "negative": list(topic.negative),
        "match": topic.match,
    }


def ensure_default_topics(session: Session, now: dt.datetime | None = None) -> int:
    """Insert the built-in topic filters that are missing (by slug); safe to run concurrently
    from several instances. Returns how many were added."""
    have = set(session.scalars(sa.select(Topic.slug)))
    rows = [
        {**_topic_values(t), "description": d, "created_by": None, "created_at": now or utcnow()}
        for t, d in DEFAULT_TOPICS
        if t.slug not in have
    ]
    if rows:
        conn = session.connection()
        conn.execute(insert(conn, Topic.__table__).on_conflict_do_nothing(index_elements=["slug"]), rows)
    return len(rows)


def validate_topic(topic: TopicFilter) -> TopicFilter:
    """A cleaned copy of ``topic``. Raises :class:`ReaderError` for a bad slug (lower-case
    letters, digits and inner hyphens, 1-100 characters), an empty name, ``match`` not
    "any"/"all", or a filter with no positive criterion."""
    if not isinstance(topic.slug, str) or not SLUG_RE.match(topic.slug):
        raise ReaderError(f"slug: {topic.slug!r} must be 1-100 lower-case letters, digits and inner hyphens")
    name = " ".join((topic.name or "").split())
    if not name or len(name) > 200:
        raise ReaderError("name: 1 to 200 characters")
    if topic.match not in ("any", "all"):
        raise ReaderError("match: 'any' or 'all'")
    cleaned = TopicFilter(
        slug=topic.slug,
        name=name,
        phrases=tuple(clean_list(topic.phrases, "phrases")),
        categories=tuple(clean_list(topic.categories, "categories")),
        authors=tuple(clean_list(topic.authors, "authors")),
        sources=tuple(clean_list(topic.sources, "sources")),
        negative=tuple(clean_list(topic.negative, "negative")),
        match=topic.match,
    )
    if not (cleaned.phrases or cleaned.categories or cleaned.authors or cleaned.sources):
        raise ReaderError("a topic filter needs at least one phrase, category, author or source")
    return cleaned


def _subscriber_counts(session: Session) -> dict[int, int]:
    return dict(
        session.execute(
            sa.select(Subscription.topic_id, sa.func.count()).group_by(Subscription.topic_id)
        ).all()
    )


def _info(row: Topic, subscribers: int = 0) -> TopicInfo:
    return TopicInfo(topic_filter(row), row.description or "", row.created_by, subscribers)


def list_topics(session: Session) -> list[TopicInfo]:
    """The whole catalogue: built-in filters first, then readers' in order of creation."""
    counts = _subscriber_counts(session)
    rows = session.scalars(sa.select(Topic).order_by(Topic.created_by.is_not(None), Topic.id))
    return [_info(r, counts.get(r.id, 0)) for r in rows]


def _topic_row(session: Session, slug: str) -> Topic:
    row = session.scalar(sa.select(Topic).where(Topic.slug == slug))
    if row is None:
        raise NotFound(f"no topic filter {slug!r}")
    return row


def get_topic(session: Session, slug: str) -> TopicInfo:
    """One topic filter by slug. Raises :class:`NotFound`."""
    row = _topic_row(session, slug)
    return _info(row, _subscriber_counts(session).get(row.id, 0))


def create_topic(
    session: Session,
    reader_id: int,
    topic: TopicFilter,
    description: str = "",
    now: dt.datetime | None = None,
) -> TopicInfo:
    """Save a new topic filter owned by ``reader_id`` (any reader may subscribe to it; only
    its owner may change or delete it). Raises :class:`ReaderError` (see
    :func:`validate_topic`) or :class:`Conflict` when the slug is taken."""
    topic = validate_topic(topic)
    if session.scalar(sa.select(Topic.id).where(Topic.slug == topic.slug)) is not None:
        raise Conflict(f"slug: a topic filter {topic.slug!r} already exists")
    row = Topic(
        **_topic_values(topic),
        description=(description or "").strip()[:2000],
        created_by=reader_id,
        created_at=now or utcnow(),
    )
    session.add(row)
    session.flush()
    return _info(row)


def _owned_topic(session: Session, reader_id: int, slug: str) -> Topic:
    row = _topic_row(session, slug)
    if row.created_by is None:
        raise Forbidden(f"topic filter {slug!r} is built in and cannot be changed")
    if row.created_by != reader_id:
        raise Forbidden(f"topic filter {slug!r} belongs to another reader")
    return row


def update_topic(
    session: Session, reader_id: int, slug: str, topic: TopicFilter, description: str | None = None
) -> TopicInfo:
    """Replace the criteria (and name, description) of the reader's own topic filter. The slug
    stays (it is how others subscribed to it). Raises :class:`NotFound`, :class:`Forbidden`
    (another reader's or a built-in filter) or :class:`ReaderError`."""
    row = _owned_topic(session, reader_id, slug)
    values = _topic_values(validate_topic(TopicFilter(**{**_topic_values(topic), "slug": slug})))
    for key, value in values.items():
        setattr(row, key, value)
    if description is not None:
        row.description = description.strip()[:2000]
    session.flush()
    return _info(row, _subscriber_counts(session).get(row.id, 0))


def delete_topic(session: Session, reader_id: int, slug: str) -> None:
    """Delete the reader's own topic filter (and everyone's subscriptions to it). Raises
    :class:`NotFound` or :class:`Forbidden`."""
    row = _owned_topic(session, reader_id, slug)
    session.execute(sa.delete(Subscription).where(Subscription.topic_id == row.id))
    session.delete(row)
    session.flush()


def _normal(text: str) -> str:
    return " ".join(text.lower().split())


def _phrase_re(phrase: str) -> re.Pattern[str]:
    return re.compile(r"(?<![a-z0-9])" + re.escape(_normal(phrase)))


@dataclass(frozen=True, slots=True)
class ItemFacts:
    """What topic matching looks at: title + abstract text, authors, categories, source feeds."""

    title: str
    summary: str = ""
    authors: Sequence[str] = ()
    categories: Sequence[str] = ()
    sources: Sequence[str] = ()


def match_topic(topic: TopicFilter, item: ItemFacts) -> bool:
    """Whether ``item`` matches ``topic`` (rules in the module docstring)."""
    text = _normal(f"{item.title} {item.summary}")
    if any(_phrase_re(n).search(text) for n in topic.negative):
        return False
    phrase_hits = [bool(_phrase_re(p).search(text)) for p in topic.phrases]
    cats = {c.lower() for c in item.categories}
    authors = {_normal(a) for a in item.authors}
    sources = {_normal(s) for s in item.sources}
    groups = [
        (topic.categories, any(c.lower() in cats for c in topic.categories)),
        (topic.authors, any(_normal(a) in authors for a in topic.authors)),
        (topic.sources, any(_normal(s) in sources for s in topic.sources)),
    ]
    if topic.match == "all":
        return (
            all(phrase_hits)
            and all(hit for values, hit in groups if values)
            and bool(topic.phrases or any(values for values, _ in groups))
        )
    return any(phrase_hits) or any(hit for _, hit in groups)


# --- subscriptions ---------------------------------------------------------------------------------


def list_subscriptions(session: Session, reader_id: int) -> list[TopicInfo]:
    """The topic filters the reader follows, in order of subscription."""
    counts = _subscriber_counts(session)
    rows = session.scalars(
        sa.select(Topic)
        .join(Subscription, Subscription.topic_id == Topic.id)
        .where(Subscription.reader_id == reader_id)
        .order_by(Subscription.created_at, Topic.id)
    )
    return [_info(r, counts.get(r.id, 0)) for r in rows]


def subscribe(session: Session, reader_id: int, slug: str, now: dt.datetime | None = None) -> TopicInfo:
    """Follow a topic filter (again is a no-op). Raises :class:`NotFound` for an unknown slug."""
    row = _topic_row(session, slug)
    if session.get(Subscription, (reader_id, row.id)) is None:
        session.add(Subscription(reader_id=reader_id, topic_id=row.id, created_at=now or utcnow()))
        session.flush()
    return _info(row, _subscriber_counts(session).get(row.id, 0))


def unsubscribe(session: Session, reader_id: int, slug: str) -> None:
    """Stop following a topic filter. Raises :class:`NotFound` when the reader does not follow
    it (whoever else does: a reader only ever removes their own subscription)."""
    row = _topic_row(session, slug)
    sub = session.get(Subscription, (reader_id, row.id))
    if sub is None:
        raise NotFound(f"you are not subscribed to {slug!r}")
    session.delete(sub)
    session.flush()


# --- feedback -----------------------------------------------------------------------------------


def set_feedback(
    session: Session, reader_id: int, item_id: int, value: int, now: dt.datetime | None = None
) -> dt.datetime:
    """Record 👍 (``1``) or 👎 (``-1``) on an item; ``0`` removes the vote. Returns the item's
    publication time (UTC), the reference for rescoring around it. Raises
    :class:`ReaderError` for another value, :class:`NotFound` for an unknown item."""
    if value not in (-1, 0, 1):
        raise ReaderError("value: 1 (👍), -1 (👎) or 0 (remove)")
    item = session.get(Item, item_id)
    if item is None:
        raise NotFound(f"no item with id {item_id}")
    row = session.get(Feedback, (reader_id, item_id))
    if value == 0:
        if row is not None:
            session.delete(row)
    elif row is None:
        session.add(Feedback(reader_id=reader_id, item_id=item_id, value=value, created_at=now or utcnow()))
    else:
        row.value, row.created_at = value, now or utcnow()
    session.flush()
    return item.published


def feedback_of(session: Session, reader_id: int, item_ids: Sequence[int] | None = None) -> dict[int, int]:
    """The reader's votes: item id → 1 or -1 (only for ``item_ids`` when given)."""
    query = sa.select(Feedback.item_id, Feedback.value).where(Feedback.reader_id == reader_id)
    if item_ids is not None:
        if not item_ids:
            return {}
        query = query.where(Feedback.item_id.in_(list(item_ids)))
    return dict(session.execute(query).all())


# --- the ranker's view and rescoring ----------------------------------------------------------


def build_profile(session: Session, reader_id: int) -> ReaderProfile:
    """Everything the personal ranking needs for one reader, from the profiles,
    subscriptions (with their topic filters) and feedback tables. Raises :class:`NotFound`."""
    p = get_profile(session, reader_id)
    votes = feedback_of(session, reader_id)
    return ReaderProfile(
        reader_id=reader_id,
        interests=p.interests,
        keywords=p.keywords,
        muted=p.muted,
        followed_authors=p.followed_authors,
        include_categories=p.include_categories,
        exclude_categories=p.exclude_categories,
        include_sources=p.include_sources,
        exclude_sources=p.exclude_sources,
        seed_papers=p.seed_papers,
        liked_item_ids=tuple(sorted(i for i, v in votes.items() if v > 0)),
        disliked_item_ids=tuple(sorted(i for i, v in votes.items() if v < 0)),
        topics=tuple(t.filter for t in list_subscriptions(session, reader_id)),
    )


def rescore(
    session: Session,
    reader_id: int,
    item_ids: Sequence[int] | None = None,
    around: dt.datetime | None = None,
) -> int | None:
    """Recompute the reader's precomputed scores with ``aggregator.ranking.personal.precompute`` for
    ``item_ids`` (default: the personal ranking's recent window, ending at the newest item, or
    at the newest item up to a day after ``around`` when given: after a vote on an older
    item, the days around it are the ones being read) and commit. Returns the number of items
    scored, or None when there is no personal ranking module or no fitted model yet (the
    digest then falls back to the default profile's order). Never raises: a failure is logged
    and the session rolled back, since a rescore must not lose the change that triggered it
    (commit that first)."""
    try:
        from aggregator.ranking import personal  # type: ignore[attr-defined,unused-ignore]
    except ImportError:
        return None
    try:
        from aggregator.ranking import tfidf as rank
        model = rank.load_model(session)
        if model is None:
            return None
        profile = build_profile(session, reader_id)
        ids = list(item_ids) if item_ids is not None else None
        now = None if around is None else around + dt.timedelta(days=1)
        n = int(personal.precompute(session, model, profile, item_ids=ids, now=now))
        session.commit()
        return n
    except Exception:
        log.exception("rescoring reader %s failed", reader_id)
        session.rollback()
        return None


def request_rescore(
    session: Session,
    reader_id: int,
    around: dt.datetime | None = None,
    seeds: bool = False,
    now: dt.datetime | None = None,
) -> dt.datetime:
    """Queue the reader for a worker's rescore (``rescore_requests``), replacing a queued
    request (``seeds`` is kept if either asked for it). Runs in the caller's transaction;
    returns the request time (UTC). Used by API processes that do not score themselves."""
    when = now or utcnow()
    conn = session.connection()
    table = RescoreRequest.__table__
    stmt = insert(conn, table).values(reader_id=reader_id, requested_at=when, around=around, seeds=seeds)
    stmt = stmt.on_conflict_do_update(
        index_elements=["reader_id"],
        set_={
            "requested_at": stmt.excluded.requested_at,
            "around": stmt.excluded.around,
            "seeds": sa.or_(table.c.seeds, stmt.excluded.seeds),
        },
    )
    conn.execute(stmt)
    return when


def rescore_pending(session: Session, reader_id: int) -> bool:
    """Whether a rescore of the reader is still queued for the workers."""
    found = session.scalar(sa.select(RescoreRequest.reader_id).where(RescoreRequest.reader_id == reader_id))
    return found is not None


# --- the reader's digest --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ReaderEntry:
    """A digest entry with the reader's labels: matched topic filter slugs, followed authors
    on the item, and the reader's vote (1, -1 or 0)."""

    entry: DigestEntry
    topics: list[str]
    followed_authors: list[str]
    feedback: int = 0


@dataclass(frozen=True, slots=True)
class TopicGroup:
    slug: str | None  # None: items matching none of the reader's topic filters
    name: str
    items: list[ReaderEntry]


@dataclass(frozen=True, slots=True)
class ReaderDigest:
    """The reader's digest. ``profile`` is the ``scores.profile`` read: ``reader:<id>``, or
    ``default`` when the reader has no scores in this window yet. ``total`` counts the
    window's items before muted and excluded ones are dropped; ``hidden`` how many of those
    looked at were dropped."""

    digest: Digest
    profile: str
    items: list[ReaderEntry]
    hidden: int = 0
    topics: list[TopicFilter] = field(default_factory=list)

    def groups(self) -> list[TopicGroup]:
        """Items grouped by the reader's topic filters (an item in each group it matches, in
        rank order), then the items matching none; empty groups are left out."""
        out = [TopicGroup(t.slug, t.name, [e for e in self.items if t.slug in e.topics]) for t in self.topics]
        out.append(TopicGroup(None, "Other", [e for e in self.items if not e.topics]))
        return [g for g in out if g.items]


def _hidden_by_profile(p: ReaderProfile, e: DigestEntry) -> bool:
    cats = {c.lower() for c in e.categories}
    if any(c.lower() in cats for c in p.exclude_categories):
        return True
    sources = {_normal(s) for s in e.sources}
    if any(_normal(s) in sources for s in p.exclude_sources):
        return True
    text = _normal(f"{e.title} {e.summary}")
    return any(_phrase_re(m).search(text) for m in p.muted)


def reader_digest(
    session: Session,
    tz: zoneinfo.ZoneInfo,
    reader_id: int,
    day: dt.date | None = None,
    days: int = 1,
    limit: int = 50,
) -> ReaderDigest:
    """The reader's ranked digest of the ``days`` local days (time zone ``tz``) ending ``day``,
    best first: the reader's precomputed scores (``reader:<id>``), or the default profile's
    when the reader has none in the window. Items with a muted phrase or author, an excluded
    category or an excluded source are left out (with precomputed scores: the rows marked
    ``muted``, all of the window's counted in ``hidden``; excluded items have no rows). Each
    item is labelled with the reader's subscribed topic filters it matches and the followed
    authors on it. Reads only; nothing is scored here. ``GET /api/me/digest`` serves the same
    digest from :mod:`aggregator.digest.served`; this is the path of the pages, the Atom feed and of
    readers without precomputed scores."""
    profile = build_profile(session, reader_id)
    key = profile.score_key
    if day is None:
        day = default_day(session, tz)
    start, end = day_window(day, days, tz)
    in_window = sa.and_(Score.profile == key, Score.published >= start, Score.published < end)
    has_scores = session.scalar(sa.select(Score.item_id).where(in_window).limit(1))
    personal = has_scores is not None
    kept: list[DigestEntry] = []
    hidden = 0
    if personal:  # muted rows were marked when the scores were precomputed
        digest = build_digest(session, tz, day, days, limit, profile=key, scored_only=True, hide_muted=True)
        kept = digest.items
        hidden = session.scalar(sa.select(sa.func.count()).where(in_window, Score.muted.is_(True))) or 0
    else:  # the default profile's order, filtered by the reader's profile as it is read
        key = DEFAULT_PROFILE
        offset, batch = 0, limit + 20
        while len(kept) < limit:
            digest = build_digest(session, tz, day, days, limit=batch, offset=offset, profile=key)
            for e in digest.items:
                if _hidden_by_profile(profile, e):
                    hidden += 1
                elif len(kept) < limit:
                    kept.append(e)
            offset += batch
            if len(digest.items) < batch:
                break
    votes = feedback_of(session, reader_id, [e.id for e in kept])
    followed = {_normal(a): a for a in profile.followed_authors}
    subscribed = {t.slug for t in profile.topics}
    items = []
    for e in kept:
        if personal and e.stored_topics is not None:  # matched when the scores were precomputed
            topics = [t for t in e.stored_topics if t in subscribed]
        else:
            facts = ItemFacts(e.title, e.summary, e.authors, e.categories, e.sources)
            topics = [t.slug for t in profile.topics if match_topic(t, facts)]
        if personal and e.stored_authors is not None:
            authors = list(e.stored_authors)
        else:
            authors = [a for a in e.authors if _normal(a) in followed]
        items.append(ReaderEntry(e, topics=topics, followed_authors=authors, feedback=votes.get(e.id, 0)))
    return ReaderDigest(
        Digest(day, days, start, end, digest.total, kept), key, items, hidden, list(profile.topics)
    )
