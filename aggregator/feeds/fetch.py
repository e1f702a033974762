"""Fetch feeds over HTTP: one conditional GET per call, politely and within hard limits.

:class:`Fetcher` is an async context manager around one :class:`httpx.AsyncClient`;
:meth:`Fetcher.fetch` returns a :class:`~aggregator.types.FetchResult` and never raises for
a network, HTTP or limit problem. Units: every time is in seconds (``elapsed``,
``retry_after``, the ``*_timeout`` settings, ``arxiv_delay``), every size in bytes, counted
after decompression (``max_body_bytes``).

What a fetch can end with:

* ``body`` set -- a 2xx answer; the body decompressed (gzip/deflate), ``etag`` and
  ``last_modified`` from the answer. The content is not judged: an HTML page or random bytes
  served as a feed are returned as they are, for the parser to reject.
* ``not_modified`` -- a 304 to a conditional GET (``If-None-Match`` / ``If-Modified-Since``);
  ``etag`` and ``last_modified`` are the ones the server re-sent, else the ones passed in.
* ``error`` -- a message a person can act on, one of:

  * HTTP status (``status`` set; ``retry_after`` parsed from ``Retry-After`` when sent)

    - ``"HTTP 404 Not Found"``, ``"HTTP 410 Gone"`` (``FetchResult.gone``),
      ``"HTTP 429 Too Many Requests"``, ``"HTTP 503 Service Unavailable"``, ... -- any answer
      that is neither 2xx nor 304 (a 3xx is followed, see redirects)

  * timeouts

    - ``"timed out connecting after 10 s"`` -- ``connect_timeout``
    - ``"timed out waiting for an answer after 30 s"`` -- ``read_timeout`` with no byte of the
      status line/headers (a slow or hung server)
    - ``"timed out reading the body: no data for 30 s"`` -- ``read_timeout`` between two reads
    - ``"timed out sending the request after 30 s"`` -- the write timeout (``read_timeout``)
    - ``"timed out waiting for a free connection after 10 s"`` -- the pool timeout
    - ``"took longer than 120 s in total"`` -- ``total_timeout``: first request sent to last
      byte, redirects included (a server trickling bytes cannot keep a fetch alive)

  * limits

    - ``"body exceeds 16 MiB after decompression"`` -- ``max_body_bytes``; checked against
      ``Content-Length`` before reading and while streaming, so memory stays bounded by the cap
      (a gzip bomb is decompressed 64 KiB at a time and dropped as soon as it passes the cap)
    - ``"too many redirects (more than 5)"`` -- ``max_redirects``
    - ``"redirect to an invalid location: ..."``

  * connection and protocol

    - ``"cannot connect: ..."`` -- refused, DNS failure, TLS failure
    - ``"connection closed by the server without an answer"``
    - ``"connection reset by the server"``
    - ``"body truncated: ..."`` -- the connection ended before ``Content-Length`` bytes came
    - ``"cannot decode the gzip body: ..."`` -- corrupt compressed data
    - ``"body truncated: the gzip stream ends early"`` -- compressed data cut short
    - ``"invalid URL: ..."`` / ``"unsupported URL: ..."``
    - ``"<httpx exception name>: ..."`` -- any other transport error

  * SSRF guard (``guarded=True`` only, see :mod:`aggregator.feeds.ssrf`)

    - ``"refused: 10.0.0.7 is a private-use address (RFC 1918)"``,
      ``"refused: only http: and https: URLs may be fetched, not 'file:'"``, ... -- the URL of
      a hop (the first, or a redirect's) or an address its host resolves to is refused

Only programming errors (misuse of the API, bugs) propagate as exceptions.

Politeness: requests to an arXiv host (``arxiv=True``, or ``arxiv=None`` and the host is
``arxiv.org`` or a subdomain) go one at a time per host, and each starts at least
``settings.arxiv_delay_seconds`` seconds after the previous one ended (the arXiv API terms ask for 3 s
between requests; counting from the end keeps the arrivals that far apart). That spacing is
shared by every fetcher of the process and, when the fetcher is given an ``engine``, by every
process using that database (:mod:`aggregator.feeds.pacing`). Requests to any
other host share a ``per_host_concurrency`` semaphore per host. All requests share one
``global_concurrency`` semaphore. A host is ``host[:port]`` (the port only when not the
scheme's default), so ``http://export.arxiv.org`` and ``https://export.arxiv.org`` are one
host and two loopback servers on different ports are two. Time spent waiting for a turn is
neither in ``elapsed`` nor in ``total_timeout``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import logging
import math
import re
import time
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Self

import httpx
import sqlalchemy as sa

from aggregator.config import Settings
from aggregator.feeds.decode import _Decoder, _Failure, _root_cause, _size
from aggregator.feeds.pacing import DatabaseTurn, pacer_for
from aggregator.feeds.ssrf import Blocked, NetGuard, tls_context
from aggregator.types import FetchResult

__all__ = ["ACCEPT", "Fetcher", "is_arxiv_host", "parse_retry_after"]

log = logging.getLogger(__name__)

#: The ``Accept`` header of every fetch: feeds first, anything else last.
ACCEPT = "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.8, */*;q=0.5"
#: Only encodings this module decodes itself, with a bound on the output.
ACCEPT_ENCODING = "gzip, deflate"

_REDIRECT_CODES = frozenset({301, 302, 303, 307, 308})
_DELTA_SECONDS = re.compile(r"\d+(?:\.\d+)?")


# -- pure helpers --------------------------------------------------------------------------------


def parse_retry_after(value: str | None, now: dt.datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header value, or ``None`` when absent or invalid.

    Both forms of RFC 9110 are read: delta-seconds (``"120"``) and an HTTP-date
    (``"Wed, 21 Oct 2026 07:28:00 GMT"``), the latter relative to ``now`` and never below 0.
    Negative or non-numeric deltas and unparseable dates give ``None``. A naive ``now`` (or a
    date without a zone) is taken as UTC.
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    if _DELTA_SECONDS.fullmatch(text):
        seconds = float(text)
        return seconds if math.isfinite(seconds) else None
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:  # pragma: no cover - older Pythons returned None instead of raising
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=dt.UTC)
    if now.tzinfo is None:
        now = now.replace(tzinfo=dt.UTC)
    return max(0.0, (when - now).total_seconds())


def is_arxiv_host(host: str) -> bool:
    """True for ``arxiv.org`` and its subdomains (``export.arxiv.org``, ``rss.arxiv.org``)."""
    host = host.lower().rstrip(".")
    return host == "arxiv.org" or host.endswith(".arxiv.org")


def _host_key(url: httpx.URL) -> str:
    return url.host if url.port is None else f"{url.host}:{url.port}"


def _secs(value: float) -> str:
    return f"{value:g} s"


# -- bounded decompression ----------------------------------------------------------------------


# -- politeness ---------------------------------------------------------------------------------


class _HostGate:
    """Requests in flight to one host that is not arXiv's (arXiv hosts: :mod:`.pacing`)."""

    def __init__(self, limit: int) -> None:
        self.slots = asyncio.Semaphore(limit)


# -- the fetcher --------------------------------------------------------------------------------


@dataclass
class _Attempt:
    """What is known about one fetch so far, to word a failure at any point."""

    url: str
    final_url: str
    phase: str = "waiting"  # waiting | answer | body
    started: float | None = None
    status: int | None = None
    content_type: str | None = None
    retry_after: float | None = None
    redirects: list[str] = field(default_factory=list)

    def elapsed(self) -> float:
        return 0.0 if self.started is None else time.monotonic() - self.started


class Fetcher:
    """Conditional GETs of feeds, sharing one HTTP client and the politeness rules.

    Use as ``async with Fetcher(settings) as fetcher: result = await fetcher.fetch(url)``;
    ``transport`` replaces the network of unguarded fetches (e.g. :class:`httpx.MockTransport`
    in tests). ``guard`` is the :class:`~aggregator.feeds.ssrf.NetGuard` of ``guarded=True``
    fetches (default: from ``settings.feed_allow_hosts``); those always use its own transport.
    ``engine`` extends the arXiv spacing to every process using that database (a row per host
    in ``job_locks``); without it the spacing holds within this process.
    """

    def __init__(
        self,
        settings: Settings,
        *,
        transport: httpx.AsyncBaseTransport | None = None,
        guard: NetGuard | None = None,
        engine: sa.Engine | None = None,
    ) -> None:
        self.settings = settings
        self._engine = engine
        self._transport = transport
        self._guard = guard
        self._client: httpx.AsyncClient | None = None
        self._guarded: httpx.AsyncClient | None = None  # made on the first guarded fetch
        self._global: asyncio.Semaphore | None = None
        self._gates: dict[str, _HostGate] = {}

    async def __aenter__(self) -> Self:
        if self._client is not None:
            raise RuntimeError("this Fetcher is already open")
        self._client = self._new_client(self._transport)
        self._global = asyncio.Semaphore(self.settings.global_concurrency)
        self._gates = {}
        return self

    def _limits(self) -> httpx.Limits:
        n = self.settings.global_concurrency
        return httpx.Limits(max_connections=n, max_keepalive_connections=n)

    def _new_client(
        self, transport: httpx.AsyncBaseTransport | None, *, trust_env: bool = True
    ) -> httpx.AsyncClient:
        s = self.settings
        return httpx.AsyncClient(
            transport=transport,
            timeout=httpx.Timeout(
                connect=s.connect_timeout_seconds,
                read=s.read_timeout_seconds,
                write=s.read_timeout_seconds,
                pool=s.connect_timeout_seconds,
            ),
            limits=self._limits(),
            headers={"User-Agent": s.user_agent, "Accept": ACCEPT, "Accept-Encoding": ACCEPT_ENCODING},
            follow_redirects=False,  # followed here, so each hop waits for its host's turn
            trust_env=trust_env,
            verify=tls_context(),
        )

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the HTTP clients and their connections. Safe to call twice."""
        clients = (self._client, self._guarded)
        self._client = self._guarded = None
        for client in clients:
            if client is not None:
                await client.aclose()

    # -- public -----------------------------------------------------------------------------

    async def fetch(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        arxiv: bool | None = None,
        guarded: bool = False,
    ) -> FetchResult:
        """GET ``url``, conditionally when ``etag``/``last_modified`` are given.

        ``arxiv`` forces (True) or disables (False) the arXiv politeness rule; ``None`` decides
        by host name. ``guarded`` puts every hop and connection through the SSRF guard (for
        URLs readers gave; see :mod:`aggregator.feeds.ssrf`). Never raises for network, HTTP,
        limit or guard problems (see the module doc).
        """
        client, global_slots = self._client, self._global
        if client is None or global_slots is None:
            raise RuntimeError("use the Fetcher as `async with Fetcher(settings) as fetcher:`")
        guard = None
        if guarded:
            guard = self._guard = self._guard or NetGuard.from_settings(self.settings)
            if self._guarded is None:
                # no environment proxy: it would resolve the host itself, after the guard
                self._guarded = self._new_client(guard.transport(limits=self._limits()), trust_env=False)
            client = self._guarded
        attempt = _Attempt(url=url, final_url=url)
        try:
            if guard is not None:
                guard.check_url(url)  # as given: httpx would read "file:///x" as the path "/x"
            return await self._fetch(client, global_slots, attempt, etag, last_modified, arxiv)
        except _Failure as failure:
            message = failure.message
        except Blocked as err:
            message = f"refused: {err}"
        except httpx.InvalidURL as err:
            message = f"invalid URL: {err}"
        except httpx.RequestError as err:
            message = self._describe(err, attempt)
        log.debug("fetch of %s failed: %s", url, message)
        return FetchResult(
            url=url,
            final_url=attempt.final_url,
            status=attempt.status,
            error=message,
            retry_after=attempt.retry_after,
            elapsed=attempt.elapsed(),
            content_type=attempt.content_type,
        )

    # -- internals --------------------------------------------------------------------------

    def _gate(self, host: str) -> _HostGate:
        gate = self._gates.get(host)
        if gate is None:
            gate = self._gates[host] = _HostGate(self.settings.per_host_concurrency)
        return gate

    @asynccontextmanager
    async def _turn(
        self, url: httpx.URL, arxiv: bool | None, global_slots: asyncio.Semaphore
    ) -> AsyncIterator[None]:
        """Hold a slot for one request to ``url``: host first, then global (always this order).

        An arXiv host's turn is the process-wide pacer's (and the database's, given an engine):
        spacing counts from the end of the previous request, since connection set-up delays a
        start's arrival (start-to-start spacing let two requests reach arXiv 2.96 s apart,
        measured on feedreplay's log)."""
        host = _host_key(url)
        if is_arxiv_host(url.host) if arxiv is None else arxiv:
            s = self.settings
            database = None if self._engine is None else DatabaseTurn(self._engine, host)
            async with pacer_for(host).turn(s.arxiv_delay_seconds, database), global_slots:
                yield
            return
        async with self._gate(host).slots, global_slots:
            yield

    async def _fetch(
        self,
        client: httpx.AsyncClient,
        global_slots: asyncio.Semaphore,
        attempt: _Attempt,
        etag: str | None,
        last_modified: str | None,
        arxiv: bool | None,
    ) -> FetchResult:
        s = self.settings
        headers: dict[str, str] = {}
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        request = client.build_request("GET", attempt.url, headers=headers)
        loop = asyncio.get_running_loop()
        deadline = asyncio.timeout(None)
        try:
            async with deadline:
                while True:
                    attempt.final_url = str(request.url)
                    attempt.phase = "waiting"
                    async with self._turn(request.url, arxiv, global_slots):
                        if attempt.started is None:
                            attempt.started = time.monotonic()
                            deadline.reschedule(loop.time() + s.total_timeout_seconds)
                        attempt.phase = "answer"
                        response = await client.send(request, stream=True)
                        try:
                            nxt = self._read_answer(response, attempt)
                            if nxt is None:
                                return await self._finish(response, attempt, etag, last_modified)
                        finally:
                            await response.aclose()
                    request = nxt
        except TimeoutError:
            if deadline.expired():
                raise _Failure(f"took longer than {_secs(s.total_timeout_seconds)} in total") from None
            raise

    def _read_answer(self, response: httpx.Response, attempt: _Attempt) -> httpx.Request | None:
        """Note the status line and headers; the next request when this is a redirect."""
        attempt.status = response.status_code
        attempt.content_type = response.headers.get("content-type")
        attempt.retry_after = parse_retry_after(response.headers.get("retry-after"), dt.datetime.now(dt.UTC))
        if response.status_code not in _REDIRECT_CODES:
            return None
        if response.next_request is None:  # a 3xx without Location: reported as a status error
            return None
        if len(attempt.redirects) >= self.settings.max_redirects:
            raise _Failure(f"too many redirects (more than {self.settings.max_redirects})")
        attempt.redirects.append(str(response.next_request.url))
        return response.next_request

    async def _finish(
        self, response: httpx.Response, attempt: _Attempt, etag: str | None, last_modified: str | None
    ) -> FetchResult:
        code = response.status_code
        headers = response.headers
        body: bytes | None = None
        if code == 304:  # validators re-sent with the 304 win; else the ones we sent stay good
            etag = headers.get("etag") or etag
            last_modified = headers.get("last-modified") or last_modified
        elif 200 <= code < 300:
            attempt.phase = "body"
            body = await self._read_body(response)
            etag, last_modified = headers.get("etag"), headers.get("last-modified")
        else:
            reason = response.reason_phrase or httpx.codes.get_reason_phrase(code)
            raise _Failure(f"HTTP {code} {reason}".rstrip())
        return FetchResult(
            url=attempt.url,
            final_url=attempt.final_url,
            status=code,
            body=body,
            etag=etag,
            last_modified=last_modified,
            not_modified=code == 304,
            retry_after=attempt.retry_after,
            elapsed=attempt.elapsed(),
            content_type=attempt.content_type,
        )

    async def _read_body(self, response: httpx.Response) -> bytes:
        cap = self.settings.max_body_bytes
        too_big = f"body exceeds {_size(cap)} after decompression"
        if response.is_stream_consumed:
            # a transport that hands over a body already read and decoded by httpx (e.g.
            # httpx.MockTransport given bytes); networks stream, so this is for tests only
            if len(response.content) > cap:
                raise _Failure(too_big)
            return response.content
        decoder = _Decoder.for_header(response.headers.get("content-encoding"))
        declared = response.headers.get("content-length", "")
        if not decoder.stages and declared.isdigit() and int(declared) > cap:
            raise _Failure(f"{too_big} (Content-Length: {declared})")
        body = bytearray()

        def take(pieces: Iterable[bytes]) -> None:
            for piece in pieces:
                if len(body) + len(piece) > cap:
                    raise _Failure(too_big)
                body.extend(piece)

        async for raw in response.aiter_raw():
            take(decoder.decode(raw))
        take(decoder.flush())
        return bytes(body)

    def _describe(self, err: httpx.RequestError, attempt: _Attempt) -> str:
        """Word an httpx exception for ``FetchResult.error``."""
        s = self.settings
        detail = str(err) or type(err).__name__
        lowered = detail.lower()
        match err:
            case httpx.ConnectTimeout():
                return f"timed out connecting after {_secs(s.connect_timeout_seconds)}"
            case httpx.ReadTimeout() if attempt.phase == "body":
                return f"timed out reading the body: no data for {_secs(s.read_timeout_seconds)}"
            case httpx.ReadTimeout():
                return f"timed out waiting for an answer after {_secs(s.read_timeout_seconds)}"
            case httpx.WriteTimeout():
                return f"timed out sending the request after {_secs(s.read_timeout_seconds)}"
            case httpx.PoolTimeout():
                return f"timed out waiting for a free connection after {_secs(s.connect_timeout_seconds)}"
            case httpx.ConnectError():
                return f"cannot connect: {_root_cause(err) or detail}"
            case httpx.UnsupportedProtocol():
                return f"unsupported URL: {detail}"
            case httpx.RemoteProtocolError() if attempt.phase == "body":
                return f"body truncated: {detail}"
            case httpx.RemoteProtocolError() if "location header" in lowered:
                return f"redirect to an invalid location: {detail}"
            case httpx.RemoteProtocolError() if "without sending a response" in lowered:
                return "connection closed by the server without an answer"
            case httpx.ReadError() | httpx.WriteError() if "reset" in lowered or "broken pipe" in lowered:
                where = " while reading the body" if attempt.phase == "body" else ""
                return f"connection reset by the server{where}"
            case httpx.ReadError() if attempt.phase == "body":
                return f"body truncated: {detail}"
            case _:
                return f"{type(err).__name__}: {detail}"
