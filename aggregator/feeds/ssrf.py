"""SSRF guard for URLs that readers give: which hosts and addresses a fetch may reach.

Feeds added by readers (``POST /api/me/feeds``) are fetched by this server, so a reader could
otherwise point it at the machine itself, the lab network or a cloud metadata service and read
the answer back in the feed's error message. A :class:`NetGuard` refuses that:

* **URL rules** (:meth:`NetGuard.check_url`, no network): the scheme is ``http`` or
  ``https`` (``file:``, ``gopher:``, ``ftp:``... are refused); there is a host; the URL carries
  no user name or password (``http://127.0.0.1@evil/`` is refused rather than explained); a
  host that ends in a number must be a canonical dotted-quad IPv4 address, so decimal, octal,
  hexadecimal and shortened spellings (``2130706433``, ``0x7f.1``, ``127.1``), which
  ``getaddrinfo`` reads as addresses, are refused (the WHATWG URL standard reads a host whose
  last label is a number as IPv4 for the same reason).
* **Address rules** (:func:`refusal_reason`): every address a host resolves to
  (``getaddrinfo``, IPv4 and IPv6) must be globally reachable; if *any* is not, the host is
  refused. Refused: unspecified and "this network" (RFC 1122 §3.2.1.3, RFC 4291), loopback
  (RFC 1122, RFC 4291), link-local (RFC 3927, RFC 4291), multicast (RFC 5771, RFC 4291),
  private-use (RFC 1918), shared CGNAT space ``100.64.0.0/10`` (RFC 6598), unique-local
  ``fc00::/7`` (RFC 4193), site-local ``fec0::/10`` (RFC 3879), reserved, and every other
  special-purpose block the IANA registries of RFC 6890 mark not globally reachable
  (documentation, benchmarking, ...), as :mod:`ipaddress` knows them. IPv6 forms that embed an
  IPv4 address -- IPv4-mapped ``::ffff:a.b.c.d`` (RFC 4291 §2.5.5.2), NAT64 ``64:ff9b::/96``
  (RFC 6052) and 6to4 ``2002::/16`` (RFC 3056) -- are judged by the IPv4 address they carry.
  Cloud metadata endpoints (:data:`METADATA_ADDRESSES`) are always refused.
* **Allow-list** (``AGGREGATOR_FEED_ALLOW_HOSTS``): host names (exact, or ``*.example.org``
  for any subdomain), IP addresses and CIDR networks that override the address rules, e.g.
  ``127.0.0.1`` for tests or ``10.1.0.0/16`` for a lab's internal feeds. A metadata address
  stays refused even when an entry covers it. The URL rules always apply.
* **Every hop, the address actually connected**: :meth:`NetGuard.transport` is an httpx
  transport whose every request passes :meth:`~NetGuard.check_url` (so every redirect hop
  does) and whose every new connection resolves the host once, checks all addresses and then
  connects to those checked addresses only (never to a second lookup: a DNS-rebinding host
  that answers a public address first and ``127.0.0.1`` next cannot slip through). TLS still
  verifies the certificate against the host name (SNI). Environment proxies are not used by
  this transport (a proxy would resolve the host itself).

Refusals raise :class:`Blocked`, whose message says which rule refused what, for a person.
The guard runs on asyncio or trio (through anyio).
"""

from __future__ import annotations

import functools
import ipaddress
import re
import socket
import ssl
from collections.abc import Awaitable, Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import anyio
import httpcore
import httpx

if TYPE_CHECKING:
    from aggregator.config import Settings

__all__ = [
    "METADATA_ADDRESSES",
    "AllowList",
    "Blocked",
    "GuardedTransport",
    "IPAddress",
    "NetGuard",
    "Resolver",
    "parse_allow_list",
    "refusal_reason",
    "system_resolver",
]

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network
#: ``await resolver(host, port)`` gives the host's addresses as text (``getaddrinfo`` order);
#: raises :class:`OSError` (e.g. :class:`socket.gaierror`) when the name does not resolve.
Resolver = Callable[[str, int], Awaitable[Sequence[str]]]

SCHEMES = frozenset({"http", "https"})

#: Cloud metadata and platform endpoints: refused even when the allow-list covers them.
METADATA_ADDRESSES: frozenset[IPAddress] = frozenset(
    ipaddress.ip_address(a)
    for a in (
        "169.254.169.254",  # AWS EC2, Google Cloud, Azure, OpenStack, DigitalOcean, Oracle instance metadata
        "169.254.170.2",  # AWS ECS task metadata and credentials
        "169.254.170.23",  # AWS EKS Pod Identity agent
        "fd00:ec2::254",  # AWS EC2 instance metadata over IPv6
        "fd00:ec2::23",  # AWS EKS Pod Identity agent over IPv6
        "100.100.100.200",  # Alibaba Cloud ECS metadata
        "192.0.0.192",  # Oracle Cloud classic metadata
        "168.63.129.16",  # Azure WireServer (a public address that reaches the host platform)
    )
)

_THIS_NETWORK = ipaddress.ip_network("0.0.0.0/8")
_CGNAT = ipaddress.ip_network("100.64.0.0/10")
_RFC1918 = tuple(ipaddress.ip_network(n) for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"))
_UNIQUE_LOCAL = ipaddress.ip_network("fc00::/7")
_NAT64 = ipaddress.ip_network("64:ff9b::/96")

_HOST_NAME = re.compile(
    r"[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?(?:\.[a-z0-9_](?:[a-z0-9_-]{0,61}[a-z0-9_])?)*"
)
#: A last label that ``getaddrinfo``/``inet_aton`` (and the WHATWG URL standard) read as a number.
_NUMERIC_LABEL = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)")


class Blocked(Exception):
    """The guard refuses a URL or an address; ``str()`` says which rule and why."""


# -- address rules ------------------------------------------------------------------------------


def _embedded_ipv4(addr: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    """The IPv4 address an IPv6 form carries, with the form's name, or None."""
    if addr.ipv4_mapped is not None:
        return "an IPv4-mapped form (RFC 4291)", addr.ipv4_mapped
    if addr in _NAT64:
        return "a NAT64 form (RFC 6052)", ipaddress.IPv4Address(int(addr) & 0xFFFFFFFF)
    if addr.sixtofour is not None:
        return "a 6to4 form (RFC 3056)", addr.sixtofour
    return None


def _unscoped(addr: IPAddress) -> IPAddress:
    """``addr`` without an IPv6 zone (``fe80::1%eth0`` → ``fe80::1``)."""
    if isinstance(addr, ipaddress.IPv6Address) and addr.scope_id:
        return ipaddress.IPv6Address(str(addr).split("%", 1)[0])
    return addr


def _is_metadata(addr: IPAddress) -> bool:
    addr = _unscoped(addr)
    if addr in METADATA_ADDRESSES:
        return True
    embedded = _embedded_ipv4(addr) if isinstance(addr, ipaddress.IPv6Address) else None
    return embedded is not None and embedded[1] in METADATA_ADDRESSES


def refusal_reason(address: str | IPAddress) -> str | None:
    """Why ``address`` may not be fetched from, as words ending in the rule's source, or
    ``None`` for a globally reachable address. Pure; the allow-list is not consulted.

    ``address`` is an :mod:`ipaddress` address or its text (an IPv6 zone ``%eth0`` is allowed);
    invalid text raises :class:`ValueError`.
    """
    addr = _unscoped(ipaddress.ip_address(address) if isinstance(address, str) else address)
    if addr in METADATA_ADDRESSES:
        return "a cloud metadata service address"
    if isinstance(addr, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(addr)
        if embedded is not None:
            form, v4 = embedded
            inner = refusal_reason(v4)
            return None if inner is None else f"{form} of {v4}, {inner}"
        if addr.is_site_local:
            return "a site-local address, fec0::/10 (RFC 3879)"
        if addr in _UNIQUE_LOCAL:
            return "a unique local address, fc00::/7 (RFC 4193)"
    if addr.is_unspecified:
        return "the unspecified address, which reaches this machine (RFC 1122, RFC 4291)"
    if addr in _THIS_NETWORK:
        return "in 0.0.0.0/8, 'this network' (RFC 1122 §3.2.1.3)"
    if addr.is_loopback:
        return "a loopback address (RFC 1122, RFC 4291)"
    if addr.is_link_local:
        return "a link-local address (RFC 3927, RFC 4291)"
    if addr.is_multicast:
        return "a multicast address (RFC 5771, RFC 4291)"
    if addr in _CGNAT:
        return "shared carrier-grade NAT space, 100.64.0.0/10 (RFC 6598)"
    if any(addr in net for net in _RFC1918):
        return "a private-use address (RFC 1918)"
    if addr.is_reserved:
        return "a reserved address (RFC 6890 special-purpose registry)"
    if not addr.is_global:
        return "a special-purpose address that is not globally reachable (RFC 6890 registry)"
    return None


# -- allow-list ---------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class AllowList:
    """Hosts and networks that override the address rules (never the metadata refusal)."""

    names: frozenset[str] = frozenset()
    suffixes: tuple[str, ...] = ()  # ".example.org" for an entry "*.example.org"
    networks: tuple[IPNetwork, ...] = ()

    def allows_host(self, host: str) -> bool:
        """True when the (lower-case, no trailing dot) host name is listed or under a ``*.`` entry."""
        return host in self.names or any(host.endswith(s) for s in self.suffixes)

    def allows_address(self, addr: IPAddress) -> bool:
        """True when ``addr`` (or the IPv4 address an IPv4-mapped form carries) is listed."""
        addr = _unscoped(addr)
        candidates: list[IPAddress] = [addr]
        if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped is not None:
            candidates.append(addr.ipv4_mapped)
        return any(a in net for a in candidates for net in self.networks if a.version == net.version)


def _normal_host(host: str) -> str:
    return host.strip().lower().rstrip(".")


def parse_allow_list(entries: Iterable[str]) -> AllowList:
    """An :class:`AllowList` from entries such as ``"127.0.0.1"``, ``"10.1.0.0/16"``, ``"::1"``,
    ``"feeds.lab.example"`` or ``"*.lab.example"``. Raises :class:`ValueError` naming the first
    entry that is none of these (a CIDR with host bits set, like ``10.1.2.3/16``, is read as its
    network)."""
    names: set[str] = set()
    suffixes: list[str] = []
    networks: list[IPNetwork] = []
    for raw in entries:
        entry = raw.strip()
        if not entry:
            continue
        try:
            networks.append(ipaddress.ip_network(entry.strip("[]"), strict=False))
            continue
        except ValueError:
            pass
        host = _normal_host(entry)
        wildcard = host.startswith("*.")
        name = host[2:] if wildcard else host
        if not _HOST_NAME.fullmatch(name) or _NUMERIC_LABEL.fullmatch(name.rsplit(".", 1)[-1]):
            raise ValueError(
                f"allow-list entry {raw!r} is not a host name, '*.domain', IP address or CIDR network"
            )
        if wildcard:
            suffixes.append("." + name)
        else:
            names.add(name)
    return AllowList(frozenset(names), tuple(suffixes), tuple(networks))


# -- the guard ----------------------------------------------------------------------------------


async def system_resolver(host: str, port: int) -> list[str]:
    """The host's addresses from the system resolver (``getaddrinfo``, TCP), first-seen order."""
    infos = await anyio.getaddrinfo(host.encode("ascii"), port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


def _ip_literal(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host.replace("%25", "%"))
    except ValueError:
        return None


class NetGuard:
    """The SSRF rules of the module doc, with an allow-list and a resolver.

    ``allow`` is an :class:`AllowList` or its entries (see :func:`parse_allow_list`);
    ``resolver`` replaces the system resolver (tests, or a resolver of your choice).
    """

    def __init__(self, allow: AllowList | Iterable[str] = (), *, resolver: Resolver | None = None) -> None:
        self.allow = allow if isinstance(allow, AllowList) else parse_allow_list(allow)
        self.resolver: Resolver = resolver or system_resolver

    @classmethod
    def from_settings(cls, settings: Settings) -> NetGuard:
        """The guard of ``settings.feed_allow_hosts`` (``AGGREGATOR_FEED_ALLOW_HOSTS``)."""
        return cls(settings.feed_allow_hosts)

    def check_url(self, url: str | httpx.URL) -> httpx.URL:
        """The parsed URL when the URL rules accept it (no network); raises :class:`Blocked`.
        An IP-literal host is also put to the address rules here."""
        try:
            parsed = url if isinstance(url, httpx.URL) else httpx.URL(url.strip())
        except (httpx.InvalidURL, TypeError) as err:
            raise Blocked(f"not a valid URL: {err}") from None
        scheme = parsed.scheme
        if scheme not in SCHEMES:
            said = f"'{scheme}:'" if scheme else "a URL without one"
            raise Blocked(f"only http: and https: URLs may be fetched, not {said}")
        if parsed.userinfo:
            raise Blocked("a URL with a user name or password (user@host) is not accepted")
        host = self._host_of(parsed)
        literal = _ip_literal(host)
        if literal is not None:
            self.check_address(literal, host)
        return parsed

    def _host_of(self, url: httpx.URL) -> str:
        host = _normal_host(url.raw_host.decode("ascii", "replace"))
        if not host:
            raise Blocked("the URL has no host")
        return self.check_host(host)

    def check_host(self, host: str) -> str:
        """The normalised host (lower case, no trailing dot) when it is an IP literal or a
        well-formed host name whose last label is not a number; raises :class:`Blocked`."""
        host = _normal_host(host)
        if _ip_literal(host) is not None:
            return host
        last = host.rsplit(".", 1)[-1]
        if _NUMERIC_LABEL.fullmatch(last):
            raise Blocked(
                f"host {host!r} reads as an IP address in a non-standard spelling (decimal, octal, "
                "hexadecimal or shortened); write the address as four decimal numbers a.b.c.d"
            )
        if not _HOST_NAME.fullmatch(host):
            raise Blocked(f"host {host!r} is not a valid host name")
        return host

    def check_address(self, address: IPAddress, host: str | None = None) -> None:
        """Raise :class:`Blocked` unless ``address`` (of ``host``, when given) may be fetched from."""
        reason = refusal_reason(address)
        if reason is None:
            return
        if not _is_metadata(address) and (
            self.allow.allows_address(address) or (host is not None and self.allow.allows_host(host))
        ):
            return
        if host is None or _ip_literal(host) is not None:
            raise Blocked(f"{address} is {reason}")
        raise Blocked(f"{host} resolves to {address}, {reason}")

    async def resolve(self, host: str, port: int) -> list[IPAddress]:
        """Every address of ``host``, each checked; raises :class:`Blocked` when one is refused
        (or the host name is malformed) and :class:`OSError` when the name does not resolve."""
        host = self.check_host(host)
        literal = _ip_literal(host)
        if literal is not None:
            addresses: list[IPAddress] = [literal]
        else:
            addresses = [ipaddress.ip_address(a) for a in await self.resolver(host, port)]
            if not addresses:
                raise socket.gaierror(socket.EAI_NONAME, f"{host} has no address")
        for addr in addresses:
            self.check_address(addr, host)
        return addresses

    def transport(
        self, *, limits: httpx.Limits | None = None, verify: ssl.SSLContext | bool = True
    ) -> GuardedTransport:
        """An httpx transport that applies this guard to every request and connection."""
        return GuardedTransport(self, limits=limits, verify=verify)


# -- the transport ------------------------------------------------------------------------------


class _PinnedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network, connecting only to addresses the guard checked (one lookup each)."""

    def __init__(self, guard: NetGuard) -> None:
        self._guard = guard
        self._net = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        deadline = anyio.current_time() + timeout if timeout is not None else None
        try:
            with anyio.fail_after(timeout):
                addresses = await self._guard.resolve(host, port)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} took longer than {timeout:g} s") from None
        except OSError as err:  # the words of getaddrinfo, as an unguarded fetch would say them
            raise httpcore.ConnectError(f"cannot resolve {host}: {err}") from err
        failure: Exception | None = None
        for address in addresses:
            left = None if deadline is None else max(0.0, deadline - anyio.current_time())
            try:
                return await self._net.connect_tcp(
                    str(address),
                    port,
                    timeout=left,
                    local_address=local_address,
                    socket_options=socket_options,
                )
            except (httpcore.ConnectError, httpcore.ConnectTimeout) as err:
                failure = err
        assert failure is not None  # resolve() never returns an empty list
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise Blocked("guarded fetches never use a Unix socket")

    async def sleep(self, seconds: float) -> None:
        await self._net.sleep(seconds)


@functools.cache
def tls_context() -> ssl.SSLContext:
    """The TLS context of every fetch: certificates checked against httpx's CA bundle (certifi,
    or ``SSL_CERT_FILE``/``SSL_CERT_DIR`` when set), built once per process. Loading the
    bundle costs 20–40 ms of CPU, which httpx would otherwise spend again on every client and
    transport (two a fetch pass, one a feed a reader adds). A context is safe to share between
    threads and event loops; a new CA bundle takes effect on restart."""
    return httpx.create_ssl_context()


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's HTTP transport with the guard on every request (URL rules) and every new
    connection (address rules, pinned to the checked addresses). No proxy, no Unix socket.

    The connection pool is httpx's own (:class:`httpcore.AsyncConnectionPool`) given a network
    backend; httpx has no public switch for that, so the pool it builds is replaced.
    """

    def __init__(
        self, guard: NetGuard, *, limits: httpx.Limits | None = None, verify: ssl.SSLContext | bool = True
    ) -> None:
        limits = limits or httpx.Limits(max_connections=100, max_keepalive_connections=20)
        if isinstance(verify, ssl.SSLContext):
            ssl_context = verify
        else:
            ssl_context = tls_context() if verify else httpx.create_ssl_context(verify=False)
        super().__init__(verify=ssl_context, limits=limits, trust_env=False)
        self.guard = guard
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=ssl_context,
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=_PinnedBackend(guard),
        )

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.guard.check_url(request.url)
        return await super().handle_async_request(request)
