"""API hardening: request body size (413) and rate limits (429 with Retry-After): per existing
API token, per client address for unknown tokens (random tokens do not get fresh budgets), on
the HTML pages and on sign-up, with X-Forwarded-For believed from trusted proxies only."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from aggregator.api.app import create_app
from aggregator.config import Settings


def _client(tmp_path: Path, peer: str = "127.0.0.1", **kw: object) -> TestClient:
    feeds = tmp_path / "feeds.toml"
    feeds.write_text("")
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'l.db'}", feeds_file=feeds, **kw)  # type: ignore[arg-type]
    return TestClient(create_app(settings), client=(peer, 50000))


def _token(client: TestClient, email: str) -> dict[str, str]:
    resp = client.post("/api/readers", json={"email": email})
    assert resp.status_code == 201, resp.text
    return {"Authorization": f"Bearer {resp.json()['token']}"}


def test_rate_limit_per_token_answers_429_with_retry_after(tmp_path: Path) -> None:
    with _client(tmp_path, rate_limit="5/minute") as client:
        alice, bob = _token(client, "alice@example.org"), _token(client, "bob@example.org")
        codes = [client.get("/api/digest", headers=alice).status_code for _ in range(6)]
        assert codes == [200] * 5 + [429]
        limited = client.get("/api/digest", headers=alice)
        assert limited.status_code == 429 and 1 <= int(limited.headers["retry-after"]) <= 60
        assert "rate limit exceeded" in limited.json()["detail"]
        # another real token has its own budget; health checks are never limited
        assert client.get("/api/digest", headers=bob).status_code == 200
        assert client.get("/healthz").status_code == 200


def test_random_tokens_share_their_address_budget(tmp_path: Path) -> None:
    """The attack: a fresh random Bearer token per request used to get a fresh budget each."""
    import secrets

    with _client(tmp_path, rate_limit="10/minute", auth_rate_limit="100/minute") as client:
        alice = _token(client, "alice@example.org")
        codes = []
        for _ in range(30):
            random_token = {"Authorization": f"Bearer {secrets.token_urlsafe(24)}"}
            codes.append(client.get("/api/digest", headers=random_token).status_code)
        assert codes[:9] == [200] * 9 and set(codes[10:]) == {429}, codes  # the sign-up took one
        assert client.get("/api/digest").status_code == 429  # no token: the same address budget
        assert client.get("/api/digest", headers=alice).status_code == 200  # a real token: its own
    with _client(tmp_path, peer="127.0.0.2", rate_limit="10/minute") as other:
        assert other.get("/api/digest").status_code == 200  # another address: its own budget


def test_html_pages_and_sign_up_are_limited(tmp_path: Path) -> None:
    with _client(tmp_path, html_rate_limit="5/minute", auth_rate_limit="3/hour") as client:
        assert [client.get("/feeds").status_code for _ in range(6)] == [200] * 5 + [429]
        signups = [client.post("/api/readers", json={"email": f"r{i}@ex.org"}).status_code for i in range(4)]
        assert signups == [201, 201, 201, 429]
        assert client.get("/healthz").status_code == 200


def test_forwarded_for_is_believed_from_trusted_proxies_only(tmp_path: Path) -> None:
    kw = {"html_rate_limit": "2/minute", "trusted_proxies": ["10.0.0.0/8"]}
    with _client(tmp_path, peer="10.1.2.3", **kw) as proxy:  # type: ignore[arg-type]
        for client_ip in ("203.0.113.7", "203.0.113.8"):  # two clients behind the proxy
            fwd = {"X-Forwarded-For": f"6.6.6.6, {client_ip}"}  # the left part is the client's own
            assert [proxy.get("/feeds", headers=fwd).status_code for _ in range(3)] == [200, 200, 429]
        forged = {"X-Forwarded-For": "1.1.1.1, 203.0.113.7"}  # a forged left part changes nothing
        assert proxy.get("/feeds", headers=forged).status_code == 429
    with _client(tmp_path, peer="198.51.100.9", **kw) as direct:  # type: ignore[arg-type]
        # not a trusted proxy: its X-Forwarded-For is ignored, each request is the peer's
        codes = [direct.get("/feeds", headers={"X-Forwarded-For": f"203.0.113.{i}"}) for i in range(3)]
        assert [c.status_code for c in codes] == [200, 200, 429]


def test_oversized_bodies_get_413(tmp_path: Path) -> None:
    with _client(tmp_path, max_request_bytes=1000) as client:
        resp = client.post("/api/readers", content=b"x" * 5000, headers={"content-type": "application/json"})
        assert resp.status_code == 413 and "larger than 1000 bytes" in resp.json()["detail"]

        def chunks():  # no Content-Length: counted while streaming
            for _ in range(10):
                yield b"y" * 500

        streamed = client.post("/api/readers", content=chunks(), headers={"content-type": "application/json"})
        assert streamed.status_code == 413


def test_local_storage_moving_window_without_threads(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """``local://`` keeps limits' moving-window semantics with no timer thread: N hits pass in
    any window of the period, the next waits until the oldest leaves it, idle keys are swept."""
    import threading

    from limits import parse
    from limits.storage import storage_from_string
    from limits.strategies import MovingWindowRateLimiter

    from aggregator.api import limits as mod

    clock = [1_000_000.0]
    monkeypatch.setattr(mod.time, "time", lambda: clock[0])
    storage = storage_from_string("local://")
    assert isinstance(storage, mod.LocalStorage)
    limiter, item = MovingWindowRateLimiter(storage), parse("3/minute")
    threads = threading.active_count()
    for t in (0.0, 10.0, 20.0):
        clock[0] = 1_000_000.0 + t
        assert limiter.hit(item, "alice")
    assert not limiter.hit(item, "alice") and limiter.hit(item, "bob")
    start, count = limiter.get_window_stats(item, "alice")
    assert count == 0 and start == 1_000_060.0  # the oldest hit (t=0) leaves the window at t=60
    clock[0] = 1_000_060.5
    assert limiter.hit(item, "alice") and not limiter.hit(item, "alice")
    assert threading.active_count() == threads
    clock[0] += 2 * mod.LocalStorage.SWEEP_SECONDS  # every window idle: the sweep drops the keys
    assert limiter.hit(item, "carol")
    assert set(k.split("/")[1] for k in storage._windows) == {"carol"}  # type: ignore[attr-defined]
    assert storage.incr("n", 10) == 1 and storage.incr("n", 10) == 2 and storage.get("n") == 2
    clock[0] += 11
    assert storage.get("n") == 0 and storage.incr("n", 10) == 1
