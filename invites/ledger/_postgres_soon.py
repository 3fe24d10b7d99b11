"""Outcomes a PostgreSQL ledger writes without its caller waiting (``settle_soon``).

Each queued outcome is its own ``UPDATE``, committed on a pooled connection while the caller goes
on to its next claim: the server flushes their commits alongside the claims' (concurrent commits
share a WAL flush), and no resend waits for the previous one's outcome. Sync callers' outcomes run
on a small thread pool of the ledger's; async callers' as tasks of their own event loop.
:meth:`Queued.wait` / :meth:`Queued.await_all` return once every outcome queued before is
committed (or has failed, which is logged: the record then reads ``unknown``).
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_all
from typing import Any, Final

from . import Record, RecordKey

__all__ = ["Queued", "log_unsettled"]

logger = logging.getLogger("invites.ledger")

#: Threads writing sync callers' queued outcomes (each holds a pooled connection while it does).
_WRITERS: Final = 2


def log_unsettled(key: RecordKey, state: str, error: BaseException | None, recorded: bool) -> None:
    """Log a queued outcome that was not recorded: ``error`` it raised, or not ``recorded``
    because the intent was no longer its owner's."""
    if error is not None:
        logger.warning(
            "ledger: outcome %s of user %r (run %r) not recorded; it reads unknown: %s",
            state,
            key.user_id,
            key.run,
            error,
        )
    elif not recorded:
        logger.warning(
            "ledger: user %r (run %r) was taken over or settled meanwhile; %s not recorded",
            key.user_id,
            key.run,
            state,
        )


class Queued:
    """The outcomes queued and not yet committed, sync and async."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._executor: ThreadPoolExecutor | None = None
        self._futures: set[Future[Record | None]] = set()
        self._tasks: set[asyncio.Task[Record | None]] = set()

    def submit(
        self, key: RecordKey, state: str, settle: Callable[[], Record | None]
    ) -> Future[Record | None]:
        """Run ``settle`` (a waiting settle of ``key``) on the pool's threads."""
        with self._lock:
            if self._executor is None:
                self._executor = ThreadPoolExecutor(_WRITERS, thread_name_prefix="invites-ledger")
            future = self._executor.submit(settle)
            self._futures.add(future)
        future.add_done_callback(self._sync_done(key, state))
        return future

    def asubmit(self, key: RecordKey, state: str, settle: Awaitable[Record | None]) -> None:
        """Run ``settle`` as a task of the running event loop."""
        task = asyncio.ensure_future(settle)
        with self._lock:
            self._tasks.add(task)
        task.add_done_callback(self._async_done(key, state))

    def wait(self) -> None:
        """Return once every sync outcome queued so far is committed or has failed."""
        with self._lock:
            futures = list(self._futures)
        wait_all(futures)

    async def await_all(self) -> None:
        """Return once every outcome queued so far from this event loop (and every sync one) is
        committed or has failed."""
        loop = asyncio.get_running_loop()
        with self._lock:
            tasks = [task for task in self._tasks if task.get_loop() is loop]
            futures = list(self._futures)
        if tasks:
            await asyncio.wait(tasks)
        if futures:
            await asyncio.to_thread(wait_all, futures)

    def close(self) -> None:
        """Wait for the sync outcomes, then stop the pool's threads."""
        with self._lock:
            executor, self._executor = self._executor, None
        if executor is not None:
            executor.shutdown(wait=True)

    def _sync_done(self, key: RecordKey, state: str) -> Callable[[Future[Any]], None]:
        def done(future: Future[Any]) -> None:
            with self._lock:
                self._futures.discard(future)
            error = future.exception()
            log_unsettled(key, state, error, error is None and future.result() is not None)

        return done

    def _async_done(self, key: RecordKey, state: str) -> Callable[[asyncio.Task[Any]], None]:
        def done(task: asyncio.Task[Any]) -> None:
            with self._lock:
                self._tasks.discard(task)
            error = asyncio.CancelledError() if task.cancelled() else task.exception()
            log_unsettled(key, state, error, error is None and task.result() is not None)

        return done
