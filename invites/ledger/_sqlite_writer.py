"""The SQLite ledger's writer: one thread that owns the file's connection and commits in groups.

Every call becomes a job: a pure function of the rows of its key, run inside a transaction. The
writer takes every job queued when it looks (at most ``BATCH``) into one transaction: one
statement reads the rows of all their keys, the jobs run in the order they came, one statement
writes the rows they changed, and one synced commit makes them durable; only then is each job
answered. A *lazy* job (an outcome nobody waits for) starts no commit: it waits for the next job
somebody waits for (a claim, a read, a flush) and shares its commit, or is committed on its own
after ``LINGER`` seconds when none comes. A job that checks the per-user budget also gets the
rows of every run for its key's user (read by the same transaction, so the check and the claim
are one atomic step for every process sharing the file).

The writer copies the WAL into the file itself at least every :data:`CHECKPOINT_EVERY` seconds
while it commits, and empties it when the ledger closes cleanly: a copy of the file alone taken
after a clean stop holds every record. A job whose caller stopped waiting before the writer took
it (its future cancelled) is dropped.
"""

from __future__ import annotations

import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any, Final, TypeAlias

from . import RecordKey
from ._sqlite_file import Rows, checkpoint, read_rows, read_user_rows, write_rows

__all__ = ["BATCH", "LINGER", "Work", "Writer"]

logger = logging.getLogger("invites.ledger")

#: Most jobs one transaction takes: bounds the time a commit holds the file's write lock.
BATCH: Final = 256
#: Longest a lazy job waits for a claim to share its commit before it is committed on its own.
LINGER: Final = 0.05
#: Most seconds between two checkpoints of the WAL while the writer commits.
CHECKPOINT_EVERY: Final = 2.0

Work: TypeAlias = Callable[[Rows, float], Any]


class _Job:
    __slots__ = ("future", "key", "lazy", "user", "work")

    def __init__(self, key: RecordKey | None, work: Work, lazy: bool, user: bool) -> None:
        self.key = key
        self.work = work
        self.lazy = lazy
        self.user = user
        self.future: Future[Any] = Future()


class Writer:
    """The thread committing the jobs :meth:`submit` queues, on ``connection``.

    ``failure`` turns what went wrong into the error every job of a failed commit gets.
    """

    def __init__(
        self,
        connection: sqlite3.Connection,
        *,
        path: str,
        clock: Callable[[], float],
        failure: Callable[[BaseException], Exception],
    ) -> None:
        self._path = path
        self._clock = clock
        self._failure = failure
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._closed = False
        self._checkpoint_due = time.monotonic() + CHECKPOINT_EVERY
        self._close_lock = threading.Lock()
        self._thread = threading.Thread(
            target=self._loop, args=(connection,), name="invites-ledger", daemon=True
        )
        self._thread.start()

    def submit(
        self, key: RecordKey | None, work: Work, *, lazy: bool = False, user: bool = False
    ) -> Future[Any]:
        """Queue ``work`` on the rows of ``key`` (with ``user``, and on those of every run for
        its identity and user id that may count as sends); its future holds what it returned,
        once the commit that ran it is synced (or the error that commit raised)."""
        job = _Job(key, work, lazy, user)
        if self._closed:
            job.future.set_exception(self._failure(RuntimeError("closed")))
        else:
            self._jobs.put(job)
        return job.future

    def close(self, timeout: float | None = None) -> bool:
        """Commit what is queued, then stop; False when the writer did not finish within
        ``timeout`` seconds (a write that does not return: it is left behind). Idempotent."""
        with self._close_lock:
            if not self._closed:
                self._closed = True
                self._jobs.put(None)
        if threading.current_thread() is not self._thread:
            self._thread.join(timeout)
        return not self._thread.is_alive() or threading.current_thread() is self._thread

    def _loop(self, connection: sqlite3.Connection) -> None:
        batch: list[_Job] = []
        due = 0.0  # when the lazy jobs in ``batch`` are committed if nothing else comes first
        clean = False
        try:
            while True:
                try:
                    wait = max(0.0, due - time.monotonic()) if batch else None
                    job = self._jobs.get(timeout=wait)
                except queue.Empty:
                    self._commit(connection, batch)
                    batch = []
                    continue
                if job is not None and job.lazy and len(batch) < BATCH - 1:
                    due = due if batch else time.monotonic() + LINGER
                    batch.append(job)
                    continue
                stop = job is None or self._take_queued(batch, job)
                if batch:
                    self._commit(connection, batch)
                batch = []
                if stop:
                    clean = True
                    return
        finally:
            self._last_checkpoint(connection, clean)
            connection.close()
            self._closed = True
            self._fail_pending(batch)

    def _take_queued(self, batch: list[_Job], job: _Job) -> bool:
        """Add ``job`` and what is queued now to ``batch`` (up to ``BATCH`` jobs); True when
        ``None`` came (the ledger is closing)."""
        batch.append(job)
        while len(batch) < BATCH:
            try:
                more = self._jobs.get_nowait()
            except queue.Empty:
                return False
            if more is None:
                return True
            batch.append(more)
        return False

    def _last_checkpoint(self, connection: sqlite3.Connection, clean: bool) -> None:
        if not clean:
            return
        try:
            checkpoint(connection, "TRUNCATE")
        except sqlite3.Error as exc:
            logger.warning("ledger %s: the closing checkpoint failed: %s", self._path, exc)

    def _fail_pending(self, batch: list[_Job]) -> None:
        failure = self._failure(RuntimeError("closed"))
        pending: list[_Job | None] = list(batch)
        while True:
            try:
                pending.append(self._jobs.get_nowait())
            except queue.Empty:
                break
        for job in pending:
            if job is not None and not job.future.done():
                job.future.set_exception(failure)

    def _commit(self, connection: sqlite3.Connection, batch: list[_Job]) -> None:
        """Run every job of ``batch`` in one transaction; answer each once the commit is synced."""
        answers: list[tuple[_Job, Any, BaseException | None]] = []
        batch = [job for job in batch if job.future.set_running_or_notify_cancel()]
        if not batch:
            return
        try:
            connection.execute("BEGIN IMMEDIATE")
            now = self._clock()
            rows = read_rows(connection, {job.key for job in batch if job.key is not None})
            users = {(job.key.identity, job.key.user_id) for job in batch if job.user and job.key}
            read_user_rows(connection, users, rows)
            before = dict(rows)
            for job in batch:
                try:
                    answers.append((job, job.work(rows, now), None))
                except Exception as exc:  # a bug in one job must not void the others' writes
                    answers.append((job, None, exc))
            write_rows(
                connection,
                [row for key, row in rows.items() if row is not None and row != before[key]],
            )
            connection.execute("COMMIT")
        except sqlite3.Error as exc:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            failure = self._failure(exc)
            logger.warning("ledger %s: a commit failed: %s", self._path, exc)
            for job in batch:
                job.future.set_exception(failure)
            return
        for job, value, error in answers:
            if error is not None:
                job.future.set_exception(error)
            else:
                job.future.set_result(value)
        if time.monotonic() >= self._checkpoint_due:
            self._checkpoint_due = time.monotonic() + CHECKPOINT_EVERY
            try:
                checkpoint(connection)
            except sqlite3.Error as exc:
                logger.warning("ledger %s: a checkpoint failed: %s", self._path, exc)
