"""``aggregator search QUERY`` and ``aggregator digest --all`` (issue 13): results and the whole
day page by page in the terminal, through the same code as ``GET /api/search`` and
``GET /api/digest`` (:mod:`aggregator.search.engine`, :mod:`aggregator.digest.paging`)."""

from __future__ import annotations

import datetime as dt
from typing import Annotated

import typer
from rich.markup import escape
from rich.style import Style
from rich.table import Table
from rich.text import Text

from aggregator.digest.cursor import Cursor
from aggregator.digest.filters import DigestFilters
from aggregator.digest.public import DigestEntry
from aggregator.store.db import session_factory

#: Results per page of ``aggregator search`` / ``aggregator digest --all``.
PAGE = 50


def _table(title: str, entries: list[DigestEntry], first: int, score: str | None) -> Table:
    from aggregator.cli.common import item_locator

    table = Table(title=title, show_lines=False)
    table.add_column("#", justify="right")
    if score:
        table.add_column(score, justify="right")
    table.add_column("title", ratio=3)
    table.add_column("source")
    for i, e in enumerate(entries, first):
        link = Style(link=e.url) if e.url else ""
        title_cell = Text.assemble((e.title, link), "\n", (item_locator(e.arxiv_id, e.url), "dim"))
        table.add_row(str(i), *([f"{e.score:.3f}"] if score else []), title_cell, escape(e.source))
    return table


def search(
    query: Annotated[str, typer.Argument(help='words, "phrases", author:"Name", an arXiv id or link')],
    limit: Annotated[int, typer.Option(min=1, max=100, help="results per page")] = 20,
    all_pages: Annotated[bool, typer.Option("--all", help="every result, page by page")] = False,
    category: Annotated[list[str] | None, typer.Option(help="arXiv category (repeatable)")] = None,
    kind: Annotated[str | None, typer.Option(help="paper or post")] = None,
) -> None:
    """Search titles, abstracts, authors and arXiv ids, best match first."""
    from aggregator.cli.common import _engine, _fail, _setup, console
    from aggregator.digest.paging import max_item_id
    from aggregator.search.engine import search_page
    from aggregator.search.query import BadQuery, parse

    try:
        parsed = parse(query)
    except BadQuery as err:
        raise _fail(str(err)) from err
    if kind not in (None, "paper", "post"):
        raise _fail("--kind is paper or post")
    settings, _ = _setup()
    engine = _engine(settings)
    filters = DigestFilters(categories=tuple(category or ()), kind=kind)
    shown = 0
    with session_factory(engine)() as session:
        cursor: Cursor | None = Cursor("cli", max_item_id(session), None)
        while cursor is not None:
            page = search_page(session, parsed, PAGE if all_pages else limit, cursor, filters)
            console.print(_table(f"search: {query}", page.items, shown + 1, "match"))
            shown += len(page.items)
            cursor = page.cursor if all_pages else None
            if page.cursor is not None and not all_pages:
                console.print(f"more results: aggregator search --all {query!r}", markup=False)
    if not shown:
        console.print("no matches", markup=False)


def digest_all(date: dt.date | None, days: int) -> None:
    """``aggregator digest --all``: every item of the window, ranked, page by page (each page a
    table of :data:`PAGE` items, printed as it is read)."""
    from aggregator.cli.common import _engine, _setup, console
    from aggregator.digest.paging import max_item_id, public_page

    settings, _ = _setup()
    engine = _engine(settings)
    shown = 0
    with session_factory(engine)() as session:
        cursor: Cursor | None = Cursor("cli", max_item_id(session), None)
        while cursor is not None:
            page = public_page(session, settings.tz, date, days, PAGE, cursor)
            d = page.digest
            date = d.date
            title = f"digest {d.date}, items {shown + 1}–{shown + len(d.items)} of {d.total}"
            console.print(_table(title, d.items, shown + 1, "score" if d.ranked else None))
            shown += len(d.items)
            cursor = page.cursor
