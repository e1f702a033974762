"""Request limits: a cap on request body size (413) and per-client rate limits (429 with
Retry-After), as pure ASGI middleware.

Rate limits use the ``limits`` library (moving window). A client is its API token (hashed;
``Authorization: Bearer``) or, without one, its IP address. Storage is in memory per process by
default; give ``AGGREGATOR_RATE_LIMIT_STORAGE=redis://127.0.0.1:6379`` so that every API
instance shares one budget.
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from typing import Any

from limits import parse_many
from limits.storage import storage_from_string
from limits.strategies import MovingWindowRateLimiter

Scope = dict[str, Any]


async def _reject(
    send: Any, status: int, message: str, headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    body = json.dumps({"detail": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodySizeLimit:
    """Answer 413 when a request body is larger than ``max_bytes`` (declared or streamed)."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.max_bytes:
            await _reject(send, 413, f"request body larger than {self.max_bytes} bytes")
            return
        seen = 0
        too_large = False

        async def counting_receive() -> dict[str, Any]:
            nonlocal seen, too_large
            if too_large:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:  # stop reading; the answer becomes a 413 below
                    too_large = True
                    return {"type": "http.request", "body": b"", "more_body": False}
            return message

        replaced = False

        async def guarded_send(message: dict[str, Any]) -> None:
            nonlocal replaced
            if too_large:
                if not replaced:
                    replaced = True
                    await _reject(send, 413, f"request body larger than {self.max_bytes} bytes")
                return
            await send(message)

        await self.app(scope, counting_receive, guarded_send)


class RateLimit:
    """Per-client rate limits on paths under ``prefixes``; over the limit → 429 + Retry-After (s)."""

    def __init__(
        self, app: Any, limit: str, storage_uri: str = "memory://", prefixes: tuple[str, ...] = ("/api/",)
    ) -> None:
        self.app = app
        self.limits = parse_many(limit)
        self.limiter = MovingWindowRateLimiter(storage_from_string(storage_uri))
        self.prefixes = prefixes

    @staticmethod
    def client_key(scope: Scope) -> str:
        headers = dict(scope.get("headers") or [])
        auth = headers.get(b"authorization", b"")
        if auth.lower().startswith(b"bearer ") and len(auth) > 7:
            return "token:" + hashlib.sha256(auth[7:].strip()).hexdigest()[:32]
        client = scope.get("client") or ("unknown", 0)
        return f"ip:{client[0]}"

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefixes):
            await self.app(scope, receive, send)
            return
        key = self.client_key(scope)
        for item in self.limits:
            if not self.limiter.hit(item, key):
                reset_at, _ = self.limiter.get_window_stats(item, key)
                retry = max(1, math.ceil(reset_at - time.time()))
                await _reject(
                    send,
                    429,
                    f"rate limit exceeded ({item}); retry in {retry} s",
                    [(b"retry-after", str(retry).encode())],
                )
                return
        await self.app(scope, receive, send)
