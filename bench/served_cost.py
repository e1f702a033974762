"""CPU cost of one ``GET /api/me/digest`` in process, without HTTP, on the load database.

Calls the app (the whole middleware stack and the fast lane) directly as ASGI, for random
readers of the newest day (``limit=50``), after one warm-up request per reader, and prints the
CPU milliseconds per request (``time.process_time``): as served (an unchanged body is answered
again, ``aggregator.digest.served_cache.Bodies``), and with that body cache emptied before
every request (``--cold-bodies``: the ranked rows read and the body written each time, the
cost of a reader whose digest changed since their last request; cards and counts stay cached).

    python bench/load.py --database-url URL --workers 1 --duration 1s   # builds the database
    python bench/served_cost.py --database-url URL [--requests 4000] [--cold-bodies]
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import os
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from aggregator.api.app import create_app  # noqa: E402
from aggregator.config import Settings  # noqa: E402
from aggregator.digest import served_cache  # noqa: E402


def tokens_for(url: str) -> list[str]:
    """The reader tokens bench/load.py wrote for the database ``url``."""
    digest = hashlib.sha1(url.encode()).hexdigest()[:12]
    path = Path(tempfile.gettempdir()) / f"load-tokens-{digest}.txt"
    return [t for t in path.read_text().split() if t]


async def run(url: str, requests: int, cold: bool, day: str) -> float:
    """CPU seconds per request (see the module docstring)."""
    os.environ["AGGREGATOR_RATE_LIMIT"] = "1000000/second"
    app = create_app(Settings(database_url=url), migrate=False)
    tokens = tokens_for(url)

    async def call(token: str) -> int:
        scope = {
            "type": "http",
            "asgi": {"version": "3.0"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "http",
            "path": "/api/me/digest",
            "raw_path": b"/api/me/digest",
            "root_path": "",
            "query_string": f"date={day}&limit=50".encode(),
            "headers": [(b"host", b"bench"), (b"authorization", f"Bearer {token}".encode())],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 8000),
        }
        sent: list[dict[str, Any]] = []

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"", "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            sent.append(message)

        await app(scope, receive, send)
        return int(sent[0]["status"])

    async with app.router.lifespan_context(app):
        for token in tokens:
            assert await call(token) == 200
        rng = random.Random(1)
        spent = 0.0
        for _ in range(requests):
            token = rng.choice(tokens)
            if cold:
                served_cache.bodies.entries.clear()
                served_cache.bodies.size = 0
            t0 = time.process_time()
            await call(token)
            spent += time.process_time() - t0
    return spent / requests


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--database-url", required=True)
    ap.add_argument("--requests", type=int, default=4000)
    ap.add_argument("--cold-bodies", action="store_true")
    ap.add_argument("--day", default="2026-06-30")
    args = ap.parse_args()
    per = asyncio.run(run(args.database_url, args.requests, args.cold_bodies, args.day))
    kind = "bodies emptied before each request" if args.cold_bodies else "as served"
    print(f"{args.requests} requests ({kind}): {1000 * per:.3f} ms CPU per request")


if __name__ == "__main__":
    main()
