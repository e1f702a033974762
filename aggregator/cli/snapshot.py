"""``aggregator import-snapshot``: years of arXiv papers from arXiv's metadata snapshot."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from aggregator import taxonomy
from aggregator.cli.common import _day_option, _engine, _fail, _setup, app, console, err_console
from aggregator.feeds import snapshot
from aggregator.worker import tasks as jobs
from aggregator.worker.snapshot_trends import count_snapshot_trends


def _categories(values: list[str] | None) -> frozenset[str]:
    """``--categories cs.LG,cs.CV --categories stat.ML`` as a set; archives (``cs``) allowed."""
    out = set()
    for value in values or ():
        for cat in value.split(","):
            if cat.strip():
                try:
                    out.add(taxonomy.check_category(cat, archives=True))
                except taxonomy.UnknownCategory as err:
                    raise _fail(f"--categories: {err}") from None
    return frozenset(out)


def _print_report(report: snapshot.ImportReport) -> None:
    rate = report.lines / report.seconds if report.seconds else 0.0
    state = "finished" if report.done else "not finished (run again to resume)"
    start = f" from line {report.first_line:,}" if report.resumed else ""
    console.print(
        escape(
            f"import-snapshot: {report.lines:,} lines{start} in {report.seconds:.1f} s "
            f"({rate:,.0f} lines/s) · "
            f"{report.kept:,} papers kept · {report.new:,} new, {report.updated:,} updated, "
            f"{report.unchanged:,} unchanged · {report.bad:,} bad lines · {state}"
        ),
        soft_wrap=True,
    )
    if report.resumed and report.lines == 0 and report.done:
        console.print("this file was imported before with these options; --restart reads it again")
    for number, reason in report.bad_lines[:20]:
        console.print(escape(f"  bad line {number:,}: {reason}"), soft_wrap=True, highlight=False)
    if report.bad > 20:
        console.print(f"  … and {report.bad - 20:,} more bad lines")


@app.command("import-snapshot")
def import_snapshot(
    path: Annotated[Path, typer.Argument(help="arxiv-metadata-oai-snapshot.json (JSON lines, from Kaggle)")],
    categories: Annotated[
        list[str] | None,
        typer.Option(help="keep papers in any of these categories or archives: cs.LG,cs.CV or cs"),
    ] = None,
    since: Annotated[
        dt.date | None,
        typer.Option(
            parser=_day_option("--since"),
            metavar="YYYY-MM-DD",
            help="keep papers first submitted on or after this day",
        ),
    ] = None,
    restart: Annotated[bool, typer.Option(help="read the file from line 1 even if imported before")] = False,
    max_lines: Annotated[
        int | None, typer.Option(help="stop after this many lines (run again to resume)")
    ] = None,
    trends: Annotated[
        bool, typer.Option(help="then add the papers to the trend counts and refit the ranking")
    ] = True,
) -> None:
    """Import arXiv papers from the metadata snapshot: idempotent, resumable, streaming.

    A paper's date is its first version's. Bad lines are counted and listed with their numbers.

    \f
    Long because a Typer command's options are its signature, one parameter per option.
    """
    settings, feeds_file = _setup()
    filt = snapshot.SnapshotFilter(_categories(categories), since)
    if not path.is_file():
        raise _fail(f"cannot read {path}: no such file")
    engine = _engine(settings)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        DownloadColumn(),
        TextColumn(
            "{task.fields[lines]:,} lines ({task.fields[rate]:,.0f}/s) · "
            "{task.fields[new]:,} new · {task.fields[bad]:,} bad"
        ),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    with Progress(*columns, console=err_console) as progress:
        task = progress.add_task(
            escape(path.name[:40]), total=path.stat().st_size, lines=0, rate=0.0, new=0, bad=0
        )

        def step(rep: snapshot.ImportReport) -> None:
            rate = rep.lines / rep.seconds if rep.seconds else 0.0
            progress.update(task, completed=rep.offset, lines=rep.lines, rate=rate, new=rep.new, bad=rep.bad)

        try:
            report = snapshot.import_snapshot(
                engine, path, filt, restart=restart, max_lines=max_lines, progress=step
            )
        except OSError as err:
            raise _fail(f"cannot read {path}: {err.strerror or err}") from err
    _print_report(report)
    if trends and (report.new or report.updated):
        _count_trends(engine, settings)
        n = jobs.update_ranking(engine, settings, feeds_file.interests, None, refit=True)
        console.print(f"ranking: refitted TF-IDF and scored {n:,} items")


def _count_trends(engine, settings) -> None:  # type: ignore[no-untyped-def]
    """Add the snapshot's papers to the trend counts, 20,000 per transaction (memory stays
    flat), then refresh the trend results once (:mod:`aggregator.worker.snapshot_trends`)."""
    with Progress(
        TextColumn("trend counts"),
        TextColumn("{task.completed:,} papers"),
        TimeElapsedColumn(),
        console=err_console,
    ) as progress:
        task = progress.add_task("trends", total=None)
        done = count_snapshot_trends(engine, progress=lambda r: progress.update(task, completed=r.counted))
    console.print(
        f"trends: counted {done.counted:,} papers in {done.count_s:.0f} s, "
        f"results of {done.scopes} scopes refreshed in {done.refresh_s:.1f} s"
    )
