"""aggregator.feeds.fetch against the real feedreplay server (every FAULTS mode), plus a few
httpx.MockTransport cases a real server cannot produce. No pytest-asyncio: asyncio.run."""

from __future__ import annotations

import asyncio
import datetime as dt
import email.utils
import gzip
import importlib.util
import resource
import time
import zlib
from collections import Counter
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from aggregator.config import Settings
from aggregator.feeds.fetch import ACCEPT, Fetcher, is_arxiv_host, parse_retry_after
from aggregator.types import FetchResult

if TYPE_CHECKING:
    from conftest import Replay

RSS = "/rss/cs.LG"
BLOG = "/static/blogs/ainewsdirect-google-ai-blog-2025-07-29-atom.xml"
MiB = 1024 * 1024


def make_settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "read_timeout_seconds": 1,
        "connect_timeout_seconds": 1,
        "total_timeout_seconds": 5,
        "arxiv_delay_seconds": 0.3,
        "max_body_bytes": 4 * MiB,
    }
    values.update(overrides)
    return Settings(**values)


def fetch_one(url: str, settings: Settings | None = None, **kwargs: Any) -> FetchResult:
    async def go() -> FetchResult:
        async with Fetcher(settings or make_settings()) as fetcher:
            return await fetcher.fetch(url, **kwargs)

    return asyncio.run(go())


def run_with(settings: Settings, body: Callable[[Fetcher], Coroutine[Any, Any, Any]], **kw: Any) -> Any:
    async def go() -> Any:
        async with Fetcher(settings, **kw) as fetcher:
            return await body(fetcher)

    return asyncio.run(go())


def requests(replay: Replay) -> list[dict[str, Any]]:
    """The replay log without the requests for the log itself."""
    return [e for e in replay.log() if not e["path"].startswith("/_replay/")]


def starts(replay: Replay, path: str) -> list[float]:
    return sorted(e["time"] for e in requests(replay) if e["path"] == path)


async def streamed(data: bytes, chunk: int = 65536) -> AsyncIterator[bytes]:
    """A response body as a network stream (bytes given to httpx.Response are read at once)."""
    for i in range(0, len(data), chunk):
        yield data[i : i + chunk]


# -- conditional GET ----------------------------------------------------------------------------


def test_200_then_conditional_304(replay: Replay) -> None:
    settings = make_settings()

    async def body(f: Fetcher) -> tuple[FetchResult, FetchResult, FetchResult]:
        first = await f.fetch(replay.url(RSS))
        by_etag = await f.fetch(replay.url(RSS), etag=first.etag, last_modified=first.last_modified)
        by_date = await f.fetch(replay.url(RSS), last_modified=first.last_modified)
        return first, by_etag, by_date

    first, by_etag, by_date = run_with(settings, body)
    assert first.ok and first.status == 200 and not first.not_modified
    assert first.body is not None and first.body.startswith(b"<?xml") and b"<rss" in first.body
    assert first.etag and first.last_modified
    assert first.content_type is not None and first.content_type.startswith("application/rss+xml")
    assert first.final_url == first.url == replay.url(RSS)
    assert first.elapsed > 0

    for again in (by_etag, by_date):
        assert again.ok and again.not_modified and again.status == 304 and again.body is None
        assert again.etag == first.etag  # re-sent by the server, or the one passed in
        assert again.last_modified == first.last_modified  # not re-sent: the one passed in is kept

    log = requests(replay)
    assert [e["path"] for e in log] == [RSS] * 3
    assert log[0]["if_none_match"] is None and log[0]["if_modified_since"] is None
    assert log[1]["if_none_match"] == first.etag
    assert log[1]["if_modified_since"] == first.last_modified
    assert log[2]["if_none_match"] is None and log[2]["if_modified_since"] == first.last_modified
    assert {e["user_agent"] for e in log} == {settings.user_agent}
    assert settings.user_agent.startswith("aggregator/")
    assert {e["accept_encoding"] for e in log} == {"gzip, deflate"}


def test_no_cache_headers_gives_200_both_times(replay: Replay) -> None:
    url = replay.url("/_fault/no-cache-headers" + RSS)
    first = fetch_one(url)
    assert first.ok and first.status == 200 and first.body
    assert first.etag is None and first.last_modified is None
    second = fetch_one(url, etag='"stale"', last_modified="Mon, 15 Jun 2026 04:00:01 GMT")
    assert second.ok and second.status == 200 and not second.not_modified and second.body == first.body
    assert requests(replay)[1]["if_none_match"] == '"stale"'


# -- every fault of feedreplay ------------------------------------------------------------------


def _load_faults(replay: Replay) -> dict[str, str]:
    """FAULTS of the very feedreplay script the fixture runs (its path is argv[1])."""
    script = str(replay.proc.args[1])  # type: ignore[index]
    spec = importlib.util.spec_from_file_location("feedreplay_for_tests", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return dict(module.FAULTS)


COVERED_FAULTS = {
    "status-404", "status-410", "status-429", "status-500", "status-503", "slow-N", "trickle", "hang",
    "truncate", "reset", "redirect", "redirect-loop", "html", "binary", "huge", "gzip-bomb",
    "no-cache-headers",
}  # fmt: skip


def test_every_feedreplay_fault_is_covered_here(replay_server: Replay) -> None:
    assert set(_load_faults(replay_server)) == COVERED_FAULTS


@pytest.mark.parametrize(
    ("code", "message", "retry_after"),
    [
        (404, "HTTP 404 Not Found", None),
        (410, "HTTP 410 Gone", None),
        (429, "HTTP 429 Too Many Requests", 120.0),
        (500, "HTTP 500 Internal Server Error", None),
        (503, "HTTP 503 Service Unavailable", 60.0),
    ],
)
def test_status_faults(replay: Replay, code: int, message: str, retry_after: float | None) -> None:
    result = fetch_one(replay.url(f"/_fault/status-{code}" + RSS))
    assert not result.ok and result.error == message
    assert result.status == code and result.retry_after == retry_after
    assert result.body is None and not result.not_modified and result.etag is None
    assert result.gone is (code == 410)


def test_slow_answer_within_read_timeout_succeeds(replay: Replay) -> None:
    result = fetch_one(replay.url("/_fault/slow-0.2" + RSS))
    assert result.ok and result.status == 200 and result.body and b"<rss" in result.body
    assert result.elapsed >= 0.2


def test_slow_answer_past_read_timeout_times_out(replay: Replay) -> None:
    began = time.monotonic()
    result = fetch_one(replay.url("/_fault/slow-3" + RSS), make_settings(read_timeout_seconds=1))
    assert result.error == "timed out waiting for an answer after 1 s"
    assert result.status is None and result.body is None
    assert time.monotonic() - began < 2.5


def test_hang_times_out(replay: Replay) -> None:
    began = time.monotonic()
    result = fetch_one(replay.url("/_fault/hang" + RSS), make_settings(read_timeout_seconds=0.5))
    assert result.error == "timed out waiting for an answer after 0.5 s"
    assert time.monotonic() - began < 2.5


def test_trickle_is_cut_by_the_total_deadline(replay: Replay) -> None:
    # one byte every 0.5 s never trips the 1 s read timeout; only the total deadline ends it
    began = time.monotonic()
    result = fetch_one(replay.url("/_fault/trickle" + RSS), make_settings(total_timeout_seconds=1.5))
    took = time.monotonic() - began
    assert result.error == "took longer than 1.5 s in total"
    assert result.body is None and result.status == 200
    assert 1.4 <= result.elapsed < 3 and took < 4


def test_truncated_body_is_an_error(replay: Replay) -> None:
    result = fetch_one(replay.url("/_fault/truncate" + RSS))
    assert result.error is not None and result.error.startswith("body truncated:")
    assert "expected" in result.error and result.body is None


def test_reset_is_an_error(replay: Replay) -> None:
    result = fetch_one(replay.url("/_fault/reset" + RSS))
    assert result.error == "connection closed by the server without an answer"
    assert result.status is None and result.body is None


def test_redirect_is_followed(replay: Replay) -> None:
    url = replay.url("/_fault/redirect" + RSS)
    result = fetch_one(url)
    assert result.ok and result.status == 200 and result.body and b"<rss" in result.body
    assert result.url == url and result.final_url == replay.url(RSS)
    assert [e["path"] for e in requests(replay)] == ["/_fault/redirect" + RSS, RSS]


def test_redirect_loop_stops_at_max_redirects(replay: Replay) -> None:
    result = fetch_one(replay.url("/_fault/redirect-loop" + RSS), make_settings(max_redirects=3))
    assert result.error == "too many redirects (more than 3)"
    assert result.status == 302 and result.body is None
    assert len(requests(replay)) == 4  # the first request and three redirects followed


def test_html_is_returned_as_is(replay: Replay) -> None:
    result = fetch_one(replay.url("/_fault/html" + RSS))
    assert result.ok and result.status == 200
    assert result.body is not None and result.body.startswith(b"<!doctype html>")
    assert result.content_type == "text/html; charset=utf-8"


def test_binary_is_returned_as_is(replay: Replay) -> None:
    result = fetch_one(replay.url("/_fault/binary" + RSS))
    assert result.ok and result.body is not None and len(result.body) == 65536
    assert result.content_type == "application/rss+xml"


@pytest.mark.slow
def test_huge_and_gzip_bomb_hit_the_body_cap_with_bounded_memory(replay: Replay) -> None:
    # the gzip bomb is compressed by the server on each request (~3 s before the headers)
    settings = make_settings(read_timeout_seconds=15, total_timeout_seconds=30, max_body_bytes=4 * MiB)
    before_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux

    async def body(f: Fetcher) -> tuple[FetchResult, FetchResult]:
        return await f.fetch(replay.url("/_fault/huge" + RSS)), await f.fetch(
            replay.url("/_fault/gzip-bomb" + RSS)
        )

    huge, bomb = run_with(settings, body)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before_kib) / 1024
    assert huge.error is not None and huge.error.startswith("body exceeds 4 MiB after decompression")
    assert bomb.error == "body exceeds 4 MiB after decompression"
    assert huge.body is None and bomb.body is None and huge.status == bomb.status == 200
    assert grown_mib < 200, f"resident memory grew by {grown_mib:.0f} MiB"


# -- politeness ---------------------------------------------------------------------------------


def test_arxiv_requests_are_spaced_by_arxiv_delay(replay: Replay) -> None:
    delay = 0.5
    settings = make_settings(arxiv_delay_seconds=delay, per_host_concurrency=4)
    blog = "/_fault/slow-0.2" + BLOG

    async def body(f: Fetcher) -> list[FetchResult]:
        arxiv = [f.fetch(replay.url(RSS), arxiv=True) for _ in range(3)]
        blogs = [f.fetch(replay.url(blog), arxiv=False) for _ in range(2)]
        return await asyncio.gather(*arxiv, *blogs)

    results = run_with(settings, body)
    assert all(r.ok for r in results)
    arxiv_starts = starts(replay, RSS)
    assert len(arxiv_starts) == 3
    gaps = [b - a for a, b in zip(arxiv_starts, arxiv_starts[1:], strict=False)]
    assert all(gap >= delay - 0.05 for gap in gaps), gaps
    # other requests to the same host:port are not held back by the arXiv rule
    assert all(s < arxiv_starts[1] for s in starts(replay, blog))


def test_arxiv_requests_never_overlap(replay: Replay) -> None:
    # each answer takes 0.6 s on the server, longer than the delay: a next request may only
    # start once the previous one has finished, so starts are >= 0.6 s apart
    path = "/_fault/slow-0.6" + RSS
    settings = make_settings(arxiv_delay_seconds=0.1, per_host_concurrency=4)

    async def body(f: Fetcher) -> list[FetchResult]:
        return await asyncio.gather(*(f.fetch(replay.url(path), arxiv=True) for _ in range(3)))

    assert all(r.ok for r in run_with(settings, body))
    times = starts(replay, path)
    assert len(times) == 3
    assert all(b - a >= 0.6 - 0.02 for a, b in zip(times, times[1:], strict=False)), times


def test_blog_requests_run_concurrently_up_to_per_host_limit(replay: Replay) -> None:
    path = "/_fault/slow-0.5" + BLOG
    settings = make_settings(per_host_concurrency=2, global_concurrency=16)

    async def body(f: Fetcher) -> list[FetchResult]:
        return await asyncio.gather(*(f.fetch(replay.url(path)) for _ in range(4)))

    assert all(r.ok and r.status == 200 for r in run_with(settings, body))
    times = starts(replay, path)
    assert len(times) == 4
    assert times[1] - times[0] < 0.45, times  # two at once...
    # ...but never three: the third may only start once one of the first two (0.5 s each) ended
    assert all(times[i + 2] - times[i] >= 0.5 - 0.02 for i in range(2)), times


# -- MockTransport: cases feedreplay cannot produce ---------------------------------------------


class InFlight:
    """A MockTransport handler that answers after ``delay`` and counts requests in flight."""

    def __init__(self, delay: float = 0.1) -> None:
        self.delay = delay
        self.now: Counter[str] = Counter()
        self.peak: Counter[str] = Counter()
        self.started: list[tuple[str, float]] = []

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        host = request.url.host
        self.started.append((host, time.monotonic()))
        for key in (host, "*"):
            self.now[key] += 1
            self.peak[key] = max(self.peak[key], self.now[key])
        try:
            await asyncio.sleep(self.delay)
        finally:
            for key in (host, "*"):
                self.now[key] -= 1
        return httpx.Response(
            200, content=streamed(b"<rss/>"), headers={"Content-Type": "application/rss+xml"}
        )


def test_global_and_per_host_limits() -> None:
    handler = InFlight(0.1)
    settings = make_settings(per_host_concurrency=2, global_concurrency=3)
    urls = [f"https://{host}.example/feed" for host in ("a", "b", "c") for _ in range(3)]

    async def body(f: Fetcher) -> list[FetchResult]:
        return await asyncio.gather(*(f.fetch(u) for u in urls))

    results = run_with(settings, body, transport=httpx.MockTransport(handler))
    assert all(r.ok and r.body == b"<rss/>" for r in results)
    assert handler.peak["*"] == 3
    assert all(handler.peak[f"{h}.example"] <= 2 for h in "abc")


def test_arxiv_rule_by_host_name() -> None:
    handler = InFlight(0.0)
    settings = make_settings(arxiv_delay_seconds=0.2, per_host_concurrency=4)
    urls = [
        "http://export.arxiv.org/api/query?a",
        "https://export.arxiv.org/api/query?b",  # same host whatever the scheme
        "https://rss.arxiv.org/rss/cs.LG",  # another host: its own turn
    ]

    async def body(f: Fetcher) -> list[FetchResult]:
        polite = [f.fetch(u) for u in urls]
        forced_off = [f.fetch("https://arxiv.org/x", arxiv=False) for _ in range(2)]
        return await asyncio.gather(*polite, *forced_off)

    assert all(r.ok for r in run_with(settings, body, transport=httpx.MockTransport(handler)))
    by_host: dict[str, list[float]] = {}
    for host, at in handler.started:
        by_host.setdefault(host, []).append(at)
    export = by_host["export.arxiv.org"]
    assert len(export) == 2 and export[1] - export[0] >= 0.2 - 0.01
    first = min(at for _, at in handler.started)
    assert by_host["rss.arxiv.org"][0] - first < 0.15
    assert len(by_host["arxiv.org"]) == 2 and max(by_host["arxiv.org"]) - first < 0.15
    assert (
        is_arxiv_host("arxiv.org") and is_arxiv_host("export.arxiv.org") and is_arxiv_host("RSS.arXiv.org.")
    )
    assert not is_arxiv_host("notarxiv.org") and not is_arxiv_host("arxiv.org.evil.example")


def _mock(handler: Callable[[httpx.Request], httpx.Response], url: str, **settings: Any) -> FetchResult:
    async def body(f: Fetcher) -> FetchResult:
        return await f.fetch(url)

    return run_with(make_settings(**settings), body, transport=httpx.MockTransport(handler))


def _raw_deflate(data: bytes) -> bytes:
    comp = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return comp.compress(data) + comp.flush()


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("gzip", gzip.compress),
        ("x-gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", _raw_deflate),  # raw deflate, as some servers send
        ("gzip, deflate", lambda b: zlib.compress(gzip.compress(b))),
        ("identity", lambda b: b),
    ],
)
def test_compressed_bodies_are_decoded(encoding: str, encode: Callable[[bytes], bytes]) -> None:
    feed = b"<rss>" + b"<item>x</item>" * 50_000 + b"</rss>"  # 700 KB, many 64 KiB pieces

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["accept"] == ACCEPT
        assert request.headers["accept-encoding"] == "gzip, deflate"
        return httpx.Response(200, content=streamed(encode(feed)), headers={"Content-Encoding": encoding})

    result = _mock(handler, "https://blog.example/feed")
    assert result.ok and result.body == feed


CUT_SHORT = "body truncated: the gzip stream ends early"


@pytest.mark.parametrize(
    ("data", "message"),
    [
        # mtime=0: the same bytes (and test ids) in every process, as pytest-xdist requires
        (gzip.compress(b"<rss/>", mtime=0)[:10] + b"\xff\xfe not deflate", "cannot decode the gzip body: "),
        (
            gzip.compress(b"<rss>" + b"x" * 10_000 + b"</rss>", mtime=0)[:-12],
            "body truncated: the gzip stream ends early",
        ),
        (b"\x1f\x8b\x08\x00", "body truncated: the gzip stream ends early"),
    ],
)
def test_corrupt_or_cut_gzip_is_an_error(data: bytes, message: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=streamed(data), headers={"Content-Encoding": "gzip"})

    result = _mock(handler, "https://blog.example/feed")
    assert result.error is not None and result.error.startswith(message) and result.body is None


def test_streamed_body_without_length_is_capped_early() -> None:
    sent: list[int] = []

    async def endless() -> AsyncIterator[bytes]:
        while True:
            sent.append(1)
            yield b"A" * 65536

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=endless())

    result = _mock(handler, "https://blog.example/feed", max_body_bytes=MiB)
    assert result.error == "body exceeds 1 MiB after decompression" and result.body is None
    assert len(sent) == 17  # 16 chunks fill the cap exactly; the 17th passes it


def test_body_exactly_at_the_cap_is_accepted() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=streamed(b"B" * MiB))

    result = _mock(handler, "https://blog.example/feed", max_body_bytes=MiB)
    assert result.ok and result.body is not None and len(result.body) == MiB


def test_304_with_new_validators_replaces_the_old_ones() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        assert request.headers["if-none-match"] == '"old"'
        return httpx.Response(
            304, headers={"ETag": '"new"', "Last-Modified": "Tue, 16 Jun 2026 00:00:00 GMT"}
        )

    async def body(f: Fetcher) -> FetchResult:
        return await f.fetch(
            "https://b.example/f", etag='"old"', last_modified="Mon, 15 Jun 2026 00:00:00 GMT"
        )

    result = run_with(make_settings(), body, transport=httpx.MockTransport(handler))
    assert result.not_modified and result.etag == '"new"'
    assert result.last_modified == "Tue, 16 Jun 2026 00:00:00 GMT"


def test_retry_after_as_http_date() -> None:
    later = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=300)

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(503, headers={"Retry-After": email.utils.format_datetime(later, usegmt=True)})

    result = _mock(handler, "https://b.example/f")
    assert result.error == "HTTP 503 Service Unavailable" and result.status == 503
    assert result.retry_after is not None and 290 <= result.retry_after <= 300


def test_redirect_across_hosts_and_relative_locations() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.host == "old.example":
            return httpx.Response(301, headers={"Location": "https://new.example/a/feed"})
        if request.url.path == "/a/feed":
            return httpx.Response(308, headers={"Location": "../b/feed.xml"})
        return httpx.Response(
            200, content=streamed(b"<feed/>"), headers={"Content-Type": "application/atom+xml"}
        )

    result = _mock(handler, "http://old.example/feed")
    assert result.ok and result.body == b"<feed/>" and result.final_url == "https://new.example/b/feed.xml"
    assert result.content_type == "application/atom+xml"


def test_redirect_without_location_is_a_status_error() -> None:
    result = _mock(lambda request: httpx.Response(302), "https://b.example/f")
    assert result.error == "HTTP 302 Found" and result.status == 302


def test_zero_redirects_allowed() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers={"Location": "/elsewhere"})

    result = _mock(handler, "https://b.example/f", max_redirects=0)
    assert result.error == "too many redirects (more than 0)"


@pytest.mark.parametrize(
    ("exc", "message"),
    [
        (httpx.ConnectTimeout("x"), "timed out connecting after 1 s"),
        (httpx.ConnectError("[Errno -2] Name or service not known"), "cannot connect: "),
        (httpx.ReadError("[Errno 104] Connection reset by peer"), "connection reset by the server"),
        (httpx.ProxyError("proxy said no"), "ProxyError: proxy said no"),
    ],
)
def test_transport_errors_become_results(exc: Exception, message: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    result = _mock(handler, "https://b.example/f")
    assert result.error is not None and result.error.startswith(message)
    assert result.status is None and result.body is None


def test_connection_refused() -> None:
    result = fetch_one("http://127.0.0.1:1/feed")
    assert result.error == "cannot connect: Connection refused"


def test_unsupported_scheme_is_a_result_not_an_exception() -> None:
    result = fetch_one("ftp://example.org/feed")
    assert result.error is not None and result.error.startswith("unsupported URL")


def test_programming_errors_propagate() -> None:
    async def outside() -> None:
        await Fetcher(make_settings()).fetch("https://b.example/f")

    with pytest.raises(RuntimeError, match="async with"):
        asyncio.run(outside())

    def handler(request: httpx.Request) -> httpx.Response:
        raise ZeroDivisionError

    with pytest.raises(ZeroDivisionError):
        _mock(handler, "https://b.example/f")


# -- parse_retry_after --------------------------------------------------------------------------

NOW = dt.datetime(2026, 6, 15, 12, 0, 0, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("120", 120.0),
        (" 60 ", 60.0),
        ("0", 0.0),
        ("1.5", 1.5),
        ("Mon, 15 Jun 2026 12:02:00 GMT", 120.0),
        ("Monday, 15-Jun-26 12:00:30 GMT", 30.0),  # obsolete RFC 850 form
        ("Mon, 15 Jun 2026 11:00:00 GMT", 0.0),  # in the past: retry now
        ("Mon, 15 Jun 2026 14:00:00 +0200", 0.0),
        ("-5", None),
        ("soon", None),
        ("", None),
        ("12abc", None),
        ("Mon, 99 Foo 2026 12:00:00 GMT", None),
        (None, None),
    ],
)
def test_parse_retry_after(value: str | None, expected: float | None) -> None:
    assert parse_retry_after(value, NOW) == expected


def test_parse_retry_after_naive_now_is_utc() -> None:
    assert parse_retry_after("Mon, 15 Jun 2026 12:01:00 GMT", NOW.replace(tzinfo=None)) == 60.0
