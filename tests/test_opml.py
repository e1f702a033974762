"""OPML import and export, the ``feeds import`` and ``users`` commands, and imported feeds
surviving a feeds.toml sync."""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from aggregator.api.app import create_app
from aggregator.cli.app import app as cli_app
from aggregator.config import FeedConfig, Settings, get_settings
from aggregator.feeds import opml
from aggregator.feeds.ingest import sync_feeds
from aggregator.store.db import session_factory
from aggregator.store.tables import Feed, Reader

NOW = dt.datetime(2026, 6, 15, 12, tzinfo=dt.UTC)

OPML = """<?xml version="1.0" encoding="UTF-8"?>
<opml version="2.0">
  <head><title>my feeds</title></head>
  <body>
    <outline text="ML blogs">
      <outline type="rss" text="Lil'Log" title="Lil&apos;Log" xmlUrl="https://lilianweng.github.io/index.xml"/>
      <outline type="rss" text="BAIR" xmlUrl="https://bair.berkeley.edu/blog/feed.xml"/>
      <outline type="rss" text="BAIR again" xmlUrl="https://bair.berkeley.edu/blog/feed.xml"/>
    </outline>
    <outline type="rss" text="arXiv cs.RO" xmlUrl="https://rss.arxiv.org/rss/cs.RO"/>
    <outline type="rss" text="not http" xmlUrl="ftp://example.com/feed"/>
    <outline text="empty folder"/>
  </body>
</opml>"""


def test_parse_opml_reads_nested_outlines() -> None:
    feeds = opml.parse_opml(OPML)
    assert [(f.name, f.url, f.kind, f.tags) for f in feeds] == [
        ("Lil'Log", "https://lilianweng.github.io/index.xml", None, ("ML blogs",)),
        ("BAIR", "https://bair.berkeley.edu/blog/feed.xml", None, ("ML blogs",)),
        ("arXiv cs.RO", "https://rss.arxiv.org/rss/cs.RO", "arxiv", ()),
    ]


@pytest.mark.parametrize(
    ("doc", "message"),
    [
        ("<opml><body>", "not well-formed"),
        ("<rss><channel/></rss>", "not <opml>"),
        ("<opml version='2.0'><head/></opml>", "no <body>"),
        ('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]><opml><body/></opml>', "DTD"),
        (b"\x89PNG\r\n\x1a\n", "not well-formed"),
    ],
)
def test_parse_opml_refuses_bad_documents(doc: str | bytes, message: str) -> None:
    with pytest.raises(opml.OpmlError, match=message):
        opml.parse_opml(doc)


def test_import_export_and_sync_keep_imported_feeds(engine: sa.Engine) -> None:
    with session_factory(engine)() as s, s.begin():
        sync_feeds(s, [FeedConfig("arXiv cs.LG", "https://rss.arxiv.org/rss/cs.LG", "arxiv")], NOW)
        report = opml.import_feeds(
            s, [*opml.parse_opml(OPML), FeedConfig("dup", "https://rss.arxiv.org/rss/cs.LG")], NOW
        )
        assert len(report.added) == 3 and report.existing == ["https://rss.arxiv.org/rss/cs.LG"]
        again = opml.import_feeds(s, opml.parse_opml(OPML), NOW)
        assert again.added == [] and len(again.existing) == 3
        # the feeds file no longer lists cs.LG; imported feeds are not the file's to unschedule
        sync_feeds(s, [FeedConfig("arXiv cs.CL", "https://rss.arxiv.org/rss/cs.CL", "arxiv")], NOW)
        scheduled = {f.url: f for f in s.scalars(sa.select(Feed).where(Feed.scheduled.is_(True)))}
        assert set(scheduled) == {
            "https://rss.arxiv.org/rss/cs.CL",
            "https://lilianweng.github.io/index.xml",
            "https://bair.berkeley.edu/blog/feed.xml",
            "https://rss.arxiv.org/rss/cs.RO",
        }
        lil = scheduled["https://lilianweng.github.io/index.xml"]
        assert lil.tags == ["opml", "ML blogs"] and lil.next_check_at == NOW
        doc = opml.feeds_opml(s, NOW)
    root = ET.fromstring(doc)
    outlines = root.findall("./body/outline")
    assert {o.get("xmlUrl") for o in outlines} == set(scheduled)
    assert next(o for o in outlines if o.get("xmlUrl") == lil.url).get("category") == "ML blogs"
    assert [f.url for f in opml.parse_opml(doc)] == [o.get("xmlUrl") for o in outlines]  # round trip


def test_import_reschedules_feeds_no_longer_followed(engine: sa.Engine) -> None:
    """A feed removed from feeds.toml (unscheduled) and one disabled after an HTTP 410 are
    scheduled again, due now, and stay so through the next feeds.toml sync; a feed a reader
    added and removed becomes the operator's. Their names stay."""
    lil, bair, robo = (
        "https://lilianweng.github.io/index.xml",
        "https://bair.berkeley.edu/blog/feed.xml",
        "https://rss.arxiv.org/rss/cs.RO",
    )
    earlier = NOW - dt.timedelta(days=3)
    with session_factory(engine)() as s, s.begin():
        sync_feeds(s, [FeedConfig("Lil'Log (toml)", lil), FeedConfig("BAIR", bair)], earlier)
        sync_feeds(s, [FeedConfig("BAIR", bair)], earlier)  # Lil'Log left the file
        gone = s.scalar(sa.select(Feed).where(Feed.url == bair))
        assert gone is not None
        gone.disabled, gone.error_count, gone.last_error, gone.next_check_at = True, 1, "HTTP 410", None
        reader = Reader(email="r@example.com", token_hash="x", feed_token_hash="y", created_at=earlier)
        s.add(reader)
        s.flush()
        s.add(
            Feed(
                url=robo,
                name="robots",
                interval_minutes=60,
                tags=[],
                scheduled=False,
                created_at=earlier,
                error_count=0,
                disabled=False,
                reader_added=True,
                added_by=reader.id,
            )
        )
    with session_factory(engine)() as s, s.begin():
        report = opml.import_feeds(s, opml.parse_opml(OPML), NOW)
        assert [(f.name, f.state) for f in report.feeds] == [
            ("Lil'Log (toml)", "rescheduled"),
            ("BAIR", "rescheduled"),
            ("robots", "rescheduled"),
        ]
        assert report.rescheduled == [lil, bair, robo] and report.added == report.existing == []
    with session_factory(engine)() as s, s.begin():
        sync_feeds(s, [FeedConfig("BAIR", bair)], NOW)  # the file's next sync
        feeds = {f.url: f for f in s.scalars(sa.select(Feed))}
        for url in (lil, bair, robo):
            f = feeds[url]
            assert f.scheduled and not f.disabled and f.error_count == 0 and f.last_error is None
            assert f.next_check_at is not None and f.next_check_at.replace(tzinfo=dt.UTC) == NOW
        assert feeds[lil].tags == ["opml"] and feeds[lil].name == "Lil'Log (toml)"
        assert not feeds[robo].reader_added and feeds[robo].added_by is None
        assert opml.import_feeds(s, opml.parse_opml(OPML), NOW).existing == [lil, bair, robo]


def test_feeds_opml_endpoint(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'o.db'}"
    feeds = tmp_path / "feeds.toml"
    feeds.write_text("")
    with TestClient(create_app(Settings(database_url=url, feeds_file=feeds))) as client:
        with session_factory(client.app.state.engine)() as s, s.begin():  # type: ignore[attr-defined]
            opml.import_feeds(s, opml.parse_opml(OPML), NOW)
        resp = client.get("/api/feeds.opml")
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("text/x-opml")
    assert len(opml.parse_opml(resp.content)) == 3


def flat(text: str) -> str:
    """CLI output without Rich's line wrapping."""
    return " ".join(text.split())


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    feeds = tmp_path / "feeds.toml"
    feeds.write_text("")
    monkeypatch.setenv("AGGREGATOR_DATABASE_URL", url)
    monkeypatch.setenv("AGGREGATOR_FEEDS_FILE", str(feeds))
    get_settings.cache_clear()
    yield url
    get_settings.cache_clear()


def test_cli_feeds_import(cli_env: str, tmp_path: Path) -> None:
    path = tmp_path / "subs.opml"
    path.write_text(OPML)
    runner = CliRunner()
    result = runner.invoke(cli_app, ["feeds", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert "3 added" in flat(result.output)
    assert "0 added, 3 already" in flat(runner.invoke(cli_app, ["feeds", "import", str(path)]).output)
    bad = tmp_path / "bad.opml"
    bad.write_text("<html/>")
    failed = runner.invoke(cli_app, ["feeds", "import", str(bad)])
    assert failed.exit_code == 2 and "not <opml>" in flat(failed.output)
    missing = runner.invoke(cli_app, ["feeds", "import", str(tmp_path / "nope.opml")])
    assert missing.exit_code == 2 and "cannot read" in flat(missing.output)


def test_cli_users_add_and_list(cli_env: str) -> None:
    from aggregator.accounts import readers
    from aggregator.store.db import make_engine

    runner = CliRunner()
    result = runner.invoke(cli_app, ["users", "add", "cli@example.com"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    token = lines[lines.index(next(x for x in lines if x.startswith("API token"))) + 1].strip()
    engine = make_engine(cli_env)
    with session_factory(engine)() as s:
        reader = readers.reader_for_token(s, token)
        assert reader is not None and reader.email == "cli@example.com"
        assert s.scalar(sa.select(Reader.token_hash)) != token
    engine.dispose()
    dup = runner.invoke(cli_app, ["users", "add", "cli@example.com"])
    assert dup.exit_code == 2 and "already exists" in flat(dup.output)
    bad = runner.invoke(cli_app, ["users", "add", "not-an-email"])
    assert bad.exit_code == 2 and "not a valid email" in flat(bad.output)
    listed = runner.invoke(cli_app, ["users", "list"])
    assert listed.exit_code == 0 and "cli@example.com" in listed.output and token not in listed.output
