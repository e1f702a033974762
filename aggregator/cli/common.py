"""What every command shares: the Typer apps, the consoles, reading settings and feeds.toml,
and turning a user's mistake into one ``error: ...`` line (exit 2) instead of a traceback.
Text from feeds and readers is printed escaped, never read as Rich markup."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from typing import Any, Final

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.markup import escape

from aggregator.config import ConfigError, FeedsFile, Settings, get_settings, load_feeds_file
from aggregator.store.db import DatabaseError, make_engine, upgrade

#: Help texts are Markdown: a docstring's paragraphs are reflowed to the terminal's width (Rich
#: mode keeps the source's line breaks), and a ``\f`` line ends what ``--help`` shows (Click).
HELP_MARKUP: Final = "markdown"


def command_group(help: str) -> typer.Typer:
    """A group of subcommands (``aggregator <group> <command>``) with ``help`` as its text."""
    return typer.Typer(help=help, no_args_is_help=True, rich_markup_mode=HELP_MARKUP)


app = typer.Typer(
    help="Follow arXiv and ML blogs; rank a daily digest; see what is rising.",
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=HELP_MARKUP,
)


db_app = command_group("Database maintenance.")


users_app = command_group("Reader accounts.")


feeds_app = command_group("Feeds kept in the database (beyond feeds.toml).")


email_app = command_group("The weekly email.")


console = Console()


err_console = Console(stderr=True)


def _fail(message: str, code: int = 2) -> typer.Exit:
    """Print ``error: message`` as one line on stderr (``message`` is plain text, never markup)
    and return the :class:`typer.Exit` to raise."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", soft_wrap=True)
    return typer.Exit(code)


#: Settings whose value is not repeated in an error message.
_SECRET_SETTING = re.compile(r"password|secret|key|url", re.IGNORECASE)


def settings_problem(err: ValidationError) -> str:
    """One line saying which ``AGGREGATOR_*`` settings are invalid and why, e.g.
    ``invalid setting AGGREGATOR_PORT=99999: not a port number (1-65535)``. Values of settings
    that may hold a secret (passwords, keys, URLs) are not repeated."""
    parts = []
    for e in err.errors():
        name = ".".join(str(x) for x in e["loc"])
        env = f"AGGREGATOR_{name.upper()}"
        value = e.get("input")
        if name in ("port", "smtp_port"):
            message = "not a port number (1-65535)"
        else:
            message = str(e["msg"]).removeprefix("Value error, ")
            message = message[:1].lower() + message[1:]
        shown = isinstance(value, str | int | float) and not _SECRET_SETTING.search(name)
        parts.append(f"{env}={value}: {message}" if shown else f"{env}: {message}")
    return "invalid setting " + "; ".join(parts)


def _settings() -> Settings:
    try:
        return get_settings()
    except ValidationError as err:
        raise _fail(settings_problem(err)) from None


def _setup() -> tuple[Settings, FeedsFile]:
    settings = _settings()
    try:
        return settings, load_feeds_file(settings.feeds_file)
    except (ConfigError, ValueError) as err:
        raise _fail(str(err)) from err


_MONTHS = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)


_DAY_RE = re.compile(r"(\d{4})-(\d{1,2})-(\d{1,2})")


def parse_day(text: str) -> dt.date:
    """A calendar day written ``YYYY-MM-DD`` (``2026-06-05``; ``2026-6-5`` too).

    Raises :class:`ValueError` with a one-line message that tells a wrong form
    (``'06/05/2026' is not of the form YYYY-MM-DD``) from a day that does not exist
    (``2026-06-31 is not a date: June has 30 days``, ``2026-02-29 is not a date: February 2026
    has 28 days``, ``2026-13-01 is not a date: there is no month 13``)."""
    match = _DAY_RE.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"{text!r} is not of the form YYYY-MM-DD")
    year, month, day = (int(g) for g in match.groups())
    if year < dt.MINYEAR:
        raise ValueError(f"{text} is not a date: there is no year 0")
    if not 1 <= month <= 12:
        raise ValueError(f"{text} is not a date: there is no month {month}")
    try:
        return dt.date(year, month, day)
    except ValueError:
        last = (dt.date(year + month // 12, month % 12 + 1, 1) - dt.timedelta(days=1)).day
        which = _MONTHS[month - 1] + (f" {year}" if month == 2 else "")
        raise ValueError(
            f"{text} is not a date: " + ("days start at 1" if day == 0 else f"{which} has {last} days")
        ) from None


def _day_option(option: str) -> Callable[[Any], dt.date]:
    """Typer ``parser`` of a ``YYYY-MM-DD`` option (every date option uses one): a bad value
    ends the command with :func:`parse_day`'s message, e.g.
    ``error: --since 2026-06-31 is not a date: June has 30 days``."""

    def parse(value: Any) -> dt.date:
        if isinstance(value, dt.date):
            return value
        try:
            return parse_day(str(value))
        except ValueError as err:
            raise _fail(f"{option} {err}") from None

    return parse


def _port_option(value: Any) -> int:
    """Typer ``parser`` of ``--port``: an integer 1-65535, else
    ``error: --port 99999 is not a port number (1-65535)``."""
    if isinstance(value, int):
        port = value
    else:
        try:
            port = int(str(value).strip())
        except ValueError:
            port = 0
    if not 1 <= port <= 65535:
        raise _fail(f"--port {value} is not a port number (1-65535)")
    return port


def _address(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _engine(settings: Settings):  # type: ignore[no-untyped-def]
    engine = make_engine(settings.database_url)
    try:
        upgrade(engine)
    except DatabaseError as err:
        raise _fail(str(err)) from err
    return engine


def item_locator(arxiv_id: str | None, url: str | None, width: int = 48) -> str:
    """How to open an item from a terminal, as plain text: ``arXiv:2606.01234`` for a paper,
    else its URL without scheme, ``www.`` and trailing slash, cut to ``width`` characters with
    ``…`` (``lilianweng.github.io/posts/2024-…``), or ``-`` without either."""
    if arxiv_id:
        return f"arXiv:{arxiv_id}"
    if not url:
        return "-"
    short = re.sub(r"\A[a-z][a-z0-9+.-]*://(www\.)?", "", url.strip(), flags=re.IGNORECASE).rstrip("/")
    return short if len(short) <= width else short[: width - 1] + "…"
