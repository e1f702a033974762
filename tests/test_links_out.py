"""Abstract, PDF, code and project links and venue badges in the reader's Atom feed and the
weekly email, on real papers with their real arXiv comments (as stored after enrichment)."""

from __future__ import annotations

import dataclasses
import xml.etree.ElementTree as ET
from html import escape
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from conftest import paper_entry
from fastapi.testclient import TestClient
from test_email import INTERESTS, NOW, WEEK_DAYS, add_reader, mail_settings
from test_readers import bulk_papers

from aggregator.api.app import create_app
from aggregator.digest.badges import VENUE_SCHEME
from aggregator.feeds.ingest import write_entries
from aggregator.mail import compose, tokens
from aggregator.mail.render import render_week
from aggregator.ranking.personal import rescore
from aggregator.store.db import session_factory
from aggregator.store.tables import Feed, Item
from aggregator.worker import tasks as jobs

ATOM = "{http://www.w3.org/2005/Atom}"


@pytest.fixture
def enriched_week(engine: sa.Engine, database_url: str, tmp_path: Path) -> sa.Engine:
    """Two days of real cs.* papers with the authors' comments, ranked for the default profile."""
    with session_factory(engine)() as s, s.begin():
        feed = Feed(url="https://rss.arxiv.org/rss/cs.LG", name="arXiv cs.LG", kind="arxiv", created_at=NOW)
        s.add(feed)
        s.flush()
        for day in WEEK_DAYS:
            entries = [
                dataclasses.replace(paper_entry(p, day), comment=p.get("comment") or None, from_api=True)
                for p in bulk_papers(day)
            ]
            write_entries(s, feed.id, entries, NOW)
    jobs.update_ranking(engine, mail_settings(database_url, tmp_path, 25), INTERESTS)
    return engine


def _stored(engine: sa.Engine) -> dict[int, Any]:
    with session_factory(engine)() as s:
        cols = (Item.id, Item.arxiv_id, Item.venue, Item.venue_label, Item.links)
        return {r.id: r for r in s.execute(sa.select(*cols))}


def _kinds(row: Any, kind: str) -> list[str]:
    return [link["url"] for link in row.links or [] if link["kind"] == kind][:4]


def test_weekly_email_links_and_badges(enriched_week: sa.Engine) -> None:
    # an interest in released code: the week's picks include papers with code links
    rid = add_reader(enriched_week, "ada@example.com", interests="code is available at github")
    with session_factory(enriched_week)() as s:
        assert rescore.rescore(s, rid)
        week = compose.compose_week(s, rid, "2026-W25")
    links = tokens.EmailLinks("https://d.example.org/", tokens.LinkSigner("k"))
    out = render_week(week, links, weekday=0, send_time="08:00")
    stored = _stored(enriched_week)
    items = [stored[i.item_id] for i in week.items]
    assert len(items) >= 10
    html = out.html.replace("&amp;", "&")
    for row in items:
        abs_url, pdf_url = f"https://arxiv.org/abs/{row.arxiv_id}", f"https://arxiv.org/pdf/{row.arxiv_id}"
        assert f'href="{pdf_url}"' in html and f"  PDF: {pdf_url}" in out.text
        assert f'href="{abs_url}"' in html and f"  Abstract: {abs_url}" in out.text
        for url in _kinds(row, "code"):
            assert f'href="{url}"' in html and url in out.text
        if row.venue_label:
            assert f"{escape(row.venue_label)}</span>" in out.html and f"[{row.venue_label}]" in out.text
    # the week's real comments give some venues and code links (else the loop above proves little)
    assert sum(1 for r in items if r.venue_label) >= 1 and sum(1 for r in items if _kinds(r, "code")) >= 3
    assert ">Code</a>" in out.html and ">PDF</a>" in out.html and ">Abstract</a>" in out.html


def test_atom_feed_links_and_badges(enriched_week: sa.Engine, database_url: str, tmp_path: Path) -> None:
    settings = mail_settings(database_url, tmp_path, 25)
    with TestClient(create_app(settings, enriched_week)) as client:
        made = client.post("/api/readers", json={"email": "feed@example.com"}).json()
        resp = client.get(
            "/api/me/digest.atom",
            params={"token": made["feed_token"], "date": WEEK_DAYS[-1], "days": 2, "limit": 500},
        )
    assert resp.status_code == 200
    feed = ET.fromstring(resp.content)
    stored = _stored(enriched_week)
    by_arxiv = {r.arxiv_id: r for r in stored.values()}
    entries = feed.findall(f"{ATOM}entry")
    assert len(entries) == len(stored)  # every paper of the two days
    with_venue = with_code = 0
    for entry in entries:
        alternate = entry.find(f"{ATOM}link[@rel='alternate']")
        assert alternate is not None
        row = by_arxiv[alternate.attrib["href"].rsplit("/", 1)[1]]
        found = entry.findall(f"{ATOM}link[@rel='related']")
        related = {(li.attrib.get("title"), li.attrib["href"]) for li in found}
        assert ("PDF", f"https://arxiv.org/pdf/{row.arxiv_id}") in related
        summary = entry.findtext(f"{ATOM}summary") or ""
        assert f"PDF: https://arxiv.org/pdf/{row.arxiv_id}" in summary
        code = _kinds(row, "code")
        assert {h for t, h in related if t == "code"} == set(code)
        assert {h for t, h in related if t == "project"} == set(_kinds(row, "project"))
        with_code += bool(code)
        categories = entry.findall(f"{ATOM}category")
        badges = [c.attrib for c in categories if c.attrib.get("scheme") == VENUE_SCHEME]
        if row.venue:
            with_venue += 1
            assert badges == [{"scheme": VENUE_SCHEME, "term": row.venue, "label": row.venue_label}]
            assert f"Venue: {row.venue_label}" in summary
        else:
            assert badges == [] and "Venue:" not in summary
    assert with_venue >= 5 and with_code >= 20
