"""The library, read state, vote history, exports and imports (issue 13) over HTTP on real
arXiv papers of 2026-06-15, on SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import bibtexparser
import pytest
import rispy
import sqlalchemy as sa
from conftest import populated_database
from fastapi.testclient import TestClient
from helpers import glued_separators, sign_in
from test_me_api import make_settings, ranked_papers, signup
from test_readers import load_papers

from aggregator.api.app import create_app
from aggregator.store.db import session_factory
from aggregator.store.tables import Item

DAY = "2026-06-15"
DATA = Path(__file__).parent / "data"


@pytest.fixture
def client(
    request: pytest.FixtureRequest, engine: sa.Engine, database_url: str, tmp_path: Path
) -> Iterator[TestClient]:
    """The app on the real papers of 2026-06-15, ranked for the default profile (built once a
    session, then copied: :func:`conftest.populated_database`)."""
    populated_database(request, "me_api", ranked_papers)
    settings = make_settings(database_url, tmp_path, rate_limit="100000/second")
    with TestClient(create_app(settings, engine)) as c:
        yield c


def ids_by_arxiv(engine: sa.Engine, *arxiv_ids: str) -> list[int]:
    with session_factory(engine)() as s:
        found = dict(s.execute(sa.select(Item.arxiv_id, Item.id).where(Item.arxiv_id.in_(arxiv_ids))).all())
    return [found[a] for a in arxiv_ids]


def test_save_tag_note_page_and_remove(client: TestClient, engine: sa.Engine) -> None:
    auth, _ = signup(client, "lib@example.com")
    digest = client.get("/api/me/digest", headers=auth, params={"date": DAY, "limit": 30}).json()["items"]
    ids = [i["id"] for i in digest[:25]]
    for n, item_id in enumerate(ids):
        tags = ["llm", "to read"] if n % 2 else ["vision"]
        resp = client.put(
            f"/api/me/library/{item_id}", headers=auth, json={"tags": tags, "note": f"note {n}"}
        )
        assert resp.status_code == 200, resp.text
        assert resp.json()["item"]["title"] == digest[n]["title"]
    # editing keeps what is left out, and de-duplicates tags ignoring case
    resp = client.put(
        f"/api/me/library/{ids[0]}", headers=auth, json={"tags": ["Vision", "vision", " new  tag "]}
    )
    assert resp.json()["tags"] == ["Vision", "new tag"] and resp.json()["note"] == "note 0"
    seen, cursor = [], None
    while True:
        page = client.get(
            "/api/me/library", headers=auth, params={"limit": 7, **({"cursor": cursor} if cursor else {})}
        ).json()
        assert "items" in page, page
        seen += [e["item_id"] for e in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == sorted(ids) and len(seen) == len(set(seen))
    tagged = client.get("/api/me/library", headers=auth, params={"tag": "LLM", "limit": 200}).json()
    assert {e["item_id"] for e in tagged["items"]} == set(ids[1::2])
    assert {"tag": "llm", "count": 12} in tagged["tags"]
    assert client.delete(f"/api/me/library/{ids[1]}", headers=auth).status_code == 204
    assert client.delete(f"/api/me/library/{ids[1]}", headers=auth).status_code == 404
    assert client.put("/api/me/library/2147483000", headers=auth, json={}).status_code == 404


@pytest.mark.parametrize(
    ("body", "words"),
    [
        ({"tags": [f"t{i}" for i in range(21)]}, "at most 20 tags"),
        ({"tags": ["x" * 65]}, "longer than 64"),
        ({"tags": [""]}, "must not be empty"),
        ({"tags": [3]}, "string"),
        ({"note": "n" * 2001}, "at most 2000 characters"),
    ],
)
def test_bounds_are_a_clear_422(client: TestClient, body: dict, words: str) -> None:
    auth, _ = signup(client, "bounds@example.com")
    item_id = client.get("/api/digest", params={"date": DAY, "limit": 1}).json()["items"][0]["id"]
    resp = client.put(f"/api/me/library/{item_id}", headers=auth, json=body)
    assert resp.status_code == 422
    assert words in json.dumps(resp.json()["detail"])


def test_readers_cannot_touch_each_others_library(client: TestClient) -> None:
    ada, _ = signup(client, "ada@example.com")
    bob, _ = signup(client, "bob@example.com")
    item_id = client.get("/api/digest", params={"date": DAY, "limit": 1}).json()["items"][0]["id"]
    client.put(f"/api/me/library/{item_id}", headers=ada, json={"tags": ["secret"], "note": "mine"})
    client.post(f"/api/me/items/{item_id}/read", headers=ada)
    assert client.get("/api/me/library", headers=bob).json()["items"] == []
    assert client.delete(f"/api/me/library/{item_id}", headers=bob).status_code == 404
    assert "secret" not in client.get("/api/me/library.bib", headers=bob).text
    digest = client.get("/api/me/digest", headers=bob, params={"date": DAY, "limit": 5}).json()["items"]
    assert not [i for i in digest if i["id"] == item_id and i["read"]]
    assert client.get("/api/me/library", headers=ada).json()["items"][0]["note"] == "mine"
    assert client.get("/api/me/library").status_code == 401


def test_read_state_reaches_both_digest_paths(client: TestClient, engine: sa.Engine) -> None:
    auth, _ = signup(client, "reader@example.com")
    first = client.get("/api/me/digest", headers=auth, params={"date": DAY, "limit": 10}).json()
    assert first["profile"] == "default" and not any(i["read"] for i in first["items"])
    target = first["items"][3]["id"]
    assert client.post(f"/api/me/items/{target}/read", headers=auth).json() == {
        "item_id": target,
        "read": True,
    }
    again = client.get("/api/me/digest", headers=auth, params={"date": DAY, "limit": 10}).json()
    assert [i["id"] for i in again["items"] if i["read"]] == [target]
    # a vote makes the reader's own scores: the served (precomputed) path carries the flag too
    client.post("/api/me/feedback", headers=auth, json={"item_id": first["items"][0]["id"], "value": 1})
    served = client.get("/api/me/digest", headers=auth, params={"date": DAY, "limit": 500}).json()
    assert served["profile"].startswith("reader:")
    assert [i["id"] for i in served["items"] if i["read"]] == [target]
    client.post(f"/api/me/items/{target}/unread", headers=auth)
    served = client.get("/api/me/digest", headers=auth, params={"date": DAY, "limit": 500}).json()
    assert not any(i["read"] for i in served["items"])


def test_feedback_history_newest_first_with_cursor(client: TestClient) -> None:
    auth, _ = signup(client, "votes@example.com")
    items = client.get("/api/digest", params={"date": DAY, "limit": 5}).json()["items"]
    for n, it in enumerate(items):
        client.post("/api/me/feedback", headers=auth, json={"item_id": it["id"], "value": 1 if n % 2 else -1})
    page = client.get("/api/me/feedback", headers=auth, params={"limit": 3}).json()
    rest = client.get(
        "/api/me/feedback", headers=auth, params={"limit": 3, "cursor": page["next_cursor"]}
    ).json()
    got = [v["item_id"] for v in page["items"] + rest["items"]]
    assert got == [it["id"] for it in reversed(items)] and rest["next_cursor"] is None
    assert page["items"][0]["value"] == -1 and page["items"][0]["item"]["title"] == items[-1]["title"]
    assert client.get("/api/me/feedback", headers=auth, params={"cursor": "garbage!"}).status_code == 422


def test_bibtex_export_parses_back_to_the_same_ids(client: TestClient) -> None:
    auth, _ = signup(client, "bib@example.com")
    items = client.get("/api/digest", params={"date": DAY, "limit": 40}).json()["items"]
    for it in items:
        client.put(f"/api/me/library/{it['id']}", headers=auth, json={"tags": ["day"], "note": "a {brace"})
    resp = client.get("/api/me/library.bib", headers=auth)
    assert resp.status_code == 200 and resp.headers["content-type"].startswith("application/x-bibtex")
    parsed = bibtexparser.parse_string(resp.text)
    assert not parsed.failed_blocks
    assert {e.fields_dict["eprint"].value for e in parsed.entries} == {it["arxiv_id"] for it in items}
    first = next(e for e in parsed.entries if e.fields_dict["eprint"].value == items[0]["arxiv_id"])
    assert first.fields_dict["archivePrefix"].value == "arXiv"
    assert first.fields_dict["url"].value == f"https://arxiv.org/abs/{items[0]['arxiv_id']}"
    assert first.fields_dict["year"].value == "2026" and first.fields_dict["primaryClass"].value
    assert " and ".join(items[0]["authors"]) == first.fields_dict["author"].value
    assert len({e.key for e in parsed.entries}) == len(items)
    ris = rispy.loads(client.get("/api/me/library.ris", headers=auth).text)
    assert {r["doi"] for r in ris} == {f"10.48550/arXiv.{it['arxiv_id']}" for it in items}
    csl = client.get("/api/me/library.json", headers=auth).json()
    assert {c["number"] for c in csl} == {it["arxiv_id"] for it in items} and csl[0]["keyword"] == "day"
    one = client.get("/api/me/library.bib", headers=auth, params={"tag": "nothing"})
    assert bibtexparser.parse_string(one.text).entries == []


@pytest.mark.slow
def test_import_zotero_and_arxiv_bibtex(client: TestClient, engine: sa.Engine) -> None:
    auth, _ = signup(client, "zotero@example.com")
    with (DATA / "zotero_export.bib").open("rb") as fh:
        resp = client.post("/api/me/library/import", headers=auth, files={"file": ("My Library.bib", fh)})
    assert resp.status_code == 200, resp.text
    out = resp.json()
    assert (out["format"], out["entries"], out["imported"], out["matched"]) == ("bibtex", 5, 2, 1)
    assert out["pending"] == ["2606.99999"]
    assert [(x["line"], x["reason"]) for x in out["left_out"]] == [
        (36, "no arXiv id, and no stored item has this title")
    ]
    coin, tsa, drl = ids_by_arxiv(engine, "2606.13685", "2606.13714", "2606.13682")
    lib = {e["item_id"]: e for e in client.get("/api/me/library", headers=auth).json()["items"]}
    assert set(lib) == {coin, tsa, drl}
    assert "Computer Science - Computation and Language" in lib[coin]["tags"]
    with (DATA / "arxiv_export.bib").open("rb") as fh:
        resp = client.post(
            "/api/me/library/import?as_seeds=true", headers=auth, files={"file": ("x.bib", fh)}
        )
    assert resp.json()["imported"] == 1 and resp.json()["seeds"] == ["2606.13733"]
    assert "2606.13733" in client.get("/api/me/profile", headers=auth).json()["seed_papers"]


def test_import_ris_and_csl_and_malformed_files(client: TestClient, engine: sa.Engine) -> None:
    auth, _ = signup(client, "ris@example.com")
    (coin,) = ids_by_arxiv(engine, "2606.13685")
    ris = "TY  - GEN\nTI  - The Coin Flip Judge?\nDO  - 10.48550/arXiv.2606.13685\nKW  - judges\nER  - \n"
    resp = client.post("/api/me/library/import", headers=auth, files={"file": ("a.ris", ris.encode())})
    assert resp.json()["imported"] == 1
    csl = json.dumps([{"type": "article", "title": "X", "URL": "https://arxiv.org/abs/2606.13714v2"}])
    resp = client.post("/api/me/library/import", headers=auth, files={"file": ("a.json", csl.encode())})
    assert resp.json()["imported"] == 1
    assert coin in {
        e["item_id"]
        for e in client.get("/api/me/library", headers=auth, params={"tag": "judges"}).json()["items"]
    }
    bad = {
        "broken.bib": ("@misc{a,\n title={ok},\n}\n\n@article{b,\n title = {never closed\n", "line 5"),
        "broken.ris": ("TY  - GEN\nTI  - a\nTY  - GEN\nER  - \n", "line 3"),
        "broken.json": ('[{"title": "a"},\n {"title": }]', "line 2"),
    }
    for name, (text, where) in bad.items():
        resp = client.post("/api/me/library/import", headers=auth, files={"file": (name, text.encode())})
        assert resp.status_code == 422, name
        assert where in resp.json()["detail"][0]["msg"], resp.json()


def test_form_endpoints_answer_json_or_redirect_and_open_marks_read(client: TestClient) -> None:
    auth, body = signup(client, "forms@example.com")
    sign_in(client, "forms@example.com")
    me = client.get("/me", params={"date": DAY, "limit": 5})
    assert (
        "☆ Save" in me.text and "Mark read" in me.text and "more like this" in me.text and "/pdf/" in me.text
    )
    csrf = re.search(r'name="csrf_token" value="([^"]+)"', me.text).group(1)  # type: ignore[union-attr]
    item_id = int(re.search(r'data-item-id="(\d+)"', me.text).group(1))  # type: ignore[union-attr]
    resp = client.post(
        f"/me/library/{item_id}/save",
        data={"csrf_token": csrf, "remove": "false"},
        headers={"Accept": "application/json"},
    )
    assert resp.json() == {"item_id": item_id, "saved": True}
    resp = client.post(
        f"/me/items/{item_id}/read", data={"csrf_token": csrf, "next": "/me"}, follow_redirects=False
    )
    assert resp.status_code == 303 and resp.headers["location"].endswith(f"#item-{item_id}")
    assert client.post(f"/me/items/{item_id}/read", data={"csrf_token": "wrong"}).status_code == 403
    library = client.get("/library")
    assert not glued_separators(library.text)
    assert (
        f'id="item-{item_id}"' in library.text and "✓" not in library.text and "read</span>" in library.text
    )
    other = int(re.findall(r'data-item-id="(\d+)"', me.text)[1])
    resp = client.get(f"/me/items/{other}/open", follow_redirects=False)
    assert resp.status_code == 303 and resp.headers["location"].startswith("https://arxiv.org/abs/")
    read = [
        i["id"]
        for i in client.get("/api/me/digest", headers=auth, params={"date": DAY, "limit": 5}).json()["items"]
        if i["read"]
    ]
    assert sorted(read) == sorted([item_id, other])
    bib = client.get("/me/library.bib")
    assert bib.status_code == 200 and "archivePrefix" in bib.text


def test_cli_library_import(
    engine: sa.Engine, database_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from typer.testing import CliRunner

    from aggregator.accounts import readers
    from aggregator.cli.app import app

    load_papers(engine)
    with session_factory(engine)() as s:
        readers.create_reader(s, "cli@example.com")
        s.commit()
    monkeypatch.setenv("AGGREGATOR_DATABASE_URL", database_url)
    monkeypatch.setenv("AGGREGATOR_FEEDS_FILE", str(tmp_path / "none.toml"))
    (tmp_path / "none.toml").write_text("")
    args = ["library", "import", "cli@example.com", str(DATA / "zotero_export.bib"), "--no-fetch"]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert (
        "5 bibtex entries: 2 imported by arXiv id" in result.output and "1 matched by title" in result.output
    )
    assert "line 36: Attention is All you Need: no arXiv id" in result.output
    bad = tmp_path / "bad.bib"
    bad.write_text("@misc{a,\n title = {never closed\n")
    result = CliRunner().invoke(app, ["library", "import", "cli@example.com", str(bad)])
    assert result.exit_code == 1 and "line 1" in result.output
