"""Request limits: a cap on request body size (413) and per-client rate limits (429 with
Retry-After), as pure ASGI middleware.

Rate limits use the ``limits`` library (moving window). A client is its API token (hashed;
``Authorization: Bearer``) or, without one, its IP address. Storage is in this process by
default (``local://``, :class:`LocalStorage`); give
``AGGREGATOR_RATE_LIMIT_STORAGE=redis://127.0.0.1:6379`` so that every API instance shares one
budget. Any other storage URI of ``limits`` works too.
"""

from __future__ import annotations

import json
import math
import threading
import time
from collections import deque
from typing import Any

import anyio
import sqlalchemy as sa
from limits import parse_many
from limits.storage import MovingWindowSupport, Storage, storage_from_string
from limits.strategies import MovingWindowRateLimiter

from aggregator.api.client_keys import (
    IPNetwork,
    TokenVerdicts,
    client_address,
    parse_proxies,
    token_hash,
    token_lookup,
)
from aggregator.config import Settings

Scope = dict[str, Any]


class LocalStorage(Storage, MovingWindowSupport):
    """A ``limits`` storage kept in this process (URI ``local://``), expired as it is used.

    ``limits``' own ``memory://`` storage starts a timer thread every 10 ms while requests come
    in, to expire old entries; on the digest endpoint under load that thread cost about a fifth
    of the requests per second (its GIL hand-offs stall the event loop). Here each moving
    window is a deque of acquisition times (POSIX seconds), trimmed when its key is used, and
    keys idle for a whole window are dropped by a sweep at most every ``SWEEP_SECONDS``, run
    inline. Fixed-window counters (``incr``) are kept too, for the other strategies.
    Thread-safe (one lock)."""

    STORAGE_SCHEME = ["local"]
    SWEEP_SECONDS = 60.0

    def __init__(self, uri: str | None = None, wrap_exceptions: bool = False, **options: Any) -> None:
        super().__init__(uri, wrap_exceptions=wrap_exceptions, **options)
        self._windows: dict[str, tuple[deque[float], float]] = {}  # key → (times, expiry seconds)
        self._counters: dict[str, tuple[int, float]] = {}  # key → (count, expires at)
        self._lock = threading.Lock()
        self._sweep_at = time.time() + self.SWEEP_SECONDS

    @property
    def base_exceptions(self) -> type[Exception] | tuple[type[Exception], ...]:
        return ValueError

    def _sweep(self, now: float) -> None:
        if now < self._sweep_at:
            return
        self._sweep_at = now + self.SWEEP_SECONDS
        for key, (times, expiry) in list(self._windows.items()):
            if not times or times[-1] <= now - expiry:
                del self._windows[key]
        for key, (_, until) in list(self._counters.items()):
            if until <= now:
                del self._counters[key]

    def _window(self, key: str, expiry: float, now: float) -> deque[float]:
        times = self._windows.get(key, (None, 0.0))[0]
        if times is None:
            times = deque()
        self._windows[key] = (times, expiry)
        while times and times[0] <= now - expiry:
            times.popleft()
        return times

    def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        now = time.time()
        with self._lock:
            self._sweep(now)
            times = self._window(key, expiry, now)
            if amount > limit or len(times) + amount > limit:
                return False
            times.extend([now] * amount)
            return True

    def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        now = time.time()
        with self._lock:
            times = self._window(key, expiry, now)
            return (times[0], len(times)) if times else (now, 0)

    def incr(self, key: str, expiry: float, amount: int = 1) -> int:
        now = time.time()
        with self._lock:
            self._sweep(now)
            count, until = self._counters.get(key, (0, 0.0))
            if until <= now:
                count, until = 0, now + expiry
            self._counters[key] = (count + amount, until)
            return count + amount

    def get(self, key: str) -> int:
        count, until = self._counters.get(key, (0, 0.0))
        return count if until > time.time() else 0

    def get_expiry(self, key: str) -> float:
        return self._counters.get(key, (0, time.time()))[1]

    def check(self) -> bool:
        return True

    def reset(self) -> int | None:
        with self._lock:
            n = len(self._windows) + len(self._counters)
            self._windows.clear()
            self._counters.clear()
        return n

    def clear(self, key: str) -> None:
        with self._lock:
            self._windows.pop(key, None)
            self._counters.pop(key, None)


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


#: HTTP versions whose requests without ``Content-Length`` and ``Transfer-Encoding`` have no body
_HTTP1 = ("1.0", "1.1")


class BodySizeLimit:
    """Answer 413 when a request body is larger than ``max_bytes`` (declared or streamed)."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is None and b"transfer-encoding" not in headers and scope.get("http_version") in _HTTP1:
            await self.app(scope, receive, send)  # no body (RFC 9112 § 6.3): nothing to count
            return
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


#: Paths no rate limit applies to: health checks, metrics, static files.
EXEMPT = ("/healthz", "/metrics", "/static", "/favicon.ico")
#: Requests that create accounts, mail links or sign in: the strict ``auth`` budget per client
#: address (the mails per address are bounded apart, :mod:`aggregator.accounts.links`).
AUTH_ROUTES = {
    ("POST", "/api/readers"),
    ("POST", "/signin"),
    ("POST", "/signin/email"),
    ("POST", "/signin/link"),
    ("POST", "/signup"),
}


class RateLimit:
    """Per-client rate limits; over a limit → 429 + Retry-After (seconds).

    * ``/api/…``: ``limit`` per API token when the token exists (:class:`TokenVerdicts`), else
      per client address -- random or stale tokens share their address's budget;
    * sign-up and sign-in (:data:`AUTH_ROUTES`): ``auth_limit`` per client address, as well;
    * every other path but :data:`EXEMPT` (the HTML pages): ``html_limit`` per client address.

    The client address is :func:`aggregator.api.client_keys.client_address` (``proxies``: the
    trusted proxies whose ``X-Forwarded-For`` is believed)."""

    def __init__(
        self,
        app: Any,
        limit: str,
        storage_uri: str = "local://",
        prefixes: tuple[str, ...] = ("/api/",),
        html_limit: str | None = None,
        auth_limit: str | None = None,
        proxies: tuple[IPNetwork, ...] = (),
        verdicts: TokenVerdicts | None = None,
    ) -> None:
        self.app = app
        self.limits = parse_many(limit)
        self.html_limits = parse_many(html_limit) if html_limit else []
        self.auth_limits = parse_many(auth_limit) if auth_limit else []
        self.limiter = MovingWindowRateLimiter(storage_from_string(storage_uri))
        self.prefixes = prefixes
        self.proxies = proxies
        self.verdicts = verdicts

    @staticmethod
    def bearer(scope: Scope) -> str | None:
        headers = dict(scope.get("headers") or [])
        auth = headers.get(b"authorization", b"")
        if auth.lower().startswith(b"bearer ") and len(auth) > 7:
            return auth[7:].strip().decode("latin-1")
        return None

    async def _api_key(self, scope: Scope, address: str) -> str:
        """The budget key of an API request: an existing token is its own key; no token, or a
        token no reader has (looked up once, the verdict remembered), the client address."""
        token = self.bearer(scope)
        if token is None or self.verdicts is None or len(token) > 256:
            return f"ip:{address}"
        digest = token_hash(token)
        known = self.verdicts.cached(digest)
        if known is None:
            known = await anyio.to_thread.run_sync(self.verdicts.check, digest)
        return f"token:{digest[:32]}" if known else f"ip:{address}"

    def _first_over(self, limits: list[Any], key: str) -> Any:
        """Charge one hit to ``key`` under each limit; the first limit broken, or None."""
        for item in limits:
            if not self.limiter.hit(item, key):
                return item
        return None

    async def _reject_over(self, send: Any, item: Any, key: str) -> None:
        reset_at, _ = self.limiter.get_window_stats(item, key)
        retry = max(1, math.ceil(reset_at - time.time()))
        await _reject(
            send,
            429,
            f"rate limit exceeded ({item}); retry in {retry} s",
            [(b"retry-after", str(retry).encode())],
        )

    async def _over(self, send: Any, limits: list[Any], key: str) -> bool:
        broken = self._first_over(limits, key)
        if broken is None:
            return False
        await self._reject_over(send, broken, key)
        return True

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if scope["type"] != "http" or path.startswith(EXEMPT):
            await self.app(scope, receive, send)
            return
        address = client_address(scope, self.proxies)
        if (scope["method"], path.rstrip("/") or "/") in AUTH_ROUTES and await self._over(
            send, self.auth_limits, f"auth:{address}"
        ):
            return
        if path.startswith(self.prefixes):
            if await self._over(send, self.limits, await self._api_key(scope, address)):
                return
        elif await self._over(send, self.html_limits, f"html:{address}"):
            return
        await self.app(scope, receive, send)


def rate_limit_options(settings: Settings, engine: sa.Engine) -> dict[str, Any]:
    """The keyword arguments of :class:`RateLimit` for an app on ``settings`` and ``engine``."""
    return {
        "limit": settings.rate_limit,
        "storage_uri": settings.rate_limit_storage,
        "html_limit": settings.html_rate_limit,
        "auth_limit": settings.auth_rate_limit,
        "proxies": parse_proxies(settings.trusted_proxies),
        "verdicts": TokenVerdicts(token_lookup(engine)),
    }
