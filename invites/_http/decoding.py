"""Content codings undone in bounded pieces, so a compressed answer cannot grow past the limit.

httpx inflates each network chunk whole before its caller can count the bytes: 64 KiB of gzip
can hold 64 MiB of zeros, and ``gzip, gzip`` far more. Here each coding is undone with
``zlib.decompressobj().decompress(data, max_length)``, at most :data:`PIECE` bytes at a time, and
every stage of a chain stops past its own limit, so memory stays near the body limit whatever the
answer holds.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Final

import httpx

__all__ = ["ACCEPT_ENCODING", "PIECE", "Chain", "Unsupported", "chain_for"]

#: What the provider's own clients advertise: the codings decoded here.
ACCEPT_ENCODING: Final = "gzip, deflate"
#: Most bytes one decompression step produces.
PIECE: Final = 64 * 1024

_GZIP: Final = zlib.MAX_WBITS | 16


class Unsupported(Exception):
    """The answer uses a content coding that cannot be decoded within bounds."""


class _Inflate:
    """One gzip or deflate coding; "deflate" is zlib-wrapped or, as some servers send it, raw."""

    __slots__ = ("_inflate", "_limit", "_raw_fallback", "_started", "_total")

    def __init__(self, wbits: int, limit: int, raw_fallback: bool) -> None:
        self._inflate = zlib.decompressobj(wbits)
        self._raw_fallback = raw_fallback
        self._started = False
        self._total = 0
        self._limit = limit

    def feed(self, data: bytes) -> Iterator[bytes]:
        """The decoded pieces of ``data``; raises ``zlib.error`` or OverflowError."""
        while True:
            piece = self._step(data)
            if piece:
                yield self._counted(piece)
            data = self._inflate.unconsumed_tail
            # An empty tail may still leave decoded bytes pending when the piece was full.
            if not data and len(piece) < PIECE:
                return

    def _step(self, data: bytes) -> bytes:
        if self._started or not self._raw_fallback:
            return self._inflate.decompress(data, PIECE)
        self._started = True
        try:
            return self._inflate.decompress(data, PIECE)
        except zlib.error:
            self._inflate = zlib.decompressobj(-zlib.MAX_WBITS)
            return self._inflate.decompress(data, PIECE)

    def flush(self) -> Iterator[bytes]:
        """What the coding still holds once the body has ended."""
        yield from self.feed(b"")
        rest = self._inflate.flush()
        if rest:
            yield self._counted(rest)

    def _counted(self, piece: bytes) -> bytes:
        self._total += len(piece)
        if self._total > self._limit:
            raise OverflowError("a content coding decoded past its limit")
        return piece


class Chain:
    """Every coding of an answer, outermost first: raw bytes in, decoded pieces out."""

    __slots__ = ("_stages",)

    def __init__(self, stages: list[_Inflate]) -> None:
        self._stages = stages

    def feed(self, data: bytes) -> Iterator[bytes]:
        return self._through(0, data)

    def flush(self) -> Iterator[bytes]:
        for index, stage in enumerate(self._stages):
            for piece in stage.flush():
                yield from self._through(index + 1, piece)

    def _through(self, index: int, data: bytes) -> Iterator[bytes]:
        if index == len(self._stages):
            if data:
                yield data
            return
        for piece in self._stages[index].feed(data):
            yield from self._through(index + 1, piece)


def chain_for(response: httpx.Response, limit: int) -> Chain:
    """The decoding chain of ``response``'s ``Content-Encoding``; raises :class:`Unsupported`.

    Every stage stops past twice ``limit``: the encoded form of a body within ``limit`` is barely
    larger than the body, so only a bomb gets there.
    """
    stages: list[_Inflate] = []
    for coding in response.headers.get_list("content-encoding", split_commas=True):
        name = coding.strip().lower()
        if name in ("", "identity"):
            continue
        if name in ("gzip", "x-gzip"):
            stages.append(_Inflate(_GZIP, 2 * limit, raw_fallback=False))
        elif name == "deflate":
            stages.append(_Inflate(zlib.MAX_WBITS, 2 * limit, raw_fallback=True))
        else:
            raise Unsupported(name[:40])
    stages.reverse()  # the last coding listed was applied last: it is undone first
    return Chain(stages)
