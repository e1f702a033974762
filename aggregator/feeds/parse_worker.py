"""The parse worker process of :mod:`aggregator.feeds.parse_pool`: ``python -m
aggregator.feeds.parse_worker``.

Reads requests from stdin and writes answers to stdout. A request is a pickle of ``(kwargs,
cpu_seconds, size)`` followed by the ``size`` bytes of the document; the answer is a pickle of
the :class:`~aggregator.types.ParsedFeed` of :func:`~aggregator.feeds.parse.parse_feed`, written
to the pipe as it is made (no copy of it in memory). Before each document the soft
``RLIMIT_CPU`` is set to the CPU used so far plus ``cpu_seconds``: the kernel ends the process
with ``SIGXCPU`` when a document goes over (no core file). The pickles come only from the parent
process that started this one (pickle is not for untrusted input; the document travels as raw
bytes). Exits at the end of stdin.
"""

from __future__ import annotations

import ctypes
import functools
import math
import pickle
import resource
import signal
import sys
from typing import IO, Any

from aggregator.feeds.parse import parse_feed


def send_request(stream: IO[bytes], body: bytes, kwargs: dict[str, Any], cpu_seconds: float) -> None:
    """Write one request (see the module doc) and flush."""
    pickle.dump((kwargs, cpu_seconds, len(body)), stream, protocol=pickle.HIGHEST_PROTOCOL)
    stream.write(body)
    stream.flush()


def _read_exactly(stream: IO[bytes], size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise EOFError("the request ended early")
    return data


def release_freed_memory() -> None:
    """Give the memory freed so far back to the system (glibc ``malloc_trim(0)``; nothing
    elsewhere). Freed memory otherwise stays in the malloc arena of the thread that freed it,
    where the next large document, handled by another thread, cannot reuse it; in a worker,
    the answer would be made on top of the parser's leftovers."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)


@functools.cache
def _malloc_trim() -> Any:
    try:
        return ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None


def main() -> None:
    # Ctrl-C reaches the whole process group: the parent decides, and closes stdin to stop us
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while True:
        try:
            kwargs, cpu_seconds, size = pickle.load(stdin)
            body = _read_exactly(stdin, size)
        except EOFError:
            return
        usage = resource.getrusage(resource.RUSAGE_SELF)
        soft = math.ceil(usage.ru_utime + usage.ru_stime + cpu_seconds)
        if hard != resource.RLIM_INFINITY:
            soft = min(soft, hard)
        resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
        parsed = parse_feed(body, **kwargs)
        del body
        release_freed_memory()
        pickle.dump(parsed, stdout, protocol=pickle.HIGHEST_PROTOCOL)
        stdout.flush()
        del parsed


if __name__ == "__main__":
    main()
