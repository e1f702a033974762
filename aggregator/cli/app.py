"""The ``aggregator`` command line (Typer). Each command calls the same functions as the scheduler.

A mistake a user can make (a bad option value, setting or feeds file, a port in use) ends the
command with one line ``error: ...`` on stderr and exit code 2 (1 for a failure met while
working), never a traceback. Text from feeds and readers is printed escaped, never read as
Rich markup.
"""

from __future__ import annotations

import sys

# the command modules register their commands on ``app`` when imported
from aggregator.cli import admin, feeds, read, serve, snapshot  # noqa: F401
from aggregator.cli import search as search_cli
from aggregator.cli.common import app, db_app, email_app, feeds_app, users_app
from aggregator.cli.library import app as library_app

app.add_typer(db_app, name="db")
app.add_typer(users_app, name="users")
app.add_typer(feeds_app, name="feeds")
app.add_typer(email_app, name="email")
app.add_typer(library_app, name="library")
app.command("search")(search_cli.search)


def main() -> None:
    """The ``aggregator`` console script: Ctrl-C exits with status 130, without a traceback."""
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
