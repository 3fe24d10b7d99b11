"""What users pay against a realistic vendor: the sandbox answering every resend after 25 ms.

A vendor's server takes tens of milliseconds to answer a resend: the rows here put ``invites``
next to raw httpx doing the same resends against the sandbox (in a child process) that waits
25 ms before each answer, one at a time, 16 in flight (the design's bulk row, at least 0.97x)
and 32 in flight, with threads and with asyncio. Both sides use the provider's pool limits.

Also here: whether a warmed async resend over a socket searches the import system for a module
(an import that failed once is searched for again every time; httpcore imports sniffio inside
every async request).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import importlib.abc
import importlib.machinery
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator, Sequence
from types import ModuleType

import httpx
from _harness import Row, sandbox_process
from bench_loopback import (
    TIMEOUT,
    Round,
    Side,
    _alternated,
    _async_invites,
    _async_raw,
    _config,
    _threads_invites,
    _threads_raw,
    async_alternated,
)
from bench_loopback import _row as _loopback_row

import invites
from invites._http.clients import LIMITS
from invites.sandbox import TENANT_USER_INVITED

LATENCY = 0.025
CONCURRENCIES = (1, 16, 32)
TARGET = 0.95
#: The design's bulk row: 16 in flight against a vendor of >= 20 ms, at least 0.97x raw httpx.
TARGETS = {16: 0.97}


def _row(mode: str, concurrency: int, count: int, results: dict[str, list[Round]]) -> Row:
    label = f"vendor {LATENCY * 1000:.0f} ms"
    target = TARGETS.get(concurrency, TARGET)
    return _loopback_row(mode, concurrency, count, results, label=label, at_least_ratio=target)


def _thread_rows(url: str, count: int, rounds: int) -> list[Row]:
    rows = []
    raw_client = httpx.Client(timeout=TIMEOUT, limits=LIMITS)
    with invites.from_config(_config(url)) as provider, raw_client as client:
        for concurrency in CONCURRENCIES:
            resends = count if concurrency > 1 else count // 8
            sides: dict[str, Side] = {
                "invites": functools.partial(_threads_invites, provider, resends, concurrency),
                "raw": functools.partial(_threads_raw, client, url, resends, concurrency),
            }
            rows.append(_row("threads", concurrency, resends, _alternated(sides, rounds)))
    return rows


def _async_rows(url: str, count: int, rounds: int) -> list[Row]:
    async def main() -> list[Row]:
        rows = []
        provider = invites.from_config(_config(url))
        async with provider, httpx.AsyncClient(timeout=TIMEOUT, limits=LIMITS) as client:
            for concurrency in CONCURRENCIES:
                resends = count if concurrency > 1 else count // 8
                sides: dict[str, Callable[[], Awaitable[tuple[float, int]]]] = {
                    "invites": functools.partial(_async_invites, provider, resends, concurrency),
                    "raw": functools.partial(_async_raw, client, url, resends, concurrency),
                }
                results = await async_alternated(sides, rounds)
                rows.append(_row("async", concurrency, resends, results))
        return rows

    return asyncio.run(main())


class _ImportSearches(importlib.abc.MetaPathFinder):
    """Records every module the import system searches for from one thread."""

    def __init__(self, thread: int) -> None:
        self.thread = thread
        self.names: list[str] = []

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if threading.get_ident() == self.thread:
            self.names.append(fullname)
        return None  # the next finder decides


@contextlib.contextmanager
def _import_searches() -> Iterator[list[str]]:
    finder = _ImportSearches(threading.get_ident())
    sys.meta_path.insert(0, finder)
    try:
        yield finder.names
    finally:
        sys.meta_path.remove(finder)


def _import_row(url: str) -> Row:
    async def searched() -> list[str]:
        async with invites.from_config(_config(url)) as provider:
            await provider.aresend_invite(TENANT_USER_INVITED)  # first use loads what it needs
            with _import_searches() as names:
                await provider.aresend_invite(TENANT_USER_INVITED)
            return names

    names = asyncio.run(searched())
    return Row(
        benchmark="async resend: import searches",
        invites=float(len(names)),
        raw=0.0,
        unit="searches / resend",
        ratio=None,
        target="0",
        passed=not names,
        note=f"a warmed async resend over loopback; searched: {sorted(set(names))}",
        detail={"searched": names},
    )


def run(quick: bool) -> list[Row]:
    count, rounds = (64, 2) if quick else (320, 6)
    with sandbox_process(latency=LATENCY) as server:
        rows = [*_thread_rows(server.url, count, rounds), *_async_rows(server.url, count, rounds)]
    with sandbox_process() as server:
        rows.append(_import_row(server.url))
    return rows
