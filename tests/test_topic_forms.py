"""Topic filters made on the page and through the API (issue 17), on real arXiv papers of four
days (SQLite and PostgreSQL): the /topics form creates and edits a filter, previews what it
would have matched over the last 7 days (checked against the one matcher run on the raw
papers), shows refusals with the reader's input kept, derives slugs; a reader's filter stays
private (404 for everyone else, listed nowhere) until its owner shares it."""

from __future__ import annotations

import functools
import html
import re
import zoneinfo
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import bulk_papers
from fastapi.testclient import TestClient
from helpers import sign_in
from test_me_api import make_settings, signup
from test_readers import load_papers

from aggregator.accounts import topic_filters
from aggregator.accounts.builtin_topics import DEFAULT_TOPICS
from aggregator.accounts.topic_filters import ItemFacts, match_topic, normal_name, phrase_pattern
from aggregator.api.app import create_app
from aggregator.digest.topic_preview import PREVIEW_SHOW, PREVIEW_WORK, preview_topic
from aggregator.store.db import session_factory
from aggregator.store.tables import Subscription, Topic
from aggregator.types import TopicFilter

#: the newest day is the digest's default day: the 7-day window is 06-09 … 06-15
DAYS = ("2026-06-07", "2026-06-08", "2026-06-12", "2026-06-15")
IN_WINDOW = ("2026-06-12", "2026-06-15")
FEED = "arXiv cs.LG"
RL = TopicFilter("", "RL, LLMs", phrases=("reinforcement learning", "language model"), negative=("survey",))


@pytest.fixture
def client(engine: sa.Engine, database_url: str, tmp_path: Path) -> Iterator[TestClient]:
    load_papers(engine, DAYS, FEED)
    with TestClient(create_app(make_settings(database_url, tmp_path), engine)) as c:
        yield c


def _csrf(text: str) -> str:
    found = re.search(r'name="csrf_token" value="([^"]+)"', text)
    assert found, "no CSRF token on the page"
    return found.group(1)


def _sign_in(client: TestClient, email: str) -> str:
    """Sign in through the mailed link's pages; returns the CSRF token of the reader's forms."""
    client.cookies.clear()
    sign_in(client, email)
    return _csrf(client.get("/topics").text)


def _expected(topic: TopicFilter) -> tuple[set[str], set[str], set[str]]:
    """arXiv ids the matcher accepts among the raw papers inside and outside the window, and
    those listed on days on both sides (left out of the first two: which date the store
    keeps is not this test's subject)."""
    inside: set[str] = set()
    outside: set[str] = set()
    days_of: dict[str, set[str]] = {}
    for day in DAYS:
        for p in bulk_papers(day):
            days_of.setdefault(p["id"], set()).add(day)
            facts = ItemFacts(
                " ".join(p["title"].split()),
                " ".join((p.get("summary") or "").split()),
                p["authors"],
                p["categories"],
                (FEED,),
            )
            if match_topic(topic, facts):
                (inside if day in IN_WINDOW else outside).add(p["id"])
    both = {i for i, d in days_of.items() if d & set(IN_WINDOW) and d - set(IN_WINDOW)}
    return inside - both, outside - both, (inside | outside) & both


def _window_papers() -> tuple[int, int]:
    """Distinct papers of the window's days: all of them, and those listed only there."""
    ids = {p["id"] for d in IN_WINDOW for p in bulk_papers(d)}
    elsewhere = {p["id"] for d in DAYS if d not in IN_WINDOW for p in bulk_papers(d)}
    return len(ids), len(ids - elsewhere)


def _arxiv_id(url: str) -> str:
    return url.rsplit("/", 1)[1]


def test_api_preview_is_the_matcher_over_the_last_7_days(client: TestClient, engine: sa.Engine) -> None:
    auth, _ = signup(client, "p@example.com")
    inside, outside, both = _expected(RL)
    assert len(inside) > PREVIEW_SHOW and outside  # the data can show both bounds
    body = {
        "name": "RL, LLMs",
        "phrases": ["reinforcement learning", "language model"],
        "negative": ["survey"],
    }
    resp = client.post("/api/topic-preview", headers=auth, json=body)
    assert resp.status_code == 200, resp.text
    p = resp.json()
    assert (p["first_day"], p["last_day"], p["days"]) == ("2026-06-09", "2026-06-15", 7)
    most, least = _window_papers()
    assert p["in_window"] == p["scanned"] and least <= p["scanned"] <= most
    assert not p["partial"] and len(p["items"]) == PREVIEW_SHOW
    shown = {_arxiv_id(i["url"]) for i in p["items"]}
    assert shown - both <= inside and not shown & outside
    assert len(inside) <= p["matched"] <= len(inside) + len(both)
    assert all(i["sources"] == [FEED] and i["title"] for i in p["items"])
    published = [i["published"] for i in p["items"]]
    assert published == sorted(published, reverse=True)
    # "all": the phrase AND the category; the count is the matcher's on the raw papers
    narrow = TopicFilter(
        "", "RL for agents", phrases=("reinforcement learning",), categories=("cs.AI",), match="all"
    )
    inside_ai, outside_ai, both_ai = _expected(narrow)
    assert inside_ai and outside_ai and len(inside_ai) < PREVIEW_SHOW
    resp = client.post(
        "/api/topic-preview",
        headers=auth,
        json={
            "name": narrow.name,
            "phrases": ["reinforcement learning"],
            "categories": ["cs.AI"],
            "match": "all",
        },
    )
    assert {_arxiv_id(i["url"]) for i in resp.json()["items"]} - both_ai == inside_ai
    assert resp.json()["matched"] == len(resp.json()["items"])
    # nothing was saved, and the preview refuses what saving would refuse
    with session_factory(engine)() as s:
        assert (
            s.scalar(sa.select(sa.func.count()).select_from(Topic).where(Topic.created_by.is_not(None))) == 0
        )
    bad = client.post("/api/topic-preview", headers=auth, json={"name": "x", "negative": ["survey"]})
    assert bad.status_code == 422 and "at least one" in bad.json()["detail"][0]["msg"]
    assert client.post("/api/topic-preview", json=body).status_code == 401


def test_preview_reads_a_bounded_number_of_items(engine: sa.Engine) -> None:
    load_papers(engine, DAYS, FEED)

    with session_factory(engine)() as s:
        p = preview_topic(s, RL, zoneinfo.ZoneInfo("UTC"), scan=100, show=5)
    assert p.scanned == 100 and p.in_window > 100 and p.partial
    assert len(p.items) == 5 and 5 <= p.matched <= 100
    # many phrases: fewer items read, so that items × phrases stays bounded
    many = TopicFilter("", "many", phrases=tuple(f"phrase {i}" for i in range(199)), negative=("survey",))
    with session_factory(engine)() as s:
        p = preview_topic(s, many, zoneinfo.ZoneInfo("UTC"))
    assert p.scanned == PREVIEW_WORK // 200 and p.partial


def test_api_derives_a_missing_slug(client: TestClient) -> None:
    auth, _ = signup(client, "s@example.com")
    body = {"name": "Graph Neural Networks (GNNs) — théorie", "phrases": ["graph neural network"]}
    first = client.post("/api/topics", headers=auth, json=body)
    assert first.status_code == 201, first.text
    assert first.json()["slug"] == "graph-neural-networks-gnns-theorie"
    assert not first.json()["shared"] and first.json()["mine"]
    again = client.post("/api/topics", headers=auth, json={**body, "slug": ""})
    assert again.status_code == 201 and again.json()["slug"] == "graph-neural-networks-gnns-theorie-2"
    only_symbols = client.post("/api/topics", headers=auth, json={"name": "∑∂", "phrases": ["x"]})
    assert only_symbols.json()["slug"] == "topic"
    taken = client.post(
        "/api/topics", headers=auth, json={**body, "slug": "graph-neural-networks-gnns-theorie"}
    )
    assert taken.status_code == 409


def test_form_creates_then_edits_a_filter(client: TestClient) -> None:
    auth, _ = signup(client, email := "f@example.com")
    anonymous = client.post("/topics/new", data={"name": "x", "phrases": "x"})
    assert anonymous.status_code == 401 and "text/html" in anonymous.headers["content-type"]
    assert 'action="/topics/new"' not in client.get("/topics").text  # the form is for readers
    csrf = _sign_in(client, email)
    page = client.get("/topics")
    assert 'action="/topics/new"' in page.text and 'name="phrases"' in page.text
    form = {
        "csrf_token": csrf,
        "action": "save",
        "name": "Offline RL",
        "slug": "",
        "description": "Learning from logged data",
        "phrases": "offline reinforcement learning\n  batch reinforcement learning \n\n",
        "categories": "cs.LG",
        "authors": "",
        "sources": "",
        "negative": "survey",
        "match": "any",
        "subscribe": "true",
    }
    saved = client.post("/topics/new", data=form, follow_redirects=False)
    assert (
        saved.status_code == 303 and saved.headers["location"] == "/topics?saved=offline-rl#topic-offline-rl"
    )
    listed = client.get(saved.headers["location"])
    assert "Saved “Offline RL”: only you can see it" in listed.text
    card = listed.text[listed.text.index('id="topic-offline-rl"') :]
    assert "yours, private" in card[:2000] and 'href="/topics/offline-rl/edit"' in card[:2000]
    stored = client.get("/api/topics/offline-rl", headers=auth).json()
    assert stored["phrases"] == ["offline reinforcement learning", "batch reinforcement learning"]
    assert stored["categories"] == ["cs.LG"] and stored["negative"] == ["survey"]
    assert (
        stored["subscribed"] and not stored["shared"] and stored["description"] == "Learning from logged data"
    )

    edit = client.get("/topics/offline-rl/edit")
    assert edit.status_code == 200 and 'action="/topics/offline-rl/edit"' in edit.text
    assert "offline reinforcement learning\nbatch reinforcement learning</textarea>" in edit.text
    changed = {
        **form,
        "name": "Offline RL (no robots)",
        "negative": "survey\nrobot",
        "match": "all",
        "shared": "true",
    }
    changed.pop("subscribe")
    resp = client.post("/topics/offline-rl/edit", data=changed, follow_redirects=False)
    assert resp.status_code == 303 and resp.headers["location"].startswith("/topics?saved=offline-rl")
    after = client.get("/api/topics/offline-rl").json()  # shared now: anonymous callers see it
    assert after["name"] == "Offline RL (no robots)" and after["negative"] == ["survey", "robot"]
    assert after["match"] == "all" and after["shared"] and after["slug"] == "offline-rl"
    assert "yours, shared" in client.get("/topics").text
    # the edit form's preview uses the edited criteria, and saves nothing
    preview = client.post("/topics/offline-rl/edit", data={**changed, "action": "preview", "name": "Draft"})
    assert preview.status_code == 200 and 'id="preview"' in preview.text
    assert client.get("/api/topics/offline-rl").json()["name"] == "Offline RL (no robots)"
    # a forged form is refused; a built-in filter has no edit form
    assert client.post("/topics/new", data={**form, "csrf_token": "forged"}).status_code == 403
    assert client.get("/topics/agents/edit").status_code == 403
    gone = client.post("/topics/offline-rl/delete", data={"csrf_token": csrf}, follow_redirects=False)
    assert gone.status_code == 303 and client.get("/api/topics/offline-rl").status_code == 404


def test_form_preview_lists_the_week_matches(client: TestClient) -> None:
    auth, _ = signup(client, email := "v@example.com")
    csrf = _sign_in(client, email)
    inside, outside, _ = _expected(RL)
    form = {
        "csrf_token": csrf,
        "action": "preview",
        "name": "RL",
        "phrases": "reinforcement learning\nlanguage model",
        "negative": "survey",
    }
    resp = client.post("/topics/new", data=form)
    assert resp.status_code == 200, resp.text
    text = resp.text
    heading = re.search(r"<h2>(\d+) items matched in the last 7 days</h2>", text)
    assert heading and int(heading.group(1)) >= len(inside)
    assert "09 Jun – 15 Jun 2026" in text and f"the newest {PREVIEW_SHOW} shown" in text
    links = re.findall(r'<li data-item-id="\d+"><a href="https://arxiv.org/abs/([^"]+)"', text)
    assert len(links) == PREVIEW_SHOW and not set(links) & outside
    # the form keeps what was typed, and nothing was saved
    assert 'value="RL"' in text and ">reinforcement learning\nlanguage model</textarea>" in text
    assert not [t for t in client.get("/api/topics", headers=auth).json() if t["mine"]]
    nothing = client.post("/topics/new", data={**form, "phrases": "zzqx unheard of phrase"})
    assert "0 items matched" in nothing.text and "Nothing in the last 7 days" in nothing.text


def test_form_refusals_keep_the_input(client: TestClient) -> None:
    auth, _ = signup(client, email := "e@example.com")
    csrf = _sign_in(client, email)
    base = {
        "csrf_token": csrf,
        "action": "save",
        "name": "Only negatives <b>",
        "negative": "survey\nbenchmark",
    }
    for action in ("save", "preview"):
        resp = client.post("/topics/new", data={**base, "action": action})
        assert resp.status_code == 422 and "text/html" in resp.headers["content-type"]
        assert "at least one phrase, category, author or source" in resp.text
        assert (
            'value="Only negatives &lt;b&gt;"' in resp.text and ">survey\nbenchmark</textarea>" in resp.text
        )
        assert 'id="form-error"' in resp.text and '<details class="card new-topic" open>' in resp.text
    bad_slug = client.post("/topics/new", data={**base, "phrases": "x", "slug": "Not A Slug"})
    assert bad_slug.status_code == 422 and "slug" in bad_slug.text and 'value="Not A Slug"' in bad_slug.text
    made = client.post("/topics/new", data={**base, "phrases": "x", "slug": "mine"}, follow_redirects=False)
    assert made.status_code == 303
    taken = client.post("/topics/new", data={**base, "phrases": "y", "slug": "mine"})
    assert taken.status_code == 409 and "already exists" in taken.text and ">y</textarea>" in taken.text
    too_many = client.post("/topics/new", data={**base, "phrases": "\n".join(f"p{i}" for i in range(201))})
    assert too_many.status_code == 422 and "at most 200" in too_many.text
    assert html.escape("p200") in too_many.text  # the 201 lines are all still there
    edit = client.post("/topics/mine/edit", data={**base, "phrases": ""})
    assert edit.status_code == 422 and 'action="/topics/mine/edit"' in edit.text
    assert client.get("/api/topics/mine", headers=auth).json()["phrases"] == ["x"]  # unchanged


def test_a_filter_is_private_until_shared(client: TestClient, engine: sa.Engine) -> None:
    a, _ = signup(client, "owner@example.com")
    b, _ = signup(client, "other@example.com")
    body = {"name": "Secret project", "phrases": ["mixture of experts"]}
    created = client.post("/api/topics", headers=a, json=body).json()
    slug = created["slug"]
    assert slug == "secret-project" and not created["shared"]
    assert client.post("/api/me/subscriptions", headers=a, json={"topic": slug}).status_code in (201, 202)

    def seen_by_b() -> bool:
        return slug in {t["slug"] for t in client.get("/api/topics", headers=b).json()}

    # B and anonymous callers: it does not exist (404, never 403), anywhere
    assert slug in {t["slug"] for t in client.get("/api/topics", headers=a).json()}
    assert not seen_by_b() and slug not in {t["slug"] for t in client.get("/api/topics").json()}
    assert client.get(f"/api/topics/{slug}", headers=b).status_code == 404
    assert client.get(f"/api/topics/{slug}").status_code == 404
    assert client.post("/api/me/subscriptions", headers=b, json={"topic": slug}).status_code == 404
    assert (
        client.put(f"/api/topics/{slug}", headers=b, json={"name": "x", "phrases": ["x"]}).status_code == 404
    )
    assert client.delete(f"/api/topics/{slug}", headers=b).status_code == 404
    assert client.delete(f"/api/me/subscriptions/{slug}", headers=b).status_code == 404
    csrf = _sign_in(client, "other@example.com")
    page = client.get("/topics")
    assert (
        page.status_code == 200
        and f'id="topic-{slug}"' not in page.text
        and "Secret project" not in page.text
    )
    assert client.get(f"/topics/{slug}/edit").status_code == 404
    assert client.post("/topics/subscribe", data={"csrf_token": csrf, "topic": slug}).status_code == 404
    edit = client.post(f"/topics/{slug}/edit", data={"csrf_token": csrf, "name": "mine", "phrases": "x"})
    assert edit.status_code == 404
    assert client.post(f"/topics/{slug}/delete", data={"csrf_token": csrf}).status_code == 404

    # shared: B sees it and may follow it, but still not change it (403 now that B can see it)
    shared = client.put(f"/api/topics/{slug}", headers=a, json={**body, "shared": True})
    assert shared.status_code == 200 and shared.json()["shared"]
    assert seen_by_b() and client.get(f"/api/topics/{slug}").status_code == 200
    assert client.post("/api/me/subscriptions", headers=b, json={"topic": slug}).status_code in (201, 202)
    assert f'id="topic-{slug}"' in client.get("/topics").text
    assert client.get(f"/topics/{slug}/edit").status_code == 403
    assert (
        client.put(f"/api/topics/{slug}", headers=b, json={"name": "x", "phrases": ["x"]}).status_code == 403
    )
    # an edit that leaves `shared` out keeps it shared
    assert client.put(f"/api/topics/{slug}", headers=a, json={**body, "name": "Open project"}).json()[
        "shared"
    ]

    # unshared again: B's subscription ends, the owner's stays
    assert not client.put(f"/api/topics/{slug}", headers=a, json={**body, "shared": False}).json()["shared"]
    assert not seen_by_b() and client.get(f"/api/topics/{slug}", headers=b).status_code == 404
    assert client.get("/api/me/subscriptions", headers=b).json() == []
    assert [t["slug"] for t in client.get("/api/me/subscriptions", headers=a).json()] == [slug]
    with session_factory(engine)() as s:
        assert s.scalar(sa.select(sa.func.count()).select_from(Subscription)) == 1


@functools.cache
def _phrase_in(phrase: str, text: str) -> bool:
    """One phrase searched in one text (each filter comes in both modes: searched once)."""
    return bool(phrase_pattern(phrase).search(text))


def _match_phrase_by_phrase(topic: TopicFilter, item: ItemFacts) -> bool:
    """The matching rules of docs/readers.md written out plainly, one phrase search at a time."""
    if any(_phrase_in(n, item.text) for n in topic.negative):
        return False
    phrases = [_phrase_in(p, item.text) for p in topic.phrases]
    groups = [
        (topic.categories, {c.casefold() for c in item.categories}, str.casefold),
        (topic.authors, {normal_name(a) for a in item.authors}, normal_name),
        (topic.sources, {normal_name(x) for x in item.sources}, normal_name),
    ]
    hits = [(wanted, any(norm(w) in have for w in wanted)) for wanted, have, norm in groups]
    if topic.match == "all":
        given = topic.phrases or any(wanted for wanted, _ in hits)
        return bool(given) and all(phrases) and all(hit for wanted, hit in hits if wanted)
    return any(phrases) or any(hit for _, hit in hits)


@pytest.mark.slow
def test_the_matcher_follows_its_rules_on_real_papers() -> None:
    """``match_topic`` searches all of a filter's phrases in one pass; on 1,100 real papers and
    every built-in filter (in both modes), plus filters with many phrases, blanks and hyphens,
    it decides exactly as the rules searched phrase by phrase."""
    papers = [p for d in DAYS for p in bulk_papers(d)]
    items = [
        ItemFacts(p["title"], p.get("summary") or "", p["authors"], p["categories"], (FEED,)) for p in papers
    ]
    topics = [t for t, _ in DEFAULT_TOPICS]
    topics += [
        TopicFilter(t.slug, t.name, t.phrases, t.categories, t.authors, t.sources, t.negative, "all")
        for t in topics
    ]
    topics += [
        RL,
        TopicFilter(
            "", "many", phrases=tuple(f"{w} model" for w in ("diffusion", "language", "world", "reward"))
        ),
        TopicFilter("", "hyphens", phrases=("multi-agent", "vision language"), negative=("  ", "survey")),
        TopicFilter("", "only blank", phrases=(" ",), match="all"),
        TopicFilter("", "gans", phrases=("gan", "llm"), categories=("cs.CV",), match="all"),
    ]
    decided = 0
    for topic in topics:
        for item in items:
            got = match_topic(topic, item)
            assert got == _match_phrase_by_phrase(topic, item), (topic.name, item.title)
            decided += got
    assert decided > 1000  # the filters match plenty: the comparison is not all "no"
    _phrase_in.cache_clear()
    assert topic_filters.any_phrase_pattern.cache_info().currsize <= topic_filters.ANY_PHRASE_CACHE_SIZE
