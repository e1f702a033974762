"""The ``aggregator`` command line (Typer). Each command calls the same functions as the scheduler."""

from __future__ import annotations

import datetime as dt
import logging
import sys
from typing import Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from . import jobs
from .settings import ConfigError, FeedsFile, Settings, get_settings, load_feeds_file
from .store.db import DatabaseError, make_engine, session_factory, upgrade

app = typer.Typer(
    help="Follow arXiv and ML blogs; rank a daily digest; see what is rising.",
    no_args_is_help=True,
    add_completion=False,
)
db_app = typer.Typer(help="Database maintenance.", no_args_is_help=True)
app.add_typer(db_app, name="db")
console = Console()
err_console = Console(stderr=True)


def _fail(message: str, code: int = 2) -> typer.Exit:
    err_console.print(f"[bold red]error:[/] {message}")
    return typer.Exit(code)


def _setup() -> tuple[Settings, FeedsFile]:
    try:
        settings = get_settings()
        return settings, load_feeds_file(settings.feeds_file)
    except (ConfigError, ValueError) as err:
        raise _fail(str(err)) from err


def _engine(settings: Settings):  # type: ignore[no-untyped-def]
    engine = make_engine(settings.database_url)
    try:
        upgrade(engine)
    except DatabaseError as err:
        raise _fail(str(err)) from err
    return engine


@app.command()
def run(
    host: Annotated[str | None, typer.Option(help="listen address (default AGGREGATOR_HOST)")] = None,
    port: Annotated[int | None, typer.Option(help="listen port (default AGGREGATOR_PORT)")] = None,
) -> None:
    """Serve the digest over HTTP and fetch feeds on a schedule, in one process."""
    import uvicorn

    from .api.app import create_app
    from .scheduler import start_scheduler

    settings, feeds_file = _setup()
    engine = _engine(settings)
    holder: dict[str, object] = {}

    def on_start(_app: object) -> None:
        holder["scheduler"] = start_scheduler(engine, settings)

    def on_stop(_app: object) -> None:
        sched = holder.get("scheduler")
        if sched is not None:
            sched.shutdown(wait=False)  # type: ignore[attr-defined]

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    api = create_app(settings, engine, on_start=on_start, on_stop=on_stop)
    console.print(
        f"aggregator: {len(feeds_file.feeds)} feeds from {settings.feeds_file}; "
        f"digest at http://{host or settings.host}:{port or settings.port}/"
    )
    uvicorn.run(api, host=host or settings.host, port=port or settings.port, log_level="info")


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
            progress.update(task, advance=1, description=f"{outcome.name[:40]:<40} {outcome.state}")

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
            o.name,
            f"[{style}]{o.state}[/]" if style else o.state,
            str(o.status or "-"),
            str(o.new_items),
            str(o.updated_items),
            (o.error or "")[:80],
        )
    console.print(table)
    console.print(
        f"feeds: {report.count('new')} with new items, {report.count('unchanged')} unchanged, "
        f"{report.count('failed')} failed · items: {report.new_items} new, {report.updated_items} updated"
    )
    if report.new_items or report.updated_items:
        n = jobs.update_ranking(engine, settings, feeds_file.interests, report.new_item_ids, refit=True)
        console.print(f"ranking: refitted TF-IDF and scored {n} items")


@app.command()
def backfill(
    since: Annotated[
        dt.datetime, typer.Option(formats=["%Y-%m-%d"], help="pull papers announced on or after this day")
    ],
    category: Annotated[
        list[str] | None, typer.Option("--category", help="arXiv category (default: those in the feeds file)")
    ] = None,
    max_pages: Annotated[
        int | None, typer.Option(help="stop after this many API pages (resume later)")
    ] = None,
    restart: Annotated[bool, typer.Option(help="start again even if this backfill finished before")] = False,
) -> None:
    """Pull earlier papers of the configured arXiv categories, and missing seed papers, from the arXiv API."""
    settings, feeds_file = _setup()
    engine = _engine(settings)
    cats = category or list(feeds_file.arxiv_categories)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
    ) as progress:
        task = progress.add_task(f"backfill {' '.join(cats)} since {since.date()}", total=None)

        def step(rep: jobs.BackfillReport) -> None:
            progress.update(task, completed=rep.seen, total=rep.total)

        report = jobs.backfill(
            engine, settings, cats, since.date(), progress=step, max_pages=max_pages, restart=restart
        )
    console.print(
        f"backfill: {report.pages} pages, {report.seen} papers seen, {report.new_items} new"
        + (" · finished" if report.done else " · not finished (run again to resume)")
    )
    new_ids = list(report.new_item_ids)
    if feeds_file.interests.seed_papers:
        seeds = jobs.fetch_papers(engine, settings, feeds_file.interests.seed_papers)
        new_ids += seeds.new_item_ids
        console.print(
            f"seed papers: {seeds.new_items} fetched" + (f" (error: {seeds.error})" if seeds.error else "")
        )
    if new_ids:
        n = jobs.update_ranking(engine, settings, feeds_file.interests, new_ids, refit=True)
        console.print(f"ranking: refitted TF-IDF and scored {n} items")
    if report.error:
        raise _fail(f"backfill stopped: {report.error}", code=1)


@app.command()
def digest(
    date: Annotated[
        dt.datetime | None, typer.Option(formats=["%Y-%m-%d"], help="local date (default: latest)")
    ] = None,
    days: Annotated[int, typer.Option(min=1, max=31)] = 1,
    limit: Annotated[int, typer.Option(min=1, max=500)] = 20,
) -> None:
    """Print the ranked digest in the terminal."""
    from .digest import build_digest

    settings, _ = _setup()
    engine = _engine(settings)
    with session_factory(engine)() as session:
        d = build_digest(session, settings.tz, date.date() if date else None, days, limit)
    table = Table(
        title=f"digest {d.date} ({d.total} items{'' if days == 1 else f', {days} days'})", show_lines=False
    )
    for col, kw in (
        ("#", {"justify": "right"}),
        ("score", {"justify": "right"}),
        ("title", {"ratio": 3}),
        ("source", {}),
        ("why", {"ratio": 1}),
    ):
        table.add_column(col, **kw)  # type: ignore[arg-type]
    for i, e in enumerate(d.items, 1):
        table.add_row(
            str(i),
            f"{e.score:.3f}",
            f"[link={e.url}]{e.title}[/link]",
            e.source,
            ", ".join(str(w["term"]) for w in e.why[:3]),
        )
    console.print(table)


@db_app.command("upgrade")
def db_upgrade() -> None:
    """Run the Alembic migrations up to head."""
    settings = get_settings()
    _engine(settings)
    console.print(
        f"database at head: {make_engine(settings.database_url).url.render_as_string(hide_password=True)}"
    )


def main() -> None:
    try:
        app()
    except KeyboardInterrupt:
        sys.exit(130)


if __name__ == "__main__":
    main()
