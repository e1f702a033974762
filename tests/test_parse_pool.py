"""Security issue 14, findings 2 and 8: documents are parsed in worker processes with a CPU
limit each and a byte budget on the documents parsed at once. The attacks are reproduced: a
feed of 40,000-deep entries and a feed that costs seconds of CPU within the HTML bounds, next to
a real blog, in one fetch pass (SQLite and PostgreSQL); and a reader adding them while the API
(real uvicorn on loopback) keeps answering ``/healthz``."""

from __future__ import annotations

import datetime as dt
import http.server
import json
import os
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from helpers import free_port

from aggregator.api.app import create_app
from aggregator.config import Settings, load_feeds_file
from aggregator.feeds.html_bounds import MAX_DEPTH
from aggregator.feeds.parse_pool import ByteBudget, ParsePool
from aggregator.store.db import session_factory
from aggregator.store.tables import Feed, Item, ItemSource
from aggregator.worker import refresh

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
BAIR = DATA / "blogs" / "bair-blog-2026-04-rss2-distill.xml"
FETCHED = dt.datetime(2026, 8, 1, tzinfo=dt.UTC)
CPU_LIMITED = "parsing stopped: the document used more than 1 CPU-seconds (AGGREGATOR_PARSE_CPU_SECONDS)"


def rss(items: list[tuple[str, str]], cdata: bool = False) -> bytes:
    """An RSS 2.0 document of ``(title, description HTML)`` items."""
    body = "".join(
        f"<item><title>{escape(t)}</title><link>https://hostile.example/{i}</link>"
        + (
            f"<description><![CDATA[{d}]]></description>"
            if cdata
            else f"<description>{escape(d)}</description>"
        )
        + "</item>"
        for i, (t, d) in enumerate(items)
    )
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Hostile</title>'
        f"<link>https://hostile.example/</link><description>d</description>{body}</channel></rss>"
    ).encode()


#: The finding's entry (40,000 nested <div>, 200 kB before its text) five times, and a fine one.
NESTED_FEED = rss(
    [(f"Deep {i}", "<div>" * 40_000 + "x" + "</div>" * 40_000) for i in range(5)]
    + [("Fine", "<p>A <b>fine</b> post</p>")]
)
#: ~16 MB within the HTML bounds (19,000 elements per entry, depth 1) that costs seconds of CPU.
HEAVY_FEED = rss([(f"Dense {i}", "<b>xy</b> " * 19_000) for i in range(85)], cdata=True)


class Docs:
    """Documents served on loopback: ``/nested.xml``, ``/heavy.xml``, ``/bair.xml``."""

    def __init__(self) -> None:
        docs = {"/nested.xml": NESTED_FEED, "/heavy.xml": HEAVY_FEED, "/bair.xml": BAIR.read_bytes()}

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's name
                body = docs.get(self.path)
                self.send_response(200 if body is not None else 404)
                self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
                self.send_header("Content-Length", str(len(body or b"")))
                self.end_headers()
                self.wfile.write(body or b"")

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def docs() -> Iterator[Docs]:
    served = Docs()
    yield served
    served.close()


def test_the_byte_budget_lets_large_documents_through_one_at_a_time() -> None:
    budget = ByteBudget(100)
    inside: list[int] = []
    most: list[int] = []
    lock = threading.Lock()
    release = threading.Event()

    def hold(size: int) -> None:
        with budget.hold(size):
            with lock:
                inside.append(size)
                most.append(sum(inside))
            release.wait(10)
            with lock:
                inside.remove(size)

    first = threading.Thread(target=hold, args=(60,))
    first.start()
    while not inside:
        time.sleep(0.01)
    others = [threading.Thread(target=hold, args=(n,)) for n in (30, 50, 500)]
    for t in others:
        t.start()
    while budget.used < 90:  # the 30 fits beside the 60; the 50 and the 500 wait
        time.sleep(0.01)
    assert sorted(inside) == [30, 60]
    release.set()
    for t in [first, *others]:
        t.join(10)
    assert budget.used == 0 and budget.peak <= 100 and max(most) <= 500
    assert all(m <= 100 for m in most if m != 500), "a document over the budget runs alone"


def test_a_document_over_the_cpu_limit_stops_its_worker_and_the_next_document_parses() -> None:
    pool = ParsePool(workers=1, cpu_seconds=1, budget_bytes=64 * 2**20)
    try:
        before = time.process_time()
        stopped = pool.parse(HEAVY_FEED, fetched_at=FETCHED, url="https://hostile.example/feed")
        parent_cpu = time.process_time() - before
        assert stopped.entries == () and stopped.problems == (CPU_LIMITED,)
        assert parent_cpu < 1.0, "the parse ran in the worker, not in this process"
        fine = pool.parse(
            BAIR.read_bytes(), fetched_at=FETCHED, url="https://bair.berkeley.edu/blog/feed.xml"
        )
        assert len(fine.entries) == 3 and fine.entries[0].summary_html
        nested = pool.parse(NESTED_FEED, fetched_at=FETCHED, url="https://hostile.example/feed")
        assert [e.title for e in nested.entries] == ["Deep 0", "Deep 1", "Deep 2", "Deep 3", "Deep 4", "Fine"]
        assert nested.entries[-1].summary_html == "<p>A <b>fine</b> post</p>"
    finally:
        pool.close()


@pytest.mark.slow
def test_fetch_all_ingests_the_other_feeds_beside_hostile_ones(
    engine: sa.Engine, database_url: str, tmp_path: Path, docs: Docs
) -> None:
    (tmp_path / "feeds.toml").write_text(
        "".join(
            f'[[feeds]]\nname = "{name}"\nurl = "{docs.base}/{name}.xml"\nkind = "blog"\n\n'
            for name in ("nested", "heavy", "bair")
        )
    )
    settings = Settings(
        database_url=database_url, feeds_file=tmp_path / "feeds.toml", parse_cpu_seconds=1, parse_workers=2
    )
    report = refresh.refresh_feeds(engine, settings, load_feeds_file(settings.feeds_file), include_all=True)
    states = {o.name: o.state for o in report.outcomes}
    assert states == {"nested": "new", "heavy": "failed", "bair": "new"}
    with session_factory(engine)() as s:
        feeds = {f.name: f for f in s.scalars(sa.select(Feed))}
        counts = dict(
            s.execute(
                sa.select(Feed.name, sa.func.count(ItemSource.item_id))
                .join(ItemSource, ItemSource.feed_id == Feed.id)
                .group_by(Feed.name)
            ).all()
        )
        deep = s.scalar(sa.select(Item).where(Item.title == "Deep 0"))
        assert deep is not None and deep.summary_html is None  # its text lies past the 200 kB cut
    assert counts == {"nested": 6, "bair": 3}
    reason = f"summary shown as plain text: HTML nested deeper than {MAX_DEPTH} levels"
    assert f"entry 'Deep 0': {reason}" in (feeds["nested"].parse_problems or "")
    assert "and 2 more entries with HTML shown as plain text" in (feeds["nested"].parse_problems or "")
    assert CPU_LIMITED in (feeds["heavy"].last_error or "")
    # what a reader sees: GET /api/feeds and the feeds page
    with TestClient(create_app(settings, engine)) as client:
        shown = {f["name"]: f for f in client.get("/api/feeds").json()}
        page = client.get("/feeds").text
    assert f"entry 'Deep 0': {reason}" in (shown["nested"]["parse_problems"] or "")
    assert CPU_LIMITED in (shown["heavy"]["last_error"] or "")
    assert f"Parse notes: entry &#39;Deep 0&#39;: {reason}" in page


def _get(url: str, timeout: float = 30) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as err:
        return err.code, err.read()


def _post(url: str, payload: dict, headers: dict[str, str] | None = None) -> tuple[int, dict]:
    request = urllib.request.Request(
        url, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})}
    )
    try:
        with urllib.request.urlopen(request, timeout=300) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) of one process, from ``/proc/<pid>/stat``."""
    fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_the_api_answers_healthz_while_a_reader_adds_hostile_feeds(tmp_path: Path, docs: Docs) -> None:
    port = free_port()
    (tmp_path / "feeds.toml").write_text("")
    env = {
        **os.environ,
        "AGGREGATOR_DATABASE_URL": f"sqlite:///{tmp_path / 'api.db'}",
        "AGGREGATOR_FEEDS_FILE": str(tmp_path / "feeds.toml"),
        "AGGREGATOR_FEED_ALLOW_HOSTS": '["127.0.0.1"]',
        "AGGREGATOR_PARSE_CPU_SECONDS": "1",
        "AGGREGATOR_RATE_LIMIT": "100000/second",
    }
    log = (tmp_path / "api.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "aggregator", "api", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                if _get(f"{base}/healthz", timeout=2)[0] == 200:
                    break
            except OSError:
                pass
            assert proc.poll() is None, (tmp_path / "api.log").read_text()
            assert time.monotonic() < deadline, "aggregator api did not start within 60 s"
            time.sleep(0.2)
        status, reader = _post(f"{base}/api/readers", {"email": "mallory@example.org"})
        assert status == 201, reader
        auth = {"Authorization": f"Bearer {reader['token']}"}

        answers: dict[str, tuple[int, dict]] = {}

        def add(name: str) -> None:
            answers[name] = _post(f"{base}/api/me/feeds", {"url": f"{docs.base}/{name}.xml"}, auth)

        api_cpu = _cpu_seconds(proc.pid)
        adding = threading.Thread(target=add, args=("heavy",))
        adding.start()
        healthy_meanwhile = 0
        while adding.is_alive():
            status, body = _get(f"{base}/healthz")
            if adding.is_alive():
                assert status == 200, body
                healthy_meanwhile += 1
            time.sleep(0.05)
        adding.join()
        add("nested")
        api_cpu = _cpu_seconds(proc.pid) - api_cpu
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        log.close()
    status, refused = answers["heavy"]
    assert status == 422 and CPU_LIMITED in json.dumps(refused), refused
    assert healthy_meanwhile >= 1, "healthz answered while the heavy feed was being parsed"
    status, added = answers["nested"]
    assert status == 201 and added["title"] == "Hostile", added
    # Parsed in the API process, the heavy feed costs ~5 CPU-s and the five 40,000-deep entries
    # ~25 CPU-s unbounded: the API itself spent far less (fetches, frames, healthz answers).
    assert api_cpu < 3.0, f"the API process spent {api_cpu:.2f} CPU-s"


def _tree_rss(pid: int) -> tuple[int, int]:
    """Summed RSS in bytes of ``pid`` and its descendants (parse workers included), and the
    largest high-water mark (``VmHWM``) of one of them. A child between fork and exec (same
    command line as its parent) shares its parent's memory (vfork) and is not counted twice.

    (Not ``ru_maxrss`` of ``wait4``: Linux carries the high-water mark of the memory a child
    had before ``exec`` into it, and a vforked child's is the test process's own, over 1 GB
    late in the whole suite.)"""
    total, largest, todo = 0, 0, [(pid, b"")]
    while todo:
        p, parent_cmdline = todo.pop()
        try:
            cmdline = Path(f"/proc/{p}/cmdline").read_bytes()
            status = Path(f"/proc/{p}/status").read_text()
            if cmdline != parent_cmdline:
                total += int(status.split("VmRSS:")[1].split()[0]) * 1024
                largest = max(largest, int(status.split("VmHWM:")[1].split()[0]) * 1024)
            for task in Path(f"/proc/{p}/task").iterdir():
                todo.extend((int(c), cmdline) for c in (task / "children").read_text().split())
        except (OSError, IndexError, ValueError):
            continue
    return total, largest


_BIG = DATA / "arxiv-rss" / "all-archives-2024-11-28-rss2-FULL-aioarxiv.xml"
_REFRESH = """
import json, sys
from aggregator.api.app import create_app
from aggregator.config import Settings, load_feeds_file
from aggregator.store.db import make_engine, upgrade
from aggregator.worker import refresh
settings = Settings()
engine = make_engine(settings.database_url)
upgrade(engine)
report = refresh.refresh_feeds(engine, settings, load_feeds_file(settings.feeds_file), include_all=True)
print(json.dumps({o.name: [o.state, o.new_items] for o in report.outcomes}))
"""


def _big_feeds(size: int) -> dict[str, bytes]:
    """Four ~``size``-byte feeds from real captures: the 1,504-item arXiv listing and Lil'Log's
    full-HTML posts, items repeated with their ids and links made distinct."""
    import re

    def repeat(source: Path, copy: object) -> bytes:
        text = source.read_bytes()
        items = re.findall(rb"<item>.*?</item>", text, re.DOTALL)
        head, tail = text[: text.index(items[0])], text[text.rindex(items[-1]) + len(items[-1]) :]
        out, total, n = [head], len(head) + len(tail), 0
        while total < size - 200_000:
            for item in items:
                piece = copy(item, n)  # type: ignore[operator]
                out.append(piece)
                total += len(piece)
            n += 1
        return b"".join([*out, tail])

    def arxiv(offset: int) -> bytes:
        def copy(item: bytes, n: int) -> bytes:
            month = offset + n
            yymm = b"%02d%02d" % (10 + month // 12, 1 + month % 12)
            return re.sub(rb"\b\d{4}\.(\d{5})", lambda m: yymm + b"." + m.group(1), item)

        return repeat(_BIG, copy)

    def blog(item: bytes, n: int) -> bytes:
        return re.sub(
            rb"<(link|guid)([^>]*)>([^<]+)</\1>",
            lambda m: b"<%s%s>%s?copy=%d</%s>" % (m[1], m[2], m[3].strip(), n, m[1]),
            item,
        )

    lillog = DATA / "blogs" / "lilianweng-lillog-2026-07-04-rss2-hugo.xml"
    return {
        "/a0.xml": arxiv(0),
        "/b1.xml": repeat(lillog, blog),
        "/a2.xml": arxiv(24),
        "/b3.xml": repeat(lillog, lambda i, n: blog(i, n + 1000)),
    }


@pytest.mark.slow
@pytest.mark.skipif(sys.platform != "linux", reason="reads /proc")
def test_four_16_mib_feeds_in_one_fetch_pass_stay_within_the_memory_bound(tmp_path: Path) -> None:
    docs = _big_feeds(16 * 2**20 - 4096)
    assert all(15 * 2**20 < len(b) <= 16 * 2**20 for b in docs.values())

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 - http.server's name
            body = docs[self.path]
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    base = f"http://127.0.0.1:{server.server_address[1]}"
    (tmp_path / "feeds.toml").write_text(
        "".join(f'[[feeds]]\nname = "{p[1:-4]}"\nurl = "{base}{p}"\n\n' for p in docs)
    )
    env = {
        **os.environ,
        "AGGREGATOR_DATABASE_URL": f"sqlite:///{tmp_path / 'big.db'}",
        "AGGREGATOR_FEEDS_FILE": str(tmp_path / "feeds.toml"),
        "AGGREGATOR_ARXIV_DELAY_SECONDS": "0",
        "AGGREGATOR_PER_HOST_CONCURRENCY": "4",  # four feeds of four hosts: all fetched at once
        **{k: v for k, v in (("PYTHONPATH", os.environ.get("BIG_FEEDS_PYTHONPATH")),) if v},
    }
    try:
        proc = subprocess.Popen(
            [sys.executable, "-c", _REFRESH], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        streams: dict[str, bytes] = {}
        readers = [
            threading.Thread(target=lambda n=n, f=f: streams.__setitem__(n, f.read()))  # type: ignore[misc]
            for n, f in (("out", proc.stdout), ("err", proc.stderr))
        ]
        for r in readers:
            r.start()
        peak = largest = 0
        while True:
            pid, status = os.waitpid(proc.pid, os.WNOHANG)
            if pid:
                break
            total, hwm = _tree_rss(proc.pid)
            peak, largest = max(peak, total), max(largest, hwm)
            time.sleep(0.02)
        proc.returncode = os.waitstatus_to_exitcode(status)
        for r in readers:
            r.join()
        out, err = streams["out"], streams["err"]
    finally:
        server.shutdown()
        server.server_close()
    assert proc.returncode == 0, err.decode()[-3000:]
    outcomes = json.loads(out.decode().strip().splitlines()[-1])
    assert {name: state for name, (state, _) in outcomes.items()} == dict.fromkeys(
        ("a0", "b1", "a2", "b3"), "new"
    )
    assert all(new > 5000 for _, new in outcomes.values())
    # A bound, not a before/after comparison: main before issue 14 measures 275-282 MiB (largest
    # process) and 361-363 MiB (tree) here on a quiet machine, 433 MiB in one process under
    # load; this branch 276-289 and 351-362 MiB. The whole `aggregator fetch --all` went from
    # 799 MiB to 550 MiB (bench/big_feeds.py, docs/parsing.md "Bounds").
    assert largest < 400 * 2**20, f"largest process of the fetch pass: {largest / 2**20:.0f} MiB"
    assert peak < 450 * 2**20, f"peak RSS of the fetch pass: {peak / 2**20:.0f} MiB"
