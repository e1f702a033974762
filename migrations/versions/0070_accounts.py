"""accounts: verified addresses, case-insensitive unique addresses, sign-in links, web sessions

Revision ID: 0070
Revises: 0042

* ``readers.email_verified_at``: readers that exist now are marked verified (at this
  migration's time): they were made by the operator or already received mail.
* ``uq_readers_email_lower``: a unique index on ``lower(email)`` (SQLite and PostgreSQL
  both index expressions). Sign-up already refused case variants, so none should exist; if
  some do, the migration stops and names them rather than pick one to delete.
* ``signin_links`` and ``web_sessions`` (see :mod:`aggregator.store.tables`).
"""

import datetime as dt

import sqlalchemy as sa
from alembic import op

revision = "0070"
down_revision = "0080"
branch_labels = None
depends_on = None


def upgrade() -> None:
    conn = op.get_bind()
    dup = conn.execute(
        sa.text("SELECT lower(email) FROM readers GROUP BY lower(email) HAVING count(*) > 1")
    ).scalars()
    clashes = sorted(dup)
    if clashes:
        raise RuntimeError(
            "readers with the same address in different case: "
            + ", ".join(clashes[:20])
            + "; merge or delete them (aggregator users list), then upgrade again"
        )
    op.add_column("readers", sa.Column("email_verified_at", sa.DateTime(timezone=True), nullable=True))
    now = dt.datetime.now(dt.UTC)
    stamp = now.replace(tzinfo=None) if conn.dialect.name == "sqlite" else now
    conn.execute(sa.text("UPDATE readers SET email_verified_at = :now"), {"now": stamp})
    op.create_index("uq_readers_email_lower", "readers", [sa.text("lower(email)")], unique=True)

    op.create_table(
        "signin_links",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("reader_id", sa.Integer(), sa.ForeignKey("readers.id", ondelete="CASCADE"), nullable=False),
        sa.Column("nonce_hash", sa.String(64), nullable=False, unique=True),
        sa.Column("purpose", sa.String(8), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.create_index("ix_signin_links_reader_created", "signin_links", ["reader_id", "created_at"])

    op.create_table(
        "web_sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("reader_id", sa.Integer(), sa.ForeignKey("readers.id", ondelete="CASCADE"), nullable=False),
        sa.Column("csrf", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_web_sessions_reader_id", "web_sessions", ["reader_id"])


def downgrade() -> None:
    op.drop_index("ix_web_sessions_reader_id", table_name="web_sessions")
    op.drop_table("web_sessions")
    op.drop_index("ix_signin_links_reader_created", table_name="signin_links")
    op.drop_table("signin_links")
    op.drop_index("uq_readers_email_lower", table_name="readers")
    op.drop_column("readers", "email_verified_at")
