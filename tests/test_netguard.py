"""aggregator.feeds.ssrf, the SSRF guard of reader-added feeds: each refused address class, the URL
rules (schemes, user@host, numeric IP spellings), the allow-list, and guarded fetches through
aggregator.feeds.fetch against real loopback servers -- redirects to refused addresses, and DNS
rebinding (the connection goes to the address that was checked, never to a second lookup).
No pytest-asyncio: asyncio.run. No timing."""

from __future__ import annotations

import asyncio
import ipaddress
import shutil
import socket
import ssl
import subprocess
import threading
import urllib.parse
from collections.abc import Iterator, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from aggregator.config import Settings
from aggregator.feeds.fetch import Fetcher
from aggregator.feeds.ssrf import Blocked, NetGuard, parse_allow_list, refusal_reason
from aggregator.types import FetchResult

if TYPE_CHECKING:
    from conftest import Replay

BLOG = "/static/blogs/ainewsdirect-google-ai-blog-2025-07-29-atom.xml"

RSS = b"""<?xml version="1.0" encoding="utf-8"?>
<rss version="2.0"><channel><title>Loopback lab notes</title><link>http://lab.example/</link>
<item><title>Sparse attention, revisited</title><link>http://lab.example/posts/sparse</link>
<pubDate>Mon, 15 Jun 2026 09:00:00 GMT</pubDate><description>Notes on sparse attention.</description></item>
<item><title>Distillation at small scale</title><link>http://lab.example/posts/distill</link>
<pubDate>Sun, 14 Jun 2026 09:00:00 GMT</pubDate><description>What worked, what not.</description></item>
</channel></rss>"""


class Loopback:
    """A small HTTP server on a loopback address, for what feedreplay cannot do: ``/feed.xml``
    (an RSS feed), ``/go?to=URL`` (a 302 to any URL), anything else 404. ``hits`` records every
    request as ``(path, Host header)``."""

    def __init__(self, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None) -> None:
        hits: list[tuple[str, str]] = []
        self.hits = hits

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                hits.append((self.path, self.headers.get("Host", "")))
                parsed = urllib.parse.urlsplit(self.path)
                if parsed.path == "/go":
                    target = urllib.parse.parse_qs(parsed.query)["to"][0]
                    self.send_response(302)
                    self.send_header("Location", target)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                elif parsed.path == "/feed.xml":
                    self.send_response(200)
                    self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
                    self.send_header("Content-Length", str(len(RSS)))
                    self.end_headers()
                    self.wfile.write(RSS)
                else:
                    self.send_response(404)
                    self.send_header("Content-Length", "0")
                    self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer((host, 0), Handler)
        if tls is not None:
            self.server.socket = tls.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        self.base = f"{'https' if tls else 'http'}://{host}:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.01,), daemon=True)
        self.thread.start()

    def url(self, path: str) -> str:
        return self.base + path

    def redirect_to(self, target: str) -> str:
        return self.url("/go?" + urllib.parse.urlencode({"to": target}))

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def loopback() -> Iterator[Loopback]:
    server = Loopback("127.0.0.1")
    yield server
    server.close()


@pytest.fixture
def target() -> Iterator[Loopback]:
    """A server on 127.0.0.2: loopback too, but not on the tests' allow-list (127.0.0.1)."""
    server = Loopback("127.0.0.2")
    yield server
    server.close()


def settings(**overrides: Any) -> Settings:
    values: dict[str, Any] = {
        "connect_timeout_seconds": 5,
        "read_timeout_seconds": 5,
        "total_timeout_seconds": 20,
    }
    values.update(overrides)
    return Settings(**values)


async def no_dns(host: str, port: int) -> Sequence[str]:
    raise AssertionError(f"the guard looked up {host}; it must decide without DNS")


def fetch(url: str, guard: NetGuard | None = None, *, guarded: bool = True) -> FetchResult:
    async def go() -> FetchResult:
        async with Fetcher(settings(), guard=guard) as fetcher:
            return await fetcher.fetch(url, guarded=guarded)

    return asyncio.run(go())


def requests(replay: Replay) -> list[dict[str, Any]]:
    """The replay log without the requests for the log itself."""
    return [e for e in replay.log() if not e["path"].startswith("/_replay/")]


def blocked(call: Any) -> str:
    with pytest.raises(Blocked) as caught:
        call()
    return str(caught.value)


# -- address classes ------------------------------------------------------------------------------

REFUSED = [
    # (address, words the reason must contain)
    ("0.0.0.0", "unspecified"),
    ("::", "unspecified"),
    ("0.1.2.3", "this network"),
    ("127.0.0.1", "loopback"),
    ("127.255.255.254", "loopback"),
    ("::1", "loopback"),
    ("169.254.1.1", "link-local"),
    ("fe80::1", "link-local"),
    ("fe80::1%lo", "link-local"),
    ("fd00:ec2::254%eth0", "metadata"),
    ("224.0.0.1", "multicast"),
    ("239.255.255.250", "multicast"),
    ("ff02::1", "multicast"),
    ("10.0.0.1", "RFC 1918"),
    ("172.16.5.4", "RFC 1918"),
    ("172.31.255.255", "RFC 1918"),
    ("192.168.1.1", "RFC 1918"),
    ("100.64.0.1", "RFC 6598"),
    ("100.127.255.254", "RFC 6598"),
    ("fc00::1", "RFC 4193"),
    ("fd12:3456:789a::1", "RFC 4193"),
    ("fec0::1", "RFC 3879"),
    ("240.0.0.1", "reserved"),
    ("255.255.255.255", "reserved"),
    ("192.0.2.10", "RFC 6890"),  # documentation (TEST-NET-1)
    ("198.18.0.1", "RFC 6890"),  # benchmarking
    ("2001:db8::1", "RFC 6890"),  # documentation
    ("2001::1", "RFC 6890"),  # Teredo
    ("169.254.169.254", "metadata"),
    ("169.254.170.2", "metadata"),
    ("fd00:ec2::254", "metadata"),
    ("100.100.100.200", "metadata"),
    ("168.63.129.16", "metadata"),
    ("::ffff:127.0.0.1", "IPv4-mapped form (RFC 4291) of 127.0.0.1, a loopback"),
    ("::ffff:10.1.2.3", "RFC 1918"),
    ("::ffff:169.254.169.254", "metadata"),
    ("64:ff9b::a00:1", "NAT64 form (RFC 6052) of 10.0.0.1"),
    ("2002:a9fe:a9fe::1", "6to4 form (RFC 3056) of 169.254.169.254, a cloud metadata"),
    ("::7f00:1", "reserved"),  # IPv4-compatible, deprecated
]

PUBLIC = ["8.8.8.8", "1.1.1.1", "93.184.216.34", "2606:4700:4700::1111", "::ffff:8.8.8.8", "64:ff9b::808:808"]


@pytest.mark.parametrize(("address", "words"), REFUSED)
def test_every_special_purpose_address_class_is_refused(address: str, words: str) -> None:
    reason = refusal_reason(address)
    assert reason is not None and words in reason, reason
    # through the guard, as an IP literal in a URL: refused without any DNS lookup
    host = f"[{address.replace('%', '%25')}]" if ":" in address else address
    message = blocked(lambda: NetGuard(resolver=no_dns).check_url(f"http://{host}/feed.xml"))
    assert words in message


@pytest.mark.parametrize("address", PUBLIC)
def test_public_addresses_pass(address: str) -> None:
    assert refusal_reason(address) is None
    host = f"[{address}]" if ":" in address else address
    assert NetGuard(resolver=no_dns).check_url(f"https://{host}/feed.xml").scheme == "https"


# -- URL rules --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("file:///etc/passwd", "not 'file:'"),
        ("gopher://127.0.0.1:70/_HELO", "not 'gopher:'"),
        ("ftp://ftp.example.org/feed.xml", "not 'ftp:'"),
        ("javascript:alert(1)", "not 'javascript:'"),
        ("data:text/xml,<rss/>", "not 'data:'"),
        ("//example.org/feed.xml", "without one"),
        ("example.org/feed.xml", "without one"),
        ("http:///feed.xml", "no host"),
        ("http://127.0.0.1@evil.example/", "user name or password"),
        ("http://user:secret@example.org/feed.xml", "user name or password"),
        ("http://evil.example\\@127.0.0.1/", "user name or password"),
        ("http://2130706433/", "non-standard spelling"),  # 127.0.0.1 in decimal
        ("http://0x7f000001/", "non-standard spelling"),  # in hexadecimal
        ("http://0x7f.0.0.1/", "non-standard spelling"),
        ("http://017700000001/", "non-standard spelling"),  # in octal
        ("http://127.1/", "non-standard spelling"),  # shortened
        ("http://0177.0.0.1/", "not a valid URL"),  # octal dotted quad: httpx refuses it
        ("http://127.000.000.001/", "not a valid URL"),
        ("http://169.254.169.254.nip.io.0x1/", "non-standard spelling"),
        ("http://ex ample.org/", "not a valid host name"),
        ("http://[::1]:8080/", "loopback"),
        ("http://0.0.0.0:8000/", "unspecified"),
        ("http://[::ffff:a9fe:a9fe]/latest/meta-data/", "metadata"),
    ],
)
def test_url_rules(url: str, words: str) -> None:
    # the tests' allow-list changes nothing here: these are refused before any address rule
    message = blocked(lambda: NetGuard(["127.0.0.1"], resolver=no_dns).check_url(url))
    assert words in message, message


def test_url_rules_keep_ordinary_feed_urls() -> None:
    guard = NetGuard(resolver=no_dns)
    for url in (
        "https://rss.arxiv.org/rss/cs.LG",
        "HTTP://Blog.Example.ORG:8080/feed.xml?x=1#top",
        "https://xn--bcher-kva.example/atom",
        "https://bücher.example/atom",
        "https://my_host.example.org./feed",
        "https://1e100.net/feed",
    ):
        assert guard.check_url(url).scheme in ("http", "https")


# -- allow-list ---------------------------------------------------------------------------------------


def test_allow_list_entries() -> None:
    allow = parse_allow_list(
        [" 127.0.0.1 ", "10.1.0.0/16", "[::1]", "Feeds.Lab.Example.", "*.intra.example", ""]
    )
    assert allow.names == {"feeds.lab.example"}
    assert allow.suffixes == (".intra.example",)
    assert allow.allows_address(ipaddress.ip_address("127.0.0.1"))
    assert allow.allows_address(ipaddress.ip_address("::ffff:127.0.0.1"))
    assert not allow.allows_address(ipaddress.ip_address("127.0.0.2"))
    assert allow.allows_address(ipaddress.ip_address("10.1.200.3"))
    assert not allow.allows_address(ipaddress.ip_address("10.2.0.1"))
    assert allow.allows_address(ipaddress.ip_address("::1"))
    assert allow.allows_host("a.b.intra.example") and not allow.allows_host("intra.example")
    assert allow.allows_host("feeds.lab.example") and not allow.allows_host("x.feeds.lab.example")
    for bad in ("2130706433", "http://127.0.0.1/", "10.0.0.0/33", "a..b", "*.", "under score!"):
        with pytest.raises(ValueError, match="allow-list entry"):
            parse_allow_list([bad])


def test_allow_list_setting_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGGREGATOR_FEED_ALLOW_HOSTS", "127.0.0.1, 10.1.0.0/16 *.intra.example")
    assert Settings().feed_allow_hosts == ["127.0.0.1", "10.1.0.0/16", "*.intra.example"]
    monkeypatch.setenv("AGGREGATOR_FEED_ALLOW_HOSTS", '["127.0.0.1", "::1"]')
    assert Settings().feed_allow_hosts == ["127.0.0.1", "::1"]
    monkeypatch.setenv("AGGREGATOR_FEED_ALLOW_HOSTS", "")
    assert Settings().feed_allow_hosts == []
    monkeypatch.setenv("AGGREGATOR_FEED_ALLOW_HOSTS", "127.0.0.1,0x7f.1")
    with pytest.raises(ValueError, match="'0x7f.1' is not a host name"):
        NetGuard.from_settings(Settings())
    monkeypatch.delenv("AGGREGATOR_FEED_ALLOW_HOSTS")
    assert Settings().feed_allow_hosts == []


def test_allow_list_overrides_the_address_rules_but_not_metadata() -> None:
    open_all = NetGuard(["0.0.0.0/0", "::/0", "169.254.0.0/16"], resolver=no_dns)
    for url in ("http://127.0.0.1/", "http://10.9.8.7/", "http://[fd00::1]/", "http://169.254.1.1/"):
        open_all.check_url(url)
    for url in ("http://169.254.169.254/", "http://[fd00:ec2::254]/", "http://[::ffff:169.254.169.254]/"):
        assert "metadata" in blocked(lambda u=url: open_all.check_url(u))  # type: ignore[misc]
    only_one = NetGuard(["127.0.0.1"], resolver=no_dns)
    only_one.check_url("http://127.0.0.1:8080/feed")
    assert "loopback" in blocked(lambda: only_one.check_url("http://127.0.0.2:8080/feed"))


def test_resolution_refuses_a_host_when_any_address_is_refused() -> None:
    async def lab(host: str, port: int) -> Sequence[str]:
        return {
            "public.example": ["93.184.216.34", "2606:4700:4700::1111"],
            "mixed.example": ["93.184.216.34", "10.0.0.5"],
            "metadata.example": ["169.254.169.254"],
            "lab.intra.example": ["10.1.2.3"],
            "empty.example": [],
        }[host]

    guard = NetGuard(["*.intra.example"], resolver=lab)
    got = asyncio.run(guard.resolve("public.example", 443))
    assert [str(a) for a in got] == ["93.184.216.34", "2606:4700:4700::1111"]
    mixed = blocked(lambda: asyncio.run(guard.resolve("mixed.example", 443)))
    assert mixed == "mixed.example resolves to 10.0.0.5, a private-use address (RFC 1918)"
    assert [str(a) for a in asyncio.run(guard.resolve("lab.intra.example", 80))] == ["10.1.2.3"]
    assert "metadata" in blocked(lambda: asyncio.run(guard.resolve("metadata.example", 80)))
    with pytest.raises(socket.gaierror):
        asyncio.run(guard.resolve("empty.example", 80))


# -- guarded fetches over real loopback servers ------------------------------------------------------


def test_guarded_fetch_refuses_loopback_unless_allow_listed(replay: Replay) -> None:
    url = replay.url(BLOG)
    refused = fetch(url, NetGuard())
    assert refused.error is not None and refused.body is None
    assert refused.error.startswith("refused: 127.0.0.1 is a loopback address")
    assert requests(replay) == [], "nothing may reach the server"
    # the operator's feeds are fetched as before: the guard is per fetch
    trusted = fetch(url, NetGuard(), guarded=False)
    assert trusted.status == 200 and trusted.body

    # the allow-list of Settings (AGGREGATOR_FEED_ALLOW_HOSTS) is the default guard
    async def go() -> FetchResult:
        async with Fetcher(settings(feed_allow_hosts=["127.0.0.1"])) as fetcher:
            return await fetcher.fetch(url, guarded=True)

    allowed = asyncio.run(go())
    assert allowed.error is None and allowed.status == 200 and allowed.body == trusted.body


def test_fetch_passes_share_one_tls_context(replay: Replay, monkeypatch: pytest.MonkeyPatch) -> None:
    """The CA bundle is loaded once per process (``tls_context``), not by each client and
    guarded transport a fetch pass makes (20-40 ms of CPU each)."""
    import ssl

    from aggregator.feeds.ssrf import tls_context

    shared = tls_context()
    made: list[object] = []
    real = ssl.create_default_context
    monkeypatch.setattr(ssl, "create_default_context", lambda *a, **k: made.append(a) or real(*a, **k))
    httpx.Client().close()  # the probe sees the loads httpx makes: a client of its own loads one
    assert len(made) == 1
    made.clear()

    async def go() -> list[FetchResult]:
        out = []
        for _ in range(2):  # two passes, each with a plain and a guarded client
            async with Fetcher(settings(feed_allow_hosts=["127.0.0.1"])) as fetcher:
                out += [
                    await fetcher.fetch(replay.url(BLOG)),
                    await fetcher.fetch(replay.url(BLOG), guarded=True),
                ]
        return out

    results = asyncio.run(go())
    assert [r.status for r in results] == [200] * 4
    assert made == [] and tls_context() is shared
    assert shared.verify_mode == ssl.CERT_REQUIRED and shared.check_hostname  # still verifying


def test_localhost_by_name_is_judged_by_its_address(loopback: Loopback) -> None:
    url = f"http://localhost:{loopback.port}/feed.xml"
    assert (
        fetch(url, NetGuard()).error
        == "refused: localhost resolves to 127.0.0.1, a loopback address (RFC 1122, RFC 4291)"
    )
    assert loopback.hits == []
    assert fetch(url, NetGuard(["127.0.0.1"])).status == 200


@pytest.mark.parametrize(
    ("where", "words"),
    [
        ("http://127.0.0.2:{port}/feed.xml", "127.0.0.2 is a loopback address"),
        ("//127.0.0.2:{port}/feed.xml", "127.0.0.2 is a loopback address"),  # scheme-relative
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254 is a cloud metadata service address"),
        ("http://[::ffff:127.0.0.2]:{port}/feed.xml", "IPv4-mapped form (RFC 4291) of 127.0.0.2"),
        ("http://10.255.255.1/feed.xml", "RFC 1918"),
        ("http://2130706434:{port}/feed.xml", "non-standard spelling"),
        ("http://127.0.0.1@127.0.0.2:{port}/feed.xml", "user name or password"),
        ("file:///etc/passwd", "not 'file:'"),
        ("gopher://127.0.0.2:{port}/_GET", "not 'gopher:'"),
    ],
)
def test_redirect_to_a_refused_address_is_refused(
    loopback: Loopback, target: Loopback, where: str, words: str
) -> None:
    to = where.format(port=target.port)
    result = fetch(loopback.redirect_to(to), NetGuard(["127.0.0.1"]))
    assert result.error is not None and result.error.startswith("refused: ") and words in result.error
    assert result.status == 302 and result.body is None
    assert len(loopback.hits) == 1 and loopback.hits[0][0].startswith("/go?")
    assert target.hits == [], "the refused hop must never be connected to"


def test_the_same_redirect_is_followed_without_the_guard(loopback: Loopback, target: Loopback) -> None:
    """The control of the test above: unguarded (the operator's feeds), the hop is taken."""
    result = fetch(loopback.redirect_to(target.url("/feed.xml")), NetGuard(["127.0.0.1"]), guarded=False)
    assert result.status == 200 and result.body == RSS
    assert [path for path, _ in target.hits] == ["/feed.xml"]


def test_redirect_to_an_allowed_address_is_followed(loopback: Loopback, target: Loopback) -> None:
    result = fetch(loopback.redirect_to(target.url("/feed.xml")), NetGuard(["127.0.0.1", "127.0.0.2"]))
    assert result.error is None and result.body == RSS and result.final_url == target.url("/feed.xml")


def test_dns_rebinding_cannot_reach_a_refused_address(loopback: Loopback) -> None:
    """A host that answers a public address to the first lookup and 127.0.0.1 to the next: the
    check and the connection share one lookup, so the second answer is refused, not used."""
    answers = iter([["93.184.216.34"], ["127.0.0.1"], ["127.0.0.1"]])

    async def rebinding(host: str, port: int) -> Sequence[str]:
        return next(answers)

    guard = NetGuard(resolver=rebinding)
    first = asyncio.run(guard.resolve("rebind.example", loopback.port))
    assert [str(a) for a in first] == ["93.184.216.34"]  # a check alone would have said yes
    result = fetch(f"http://rebind.example:{loopback.port}/feed.xml", guard)
    assert (
        result.error
        == "refused: rebind.example resolves to 127.0.0.1, a loopback address (RFC 1122, RFC 4291)"
    )
    assert loopback.hits == []


def test_the_connection_goes_to_the_checked_address(loopback: Loopback) -> None:
    """A name only the guard's resolver knows (``.invalid`` never resolves, RFC 6761): the fetch
    works, so httpx connected to the address the guard checked and did not look the name up
    again. The Host header (and TLS's SNI) still carry the name."""
    looked_up: list[str] = []

    async def lab(host: str, port: int) -> Sequence[str]:
        looked_up.append(host)
        return ["127.0.0.1"]

    url = f"http://feeds.pinned.invalid:{loopback.port}/feed.xml"
    result = fetch(url, NetGuard(["127.0.0.1"], resolver=lab))
    assert result.error is None and result.body == RSS
    assert looked_up == ["feeds.pinned.invalid"]
    assert loopback.hits == [("/feed.xml", f"feeds.pinned.invalid:{loopback.port}")]


def test_unresolvable_host_reads_like_an_unguarded_failure() -> None:
    async def nxdomain(host: str, port: int) -> Sequence[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    result = fetch("http://no-such-host.invalid/feed.xml", NetGuard(resolver=nxdomain))
    assert result.error == "cannot connect: Name or service not known"


@pytest.mark.skipif(shutil.which("openssl") is None, reason="needs the openssl command to make a certificate")
def test_tls_is_verified_against_the_name_not_the_pinned_address(tmp_path: Path) -> None:
    """The connection is pinned to the checked address, yet TLS (SNI and certificate check)
    uses the URL's host name: a certificate for another name is refused."""
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        + ["-keyout", str(key), "-out", str(cert), "-days", "2", "-subj", "/CN=feeds.pinned.invalid"]
        + ["-addext", "subjectAltName=DNS:feeds.pinned.invalid"],
        check=True,
        capture_output=True,
    )
    server_tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_tls.load_cert_chain(cert, key)
    server = Loopback("127.0.0.1", tls=server_tls)
    snis: list[str | None] = []

    def note_sni(sock: Any, name: str | None, ctx: Any) -> None:
        snis.append(name)

    server_tls.sni_callback = note_sni

    async def lab(host: str, port: int) -> Sequence[str]:
        return ["127.0.0.1"]

    guard = NetGuard(["127.0.0.1"], resolver=lab)

    async def get(url: str) -> httpx.Response:
        client_tls = ssl.create_default_context(cafile=str(cert))
        async with httpx.AsyncClient(transport=guard.transport(verify=client_tls)) as client:
            return await client.get(url)

    try:
        ok = asyncio.run(get(f"https://feeds.pinned.invalid:{server.port}/feed.xml"))
        assert ok.status_code == 200 and ok.content == RSS
        assert snis == ["feeds.pinned.invalid"]
        with pytest.raises(httpx.ConnectError, match="certificate verify failed"):
            asyncio.run(get(f"https://other.pinned.invalid:{server.port}/feed.xml"))
        assert [path for path, _ in server.hits] == ["/feed.xml"]
    finally:
        server.close()
