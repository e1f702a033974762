"""Connection limits uvicorn lacks (issue 14, finding 3): header size, header time, connections.

uvicorn's httptools protocol accepts request headers of any size (httptools concatenates a
header's pieces as they come, so one unterminated 100 MB header costs 100 MB and quadratic
copying) and waits for them forever (its only timeout, ``timeout_keep_alive``, runs between two
requests, not before the first). :class:`GuardedHttpToolsProtocol` is uvicorn's own protocol
with three limits, read from :class:`~aggregator.config.Settings`:

* ``http_max_header_bytes`` (default 64 KiB): the request line and headers of one request.
  More, and the server answers ``431 Request Header Fields Too Large`` and closes.
* ``http_header_timeout_seconds`` (default 10 s): from the first byte of a request (or the connection)
  to the end of its headers. Slower (a slowloris), and the connection is closed.
* ``http_max_connections`` (default 1000, per process): a new connection beyond it evicts the
  oldest connection still waiting for its headers (the slow ones, never a request being
  served); when none is waiting, the new connection is closed at once.

An idle keep-alive connection is closed after uvicorn's ``timeout_keep_alive`` (5 s, kept).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from aggregator.config import Settings, get_settings

_431 = (
    b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 32\r\nconnection: close\r\n\r\nrequest header fields too large\n"
)
_408 = (
    b"HTTP/1.1 408 Request Timeout\r\ncontent-type: text/plain; charset=utf-8\r\n"
    b"content-length: 16\r\nconnection: close\r\n\r\nrequest timeout\n"
)


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a header size cap, a header timeout and a connection
    cap. The limits are class attributes; :func:`protocol_for` makes a subclass with a
    process's settings (the class itself reads :func:`~aggregator.config.get_settings`, for
    ``aggregator api --workers N``, whose worker processes import it by name)."""

    max_header_bytes: int | None = None
    header_timeout: float | None = None
    max_connections: int | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        cls = type(self)
        if cls.max_header_bytes is None or cls.header_timeout is None or cls.max_connections is None:
            settings = get_settings()
            cls.max_header_bytes = settings.http_max_header_bytes
            cls.header_timeout = settings.http_header_timeout_seconds
            cls.max_connections = settings.http_max_connections
        self._waiting_since: float | None = None  # monotonic start of the current header phase
        self._header_bytes = 0
        self._header_timer: asyncio.TimerHandle | None = None

    # --- the header phase ---------------------------------------------------------------------

    def _start_headers(self) -> None:
        self._waiting_since = time.monotonic()
        self._header_bytes = 0
        assert self.header_timeout is not None
        self._header_timer = self.loop.call_later(self.header_timeout, self._header_timed_out)

    def _end_headers(self) -> None:
        self._waiting_since = None
        if self._header_timer is not None:
            self._header_timer.cancel()
            self._header_timer = None

    def _header_timed_out(self) -> None:
        self._header_timer = None
        if self._waiting_since is not None and not self.transport.is_closing():
            self.transport.write(_408)
            self.transport.close()

    def _idle(self) -> bool:
        """No request is being read past its headers or served."""
        return self.cycle is None or self.cycle.response_complete

    # --- protocol callbacks -------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        assert self.max_connections is not None
        if len(self.connections) > self.max_connections and not self._evict_one():
            transport.abort()
            return
        self._start_headers()

    def _evict_one(self) -> bool:
        """Close the connection that has waited longest for its headers; False if none waits."""
        waiting = [
            c
            for c in self.connections
            if c is not self and isinstance(c, GuardedHttpToolsProtocol) and c._waiting_since is not None
        ]
        if not waiting:
            return False
        oldest = min(waiting, key=lambda c: c._waiting_since or 0.0)
        oldest._end_headers()
        oldest.transport.abort()
        oldest.connections.discard(oldest)
        return True

    def data_received(self, data: bytes) -> None:
        if self._waiting_since is None and self._idle():
            self._start_headers()  # the next request on a kept-alive connection
        if self._waiting_since is not None:
            self._header_bytes += len(data)
        super().data_received(data)  # asyncio hands over at most 256 KiB at a time
        assert self.max_header_bytes is not None
        # still in the headers after this piece (a body in the same piece does not count)
        if self._waiting_since is not None and self._header_bytes > self.max_header_bytes:
            self._end_headers()
            if not self.transport.is_closing():
                self.transport.write(_431)
                self.transport.close()

    def on_headers_complete(self) -> None:
        self._end_headers()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._end_headers()
        super().connection_lost(exc)


def protocol_for(settings: Settings) -> type[GuardedHttpToolsProtocol]:
    """A :class:`GuardedHttpToolsProtocol` with the limits of ``settings``."""
    return type(
        "GuardedHttpToolsProtocol",
        (GuardedHttpToolsProtocol,),
        {
            "max_header_bytes": settings.http_max_header_bytes,
            "header_timeout": settings.http_header_timeout_seconds,
            "max_connections": settings.http_max_connections,
        },
    )
