"""Delete a reader account and everything that is theirs (``DELETE /api/me``, the profile page).

What goes, in one transaction:

* the ``readers`` row, and with it (``ON DELETE CASCADE``) the interest profile, topic
  subscriptions, 👍/👎 feedback, library (saved items and their tags), read marks, queued
  rescore, weekly email state (``email_sends``), sign-in links and web sessions;
* the reader's precomputed scores (``scores.profile = 'reader:<id>'``: a key, not a foreign
  key, so deleted here explicitly);
* the topic filters they created that no other reader subscribes to. Filters another reader
  subscribes to stay for them, owned by nobody (``created_by`` NULL, like the built-in ones);
* the feeds they added: a feed that brought no item is deleted; one with items stops being
  fetched (as :func:`aggregator.feeds.added_feeds.remove_feed` does) and keeps its items,
  which other readers may have voted on or saved, with ``added_by`` NULL (the foreign key's
  ``ON DELETE SET NULL``). It stays ``reader_added``, so it is still fetched through the SSRF
  guard should the operator schedule it again.

Items themselves are shared and never belong to a reader, so none is deleted.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlalchemy as sa
from sqlalchemy.orm import Session

from aggregator.errors import NotFound
from aggregator.store.tables import Feed, ItemSource, Reader, Score, Subscription, Topic


@dataclass(frozen=True, slots=True)
class Deleted:
    """What :func:`delete_reader` removed besides the cascaded rows."""

    reader_id: int
    email: str
    scores: int
    topics_deleted: int
    topics_kept: int
    feeds_deleted: int
    feeds_stopped: int


def delete_reader(session: Session, reader_id: int) -> Deleted:
    """Delete the reader and all their rows (see the module). Raises :class:`NotFound` when
    there is no such reader. Flushes; the caller commits."""
    reader = session.get(Reader, reader_id, with_for_update=True)
    if reader is None:
        raise NotFound(f"no reader with id {reader_id}")
    email = reader.email
    scores = session.execute(sa.delete(Score).where(Score.profile == f"reader:{reader_id}"))

    others = sa.exists().where(Subscription.topic_id == Topic.id, Subscription.reader_id != reader_id)
    mine = Topic.created_by == reader_id
    kept = int(session.scalar(sa.select(sa.func.count()).select_from(Topic).where(mine, others)) or 0)
    topics = session.execute(
        sa.delete(Topic).where(mine, ~others).execution_options(synchronize_session=False)
    )

    has_items = sa.exists().where(ItemSource.feed_id == Feed.id)
    added = Feed.added_by == reader_id
    feeds_deleted = session.execute(
        sa.delete(Feed).where(added, ~has_items).execution_options(synchronize_session=False)
    )
    stopped = session.execute(
        sa.update(Feed)
        .where(added)
        .values(scheduled=False, lease_until=None)
        .execution_options(synchronize_session=False)
    )
    session.execute(sa.delete(Reader).where(Reader.id == reader_id))
    session.expire_all()
    session.flush()
    return Deleted(
        reader_id,
        email,
        int(getattr(scores, "rowcount", 0) or 0),
        int(getattr(topics, "rowcount", 0) or 0),
        kept,
        int(getattr(feeds_deleted, "rowcount", 0) or 0),
        int(getattr(stopped, "rowcount", 0) or 0),
    )
