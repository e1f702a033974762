"""Decoding a response body within a byte cap: gzip/deflate undone piece by piece (at most
64 KiB per step), so a compression bomb stops at the cap instead of filling memory."""

from __future__ import annotations

import itertools
import os
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

_PIECE = 64 * 1024  # most bytes one decompression step may produce


def _size(value: int) -> str:
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if value >= scale and value % scale == 0:
            return f"{value // scale} {unit}"
    if value >= 1 << 20:
        return f"{value / (1 << 20):.1f} MiB"
    return f"{value} bytes"


def _root_cause(err: BaseException) -> str | None:
    """The innermost OS error's words ("Connection refused"), under anyio's and httpcore's."""
    found: str | None = None
    seen: set[int] = set()
    cur: BaseException | None = err
    while cur is not None and id(cur) not in seen:
        seen.add(id(cur))
        if isinstance(cur, OSError) and (cur.errno or cur.strerror):
            # asyncio words a refusal "Connect call failed (...)"; errno says it plainly
            plain = os.strerror(cur.errno) if isinstance(cur.errno, int) and cur.errno > 0 else None
            found = plain or cur.strerror or found
        cur = cur.__cause__ or cur.__context__
    return found


class _Failure(Exception):
    """A fetch failed for a reason already worded for the result's ``error``."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class _ZlibStage:
    """gzip or deflate, decompressed at most ``_PIECE`` bytes per step.

    httpx's own decoders inflate each network chunk whole: 64 KiB of a gzip bomb becomes
    64 MiB in one ``bytes``. Here the output is bounded, so the size cap applies early.
    """

    def __init__(self, kind: str) -> None:
        self.kind = kind
        # deflate is zlib-wrapped per the RFC, but some servers send it raw: retry raw once.
        self._raw_fallback = kind == "deflate"
        self._produced = False
        wbits = zlib.MAX_WBITS | 16 if kind == "gzip" else zlib.MAX_WBITS
        self._inflater = zlib.decompressobj(wbits)

    def decode(self, data: bytes) -> Iterator[bytes]:
        while not self._inflater.eof:
            try:
                out = self._inflater.decompress(data, _PIECE)
            except zlib.error as err:
                if self._raw_fallback and not self._produced:
                    self._raw_fallback = False
                    self._inflater = zlib.decompressobj(-zlib.MAX_WBITS)
                    continue
                raise _Failure(f"cannot decode the {self.kind} body: {err}") from None
            data = self._inflater.unconsumed_tail
            if out:
                self._produced = True
                yield out
            if not data and len(out) < _PIECE:
                return
        # after the end of the compressed stream: trailing bytes are ignored, as httpx does

    def flush(self) -> Iterator[bytes]:
        try:
            out = self._inflater.flush()
        except zlib.error as err:  # pragma: no cover - flush after a clean decode cannot fail
            raise _Failure(f"cannot decode the {self.kind} body: {err}") from None
        if out:
            yield out
        if not self._inflater.eof:
            raise _Failure(f"body truncated: the {self.kind} stream ends early")


def _pipe(stage: _ZlibStage, pieces: Iterable[bytes]) -> Iterator[bytes]:
    for piece in pieces:
        yield from stage.decode(piece)


@dataclass
class _Decoder:
    """The ``Content-Encoding`` chain, undone lazily from the outermost encoding in."""

    stages: list[_ZlibStage]

    @classmethod
    def for_header(cls, header: str | None) -> _Decoder:
        stages: list[_ZlibStage] = []
        for token in reversed((header or "").split(",")):
            name = token.strip().lower()
            if name in ("gzip", "x-gzip"):
                stages.append(_ZlibStage("gzip"))
            elif name == "deflate":
                stages.append(_ZlibStage("deflate"))
            # identity, and (like httpx) unknown tokens such as a misconfigured "utf-8", pass through
        return cls(stages)

    def decode(self, data: bytes) -> Iterable[bytes]:
        out: Iterable[bytes] = (data,)
        for stage in self.stages:
            out = _pipe(stage, out)
        return out

    def flush(self) -> Iterable[bytes]:
        out: Iterable[bytes] = ()
        for stage in self.stages:
            out = itertools.chain(_pipe(stage, out), stage.flush())
        return out
