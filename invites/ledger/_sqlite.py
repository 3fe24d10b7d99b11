"""The embedded ledger: one SQLite file in WAL mode, every commit synced to disk.

One writer thread per ledger owns the connection and commits in groups (see
:mod:`invites.ledger._sqlite_writer`): every claim queued while a commit was being synced goes
into the next transaction, and each caller waits for the commit that holds its own write. Callers
on other threads block on a future; asyncio callers await it without blocking their loop. An
outcome queued with :meth:`SQLiteLedger.settle_soon` is committed with the next claim (or read,
or flush) instead of costing a commit of its own. Processes sharing the file serialize on
SQLite's write lock (``BEGIN IMMEDIATE``, waiting up to ``busy_timeout``), so the
read-decide-write of a claim is one atomic step across all of them.

Opening refuses a file that cannot be trusted (empty, or failing ``PRAGMA quick_check``) and one
that cannot take a commit now (read-only, full): the refusal comes before anything is sent. Every
wait for the writer is bounded by ``write_timeout``: a write that does not return (a frozen file
system) fails its caller instead of holding it. A claim the writer had not taken yet is dropped
and raises :class:`~invites.ConnectionFailed` (nothing was claimed, nothing sent); one caught in
the stuck commit raises :class:`~invites.OutcomeUnknown`, as its intent may still be recorded and
read ``unknown``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sqlite3
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future
from typing import Any, Final

from ..errors import ConnectionFailed, InviteError, OutcomeUnknown
from ..models import OutcomeStatus, ResendResult
from . import (
    Budget,
    Claim,
    Ledger,
    Record,
    RecordKey,
    dump_error,
    dump_result,
    read_record,
)
from ._sqlite_claim import claim_work
from ._sqlite_file import Row, Rows, Untrusted, check, open_file, path_of, probe, select_records
from ._sqlite_writer import Work, Writer
from ._unsettled import log_unsettled

__all__ = ["SQLiteLedger"]

logger = logging.getLogger("invites.ledger")

#: Longest slice of a wait for the writer: how soon a wait notices :meth:`give_up_within`.
_SLICE: Final = 0.25
#: Once given up (:meth:`SQLiteLedger.give_up_within`), how long a new wait still lasts.
_GRACE: Final = 0.5


class SQLiteLedger(Ledger):
    """A :class:`~invites.ledger.Ledger` in one SQLite file (created when missing).

    ``busy_timeout`` bounds how long a write waits for another process holding the file's write
    lock; ``write_timeout`` how long a caller waits for its write (a write that never returns
    fails its caller then); ``clock`` (Unix seconds) exists for tests of lease expiry.
    ``read_only`` skips the probe that the file can take a commit (for reading a ledger).
    """

    def __init__(
        self,
        target: str | os.PathLike[str],
        *,
        busy_timeout: float = 30.0,
        write_timeout: float = 60.0,
        clock: Callable[[], float] = time.time,
        read_only: bool = False,
    ) -> None:
        self.path = path_of(os.fspath(target))
        self._busy_timeout = busy_timeout
        self._write_timeout = write_timeout
        self._give_up_at: float | None = None
        self._read_only = read_only
        self._clock = clock
        connection = self._connect()  # errors in the caller's thread, before the writer starts
        try:
            check(connection)
            if not read_only:
                probe(connection)
        except (sqlite3.Error, Untrusted) as exc:
            connection.close()
            raise self._failure(exc) from exc
        self._writer = Writer(connection, path=self.path, clock=clock, failure=self._failure)

    def __repr__(self) -> str:
        return f"SQLiteLedger({self.path!r})"

    # -- the interface ---------------------------------------------------------------------------

    def claim(
        self,
        key: RecordKey,
        *,
        owner: str,
        lease: float,
        retry_unknown: bool = False,
        budget: Budget | None = None,
    ) -> Claim:
        work = claim_work(key, owner, lease, retry_unknown, budget)
        claim: Claim = self._wait(self._run(key, work, user=budget is not None), claiming=True)
        return claim

    def settle(
        self,
        key: RecordKey,
        state: OutcomeStatus,
        *,
        owner: str | None,
        result: ResendResult | None = None,
        error: BaseException | None = None,
    ) -> Record | None:
        work = self._settle_work(key, state, owner, dump_result(result), dump_error(error))
        return _record(self._wait(self._run(key, work)))

    def settle_soon(
        self,
        key: RecordKey,
        state: OutcomeStatus,
        *,
        owner: str,
        result: ResendResult | None = None,
        error: BaseException | None = None,
    ) -> None:
        work = self._settle_work(key, state, owner, dump_result(result), dump_error(error))
        self._run(key, work, lazy=True).add_done_callback(_log_unsettled(key, state))

    async def asettle_soon(
        self,
        key: RecordKey,
        state: OutcomeStatus,
        *,
        owner: str,
        result: ResendResult | None = None,
        error: BaseException | None = None,
    ) -> None:
        self.settle_soon(key, state, owner=owner, result=result, error=error)  # a queue put

    def flush(self) -> None:
        # The writer takes jobs in order: once this empty one is committed, so is all before it.
        self._wait(self._run(None, _nothing))

    async def aflush(self) -> None:
        await self._await(self._run(None, _nothing))

    def get(self, key: RecordKey) -> Record | None:
        record: Record | None = self._wait(self._run(key, _get_work(key)))
        return record

    def records(self, *, run: str | None = None, user_id: str | None = None) -> Iterator[Record]:
        return self._select(run=run, user_id=user_id)

    def records_since(self, *, run: str, since: float) -> Iterator[Record]:
        return self._select(run=run, since=since)

    def _select(
        self, *, run: str | None, user_id: str | None = None, since: float | None = None
    ) -> Iterator[Record]:
        sql, params = select_records(run=run, user_id=user_id, since=since)
        if not self._read_only:
            self.flush()  # this process's queued outcomes first: a reader sees its own writes
        connection = self._connect()
        try:
            cursor = connection.execute(sql, params)
            while rows := cursor.fetchmany(500):
                yield from (read_record(row) for row in rows)
        finally:
            connection.close()

    def close(self) -> None:
        if not self._writer.close(self._wait_left(time.monotonic())):
            logger.warning(
                "ledger %s: a write did not return; outcomes not yet committed read unknown",
                self.path,
            )

    def give_up_within(self, seconds: float) -> None:
        """Make every wait for the writer, and :meth:`close`, end within ``seconds`` from now.

        For a program told to stop (SIGTERM): safe to call from a signal handler.
        """
        self._give_up_at = time.monotonic() + seconds

    async def aclaim(
        self,
        key: RecordKey,
        *,
        owner: str,
        lease: float,
        retry_unknown: bool = False,
        budget: Budget | None = None,
    ) -> Claim:
        work = claim_work(key, owner, lease, retry_unknown, budget)
        future = self._run(key, work, user=budget is not None)
        claim: Claim = await self._await(future, claiming=True)
        return claim

    async def asettle(
        self,
        key: RecordKey,
        state: OutcomeStatus,
        *,
        owner: str | None,
        result: ResendResult | None = None,
        error: BaseException | None = None,
    ) -> Record | None:
        work = self._settle_work(key, state, owner, dump_result(result), dump_error(error))
        return _record(await self._await(self._run(key, work)))

    async def aget(self, key: RecordKey) -> Record | None:
        record: Record | None = await self._await(self._run(key, _get_work(key)))
        return record

    # -- the work, run on the writer thread inside a transaction ---------------------------------

    @staticmethod
    def _settle_work(
        key: RecordKey,
        state: OutcomeStatus,
        owner: str | None,
        result: str | None,
        error: str | None,
    ) -> Work:
        def work(rows: Rows, now: float) -> Row | None:
            row = rows[key]
            if row is None or (owner is not None and (row[3] != "intent" or row[4] != owner)):
                return None
            new = (*row[:3], state, row[4], row[5], row[6], result, error, row[9], now, *row[11:])
            rows[key] = new
            return new  # a Record only for a caller who waits for it

        return work

    # -- the writer ------------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        try:
            return open_file(self.path, self._busy_timeout)
        except (sqlite3.Error, OSError, Untrusted) as exc:
            raise self._failure(exc) from exc

    def _failure(self, exc: BaseException) -> ConnectionFailed:
        if isinstance(exc, Untrusted):
            return ConnectionFailed(
                f"the ledger {self.path!r} is not usable: {exc}",
                details={"ledger": self.path},
            )
        return ConnectionFailed(
            f"the ledger {self.path!r} is not usable ({type(exc).__name__}: {exc}); check that "
            "the file is writable and its disk has room",
            details={"ledger": self.path},
        )

    def _run(
        self, key: RecordKey | None, work: Work, *, lazy: bool = False, user: bool = False
    ) -> Future[Any]:
        return self._writer.submit(key, work, lazy=lazy, user=user)

    def _wait_left(self, started: float) -> float:
        """Seconds left to a wait that began at ``started`` (monotonic)."""
        ends = started + self._write_timeout
        give_up_at = self._give_up_at
        if give_up_at is not None:
            # A healthy writer answers within the grace; only a stuck one is left behind.
            ends = min(ends, max(give_up_at, started + _GRACE))
        return max(ends - time.monotonic(), 0.0)

    def _wait(self, future: Future[Any], *, claiming: bool = False) -> Any:
        """What ``future`` holds, waiting at most ``write_timeout`` (or until given up)."""
        started = time.monotonic()
        while True:
            left = self._wait_left(started)
            try:
                return future.result(timeout=min(left, _SLICE))
            except TimeoutError:
                if left <= _SLICE:
                    raise self._stuck(future, claiming) from None

    async def _await(self, future: Future[Any], *, claiming: bool = False) -> Any:
        try:
            left = self._wait_left(time.monotonic())
            return await asyncio.wait_for(asyncio.wrap_future(future), left)
        except TimeoutError:
            raise self._stuck(future, claiming) from None

    def _stuck(self, future: Future[Any], claiming: bool) -> InviteError:
        """The error for a caller that stopped waiting for ``future``."""
        what = f"the ledger {self.path!r} did not answer within {self._write_timeout:g} s"
        if future.cancel() or not claiming:  # dropped before the writer took it
            return ConnectionFailed(f"{what}; nothing was sent", details={"ledger": self.path})
        return OutcomeUnknown(
            f"{what}; nothing was sent, but the claim may still be recorded and read unknown",
            details={"ledger": self.path},
        )


def _record(row: Row | None) -> Record | None:
    return None if row is None else read_record(row)


def _nothing(rows: Rows, now: float) -> None:
    return None


def _get_work(key: RecordKey) -> Work:
    def work(rows: Rows, now: float) -> Record | None:
        row = rows[key]
        return None if row is None else read_record(row)

    return work


def _log_unsettled(key: RecordKey, state: str) -> Callable[[Future[Any]], None]:
    def check(future: Future[Any]) -> None:
        error = future.exception()
        if error is not None or future.result() is None:
            log_unsettled(key, state, error)

    return check
