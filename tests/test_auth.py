"""Authentication and isolation: every ``/api/me`` route refuses a missing or wrong bearer token
(401 + ``WWW-Authenticate: Bearer``); no reader can read or change another's data; the HTML
pages' signed session cookie, CSRF checks, sign-out, and the stored signing key."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import populated_database
from fastapi.testclient import TestClient
from helpers import csrf_of, hidden_field, sign_in, signin_link
from test_me_api import DAY, make_settings, ranked_papers, signup
from test_readers import load_papers

from aggregator.api.app import create_app
from aggregator.api.auth import CSRF_COOKIE, SESSION_COOKIE
from aggregator.store.db import session_factory
from aggregator.store.tables import AppSecret, Feedback, Score, Subscription

ME_ROUTES = [
    ("GET", "/api/me/digest", None),
    ("GET", "/api/me/profile", None),
    ("PUT", "/api/me/profile", {"interests": "x"}),
    ("GET", "/api/me/settings", None),
    ("PUT", "/api/me/settings", {"weekly_email": True}),
    ("POST", "/api/me/feedback", {"item_id": 1, "value": 1}),
    ("GET", "/api/me/subscriptions", None),
    ("POST", "/api/me/subscriptions", {"topic": "agents"}),
    ("DELETE", "/api/me/subscriptions/agents", None),
    ("POST", "/api/me/feed-token", None),
    ("POST", "/api/topics", {"slug": "x", "name": "x", "phrases": ["x"]}),
    ("PUT", "/api/topics/agents", {"name": "x", "phrases": ["x"]}),
    ("DELETE", "/api/topics/agents", None),
    ("POST", "/api/topic-preview", {"name": "x", "phrases": ["x"]}),
]


@pytest.fixture
def app_parts(
    request: pytest.FixtureRequest, engine: sa.Engine, database_url: str, tmp_path: Path
) -> Iterator[tuple[TestClient, sa.Engine]]:
    """The app on the real papers of 2026-06-15 ranked for the default profile (test_me_api's
    database, built once a session, then copied)."""
    populated_database(request, "me_api", ranked_papers)
    settings = make_settings(database_url, tmp_path)
    with TestClient(create_app(settings, engine)) as c:
        yield c, engine


@pytest.mark.parametrize(("method", "path", "body"), ME_ROUTES)
def test_every_reader_route_needs_a_valid_bearer_token(
    app_parts: tuple[TestClient, sa.Engine], method: str, path: str, body: dict | None
) -> None:
    client, _ = app_parts
    auth, created = signup(client, "owner@example.com")
    for headers in (
        {},
        {"Authorization": "Bearer wrong-token"},
        {"Authorization": "Bearer "},
        {"Authorization": f"Basic {auth['Authorization'].split()[1]}"},
        {"Authorization": f"Bearer {created['feed_token']}"},  # a feed token is not an API token
    ):
        resp = client.request(method, path, json=body, headers=headers)
        assert resp.status_code == 401, (headers, resp.text)
        assert resp.headers["www-authenticate"].startswith("Bearer")
        assert resp.json()["detail"]


def test_no_reader_can_touch_another_readers_data(app_parts: tuple[TestClient, sa.Engine]) -> None:
    client, engine = app_parts
    a, a_body = signup(client, "a@example.com")
    b, b_body = signup(client, "b@example.com")
    a_id, b_id = a_body["id"], b_body["id"]
    items = client.get("/api/digest", params={"date": DAY, "limit": 50}).json()["items"]

    # profiles and settings are one's own
    client.put("/api/me/profile", headers=a, json={"interests": "secret plans of A"})
    client.put("/api/me/settings", headers=a, json={"timezone": "Europe/Paris"})
    assert client.get("/api/me/profile", headers=b).json()["interests"] == ""
    assert client.get("/api/me/settings", headers=b).json()["timezone"] == "UTC"

    # subscriptions: B cannot remove A's
    assert client.post("/api/me/subscriptions", headers=a, json={"topic": "agents"}).status_code == 201
    assert client.delete("/api/me/subscriptions/agents", headers=b).status_code == 404
    assert [t["slug"] for t in client.get("/api/me/subscriptions", headers=a).json()] == ["agents"]
    assert client.get("/api/me/subscriptions", headers=b).json() == []

    # feedback only changes the voter's own votes and scores
    assert (
        client.post("/api/me/feedback", headers=a, json={"item_id": items[30]["id"], "value": 1}).status_code
        == 200
    )
    with session_factory(engine)() as s:
        a_scores = dict(
            s.execute(sa.select(Score.item_id, Score.score).where(Score.profile == f"reader:{a_id}")).all()
        )
    assert a_scores
    for value in (1, -1):
        resp = client.post("/api/me/feedback", headers=b, json={"item_id": items[30]["id"], "value": -value})
        assert resp.status_code == 200
    with session_factory(engine)() as s:
        after = dict(
            s.execute(sa.select(Score.item_id, Score.score).where(Score.profile == f"reader:{a_id}")).all()
        )
        votes = {(f.reader_id, f.item_id): f.value for f in s.scalars(sa.select(Feedback))}
    assert after == a_scores
    assert votes == {(a_id, items[30]["id"]): 1, (b_id, items[30]["id"]): 1}
    a_digest = client.get("/api/me/digest", headers=a, params={"date": DAY}).json()
    assert next(i for i in a_digest["items"] if i["id"] == items[30]["id"])["feedback"] == 1

    # feed tokens: B's gives B's digest, never A's; A's API token is no feed token
    b_feed = client.get("/api/me/digest.atom", params={"token": b_body["feed_token"]})
    assert (
        b_feed.status_code == 200
        and b"b@example.com" in b_feed.content
        and b"a@example.com" not in b_feed.content
    )
    assert (
        client.get("/api/me/digest.atom", params={"token": a["Authorization"].split()[1]}).status_code == 401
    )
    client.post("/api/me/feed-token", headers=b)  # B rotating leaves A's feed alone
    assert client.get("/api/me/digest.atom", params={"token": a_body["feed_token"]}).status_code == 200

    # a topic filter A made and shared: B may subscribe, but not edit or delete it
    topic = {"slug": "a-topic", "name": "A's", "phrases": ["reasoning"], "shared": True}
    assert client.post("/api/topics", headers=a, json=topic).status_code == 201
    assert client.post("/api/me/subscriptions", headers=b, json={"topic": "a-topic"}).status_code == 201
    edit = client.put("/api/topics/a-topic", headers=b, json={"name": "B's now", "phrases": ["x"]})
    assert edit.status_code == 403 and "another reader" in edit.json()["detail"]
    assert client.delete("/api/topics/a-topic", headers=b).status_code == 403
    assert client.get("/api/topics/a-topic").json()["name"] == "A's"
    listed = {t["slug"]: t for t in client.get("/api/topics", headers=b).json()}
    assert listed["a-topic"]["subscribed"] and not listed["a-topic"]["mine"]
    with session_factory(engine)() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Subscription)) == 2


def _csrf_of(html: str) -> str:
    return csrf_of(html)


def test_pages_sign_in_csrf_and_sign_out(app_parts: tuple[TestClient, sa.Engine]) -> None:
    client, _ = app_parts
    auth, body = signup(client, "web@example.com")
    token = auth["Authorization"].split()[1]
    for path in ("/me", "/me/profile"):
        resp = client.get(path, follow_redirects=False)
        assert resp.status_code == 303 and resp.headers["location"].startswith("/signin?next=")

    page = client.get("/signin")
    assert page.status_code == 200 and client.cookies.get(CSRF_COOKIE)
    no_csrf = client.post("/signin", data={"email": "web@example.com"}, follow_redirects=False)
    assert no_csrf.status_code == 403
    bad = client.post("/signin", data={"email": "not an address", "csrf_token": _csrf_of(page.text)})
    assert bad.status_code == 422 and "valid" in bad.text
    link = client.get(signin_link(client.app, "web@example.com"))
    assert link.status_code == 200 and "web@example.com" in link.text
    assert client.post("/signin/link", data={"t": "x", "csrf_token": "forged"}).status_code == 403
    ok = client.post(
        "/signin/link",
        data={"t": hidden_field(link.text, "t"), "csrf_token": _csrf_of(link.text)},
        follow_redirects=False,
    )
    assert ok.status_code == 303 and ok.headers["location"] == "/me"
    cookie = ok.cookies.get(SESSION_COOKIE)
    assert cookie and token not in cookie
    set_cookie = ok.headers["set-cookie"].lower()
    assert "httponly" in set_cookie and "samesite=lax" in set_cookie
    # no open redirect: an already signed-in visitor of /signin goes to a local path only
    away = client.get("/signin", params={"next": "//evil.example/"}, follow_redirects=False)
    assert away.status_code == 303 and away.headers["location"] == "/me"

    me = client.get("/me", params={"date": DAY})
    assert me.status_code == 200 and "web@example.com" in me.text and "👍" in me.text
    csrf = _csrf_of(me.text)
    item_id = client.get("/api/digest", params={"date": DAY}).json()["items"][5]["id"]
    for bad in ("", "forged"):
        resp = client.post("/me/feedback", data={"item_id": item_id, "value": 1, "csrf_token": bad})
        assert resp.status_code == 403
    good = client.post(
        "/me/feedback",
        data={"item_id": item_id, "value": 1, "csrf_token": csrf, "next": f"/me?date={DAY}"},
        follow_redirects=False,
    )
    assert good.status_code == 303 and good.headers["location"] == f"/me?date={DAY}#item-{item_id}"
    assert (
        client.post("/me/feedback", data={"item_id": 10**9, "value": 1, "csrf_token": csrf}).status_code
        == 404
    )
    assert (
        next(
            i
            for i in client.get("/api/me/digest", headers=auth, params={"date": DAY}).json()["items"]
            if i["id"] == item_id
        )["feedback"]
        == 1
    )

    # the profile form saves, and shows errors instead of failing
    profile = client.post(
        "/me/profile",
        data={
            "csrf_token": csrf,
            "interests": "robots",
            "keywords": "grasping\nlocomotion",
            "timezone": "UTC",
            "email_time": "09:15",
            "email_weekday": "2",
            "weekly_email": "true",
        },
        follow_redirects=False,
    )
    assert profile.status_code == 303
    assert client.get("/api/me/profile", headers=auth).json()["keywords"] == ["grasping", "locomotion"]
    assert client.get("/api/me/settings", headers=auth).json()["email_time"] == "09:15"
    bad = client.post("/me/profile", data={"csrf_token": csrf, "seed_papers": "my blog", "timezone": "UTC"})
    assert bad.status_code == 422 and "not an arXiv id" in bad.text
    rotated = client.post("/me/feed-token", data={"csrf_token": csrf})
    assert rotated.status_code == 200 and "/api/me/digest.atom?token=" in rotated.text
    assert client.get("/api/me/digest.atom", params={"token": body["feed_token"]}).status_code == 401

    # a tampered cookie is no session
    payload, _, signature = cookie.rpartition(".")
    other = "B" if payload[0] == "A" else "A"  # a changed payload under the old signature
    for forged in (payload + "." + signature[::-1], other + payload[1:] + "." + signature, "garbage"):
        client.cookies.clear()
        client.cookies.set(SESSION_COOKIE, forged)
        assert client.get("/me", follow_redirects=False).status_code == 303
    client.cookies.clear()
    sign_in(client, "web@example.com")
    csrf = _csrf_of(client.get("/me/profile").text)
    assert client.post("/signout", data={"csrf_token": "forged"}).status_code == 403
    out = client.post("/signout", data={"csrf_token": csrf}, follow_redirects=False)
    assert out.status_code == 303 and SESSION_COOKIE in out.headers["set-cookie"]
    assert client.get("/me", follow_redirects=False).status_code == 303


def test_signing_key_is_stored_once_and_shared(engine: sa.Engine, database_url: str, tmp_path: Path) -> None:
    load_papers(engine)
    settings = make_settings(database_url, tmp_path)
    with TestClient(create_app(settings, engine)) as first:
        signup(first, "k@example.com")
        sign_in(first, "k@example.com")
        cookie = first.cookies.get(SESSION_COOKIE)
    with session_factory(engine)() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(AppSecret)) == 1
    # a restart, or a second instance on the same database, accepts the session
    with TestClient(create_app(settings, engine)) as second:
        second.cookies.set(SESSION_COOKIE, cookie)
        assert second.get("/me/profile").status_code == 200
    # an explicit AGGREGATOR_SECRET_KEY takes precedence (and so the old cookie is refused)
    keyed = make_settings(database_url, tmp_path, secret_key="another-key-" + "x" * 20)
    with TestClient(create_app(keyed, engine)) as third:
        third.cookies.set(SESSION_COOKIE, cookie)
        assert third.get("/me/profile", follow_redirects=False).status_code == 303
