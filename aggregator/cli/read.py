"""``aggregator digest``, ``eval`` and ``trends``: reading what was fetched, in the terminal."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any, Literal

import typer
from rich import box
from rich.markup import escape
from rich.style import Style
from rich.table import Table
from rich.text import Text

from aggregator.cli.common import _day_option, _engine, _fail, _setup, app, console, item_locator
from aggregator.store.db import session_factory


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
        from aggregator.cli import search as search_cli

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


EvalTask = Literal["seeds", "free-text", "feedback", "all"]


@app.command("eval")
def eval_ranking(
    task: Annotated[
        EvalTask,
        typer.Option(
            help="seeds (liked papers), free-text (a typed description), feedback (a week of votes), or all"
        ),
    ] = "all",
    seeds: Annotated[int, typer.Option(min=1, help="random seeds for which papers are liked")] = 5,
    liked: Annotated[int, typer.Option(min=1, help="liked papers per simulated reader")] = 5,
    k: Annotated[int, typer.Option(min=1, help="precision at k")] = 20,
) -> None:
    """Offline ranking quality on the real bulk arXiv data, against arxiv-sanity-lite's SVM and
    plain TF-IDF cosine on the same candidates (docs/ranking.md)."""
    from aggregator.ranking import eval_tasks, evaluate

    try:
        papers = evaluate.load_bulk()
    except FileNotFoundError as err:
        raise _fail(str(err)) from err
    if task in ("seeds", "all"):
        console.print("[bold]seed papers[/bold]: liked papers of a category → the later week ranked")
        results = evaluate.run(papers=papers, seeds=tuple(range(seeds)), n_liked=liked, k=k)
        console.print(escape(evaluate.format_table(results, k)), highlight=False, soft_wrap=True)
    if task in ("free-text", "all"):
        console.print("\n[bold]free text[/bold]: a one-line description of a category → its test week ranked")
        results = [eval_tasks.free_text_split(papers, split, k=k) for split in evaluate.SPLITS]
        console.print(
            escape(evaluate.format_table(results, k, anchor="tfidf")), highlight=False, soft_wrap=True
        )
    if task in ("feedback", "all"):
        console.print(
            "\n[bold]feedback loop[/bold]: a week of 👍/👎 on the daily top 20 → the next week ranked"
        )
        results = [eval_tasks.feedback_split(papers, split, k=k) for split in eval_tasks.FEEDBACK_WEEKS]
        console.print(escape(evaluate.format_table(results, k)), highlight=False, soft_wrap=True)


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
    """Print the rising terms: G² ranks them; q is the false-discovery-rate adjusted p-value.

    A term is listed when its share of items rose from the baseline to the window: an exact
    one-sided test per term, Benjamini–Hochberg over every term tested, at a false-discovery
    rate of 10 %. Lift is the term's share in the window over its share before.

    \f
    Long because a Typer command's options are its signature, one parameter per option, and the
    table is laid out here.
    """
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
