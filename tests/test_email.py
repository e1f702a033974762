"""The weekly email on real arXiv papers, over a real SMTP conversation (aiosmtpd on
loopback), on SQLite and PostgreSQL: week arithmetic, due computation, composition (groups,
rank order, why, rising terms), the MIME message and its headers, and the signed 👍/👎 and
one-click unsubscribe links against the running API. Fault tests: test_email_faults.py."""

from __future__ import annotations

import asyncio
import datetime as dt
import email
import email.policy
import email.utils
import re
import threading
import zoneinfo
from collections.abc import Iterator
from email.message import EmailMessage
from pathlib import Path
from urllib.parse import urlsplit

import pytest
import sqlalchemy as sa
from aiosmtpd.controller import Controller
from fastapi.testclient import TestClient
from helpers import free_port
from test_readers import load_papers

from aggregator import trends
from aggregator.accounts import builtin_topics, profiles, readers, subscriptions
from aggregator.api.app import create_app
from aggregator.config import Interests, Settings
from aggregator.mail import compose, plan, send, tokens
from aggregator.mail.render import date_range
from aggregator.ranking.personal import rescore
from aggregator.store.db import session_factory
from aggregator.store.tables import EmailSend, Feedback, Item, Reader, Score
from aggregator.worker import tasks as jobs

BERLIN = zoneinfo.ZoneInfo("Europe/Berlin")
#: Monday of ISO week 2026-W25, 09:00 UTC: readers scheduled Monday 08:00 UTC are due.
NOW = dt.datetime(2026, 6, 15, 9, 0, tzinfo=dt.UTC)
WEEK_DAYS = ("2026-06-11", "2026-06-12")
INTERESTS = Interests(text="large language models", keywords=("reasoning",))


# --- a real SMTP server -------------------------------------------------------------------------


class Capture:
    """aiosmtpd handler: keeps accepted messages; ``reject`` answers 550 to RCPT TO for those
    addresses; ``defer`` answers 451 to them once; ``block_at`` (1-based) holds that DATA
    until ``release`` is set, then answers 451 without keeping it; ``delay`` seconds per DATA."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []
        self.reject: set[str] = set()
        self.defer: set[str] = set()
        self.block_at: int | None = None
        self.blocked = threading.Event()
        self.release = threading.Event()
        self.delay = 0.0
        self.data_count = 0
        self.lock = threading.Lock()

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address in self.reject:
            return "550 5.1.1 no such user here"
        if address in self.defer:
            self.defer.discard(address)
            return "451 4.7.1 greylisted, try again later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802
        with self.lock:
            self.data_count += 1
            n = self.data_count
        if self.block_at == n:
            self.blocked.set()
            while not self.release.is_set():
                await asyncio.sleep(0.02)
            return "451 4.3.0 not accepted"
        if self.delay:
            await asyncio.sleep(self.delay)
        with self.lock:
            self.messages.append((list(envelope.rcpt_tos), bytes(envelope.original_content)))
        return "250 2.0.0 accepted"

    def parsed(self) -> list[EmailMessage]:
        return [
            email.message_from_bytes(raw, policy=email.policy.default)  # type: ignore[misc]
            for _, raw in self.messages
        ]

    def recipients(self) -> list[str]:
        return [r for rcpts, _ in self.messages for r in rcpts]


class SmtpServer:
    def __init__(self, port: int | None = None) -> None:
        self.handler = Capture()
        self.port = port or free_port()
        self.controller: Controller | None = None

    def start(self) -> SmtpServer:
        self.controller = Controller(self.handler, hostname="127.0.0.1", port=self.port)
        self.controller.start()
        return self

    def stop(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


def mail_settings(database_url: str, tmp_path: Path, port: int, **kw: object) -> Settings:
    feeds = tmp_path / "feeds.toml"
    feeds.write_text("")
    values: dict[str, object] = {
        "database_url": database_url,
        "feeds_file": feeds,
        "smtp_host": "127.0.0.1",
        "smtp_port": port,
        "smtp_security": "none",
        "smtp_timeout_seconds": 10.0,
        "mail_from": "ML digest <digest@mail.example.org>",
        "public_base_url": "http://testserver",
        "email_retry_seconds": 60.0,
    }
    values.update(kw)
    return Settings(**values)  # type: ignore[arg-type]


def add_reader(
    engine: sa.Engine,
    address: str,
    *,
    weekly: bool = True,
    weekday: int = 0,
    at: str = "08:00",
    tz: str = "UTC",
    interests: str = "",
    topics: tuple[str, ...] = (),
    verified: bool = True,
) -> int:
    """A reader (verified unless ``verified=False``, like one made by ``aggregator users add``)."""
    with session_factory(engine)() as s, s.begin():
        builtin_topics.ensure_default_topics(s)
        rid = readers.create_reader(s, address, NOW, verified=verified).reader_id
        readers.update_reader_settings(
            s, rid, weekly_email=weekly, email_weekday=weekday, email_time=at, timezone=tz
        )
        if interests:
            profiles.update_profile(s, rid, interests=interests)
        for slug in topics:
            subscriptions.subscribe(s, rid, slug, NOW)
    return rid


# --- week arithmetic and due computation (pure) -----------------------------------------------


def test_counts_agree_with_their_nouns() -> None:
    """The email says "1 pick for you from 1 paper or post", never "1 picks … 1 papers"."""
    from aggregator.templating import environment

    line = environment().from_string(
        '{{ n|counted("pick") }} for you from {{ m|counted("paper or post", "papers and posts") }}.'
    )
    assert line.render(n=1, m=1) == "1 pick for you from 1 paper or post."
    assert line.render(n=12, m=1397) == "12 picks for you from 1,397 papers and posts."
    assert line.render(n=0, m=0) == "0 picks for you from 0 papers and posts."
    for name in ("email/week.html", "email/week.txt"):  # the email's own templates use it
        source = environment().loader.get_source(environment(), name)[0]  # type: ignore[union-attr]
        assert '|counted("pick")' in source and "picks for you" not in source


def test_week_labels_schedule_and_trimming() -> None:
    assert compose.week_label(dt.date(2026, 6, 15)) == "2026-W25"
    assert compose.week_label(dt.date(2027, 1, 1)) == "2026-W53"  # ISO year differs from the calendar's
    assert compose.week_monday("2026-W25") == dt.date(2026, 6, 15)
    for bad in ("2026-25", "2026-W5", "2025-W53", "W25"):
        with pytest.raises(ValueError, match="week"):
            compose.week_monday(bad)
    # Friday 17:30 in Berlin (CEST, UTC+2) is 15:30 UTC; in winter (CET) 16:30 UTC
    assert compose.scheduled_at("2026-W25", 4, "17:30", BERLIN) == dt.datetime(
        2026, 6, 19, 15, 30, tzinfo=dt.UTC
    )
    assert compose.scheduled_at("2026-W02", 4, "17:30", BERLIN) == dt.datetime(
        2026, 1, 9, 16, 30, tzinfo=dt.UTC
    )
    # the week is the reader's: Sunday 23:30 UTC is already Monday of the next week in Tokyo
    sunday_night = dt.datetime(2026, 6, 21, 23, 30, tzinfo=dt.UTC)
    assert compose.current_week(sunday_night, zoneinfo.ZoneInfo("UTC")) == "2026-W25"
    assert compose.current_week(sunday_night, zoneinfo.ZoneInfo("Asia/Tokyo")) == "2026-W26"
    # the email of week W covers the seven days before its scheduled day: no gap, no overlap
    assert compose.content_days("2026-W25", 0) == (dt.date(2026, 6, 8), dt.date(2026, 6, 14))
    assert compose.content_days("2026-W26", 0)[0] == dt.date(2026, 6, 15)
    assert compose.content_days("2026-W25", 4) == (dt.date(2026, 6, 12), dt.date(2026, 6, 18))
    assert date_range(dt.date(2026, 6, 8), dt.date(2026, 6, 14)) == "8–14 June 2026"
    assert date_range(dt.date(2026, 6, 29), dt.date(2026, 7, 5)) == "29 June – 5 July 2026"

    text = "word " * 100
    cut = compose.trim_abstract(text)
    assert len(cut) <= compose.ABSTRACT_CHARS and cut.endswith("word…") and "  " not in cut
    assert compose.trim_abstract("  short\n abstract ") == "short abstract"
    assert compose.trim_abstract("x" * 400).endswith("…")


def test_due_readers_follow_their_clock_and_only_this_week(engine: sa.Engine) -> None:
    monday_8_utc = add_reader(engine, "utc@example.com", weekday=0, at="08:00")
    friday_berlin = add_reader(engine, "berlin@example.com", weekday=4, at="17:30", tz="Europe/Berlin")
    off = add_reader(engine, "off@example.com", weekly=False)
    bounced = add_reader(engine, "bounced@example.com")
    add_reader(engine, "unverified@example.com", verified=False)  # never due: nobody confirmed it
    with session_factory(engine)() as s, s.begin():
        s.get_one(Reader, bounced).email_bounced = True

    def due(now: dt.datetime) -> dict[int, str]:
        with session_factory(engine)() as s:
            return {d.reader_id: d.iso_week for d in plan.due_readers(s, now)}

    assert due(dt.datetime(2026, 6, 15, 7, 59, tzinfo=dt.UTC)) == {}
    assert due(NOW) == {monday_8_utc: "2026-W25"}
    assert due(dt.datetime(2026, 6, 19, 15, 29, tzinfo=dt.UTC)) == {monday_8_utc: "2026-W25"}
    assert due(dt.datetime(2026, 6, 19, 15, 30, tzinfo=dt.UTC)) == {
        monday_8_utc: "2026-W25",
        friday_berlin: "2026-W25",
    }
    # planning is idempotent; a new week plans the new week only (no backfill of W25 for Berlin)
    assert plan.plan(engine, NOW) == 1
    assert plan.plan(engine, NOW) == 0
    next_monday = dt.datetime(2026, 6, 22, 8, 0, tzinfo=dt.UTC)
    assert plan.plan(engine, next_monday) == 1
    with session_factory(engine)() as s:
        rows = s.execute(sa.select(EmailSend.reader_id, EmailSend.iso_week).order_by(EmailSend.id)).all()
    assert [tuple(r) for r in rows] == [(monday_8_utc, "2026-W25"), (monday_8_utc, "2026-W26")]
    assert off not in due(next_monday) and bounced not in due(next_monday)


def test_tokens_are_signed_per_purpose_and_expire() -> None:
    signer = tokens.LinkSigner("k1")
    t = signer.feedback_token(3, 7, -1)
    assert signer.load_feedback(t) == tokens.FeedbackClaim(3, 7, -1)
    with pytest.raises(tokens.TokenInvalid):
        tokens.LinkSigner("k2").load_feedback(t)  # another key
    with pytest.raises(tokens.TokenInvalid):
        signer.load_unsubscribe(t)  # another purpose (salt)
    with pytest.raises(tokens.TokenInvalid):
        signer.load_feedback(t[:-2] + ("AA" if t[-2:] != "AA" else "BB"))
    old = signer.feedback_token(3, 7, 1, now=NOW)
    later = NOW + dt.timedelta(seconds=tokens.FEEDBACK_MAX_AGE + 1)
    assert signer.load_feedback(old, now=NOW + dt.timedelta(days=29)).value == 1
    with pytest.raises(tokens.TokenExpired):
        signer.load_feedback(old, now=later)
    assert signer.load_unsubscribe(signer.unsubscribe_token(9)) == 9


# --- the whole flow on real papers --------------------------------------------------------------


@pytest.fixture
def week_db(engine: sa.Engine, database_url: str, tmp_path: Path) -> sa.Engine:
    """Real papers of two days of 2026-W24, ranked for the default profile."""
    load_papers(engine, days=WEEK_DAYS)
    settings = mail_settings(database_url, tmp_path, 25)
    jobs.update_ranking(engine, settings, INTERESTS)
    return engine


def ranked_ids(engine: sa.Engine, reader_id: int) -> list[int]:
    with session_factory(engine)() as s:
        rows = s.execute(
            sa.select(Score.item_id)
            .join(Item, Item.id == Score.item_id)
            .where(Score.profile == f"reader:{reader_id}")
            .order_by(Score.score.desc(), Item.published.desc(), Item.id.desc())
        ).all()
    return [r[0] for r in rows]


def link_of(text: str, path: str) -> list[str]:
    return re.findall(rf"(http://testserver{path}\?t=[A-Za-z0-9._\-%]+)", text)


def test_weekly_email_over_smtp_then_links_change_data(
    week_db: sa.Engine, database_url: str, tmp_path: Path, smtp: SmtpServer
) -> None:
    engine = week_db
    with session_factory(engine)() as s:  # term counts, so that trends can look for rising terms
        trends.update_counts(s, s.scalars(sa.select(Item.id)).all())
        s.commit()
    settings = mail_settings(database_url, tmp_path, smtp.port)
    ada = add_reader(
        engine,
        "ada@example.com",
        interests="diffusion models for image generation",
        topics=("diffusion-models",),
    )
    bob = add_reader(engine, "bob@example.com", interests="reinforcement learning for robot control")
    add_reader(engine, "later@example.com", weekday=3)  # Thursday: not due on Monday
    with session_factory(engine)() as s:
        for rid in (ada, bob):
            assert rescore.rescore(s, rid)

    report = send.send_due(engine, settings, now=NOW)
    assert (report.planned, report.sent, report.errors) == (2, 2, [])
    assert sorted(smtp.handler.recipients()) == ["ada@example.com", "bob@example.com"]
    # exactly once: a second pass the same week sends nothing
    assert send.send_due(engine, settings, now=NOW + dt.timedelta(hours=1)).sent == 0
    assert len(smtp.handler.messages) == 2

    msgs = {m["To"]: m for m in smtp.handler.parsed()}
    msg = msgs["ada@example.com"]
    assert msg["Subject"] == "Your ML week: 2026-W25"
    assert msg["From"] == "ML digest <digest@mail.example.org>"
    sent_date = email.utils.parsedate_to_datetime(msg["Date"])
    assert abs((sent_date - dt.datetime.now(dt.UTC)).total_seconds()) < 300
    assert re.fullmatch(r"<[^@<>\s]+@mail\.example\.org>", msg["Message-ID"])
    assert msg["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert re.fullmatch(r"<http://testserver/email/unsubscribe\?t=[^>\s]+>", msg["List-Unsubscribe"])
    with session_factory(engine)() as s:
        row = s.execute(sa.select(EmailSend).where(EmailSend.reader_id == ada)).scalar_one()
        assert (row.state, row.attempts, row.message_id) == ("sent", 1, msg["Message-ID"])
        assert row.sent_at is not None and row.lease_until is None

    assert msg.get_content_type() == "multipart/alternative"
    parts = list(msg.iter_parts())
    assert [p.get_content_type() for p in parts] == ["text/plain", "text/html"]
    text, html = parts[0].get_content(), parts[1].get_content()
    assert "<script" not in html.lower() and "<img" not in html.lower() and "<style" not in html.lower()
    assert 'style="' in html
    assert "8–14 June 2026" in html and "Diffusion models" in html and "Other picks" in html

    # the items, grouped, each group in the reader's rank order; every item has why and links
    with session_factory(engine)() as s:
        week = compose.compose_week(s, ada, "2026-W25")
    assert [g.name for g in week.groups] == ["Diffusion models", "Other picks"]
    # the rising block is there exactly when trends has rising terms for the week (the three
    # days loaded here have no baseline, so trends may find none: see test_rising_block_renders)
    # when nothing rises, the block holds the week's leading topics and says so (issue 16)
    heading = "Leading topics this week" if week.rising_is_leading else "Rising this week"
    assert (heading in html) == bool(week.rising) == (heading.upper() in text)
    order = ranked_ids(engine, ada)
    for group in week.groups:
        ids = [i.item_id for i in group.items]
        assert ids == sorted(ids, key=order.index) and len(ids) == compose.PER_GROUP
    titles_in_html = [html.find(i.title.replace("&", "&amp;")) for i in week.items]
    assert all(p > 0 for p in titles_in_html) and titles_in_html == sorted(titles_in_html)
    assert all(t in text for t in (week.items[0].title, week.items[0].why, week.items[0].abstract[:60]))
    assert all(i.why for i in week.items) and "topics: Diffusion models" in week.groups[0].items[0].why
    up_links, down_links = link_of(text, "/email/feedback")[::2], link_of(text, "/email/feedback")[1::2]
    assert len(up_links) == len(down_links) == len(week.items)
    assert set(link_of(html.replace("&amp;", "&"), "/email/feedback")) == set(up_links + down_links)
    # bob has no topic filter: one "Other picks" group in exactly his ranked order
    bob_text = list(msgs["bob@example.com"].iter_parts())[0].get_content()
    with session_factory(engine)() as s:
        bob_week = compose.compose_week(s, bob, "2026-W25")
    assert [g.name for g in bob_week.groups] == ["Other picks"]
    assert [i.item_id for i in bob_week.items] == ranked_ids(engine, bob)[: compose.OTHER_ALONE]
    assert bob_text.index(bob_week.items[0].title) < bob_text.index(bob_week.items[1].title)

    with TestClient(create_app(settings, engine)) as client:

        def get(url: str) -> object:
            parts = urlsplit(url)
            return client.get(f"{parts.path}?{parts.query}")

        def post(url: str) -> object:
            parts = urlsplit(url)
            return client.post(f"{parts.path}?{parts.query}")

        first, second = week.items[0].item_id, week.items[1].item_id
        # a GET (a mail client's link scanner) shows the item and a button, and records nothing
        form = get(up_links[0])
        assert form.status_code == 200 and '<form method="post"' in form.text
        assert "More like this" in form.text and week.items[0].title.replace("&", "&amp;") in form.text
        assert get(down_links[1]).status_code == 200
        with session_factory(engine)() as s:
            assert s.scalar(sa.select(sa.func.count()).select_from(Feedback)) == 0
        resp = post(up_links[0])
        assert resp.status_code == 200 and "Thanks" in resp.text and "More like this" in resp.text
        assert resp.headers["cache-control"] == "no-store"
        resp = post(down_links[1])
        assert resp.status_code == 200 and "Less like this" in resp.text
        with session_factory(engine)() as s:
            votes = dict(
                s.execute(sa.select(Feedback.item_id, Feedback.value).where(Feedback.reader_id == ada)).all()
            )
        assert votes == {first: 1, second: -1}

        # a tampered token (another item id in the payload) and an expired one record nothing
        token = up_links[2].split("t=")[1]
        payload, rest = token.split(".", 1)
        forged = tokens.LinkSigner("x").feedback_token(ada, first, 1).split(".", 1)[0]
        assert client.post(f"/email/feedback?t={forged}.{rest}").status_code == 400
        assert client.get(f"/email/feedback?t={forged}.{rest}").status_code == 400
        assert client.post(f"/email/feedback?t={payload}.{rest[:-3]}xyz").status_code == 400
        assert client.post("/email/feedback?t=").status_code in (400, 422)
        with session_factory(engine)() as s:
            signer = tokens.LinkSigner(tokens.signing_key(s, settings))
        stale = signer.feedback_token(ada, week.items[3].item_id, 1, now=NOW - dt.timedelta(days=31))
        resp = client.post(f"/email/feedback?t={stale}")
        assert resp.status_code == 410 and "expired" in resp.text
        with session_factory(engine)() as s:
            n = s.scalar(sa.select(sa.func.count()).select_from(Feedback).where(Feedback.reader_id == ada))
        assert n == 2

        # one-click unsubscribe (RFC 8058): GET shows a form and changes nothing, POST turns it off
        unsub = msg["List-Unsubscribe"].strip("<>")
        assert unsub in text
        form = get(unsub)
        assert form.status_code == 200 and '<form method="post"' in form.text
        with session_factory(engine)() as s:
            assert s.get_one(Reader, ada).weekly_email is True
        path = urlsplit(unsub)
        resp = client.post(
            f"{path.path}?{path.query}",
            content=b"List-Unsubscribe=One-Click",
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert resp.status_code == 200 and "no longer" in resp.text
        with session_factory(engine)() as s:
            assert s.get_one(Reader, ada).weekly_email is False
        bad = client.post("/email/unsubscribe?t=" + unsub.split("t=")[1][:-4] + "AAAA")
        assert bad.status_code == 400

    # next week: ada unsubscribed, bob gets W26 (a new row), nobody gets W25 again
    report = send.send_due(engine, settings, now=NOW + dt.timedelta(days=7))
    assert report.sent == 1 and smtp.handler.recipients()[-1] == "bob@example.com"


def test_preview_api_and_cli(engine: sa.Engine, database_url: str, tmp_path: Path, monkeypatch) -> None:
    from typer.testing import CliRunner

    from aggregator.cli.app import app as cli
    from aggregator.config import get_settings

    settings = mail_settings(database_url, tmp_path, 25)
    with TestClient(create_app(settings, engine)) as client:
        resp = client.post("/api/readers", json={"email": "prev@example.com"})
        auth = {"Authorization": f"Bearer {resp.json()['token']}"}
        assert client.put("/api/me/settings", headers=auth, json={"weekly_email": True}).status_code == 200
        page = client.get("/api/me/email/preview", headers=auth, params={"week": "2026-W25"})
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert "Your ML week" in page.text and "2026-W25" in page.text and "8–14 June 2026" in page.text
        assert client.get("/api/me/email/preview", params={"week": "2026-W25"}).status_code == 401
        assert (
            client.get("/api/me/email/preview", headers=auth, params={"week": "2026-W99"}).status_code == 422
        )
    with session_factory(engine)() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(EmailSend)) == 0  # a preview sends nothing

    monkeypatch.setenv("AGGREGATOR_DATABASE_URL", database_url)
    monkeypatch.setenv("AGGREGATOR_PUBLIC_BASE_URL", "https://digest.example.org")
    get_settings.cache_clear()
    try:
        out = CliRunner().invoke(
            cli, ["email", "preview", "--reader", "PREV@example.com", "--week", "2026-W25"]
        )
        assert out.exit_code == 0, out.output
        assert (
            out.output.startswith("<!doctype html>")
            and "https://digest.example.org/email/unsubscribe?t=" in out.output
        )
        txt = CliRunner().invoke(
            cli, ["email", "preview", "--reader", "prev@example.com", "--week", "2026-W25", "--text"]
        )
        assert txt.exit_code == 0 and txt.output.startswith("Your ML week: 2026-W25")
        missing = CliRunner().invoke(cli, ["email", "preview", "--reader", "nobody@example.com"])
        assert missing.exit_code == 2
        status = CliRunner().invoke(cli, ["email", "status"], env={"COLUMNS": "200"})
        assert status.exit_code == 0 and "weekly email sends" in status.output
    finally:
        get_settings.cache_clear()


def test_rising_block_renders_when_given(engine: sa.Engine) -> None:
    from aggregator.mail.render import build_message, render_week

    rid = add_reader(engine, "r@example.com")
    rising = [
        compose.RisingTerm("GRPO", 120.5, 31, 12, 4.2, False),
        compose.RisingTerm("world model", 80.1, 22, 3, 6.0, True),
    ]
    with session_factory(engine)() as s:
        week = compose.compose_week(s, rid, "2026-W25", rising=rising)
    assert week.profile == "default" and week.is_empty  # no items at all: still a valid email
    assert [r.label for r in week.rising] == ["GRPO", "world model"]
    links = tokens.EmailLinks("https://d.example.org/", tokens.LinkSigner("k"))
    rendered = render_week(week, links, weekday=0, send_time="08:00")
    assert "Rising this week" in rendered.html and "GRPO" in rendered.html and "31 this week" in rendered.html
    assert "world model (new): 22 items this week" in rendered.text
    assert "every Monday at 08:00 (UTC)" in rendered.text and "Nothing new matched" in rendered.html
    msg = build_message(
        rendered, mail_from="d@d.example.org", to="r@example.com", message_id="<a@d.example.org>"
    )
    raw = msg.as_bytes()
    assert b"List-Unsubscribe: <https://d.example.org/email/unsubscribe?t=" in raw  # one unencoded line
    assert all(len(line) <= 998 for line in raw.split(b"\r\n"))
    body = raw.split(b"\r\n\r\n", 1)[1]
    assert all(len(line) <= 78 for line in body.split(b"\r\n"))  # quoted-printable bodies
