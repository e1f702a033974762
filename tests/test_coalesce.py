"""Request coalescing (:mod:`aggregator.digest.coalesce`): look-ups made while a read of their
group is in flight go out together when it returns, each answered with its own value, and a
failed or cancelled read leaves nobody waiting. Then the served digest on real papers (SQLite
and PostgreSQL): concurrent requests answer exactly what each would alone, on PostgreSQL in
fewer statements than requests (``/metrics`` counts them), and a change made between two
rounds shows in the next."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from fastapi.testclient import TestClient
from prometheus_client import REGISTRY
from test_me_api import DAY, signup
from test_served import client  # noqa: F401  (fixture: the app on real papers, ranked)

from aggregator.accounts import readers
from aggregator.api.paging import ServedPaging
from aggregator.digest import served
from aggregator.digest.coalesce import Coalescer


class Store:
    """A read that holds each call until released: ``calls`` the keys of each read."""

    def __init__(self, fail_on: int | None = None) -> None:
        self.calls: list[list[str]] = []
        self.fail_on = fail_on
        self.release = asyncio.Event()

    async def read(self, group: Any, keys: list[str]) -> dict[str, str]:
        self.calls.append(list(keys))
        await self.release.wait()
        if self.fail_on == len(self.calls):
            raise RuntimeError(f"read {len(self.calls)} failed")
        return {k: f"{group}:{k}" for k in keys if k != "unknown"}


async def _settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_lookups_made_during_a_read_go_out_together_each_with_its_own_value() -> None:
    async def scenario() -> tuple[list[Any], list[list[str]]]:
        store = Store()
        one: Coalescer[str, str | None] = Coalescer(store.read, lambda: None)
        first = asyncio.ensure_future(one.get("w", "a"))
        await _settle()
        later = [asyncio.ensure_future(one.get("w", k)) for k in ("b", "c", "b", "unknown")]
        other = asyncio.ensure_future(one.get("v", "z"))  # another group: not held back
        await _settle()
        assert store.calls == [["a"], ["z"]]
        store.release.set()
        got = await asyncio.gather(first, *later, other)
        return got, store.calls

    got, calls = asyncio.run(scenario())
    assert got == ["w:a", "w:b", "w:c", "w:b", None, "v:z"]
    assert calls == [["a"], ["z"], ["b", "c", "unknown"]]  # "b" asked twice, read once


def test_a_failed_read_fails_its_waiters_and_the_group_reads_again() -> None:
    async def scenario() -> tuple[list[Any], str, list[list[str]]]:
        store = Store(fail_on=2)
        one: Coalescer[str, str | None] = Coalescer(store.read, lambda: None)
        first = asyncio.ensure_future(one.get("w", "a"))
        await _settle()
        waiting = [asyncio.ensure_future(one.get("w", k)) for k in ("b", "c")]
        store.release.set()
        got = await asyncio.gather(first, *waiting, return_exceptions=True)
        again = await one.get("w", "d")  # the group is free again
        return got, again, store.calls

    got, again, calls = asyncio.run(scenario())
    assert got[0] == "w:a"
    assert [str(e) for e in got[1:]] == ["read 2 failed"] * 2
    assert again == "w:d" and calls == [["a"], ["b", "c"], ["d"]]


def test_a_cancelled_waiter_leaves_the_others_answered_and_batches_hold_the_limit() -> None:
    async def scenario() -> tuple[list[Any], list[list[str]]]:
        store = Store()
        one: Coalescer[str, str | None] = Coalescer(store.read, lambda: None, limit=2)
        first = asyncio.ensure_future(one.get("w", "a"))
        await _settle()
        waiting = [asyncio.ensure_future(one.get("w", k)) for k in ("b", "c", "d", "e", "f")]
        await _settle()
        waiting[1].cancel()  # its client went away
        store.release.set()
        got = await asyncio.gather(first, *waiting, return_exceptions=True)
        return got, store.calls

    got, calls = asyncio.run(scenario())
    assert got[0] == "w:a" and got[1] == "w:b" and isinstance(got[2], asyncio.CancelledError)
    assert got[3:] == ["w:d", "w:e", "w:f"]
    assert calls == [["a"], ["b", "c"], ["d", "e"], ["f"]]


def test_concurrent_digest_requests_answer_what_each_would_alone(client: TestClient) -> None:  # noqa: F811
    """Readers with their own profiles ask for their digests at the same time, twice each:
    every answer is byte for byte the one the reader gets alone over HTTP; on PostgreSQL the
    reader states were read in fewer statements than requests. A read mark made between two
    rounds shows in the next round for that reader only."""
    interests = ("reasoning in large language models", "speech recognition", "image segmentation")
    auths = []
    for n, text in enumerate(interests):
        auth, _ = signup(client, f"c{n}@example.com")
        assert client.put("/api/me/profile", headers=auth, json={"interests": text}).is_success
        auths.append(auth)
    params = {"date": DAY, "limit": 10}
    state: Any = client.app.state  # type: ignore[attr-defined]
    hashes = [readers.hash_token(a["Authorization"].split()[1]) for a in auths]

    def alone() -> list[bytes]:
        answers = [client.get("/api/me/digest", headers=a, params=params) for a in auths]
        assert all(r.status_code == 200 and r.json()["profile"].startswith("reader:") for r in answers)
        return [r.content for r in answers]

    async def together() -> list[bytes | None]:
        s = state.settings
        paging = ServedPaging(state.engine, s, 1, 10)
        day = served.dt.date.fromisoformat(DAY)
        asks = [
            served.serve_digest(state.rows, h, s.tz, s.timezone, day=day, limit=10, paging=paging)
            for h in hashes * 2
        ]
        return [answer.body for answer in await asyncio.gather(*asks)]

    def counted() -> tuple[float, float]:
        return tuple(  # type: ignore[return-value]
            REGISTRY.get_sample_value(f"aggregator_reader_state_{name}_total") or 0.0
            for name in ("reads", "lookups")
        )

    expected = alone()
    before = counted()
    assert client.portal.call(together) == expected * 2  # type: ignore[union-attr]
    statements, keys = (after - then for after, then in zip(counted(), before, strict=True))
    if state.rows.one_statement:  # PostgreSQL's pool: the first request reads alone, the
        assert (statements, keys) == (2, 4)  # five that came meanwhile in one statement (3 readers)
    else:  # SQLite reads in the process, each request before the next starts
        assert (statements, keys) == (6, 6)

    top = json.loads(expected[1])["items"][0]["id"]
    assert client.post(f"/api/me/items/{top}/read", headers=auths[1]).is_success
    changed = client.portal.call(together)  # type: ignore[union-attr]
    assert changed[0] == expected[0] and changed[2] == expected[2]
    assert changed[1] != expected[1] and changed[4] == changed[1]
    item = json.loads(changed[1] or b"{}")["items"][0]
    assert item["id"] == top and item["read"] is True
    assert alone() == changed[:3]
