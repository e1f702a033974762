"""API hardening: request body size (413) and per-token rate limits (429 with Retry-After)."""

from __future__ import annotations

from pathlib import Path

from fastapi.testclient import TestClient

from aggregator.api.app import create_app
from aggregator.settings import Settings


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
