"""``aggregator library import EMAIL FILE``: import a BibTeX, RIS or CSL-JSON file (e.g. a
Zotero export) into a reader's library; papers not stored yet are fetched from the arXiv API
(id_list, 100 ids per request, 3 s apart) and then saved."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import sqlalchemy as sa
import typer

from aggregator.accounts import citations, library_io
from aggregator.cli.common import command_group
from aggregator.config import get_settings
from aggregator.store.db import make_engine, session_factory, upgrade
from aggregator.store.tables import Reader

app = command_group("A reader's library (saved papers).")


@app.command("import")
def import_file(
    email: Annotated[str, typer.Argument(help="the reader's email")],
    file: Annotated[
        Path, typer.Argument(exists=True, dir_okay=False, help="a .bib, .ris or .json (CSL) file")
    ],
    as_seeds: Annotated[
        bool, typer.Option("--as-seeds", help="also add the arXiv ids to the seed papers")
    ] = False,
    fetch: Annotated[
        bool, typer.Option("--fetch/--no-fetch", help="fetch papers not stored from arXiv")
    ] = True,
) -> None:
    """Import FILE into EMAIL's library; print what was imported, matched and left out (exit 1
    on a malformed file, naming the line)."""
    settings = get_settings()
    engine = make_engine(settings.database_url)
    upgrade(engine)
    text = file.read_text(encoding="utf-8-sig")
    fmt = citations.sniff(text, file.name)
    try:
        refs = citations.parse(text, fmt)
    except citations.CitationError as err:
        typer.echo(f"{file}: {err}", err=True)
        raise typer.Exit(1) from err
    with session_factory(engine)() as session:
        reader_id = session.scalar(
            sa.select(Reader.id).where(sa.func.lower(Reader.email) == email.strip().lower())
        )
        if reader_id is None:
            typer.echo(f"no reader with email {email}", err=True)
            raise typer.Exit(1)
        report = library_io.import_references(session, reader_id, refs, as_seeds)
        session.commit()
    fetched = 0
    if report.pending and fetch:
        from aggregator.worker import backfill

        got = backfill.fetch_papers(engine, settings, report.pending)
        if got.error:
            typer.echo(f"fetching from arXiv failed: {got.error}", err=True)
        with session_factory(engine)() as session:
            fetched = library_io.finish_import(
                session, reader_id, [r for r in refs if r.arxiv_id in set(report.pending)]
            ).imported
            session.commit()
    typer.echo(
        f"{len(refs)} {fmt} entries: {report.imported + fetched} imported by arXiv id "
        f"({fetched} fetched from arXiv), {report.matched} matched by title, {len(report.left_out)} left out"
    )
    for row in report.left_out:
        typer.echo(f"  line {row['line']}: {row['title'] or '(no title)'}: {row['reason']}")
    missing = len(report.pending) - fetched
    if missing > 0:
        typer.echo(f"  {missing} arXiv ids were not found or not fetched")
