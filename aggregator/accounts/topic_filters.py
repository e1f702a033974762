"""Topic filters (:class:`aggregator.types.TopicFilter`): stored, listed, created, edited and
deleted by their owner, and matched against items.

Who sees what: built-in filters are public; a reader's filter is private to its owner until
the owner shares it (``topics.shared``). Everyone may list, read and subscribe to the public
ones; a private filter of another reader does not exist for them (:class:`NotFound`, never
:class:`Forbidden`, so that its slug reveals nothing). Only the owner changes or deletes a
filter; nobody changes a built-in one.

The one topic matcher (:func:`match_topic`), phrase rule (:func:`phrase_pattern`), mute rule
(:func:`is_muted`) and category/source filter rule (:func:`is_excluded`) of every path live
here; ``aggregator.ranking.personal.item_matrix`` vectorises the same rules.
Functions never commit; errors: ``ReaderError``, ``NotFound``, ``Forbidden``, ``Conflict``."""

from __future__ import annotations

import datetime as dt
import functools
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy.orm import Session

from aggregator.accounts.fields import SLUG_RE, clean_list, non_blank_strings
from aggregator.clock import utcnow
from aggregator.errors import Conflict, Forbidden, NotFound, ReaderError
from aggregator.store.db import insert
from aggregator.store.locks import lock_reader
from aggregator.store.tables import Subscription, Topic
from aggregator.types import TopicFilter

#: Topic filters one reader may have created at a time (the built-in ones do not count).
MAX_TOPICS_PER_READER = 200


@dataclass(frozen=True, slots=True)
class TopicInfo:
    """A stored topic filter. ``created_by`` is None for the built-in catalogue."""

    filter: TopicFilter
    description: str = ""
    created_by: int | None = None
    subscribers: int = 0
    #: visible to every reader (built-in, or shared by its owner); False: its owner's only
    shared: bool = True

    @property
    def slug(self) -> str:
        return self.filter.slug


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
    return TopicInfo(topic_filter(row), row.description or "", row.created_by, subscribers, bool(row.shared))


def visible_to(reader_id: int | None) -> sa.ColumnElement[bool]:
    """The SQL condition of the topic filters ``reader_id`` may see (None: an anonymous
    visitor): the shared ones (built-in filters are shared) and the reader's own."""
    if reader_id is None:
        return Topic.shared.is_(True)
    return sa.or_(Topic.shared.is_(True), Topic.created_by == reader_id)


def list_topics(session: Session, reader_id: int | None = None) -> list[TopicInfo]:
    """The catalogue ``reader_id`` sees (see :func:`visible_to`): built-in filters first, then
    readers' in order of creation."""
    counts = _subscriber_counts(session)
    rows = session.scalars(
        sa.select(Topic).where(visible_to(reader_id)).order_by(Topic.created_by.is_not(None), Topic.id)
    )
    return [_info(r, counts.get(r.id, 0)) for r in rows]


def _topic_row(session: Session, slug: str, reader_id: int | None = None) -> Topic:
    """The ``topics`` row of ``slug`` if ``reader_id`` may see it; else :class:`NotFound`
    (the same answer as for a slug nobody uses)."""
    row = session.scalar(sa.select(Topic).where(Topic.slug == slug, visible_to(reader_id)))
    if row is None:
        raise NotFound(f"no topic filter {slug!r}")
    return row


def get_topic(session: Session, slug: str, reader_id: int | None = None) -> TopicInfo:
    """One topic filter by slug, as ``reader_id`` (None: anonymous) sees it. Raises
    :class:`NotFound` for an unknown slug and for another reader's private filter."""
    row = _topic_row(session, slug, reader_id)
    return _info(row, _subscriber_counts(session).get(row.id, 0))


#: how many numbered variants (``name-2``, ``name-3``…) of a derived slug are tried
_SLUG_VARIANTS = 100


def slug_for_name(name: str) -> str:
    """The slug derived from a filter's name: accents dropped, lower case, every run of other
    characters made one hyphen, at most 80 characters ("Graph neural nets (GNNs)" →
    ``graph-neural-nets-gnns``); ``topic`` when nothing is left."""
    ascii_name = unicodedata.normalize("NFKD", name or "").encode("ascii", "ignore").decode()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_name.lower()).strip("-")[:80].strip("-")
    return slug or "topic"


def free_slug(session: Session, name: str) -> str:
    """:func:`slug_for_name` of ``name``, numbered (``-2``, ``-3``…) when taken by any filter.
    Raises :class:`Conflict` when the first variants are all taken."""
    base = slug_for_name(name)
    taken = set(session.scalars(sa.select(Topic.slug).where(Topic.slug.startswith(base, autoescape=True))))
    for n in range(1, _SLUG_VARIANTS + 1):
        slug = base if n == 1 else f"{base}-{n}"
        if slug not in taken:
            return slug
    raise Conflict(f"slug: too many topic filters are named {name!r}; give a slug")


def create_topic(
    session: Session,
    reader_id: int,
    topic: TopicFilter,
    description: str = "",
    now: dt.datetime | None = None,
    shared: bool = False,
) -> TopicInfo:
    """Save a new topic filter owned by ``reader_id``: private to them unless ``shared`` (then
    any reader may see and subscribe to it); only its owner may change or delete it. An empty
    ``topic.slug`` is derived from the name (:func:`free_slug`). Raises :class:`ReaderError`
    (see :func:`validate_topic`; also when the reader already has
    :data:`MAX_TOPICS_PER_READER`) or :class:`Conflict` when a given slug is taken. Both hold
    under concurrent requests: the count is taken under
    :func:`aggregator.store.locks.lock_reader`, and the row is inserted with ``ON CONFLICT
    (slug) DO NOTHING`` (a slug taken meanwhile is a 409, not a 500)."""
    if not topic.slug:
        topic = TopicFilter(**{**_topic_values(topic), "slug": free_slug(session, topic.name)})
    topic = validate_topic(topic)
    lock_reader(session, reader_id)
    if session.scalar(sa.select(Topic.id).where(Topic.slug == topic.slug)) is not None:
        raise Conflict(f"slug: a topic filter {topic.slug!r} already exists")
    owned = session.scalar(sa.select(sa.func.count()).select_from(Topic).where(Topic.created_by == reader_id))
    if (owned or 0) >= MAX_TOPICS_PER_READER:
        raise ReaderError(
            f"topic filters: a reader may create at most {MAX_TOPICS_PER_READER}; delete one first"
        )
    values = {
        **_topic_values(topic),
        "description": (description or "").strip()[:2000],
        "created_by": reader_id,
        "created_at": now or utcnow(),
        "shared": shared,
    }
    conn = session.connection()
    stmt = insert(conn, Topic.__table__).values(**values).on_conflict_do_nothing(index_elements=["slug"])
    new_id = conn.execute(stmt.returning(Topic.__table__.c.id)).scalar()
    if new_id is None:
        raise Conflict(f"slug: a topic filter {topic.slug!r} already exists")
    row = session.get(Topic, new_id)
    assert row is not None
    return _info(row)


def _owned_topic(session: Session, reader_id: int, slug: str) -> Topic:
    row = _topic_row(session, slug, reader_id)
    if row.created_by is None:
        raise Forbidden(f"topic filter {slug!r} is built in and cannot be changed")
    if row.created_by != reader_id:
        raise Forbidden(f"topic filter {slug!r} belongs to another reader")
    return row


def own_topic(session: Session, reader_id: int, slug: str) -> TopicInfo:
    """One of the reader's own topic filters (to edit it). Raises :class:`NotFound` (also for
    another reader's private filter) or :class:`Forbidden` (built in, or another reader's)."""
    row = _owned_topic(session, reader_id, slug)
    return _info(row, _subscriber_counts(session).get(row.id, 0))


def update_topic(
    session: Session,
    reader_id: int,
    slug: str,
    topic: TopicFilter,
    description: str | None = None,
    shared: bool | None = None,
) -> TopicInfo:
    """Replace the criteria (and name, description) of the reader's own topic filter, and share
    or unshare it (``shared`` None: unchanged). The slug stays (it is how others subscribed to
    it). Unsharing ends the other readers' subscriptions to it. Raises :class:`NotFound` (also
    for another reader's private filter), :class:`Forbidden` (another reader's shared filter,
    a built-in one) or :class:`ReaderError`."""
    row = _owned_topic(session, reader_id, slug)
    values = _topic_values(validate_topic(TopicFilter(**{**_topic_values(topic), "slug": slug})))
    for key, value in values.items():
        setattr(row, key, value)
    if description is not None:
        row.description = description.strip()[:2000]
    if shared is not None:
        row.shared = shared
        if not shared:
            session.execute(
                sa.delete(Subscription).where(
                    Subscription.topic_id == row.id, Subscription.reader_id != reader_id
                )
            )
    session.flush()
    return _info(row, _subscriber_counts(session).get(row.id, 0))


def delete_topic(session: Session, reader_id: int, slug: str) -> None:
    """Delete the reader's own topic filter (and everyone's subscriptions to it). Raises
    :class:`NotFound` or :class:`Forbidden`."""
    row = _owned_topic(session, reader_id, slug)
    session.execute(sa.delete(Subscription).where(Subscription.topic_id == row.id))
    session.delete(row)
    session.flush()


def normal_name(text: str) -> str:
    """``text`` case-folded with runs of whitespace made one space (how names, sources and
    authors are compared)."""
    return " ".join(text.casefold().split())


#: compiled phrase patterns kept (an LRU): profiles bring new phrases with every save
PHRASE_CACHE_SIZE = 2048


#: compiled "any of these phrases" patterns kept (an LRU): one per topic filter's phrase list
ANY_PHRASE_CACHE_SIZE = 256


def _phrase_body(phrase: str) -> str:
    words = [re.escape(w) for w in re.split(r"[\s\-]+", phrase.strip()) if w]
    return r"[\s\-]+".join(words) if words else r"(?!)"


@functools.lru_cache(maxsize=PHRASE_CACHE_SIZE)
def phrase_pattern(phrase: str) -> re.Pattern[str]:
    """The one phrase rule of topic filters, muted phrases and the ranking's masks: whole
    words, case-insensitive; words may be separated by any run of whitespace or hyphens
    ("diffusion model" and "diffusion-model" match each other both ways) and the last word may
    take a plural ``s``/``es`` ("agent" matches "agents", not "reagent" nor "agentic"; "gan"
    matches "GANs", not "Gangs" nor "organ"). A blank phrase matches nothing."""
    return re.compile(rf"(?<![\w]){_phrase_body(phrase)}(?:s|es)?(?![\w])", re.IGNORECASE)


@functools.lru_cache(maxsize=ANY_PHRASE_CACHE_SIZE)
def any_phrase_pattern(phrases: tuple[str, ...]) -> re.Pattern[str]:
    """One pattern that finds a text exactly when :func:`phrase_pattern` of one of ``phrases``
    does (an alternation of the same bodies: one pass over the text instead of one per phrase).
    No phrases: matches nothing."""
    body = "|".join(_phrase_body(p) for p in phrases) or r"(?!)"
    return re.compile(rf"(?<![\w])(?:{body})(?:s|es)?(?![\w])", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class ItemFacts:
    """What topic matching looks at: title + abstract text, authors, categories, source feeds."""

    title: str
    summary: str = ""
    authors: Sequence[str] = ()
    categories: Sequence[str] = ()
    sources: Sequence[str] = ()

    @property
    def text(self) -> str:
        return f"{self.title}\n{self.summary}"


def match_topic(topic: TopicFilter, item: ItemFacts) -> bool:
    """Whether ``item`` matches ``topic``: the one matcher of every path (the reader's digest,
    precomputing through the vectorised ``ItemWindow.topic_mask``, previews, built-in labels).

    Phrases use :func:`phrase_pattern` on title and abstract; categories compare
    case-insensitively; authors and sources as :func:`normal_name`. ``match="any"``: one hit
    of any kind; ``match="all"``: every phrase occurs and each non-empty list of categories,
    authors and sources has a hit. A negative phrase that occurs rules the item out; a filter
    without positive criteria matches nothing."""
    text = item.text
    if topic.negative and any_phrase_pattern(tuple(topic.negative)).search(text):
        return False
    cats = {c.casefold() for c in item.categories}
    authors = {normal_name(a) for a in item.authors}
    sources = {normal_name(s) for s in item.sources}
    groups = [
        (topic.categories, any(c.casefold() in cats for c in topic.categories)),
        (topic.authors, any(normal_name(a) in authors for a in topic.authors)),
        (topic.sources, any(normal_name(s) in sources for s in topic.sources)),
    ]
    if topic.match == "all":
        return (
            bool(topic.phrases or any(values for values, _ in groups))
            and all(hit for values, hit in groups if values)
            and all(phrase_pattern(p).search(text) for p in topic.phrases)
        )
    if any(hit for _, hit in groups):
        return True
    return bool(topic.phrases) and any_phrase_pattern(tuple(topic.phrases)).search(text) is not None


def is_muted(muted: Sequence[str], item: ItemFacts) -> bool:
    """The one mute rule: an entry of ``muted`` equal to an author of the item
    (:func:`normal_name`) or occurring as a phrase in its title/abstract (:func:`phrase_pattern`)."""
    authors = {normal_name(a) for a in item.authors}
    text = item.text
    return any(m.strip() and (normal_name(m) in authors or phrase_pattern(m).search(text)) for m in muted)


def is_excluded(
    item: ItemFacts,
    exclude_categories: Sequence[str] = (),
    exclude_sources: Sequence[str] = (),
    include_categories: Sequence[str] = (),
    include_sources: Sequence[str] = (),
) -> bool:
    """The one category/source filter rule: excluded when the item carries an excluded category
    or comes from an excluded source; when include lists are given, it must carry an included
    category **or** come from an included source (union)."""
    cats = {c.casefold() for c in item.categories}
    sources = {normal_name(s) for s in item.sources}
    if any(c.casefold() in cats for c in exclude_categories):
        return True
    if any(normal_name(s) in sources for s in exclude_sources):
        return True
    if include_categories or include_sources:
        return not (
            any(c.casefold() in cats for c in include_categories)
            or any(normal_name(s) in sources for s in include_sources)
        )
    return False
