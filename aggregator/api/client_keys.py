"""Who a request comes from, for rate limits and for the ``Secure`` cookie (issue 14, finding 4).

* :func:`client_address`: the TCP peer, unless the peer is one of the trusted proxies
  (``AGGREGATOR_TRUSTED_PROXIES``: IPs and CIDRs); then the right-most address of
  ``X-Forwarded-For`` that is not itself a trusted proxy (the left-most entries are whatever
  the client wrote, so they are never believed). No trusted proxies (the default): the peer.
* :func:`forwarded_https`: ``X-Forwarded-Proto: https`` from a trusted proxy, or a TLS
  connection to this server.
* :class:`TokenVerdicts`: whether an API token exists, remembered in a bounded LRU for
  ``ttl`` seconds, so that only real tokens get their own rate-limit budget; an unknown or
  invalid token is limited by its client address like a request with no token.
"""

from __future__ import annotations

import hashlib
import ipaddress
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_proxies(entries: Sequence[str]) -> tuple[IPNetwork, ...]:
    """``["10.0.0.1", "172.16.0.0/12"]`` → networks. Raises ValueError on a malformed entry."""
    return tuple(ipaddress.ip_network(e.strip(), strict=False) for e in entries if e.strip())


def _ip(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(text.strip().strip("[]"))
    except ValueError:
        return None


def _trusted(text: str, proxies: tuple[IPNetwork, ...]) -> bool:
    addr = _ip(text)
    return addr is not None and any(addr in net for net in proxies)


def _header(scope: Mapping[str, Any], name: bytes) -> list[str]:
    return [v.decode("latin-1") for k, v in scope.get("headers") or [] if k.lower() == name]


def client_address(scope: Mapping[str, Any], proxies: tuple[IPNetwork, ...]) -> str:
    """The client's address of an ASGI ``scope`` (see the module docstring)."""
    peer = (scope.get("client") or ("unknown", 0))[0]
    if not proxies or not _trusted(peer, proxies):
        return str(peer)
    hops = [h.strip() for line in _header(scope, b"x-forwarded-for") for h in line.split(",")]
    for hop in reversed(hops):
        if not hop:
            continue
        if _ip(hop) is None:
            return str(peer)  # garbage: trust nothing further left
        if not _trusted(hop, proxies):
            return str(_ip(hop))
    return str(peer)


def forwarded_https(scope: Mapping[str, Any], proxies: tuple[IPNetwork, ...]) -> bool:
    """True when the client reached us over HTTPS (directly, or per a trusted proxy)."""
    if scope.get("scheme") == "https":
        return True
    peer = (scope.get("client") or ("unknown", 0))[0]
    if not proxies or not _trusted(peer, proxies):
        return False
    protos = _header(scope, b"x-forwarded-proto")
    return bool(protos) and protos[-1].split(",")[-1].strip().lower() == "https"


def token_hash(token: str) -> str:
    """SHA-256 hex of an API token, as ``readers.token_hash`` stores it."""
    return hashlib.sha256(token.encode("utf-8", "replace")).hexdigest()


class TokenVerdicts:
    """Whether API tokens exist: ``lookup(token_hash) -> bool`` (a database query), remembered
    for ``ttl`` seconds in an LRU of at most ``size`` entries. Thread-safe."""

    def __init__(self, lookup: Callable[[str], bool], size: int = 10_000, ttl: float = 300.0) -> None:
        self.lookup, self.size, self.ttl = lookup, size, ttl
        self._seen: OrderedDict[str, tuple[bool, float]] = OrderedDict()
        self._lock = threading.Lock()

    def cached(self, digest: str) -> bool | None:
        with self._lock:
            hit = self._seen.get(digest)
            if hit is None or hit[1] < time.monotonic():
                return None
            self._seen.move_to_end(digest)
            return hit[0]

    def check(self, digest: str) -> bool:
        """Look the token up (blocking: call from a worker thread) and remember the verdict."""
        verdict = self.lookup(digest)
        with self._lock:
            self._seen[digest] = (verdict, time.monotonic() + self.ttl)
            self._seen.move_to_end(digest)
            while len(self._seen) > self.size:
                self._seen.popitem(last=False)
        return verdict

    def forget(self, digest: str) -> None:
        with self._lock:
            self._seen.pop(digest, None)


def token_lookup(engine: sa.Engine) -> Callable[[str], bool]:
    """``token_hash -> bool``: whether a reader has this API token."""
    from aggregator.store.tables import Reader

    query = sa.select(Reader.id).where(Reader.token_hash == sa.bindparam("h")).limit(1)

    def lookup(digest: str) -> bool:
        with engine.connect() as conn:
            return conn.execute(query, {"h": digest}).first() is not None

    return lookup
