"""`aggregator api` as a real process on loopback under a header flood and a slowloris (issue 14,
finding 3; aggregator.api.server_limits). Five connections each try to send a 100 MB header
that never ends, and 300 connections send their headers a byte at a time. Meanwhile the server's
resident memory stays within 60 MB of where it started, ``/healthz`` answers within 100 ms (nine
probes in ten: the test machine is shared), the
flood connections are cut off after 64 KiB with a 431, and the slow ones are closed once their
header time (2 s here) is up. With the connection cap lowered below the slowloris, a new
connection evicts the oldest slow one, so ``/healthz`` still answers."""

from __future__ import annotations

import multiprocessing
import os
import select
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # both tests over 5 s (bench/slow_tests.py): out of the inner loop

FLOOD_BYTES = 100 * 1024 * 1024


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _rss(pid: int) -> int:
    """Resident set size of ``pid`` in bytes."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


@contextmanager
def api_server(tmp_path: Path, **env_extra: str) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    port = _free_port()
    (tmp_path / "feeds.toml").write_text("")
    env = {
        **os.environ,
        "AGGREGATOR_DATABASE_URL": f"sqlite:///{tmp_path / 'api.db'}",
        "AGGREGATOR_FEEDS_FILE": str(tmp_path / "feeds.toml"),
        "AGGREGATOR_HTTP_HEADER_TIMEOUT_SECONDS": "2",
        **env_extra,
    }
    log = (tmp_path / "api.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "api", "--port", str(port)], env=env, stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5).read()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise AssertionError((tmp_path / "api.log").read_text()) from None
                time.sleep(0.2)
        yield proc, port
    finally:
        proc.kill()
        proc.wait()
        log.close()


def _healthz_ms(port: int) -> float:
    start = time.perf_counter()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=10) as resp:
        assert resp.status == 200
        resp.read()
    return (time.perf_counter() - start) * 1000


def _flood(port: int, sent: list[int], answers: list[bytes]) -> None:
    """One connection sending an unterminated 100 MB header; records bytes sent and the answer."""
    total = 0
    piece = b"a" * (1024 * 1024)
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.settimeout(10)
        try:
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Flood: ")
            while total < FLOOD_BYTES:
                s.sendall(piece)
                total += len(piece)
        except OSError:
            pass
        try:
            answers.append(s.recv(200))
        except OSError:
            answers.append(b"")
    sent.append(total)


def _slow(port: int, n: int, closed: list[float], stop: threading.Event) -> None:
    """``n`` connections dripping a header one byte a second; the time each was closed."""
    socks = []
    for _ in range(n):
        s = socket.create_connection(("127.0.0.1", port))
        s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        socks.append(s)
    start = time.monotonic()
    open_ = set(range(n))
    while open_ and not stop.is_set():
        for i in list(open_):
            try:
                socks[i].sendall(b"X")
            except OSError:
                open_.discard(i)
                closed.append(time.monotonic() - start)
        time.sleep(0.5)
    for s in socks:
        s.close()


def _attack(port: int) -> tuple[list[int], list[bytes], list[float]]:
    """The flood (5 connections) and the slowloris (300) at once, for 6 s."""
    sent: list[int] = []
    answers: list[bytes] = []
    closed: list[float] = []
    stop = threading.Event()
    threads = [threading.Thread(target=_flood, args=(port, sent, answers)) for _ in range(5)]
    threads.append(threading.Thread(target=_slow, args=(port, 300, closed, stop)))
    for t in threads:
        t.start()
    time.sleep(6)
    stop.set()
    for t in threads:
        t.join(60)
    return sent, answers, closed


def test_header_flood_and_slowloris_leave_memory_flat_and_healthz_fast(tmp_path: Path) -> None:
    with api_server(tmp_path) as (proc, port):
        for _ in range(5):
            _healthz_ms(port)  # warm
        base = _rss(proc.pid)
        # the attack runs in another process, so that it does not slow this one's measurements
        with multiprocessing.get_context("fork").Pool(1) as pool:
            attack = pool.apply_async(_attack, (port,))
            latencies, peak = [], base
            deadline = time.monotonic() + 6
            while time.monotonic() < deadline:
                latencies.append(_healthz_ms(port))
                peak = max(peak, _rss(proc.pid))
                time.sleep(0.05)
            sent, answers, closed = attack.get(60)
    assert len(sent) == 5 and all(n < FLOOD_BYTES for n in sent), sent
    assert all(a.startswith(b"HTTP/1.1 431") or a == b"" for a in answers), answers
    assert any(a.startswith(b"HTTP/1.1 431") for a in answers), answers
    assert peak - base < 60 * 1024 * 1024, f"RSS grew {(peak - base) / 2**20:.0f} MB"
    # 100 ms for nine probes in ten: this machine's 2 cores are shared by other jobs (idle, the
    # slowest of 60 probes took 83 ms at load 8); every probe is answered, none waits a second
    ranked = sorted(latencies)
    p50, p90 = ranked[len(ranked) // 2], ranked[len(ranked) * 9 // 10]
    shown = f"/healthz p50 {p50:.1f} ms, p90 {p90:.1f} ms, max {ranked[-1]:.0f} ms"
    assert p90 < 100 and ranked[-1] < 1000, shown
    assert len(closed) == 300 and max(closed) < 5, "every slow connection is closed after its 2 s"


def test_connection_cap_evicts_the_oldest_slow_connection(tmp_path: Path) -> None:
    limits = {"AGGREGATOR_HTTP_MAX_CONNECTIONS": "50", "AGGREGATOR_HTTP_HEADER_TIMEOUT_SECONDS": "30"}
    with api_server(tmp_path, **limits) as (
        proc,
        port,
    ):
        socks = []
        for _ in range(120):
            s = socket.create_connection(("127.0.0.1", port))
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
            socks.append(s)
        time.sleep(2.0)  # every connection accepted (none left in the kernel's backlog) on a busy machine
        latencies = sorted(_healthz_ms(port) for _ in range(20))
        # a socket with something to read (b"" once closed, or the start of an error answer) is
        # not held open; those silent for 0.2 s are still open, waiting for their headers
        waiting, deadline = set(socks), time.monotonic() + 0.2
        while waiting and (left := deadline - time.monotonic()) > 0:
            ready, _, _ = select.select(list(waiting), [], [], left)
            waiting.difference_update(ready)
        alive = len(waiting)
        for s in socks:
            s.close()
    assert latencies[17] < 100 and latencies[-1] < 1000, latencies
    assert alive <= 50, f"{alive} slow connections held open; the cap is 50"
