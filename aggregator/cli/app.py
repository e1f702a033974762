"""The ``aggregator`` command line (Typer). Each command calls the same functions as the scheduler.

A mistake a user can make (a bad option value, setting or feeds file, a port in use) ends the
command with one line ``error: ...`` on stderr and exit code 2 (1 for a failure met while
working), never a traceback. Text from feeds and readers is printed escaped, never read as
Rich markup.
"""

from __future__ import annotations

import datetime as dt
import os
import re
import socket
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

import sqlalchemy as sa
import typer
from apscheduler.schedulers.base import BaseScheduler
from pydantic import ValidationError
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.style import Style
from rich.table import Table
from rich.text import Text

from aggregator.config import ConfigError, FeedsFile, Settings, get_settings, load_feeds_file
from aggregator.feeds import arxiv
from aggregator.metrics import configure_logging
from aggregator.store.db import DatabaseError, make_engine, session_factory, upgrade
from aggregator.worker import tasks as jobs

app = typer.Typer(
    help="Follow arXiv and ML blogs; rank a daily digest; see what is rising.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")
users_app = typer.Typer(help="Reader accounts.", no_args_is_help=True)
app.add_typer(users_app, name="users")
feeds_app = typer.Typer(help="Feeds kept in the database (beyond feeds.toml).", no_args_is_help=True)
app.add_typer(feeds_app, name="feeds")
email_app = typer.Typer(help="The weekly email.", no_args_is_help=True)
app.add_typer(email_app, name="email")
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


class ListenError(OSError):
    """The address cannot be listened on; the message says which and why, in one line."""


def bind_listeners(host: str, port: int) -> list[socket.socket]:
    """TCP sockets bound to ``port`` on every address ``host`` resolves to (``""`` is every
    interface), made as :meth:`asyncio.loop.create_server` makes them (``SO_REUSEADDR``,
    ``IPV6_V6ONLY``, protocol ``IPPROTO_TCP``), not listening yet.

    Raises :class:`ListenError` (``cannot listen on 127.0.0.1:8000: address already in use``;
    also for an unknown host, an address not on this machine, or a port needing privileges).
    """
    where = _address(host, port)
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as err:
        raise ListenError(f"cannot listen on {where}: {(err.strerror or str(err)).lower()}") from None
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, sockaddr in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(sockaddr)
    except OSError as err:
        for sock in sockets:
            sock.close()
        reason = (err.strerror or str(err)).lower()
        raise ListenError(f"cannot listen on {where}: {reason}") from None
    return sockets


def _listen(host: str, port: int) -> list[socket.socket]:
    try:
        return bind_listeners(host, port)
    except ListenError as err:
        raise _fail(str(err)) from None


def _engine(settings: Settings):  # type: ignore[no-untyped-def]
    engine = make_engine(settings.database_url)
    try:
        upgrade(engine)
    except DatabaseError as err:
        raise _fail(str(err)) from err
    return engine


#: uvicorn's HTTP parser and event loop. httptools parses about twice as fast as h11. The
#: standard asyncio loop, not uvloop: under load uvloop served some connections much later
#: than others (GET /api/me/digest on 1M items, 1 worker, 64 clients: p99 1.09 s against 91 ms
#: with asyncio; 10 clients: 19-21 ms against 11-14 ms, at the same requests per second).
SERVER_OPTIONS: dict[str, Any] = {"http": "httptools", "loop": "asyncio"}


def _serve(
    settings: Settings,
    engine: sa.Engine,
    host: str,
    port: int,
    sockets: list[socket.socket],
    scheduler: bool,
) -> None:
    """Serve the API in this process on ``sockets`` (bound by :func:`bind_listeners`, closed
    at the end), with the scheduler when ``scheduler``."""
    import uvicorn

    from aggregator.api.app import create_app
    from aggregator.worker.scheduler import start_scheduler

    holder: dict[str, BaseScheduler] = {}

    def on_start(_app: object) -> None:
        if scheduler:
            holder["scheduler"] = start_scheduler(engine, settings)

    def on_stop(_app: object) -> None:
        if "scheduler" in holder:
            holder["scheduler"].shutdown(wait=False)

    api = create_app(settings, engine, on_start=on_start, on_stop=on_stop)
    console.print(
        f"aggregator {'run' if scheduler else 'api'}: digest at http://{escape(_address(host, port))}/"
    )
    config = uvicorn.Config(
        api, host=host, port=port, log_config=None, access_log=settings.log_level == "DEBUG", **SERVER_OPTIONS
    )
    server = uvicorn.Server(config)
    try:
        server.run(sockets=sockets)
    except KeyboardInterrupt:
        pass
    finally:
        for sock in sockets:
            sock.close()
    if not server.started:  # uvicorn logged why (e.g. the application's startup failed)
        raise typer.Exit(3)


_HOST_HELP = "listen address (default AGGREGATOR_HOST)"
_PORT_HELP = "listen port, 1-65535 (default AGGREGATOR_PORT)"


@app.command()
def run(
    host: Annotated[str | None, typer.Option(help=_HOST_HELP)] = None,
    port: Annotated[int | None, typer.Option(parser=_port_option, metavar="PORT", help=_PORT_HELP)] = None,
) -> None:
    """Serve the digest over HTTP and fetch feeds on a schedule, in one process."""
    settings, feeds_file = _setup()
    host, port = host or settings.host, port or settings.port
    sockets = _listen(host, port)  # before anything is announced or started
    try:
        configure_logging(settings.log_level, settings.log_format)
        engine = _engine(settings)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    console.print(f"{len(feeds_file.feeds)} feeds from {escape(str(settings.feeds_file))}")
    _serve(settings, engine, host, port, sockets, scheduler=True)


@app.command()
def api(
    host: Annotated[str | None, typer.Option(help=_HOST_HELP)] = None,
    port: Annotated[int | None, typer.Option(parser=_port_option, metavar="PORT", help=_PORT_HELP)] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="uvicorn worker processes")] = 1,
) -> None:
    """Serve HTTP only (no scheduler), to scale out behind a load balancer. Readers' rescores
    after a vote or profile change are queued for `aggregator worker` (unless
    AGGREGATOR_SCORE_IN_API=true), so this process never loads the ranking model."""
    os.environ.setdefault("AGGREGATOR_SCORE_IN_API", "false")  # for the worker processes too
    get_settings.cache_clear()
    settings = _settings()
    host, port = host or settings.host, port or settings.port
    sockets = _listen(host, port)  # before anything is announced or started
    try:
        configure_logging(settings.log_level, settings.log_format)
        engine = _engine(settings)  # migrates once, before any worker starts
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    if workers == 1:
        _serve(settings, engine, host, port, sockets, scheduler=False)
        return
    engine.dispose()
    console.print(f"aggregator api: {workers} workers at http://{escape(_address(host, port))}/")
    _serve_workers(workers, host, port, sockets)


def _serve_workers(workers: int, host: str, port: int, sockets: list[socket.socket]) -> None:
    """N uvicorn worker processes sharing the listening ``sockets`` bound by
    :func:`bind_listeners` (what ``uvicorn.run(..., workers=N)`` does, with our sockets, so
    that no other process can take the port between the check and the start). The sockets
    are made with ``IPPROTO_TCP``, so asyncio sets TCP_NODELAY on every accepted connection;
    without it Nagle's algorithm met the client's delayed ACK on every keep-alive response
    (uvicorn issue #3149)."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(
        "aggregator.api.app:app_from_env",
        factory=True,
        workers=workers,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        **SERVER_OPTIONS,
    )
    for sock in sockets:
        sock.set_inheritable(True)
    Multiprocess(config, sockets=sockets).run()


@app.command()
def worker() -> None:
    """Run the scheduler only: fetch, refit, precompute scores, trends, email. Several workers
    may share one PostgreSQL database; leases keep them from doing the same work twice."""
    from prometheus_client import start_http_server

    from aggregator.worker.scheduler import start_scheduler

    settings, feeds_file = _setup()
    if settings.metrics_port:
        try:
            start_http_server(settings.metrics_port, addr="127.0.0.1")
        except OSError as err:
            raise _fail(
                f"cannot listen on 127.0.0.1:{settings.metrics_port} (AGGREGATOR_METRICS_PORT): "
                f"{(err.strerror or str(err)).lower()}"
            ) from None
    configure_logging(settings.log_level, settings.log_format)
    engine = _engine(settings)
    console.print(f"aggregator worker: {len(feeds_file.feeds)} feeds from {escape(str(settings.feeds_file))}")
    start_scheduler(engine, settings, blocking=True)


@app.command()
def fetch(
    all_feeds: Annotated[bool, typer.Option("--all", help="fetch every feed, due or not")] = False,
) -> None:
    """One pass over due feeds (or all of them), then refit and rescore."""
    settings, feeds_file = _setup()
    engine = _engine(settings)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=False,
    ) as progress:
        task = progress.add_task("fetching feeds", total=None)

        def claimed(n: int) -> None:
            progress.update(task, total=n)

        def done(outcome: jobs.FeedOutcome) -> None:
            progress.update(task, advance=1, description=escape(f"{outcome.name[:40]:<40} {outcome.state}"))

        report = jobs.refresh_feeds(
            engine, settings, feeds_file, include_all=all_feeds, progress=done, on_claimed=claimed
        )
        progress.update(task, description="fetched")
    table = Table(title="fetch summary")
    for col in ("feed", "state", "status", "new items", "updated", "error"):
        table.add_column(col)
    for o in report.outcomes:
        style = {"failed": "red", "new": "green"}.get(o.state, "")
        table.add_row(
            escape(o.name),
            f"[{style}]{o.state}[/]" if style else o.state,
            str(o.status or "-"),
            str(o.new_items),
            str(o.updated_items),
            escape((o.error or "")[:80]),
        )
    console.print(table)
    console.print(
        f"feeds: {report.count('new')} with new items, {report.count('unchanged')} unchanged, "
        f"{report.count('failed')} failed · items: {report.new_items} new, {report.updated_items} updated"
    )
    if report.new_items or report.updated_items:
        n = jobs.update_ranking(engine, settings, feeds_file.interests, report.new_item_ids, refit=True)
        console.print(f"ranking: refitted TF-IDF and scored {n} items")
    if report.new_item_ids:
        tu = jobs.update_trends(engine, settings, report.new_item_ids)
        console.print(f"trends: counted {tu.counted} items, {tu.links} paper-post links, results to {tu.end}")
    jobs.fill_cards(engine)


@app.command()
def backfill(
    since: Annotated[
        dt.date,
        typer.Option(
            parser=_day_option("--since"),
            metavar="YYYY-MM-DD",
            help="pull papers announced on or after this day",
        ),
    ],
    category: Annotated[
        list[str] | None,
        typer.Option("--category", help="arXiv category such as cs.LG (default: those in the feeds file)"),
    ] = None,
    max_pages: Annotated[
        int | None, typer.Option(help="stop after this many API pages (resume later)")
    ] = None,
    restart: Annotated[bool, typer.Option(help="start again even if this backfill finished before")] = False,
) -> None:
    """Pull earlier papers of the configured arXiv categories, and missing seed papers, from the arXiv API.

    Progress shows the papers and pages seen, without a total: the API's count is every paper of
    the categories, not those since the day."""
    settings, feeds_file = _setup()
    try:
        cats = list(dict.fromkeys(arxiv.check_category(c) for c in category or ()))
    except arxiv.UnknownCategory as err:
        raise _fail(str(err)) from None
    if not cats:
        try:
            cats = [arxiv.check_category(c) for c in feeds_file.arxiv_categories]
        except arxiv.UnknownCategory as err:
            raise _fail(f"{err} (from {settings.feeds_file}; choose with --category)") from None
    engine = _engine(settings)
    with Progress(
        SpinnerColumn(finished_text="✓"),
        TextColumn("{task.description}"),
        TextColumn("{task.fields[papers]:,} papers · {task.fields[pages]:,} pages"),
        TimeElapsedColumn(),
        console=err_console,
    ) as progress:
        task = progress.add_task(
            escape(f"backfill {' '.join(cats)} since {since}"), total=None, papers=0, pages=0
        )

        def step(rep: jobs.BackfillReport) -> None:
            progress.update(task, papers=rep.seen, pages=rep.pages)

        report = jobs.backfill(
            engine, settings, cats, since, progress=step, max_pages=max_pages, restart=restart
        )
        progress.update(task, papers=report.seen, pages=report.pages)
        if report.done:
            progress.update(task, total=1, completed=1)
    console.print(
        f"backfill: {report.pages} pages, {report.seen} papers seen, {report.new_items} new"
        + (" · finished" if report.done else " · not finished (run again to resume)")
    )
    new_ids = list(report.new_item_ids)
    if feeds_file.interests.seed_papers:
        seeds = jobs.fetch_papers(engine, settings, feeds_file.interests.seed_papers)
        new_ids += seeds.new_item_ids
        error = escape(f" (error: {seeds.error})") if seeds.error else ""
        console.print(f"seed papers: {seeds.new_items} fetched{error}")
    if new_ids:
        n = jobs.update_ranking(engine, settings, feeds_file.interests, new_ids, refit=True)
        console.print(f"ranking: refitted TF-IDF and scored {n} items")
        tu = jobs.update_trends(engine, settings, new_ids)
        console.print(f"trends: counted {tu.counted} items, {tu.links} paper-post links, results to {tu.end}")
        jobs.fill_cards(engine)
    if report.error:
        raise _fail(f"backfill stopped: {report.error}", code=1)


@app.command()
def digest(
    date: Annotated[
        dt.date | None,
        typer.Option(parser=_day_option("--date"), metavar="YYYY-MM-DD", help="local date (default: latest)"),
    ] = None,
    days: Annotated[int, typer.Option(min=1, max=31)] = 1,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 20,
    all_pages: Annotated[bool, typer.Option("--all", help="every item of the day, page by page")] = False,
) -> None:
    """Print the ranked digest in the terminal: under each title the arXiv id (papers) or a
    short URL (posts) to open it by; the title links to it where the terminal supports links."""
    if all_pages:
        return search_cli.digest_all(date, days)
    from aggregator.digest.public import build_digest

    settings, _ = _setup()
    engine = _engine(settings)
    with session_factory(engine)() as session:
        d = build_digest(session, settings.tz, date, days, limit)
    order = "" if d.ranked else ", unranked: no interests set, most discussed then newest first"
    table = Table(
        title=f"digest {d.date} ({d.total} items{'' if days == 1 else f', {days} days'}{order})",
        show_lines=False,
    )
    columns: tuple[tuple[str, dict[str, Any]], ...] = (
        ("#", {"justify": "right"}),
        *((("score", {"justify": "right"}),) if d.ranked else ()),
        ("title", {"ratio": 3}),
        ("source", {}),
        *((("why", {"ratio": 1}),) if d.ranked else ()),
    )
    for col, kw in columns:
        table.add_column(col, **kw)
    for i, e in enumerate(d.items, 1):
        row: list[Any] = [
            str(i),
            *([f"{e.score:.3f}"] if d.ranked else []),
            Text.assemble(
                (e.title, Style(link=e.url) if e.url else ""), "\n", (item_locator(e.arxiv_id, e.url), "dim")
            ),
            escape(e.source),
        ]
        if d.ranked:
            row.append(escape(", ".join(str(w["term"]) for w in e.why[:3])))
        table.add_row(*row)
    console.print(table)
    if not d.ranked:
        console.print("set [interests] in the feeds file to rank the digest for you", markup=False)


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


@app.command("eval")
def eval_ranking(
    seeds: Annotated[int, typer.Option(min=1, help="random seeds for which papers are liked")] = 5,
    liked: Annotated[int, typer.Option(min=1, help="liked papers per simulated reader")] = 5,
    k: Annotated[int, typer.Option(min=1, help="precision at k")] = 20,
) -> None:
    """Offline ranking quality on the real bulk arXiv data (ours vs arxiv-sanity-lite's SVM vs random)."""
    from aggregator.ranking import evaluate
    try:
        results = evaluate.run(seeds=tuple(range(seeds)), n_liked=liked, k=k)
    except FileNotFoundError as err:
        raise _fail(str(err)) from err
    console.print(evaluate.format_table(results, k), highlight=False, soft_wrap=True)


@app.command()
def trends(
    window: Annotated[str, typer.Option(help="window, e.g. 7d")] = "7d",
    baseline: Annotated[str, typer.Option(help="baseline before the window, e.g. 56d")] = "56d",
    category: Annotated[str, typer.Option(help="scope: all, cs.LG, cs.CV, cs.CL or blogs")] = "all",
    limit: Annotated[int, typer.Option(min=1, max=50)] = 20,
    end: Annotated[
        dt.date | None,
        typer.Option(parser=_day_option("--end"), metavar="YYYY-MM-DD", help="last day of the window (UTC)"),
    ] = None,
) -> None:
    """Print the rising terms: G² ranks them; q is the false-discovery-rate adjusted p-value."""
    from aggregator import trends as trends_mod
    from aggregator.api.routes.trends import parse_days

    settings, _ = _setup()
    engine = _engine(settings)
    try:
        window_days = parse_days(window, "window")
        baseline_days = parse_days(baseline, "baseline")
        scope = trends_mod.parse_scope(category)
    except ValueError as err:
        raise _fail(str(err)) from err
    with session_factory(engine)() as session:
        report = trends_mod.get_report(
            session,
            scope=scope,
            window_days=window_days,
            baseline_days=baseline_days,
            end=end,
        )
    if report is None:
        raise _fail("nothing counted yet: run `aggregator fetch` or `aggregator backfill` first", code=1)
    table = Table(
        title=f"rising in {escape(report.scope)}: {report.window_start}..{report.end} "
        f"({report.window_docs} items) "
        f"vs the {report.baseline_days} days before ({report.baseline_docs} items)",
        box=box.SIMPLE_HEAD,
        pad_edge=False,
        collapse_padding=True,
    )
    columns = ("#", "term", "G²", "q", "items", "before", "lift", "first seen")
    for col in columns:
        term = col == "term"
        table.add_column(
            col, justify="left" if term else "right", no_wrap=not term, min_width=24 if term else None
        )
    for i, t in enumerate(report.terms[:limit], 1):
        table.add_row(
            str(i),
            escape(t.label) + (" [green](new)[/]" if t.is_new else ""),
            f"{t.g2:.1f}",
            "-" if t.q_value is None else f"{t.q_value:.2g}",
            str(t.window_count),
            str(t.baseline_count),
            f"×{t.lift:.1f}",
            str(t.first_seen or "-"),
        )
    console.print(table)
    if not report.terms:
        console.print(
            f"no term rises significantly (false-discovery rate {trends_mod.FDR:.0%} over "
            f"{report.tested:,} terms tested)"
        )


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Run the Alembic migrations up to head."""
    settings = _settings()
    _engine(settings)
    url = make_engine(settings.database_url).url.render_as_string(hide_password=True)
    console.print(f"database at head: {escape(url)}", soft_wrap=True)


@users_app.command("add")
def users_add(email: Annotated[str, typer.Argument(help="the reader's email address")]) -> None:
    """Create a reader and print their API token and feed token (shown only this once)."""
    from aggregator.accounts import readers
    settings = _settings()
    engine = _engine(settings)
    try:
        with session_factory(engine)() as session, session.begin():
            readers.ensure_default_topics(session)
            new = readers.create_reader(session, email)
    except (readers.ReaderError, readers.Conflict) as err:
        raise _fail(str(err)) from err
    console.print(f"reader {new.reader_id} created: {escape(new.email)}", soft_wrap=True)
    console.print(
        "API token (shown only now; sign in at /signin or send 'Authorization: Bearer TOKEN'):",
        soft_wrap=True,
    )
    print(new.token)
    console.print(
        "feed token (/api/me/digest.atom?token=…; rotate: POST /api/me/feed-token):", soft_wrap=True
    )
    print(new.feed_token)


@users_app.command("list")
def users_list() -> None:
    """List the readers (never their tokens: only digests are stored)."""
    from aggregator.accounts import readers
    settings = _settings()
    engine = _engine(settings)
    with session_factory(engine)() as session:
        rows = readers.list_readers(session)
    table = Table(title=f"{len(rows)} readers")
    for col in ("id", "email", "created", "topic subscriptions"):
        table.add_column(col)
    for r in rows:
        table.add_row(
            str(r.id), escape(r.email), r.created_at.strftime("%Y-%m-%d %H:%M UTC"), str(r.subscriptions)
        )
    console.print(table)


@feeds_app.command("import")
def feeds_import(
    path: Annotated[Path, typer.Argument(help="an OPML file (e.g. exported from a feed reader)")],
) -> None:
    """Add the feeds of an OPML file to the database as scheduled feeds. They live in the
    database, not in feeds.toml (which stays the configuration of the feeds it lists). A feed
    the database knows but no longer fetches (e.g. removed from feeds.toml) is scheduled again.
    Prints one line per feed: ``+ added``, ``↻ re-scheduled`` or ``= already followed``."""
    from aggregator.feeds import opml
    settings = _settings()
    try:
        feeds = opml.parse_opml(path.read_bytes())
    except OSError as err:
        raise _fail(f"cannot read {path}: {err.strerror or err}") from err
    except opml.OpmlError as err:
        raise _fail(f"{path}: {err}") from err
    engine = _engine(settings)
    with session_factory(engine)() as session, session.begin():
        report = opml.import_feeds(session, feeds, dt.datetime.now(dt.UTC))
    console.print(
        escape(
            f"{path}: {len(feeds)} feeds, {len(report.added)} added, {len(report.existing)} already "
            f"followed, {len(report.rescheduled)} re-scheduled"
        ),
        soft_wrap=True,
    )
    marks = {
        "added": "[green]+ added[/]",
        "rescheduled": "[yellow]↻ re-scheduled[/]",
        "existing": "= already followed",
    }
    for f in report.feeds:
        url = f"  {escape(f.url)}" if f.state == "added" else ""
        console.print(f"  {marks[f.state]}  {escape(f.name)}{url}", soft_wrap=True, highlight=False)


@email_app.command("send-weekly")
def email_send_weekly(
    limit: Annotated[int | None, typer.Option(help="send at most this many messages")] = None,
) -> None:
    """Send the weekly emails due now (the scheduler runs this every few minutes). Exactly
    once per reader and ISO week, also with several instances or after a crash."""
    from aggregator.mail import send

    settings = _settings()
    engine = _engine(settings)
    report = send.send_due(engine, settings, limit=limit)
    console.print(
        f"weekly email: {report.planned} planned, {report.sent} sent, {report.retrying} to retry, "
        f"{report.gave_up} given up, {report.bounced} bounced, {report.cancelled} cancelled",
        soft_wrap=True,
    )
    for error in report.errors[:20]:
        err_console.print(f"  {error}", soft_wrap=True, markup=False)
    if report.aborted:
        raise _fail(f"SMTP server {settings.smtp_host}:{settings.smtp_port} unreachable; will retry", 1)


@email_app.command("preview")
def email_preview(
    reader: Annotated[str, typer.Option("--reader", help="the reader's email address")],
    week: Annotated[str | None, typer.Option(help="ISO week like 2026-W25; default: this week")] = None,
    text: Annotated[bool, typer.Option("--text", help="print the text part instead of the HTML")] = False,
) -> None:
    """Print the HTML part (or the text part) of a reader's weekly email; nothing is sent."""
    import zoneinfo

    from aggregator.mail.compose import compose_week, current_week, week_monday
    from aggregator.mail.render import render_week
    from aggregator.mail.tokens import EmailLinks, LinkSigner, signing_key
    from aggregator.store.tables import Reader

    settings = _settings()
    engine = _engine(settings)
    with session_factory(engine)() as session:
        row = session.scalar(sa.select(Reader).where(sa.func.lower(Reader.email) == reader.strip().lower()))
        if row is None:
            raise _fail(f"no reader with address {reader}")
        week = week or current_week(dt.datetime.now(dt.UTC), zoneinfo.ZoneInfo(row.timezone or "UTC"))
        try:
            week_monday(week)
        except ValueError as err:
            raise _fail(str(err)) from err
        content = compose_week(session, row.id, week)
        links = EmailLinks(settings.public_base_url, LinkSigner(signing_key(session, settings)))
        rendered = render_week(content, links, row.email_weekday, row.email_time)
    sys.stdout.write(rendered.text if text else rendered.html)


@email_app.command("status")
def email_status() -> None:
    """Weekly emails sent, pending and failed per ISO week, and the open ones with their last error."""
    from aggregator.mail import send

    settings = _settings()
    engine = _engine(settings)
    with session_factory(engine)() as session:
        status = send.email_status(session)
    table = Table(title="weekly email sends")
    for col in ("week", *send.STATES):
        table.add_column(col, justify="right")
    for week, counts in status.counts.items():
        table.add_row(week, *(str(counts.get(s, 0)) for s in send.STATES))
    console.print(table)
    console.print(f"due now, not planned yet: {status.due_now}")
    if status.open_rows:
        rows = Table(title="not sent")
        for col in ("week", "reader", "state", "attempts", "next attempt (UTC)", "last error"):
            rows.add_column(col)
        for r in status.open_rows:
            nxt = r.next_attempt_at.strftime("%Y-%m-%d %H:%M") if r.next_attempt_at else "-"
            if r.state == "failed" and r.next_attempt_at is None:
                nxt = "gave up"
            rows.add_row(
                r.iso_week,
                escape(r.email or str(r.reader_id)),
                r.state,
                str(r.attempts),
                nxt,
                escape(r.last_error or ""),
            )
        console.print(rows)


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


from aggregator.cli import search as search_cli  # noqa: E402

app.command("search")(search_cli.search)

if __name__ == "__main__":
    main()
