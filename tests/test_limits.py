"""API hardening: request body size (413) and per-token rate limits (429 with Retry-After)."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from aggregator.api.app import create_app
from aggregator.config import Settings


def _client(tmp_path: Path, **kw: object) -> TestClient:
    feeds = tmp_path / "feeds.toml"
    feeds.write_text("")
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'l.db'}", feeds_file=feeds, **kw)  # type: ignore[arg-type]
    return TestClient(create_app(settings))


def test_rate_limit_per_token_answers_429_with_retry_after(tmp_path: Path) -> None:
    with _client(tmp_path, rate_limit="5/minute") as client:
        alice = {"Authorization": "Bearer alice-token"}
        codes = [client.get("/api/digest", headers=alice).status_code for _ in range(6)]
        assert codes == [200] * 5 + [429]
        limited = client.get("/api/digest", headers=alice)
        assert limited.status_code == 429 and 1 <= int(limited.headers["retry-after"]) <= 60
        assert "rate limit exceeded" in limited.json()["detail"]
        # another token has its own budget; pages outside /api are not limited
        assert client.get("/api/digest", headers={"Authorization": "Bearer bob-token"}).status_code == 200
        assert client.get("/healthz").status_code == 200


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
