"""``aggregator run``, ``api`` and ``worker``: the HTTP service and the scheduler. Listening
sockets are bound here (so a port in use is a one-line error) and handed to uvicorn."""

from __future__ import annotations

import os
import socket
from typing import Annotated, Any

import sqlalchemy as sa
import typer
from apscheduler.schedulers.base import BaseScheduler
from rich.markup import escape

from aggregator.cli.common import _address, _engine, _fail, _port_option, _settings, _setup, app, console
from aggregator.config import Settings, get_settings
from aggregator.metrics import configure_logging


class ListenError(OSError):
    """The address cannot be listened on; the message says which and why, in one line."""


def bind_listeners(host: str, port: int) -> list[socket.socket]:
    """TCP sockets bound to ``port`` on every address ``host`` resolves to (``""`` is every
    interface), made as :meth:`asyncio.loop.create_server` makes them (``SO_REUSEADDR``,
    ``IPV6_V6ONLY``, protocol ``IPPROTO_TCP``), not listening yet.

    Raises :class:`ListenError` (``cannot listen on 127.0.0.1:8000: address already in use``;
    also for an unknown host, an address not on this machine, or a port needing privileges).
    """
    where = _address(host, port)
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as err:
        raise ListenError(f"cannot listen on {where}: {(err.strerror or str(err)).lower()}") from None
    sockets: list[socket.socket] = []
    try:
        for family, kind, proto, _, sockaddr in dict.fromkeys(infos):
            sock = socket.socket(family, kind, proto)
            sockets.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if family == socket.AF_INET6:
                sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
            sock.bind(sockaddr)
    except OSError as err:
        for sock in sockets:
            sock.close()
        reason = (err.strerror or str(err)).lower()
        raise ListenError(f"cannot listen on {where}: {reason}") from None
    return sockets


def _listen(host: str, port: int) -> list[socket.socket]:
    try:
        return bind_listeners(host, port)
    except ListenError as err:
        raise _fail(str(err)) from None


#: uvicorn's HTTP parser and event loop. httptools parses about twice as fast as h11. The
#: standard asyncio loop, not uvloop: under load uvloop served some connections much later
#: than others (GET /api/me/digest on 1M items, 1 worker, 64 clients: p99 1.09 s against 91 ms
#: with asyncio; 10 clients: 19-21 ms against 11-14 ms, at the same requests per second).
#: httptools behind the limits of aggregator.api.server_limits (header size, header time,
#: connections per process).
SERVER_OPTIONS: dict[str, Any] = {
    "http": "aggregator.api.server_limits:GuardedHttpToolsProtocol",
    "loop": "asyncio",
}


def _serve(
    settings: Settings,
    engine: sa.Engine,
    host: str,
    port: int,
    sockets: list[socket.socket],
    scheduler: bool,
) -> None:
    """Serve the API in this process on ``sockets`` (bound by :func:`bind_listeners`, closed
    at the end), with the scheduler when ``scheduler``."""
    import uvicorn

    from aggregator.api.app import create_app, freeze_startup_heap
    from aggregator.api.server_limits import protocol_for
    from aggregator.worker.scheduler import start_scheduler

    holder: dict[str, BaseScheduler] = {}

    def on_start(_app: object) -> None:
        if scheduler:
            holder["scheduler"] = start_scheduler(engine, settings)
        freeze_startup_heap()

    def on_stop(_app: object) -> None:
        if "scheduler" in holder:
            holder["scheduler"].shutdown(wait=False)

    api = create_app(settings, engine, on_start=on_start, on_stop=on_stop)
    console.print(
        f"aggregator {'run' if scheduler else 'api'}: digest at http://{escape(_address(host, port))}/"
    )
    config = uvicorn.Config(
        api, host=host, port=port, log_config=None, access_log=settings.log_level == "DEBUG",
        **{**SERVER_OPTIONS, "http": protocol_for(settings)},
    )  # fmt: skip
    server = uvicorn.Server(config)
    try:
        server.run(sockets=sockets)
    except KeyboardInterrupt:
        pass
    finally:
        for sock in sockets:
            sock.close()
    if not server.started:  # uvicorn logged why (e.g. the application's startup failed)
        raise typer.Exit(3)


_HOST_HELP = "listen address (default AGGREGATOR_HOST)"


_PORT_HELP = "listen port, 1-65535 (default AGGREGATOR_PORT)"


@app.command()
def run(
    host: Annotated[str | None, typer.Option(help=_HOST_HELP)] = None,
    port: Annotated[int | None, typer.Option(parser=_port_option, metavar="PORT", help=_PORT_HELP)] = None,
) -> None:
    """Serve the digest over HTTP and fetch feeds on a schedule, in one process."""
    settings, feeds_file = _setup()
    host, port = host or settings.host, port or settings.port
    sockets = _listen(host, port)  # before anything is announced or started
    try:
        configure_logging(settings.log_level, settings.log_format)
        engine = _engine(settings)
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    console.print(f"{len(feeds_file.feeds)} feeds from {escape(str(settings.feeds_file))}")
    _serve(settings, engine, host, port, sockets, scheduler=True)


@app.command()
def api(
    host: Annotated[str | None, typer.Option(help=_HOST_HELP)] = None,
    port: Annotated[int | None, typer.Option(parser=_port_option, metavar="PORT", help=_PORT_HELP)] = None,
    workers: Annotated[int, typer.Option(min=1, max=64, help="uvicorn worker processes")] = 1,
) -> None:
    """Serve HTTP only (no scheduler), to scale out behind a load balancer. Readers' rescores
    after a vote or profile change are queued for `aggregator worker` (unless
    AGGREGATOR_SCORE_IN_API=true), so this process never loads the ranking model."""
    os.environ.setdefault("AGGREGATOR_SCORE_IN_API", "false")  # for the worker processes too
    get_settings.cache_clear()
    settings = _settings()
    host, port = host or settings.host, port or settings.port
    sockets = _listen(host, port)  # before anything is announced or started
    try:
        configure_logging(settings.log_level, settings.log_format)
        engine = _engine(settings)  # migrates once, before any worker starts
    except BaseException:
        for sock in sockets:
            sock.close()
        raise
    if workers == 1:
        _serve(settings, engine, host, port, sockets, scheduler=False)
        return
    engine.dispose()
    console.print(f"aggregator api: {workers} workers at http://{escape(_address(host, port))}/")
    _serve_workers(workers, host, port, sockets)


def _serve_workers(workers: int, host: str, port: int, sockets: list[socket.socket]) -> None:
    """N uvicorn worker processes sharing the listening ``sockets`` bound by
    :func:`bind_listeners` (what ``uvicorn.run(..., workers=N)`` does, with our sockets, so
    that no other process can take the port between the check and the start). The sockets
    are made with ``IPPROTO_TCP``, so asyncio sets TCP_NODELAY on every accepted connection;
    without it Nagle's algorithm met the client's delayed ACK on every keep-alive response
    (uvicorn issue #3149)."""
    import uvicorn
    from uvicorn.supervisors import Multiprocess

    config = uvicorn.Config(
        "aggregator.api.app:app_from_env",
        factory=True,
        workers=workers,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        **SERVER_OPTIONS,
    )
    for sock in sockets:
        sock.set_inheritable(True)
    Multiprocess(config, sockets=sockets).run()


@app.command()
def worker() -> None:
    """Run the scheduler only: fetch, refit, precompute scores, trends, email. Several workers
    may share one PostgreSQL database; leases keep them from doing the same work twice."""
    from prometheus_client import start_http_server

    from aggregator.worker.scheduler import start_scheduler

    settings, feeds_file = _setup()
    if settings.metrics_port:
        try:
            start_http_server(settings.metrics_port, addr="127.0.0.1")
        except OSError as err:
            raise _fail(
                f"cannot listen on 127.0.0.1:{settings.metrics_port} (AGGREGATOR_METRICS_PORT): "
                f"{(err.strerror or str(err)).lower()}"
            ) from None
    configure_logging(settings.log_level, settings.log_format)
    engine = _engine(settings)
    console.print(f"aggregator worker: {len(feeds_file.feeds)} feeds from {escape(str(settings.feeds_file))}")
    start_scheduler(engine, settings, blocking=True)
