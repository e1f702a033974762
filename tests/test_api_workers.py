"""`aggregator api --workers N` as a real process: the connections its worker processes accept
have TCP_NODELAY set. Without it, every keep-alive response waits for the client's delayed ACK
(40 ms on Linux): the digest went from 4 ms to 44 ms at p50 (uvicorn issue #3149).

The check reads the option off the worker's own accepted socket: ``pidfd_getfd(2)`` (Linux 5.6+)
duplicates the worker's file descriptors into this process."""

from __future__ import annotations

import ctypes
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from helpers import free_port

SYS_PIDFD_GETFD = {"x86_64": 438, "aarch64": 438}.get(os.uname().machine)


def _children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        out += [int(c) for c in (task / "children").read_text().split()]
    return out


def _peer_socket_nodelay(pid: int, client: socket.socket) -> int | None:
    """TCP_NODELAY of the socket in process ``pid`` whose peer is ``client``, or None."""
    libc = ctypes.CDLL(None, use_errno=True)
    pidfd = os.pidfd_open(pid)
    try:
        for entry in Path(f"/proc/{pid}/fd").iterdir():
            try:
                if not os.readlink(entry).startswith("socket:"):
                    continue
            except OSError:
                continue
            fd = libc.syscall(SYS_PIDFD_GETFD, pidfd, int(entry.name), 0)
            if fd < 0:
                continue
            sock = socket.socket(fileno=fd)
            try:
                if sock.family == socket.AF_INET and sock.getpeername() == client.getsockname():
                    return sock.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY)
            except OSError:  # listening or unconnected sockets have no peer
                pass
            finally:
                sock.close()
    finally:
        os.close(pidfd)
    return None


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux" or SYS_PIDFD_GETFD is None, reason="pidfd_getfd(2) is Linux-only")
def test_connections_accepted_by_api_workers_have_tcp_nodelay(tmp_path: Path) -> None:
    port = free_port()
    env = {
        **os.environ,
        "AGGREGATOR_DATABASE_URL": f"sqlite:///{tmp_path / 'api.db'}",
        "AGGREGATOR_FEEDS_FILE": str(tmp_path / "feeds.toml"),
    }
    (tmp_path / "feeds.toml").write_text("")
    log = (tmp_path / "api.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "api", "--workers", "2", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                    break
            except OSError:
                assert proc.poll() is None, (tmp_path / "api.log").read_text()
                assert time.monotonic() < deadline, "aggregator api did not start within 60 s"
                time.sleep(0.2)
        # a keep-alive connection with one answered request: a worker holds it open now
        client = socket.create_connection(("127.0.0.1", port), timeout=10)
        client.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
        assert client.recv(65536).startswith(b"HTTP/1.1 200")
        seen = [_peer_socket_nodelay(pid, client) for pid in _children(proc.pid)]
        found = [v for v in seen if v is not None]
        client.close()
        assert len(found) == 1, f"the connection was not found in one worker: {seen}"
        assert found[0] != 0, "the worker's accepted connection lacks TCP_NODELAY"
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
