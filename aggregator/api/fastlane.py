"""A fast lane for the hottest route, ``GET /api/me/digest``, as pure ASGI middleware.

FastAPI's per-request machinery (routing through every route, dependency solving, query
validation by pydantic) costs about as much as serving the digest itself from stored JSON
(:mod:`aggregator.digest.served`). This middleware sits inside the body-size and rate limits and
answers the *plain* requests itself: ``GET /api/me/digest`` with only ``date`` (``YYYY-MM-DD``,
1900–2999), ``days`` (1–31) and ``limit`` (1–500) given at most once each as plain decimal
numbers, a ``Authorization: Bearer`` header of a known reader who has precomputed scores in
the window. Everything else — a missing or unknown token, an odd or invalid parameter,
``group=topic``, a reader without scores — goes on to the FastAPI route unchanged, which stays
the documented, validating and general path (and gives the 401s and 422s). Both paths call
:func:`aggregator.digest.served.serve_digest` on the app's one row source (``app.state.rows``,
:mod:`aggregator.digest.row_source`), so they answer the same bytes; when the lane passes a
request on, it leaves what it read in the request's state (:data:`PROBE`) and the route uses
that instead of reading it again.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any
from urllib.parse import parse_qsl

from aggregator.accounts import readers
from aggregator.api.paging import ServedPaging
from aggregator.config import Settings
from aggregator.digest import served

PATH = "/api/me/digest"
_NUMBER = re.compile(r"[0-9]{1,3}")
_DATE = re.compile(r"(19|2[0-9])[0-9]{2}-[0-9]{2}-[0-9]{2}")
_BOUNDS = {"days": (1, 31), "limit": (1, 500)}

Scope = dict[str, Any]
#: key in the request's ``state`` under which the lane leaves what it read when it does not
#: answer: ``(token_hash, day, days, limit, served.Answer)``, so the route does not read it again
PROBE = "served_digest_probe"


def plain_query(query_string: bytes) -> dict[str, Any] | None:
    """``{"day", "days", "limit"}`` of a plain digest query, or None when anything is unusual
    (then FastAPI validates it and answers)."""
    try:
        pairs = parse_qsl(query_string.decode("ascii"), keep_blank_values=True, strict_parsing=False)
    except UnicodeDecodeError:
        return None
    out: dict[str, Any] = {"day": None, "days": 1, "limit": 50}
    seen: set[str] = set()
    for name, value in pairs:
        if name in seen:
            return None
        seen.add(name)
        if name == "date":
            if not _DATE.fullmatch(value):
                return None
            try:
                out["day"] = dt.date.fromisoformat(value)
            except ValueError:
                return None
        elif name in _BOUNDS:
            low, high = _BOUNDS[name]
            if not _NUMBER.fullmatch(value) or not low <= int(value) <= high:
                return None
            out[name] = int(value)
        else:
            return None
    return out


def bearer_token(scope: Scope) -> str | None:
    """The credentials of the ``Authorization: Bearer`` header (as FastAPI's ``HTTPBearer``
    reads them), or None."""
    for name, value in scope.get("headers") or ():
        if name == b"authorization":
            scheme, _, token = value.decode("latin-1").partition(" ")
            return token if scheme.lower() == "bearer" and token else None
    return None


class DigestFastLane:
    """Answer plain ``GET /api/me/digest`` requests from :mod:`aggregator.digest.served` (see the
    module docstring); pass every other request to ``app``."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http" and scope["path"] == PATH and scope["method"] == "GET":
            body = await self._serve(scope)
            if body is not None:
                await send(
                    {
                        "type": "http.response.start",
                        "status": 200,
                        "headers": [
                            (b"content-type", b"application/json"),
                            (b"content-length", str(len(body)).encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": body})
                return
        await self.app(scope, receive, send)

    @staticmethod
    async def _serve(scope: Scope) -> bytes | None:
        query = plain_query(scope.get("query_string", b""))
        token = bearer_token(scope)
        if query is None or token is None:
            return None
        state = scope["app"].state
        settings: Settings = state.settings
        token_hash = readers.hash_token(token)
        query["paging"] = ServedPaging(state.engine, settings, query["days"], query["limit"])
        answer = await served.serve_digest(state.rows, token_hash, settings.tz, settings.timezone, **query)
        if answer.body is None:  # the route answers; it reuses what was read here (no query twice)
            probe = (token_hash, query["day"], query["days"], query["limit"], answer)
            scope.setdefault("state", {})[PROBE] = probe
        return answer.body
