"""The server-backed ledger: one PostgreSQL table shared by every process and machine.

Each claim is one ``INSERT ... ON CONFLICT DO UPDATE ... WHERE <the key may be taken> RETURNING``
statement in its own transaction: PostgreSQL locks the key's row (or its slot in the primary
key), so of any number of racing claims exactly one is granted, and the statement commits before
the claim returns. A takeover copies the record it replaces into ``previous`` in the same
statement, so :attr:`~invites.ledger.Claim.previous` is the row as it stood under the lock. Every
time is the server's clock (Unix seconds), so hosts with skewed clocks agree on leases. An outcome
queued with :meth:`PostgresLedger.settle_soon` is committed, with the others queued meanwhile, on
another connection while its caller goes on to the next claim
(:mod:`invites.ledger._postgres_soon`).

Connections come from a :class:`psycopg_pool.ConnectionPool` (sync callers) and, for async
callers, from a small pool of the library's own per event loop (an async connection belongs to
the loop that opened it). That one keeps no background task: psycopg_pool's
``AsyncConnectionPool`` runs maintenance tasks that must be closed inside their loop before it
ends, or ``asyncio.run()`` waits on them forever at exit, which a ledger shared by many loops and
closed by its owner cannot promise. A pool checks a connection before lending it, so a
connection the server dropped while idle is replaced instead of failing a claim (the check costs
no round trip unless the idle socket has something to read); a statement that fails once sent is
never retried (a lost answer may hide a committed claim, which then reads ``unknown``: never free
to send).
"""

from __future__ import annotations

import asyncio
import os
import threading
from collections.abc import Iterator
from typing import Any

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from ..errors import ConnectionFailed
from ..models import OutcomeStatus, ResendResult
from . import Budget, Claim, Ledger, Record, RecordKey, read_record
from ._json import dump_error, dump_result
from ._postgres_budget import budget_claim, migrate, select_function
from ._postgres_budget import claim_params as budget_params
from ._postgres_pool import LoopPool, check_lent, ping
from ._postgres_soon import Outcome, Queued
from ._postgres_sql import (
    TABLE,
    claim_params,
    key_params,
    ledger_label,
    previous_record,
    select_records,
    settle_many,
    split_url,
    statements,
)

__all__ = ["PostgresLedger", "ledger_label", "ping"]


class PostgresLedger(Ledger):
    """A :class:`~invites.ledger.Ledger` in a PostgreSQL table, created on first use.

    ``url`` is a libpq URL (``postgresql://user:password@host:port/db``, any libpq parameter in
    its query) with an optional ``schema`` parameter naming the schema that holds the
    ``invites_ledger`` table (default ``public``; created when missing). ``max_size`` bounds each
    pool's connections; ``timeout`` bounds connecting and waiting for a pooled connection.
    Errors and the repr show the URL without its password.
    """

    def __init__(self, url: str, *, max_size: int = 8, timeout: float = 10.0) -> None:
        try:
            self._conninfo, self.schema = split_url(url)
            params = conninfo_to_dict(self._conninfo)
        except (ValueError, psycopg.Error) as exc:
            raise ConnectionFailed(
                f"the ledger URL is not usable ({exc})", details={"ledger": ledger_label(url)}
            ) from None
        self.label = ledger_label(url)
        self._password = str(params.get("password") or "")
        self._connect_args: dict[str, Any] = {"autocommit": True}
        if "connect_timeout" not in params:
            self._connect_args["connect_timeout"] = max(1, round(timeout))
        self._max_size = max_size
        self._timeout = timeout
        self._table = sql.Identifier(self.schema, TABLE)
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._pool: ConnectionPool | None = None
        self._async_pools: dict[asyncio.AbstractEventLoop, LoopPool] = {}
        self._closed = False
        self._sql = statements(self._table)
        self._budgeted = select_function(self.schema)
        self._queued = Queued(self._settle_many, self._asettle_many)
        self.migrate()

    def __repr__(self) -> str:
        return f"PostgresLedger({self.label!r})"

    # -- the schema ------------------------------------------------------------------------------

    def migrate(self) -> None:
        """Create the schema, table, index and budget function unless they exist, and upgrade a
        table an older version created (:mod:`invites.ledger._postgres_budget`); safe from many
        processes at once (they queue on an advisory lock)."""
        try:
            with psycopg.connect(self._conninfo, **self._connect_args) as connection:
                migrate(connection, self.schema, self._table)
        except psycopg.Error as exc:
            raise self._failure(exc) from None

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
        params = claim_params(key, owner, lease, retry_unknown)
        try:
            with self._sync_pool().connection() as connection:
                if budget is not None:
                    arguments = budget_params(key, owner, lease, retry_unknown, budget)
                    row = connection.execute(self._budgeted, arguments).fetchone()
                    return budget_claim(key, row, budget)
                for _ in range(3):
                    row = connection.execute(self._sql["claim"], params).fetchone()
                    if row is not None:
                        return Claim(
                            granted=True,
                            record=read_record(row),
                            previous=previous_record(key, row[-1]),
                        )
                    held = connection.execute(self._sql["select_now"], params).fetchone()
                    if held is not None:
                        record = read_record(held)
                        return Claim(
                            granted=False, record=record, in_flight=record.in_flight(held[-1])
                        )
        except (psycopg.Error, PoolTimeout) as exc:
            raise self._failure(exc) from None
        raise self._failure(RuntimeError("the record vanished while being claimed"))

    def settle(
        self,
        key: RecordKey,
        state: OutcomeStatus,
        *,
        owner: str | None,
        result: ResendResult | None = None,
        error: BaseException | None = None,
    ) -> Record | None:
        statement, params = self._settle_statement(key, state, owner, result, error)
        try:
            with self._sync_pool().connection() as connection:
                row = connection.execute(statement, params).fetchone()
        except (psycopg.Error, PoolTimeout) as exc:
            raise self._failure(exc) from None
        return None if row is None else read_record(row)

    def settle_soon(
        self,
        key: RecordKey,
        state: OutcomeStatus,
        *,
        owner: str,
        result: ResendResult | None = None,
        error: BaseException | None = None,
    ) -> None:
        self._queued.submit((key, owner, state, dump_result(result), dump_error(error)))

    def flush(self) -> None:
        self._queued.wait()

    def get(self, key: RecordKey) -> Record | None:
        self.flush()  # this process's queued outcomes first: a reader sees its own writes
        try:
            with self._sync_pool().connection() as connection:
                row = connection.execute(self._sql["select_now"], key_params(key)).fetchone()
        except (psycopg.Error, PoolTimeout) as exc:
            raise self._failure(exc) from None
        return None if row is None else read_record(row)

    def records(self, *, run: str | None = None, user_id: str | None = None) -> Iterator[Record]:
        return self._select(run=run, user_id=user_id)

    def records_since(self, *, run: str, since: float) -> Iterator[Record]:
        return self._select(run=run, since=since)

    def _select(
        self, *, run: str | None, user_id: str | None = None, since: float | None = None
    ) -> Iterator[Record]:
        statement, values = select_records(self._table, run=run, user_id=user_id, since=since)
        self.flush()
        try:
            # A server-side cursor: a run of millions streams in pages.
            with (
                self._sync_pool().connection() as connection,
                connection.transaction(),
                connection.cursor(name="invites_ledger_records") as cursor,
            ):
                cursor.execute(statement, values)
                while rows := cursor.fetchmany(500):
                    yield from (read_record(row) for row in rows)
        except (psycopg.Error, PoolTimeout) as exc:
            raise self._failure(exc) from None

    def close(self) -> None:
        self._queued.close()  # the outcomes queued from sync code are committed first
        with self._lock:
            self._closed = True
            pool, self._pool = self._pool, None
            pools, self._async_pools = self._async_pools, {}
        if pool is not None and self._pid == os.getpid():
            pool.close()
        for async_pool in pools.values():
            async_pool.abandon()

    # -- async -----------------------------------------------------------------------------------

    async def aclaim(
        self,
        key: RecordKey,
        *,
        owner: str,
        lease: float,
        retry_unknown: bool = False,
        budget: Budget | None = None,
    ) -> Claim:
        params = claim_params(key, owner, lease, retry_unknown)
        try:
            async with (await self._async_pool()).connection() as connection:
                if budget is not None:
                    arguments = budget_params(key, owner, lease, retry_unknown, budget)
                    cursor = await connection.execute(self._budgeted, arguments)
                    return budget_claim(key, await cursor.fetchone(), budget)
                for _ in range(3):
                    row = await (await connection.execute(self._sql["claim"], params)).fetchone()
                    if row is not None:
                        return Claim(
                            granted=True,
                            record=read_record(row),
                            previous=previous_record(key, row[-1]),
                        )
                    cursor = await connection.execute(self._sql["select_now"], params)
                    held = await cursor.fetchone()
                    if held is not None:
                        record = read_record(held)
                        return Claim(
                            granted=False, record=record, in_flight=record.in_flight(held[-1])
                        )
        except (psycopg.Error, PoolTimeout) as exc:
            raise self._failure(exc) from None
        raise self._failure(RuntimeError("the record vanished while being claimed"))

    async def asettle(
        self,
        key: RecordKey,
        state: OutcomeStatus,
        *,
        owner: str | None,
        result: ResendResult | None = None,
        error: BaseException | None = None,
    ) -> Record | None:
        statement, params = self._settle_statement(key, state, owner, result, error)
        try:
            async with (await self._async_pool()).connection() as connection:
                row = await (await connection.execute(statement, params)).fetchone()
        except (psycopg.Error, PoolTimeout) as exc:
            raise self._failure(exc) from None
        return None if row is None else read_record(row)

    async def asettle_soon(
        self,
        key: RecordKey,
        state: OutcomeStatus,
        *,
        owner: str,
        result: ResendResult | None = None,
        error: BaseException | None = None,
    ) -> None:
        self._queued.asubmit((key, owner, state, dump_result(result), dump_error(error)))

    async def aflush(self) -> None:
        await self._queued.await_all()

    async def aget(self, key: RecordKey) -> Record | None:
        await self.aflush()
        try:
            async with (await self._async_pool()).connection() as connection:
                cursor = await connection.execute(self._sql["select_now"], key_params(key))
                row = await cursor.fetchone()
        except (psycopg.Error, PoolTimeout) as exc:
            raise self._failure(exc) from None
        return None if row is None else read_record(row)

    async def aclose(self) -> None:
        """Commit this event loop's queued outcomes, close its pool here, and every other pool as
        :meth:`close` does."""
        await self.aflush()
        loop = asyncio.get_running_loop()
        with self._lock:
            mine = self._async_pools.pop(loop, None)
        if mine is not None:
            await mine.aclose()
        await asyncio.to_thread(self.close)

    # -- pools and statements --------------------------------------------------------------------

    def _settle_statement(
        self,
        key: RecordKey,
        state: OutcomeStatus,
        owner: str | None,
        result: ResendResult | None,
        error: BaseException | None,
    ) -> tuple[sql.Composed, dict[str, Any]]:
        params = {
            **key_params(key),
            "state": state,
            "result": dump_result(result),
            "error": dump_error(error),
            "owner": owner,
        }
        return self._sql["settle" if owner is None else "settle_held"], params

    def _settle_many(self, outcomes: list[Outcome]) -> set[RecordKey]:
        statement, params = settle_many(self._table, outcomes)
        try:
            with self._sync_pool().connection() as connection:
                rows = connection.execute(statement, params).fetchall()
        except (psycopg.Error, PoolTimeout) as exc:
            raise self._failure(exc) from None
        return {RecordKey(*row) for row in rows}

    async def _asettle_many(self, outcomes: list[Outcome]) -> set[RecordKey]:
        statement, params = settle_many(self._table, outcomes)
        try:
            async with (await self._async_pool()).connection() as connection:
                rows = await (await connection.execute(statement, params)).fetchall()
        except (psycopg.Error, PoolTimeout) as exc:
            raise self._failure(exc) from None
        return {RecordKey(*row) for row in rows}

    def _sync_pool(self) -> ConnectionPool:
        with self._lock:
            self._check_usable()
            if self._pool is None:
                self._pool = ConnectionPool(
                    self._conninfo,
                    kwargs=self._connect_args,
                    min_size=1,
                    max_size=self._max_size,
                    timeout=self._timeout,
                    check=check_lent,
                    name="invites-ledger",
                    open=True,
                )
            return self._pool

    async def _async_pool(self) -> LoopPool:
        loop = asyncio.get_running_loop()
        with self._lock:
            self._check_usable()
            pool = self._async_pools.get(loop)
            if pool is None:
                for other in [other for other in self._async_pools if other.is_closed()]:
                    self._async_pools.pop(other).abandon()  # its loop has ended
                pool = LoopPool(self._conninfo, self._connect_args, self._max_size, self._timeout)
                self._async_pools[loop] = pool
            return pool

    def _check_usable(self) -> None:
        if self._closed:
            raise self._failure(RuntimeError("closed"))
        if self._pid != os.getpid():
            # A forked child (a prefork task worker) must not share its parent's sockets.
            self._pid = os.getpid()
            self._pool = None
            self._async_pools = {}

    def _failure(self, exc: BaseException) -> ConnectionFailed:
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        if self._password:
            text = text.replace(self._password, "***")
        return ConnectionFailed(
            f"the ledger {self.label} is not usable ({type(exc).__name__}: {text})",
            details={"ledger": self.label},
        )
