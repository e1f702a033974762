"""``aggregator fetch``, ``backfill``, ``feeds import`` and ``feeds list``: getting feeds and papers in."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    SpinnerColumn,
    TextColumn,
    TimeElapsedColumn,
)
from rich.table import Table
from sqlalchemy import Engine

from aggregator import taxonomy
from aggregator.cli.common import (
    _day_option,
    _engine,
    _fail,
    _settings,
    _setup,
    app,
    console,
    err_console,
    feeds_app,
)
from aggregator.config import Interests, Settings
from aggregator.store.db import session_factory
from aggregator.worker import backfill as arxiv_backfill
from aggregator.worker import enrich, refresh, scheduler
from aggregator.worker import tasks as jobs


def _refit(engine: Engine, settings: Settings, interests: Interests, new_ids: list[int]) -> str:
    """Refit under the "rank" lease; the line to print."""
    n = scheduler.refit_now(engine, settings, interests, new_ids)
    if n is None:
        return "ranking: not refitted, another process holds the rank lease (a worker refits when stale)"
    return f"ranking: refitted TF-IDF and scored {n} items"


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

        def done(outcome: refresh.FeedOutcome) -> None:
            progress.update(task, advance=1, description=escape(f"{outcome.name[:40]:<40} {outcome.state}"))

        started = dt.datetime.now(dt.UTC)
        report = refresh.refresh_feeds(
            engine, settings, feeds_file, include_all=all_feeds, progress=done, on_claimed=claimed
        )
        progress.update(task, description="fetched")
    table = Table(title="fetch summary")
    for col in ("feed", "state", "status", "new items", "updated", "error"):
        table.add_column(col)
    for o in report.outcomes:
        style = {"failed": "red", "new": "green", "skipped": "yellow"}.get(o.state, "")
        table.add_row(
            escape(o.name),
            f"[{style}]{o.state}[/]" if style else o.state,
            str(o.status or "-"),
            str(o.new_items),
            str(o.updated_items),
            escape((o.error or "")[:80]),
        )
    for h in report.held:
        until = f"{h.lease_until:%H:%M:%S} UTC"
        table.add_row(
            escape(h.name), "[yellow]skipped[/]", "-", "0", "0", f"held by another process until {until}"
        )
    console.print(table)
    skipped = len(report.held) + report.count("skipped")
    console.print(
        f"feeds: {report.count('new')} with new items, {report.count('unchanged')} unchanged, "
        f"{report.count('failed')} failed, {skipped} skipped (held by another process)"
        f" · items: {report.new_items} new, {report.updated_items} updated"
    )
    if report.new_items or report.updated_items:
        console.print(_refit(engine, settings, feeds_file.interests, report.new_item_ids))
    if report.new_item_ids:
        tu = jobs.update_trends(engine, settings, report.new_item_ids)
        console.print(f"trends: counted {tu.counted} items, {tu.links} paper-post links, results to {tu.end}")
    console.print(escape(enrich.after_ingest(engine, settings, started).line()))
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
    the categories, not those since the day.

    \f
    Long because a Typer command's options are its signature, one parameter per option.
    """
    settings, feeds_file = _setup()
    try:
        cats = list(dict.fromkeys(taxonomy.check_category(c) for c in category or ()))
    except taxonomy.UnknownCategory as err:
        raise _fail(str(err)) from None
    if not cats:
        try:
            cats = [taxonomy.check_category(c) for c in feeds_file.arxiv_categories]
        except taxonomy.UnknownCategory as err:
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

        def step(rep: arxiv_backfill.BackfillReport) -> None:
            progress.update(task, papers=rep.seen, pages=rep.pages)

        report = arxiv_backfill.backfill(
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
        seeds = arxiv_backfill.fetch_papers(engine, settings, feeds_file.interests.seed_papers)
        new_ids += seeds.new_item_ids
        error = escape(f" (error: {seeds.error})") if seeds.error else ""
        console.print(f"seed papers: {seeds.new_items} fetched{error}")
    if new_ids:
        console.print(_refit(engine, settings, feeds_file.interests, new_ids))
        tu = jobs.update_trends(engine, settings, new_ids)
        console.print(f"trends: counted {tu.counted} items, {tu.links} paper-post links, results to {tu.end}")
        jobs.fill_cards(engine)
    if report.error:
        raise _fail(f"backfill stopped: {report.error}", code=1)


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


@feeds_app.command("list")
def feeds_list() -> None:
    """Every feed with its URL, who added it (``operator`` or the reader's email) and its state.
    This is where the operator sees the URLs of feeds readers added, which the public pages and
    ``GET /api/feeds`` show only to the reader who added each."""
    import sqlalchemy as sa

    from aggregator.feeds.status import feed_states, state_of
    from aggregator.store.tables import Reader

    settings = _settings()
    engine = _engine(settings)
    with session_factory(engine)() as session:
        states = feed_states(session)
        emails: dict[int, str] = {r.id: r.email for r in session.execute(sa.select(Reader.id, Reader.email))}
    table = Table("id", "name", "added by", "state", "items")
    table.add_column("URL", overflow="fold")  # whole, on several lines if need be
    for f in states:
        if not f.reader_added:
            who = "operator"
        elif f.added_by is None:
            who = "a deleted reader"
        else:
            who = emails.get(f.added_by, f"reader {f.added_by}")
        table.add_row(str(f.id), escape(f.name), escape(who), state_of(f), str(f.items), escape(f.url or ""))
    console.print(table, soft_wrap=True)
