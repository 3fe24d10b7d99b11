"""The embedded ledger: one SQLite file in WAL mode, every commit synced to disk.

One writer thread per ledger owns the connection and commits in groups: every claim and outcome
queued while a commit was being synced goes into the next transaction, and each caller waits for
the commit that holds its own write. Callers on other threads block on a future; asyncio callers
await it without blocking their loop. Processes sharing the file serialize on SQLite's write lock
(``BEGIN IMMEDIATE``, waiting up to ``busy_timeout``), so the read-decide-write of a claim is one
atomic step across all of them.
"""

from __future__ import annotations

import asyncio
import logging
import os
import queue
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any, Final, TypeAlias

from ..errors import ConnectionFailed
from ..models import ResendResult
from . import (
    Claim,
    Ledger,
    OutcomeState,
    Record,
    RecordKey,
    dump_error,
    dump_result,
    may_claim,
    read_record,
)
from ._sqlite_file import (
    COLUMNS,
    UPSERT,
    Rows,
    key_params,
    open_file,
    path_of,
    read_rows,
)

__all__ = ["SQLiteLedger"]

logger = logging.getLogger("invites.ledger")

#: Most writes one transaction takes: bounds the time a commit holds the file's write lock.
_BATCH: Final = 256


_Work: TypeAlias = Callable[[Rows, float], Any]


class _Job:
    """One call's work: a pure function of the rows of its key, run inside a transaction."""

    __slots__ = ("future", "key", "work")

    def __init__(self, key: RecordKey | None, work: _Work) -> None:
        self.key = key
        self.work = work
        self.future: Future[Any] = Future()


class SQLiteLedger(Ledger):
    """A :class:`~invites.ledger.Ledger` in one SQLite file (created when missing).

    ``busy_timeout`` bounds how long a write waits for another process holding the file's write
    lock; ``clock`` (Unix seconds) exists for tests of lease expiry.
    """

    def __init__(
        self,
        target: str | os.PathLike[str],
        *,
        busy_timeout: float = 30.0,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.path = path_of(os.fspath(target))
        self._busy_timeout = busy_timeout
        self._clock = clock
        self._jobs: queue.SimpleQueue[_Job | None] = queue.SimpleQueue()
        self._closed = False
        self._close_lock = threading.Lock()
        connection = self._connect()  # errors in the caller's thread, before the writer starts
        self._writer = threading.Thread(
            target=self._write_loop, args=(connection,), name="invites-ledger", daemon=True
        )
        self._writer.start()

    def __repr__(self) -> str:
        return f"SQLiteLedger({self.path!r})"

    # -- the interface ---------------------------------------------------------------------------

    def claim(
        self, key: RecordKey, *, owner: str, lease: float, retry_unknown: bool = False
    ) -> Claim:
        claim: Claim = self._run(key, self._claim_work(key, owner, lease, retry_unknown)).result()
        return claim

    def settle(
        self,
        key: RecordKey,
        state: OutcomeState,
        *,
        owner: str | None,
        result: ResendResult | None = None,
        error: BaseException | None = None,
    ) -> Record | None:
        work = self._settle_work(key, state, owner, dump_result(result), dump_error(error))
        record: Record | None = self._run(key, work).result()
        return record

    def settle_soon(
        self,
        key: RecordKey,
        state: OutcomeState,
        *,
        owner: str,
        result: ResendResult | None = None,
        error: BaseException | None = None,
    ) -> None:
        work = self._settle_work(key, state, owner, dump_result(result), dump_error(error))
        self._run(key, work).add_done_callback(_log_unsettled(key, state))

    async def asettle_soon(
        self,
        key: RecordKey,
        state: OutcomeState,
        *,
        owner: str,
        result: ResendResult | None = None,
        error: BaseException | None = None,
    ) -> None:
        self.settle_soon(key, state, owner=owner, result=result, error=error)  # a queue put

    def flush(self) -> None:
        # The writer takes jobs in order: once this empty one is committed, so is all before it.
        self._run(None, _nothing).result()

    async def aflush(self) -> None:
        await asyncio.wrap_future(self._run(None, _nothing))

    def get(self, key: RecordKey) -> Record | None:
        record: Record | None = self._run(key, _get_work(key)).result()
        return record

    def records(self, *, run: str | None = None, user_id: str | None = None) -> Iterator[Record]:
        where, params = [], []
        if run is not None:
            where.append("run = ?")
            params.append(run)
        if user_id is not None:
            where.append("user_id = ?")
            params.append(user_id)
        sql = f"SELECT {COLUMNS} FROM invites_ledger"  # noqa: S608 - fixed column list
        if where:
            sql += " WHERE " + " AND ".join(where)
        sql += " ORDER BY created_at, rowid"
        self.flush()  # this process's queued outcomes first: a reader sees its own writes
        connection = self._connect()
        try:
            cursor = connection.execute(sql, params)
            while rows := cursor.fetchmany(500):
                yield from (read_record(row) for row in rows)
        finally:
            connection.close()

    def close(self) -> None:
        with self._close_lock:
            if self._closed:
                return
            self._closed = True
            self._jobs.put(None)
        if threading.current_thread() is not self._writer:
            self._writer.join()

    async def aclaim(
        self, key: RecordKey, *, owner: str, lease: float, retry_unknown: bool = False
    ) -> Claim:
        claim: Claim = await asyncio.wrap_future(
            self._run(key, self._claim_work(key, owner, lease, retry_unknown))
        )
        return claim

    async def asettle(
        self,
        key: RecordKey,
        state: OutcomeState,
        *,
        owner: str | None,
        result: ResendResult | None = None,
        error: BaseException | None = None,
    ) -> Record | None:
        work = self._settle_work(key, state, owner, dump_result(result), dump_error(error))
        record: Record | None = await asyncio.wrap_future(self._run(key, work))
        return record

    async def aget(self, key: RecordKey) -> Record | None:
        record: Record | None = await asyncio.wrap_future(self._run(key, _get_work(key)))
        return record

    # -- the work, run on the writer thread inside a transaction ---------------------------------

    @staticmethod
    def _claim_work(key: RecordKey, owner: str, lease: float, retry_unknown: bool) -> _Work:
        def work(rows: Rows, now: float) -> Claim:
            row = rows[key]
            previous = None if row is None else read_record(row)
            if not may_claim(previous, now=now, retry_unknown=retry_unknown):
                assert previous is not None
                return Claim(granted=False, record=previous, in_flight=previous.in_flight(now))
            claims = 1 if row is None else row[6] + 1
            created = now if row is None else row[9]
            new = (
                *key_params(key),
                "intent",
                owner,
                now + lease,
                claims,
                None,
                None,
                created,
                now,
            )
            rows[key] = new
            return Claim(granted=True, record=read_record(new), previous=previous)

        return work

    @staticmethod
    def _settle_work(
        key: RecordKey,
        state: OutcomeState,
        owner: str | None,
        result: str | None,
        error: str | None,
    ) -> _Work:
        def work(rows: Rows, now: float) -> Record | None:
            row = rows[key]
            if row is None or (owner is not None and (row[3] != "intent" or row[4] != owner)):
                return None
            new = (*row[:3], state, row[4], row[5], row[6], result, error, row[9], now)
            rows[key] = new
            return read_record(new)

        return work

    # -- the writer ------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        try:
            return open_file(self.path, self._busy_timeout)
        except (sqlite3.Error, OSError) as exc:
            raise self._failure(exc) from exc

    def _failure(self, exc: BaseException) -> ConnectionFailed:
        return ConnectionFailed(
            f"the ledger {self.path!r} is not usable ({type(exc).__name__}: {exc})",
            details={"ledger": self.path},
        )

    def _run(self, key: RecordKey | None, work: _Work) -> Future[Any]:
        job = _Job(key, work)
        if self._closed:
            job.future.set_exception(self._failure(RuntimeError("closed")))
            return job.future
        self._jobs.put(job)
        return job.future

    def _write_loop(self, connection: sqlite3.Connection) -> None:
        try:
            while True:
                job = self._jobs.get()
                if job is None:
                    return
                batch = [job]
                stop = False
                while len(batch) < _BATCH:
                    try:
                        more = self._jobs.get_nowait()
                    except queue.Empty:
                        break
                    if more is None:
                        stop = True
                        break
                    batch.append(more)
                self._commit(connection, batch)
                if stop:
                    return
        finally:
            connection.close()
            self._closed = True
            self._fail_pending()

    def _fail_pending(self) -> None:
        while True:
            try:
                job = self._jobs.get_nowait()
            except queue.Empty:
                return
            if job is not None:
                job.future.set_exception(self._failure(RuntimeError("closed")))

    def _commit(self, connection: sqlite3.Connection, batch: list[_Job]) -> None:
        """Run every job of ``batch`` in one transaction; answer each once the commit is synced.

        The rows of every key in the batch are read in one statement and the changed ones
        written in one more: a transaction costs a few statements, whatever its size.
        """
        answers: list[tuple[_Job, Any, BaseException | None]] = []
        try:
            connection.execute("BEGIN IMMEDIATE")
            now = self._clock()
            rows = read_rows(connection, {job.key for job in batch if job.key is not None})
            before = dict(rows)
            for job in batch:
                try:
                    answers.append((job, job.work(rows, now), None))
                except Exception as exc:  # a bug in one job must not void the others' writes
                    answers.append((job, None, exc))
            changed = [row for key, row in rows.items() if row is not None and row != before[key]]
            if changed:
                connection.executemany(UPSERT, changed)
            connection.execute("COMMIT")
        except sqlite3.Error as exc:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            failure = self._failure(exc)
            logger.warning("ledger %s: a commit failed: %s", self.path, exc)
            for job in batch:
                job.future.set_exception(failure)
            return
        for job, value, error in answers:
            if error is not None:
                job.future.set_exception(error)
            else:
                job.future.set_result(value)


def _nothing(rows: Rows, now: float) -> None:
    return None


def _get_work(key: RecordKey) -> _Work:
    def work(rows: Rows, now: float) -> Record | None:
        row = rows[key]
        return None if row is None else read_record(row)

    return work


def _log_unsettled(key: RecordKey, state: str) -> Callable[[Future[Any]], None]:
    def check(future: Future[Any]) -> None:
        error = future.exception()
        if error is not None:
            logger.warning(
                "ledger: outcome %s of user %r (run %r) not recorded; it reads unknown: %s",
                state,
                key.user_id,
                key.run,
                error,
            )
        elif future.result() is None:
            logger.warning(
                "ledger: user %r (run %r) was taken over or settled meanwhile; %s not recorded",
                key.user_id,
                key.run,
                state,
            )

    return check
