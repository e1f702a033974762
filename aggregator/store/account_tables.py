"""Account tables: sign-in links and web sessions (issue 14, finding 5). Declared on
:class:`aggregator.store.tables.Base`, so one ``metadata`` holds every table."""

from __future__ import annotations

import datetime as dt

import sqlalchemy as sa
from sqlalchemy.orm import Mapped, mapped_column

from aggregator.store.tables import Base


class SignInLink(Base):
    """A link mailed to a reader (``verify`` after sign-up, or ``signin``): the SHA-256 of its
    nonce, used once (``used_at``) before ``expires_at``. See :mod:`aggregator.accounts.links`."""

    __tablename__ = "signin_links"
    __table_args__ = (sa.Index("ix_signin_links_reader_created", "reader_id", "created_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    reader_id: Mapped[int] = mapped_column(sa.ForeignKey("readers.id", ondelete="CASCADE"))
    nonce_hash: Mapped[str] = mapped_column(sa.String(64), unique=True)
    purpose: Mapped[str] = mapped_column(sa.String(8))
    created_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
    used_at: Mapped[dt.datetime | None]


class WebSession(Base):
    """A signed-in browser: SHA-256 of the cookie's session id, and its CSRF token (see
    :mod:`aggregator.accounts.web_sessions`)."""

    __tablename__ = "web_sessions"

    id_hash: Mapped[str] = mapped_column(sa.String(64), primary_key=True)
    reader_id: Mapped[int] = mapped_column(sa.ForeignKey("readers.id", ondelete="CASCADE"), index=True)
    csrf: Mapped[str] = mapped_column(sa.String(64))
    created_at: Mapped[dt.datetime]
    expires_at: Mapped[dt.datetime]
