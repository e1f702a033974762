"""``aggregator import-snapshot`` on the real 200-line head of arXiv's Kaggle metadata snapshot,
on SQLite and PostgreSQL: dates from the first version, idempotent re-import, resume after a
stop, the category and date filters, bad lines reported with their numbers."""

from __future__ import annotations

import datetime as dt
import email.utils
import json
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from aggregator.feeds.snapshot import SNAPSHOT_FEED_NAME, SnapshotFilter, import_snapshot
from aggregator.store.tables import Feed, Item, ItemSource, SnapshotImport
from tests.conftest import DATA

SAMPLE = DATA / "bulk" / "kaggle-arxiv-metadata-oai-snapshot-head200-wanng-ide.jsonl"
PAPERS = [json.loads(line) for line in SAMPLE.read_bytes().splitlines()]


def _counts(engine: sa.Engine) -> tuple[int, int]:
    with engine.connect() as conn:
        items = conn.scalar(sa.select(sa.func.count()).select_from(Item))
        sources = conn.scalar(sa.select(sa.func.count()).select_from(ItemSource))
    return int(items or 0), int(sources or 0)


def _keys(engine: sa.Engine) -> set[str]:
    with engine.connect() as conn:
        return set(conn.scalars(sa.select(Item.arxiv_id)))


def test_every_paper_with_its_first_version_date(engine: sa.Engine) -> None:
    report = import_snapshot(engine, SAMPLE, batch_size=64)
    assert (report.lines, report.kept, report.new, report.bad, report.done) == (200, 200, 200, 0, True)
    with engine.connect() as conn:
        rows = {r.arxiv_id: r for r in conn.execute(sa.select(Item))}
        feeds = conn.execute(sa.select(Feed.id, Feed.name, Feed.scheduled)).all()
        sources = conn.execute(sa.select(ItemSource.feed_id, ItemSource.version)).all()
    assert [(name, scheduled) for _, name, scheduled in feeds] == [(SNAPSHOT_FEED_NAME, False)]
    assert len(sources) == 200 and {f for f, _ in sources} == {feeds[0].id}
    for paper in PAPERS:
        row = rows[paper["id"]]
        first = email.utils.parsedate_to_datetime(paper["versions"][0]["created"])
        assert row.published == first.astimezone(dt.UTC)
        assert row.version == int(paper["versions"][-1]["version"][1:])
        assert row.title == " ".join(paper["title"].split())
        assert row.summary == " ".join(paper["abstract"].split())
        assert row.categories == paper["categories"].split()
        assert row.primary_category == paper["categories"].split()[0]
        assert row.url == f"https://arxiv.org/abs/{paper['id']}"
        assert len(row.authors) == len(paper["authors_parsed"])
    row0 = rows["0704.0001"]
    assert row0.published == dt.datetime(2007, 4, 2, 19, 18, 42, tzinfo=dt.UTC)  # v1, not v2 (July)
    assert row0.authors == ["C. Balázs", "E. L. Berger", "P. M. Nadolsky", "C. -P. Yuan"]
    assert row0.comment == "37 pages, 15 figures; published version"


def test_import_again_adds_nothing(engine: sa.Engine) -> None:
    import_snapshot(engine, SAMPLE)
    before = _counts(engine)
    again = import_snapshot(engine, SAMPLE)  # the checkpoint says finished: nothing read
    assert (again.lines, again.new, again.done, again.resumed) == (0, 0, True, True)
    reread = import_snapshot(engine, SAMPLE, restart=True)  # every line read again: all known
    assert (reread.lines, reread.new, reread.updated, reread.unchanged) == (200, 0, 0, 200)
    assert _counts(engine) == before == (200, 200)


def test_a_stopped_import_resumes_at_the_first_line_not_stored(engine: sa.Engine) -> None:
    def stop(report) -> None:  # type: ignore[no-untyped-def]
        raise KeyboardInterrupt  # Ctrl-C right after the first batch was committed

    with pytest.raises(KeyboardInterrupt):
        import_snapshot(engine, SAMPLE, batch_size=50, progress=stop)
    assert _counts(engine) == (50, 50)
    part = import_snapshot(engine, SAMPLE, batch_size=50, max_lines=70)
    assert (part.first_line, part.lines, part.new, part.done) == (51, 70, 70, False)
    rest = import_snapshot(engine, SAMPLE, batch_size=50)
    assert (rest.first_line, rest.lines, rest.new, rest.done, rest.total_new) == (121, 80, 80, True, 200)
    assert _keys(engine) == {p["id"] for p in PAPERS}
    with engine.connect() as conn:
        cp = conn.execute(sa.select(SnapshotImport)).one()
    assert (cp.line, cp.offset, cp.kept, cp.new, cp.done) == (200, SAMPLE.stat().st_size, 200, 200, True)


def test_category_and_since_filters(engine: sa.Engine) -> None:
    def cats(p: dict) -> list[str]:
        return p["categories"].split()

    want_math_co = {p["id"] for p in PAPERS if "math.CO" in cats(p)}
    report = import_snapshot(engine, SAMPLE, SnapshotFilter(frozenset({"math.CO"})))
    assert report.kept == len(want_math_co) > 0 and _keys(engine) == want_math_co
    # an archive keeps each of its categories; another filter is another checkpoint
    want_cs = {p["id"] for p in PAPERS if any(c.startswith("cs.") for c in cats(p))}
    import_snapshot(engine, SAMPLE, SnapshotFilter(frozenset({"cs"})))
    assert _keys(engine) == want_math_co | want_cs
    since = dt.date(2007, 4, 2)
    want_since = {
        p["id"]
        for p in PAPERS
        if email.utils.parsedate_to_datetime(p["versions"][0]["created"]).date() >= since
    }
    assert 0 < len(want_since) < 200
    report = import_snapshot(engine, SAMPLE, SnapshotFilter(since=since))
    assert report.kept == len(want_since)
    assert _keys(engine) == want_math_co | want_cs | want_since


def test_bad_lines_are_reported_with_their_numbers(engine: sa.Engine, tmp_path: Path) -> None:
    lines = SAMPLE.read_bytes().splitlines(keepends=True)[:20]
    no_versions = {k: v for k, v in PAPERS[5].items() if k != "versions"}
    bad_date = {**PAPERS[6], "versions": [{"version": "v1", "created": "sometime in 2007"}]}
    lines[2] = lines[2][:100] + b"\n"  # a line cut short
    lines[5] = json.dumps(no_versions).encode() + b"\n"
    lines[6] = json.dumps(bad_date).encode() + b"\n"
    lines[9] = json.dumps({**PAPERS[9], "id": "not-an-id"}).encode() + b"\n"
    lines[12] = b"\xff\xfe garbage\n"
    path = tmp_path / "snapshot.json"
    path.write_bytes(b"".join(lines))
    report = import_snapshot(engine, path, batch_size=7)
    assert (report.lines, report.bad, report.kept, report.done) == (20, 5, 15, True)
    assert [n for n, _ in report.bad_lines] == [3, 6, 7, 10, 13]
    reasons = dict(report.bad_lines)
    assert reasons[3].startswith("broken JSON")
    assert reasons[6] == "missing field 'versions'"
    assert reasons[7] == "unreadable version date 'sometime in 2007'"
    assert reasons[10] == "not an arXiv id: 'not-an-id'"
    assert reasons[13] == "not UTF-8 text"
    assert len(_keys(engine)) == 15
    with engine.connect() as conn:
        cp = conn.execute(sa.select(SnapshotImport)).one()
    assert cp.bad == 5 and [n for n, _ in cp.bad_lines] == [3, 6, 7, 10, 13]


def test_the_command_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from aggregator.cli.app import app

    lines = SAMPLE.read_bytes().splitlines(keepends=True)
    path = tmp_path / "arxiv-metadata-oai-snapshot.json"
    path.write_bytes(b"".join(lines[:30]) + b"{broken\n" + b"".join(lines[30:]))
    feeds = tmp_path / "feeds.toml"
    feeds.write_text('[[feeds]]\nname = "x"\nurl = "http://127.0.0.1:9/x"\n')
    monkeypatch.setenv("AGGREGATOR_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("AGGREGATOR_FEEDS_FILE", str(feeds))
    runner = CliRunner()
    args = ["import-snapshot", str(path), "--categories", "math.CO,hep-th", "--no-trends"]
    result = runner.invoke(app, [*args, "--max-lines", "100"])
    assert result.exit_code == 0, result.output
    assert "not finished (run again to resume)" in result.output
    assert "bad line 31: broken JSON" in result.output
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "from line 101" in result.output and "finished" in result.output
    want = {p["id"] for p in PAPERS if {"math.CO", "hep-th"} & set(p["categories"].split())}
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'cli.db'}")
    assert _keys(engine) == want
    engine.dispose()
    result = runner.invoke(app, ["import-snapshot", str(path), "--categories", "cs.XX"])
    assert result.exit_code == 2 and "unknown arXiv category cs.XX" in result.output


def _variants() -> list[bytes]:
    """The real lines, and lines of other shapes that the fast path must read as
    ``paper_entry`` does or hand to it: odd whitespace, accents, quotes, suffixes, empty names,
    no ``authors_parsed``, an old-style id, a version stamp of another form, bad lines."""
    lines = SAMPLE.read_bytes().splitlines(keepends=True)
    p = PAPERS[0]
    odd = [
        {**p, "title": '  Q&A: <1% error\n  in "quotes" \\ and\ttabs  '},
        {**p, "abstract": "a\u00a0b\u2028c \x07 d\u202ee", "comments": "  \n "},
        {
            **p,
            "authors_parsed": [
                ["Balázs", "C.", "Jr"],
                ["", "", ""],
                [" Doe ", " J. ", ""],
                ["Ng", "", ""],
            ],
        },
        {**p, "authors_parsed": [["Doe", "J."], ["X", "Y", "Z", "W"]]},
        {**p, "authors_parsed": [["Doe", "J.", None]]},
        {**p, "authors_parsed": ["Doe J."]},
        {**p, "authors_parsed": [["Doe", "J.", "", "MIT"], ["Roe", "R.", "", None], ["P", "P.", "", ["x"]]]},
        {**p, "authors_parsed": [["Doe", "J.", "", "MIT"], ["Roe", "R.", "", {"a": 1}]]},
        {**p, "authors_parsed": []},
        {**p, "id": "hep-th/0601001v2", "categories": "hep-th hep-th math.GT"},
        {**p, "versions": [{"version": "v1", "created": "2 Apr 2007 19:18:42 +0200"}]},
        {**p, "versions": [{"version": "v1", "created": "Mon, 31 Feb 2007 19:18:42 GMT"}]},
        {**p, "versions": [{"version": "vX", "created": "Mon, 2 Apr 2007 19:18:42 GMT"}, "v2"]},
        {**p, "title": " \n "},
        {**p, "categories": ""},
        {**p, "id": 704.0001},
    ]
    return lines + [json.dumps(o, ensure_ascii=False).encode() + b"\n" for o in odd] + [b'{"id": NaN}\n']


@pytest.mark.parametrize("sqlite", [True, False])
def test_the_fast_path_gives_the_rows_of_paper_entry(sqlite: bool) -> None:
    from aggregator.feeds.ingest import _item_row, content_hash
    from aggregator.feeds.snapshot import BadLine, paper_entry
    from aggregator.feeds.snapshot_bulk import ITEM_COLUMNS, _fast, paper_row

    fast = 0
    for line in _variants():
        try:
            entry = paper_entry(line)
        except BadLine as err:
            with pytest.raises(BadLine, match=str(err)[:20].replace("(", r"\(")):
                paper_row(line, sqlite, paper_entry)
            continue
        row = paper_row(line, sqlite, paper_entry)
        fast += _fast(line, sqlite) is not None
        want = _item_row(entry, content_hash(entry), entry.published)
        got = dict(zip(ITEM_COLUMNS, row.values, strict=False))
        got["authors"], got["categories"] = json.loads(got["authors"]), json.loads(got["categories"])
        assert got["authors"] == want["authors"] and got["categories"] == want["categories"]
        assert row.values[6] == json.dumps(want["authors"])
        assert row.values[8] == json.dumps(want["categories"])
        stamp = entry.published.replace(tzinfo=None).isoformat(" ", "microseconds")
        assert got.pop("published") == (stamp if sqlite else entry.published)
        assert got == {k: want[k] for k in got if k != "published"}
        assert (row.key, row.day, row.categories) == (entry.key, entry.published.date(), entry.categories)
    assert fast >= 200  # the real lines take the fast path


def test_a_newer_version_updates_a_paper_an_rss_feed_stored_first(engine: sa.Engine, tmp_path: Path) -> None:
    from aggregator.feeds.ingest import write_entries
    from aggregator.feeds.snapshot import paper_entry
    from aggregator.store.db import session_factory

    lines = SAMPLE.read_bytes().splitlines(keepends=True)[:10]
    old = {**PAPERS[2], "versions": PAPERS[2]["versions"][:1]}
    path = tmp_path / "snapshot.json"
    path.write_bytes(b"".join(lines))
    with session_factory(engine)() as session, session.begin():  # an RSS feed announced v1 first
        now = dt.datetime.now(dt.UTC)
        feed = Feed(url="http://127.0.0.1:9/rss", name="rss", kind="arxiv", interval_minutes=60,
                    tags=[], scheduled=True, created_at=now, error_count=0)  # fmt: skip
        session.add(feed)
        session.flush()
        feed_id = session.scalars(sa.select(Feed.id)).one()
        entry = paper_entry(json.dumps(old).encode())
        write_entries(session, feed_id, [entry], entry.published)
    report = import_snapshot(engine, path)
    assert len(PAPERS[2]["versions"]) == 3
    assert (report.kept, report.new, report.updated, report.unchanged) == (10, 9, 1, 0)
    with engine.connect() as conn:
        version = conn.scalar(sa.select(Item.version).where(Item.arxiv_id == PAPERS[2]["id"]))
        feeds = conn.scalars(
            sa.select(ItemSource.feed_id).join(Item).where(Item.arxiv_id == PAPERS[2]["id"])
        ).all()
    assert version == int(PAPERS[2]["versions"][-1]["version"][1:])
    assert len(feeds) == 2 and _counts(engine) == (10, 11)


def test_the_trend_counts_of_an_import_count_each_paper_once(engine: sa.Engine) -> None:
    from aggregator.store.trends_tables import TrendCounted, TrendResult
    from aggregator.worker.snapshot_trends import count_snapshot_trends

    import_snapshot(engine, SAMPLE)
    seen: list[int] = []
    done = count_snapshot_trends(engine, chunk=64, progress=lambda r: seen.append(r.counted))
    assert done.counted == 200 and seen == [64, 128, 192, 200]  # a transaction per chunk
    with engine.connect() as conn:
        counted = conn.scalar(sa.select(sa.func.count()).select_from(TrendCounted))
        # the default results (the monthly reports are stored beside them, not latest)
        results = conn.scalar(
            sa.select(sa.func.count()).select_from(TrendResult).where(TrendResult.is_latest.is_(True))
        )
    assert counted == 200 and results == done.scopes > 0  # stored after the counts
    again = count_snapshot_trends(engine)
    assert (again.counted, again.scopes) == (0, 0)


def test_the_command_counts_trends_and_refits_after_an_import(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from aggregator.cli.app import app

    feeds = tmp_path / "feeds.toml"
    feeds.write_text('[[feeds]]\nname = "x"\nurl = "http://127.0.0.1:9/x"\n')
    monkeypatch.setenv("AGGREGATOR_DATABASE_URL", f"sqlite:///{tmp_path / 'cli.db'}")
    monkeypatch.setenv("AGGREGATOR_FEEDS_FILE", str(feeds))
    result = CliRunner().invoke(app, ["import-snapshot", str(SAMPLE)])
    assert result.exit_code == 0, result.output
    assert "trends: counted 200 papers" in result.output
    assert "scopes refreshed" in result.output and "refitted TF-IDF and scored 200 items" in result.output
