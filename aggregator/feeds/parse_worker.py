"""The parse worker process of :mod:`aggregator.feeds.parse_pool`: ``python -m
aggregator.feeds.parse_worker``.

Reads requests from stdin and writes answers to stdout, each a frame: 8 bytes of length (big
endian) then a pickle. A request is ``(body, kwargs, cpu_seconds)``; the answer is the
:class:`~aggregator.types.ParsedFeed` of :func:`~aggregator.feeds.parse.parse_feed`. Before each
document the soft ``RLIMIT_CPU`` is set to the CPU used so far plus ``cpu_seconds``: the kernel
ends the process with ``SIGXCPU`` when a document goes over (no core file). The frames come only
from the parent process that started this one (pickle is not for untrusted input: the document
itself is a ``bytes`` value inside the frame). Exits at the end of stdin.
"""

from __future__ import annotations

import math
import pickle
import resource
import sys
from typing import IO

from aggregator.feeds.parse import parse_feed

HEADER = 8


def read_frame(stream: IO[bytes]) -> bytes | None:
    """One frame's payload, or ``None`` at the end of the stream."""
    header = stream.read(HEADER)
    if len(header) < HEADER:
        return None
    size = int.from_bytes(header, "big")
    payload = stream.read(size)
    return payload if len(payload) == size else None


def write_frame(stream: IO[bytes], payload: bytes) -> None:
    stream.write(len(payload).to_bytes(HEADER, "big"))
    stream.write(payload)
    stream.flush()


def main() -> None:
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    stdin, stdout = sys.stdin.buffer, sys.stdout.buffer
    while (payload := read_frame(stdin)) is not None:
        body, kwargs, cpu_seconds = pickle.loads(payload)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        soft = math.ceil(usage.ru_utime + usage.ru_stime + cpu_seconds)
        if hard != resource.RLIM_INFINITY:
            soft = min(soft, hard)
        resource.setrlimit(resource.RLIMIT_CPU, (soft, hard))
        parsed = parse_feed(body, **kwargs)
        write_frame(stdout, pickle.dumps(parsed, protocol=pickle.HIGHEST_PROTOCOL))


if __name__ == "__main__":
    main()
