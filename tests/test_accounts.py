"""Accounts safe to open to the public (issue 14, finding 5), each attack reproduced against the
real app, a real SMTP server (aiosmtpd on loopback) and SQLite and PostgreSQL:

* sign-up mails nothing but a fixed-content verification link; the weekly email skips an
  unverified address until its link is used;
* ``/signin`` answers the same for known and unknown addresses and mails only known ones;
  sign-in links work once and expire; a scanner's GET uses nothing; mails per address are capped;
* a signed-out cookie replayed is refused; "sign out everywhere" ends every session;
* a reissued API token (profile page, API, CLI) leaves the old one refused;
* deleting an account removes every row of the reader;
* addresses are unique whatever their case, in the database itself: concurrent duplicate
  sign-ups over real HTTP give one 201 and 409s, never a 500.
"""

from __future__ import annotations

import concurrent.futures
import datetime as dt
import re
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from helpers import csrf_of, hidden_field, serve, sign_in
from test_email import NOW, SmtpServer, add_reader, mail_settings

from aggregator.accounts import links, readers
from aggregator.api.app import create_app
from aggregator.api.auth import SESSION_COOKIE
from aggregator.config import Settings
from aggregator.errors import Conflict
from aggregator.feeds.ssrf import tls_context
from aggregator.mail import plan, send
from aggregator.mail.tokens import signing_key
from aggregator.store.account_tables import SignInLink, WebSession
from aggregator.store.db import session_factory
from aggregator.store.tables import Base, Feed, Item, ItemSource, Reader, Score, Topic


@pytest.fixture
def smtp() -> Iterator[SmtpServer]:
    server = SmtpServer().start()
    yield server
    server.stop()


@pytest.fixture
def settings(database_url: str, tmp_path: Path, smtp: SmtpServer) -> Settings:
    return mail_settings(database_url, tmp_path, smtp.port, auth_mails_per_hour=3)


@pytest.fixture
def client(engine: sa.Engine, settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings, engine)) as c:
        yield c


def _mails_to(smtp: SmtpServer, address: str) -> list[Any]:
    return [m for m in smtp.handler.parsed() if m["To"] == address]


def _text(msg: Any) -> str:
    return str(msg.get_body(preferencelist=("plain",)).get_content())


def _link_path(msg: Any) -> str:
    found = re.search(r"http://testserver(/signin/link\?t=\S+)", _text(msg))
    assert found is not None, _text(msg)
    return found.group(1)


def _use_link(client: TestClient, path: str) -> Any:
    page = client.get(path)
    if page.status_code != 200:
        return page
    return client.post(
        "/signin/link",
        data={"t": hidden_field(page.text, "t"), "csrf_token": csrf_of(page.text)},
        follow_redirects=False,
    )


def _ask_signin(client: TestClient, address: str) -> Any:
    page = client.get("/signin")
    return client.post("/signin", data={"email": address, "csrf_token": csrf_of(page.text)})


def _reader(engine: sa.Engine, address: str) -> Reader:
    with session_factory(engine)() as s:
        found = readers.reader_by_email(s, address)
        assert found is not None
        return found


# --- verification -------------------------------------------------------------------------------


def test_sign_up_mails_only_a_fixed_verification_link_and_the_weekly_email_waits_for_it(
    client: TestClient, engine: sa.Engine, settings: Settings, smtp: SmtpServer
) -> None:
    """The attack: sign up someone else's address and have the service mail them. The victim
    gets one mail whose text comes from nobody but us, and nothing else until they open it."""
    victim = "Win.A.Prize.Click.Here@Example.COM"
    resp = client.post("/api/readers", json={"email": victim})
    assert resp.status_code == 201
    body = resp.json()
    assert body["token"] and body["feed_token"] and body["email"] == "Win.A.Prize.Click.Here@example.com"
    auth = {"Authorization": f"Bearer {body['token']}"}
    [mail] = smtp.handler.parsed()
    assert mail["To"] == body["email"] and mail["Subject"] == "Confirm your email address"
    assert mail["Auto-Submitted"] == "auto-generated"
    for part in (_text(mail), mail.get_body(preferencelist=("html",)).get_content()):
        assert "Prize" not in part and "Click.Here" not in part  # nothing of the sign-up's input
    assert _reader(engine, victim).email_verified_at is None

    # the API works, but the weekly email the (would-be) attacker turns on is never sent
    assert client.put("/api/me/settings", headers=auth, json={"weekly_email": True}).status_code == 200
    report = send.send_due(engine, settings, now=NOW)
    assert (report.planned, report.sent) == (0, 0) and len(smtp.handler.messages) == 1

    # the owner opens the link: verified, signed in, and the next weekly run mails them
    assert _use_link(client, _link_path(mail)).status_code == 303
    assert client.get("/me/profile").status_code == 200
    assert _reader(engine, victim).email_verified_at is not None
    report = send.send_due(engine, settings, now=NOW)
    assert report.sent == 1 and smtp.handler.recipients()[-1] == body["email"]


def test_a_planned_weekly_email_to_an_address_no_longer_verified_is_cancelled(
    engine: sa.Engine, settings: Settings, smtp: SmtpServer
) -> None:
    """The sender checks again right before SMTP, whatever the plan said."""
    rid = add_reader(engine, "planned@example.org")
    assert plan.plan(engine, NOW) == 1
    with session_factory(engine)() as s, s.begin():
        s.get_one(Reader, rid).email_verified_at = None
    report = send.send_due(engine, settings, now=NOW)
    assert (report.cancelled, report.sent) == (1, 0) and smtp.handler.messages == []


def test_the_web_sign_up_form_answers_the_same_for_new_and_taken_addresses(
    client: TestClient, engine: sa.Engine, smtp: SmtpServer
) -> None:
    page = client.get("/signup")
    assert page.status_code == 200 and 'action="/signup"' in page.text
    csrf = csrf_of(page.text)
    assert client.post("/signup", data={"email": "new@example.org"}).status_code == 403  # CSRF
    first = client.post("/signup", data={"email": "new@example.org", "csrf_token": csrf})
    again = client.post("/signup", data={"email": "NEW@example.org", "csrf_token": csrf})
    assert first.status_code == again.status_code == 200
    assert first.text == again.text and "If an account exists for that address" in first.text
    verify, signin = _mails_to(smtp, "new@example.org")
    assert verify["Subject"] == "Confirm your email address" and signin["Subject"] == "Your sign-in link"
    assert _reader(engine, "new@example.org").email_verified_at is None
    bad = client.post("/signup", data={"email": "nope", "csrf_token": csrf})
    assert bad.status_code == 422 and "valid" in bad.text
    assert _use_link(client, _link_path(verify)).status_code == 303
    assert _reader(engine, "new@example.org").email_verified_at is not None


def test_operator_readers_and_readers_of_before_the_migration_count_as_verified(
    engine: sa.Engine, tmp_path: Path, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from alembic import command
    from typer.testing import CliRunner

    from aggregator.cli.app import app as cli
    from aggregator.config import get_settings
    from aggregator.store.db import alembic_config, upgrade

    command.downgrade(alembic_config(engine), "0042")
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO readers (email, token_hash, feed_token_hash, created_at, weekly_email, "
                "email_weekday, email_time, timezone, email_bounced) VALUES "
                "('old@example.org', 'a', 'b', :now, true, 0, '08:00', 'UTC', false)"
            ),
            {"now": NOW.replace(tzinfo=None)},
        )
    upgrade(engine)
    assert _reader(engine, "old@example.org").email_verified_at is not None

    monkeypatch.setenv("AGGREGATOR_DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        out = CliRunner().invoke(cli, ["users", "add", "op@example.org"])
        assert out.exit_code == 0, out.output
    finally:
        get_settings.cache_clear()
    assert _reader(engine, "op@example.org").email_verified_at is not None


# --- sign-in by link -----------------------------------------------------------------------------


def test_signin_answers_identically_and_mails_known_addresses_only(
    client: TestClient, engine: sa.Engine, smtp: SmtpServer
) -> None:
    """The attack: probe /signin to learn who has an account."""
    client.post("/api/readers", json={"email": "known@example.org"})
    before = len(smtp.handler.messages)
    known = _ask_signin(client, "Known@Example.org")
    unknown = _ask_signin(client, "unknown@example.org")
    assert known.status_code == unknown.status_code == 200
    assert known.text == unknown.text and "If an account exists for that address" in known.text
    assert known.headers.get("set-cookie") == unknown.headers.get("set-cookie")
    assert smtp.handler.recipients()[before:] == ["known@example.org"]
    [_, mail] = _mails_to(smtp, "known@example.org")
    assert mail["Subject"] == "Your sign-in link" and "15 minutes" in _text(mail)


def test_a_link_works_once_a_scanner_uses_nothing_and_old_or_forged_links_are_refused(
    client: TestClient, engine: sa.Engine, smtp: SmtpServer
) -> None:
    client.post("/api/readers", json={"email": "ada@example.org"})
    _ask_signin(client, "ada@example.org")
    path = _link_path(_mails_to(smtp, "ada@example.org")[-1])
    for _ in range(2):  # a mail scanner fetching the link signs nobody in and uses nothing
        scanned = client.get(path)
        assert scanned.status_code == 200 and 'id="use-link"' in scanned.text
        assert scanned.headers["cache-control"] == "no-store"
        assert scanned.headers["referrer-policy"] == "no-referrer"
        assert SESSION_COOKIE not in scanned.cookies
    assert client.get("/me", follow_redirects=False).status_code == 303
    assert _reader(engine, "ada@example.org").email_verified_at is None
    assert _use_link(client, path).status_code == 303
    assert client.get("/me/profile").status_code == 200
    assert _reader(engine, "ada@example.org").email_verified_at is not None  # a sign-in link verifies
    client.cookies.clear()
    reused = _use_link(client, path)  # the attack: replay a link taken from a mailbox or log
    assert reused.status_code == 410 and "used already" in reused.text
    assert client.get("/me", follow_redirects=False).status_code == 303

    # expired: a link made 16 minutes ago (its row says so; the signature is still fine)
    reader_id = _reader(engine, "ada@example.org").id
    with session_factory(engine)() as s:
        key = signing_key(s, client.app.state.settings)  # type: ignore[attr-defined]
        old = links.issue_link(
            s, reader_id, "signin", key, 100, now=dt.datetime.now(dt.UTC) - dt.timedelta(minutes=16)
        )
        s.commit()
    assert old is not None
    expired = client.get("/signin/link", params={"t": old})
    assert expired.status_code == 410 and "expired" in expired.text
    assert (
        client.post(
            "/signin/link", data={"t": old, "csrf_token": csrf_of(client.get("/signin").text)}
        ).status_code
        == 410
    )
    # forged: another key, or a cut token
    for forged in (old[:-3] + "abc", old[: len(old) // 2], "x"):
        assert client.get("/signin/link", params={"t": forged}).status_code == 400
    assert client.get("/me", follow_redirects=False).status_code == 303


def test_the_owner_signing_in_claims_an_account_someone_else_made_with_their_address(
    client: TestClient, engine: sa.Engine, smtp: SmtpServer
) -> None:
    """The attack: sign up the victim's address by the API, keep its token, prepare the
    account (weekly email on), and wait for the victim to sign in with their address one day.
    Their sign-in link (not the ignored verification link) hands them the account alone."""
    made = client.post("/api/readers", json={"email": "victim@example.org"}).json()
    attacker = {"Authorization": f"Bearer {made['token']}"}
    assert client.put("/api/me/settings", headers=attacker, json={"weekly_email": True}).status_code == 200
    _ask_signin(client, "victim@example.org")
    assert _use_link(client, _link_path(_mails_to(smtp, "victim@example.org")[-1])).status_code == 303
    assert client.get("/api/me/profile", headers=attacker).status_code == 401
    assert client.get("/api/me/digest.atom", params={"token": made["feed_token"]}).status_code == 401
    victim = _reader(engine, "victim@example.org")
    assert victim.email_verified_at is not None and victim.weekly_email is False
    assert client.get("/me/profile").status_code == 200  # the owner's session works


def test_two_requests_racing_for_one_link_sign_in_once(engine: sa.Engine, settings: Settings) -> None:
    with session_factory(engine)() as s:
        reader_id = readers.create_reader(s, "race@example.org").reader_id
        key = signing_key(s, settings)
        token = links.issue_link(s, reader_id, "signin", key, 100)
        s.commit()
    assert token is not None
    barrier = threading.Barrier(4)

    def use() -> str:
        with session_factory(engine)() as s:
            barrier.wait()
            try:
                links.consume_link(s, token, key)
                s.commit()
                return "ok"
            except links.LinkGone:
                s.rollback()
                return "gone"

    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        results = sorted(pool.map(lambda _: use(), range(4)))
    assert results == ["gone", "gone", "gone", "ok"]


def test_link_mails_per_address_are_capped(client: TestClient, smtp: SmtpServer) -> None:
    """The attack: flood someone's inbox through /signin (the settings allow 3 per hour)."""
    client.post("/api/readers", json={"email": "flood@example.org"})  # mail 1: verification
    answers = {_ask_signin(client, "flood@example.org").text for _ in range(6)}
    assert len(answers) == 1  # the answer does not tell when the cap is reached
    assert len(_mails_to(smtp, "flood@example.org")) == 3


def test_sign_in_and_sign_up_posts_are_rate_limited_per_client(
    engine: sa.Engine, database_url: str, tmp_path: Path, smtp: SmtpServer
) -> None:
    settings = mail_settings(database_url, tmp_path, smtp.port, auth_rate_limit="3/minute")
    with TestClient(create_app(settings, engine)) as client:
        csrf = csrf_of(client.get("/signin").text)
        codes = [
            client.post("/signin", data={"email": f"a{i}@example.org", "csrf_token": csrf}).status_code
            for i in range(3)
        ]
        assert codes == [200, 200, 200]
        assert client.post("/signup", data={"email": "b@example.org", "csrf_token": csrf}).status_code == 429
        assert client.post("/signin/link", data={"t": "x", "csrf_token": csrf}).status_code == 429


# --- sessions ------------------------------------------------------------------------------------


def test_a_signed_out_cookie_is_refused_and_sign_out_everywhere_ends_every_session(
    client: TestClient, engine: sa.Engine, settings: Settings
) -> None:
    client.post("/api/readers", json={"email": "ses@example.org"})
    sign_in(client, "ses@example.org")
    cookie = client.cookies.get(SESSION_COOKIE)
    csrf = csrf_of(client.get("/me/profile").text)
    assert client.post("/signout", data={"csrf_token": csrf}, follow_redirects=False).status_code == 303
    client.cookies.set(SESSION_COOKIE, cookie)  # the attack: replay the cookie after sign-out
    assert client.get("/me/profile", follow_redirects=False).status_code == 303

    with (
        TestClient(create_app(settings, engine)) as laptop,
        TestClient(create_app(settings, engine)) as phone,
    ):
        sign_in(laptop, "ses@example.org")
        sign_in(phone, "ses@example.org")
        profile = laptop.get("/me/profile")
        assert "signed in in 2 browsers" in profile.text
        out = laptop.post(
            "/me/signout-everywhere", data={"csrf_token": csrf_of(profile.text)}, follow_redirects=False
        )
        assert out.status_code == 303
        assert phone.get("/me/profile", follow_redirects=False).status_code == 303
        assert laptop.get("/me/profile", follow_redirects=False).status_code == 303
    with session_factory(engine)() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(WebSession)) == 0


# --- API token reissue ----------------------------------------------------------------------------


def test_a_reissued_token_replaces_the_old_one_page_api_and_cli(
    client: TestClient, engine: sa.Engine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from aggregator.cli.app import app as cli
    from aggregator.config import get_settings

    old = client.post("/api/readers", json={"email": "tok@example.org"}).json()["token"]
    sign_in(client, "tok@example.org")
    page = client.post("/me/token", data={"csrf_token": csrf_of(client.get("/me/profile").text)})
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    new = re.search(r'<code id="api-token">([^<]+)</code>', page.text).group(1)  # type: ignore[union-attr]
    for path in ("/api/me/profile", "/api/me/digest"):  # the digest's fast lane too
        assert client.get(path, headers={"Authorization": f"Bearer {old}"}).status_code == 401, path
        assert client.get(path, headers={"Authorization": f"Bearer {new}"}).status_code in (200, 202), path
    assert "api-token" not in client.get("/me/profile").text  # shown once

    api = client.post("/api/me/token", headers={"Authorization": f"Bearer {new}"})
    assert api.status_code == 200
    newer = api.json()["token"]
    assert client.get("/api/me/profile", headers={"Authorization": f"Bearer {new}"}).status_code == 401

    monkeypatch.setenv("AGGREGATOR_DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        out = CliRunner().invoke(cli, ["users", "token", "TOK@example.org"])
        assert out.exit_code == 0, out.output
        missing = CliRunner().invoke(cli, ["users", "token", "nobody@example.org"])
        assert missing.exit_code != 0 and "no reader" in missing.output
    finally:
        get_settings.cache_clear()
    cli_token = out.output.strip().splitlines()[-1]
    assert client.get("/api/me/profile", headers={"Authorization": f"Bearer {newer}"}).status_code == 401
    assert client.get("/api/me/profile", headers={"Authorization": f"Bearer {cli_token}"}).status_code == 200


# --- deletion -------------------------------------------------------------------------------------


def _rows_of(engine: sa.Engine, reader_id: int) -> dict[str, int]:
    """Rows that name the reader, per table: every table with a ``reader_id`` column, the
    reader's scores, topics and feeds."""
    out: dict[str, int] = {}
    with engine.connect() as conn:
        for table in Base.metadata.sorted_tables:
            if "reader_id" in table.c:
                n = conn.scalar(
                    sa.select(sa.func.count()).select_from(table).where(table.c.reader_id == reader_id)
                )
                out[table.name] = int(n or 0)
        out["scores"] = int(
            conn.scalar(
                sa.select(sa.func.count()).select_from(Score).where(Score.profile == f"reader:{reader_id}")
            )
            or 0
        )
        out["readers"] = int(
            conn.scalar(sa.select(sa.func.count()).select_from(Reader).where(Reader.id == reader_id)) or 0
        )
        out["topics"] = int(
            conn.scalar(sa.select(sa.func.count()).select_from(Topic).where(Topic.created_by == reader_id))
            or 0
        )
        out["feeds"] = int(
            conn.scalar(sa.select(sa.func.count()).select_from(Feed).where(Feed.added_by == reader_id)) or 0
        )
    return out


def test_deleting_an_account_removes_every_row_of_the_reader(
    client: TestClient, engine: sa.Engine, smtp: SmtpServer, settings: Settings
) -> None:
    from test_readers import load_papers

    load_papers(engine)
    created = client.post("/api/readers", json={"email": "gone@example.org"}).json()
    auth = {"Authorization": f"Bearer {created['token']}"}
    stay = client.post("/api/readers", json={"email": "stay@example.org"}).json()
    other = {"Authorization": f"Bearer {stay['token']}"}
    rid = created["id"]
    with session_factory(engine)() as s:
        item_ids = list(s.scalars(sa.select(Item.id).order_by(Item.id).limit(3)))
    assert client.put("/api/me/profile", headers=auth, json={"interests": "diffusion"}).status_code in (
        200,
        202,
    )
    assert client.put("/api/me/settings", headers=auth, json={"weekly_email": True}).status_code == 200
    assert client.post(
        "/api/me/feedback", headers=auth, json={"item_id": item_ids[0], "value": 1}
    ).status_code in (200, 202)
    assert client.put(
        f"/api/me/library/{item_ids[1]}", headers=auth, json={"tags": ["x"], "note": "n"}
    ).status_code in (200, 201)
    assert client.post(f"/api/me/items/{item_ids[2]}/read", headers=auth).status_code in (200, 204)
    for slug in ("mine-only", "shared"):
        topic = {"slug": slug, "name": slug, "phrases": ["diffusion"], "shared": slug == "shared"}
        assert client.post("/api/topics", headers=auth, json=topic).status_code == 201
    assert client.post("/api/me/subscriptions", headers=other, json={"topic": "shared"}).status_code == 201
    assert client.post("/api/me/subscriptions", headers=auth, json={"topic": "mine-only"}).status_code == 201
    with session_factory(engine)() as s, s.begin():
        now = dt.datetime.now(dt.UTC)
        with_items = Feed(
            url="https://blog.example/a.xml", name="A", created_at=now, added_by=rid, reader_added=True
        )
        empty = Feed(
            url="https://blog.example/b.xml", name="B", created_at=now, added_by=rid, reader_added=True
        )
        s.add_all([with_items, empty])
        s.flush()
        s.add(
            ItemSource(item_id=item_ids[0], feed_id=with_items.id, announce_type="", version=0, seen_at=now)
        )
        s.add(Score(profile=f"reader:{rid}", item_id=item_ids[0], score=1.0, why=[], published=now))
        feed_ids = (with_items.id, empty.id)
    _use_link(client, _link_path(_mails_to(smtp, "gone@example.org")[0]))  # a session and a used link
    _ask_signin(client, "gone@example.org")  # an unused link
    send.send_due(engine, settings, now=NOW)  # an email_sends row
    before = _rows_of(engine, rid)
    for table in (
        "profiles",
        "feedback",
        "library_items",
        "library_tags",
        "read_marks",
        "subscriptions",
        "email_sends",
        "signin_links",
        "web_sessions",
        "scores",
        "readers",
        "topics",
        "feeds",
    ):
        assert before.get(table), (table, before)

    assert client.delete("/api/me", headers=auth).status_code == 204
    assert _rows_of(engine, rid) == dict.fromkeys(before, 0)
    assert client.get("/api/me/profile", headers=auth).status_code == 401
    assert client.get("/me/profile", follow_redirects=False).status_code == 303  # its session went too
    with session_factory(engine)() as s:
        kept = {
            t.slug: t.created_by
            for t in s.scalars(sa.select(Topic).where(Topic.slug.in_(["mine-only", "shared"])))
        }
        assert kept == {"shared": None}  # another reader subscribes to it: kept, owned by nobody
        stopped = s.get(Feed, feed_ids[0])
        assert (
            stopped is not None
            and stopped.added_by is None
            and not stopped.scheduled
            and stopped.reader_added
        )
        assert s.get(Feed, feed_ids[1]) is None  # it brought nothing: deleted
        assert s.get(Item, item_ids[0]) is not None  # items are shared: they stay
    assert client.get("/api/me/subscriptions", headers=other).json()[0]["slug"] == "shared"


def test_the_profile_page_deletes_the_account_only_with_the_typed_address(
    client: TestClient, engine: sa.Engine
) -> None:
    client.post("/api/readers", json={"email": "Form@example.org"})
    sign_in(client, "form@example.org")
    csrf = csrf_of(client.get("/me/profile").text)
    wrong = client.post("/me/delete", data={"csrf_token": csrf, "confirm_email": "other@example.org"})
    assert wrong.status_code == 422 and "type your email address" in wrong.text
    assert (
        client.post(
            "/me/delete", data={"csrf_token": "forged", "confirm_email": "form@example.org"}
        ).status_code
        == 403
    )
    done = client.post(
        "/me/delete", data={"csrf_token": csrf, "confirm_email": "FORM@example.org"}, follow_redirects=False
    )
    assert done.status_code == 303
    with session_factory(engine)() as s:
        assert readers.reader_by_email(s, "form@example.org") is None
        assert s.scalar(sa.select(sa.func.count()).select_from(SignInLink)) == 0
    assert client.get("/me/profile", follow_redirects=False).status_code == 303


# --- addresses ---------------------------------------------------------------------------------


def test_addresses_are_unique_whatever_their_case_in_the_database_itself(
    client: TestClient, engine: sa.Engine
) -> None:
    assert (
        client.post("/api/readers", json={"email": "  Ada@Example.ORG "}).json()["email"] == "Ada@example.org"
    )
    for variant in ("ada@example.org", "ADA@EXAMPLE.ORG"):
        resp = client.post("/api/readers", json={"email": variant})
        assert resp.status_code == 409 and "already exists" in resp.json()["detail"]
    # the index refuses a case variant even from code that skips the check
    with session_factory(engine)() as s, pytest.raises(sa.exc.IntegrityError):
        s.add(Reader(email="aDa@example.org", token_hash="t" * 64, feed_token_hash="f" * 64, created_at=NOW))
        s.flush()


def test_a_sign_up_racing_an_uncommitted_one_is_a_conflict(engine: sa.Engine) -> None:
    """Deterministic race: the second sign-up checks before the first commits, so only the
    unique index can stop it, and that must come out as Conflict (409), not a 500."""
    first = session_factory(engine)()
    readers.create_reader(first, "race@example.org")  # flushed, not committed
    outcome: list[object] = []

    def second() -> None:
        with session_factory(engine)() as s:
            try:
                readers.create_reader(s, "RACE@example.org")
                s.commit()
                outcome.append("created")
            except Conflict as err:
                outcome.append(err)

    thread = threading.Thread(target=second)
    thread.start()
    time.sleep(0.5)  # the second now waits on the index (PostgreSQL) or the write lock (SQLite)
    first.commit()
    first.close()
    thread.join(timeout=60)
    assert len(outcome) == 1 and isinstance(outcome[0], Conflict), outcome


def test_concurrent_duplicate_sign_ups_over_http_give_one_201_and_409s(
    engine: sa.Engine, settings: Settings, smtp: SmtpServer
) -> None:
    variants = ["dup@example.org", "DUP@example.org", "Dup@Example.org", "dUp@example.ORG"] * 3
    with serve(settings, engine) as base:
        barrier = threading.Barrier(len(variants))

        def post(address: str) -> int:
            with httpx.Client(base_url=base, timeout=60, verify=tls_context()) as http:
                barrier.wait()
                return http.post("/api/readers", json={"email": address}).status_code

        with concurrent.futures.ThreadPoolExecutor(len(variants)) as pool:
            codes = sorted(pool.map(post, variants))
    assert codes == [201] + [409] * (len(variants) - 1), codes
    with session_factory(engine)() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Reader)) == 1
    deadline = time.monotonic() + 10
    while not smtp.handler.messages and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(smtp.handler.messages) == 1  # one verification mail, for the one account


def test_the_operator_deletes_a_reader_from_the_cli(
    client: TestClient, engine: sa.Engine, database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from aggregator.cli.app import app as cli
    from aggregator.config import get_settings

    token = client.post("/api/readers", json={"email": "cli@example.org"}).json()["token"]
    monkeypatch.setenv("AGGREGATOR_DATABASE_URL", database_url)
    get_settings.cache_clear()
    try:
        kept = CliRunner().invoke(cli, ["users", "delete", "CLI@example.org"], input="n\n")
        assert kept.exit_code != 0 and "nothing deleted" in kept.output
        assert client.get("/api/me/profile", headers={"Authorization": f"Bearer {token}"}).status_code == 200
        listed = CliRunner().invoke(cli, ["users", "list"])
        assert listed.exit_code == 0 and "cli@example.org" in listed.output and "no" in listed.output
        printed = CliRunner().invoke(cli, ["users", "link", "cli@example.org"])
        assert printed.exit_code == 0, printed.output
        link = printed.output.strip().splitlines()[-1]
        assert link.startswith("http://127.0.0.1:8000/signin/link?t=")  # AGGREGATOR_PUBLIC_BASE_URL
        assert _use_link(client, link.removeprefix("http://127.0.0.1:8000")).status_code == 303
        assert client.get("/me/profile").status_code == 200
        done = CliRunner().invoke(cli, ["users", "delete", "CLI@example.org", "--yes"])
        assert done.exit_code == 0 and "deleted" in done.output
    finally:
        get_settings.cache_clear()
    assert client.get("/api/me/profile", headers={"Authorization": f"Bearer {token}"}).status_code == 401
    with session_factory(engine)() as s:
        assert readers.reader_by_email(s, "cli@example.org") is None


def test_the_signin_answer_does_not_wait_for_the_mail(
    engine: sa.Engine, settings: Settings, smtp: SmtpServer
) -> None:
    """Timing would tell known addresses from unknown ones if the answer waited for the lookup
    and the SMTP conversation. Here the SMTP server holds the message until the test lets it
    go, and the answer for the known address comes back over real HTTP meanwhile."""
    with session_factory(engine)() as s:
        readers.create_reader(s, "held@example.org")
        s.commit()
    smtp.handler.block_at = 1
    try:
        with serve(settings, engine) as base, httpx.Client(base_url=base, timeout=60) as http:
            csrf = csrf_of(http.get("/signin").text)
            answer = http.post("/signin", data={"email": "held@example.org", "csrf_token": csrf})
            assert answer.status_code == 200 and "If an account exists" in answer.text
            assert smtp.handler.blocked.wait(30)  # the mail was in flight, after the answer
            assert not smtp.handler.release.is_set()
            other = http.post("/signin", data={"email": "nobody@example.org", "csrf_token": csrf})
            assert other.text == answer.text  # a keep-alive connection is not held by the mail
            smtp.handler.release.set()  # before the server stops: it waits for its tasks
    finally:
        smtp.handler.release.set()
