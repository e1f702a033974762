"""The command line as a user runs it: `aggregator fetch`, `digest`, `db upgrade`, a bad feeds
file, and `aggregator run` as a real process serving the digest while its scheduler fetches."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import sqlalchemy as sa
from conftest import Replay
from typer.testing import CliRunner

from aggregator.cli import app
from aggregator.settings import get_settings
from aggregator.store.db import make_engine
from aggregator.store.tables import Feed

runner = CliRunner()


@pytest.fixture
def cli_env(replay: Replay, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    feeds = replay.feeds_toml(
        tmp_path,
        only=["arXiv cs.LG", "arXiv cs.CL", "Lil'Log", "colah's blog"],
        extra='\n[interests]\ntext = "reasoning in large language models"\n',
    )
    env = {
        "AGGREGATOR_DATABASE_URL": f"sqlite:///{tmp_path / 'cli.db'}",
        "AGGREGATOR_FEEDS_FILE": str(feeds),
        "AGGREGATOR_ARXIV_DELAY": "0.2",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    get_settings.cache_clear()
    yield env
    get_settings.cache_clear()


def test_fetch_then_digest_then_due_only(cli_env: dict[str, str]) -> None:
    result = runner.invoke(app, ["fetch", "--all"])
    assert result.exit_code == 0, result.output
    assert "4 with new items, 0 unchanged, 0 failed" in result.output
    assert "ranking: refitted TF-IDF" in result.output

    out = runner.invoke(app, ["digest", "--date", "2026-06-15", "--limit", "5"], env={"COLUMNS": "200"})
    assert out.exit_code == 0, out.output
    assert "digest 2026-06-15" in out.output and "arXiv cs." in out.output

    # schedule state lives in the database: nothing is due right after a pass, even in a new process
    again = runner.invoke(app, ["fetch"])
    assert again.exit_code == 0 and "0 with new items, 0 unchanged, 0 failed" in again.output
    engine = make_engine(cli_env["AGGREGATOR_DATABASE_URL"])
    with engine.connect() as c:
        assert all(n is not None for n in c.execute(sa.select(Feed.next_check_at)).scalars())
    engine.dispose()


def test_bad_feeds_file_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    bad = tmp_path / "feeds.toml"
    bad.write_text('[[feeds]]\nname = "x"\nurl = "ftp://example.org/feed"\n')
    monkeypatch.setenv("AGGREGATOR_FEEDS_FILE", str(bad))
    monkeypatch.setenv("AGGREGATOR_DATABASE_URL", f"sqlite:///{tmp_path / 'x.db'}")
    get_settings.cache_clear()
    result = runner.invoke(app, ["fetch"])
    get_settings.cache_clear()
    assert result.exit_code == 2
    assert "feeds[0] (x): 'url' must be an http(s) URL" in " ".join(result.output.split())  # rich may wrap


def test_db_upgrade(cli_env: dict[str, str]) -> None:
    result = runner.invoke(app, ["db", "upgrade"])
    assert result.exit_code == 0 and "database at head" in result.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_run_serves_the_digest_while_the_scheduler_fetches(cli_env: dict[str, str], tmp_path: Path) -> None:
    port = _free_port()
    env = {**os.environ, **cli_env, "AGGREGATOR_PORT": str(port), "AGGREGATOR_SCHEDULER_TICK": "1"}
    log = (tmp_path / "run.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "run"], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    try:
        deadline = time.monotonic() + 60
        body: dict = {}
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/api/digest?date=2026-06-15", timeout=5
                ) as r:
                    body = json.load(r)
                if body["items"] and body["ranked"] and body["items"][0]["score"] > 0:  # refitted
                    break
            except OSError:
                pass
            time.sleep(0.3)
        assert body.get("items"), (tmp_path / "run.log").read_text()[-2000:]
        assert body["items"][0]["why"]
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/feeds", timeout=5) as r:
            feeds = json.load(r)
        assert len(feeds) == 4 and all(f["last_status"] == 200 and f["next_check_at"] for f in feeds)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/?date=2026-06-15", timeout=5) as r:
            assert b"Why:" in r.read()
    finally:
        proc.terminate()
        proc.wait(timeout=20)
        log.close()
    assert proc.returncode in (0, -15)


def test_the_multi_worker_listener_gets_tcp_nodelay_connections() -> None:
    """`aggregator api --workers N` hands uvicorn's workers a listener marked as TCP, so asyncio
    turns Nagle's algorithm off on each accepted connection (uvicorn binds it with proto 0, and
    then every keep-alive response waited for the client's delayed ACK)."""
    import asyncio
    import socket

    import uvicorn

    from aggregator.cli import tcp_listener

    def accepted_nodelay(sock: socket.socket) -> int:
        async def main() -> int:
            seen: asyncio.Future[int] = asyncio.get_running_loop().create_future()

            async def on_connect(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
                peer = writer.get_extra_info("socket")
                seen.set_result(peer.getsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY))
                writer.close()

            server = await asyncio.start_server(on_connect, sock=sock)
            _, writer = await asyncio.open_connection(*sock.getsockname()[:2])
            value = await asyncio.wait_for(seen, 10)
            writer.close()
            server.close()
            await server.wait_closed()
            return value

        return asyncio.run(main())

    config = uvicorn.Config("aggregator.api.app:app_from_env", factory=True, host="127.0.0.1", port=0)
    assert accepted_nodelay(config.bind_socket()) == 0  # uvicorn's own socket: the bug
    fixed = tcp_listener(config)
    assert fixed.proto == socket.IPPROTO_TCP and fixed.get_inheritable()
    assert accepted_nodelay(fixed) != 0
