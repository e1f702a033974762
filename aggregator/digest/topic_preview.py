"""What a topic filter would have matched over the last week, before it is saved: the items of
the :data:`PREVIEW_DAYS` local days ending with the digest's default day
(:func:`aggregator.digest.public.default_day`), matched with the one topic matcher
(:func:`aggregator.accounts.topic_filters.match_topic`).

Bounded cost: at most ``scan`` items (newest first) are read and matched — fewer for a filter
with many phrases, so that items × phrases stays under :data:`PREVIEW_WORK` (each phrase is a
regular expression search of the title and abstract) — and at most ``show`` of the matches are
returned; the preview says when the week held more items than it read."""

from __future__ import annotations

import dataclasses
import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.orm import Session

from aggregator.accounts.topic_filters import ItemFacts, match_topic, validate_topic
from aggregator.digest.public import day_window, default_day
from aggregator.store.queries import item_sources
from aggregator.store.tables import Item
from aggregator.types import TopicFilter

#: days the preview looks back over, the default day included
PREVIEW_DAYS = 7
#: items read and matched at most (newest first): about a week of the arXiv AI listings
PREVIEW_SCAN = 5000
#: matching items returned at most
PREVIEW_SHOW = 50
#: phrase searches (items read × (phrases + negative phrases)) of one preview at most: about a
#: second of CPU (``bench/topic_preview.py``)
PREVIEW_WORK = 40_000
#: item ids per ``IN (...)`` of the source look-up
_CHUNK = 500


@dataclass(frozen=True, slots=True)
class PreviewItem:
    id: int
    title: str
    url: str | None
    published: dt.datetime
    kind: str
    sources: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class TopicPreview:
    """``matched`` of the ``scanned`` newest items of [``start``, ``end``) (UTC; the ``days``
    local days ending with ``last_day``) match; the first ``len(items)`` of them, newest first.
    ``in_window`` items lie in the window in all: more than ``scanned`` means the preview read
    only the newest ones."""

    start: dt.datetime
    end: dt.datetime
    last_day: dt.date
    days: int
    in_window: int
    scanned: int
    matched: int
    items: list[PreviewItem]

    @property
    def first_day(self) -> dt.date:
        """The first local day of the window."""
        return self.last_day - dt.timedelta(days=self.days - 1)

    @property
    def partial(self) -> bool:
        """Whether the window held more items than were read."""
        return self.in_window > self.scanned


def _sources(session: Session, ids: list[int]) -> dict[int, list[str]]:
    out: dict[int, list[str]] = {}
    for i in range(0, len(ids), _CHUNK):
        out.update(item_sources(session, ids[i : i + _CHUNK]))
    return out


def preview_topic(
    session: Session,
    topic: TopicFilter,
    tz: ZoneInfo,
    now: dt.datetime | None = None,
    scan: int = PREVIEW_SCAN,
    show: int = PREVIEW_SHOW,
) -> TopicPreview:
    """The items ``topic`` matches among the newest ``scan`` (bounded by :data:`PREVIEW_WORK`)
    of the last :data:`PREVIEW_DAYS` days: local days in ``tz`` ending with the default day as
    of ``now`` (default the current time). ``topic`` is checked first (:func:`validate_topic`;
    a blank slug is fine here): raises :class:`aggregator.errors.ReaderError` as saving it
    would."""
    topic = validate_topic(dataclasses.replace(topic, slug=topic.slug or "preview"))
    scan = max(1, min(scan, PREVIEW_WORK // max(1, len(topic.phrases) + len(topic.negative))))
    last_day = default_day(session, tz, now)
    start, end = day_window(last_day, PREVIEW_DAYS, tz)
    in_window = session.scalar(
        sa.select(sa.func.count()).select_from(Item).where(Item.published >= start, Item.published < end)
    )
    rows = session.execute(
        sa.select(
            Item.id,
            Item.title,
            Item.url,
            Item.published,
            Item.kind,
            Item.summary,
            Item.authors,
            Item.categories,
        )
        .where(Item.published >= start, Item.published < end)
        .order_by(Item.published.desc(), Item.id.desc())
        .limit(scan)
    ).all()
    sources = _sources(session, [r.id for r in rows])
    matched = 0
    items: list[PreviewItem] = []
    for r in rows:
        names = sources.get(r.id, [])
        facts = ItemFacts(r.title, r.summary or "", r.authors or (), r.categories or (), names)
        if not match_topic(topic, facts):
            continue
        matched += 1
        if len(items) < show:
            published = r.published if r.published.tzinfo else r.published.replace(tzinfo=dt.UTC)
            items.append(PreviewItem(r.id, r.title, r.url, published, r.kind, tuple(names)))
    return TopicPreview(start, end, last_day, PREVIEW_DAYS, in_window or 0, len(rows), matched, items)
