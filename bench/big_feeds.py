"""Benchmark: peak memory of ``aggregator fetch --all`` with four 16 MiB feeds (security issue 14,
finding 8: four such feeds parsed at once peaked at 1.6 GB; the target is ≤ 600 MB).

Builds four real-looking feeds of ~16 MB each from real captures in ``../shared/data`` (nothing
is written into the repository): two arXiv RSS listings (the 1,504 items of the FULL
multi-archive capture, repeated with their arXiv ids moved to other months) and two blog feeds
(Lil'Log's full-HTML posts and The Batch, repeated with distinct links). Serves them from this
process on loopback, writes a ``feeds.toml`` naming them and runs ``aggregator fetch --all``
against a temporary SQLite database in a child process.

Prints the child's peak RSS as the kernel reports it (``getrusage(RUSAGE_CHILDREN).ru_maxrss``:
the largest single process among the children waited for) and the peak of the summed RSS of the
child and all its descendants (parse worker processes included), sampled every 20 ms from
``/proc``. Run:  python bench/big_feeds.py [--feeds 4] [--mib 16] [--keep]
"""

from __future__ import annotations

import argparse
import http.server
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
ARXIV = DATA / "arxiv-rss" / "all-archives-2024-11-28-rss2-FULL-aioarxiv.xml"
BLOGS = (
    DATA / "blogs" / "lilianweng-lillog-2026-07-04-rss2-hugo.xml",
    DATA / "blogs" / "olshansk-the_batch-2026-06-04-rss2-feedgen.xml",
)
_ITEM = re.compile(rb"<item>.*?</item>", re.DOTALL)
_ARXIV_ID = re.compile(rb"\b(\d{4})\.(\d{5})")
_LINK = re.compile(rb"<(link|guid)([^>]*)>([^<]+)</\1>")


def _repeat(source: Path, size: int, copy_item: object) -> bytes:
    """``source`` with its items repeated (each copy rewritten by ``copy_item(item, n)``) until
    the document is about ``size`` bytes."""
    text = source.read_bytes()
    items = _ITEM.findall(text)
    head, tail = text[: text.index(items[0])], text[text.rindex(items[-1]) + len(items[-1]) :]
    out, total, n = [head], len(head) + len(tail), 0
    while True:
        for item in items:
            piece = copy_item(item, n)  # type: ignore[operator]
            if total + len(piece) > size:
                out.append(tail)
                return b"".join(out)
            out.append(piece)
            total += len(piece)
        n += 1


def arxiv_feed(size: int, month_offset: int) -> bytes:
    def copy(item: bytes, n: int) -> bytes:
        yymm = b"%02d%02d" % (10 + (month_offset + n) // 12, 1 + (month_offset + n) % 12)
        return _ARXIV_ID.sub(lambda m: yymm + b"." + m.group(2), item)

    return _repeat(ARXIV, size, copy)


def blog_feed(source: Path, size: int) -> bytes:
    def copy(item: bytes, n: int) -> bytes:
        return _LINK.sub(lambda m: b"<%s%s>%s?copy=%d</%s>" % (m[1], m[2], m[3].strip(), n, m[1]), item)

    return _repeat(source, size, copy)


def serve(docs: dict[str, bytes]) -> http.server.ThreadingHTTPServer:
    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            body = docs.get(self.path)
            if body is None:
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Type", "application/rss+xml; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def _tree_rss(pid: int) -> int:
    """Summed RSS in bytes of ``pid`` and its descendants (parse workers included). A child
    between fork and exec (same command line as its parent) shares its parent's memory (vfork)
    and is not counted twice."""
    total, todo = 0, [(pid, b"")]
    while todo:
        p, parent_cmdline = todo.pop()
        try:
            cmdline = Path(f"/proc/{p}/cmdline").read_bytes()
            status = Path(f"/proc/{p}/status").read_text()
            if cmdline != parent_cmdline:
                total += int(status.split("VmRSS:")[1].split()[0]) * 1024
            for task in Path(f"/proc/{p}/task").iterdir():
                todo.extend((int(c), cmdline) for c in (task / "children").read_text().split())
        except (OSError, IndexError, ValueError):
            continue
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--feeds", type=int, default=4, help="how many big feeds (half arXiv, half blogs)")
    ap.add_argument("--mib", type=float, default=16.0, help="size of each feed, MiB (the fetch limit is 16)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = ap.parse_args()
    size = int(args.mib * 1024 * 1024) - 4096  # under AGGREGATOR_MAX_BODY_BYTES (16 MiB)
    docs: dict[str, bytes] = {}
    for i in range(args.feeds):
        if i % 2 == 0:
            docs[f"/arxiv{i}.xml"] = arxiv_feed(size, month_offset=12 * i)
        else:
            docs[f"/blog{i}.xml"] = blog_feed(BLOGS[(i // 2) % len(BLOGS)], size)
    server = serve(docs)
    base = f"http://127.0.0.1:{server.server_address[1]}"
    tmp = Path(tempfile.mkdtemp(prefix="big-feeds-"))
    toml = "".join(
        f'[[feeds]]\nname = "big {path[1:]}"\nurl = "{base}{path}"\ninterval = 60\n\n' for path in docs
    )
    (tmp / "feeds.toml").write_text(toml)
    env = {
        **os.environ,
        "AGGREGATOR_DATABASE_URL": f"sqlite:///{tmp / 'big.db'}",
        "AGGREGATOR_FEEDS_FILE": str(tmp / "feeds.toml"),
        "AGGREGATOR_ARXIV_DELAY_SECONDS": "0",
        "AGGREGATOR_ARXIV_API_URL": f"{base}/api/query",
        "PYTHONUNBUFFERED": "1",  # answers 404: no enrichment from the internet
    }
    sizes = ", ".join(f"{p[1:]} {len(b) / 2**20:.1f} MiB" for p, b in docs.items())
    print(f"feeds: {sizes}", flush=True)
    exe = shutil.which("aggregator", path=str(Path(sys.executable).parent)) or "aggregator"
    started = time.perf_counter()
    proc = subprocess.Popen(
        [exe, "fetch", "--all"], env=env, cwd=tmp, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    samples: list[tuple[float, int]] = []  # (seconds since start, summed RSS bytes)
    lines: list[tuple[float, str]] = []  # (seconds since start, output line)

    def read() -> None:
        for raw in proc.stdout:  # type: ignore[union-attr]
            lines.append((time.perf_counter() - started, raw.decode(errors="replace").rstrip()))

    reader = threading.Thread(target=read)
    reader.start()
    while proc.poll() is None:
        samples.append((time.perf_counter() - started, _tree_rss(proc.pid)))
        time.sleep(0.02)
    reader.join()
    wall = time.perf_counter() - started
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    text = "\n".join(line for _, line in lines)
    summary = [ln for ln in text.splitlines() if ln.startswith(("feeds:", "ranking:", "trends:"))]
    print("\n".join(summary) or text[-3000:])
    cpu = usage.ru_utime + usage.ru_stime
    print(f"exit {proc.returncode}; wall {wall:.1f} s; CPU {cpu:.1f} s (child + descendants waited for)")
    print(f"peak RSS, largest process (ru_maxrss): {usage.ru_maxrss / 1024:.0f} MiB")
    peak_tree = max((rss for _, rss in samples), default=0)
    print(f"peak RSS, child + descendants summed (sampled /proc): {peak_tree / 2**20:.0f} MiB")
    # phases, from when their output lines appeared: fetch+parse+store ends with the summary table
    marks = [("fetch, parse, store", "fetch summary"), ("ranking refit", "ranking:"), ("trends", "trends:")]
    start = 0.0
    for phase, prefix in [*marks, ("enrich, cards", None)]:
        end = next((t for t, ln in lines if prefix and prefix in ln), wall) if prefix else wall
        inside = [rss for t, rss in samples if start <= t <= end]
        if inside:
            print(f"  {phase:<22} {start:6.1f}–{end:6.1f} s  peak {max(inside) / 2**20:5.0f} MiB")
        start = max(start, end)
    server.shutdown()
    if args.keep:
        print(f"kept {tmp}")
    else:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
