"""Does the time of the ``POST /signin`` answer tell whether an address has an account?

The app is served by uvicorn on loopback (SQLite in a temporary folder) with an SMTP server
(aiosmtpd) that takes ``--smtp-delay`` seconds over each message, as a slow real one may. One
keep-alive client asks to sign in alternately with an address that has an account (a link is
mailed) and one that has not (nothing is mailed), ``--rounds`` times each, and the wall time
of each answer is printed as median and 90th percentile per kind. Were the mail sent before
the answer, the known address would answer ``--smtp-delay`` seconds slower; it is sent after
(a background task, :mod:`aggregator.api.link_mail`).

Wall times on a shared machine are noisy: compare the two kinds of one run, not runs.

    python bench/signin_timing.py --rounds 40 --smtp-delay 0.3
"""

from __future__ import annotations

import argparse
import asyncio
import re
import socket
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


class _SlowSmtp:
    def __init__(self, delay: float) -> None:
        self.delay, self.count = delay, 0

    async def handle_DATA(self, server, session, envelope):  # type: ignore[no-untyped-def]  # noqa: N802
        await asyncio.sleep(self.delay)
        self.count += 1
        return "250 2.0.0 accepted"


def _port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main() -> None:
    import httpx
    import uvicorn
    from aiosmtpd.controller import Controller

    from aggregator.accounts import readers
    from aggregator.api.app import create_app
    from aggregator.config import Settings
    from aggregator.store.db import make_engine, session_factory, upgrade

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--smtp-delay", type=float, default=0.3, help="seconds per message")
    args = parser.parse_args()

    tmp = Path(tempfile.mkdtemp(prefix="signin-timing-"))
    (tmp / "feeds.toml").write_text("")
    handler = _SlowSmtp(args.smtp_delay)
    smtp = Controller(handler, hostname="127.0.0.1", port=_port())
    smtp.start()
    url = f"sqlite:///{tmp / 'timing.db'}"
    settings = Settings(  # type: ignore[call-arg]
        database_url=url,
        feeds_file=tmp / "feeds.toml",
        smtp_host="127.0.0.1",
        smtp_port=smtp.port,
        smtp_security="none",
        auth_rate_limit="100000/second",
        html_rate_limit="100000/second",
        auth_mails_per_hour=100000,
    )
    engine = make_engine(url)
    upgrade(engine)
    with session_factory(engine)() as s:
        readers.create_reader(s, "known@example.org", verified=True)
        s.commit()
    port = _port()
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(settings, engine), host="127.0.0.1", port=port, log_level="warning", ws="none"
        )
    )
    threading.Thread(target=server.run, daemon=True).start()
    while not server.started:
        time.sleep(0.05)
    times: dict[str, list[float]] = {"known": [], "unknown": []}
    with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=60) as http:
        page = http.get("/signin").text
        found = re.search(r'name="csrf_token" value="([^"]+)"', page)
        assert found is not None
        csrf = found.group(1)
        for i in range(args.rounds * 2):
            kind = "known" if i % 2 == 0 else "unknown"
            address = "known@example.org" if kind == "known" else f"nobody{i}@example.org"
            start = time.perf_counter()
            resp = http.post("/signin", data={"email": address, "csrf_token": csrf})
            times[kind].append(time.perf_counter() - start)
            assert resp.status_code == 200, resp.text
    deadline = time.monotonic() + args.rounds * args.smtp_delay + 30
    while handler.count < args.rounds and time.monotonic() < deadline:
        time.sleep(0.05)
    server.should_exit = True
    smtp.stop()
    print(f"POST /signin, {args.rounds} answers per kind, SMTP {args.smtp_delay * 1000:.0f} ms per message")
    for kind, values in times.items():
        ms = sorted(v * 1000 for v in values)
        p90 = ms[int(0.9 * (len(ms) - 1))]
        print(f"  {kind:8s} median {statistics.median(ms):7.1f} ms   p90 {p90:7.1f} ms")
    print(f"  messages the SMTP server accepted: {handler.count} (one per known-address answer)")


if __name__ == "__main__":
    main()
