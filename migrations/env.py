"""Alembic environment. The engine comes from ``config.attributes["engine"]`` (set by
:func:`aggregator.store.db.upgrade`) or, for the ``alembic`` command line, from
``AGGREGATOR_DATABASE_URL``."""

from alembic import context

from aggregator.store import account_tables, trends_tables  # noqa: F401  (registers its tables on Base.metadata)
from aggregator.store.db import make_engine
from aggregator.store.tables import Base

config = context.config
target_metadata = Base.metadata


def run_migrations_online() -> None:
    engine = config.attributes.get("engine")
    if engine is None:
        from aggregator.config import get_settings

        engine = make_engine(get_settings().database_url)
    with engine.begin() as connection:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        context.run_migrations()


run_migrations_online()
