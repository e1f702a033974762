"""Secrets the instance makes for itself (table ``app_secrets``): the signing key of sessions
and email links when ``AGGREGATOR_SECRET_KEY`` is not set. ``secrets.token_urlsafe(48)``."""

from __future__ import annotations

import datetime as dt
import secrets

import sqlalchemy as sa
from sqlalchemy.orm import Session

from aggregator.store.db import insert
from aggregator.store.tables import AppSecret

SECRET_NAME = "session-signing-key"


def load_or_create_secret(session: Session, name: str = SECRET_NAME) -> str:
    """The secret called ``name`` from ``app_secrets``, created (``secrets.token_urlsafe(48)``)
    when missing. Concurrent first starts agree: the insert does nothing on conflict and the
    stored row is read back. Commits."""
    value = session.scalar(sa.select(AppSecret.value).where(AppSecret.name == name))
    if value is None:
        conn = session.connection()
        stmt = insert(conn, AppSecret.__table__).on_conflict_do_nothing(index_elements=["name"])
        conn.execute(
            stmt,
            {"name": name, "value": secrets.token_urlsafe(48), "created_at": dt.datetime.now(dt.UTC)},
        )
        session.commit()
        value = session.scalar(sa.select(AppSecret.value).where(AppSecret.name == name))
    assert value is not None
    return value
