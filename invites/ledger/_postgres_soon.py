"""Outcomes a PostgreSQL ledger writes without its caller waiting (``settle_soon``).

Queued outcomes are written in groups: one ``UPDATE ... FROM (VALUES ...)`` statement (one round
trip, one commit) takes every outcome queued while the previous group was being written, on a
pooled connection, while the callers go on to their next claims. Sync callers' outcomes are written
by one job at a time on a thread of the ledger's; async callers' by one task at a time on their own
event loop. :meth:`Queued.wait` / :meth:`Queued.await_all` return once every outcome queued before
is committed (or has failed, which is logged: the record then reads ``unknown``).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Final, TypeAlias

from . import RecordKey
from ._unsettled import log_unsettled

__all__ = ["Outcome", "Queued"]

#: A queued outcome: key, owner, state, result and error (as JSON text).
Outcome: TypeAlias = tuple[RecordKey, str, str, str | None, str | None]
#: Writes a group of outcomes; returns the keys whose intent it settled.
Write: TypeAlias = Callable[[list[Outcome]], set[RecordKey]]
AsyncWrite: TypeAlias = Callable[[list[Outcome]], Awaitable[set[RecordKey]]]

#: Most outcomes one statement writes.
_GROUP: Final = 256


def _report(group: list[Outcome], written: set[RecordKey] | BaseException) -> None:
    for key, _owner, state, _result, _error in group:
        if isinstance(written, BaseException):
            log_unsettled(key, state, written)
        elif key not in written:
            log_unsettled(key, state, None)


class _LoopQueue:
    __slots__ = ("pending", "task")

    def __init__(self) -> None:
        self.pending: list[Outcome] = []
        self.task: asyncio.Task[None] | None = None


class Queued:
    """The outcomes queued and not yet committed, sync and async; ``write`` / ``awrite`` commit
    a group of them."""

    def __init__(self, write: Write, awrite: AsyncWrite) -> None:
        self._write = write
        self._awrite = awrite
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._pending: list[Outcome] = []
        self._drainer: Future[None] | None = None
        self._loops: dict[asyncio.AbstractEventLoop, _LoopQueue] = {}
        self._pid = os.getpid()
        self._closed = False

    def submit(self, outcome: Outcome) -> None:
        """Queue ``outcome`` from sync code (once closed: write it now, which fails and logs)."""
        with self._lock:
            self._check_process()
            closed = self._closed
            if not closed:
                self._pending.append(outcome)
                if self._drainer is None:
                    if self._executor is None:
                        self._executor = ThreadPoolExecutor(1, thread_name_prefix="invites-ledger")
                    self._drainer = self._executor.submit(self._drain)
        if closed:
            self._write_now([outcome])

    def asubmit(self, outcome: Outcome) -> None:
        """Queue ``outcome`` from the running event loop."""
        loop = asyncio.get_running_loop()
        with self._lock:
            self._check_process()
            queue = self._loops.setdefault(loop, _LoopQueue())
            for ended in [other for other in self._loops if other.is_closed()]:
                del self._loops[ended]
        queue.pending.append(outcome)
        if queue.task is None:
            queue.task = loop.create_task(self._adrain(queue))

    def wait(self) -> None:
        """Return once every outcome queued from sync code is committed or has failed."""
        while True:
            with self._lock:
                self._check_process()
                drainer = self._drainer
            if drainer is None:
                return
            drainer.result()

    async def await_all(self) -> None:
        """Return once every outcome queued from this event loop (and from sync code) is
        committed or has failed."""
        with self._lock:
            queue = self._loops.get(asyncio.get_running_loop())
            syncing = self._drainer is not None
        while queue is not None and queue.task is not None:
            await asyncio.shield(queue.task)
        if syncing:
            await asyncio.to_thread(self.wait)

    def close(self) -> None:
        """Wait for the outcomes queued from sync code, then stop the writing thread."""
        self.wait()
        with self._lock:
            self._closed = True
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)

    def _check_process(self) -> None:
        # A forked child has none of its parent's threads, and the parent writes its own queue.
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._executor, self._drainer, self._pending, self._loops = None, None, [], {}

    def _write_now(self, group: list[Outcome]) -> None:
        try:
            written: set[RecordKey] | BaseException = self._write(group)
        except Exception as exc:
            written = exc
        _report(group, written)

    def _drain(self) -> None:
        while True:
            with self._lock:
                group = self._pending[:_GROUP]
                del self._pending[:_GROUP]
                if not group:
                    self._drainer = None
                    return
            self._write_now(group)

    async def _adrain(self, queue: _LoopQueue) -> None:
        try:
            while queue.pending:
                group = queue.pending[:_GROUP]
                del queue.pending[:_GROUP]
                try:
                    written: set[RecordKey] | BaseException = await self._awrite(group)
                except Exception as exc:
                    written = exc
                except asyncio.CancelledError as exc:  # the loop is ending
                    _report(group + queue.pending, exc)
                    queue.pending.clear()
                    raise
                _report(group, written)
        finally:
            queue.task = None
