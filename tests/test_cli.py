"""The command line as a user runs it: `aggregator fetch`, `digest`, `db upgrade`, a bad feeds
file, and `aggregator run` as a real process serving the digest while its scheduler fetches."""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import Replay
from helpers import free_port
from typer.testing import CliRunner, Result

from aggregator.cli.app import app
from aggregator.config import get_settings
from aggregator.store.db import make_engine
from aggregator.store.tables import Feed, Item

runner = CliRunner()


@pytest.fixture
def cli_env(replay: Replay, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    feeds = replay.feeds_toml(
        tmp_path,
        only=["arXiv cs.LG", "arXiv cs.CL", "Lil'Log", "colah's blog"],
        extra='\n[interests]\ntext = "reasoning in large language models"\n',
    )
    env = {
        "AGGREGATOR_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "AGGREGATOR_FEEDS_FILE": str(feeds),
        "AGGREGATOR_ARXIV_DELAY_SECONDS": "0.2",
        "AGGREGATOR_ARXIV_API_URL": replay.url("/api/query"),  # `fetch` enriches new papers
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield env
    get_settings.cache_clear()


def test_fetch_then_digest_then_due_only(cli_env: dict[str, str]) -> None:
    result = runner.invoke(app, ["fetch", "--all"])
    assert result.exit_code == 0, result.output
    assert "4 with new items, 0 unchanged, 0 failed" in result.output
    assert "ranking: refitted TF-IDF" in result.output

    out = runner.invoke(app, ["digest", "--date", "2026-06-15", "--limit", "5"], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    assert "digest 2026-06-15" in out.output and "arXiv cs." in out.output

    # schedule state lives in the database: nothing is due right after a pass, even in a new process
    again = runner.invoke(app, ["fetch"])
    assert again.exit_code == 0 and "0 with new items, 0 unchanged, 0 failed" in again.output
    engine = make_engine(cli_env["AGGREGATOR_DATABASE_URL"])
    with engine.connect() as c:
        assert all(n is not None for n in c.execute(sa.select(Feed.next_check_at)).scalars())
    engine.dispose()


def test_bad_feeds_file_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "feeds.toml"
    bad.write_text('[[feeds]]\nname = "x"\nurl = "ftp://example.org/feed"\n')
    monkeypatch.setenv("AGGREGATOR_FEEDS_FILE", str(bad))
    monkeypatch.setenv("AGGREGATOR_DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    get_settings.cache_clear()
    result = runner.invoke(app, ["fetch"])
    get_settings.cache_clear()
    assert result.exit_code == 2
    assert "feeds[0] (x): 'url' must be an http(s) URL" in " ".join(result.output.split())  # rich may wrap


def test_db_upgrade(cli_env: dict[str, str]) -> None:
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0 and "database at head" in result.output


@pytest.mark.slow
def test_run_serves_the_digest_while_the_scheduler_fetches(cli_env: dict[str, str], tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, **cli_env, "AGGREGATOR_PORT": str(port), "AGGREGATOR_SCHEDULER_TICK_SECONDS": "1"}
    log = (tmp_path / "run.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "run"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 60
        body: dict = {}
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/api/digest?date=2026-06-15", timeout=5
                ) as r:
                    body = json.load(r)
                if body["items"] and body["ranked"] and body["items"][0]["score"] > 0:  # refitted
                    break
            except OSError:
                pass
            time.sleep(0.3)
        assert body.get("items"), (tmp_path / "run.log").read_text()[-2000:]
        assert body["items"][0]["why"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/feeds", timeout=5) as r:
            feeds = json.load(r)
        assert len(feeds) == 4 and all(f["last_status"] == 200 and f["next_check_at"] for f in feeds)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/?date=2026-06-15", timeout=5) as r:
            assert b"Why:" in r.read()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()
    assert proc.returncode in (0, -15)


# --- a newcomer's mistakes: one line on stderr, a non-zero exit, no traceback (issue 11) -----


def _one_line_error(result: Result, message: str, code: int = 2) -> None:
    """``result`` (CliRunner) ended with exactly ``error: message`` on stderr and ``code``."""
    assert result.exit_code == code, (result.output, result.exception)
    assert isinstance(result.exception, SystemExit), result.exception  # not an uncaught error
    assert "Traceback" not in result.stderr
    assert result.stderr.strip().splitlines() == [f"error: {message}"]
    assert result.stdout == ""


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "--port", "99999"], "--port 99999 is not a port number (1-65535)"),
        (["api", "--port", "99999"], "--port 99999 is not a port number (1-65535)"),
        (["run", "--port", "0"], "--port 0 is not a port number (1-65535)"),
        (["api", "--port", "http"], "--port http is not a port number (1-65535)"),
    ],
)
def test_a_port_out_of_range_is_one_line(cli_env: dict[str, str], args: list[str], message: str) -> None:
    # `api` sets AGGREGATOR_SCORE_IN_API in the environment; passing it here has it restored
    _one_line_error(runner.invoke(app, args, env={"AGGREGATOR_SCORE_IN_API": "false"}), message)


@pytest.mark.parametrize("command", ["run", "api"])
def test_aggregator_port_out_of_range_is_one_line(cli_env: dict[str, str], command: str) -> None:
    env = {"AGGREGATOR_PORT": "99999", "AGGREGATOR_SCORE_IN_API": "false"}
    get_settings.cache_clear()
    result = runner.invoke(app, [command], env=env)
    get_settings.cache_clear()
    _one_line_error(result, "invalid setting AGGREGATOR_PORT=99999: not a port number (1-65535)")


@pytest.mark.parametrize(
    "args", [["run"], ["api"], ["api", "--workers", "2"]], ids=["run", "api", "api-workers"]
)
def test_a_port_in_use_is_one_line_before_anything_is_announced(
    cli_env: dict[str, str], tmp_path: Path, args: list[str]
) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        proc = subprocess.run(
            [sys.executable, "-m", "aggregator", *args, "--port", str(port)],
            env={**os.environ, **cli_env},
            capture_output=True,
            text=True,
            timeout=120,
        )
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.strip().splitlines() == [
        f"error: cannot listen on 127.0.0.1:{port}: address already in use"
    ]
    assert proc.stdout == ""  # no "digest at ...", no "N feeds from ..."
    assert not (tmp_path / "cli.db").exists()  # nor were the migrations run


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["backfill", "--since", "2026-06-31"], "--since 2026-06-31 is not a date: June has 30 days"),
        (["digest", "--date", "2026-06-31"], "--date 2026-06-31 is not a date: June has 30 days"),
        (["trends", "--end", "2026-02-29"], "--end 2026-02-29 is not a date: February 2026 has 28 days"),
        (["digest", "--date", "2026-13-01"], "--date 2026-13-01 is not a date: there is no month 13"),
        (["digest", "--date", "2026-06-00"], "--date 2026-06-00 is not a date: days start at 1"),
        (["backfill", "--since", "01/06/2026"], "--since '01/06/2026' is not of the form YYYY-MM-DD"),
    ],
)
def test_a_date_that_does_not_exist_is_said_so(
    cli_env: dict[str, str], args: list[str], message: str
) -> None:
    _one_line_error(runner.invoke(app, args), message)


def test_parse_day() -> None:
    from aggregator.cli.common import parse_day

    assert parse_day("2028-02-29") == dt.date(2028, 2, 29)  # a leap year
    assert parse_day(" 2026-6-5 ") == dt.date(2026, 6, 5)
    with pytest.raises(ValueError, match="February 2100 has 28 days"):  # not a leap year
        parse_day("2100-02-29")


@pytest.mark.parametrize(
    ("category", "message"),
    [
        ("cs.XX", "unknown arXiv category cs.XX; did you mean cs.AI?"),
        ("cs.lg", "unknown arXiv category cs.lg; did you mean cs.LG?"),
        ("[/]", "unknown arXiv category [/]; see https://arxiv.org/category_taxonomy"),
    ],
)
def test_backfill_refuses_an_unknown_category(
    cli_env: dict[str, str], replay: Replay, monkeypatch: pytest.MonkeyPatch, category: str, message: str
) -> None:
    monkeypatch.setenv("AGGREGATOR_ARXIV_API_URL", replay.url("/api/query"))
    result = runner.invoke(
        app, ["backfill", "--since", "2026-06-01", "--category", "cs.CL", "--category", category]
    )
    _one_line_error(result, message)
    assert not [r for r in replay.log() if r["path"].startswith("/api/")]  # nothing asked of the API


def test_backfill_progress_counts_what_it_sees_without_a_false_total(
    cli_env: dict[str, str], replay: Replay, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The API's opensearch:totalResults counts every cs.CL paper, not those since the day, so
    the progress shows papers and pages seen and no total: its last count is the summary's."""
    replay.set_day("2026-06-19")
    monkeypatch.setenv("AGGREGATOR_ARXIV_API_URL", replay.url("/api/query"))
    monkeypatch.setenv("AGGREGATOR_ARXIV_PAGE_SIZE", "100")
    get_settings.cache_clear()
    api_total = int(
        re.search(  # type: ignore[union-attr]
            rb"<opensearch:totalResults[^>]*>(\d+)<",
            replay.get("/api/query?search_query=cat:cs.CL&max_results=1"),
        ).group(1)
    )
    result = runner.invoke(app, ["backfill", "--since", "2026-06-18", "--category", "cs.CL"])
    assert result.exit_code == 0, result.output
    summary = re.search(r"backfill: (\d+) pages, (\d+) papers seen, \d+ new · finished", result.stdout)
    assert summary is not None, result.stdout
    pages, seen = int(summary.group(1)), int(summary.group(2))
    assert pages >= 2 and 0 < seen < api_total
    progress = " ".join(result.stderr.split())
    assert f"✓ backfill cs.CL since 2026-06-18 {seen:,} papers · {pages:,} pages" in progress
    assert not re.search(r"\d/\d", progress) and f"{api_total:,}" not in progress
    assert str(api_total) not in progress


def _feeds_named(replay: Replay, tmp_path: Path, names: dict[str, str], extra: str = "") -> Path:
    """The replay feeds file with only the feeds ``names`` lists, renamed to its values."""
    path = replay.feeds_toml(tmp_path, only=list(names), extra=extra)
    text = path.read_text()
    for old, new in names.items():
        text = text.replace(f'name = "{old}"', f"name = {json.dumps(new)}")
    path.write_text(text)
    return path


def test_feed_text_is_never_read_as_markup(
    cli_env: dict[str, str], replay: Replay, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A feed named ``[/] x`` through `fetch` (progress, table) and a title with ``[/bold]``
    through `digest`: printed as they are; the digest shows each paper's arXiv id."""
    feeds = _feeds_named(
        replay,
        tmp_path,
        {"arXiv cs.CL": "arXiv cs.CL", "Lil'Log": "[/] x"},
        extra='\n[interests]\ntext = "llm"\n',
    )
    monkeypatch.setenv("AGGREGATOR_FEEDS_FILE", str(feeds))
    get_settings.cache_clear()
    # Off a terminal the progress shows only its last state; what each update would draw is
    # its description read as markup, so that is what is checked.
    from rich.progress import Progress
    from rich.text import Text

    drawn: list[str] = []
    update = Progress.update

    def recording_update(self: Progress, task: Any, **kw: Any) -> None:
        if kw.get("description") is not None:
            drawn.append(Text.from_markup(kw["description"]).plain)
        update(self, task, **kw)

    monkeypatch.setattr(Progress, "update", recording_update)
    fetched = runner.invoke(app, ["fetch", "--all"], env={"COLUMNS": "200"})
    assert fetched.exit_code == 0, (fetched.output, fetched.exception)
    assert "│ [/] x " in fetched.stdout  # the summary table
    assert any(d.startswith("[/] x ") and d.endswith(" new") for d in drawn), drawn  # the progress
    assert "ranking: refitted TF-IDF" in fetched.stdout  # on past the refit

    engine = make_engine(cli_env["AGGREGATOR_DATABASE_URL"])
    with engine.begin() as c:
        rows = c.execute(
            sa.select(Item.id, Item.arxiv_id).where(Item.arxiv_id.is_not(None)).order_by(Item.id)
        ).all()
        c.execute(sa.update(Item).where(Item.id == rows[0].id).values(title="Closing [/bold] early [link=x]"))
    engine.dispose()
    out = runner.invoke(
        app, ["digest", "--date", "2026-06-24", "--days", "10", "--limit", "500"], env={"COLUMNS": "200"}
    )
    assert out.exit_code == 0, (out.output, out.exception)
    assert "Closing [/bold] early [link=x]" in out.stdout
    shown = set(re.findall(r"arXiv:(\d{4}\.\d{5})", out.stdout))
    assert shown and shown <= {r.arxiv_id for r in rows}
    assert rows[0].arxiv_id in shown
    assert "[/] x" in out.stdout  # the source column
    assert re.search(r"lilianweng\.github\.io/posts/\S+", out.stdout)  # a post: its short URL


def test_opml_import_reschedules_a_known_unscheduled_feed(
    cli_env: dict[str, str], replay: Replay, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    both = _feeds_named(replay, tmp_path, {"arXiv cs.CL": "arXiv cs.CL", "Lil'Log": "Lil'Log"})
    lil_url = next(u for u in re.findall(r'url = "([^"]+)"', both.read_text()) if "lilian" in u)
    cl_url = replay.url("/rss/cs.CL")
    monkeypatch.setenv("AGGREGATOR_FEEDS_FILE", str(both))
    get_settings.cache_clear()
    assert runner.invoke(app, ["fetch", "--all"]).exit_code == 0
    # Lil'Log leaves the feeds file: the next pass unschedules it (its items stay)
    only_cl = tmp_path / "only-cl.toml"
    only_cl.write_text(f'[[feeds]]\nname = "arXiv cs.CL"\nurl = "{cl_url}"\nkind = "arxiv"\n')
    monkeypatch.setenv("AGGREGATOR_FEEDS_FILE", str(only_cl))
    get_settings.cache_clear()
    assert runner.invoke(app, ["fetch"]).exit_code == 0
    engine = make_engine(cli_env["AGGREGATOR_DATABASE_URL"])
    with engine.connect() as c:
        assert c.execute(sa.select(Feed.scheduled).where(Feed.url == lil_url)).scalar_one() is False

    colah = replay.url("/static/blogs/colah-blog-2019-05-30-rss2-hakyll-BADDATE.xml")
    subs = tmp_path / "subs.opml"
    subs.write_text(
        '<?xml version="1.0"?><opml version="2.0"><body>'
        f'<outline type="rss" text="LL" xmlUrl="{lil_url}"/>'
        f'<outline type="rss" text="CL" xmlUrl="{cl_url}"/>'
        f'<outline type="rss" text="colah [b]" xmlUrl="{colah}"/>'
        "</body></opml>"
    )
    imported = runner.invoke(app, ["feeds", "import", str(subs)])
    assert imported.exit_code == 0, (imported.output, imported.exception)
    lines = [" ".join(x.split()) for x in imported.stdout.splitlines()]
    assert lines == [
        f"{subs}: 3 feeds, 1 added, 1 already followed, 1 re-scheduled",
        "↻ re-scheduled Lil'Log",
        "= already followed arXiv cs.CL",
        f"+ added colah [b] {colah}",
    ]
    with engine.connect() as c:
        lil = c.execute(sa.select(Feed).where(Feed.url == lil_url)).one()
    engine.dispose()
    assert lil.scheduled and not lil.disabled and "opml" in lil.tags

    replay.log(clear=True)
    again = runner.invoke(app, ["fetch"], env={"COLUMNS": "200"})  # syncs only-cl.toml first
    assert again.exit_code == 0, again.output
    fetched = {urllib.parse.urlsplit(replay.url(r["path"])).path for r in replay.log()}
    assert urllib.parse.urlsplit(lil_url).path in fetched and "│ Lil'Log" in again.stdout
    assert urllib.parse.urlsplit(colah).path in fetched
    assert "/rss/cs.CL" not in fetched  # not due: fetched an hour ago


@pytest.mark.slow
def test_digest_without_interests_says_unranked(
    replay: Replay, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No [interests]: the terminal digest shows no column of 0.000 scores and says why."""
    feeds = replay.feeds_toml(tmp_path, only=["arXiv cs.CL", "Lil'Log"])
    monkeypatch.setenv("AGGREGATOR_FEEDS_FILE", str(feeds))
    monkeypatch.setenv("AGGREGATOR_DATABASE_URL", f"sqlite:///{tmp_path / 'plain.db'}")
    monkeypatch.setenv("AGGREGATOR_ARXIV_DELAY_SECONDS", "0.2")
    monkeypatch.setenv("AGGREGATOR_ARXIV_API_URL", replay.url("/api/query"))  # `fetch` enriches
    get_settings.cache_clear()
    try:
        assert runner.invoke(app, ["fetch", "--all"]).exit_code == 0
        out = runner.invoke(app, ["digest", "--date", "2026-06-15", "--limit", "5"], env={"COLUMNS": "160"})
    finally:
        get_settings.cache_clear()
    assert out.exit_code == 0, out.output
    assert "unranked: no interests set" in out.output
    assert "set [interests] in the feeds file" in out.output
    assert "0.000" not in out.output and "arXiv:2606." in out.output
