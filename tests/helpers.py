"""Helpers shared by the test modules (plain functions; fixtures live in ``conftest.py``)."""

from __future__ import annotations

import datetime as dt
import socket

from sqlalchemy.orm import Session

from aggregator.store.tables import Feed


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the OS picks it)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def add_feed(
    session: Session,
    name: str = "bulk",
    url: str | None = None,
    kind: str = "arxiv",
    now: dt.datetime | None = None,
) -> int:
    """Insert a feed row (not scheduled by feeds.toml) and return its id; flushes, never commits."""
    feed = Feed(
        url=url or f"test://{name}",
        name=name,
        kind=kind,
        created_at=now or dt.datetime.now(dt.UTC),
        error_count=0,
        disabled=False,
        tags=[],
    )
    session.add(feed)
    session.flush()
    return feed.id
