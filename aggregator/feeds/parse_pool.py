"""Parsing feed documents in worker processes, with a CPU-time limit per document and a byte
budget on the documents parsed at once (security issue 14, findings 2 and 8).

:class:`ParsePool` (one per process and settings: :func:`pool_for`) runs
:func:`~aggregator.feeds.parse.parse_feed` within three bounds, so that one hostile or huge feed
cannot hold the API process, starve the other feeds of a fetch pass, or take the memory of the
machine:

* **CPU time.** The document is parsed in a worker process (at most ``settings.parse_workers``
  of them per process that parses: the API, ``aggregator fetch``, the worker) whose
  ``RLIMIT_CPU`` is set to the CPU it has used so far plus ``settings.parse_cpu_seconds``
  (:mod:`aggregator.feeds.parse_worker`);
  the kernel stops a worker that goes over (``SIGXCPU``), and the parent also gives up after
  :func:`wall_limit` seconds of waiting (a stuck worker is killed). Either way the feed gets a
  :class:`~aggregator.types.ParsedFeed` with no entries and the reason in ``problems``, which
  :func:`~aggregator.feeds.ingest.apply_fetch` records as the feed's error; a new worker takes
  the next document. The threads that wait hold no lock the event loop needs, so the API keeps
  answering (``/healthz`` included) while a reader's feed is parsed.
* **Memory.** :class:`ByteBudget`: documents are parsed (and, in a fetch pass, stored) while
  the sum of their sizes is at most ``settings.parse_budget_bytes``; a larger document waits
  until it can run alone. A worker that parsed a document over :data:`RECYCLE_BYTES` exits
  afterwards, so the memory it grew to goes back to the system, and the parent gives back what
  it freed after storing such a document (:func:`~aggregator.feeds.parse_worker.release_freed_memory`).
* **Per field.** Inside the worker the HTML bounds of :mod:`aggregator.feeds.html_bounds` apply.

``settings.parse_workers = 0`` parses in the calling thread (no CPU limit; the byte budget
still applies). A worker is ``python -m aggregator.feeds.parse_worker`` (a fresh interpreter:
nothing of the parent's state, threads or main module), started on first use and kept for the
next document.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures
import datetime as dt
import functools
import os
import pickle
import select
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext, suppress
from dataclasses import dataclass
from typing import Any

from aggregator.config import Settings
from aggregator.feeds.parse import FeedKind, parse_feed
from aggregator.feeds.parse_worker import send_request
from aggregator.types import ParsedFeed

#: A worker that parsed a document larger than this (bytes) exits afterwards.
RECYCLE_BYTES = 4 * 1024 * 1024


def wall_limit(cpu_seconds: float) -> float:
    """Seconds the parent waits for one document: ten times the CPU limit, at least 60 s (the
    machine may be loaded; the CPU limit is the real bound, this one catches a stuck worker)."""
    return max(60.0, 10 * cpu_seconds)


class ByteBudget:
    """At most ``limit`` bytes of documents held at once; :meth:`hold` of a larger document
    waits until nothing else is held, then runs alone. Thread-safe."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0
        self.peak = 0
        self._cond = threading.Condition()

    @contextmanager
    def hold(self, size: int) -> Iterator[None]:
        """Hold ``min(size, limit)`` bytes for the ``with`` block (blocks until they are free)."""
        size = max(1, min(size, self.limit))
        with self._cond:
            self._cond.wait_for(lambda: self.used + size <= self.limit)
            self.used += size
            self.peak = max(self.peak, self.used)
        try:
            yield
        finally:
            with self._cond:
                self.used -= size
                self._cond.notify_all()


@dataclass
class _Worker:
    process: subprocess.Popen[bytes]

    def stop(self) -> None:
        for stream in (self.process.stdin, self.process.stdout):
            if stream is not None:
                with suppress(OSError):
                    stream.close()
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait(5)

    def ask(
        self, body: bytes, kwargs: dict[str, Any], cpu_seconds: float, timeout: float
    ) -> ParsedFeed | None:
        """Send one document and read its ParsedFeed; ``None`` after ``timeout`` seconds without
        an answer. Raises ``EOFError``/``OSError``/``pickle.UnpicklingError`` when the worker is
        gone."""
        stdin, stdout = self.process.stdin, self.process.stdout
        assert stdin is not None and stdout is not None
        send_request(stdin, body, kwargs, cpu_seconds)
        ready, _, _ = select.select([stdout], [], [], timeout)
        if not ready:
            return None
        parsed: ParsedFeed = pickle.load(stdout)
        return parsed


class ParsePool:
    """Up to ``workers`` worker processes, each parsing one document at a time, and the byte
    budget of the process (see the module doc). Thread-safe; :meth:`parse` blocks its calling
    thread, :meth:`parse_async` waits in a thread of the pool's own (never the event loop's
    default executor, which other work of the API needs)."""

    def __init__(self, workers: int, cpu_seconds: float, budget_bytes: int) -> None:
        self.workers = workers
        self.cpu_seconds = cpu_seconds
        self.budget = ByteBudget(budget_bytes)
        self._slots = threading.BoundedSemaphore(max(1, workers))
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()
        self._waiters: concurrent.futures.ThreadPoolExecutor | None = None

    def parse(
        self,
        body: bytes,
        *,
        fetched_at: dt.datetime,
        url: str = "",
        kind: FeedKind | None = None,
        content_type: str | None = None,
        hold_budget: bool = True,
    ) -> ParsedFeed:
        """:func:`~aggregator.feeds.parse.parse_feed` of ``body`` within the bounds; never raises
        for the document (over a bound: no entries and the reason in ``problems``).
        ``hold_budget=False`` when the caller already holds ``len(body)`` of :attr:`budget`."""
        kwargs = {"fetched_at": fetched_at, "url": url, "kind": kind, "content_type": content_type}
        with self.budget.hold(len(body)) if hold_budget else nullcontext():
            if self.workers == 0:
                return parse_feed(body, **kwargs)  # type: ignore[arg-type]
            with self._slots:
                return self._in_worker(body, kwargs)

    async def parse_async(
        self,
        body: bytes,
        *,
        fetched_at: dt.datetime,
        url: str = "",
        kind: FeedKind | None = None,
        content_type: str | None = None,
    ) -> ParsedFeed:
        """:meth:`parse`, awaited: the event loop runs on while a worker parses."""
        with self._lock:
            if self._waiters is None:
                self._waiters = concurrent.futures.ThreadPoolExecutor(8, thread_name_prefix="parse-wait")
            waiters = self._waiters
        call = functools.partial(
            self.parse, body, fetched_at=fetched_at, url=url, kind=kind, content_type=content_type
        )
        return await asyncio.get_running_loop().run_in_executor(waiters, call)

    def _in_worker(self, body: bytes, kwargs: dict[str, Any]) -> ParsedFeed:
        worker = self._take()
        keep = False
        try:
            parsed = worker.ask(body, kwargs, self.cpu_seconds, wall_limit(self.cpu_seconds))
            if parsed is not None:
                keep = len(body) <= RECYCLE_BYTES
                return parsed
            reason = f"took more than {wall_limit(self.cpu_seconds):g} s"
        except (EOFError, OSError, pickle.UnpicklingError):  # the worker died: SIGXCPU, or killed
            code = worker.process.wait(5)
            if code == -signal.SIGXCPU:
                reason = f"used more than {self.cpu_seconds:g} CPU-seconds"
            else:
                reason = f"stopped the parsing process (exit code {code})"
        finally:
            if keep:
                with self._lock:
                    self._idle.append(worker)
            else:
                worker.stop()
        return ParsedFeed(
            kind=kwargs["kind"] or "blog",
            title="",
            link=kwargs["url"] or None,
            entries=(),
            problems=(f"parsing stopped: the document {reason} (AGGREGATOR_PARSE_CPU_SECONDS)",),
        )

    def _take(self) -> _Worker:
        with self._lock:
            while self._idle:
                worker = self._idle.pop()
                if worker.process.poll() is None:
                    return worker
                worker.stop()
        process = subprocess.Popen(
            [sys.executable, "-m", "aggregator.feeds.parse_worker"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            close_fds=True,
        )
        return _Worker(process)

    def close(self) -> None:
        """Stop the idle workers (busy ones stop when their document is done)."""
        with self._lock:
            idle, self._idle = self._idle, []
            waiters, self._waiters = self._waiters, None
        for worker in idle:
            worker.stop()
        if waiters is not None:
            waiters.shutdown(wait=False)


_POOLS: dict[tuple[int, float, int], tuple[int, ParsePool]] = {}
_POOLS_LOCK = threading.Lock()


def pool_for(settings: Settings) -> ParsePool:
    """This process's pool for these settings (one per distinct ``parse_*`` values; a forked
    child gets its own)."""
    key = (settings.parse_workers, settings.parse_cpu_seconds, settings.parse_budget_bytes)
    with _POOLS_LOCK:
        found = _POOLS.get(key)
        if found is None or found[0] != os.getpid():
            found = _POOLS[key] = (os.getpid(), ParsePool(*key))
        return found[1]


@atexit.register
def _close_pools() -> None:
    for pid, pool in _POOLS.values():
        if pid == os.getpid():
            pool.close()
