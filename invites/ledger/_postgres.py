"""The server-backed ledger: one PostgreSQL table shared by every process and machine.

Each claim is one ``INSERT ... ON CONFLICT DO UPDATE ... WHERE <the key may be taken> RETURNING``
statement in its own transaction: PostgreSQL locks the key's row (or its slot in the primary
key), so of any number of racing claims exactly one is granted, and the statement commits before
the claim returns. A takeover copies the record it replaces into ``previous`` in the same
statement, so :attr:`~invites.ledger.Claim.previous` is the row as it stood under the lock. Every
time is the server's clock (Unix seconds), so hosts with skewed clocks agree on leases.

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
import contextlib
import os
import re
import select
import threading
from collections.abc import AsyncIterator, Iterator
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus
from psycopg_pool import ConnectionPool, PoolTimeout

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
    load_error,
    load_result,
)

__all__ = ["PostgresLedger", "ledger_label"]

_TABLE: Final = "invites_ledger"
_IDENTIFIER: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}\Z")
_COLUMNS: Final = (
    "run",
    "identity",
    "user_id",
    "state",
    "owner",
    "lease_until",
    "claims",
    "result",
    "error",
    "created_at",
    "updated_at",
)
_NOW: Final = "extract(epoch FROM clock_timestamp())::float8"

_SCHEMA: Final = """
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {table} (
    seq         bigint GENERATED ALWAYS AS IDENTITY,
    run         text NOT NULL,
    identity    text NOT NULL,
    user_id     text NOT NULL,
    state       text NOT NULL
                CHECK (state IN ('intent', 'sent', 'already_verified', 'failed', 'unknown')),
    owner       text NOT NULL,
    lease_until double precision NOT NULL,
    claims      integer NOT NULL,
    result      text,
    error       text,
    previous    jsonb,
    created_at  double precision NOT NULL,
    updated_at  double precision NOT NULL,
    PRIMARY KEY (run, identity, user_id)
);
CREATE INDEX IF NOT EXISTS {user_index} ON {table} (user_id);
"""

# The WHERE of the upsert is may_claim() as SQL, evaluated on the locked, current row.
_CLAIM: Final = """
INSERT INTO {table} AS t
    (run, identity, user_id, state, owner, lease_until, claims, created_at, updated_at)
SELECT %(run)s, %(identity)s, %(user_id)s, 'intent', %(owner)s, now.t + %(lease)s, 1,
       now.t, now.t
FROM (SELECT {now} AS t) AS now
ON CONFLICT (run, identity, user_id) DO UPDATE SET
    state = 'intent',
    owner = excluded.owner,
    lease_until = excluded.lease_until,
    claims = t.claims + 1,
    result = NULL,
    error = NULL,
    updated_at = excluded.updated_at,
    previous = jsonb_build_object(
        'state', t.state, 'owner', t.owner, 'lease_until', t.lease_until, 'claims', t.claims,
        'result', t.result, 'error', t.error, 'created_at', t.created_at,
        'updated_at', t.updated_at)
WHERE t.state = 'failed'
   OR (%(retry_unknown)s AND (t.state = 'unknown'
       OR (t.state = 'intent' AND t.lease_until <= excluded.updated_at)))
RETURNING {columns}, previous
"""
_SELECT_NOW: Final = "SELECT {columns}, {now} FROM {table} WHERE {where_key}"
_SETTLE: Final = (
    "UPDATE {table} SET state = %(state)s, result = %(result)s, error = %(error)s, "
    "updated_at = {now} WHERE {where_key}{held} RETURNING {columns}"
)
_WHERE_KEY: Final = "run = %(run)s AND identity = %(identity)s AND user_id = %(user_id)s"
_HELD: Final = " AND state = 'intent' AND owner = %(owner)s"


def _split_url(url: str) -> tuple[str, str]:
    """``url`` without the ``schema`` query parameter (psycopg would refuse it), and the schema."""
    parts = urlsplit(url)
    scheme = "postgresql"  # also for postgres:// and postgresql+psycopg://
    query = parse_qsl(parts.query, keep_blank_values=True)
    schemas = [value for name, value in query if name == "schema"]
    rest = [(name, value) for name, value in query if name != "schema"]
    schema = schemas[-1] if schemas else "public"
    if not _IDENTIFIER.match(schema):
        raise ValueError("schema: expected a plain SQL identifier")
    return urlunsplit((scheme, parts.netloc, parts.path, urlencode(rest), "")), schema


def ledger_label(url: str) -> str:
    """``postgresql://user@host:port/db?schema=...`` of a ledger URL: never its password."""
    try:
        conninfo, schema = _split_url(url)
        params = conninfo_to_dict(conninfo)
    except (ValueError, psycopg.Error):
        return "postgresql://(unreadable URL)"
    user = f"{params['user']}@" if params.get("user") else ""
    host = str(params.get("host") or "localhost")
    port = params.get("port") or 5432
    return f"postgresql://{user}{host}:{port}/{params.get('dbname') or ''}?schema={schema}"


def _record(row: tuple[Any, ...] | list[Any]) -> Record:
    run, identity, user_id, state, owner, lease_until, claims, result, error, created, updated = (
        row[: len(_COLUMNS)]
    )
    return Record(
        key=RecordKey(run=run, identity=identity, user_id=user_id),
        state=state,
        owner=owner,
        lease_until=lease_until,
        claims=claims,
        result=load_result(result),
        error=load_error(error),
        created_at=created,
        updated_at=updated,
    )


def _previous(key: RecordKey, data: dict[str, Any] | None) -> Record | None:
    if data is None:
        return None
    return _record([key.run, key.identity, key.user_id, *(data[c] for c in _COLUMNS[3:])])


def _key_params(key: RecordKey) -> dict[str, Any]:
    return {"run": key.run, "identity": key.identity, "user_id": key.user_id}


def _stirred(connection: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> bool:
    """Whether an idle connection's socket has something to read: nothing is expected on it, so
    the server has said something (most often a termination notice before closing)."""
    if connection.closed or connection.broken:
        return True
    readable, _, _ = select.select([connection.fileno()], [], [], 0)
    return bool(readable)


def _check(connection: psycopg.Connection[Any]) -> None:
    """The pool's check before lending a connection: a round trip only when the socket stirred."""
    if _stirred(connection):
        ConnectionPool.check_connection(connection)


def _claim_params(key: RecordKey, owner: str, lease: float, retry_unknown: bool) -> dict[str, Any]:
    return {**_key_params(key), "owner": owner, "lease": lease, "retry_unknown": retry_unknown}


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
            self._conninfo, self.schema = _split_url(url)
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
        self._table = sql.Identifier(self.schema, _TABLE)
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._pool: ConnectionPool | None = None
        self._async_pools: dict[asyncio.AbstractEventLoop, _LoopPool] = {}
        self._closed = False
        self._sql = self._statements()
        self.migrate()

    def __repr__(self) -> str:
        return f"PostgresLedger({self.label!r})"

    # -- the schema ------------------------------------------------------------------------------

    def migrate(self) -> None:
        """Create the schema, table and index unless they exist; safe from many processes at once
        (they queue on an advisory lock, so concurrent ``CREATE ... IF NOT EXISTS`` never race)."""
        ddl = sql.SQL(_SCHEMA).format(
            schema=sql.Identifier(self.schema),
            table=self._table,
            user_index=sql.Identifier(f"{_TABLE}_user"),
        )
        try:
            with psycopg.connect(self._conninfo, **self._connect_args) as connection:
                name = self._table.as_string(connection)  # quoted: a mixed-case schema too
                exists = connection.execute("SELECT to_regclass(%s) IS NOT NULL", (name,))
                if exists.fetchone() == (True,):
                    return
                with connection.transaction():
                    connection.execute(
                        "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"invites-ledger:{name}",)
                    )
                    connection.execute(ddl)
        except psycopg.Error as exc:
            raise self._failure(exc) from None

    # -- the interface ---------------------------------------------------------------------------

    def claim(
        self, key: RecordKey, *, owner: str, lease: float, retry_unknown: bool = False
    ) -> Claim:
        params = _claim_params(key, owner, lease, retry_unknown)
        try:
            with self._sync_pool().connection() as connection:
                for _ in range(3):
                    row = connection.execute(self._sql["claim"], params).fetchone()
                    if row is not None:
                        return Claim(
                            granted=True, record=_record(row), previous=_previous(key, row[-1])
                        )
                    held = connection.execute(self._sql["select_now"], params).fetchone()
                    if held is not None:
                        record = _record(held)
                        return Claim(
                            granted=False, record=record, in_flight=record.in_flight(held[-1])
                        )
        except (psycopg.Error, PoolTimeout) as exc:
            raise self._failure(exc) from None
        raise self._failure(RuntimeError("the record vanished while being claimed"))

    def settle(
        self,
        key: RecordKey,
        state: OutcomeState,
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
        return None if row is None else _record(row)

    def get(self, key: RecordKey) -> Record | None:
        try:
            with self._sync_pool().connection() as connection:
                row = connection.execute(self._sql["select_now"], _key_params(key)).fetchone()
        except (psycopg.Error, PoolTimeout) as exc:
            raise self._failure(exc) from None
        return None if row is None else _record(row)

    def records(self, *, run: str | None = None, user_id: str | None = None) -> Iterator[Record]:
        where = [
            sql.SQL("{} = %s").format(sql.Identifier(name))
            for name, value in (("run", run), ("user_id", user_id))
            if value is not None
        ]
        statement = sql.SQL("SELECT {columns} FROM {table}{where} ORDER BY created_at, seq").format(
            columns=sql.SQL(", ").join(map(sql.Identifier, _COLUMNS)),
            table=self._table,
            where=sql.SQL(" WHERE ").join([sql.SQL(""), sql.SQL(" AND ").join(where)])
            if where
            else sql.SQL(""),
        )
        values = [value for value in (run, user_id) if value is not None]
        try:
            # A server-side cursor: a run of millions streams in pages.
            with (
                self._sync_pool().connection() as connection,
                connection.transaction(),
                connection.cursor(name="invites_ledger_records") as cursor,
            ):
                cursor.execute(statement, values)
                while rows := cursor.fetchmany(500):
                    yield from (_record(row) for row in rows)
        except (psycopg.Error, PoolTimeout) as exc:
            raise self._failure(exc) from None

    def close(self) -> None:
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
        self, key: RecordKey, *, owner: str, lease: float, retry_unknown: bool = False
    ) -> Claim:
        params = _claim_params(key, owner, lease, retry_unknown)
        try:
            async with (await self._async_pool()).connection() as connection:
                for _ in range(3):
                    row = await (await connection.execute(self._sql["claim"], params)).fetchone()
                    if row is not None:
                        return Claim(
                            granted=True, record=_record(row), previous=_previous(key, row[-1])
                        )
                    cursor = await connection.execute(self._sql["select_now"], params)
                    held = await cursor.fetchone()
                    if held is not None:
                        record = _record(held)
                        return Claim(
                            granted=False, record=record, in_flight=record.in_flight(held[-1])
                        )
        except (psycopg.Error, PoolTimeout) as exc:
            raise self._failure(exc) from None
        raise self._failure(RuntimeError("the record vanished while being claimed"))

    async def asettle(
        self,
        key: RecordKey,
        state: OutcomeState,
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
        return None if row is None else _record(row)

    async def aget(self, key: RecordKey) -> Record | None:
        try:
            async with (await self._async_pool()).connection() as connection:
                cursor = await connection.execute(self._sql["select_now"], _key_params(key))
                row = await cursor.fetchone()
        except (psycopg.Error, PoolTimeout) as exc:
            raise self._failure(exc) from None
        return None if row is None else _record(row)

    async def aclose(self) -> None:
        """Close this event loop's pool here, and every other pool as :meth:`close` does."""
        loop = asyncio.get_running_loop()
        with self._lock:
            mine = self._async_pools.pop(loop, None)
        if mine is not None:
            await mine.aclose()
        await asyncio.to_thread(self.close)

    # -- pools and statements --------------------------------------------------------------------

    def _statements(self) -> dict[str, sql.Composed]:
        names = {
            "table": self._table,
            "columns": sql.SQL(", ").join(map(sql.Identifier, _COLUMNS)),
            "now": sql.SQL(_NOW),
            "where_key": sql.SQL(_WHERE_KEY),
        }
        return {
            "claim": sql.SQL(_CLAIM).format(**names),
            "select_now": sql.SQL(_SELECT_NOW).format(**names),
            "settle": sql.SQL(_SETTLE).format(**names, held=sql.SQL("")),
            "settle_held": sql.SQL(_SETTLE).format(**names, held=sql.SQL(_HELD)),
        }

    def _settle_statement(
        self,
        key: RecordKey,
        state: OutcomeState,
        owner: str | None,
        result: ResendResult | None,
        error: BaseException | None,
    ) -> tuple[sql.Composed, dict[str, Any]]:
        params = {
            **_key_params(key),
            "state": state,
            "result": dump_result(result),
            "error": dump_error(error),
            "owner": owner,
        }
        return self._sql["settle" if owner is None else "settle_held"], params

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
                    check=_check,
                    name="invites-ledger",
                    open=True,
                )
            return self._pool

    async def _async_pool(self) -> _LoopPool:
        loop = asyncio.get_running_loop()
        with self._lock:
            self._check_usable()
            pool = self._async_pools.get(loop)
            if pool is None:
                for other in [other for other in self._async_pools if other.is_closed()]:
                    self._async_pools.pop(other).abandon()  # its loop has ended
                pool = _LoopPool(self._conninfo, self._connect_args, self._max_size, self._timeout)
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


class _LoopPool:
    """The async connections of one event loop: at most ``max_size`` lent at once, idle ones
    reused (most recent first), checked when lent, none kept in a doubtful state."""

    def __init__(self, conninfo: str, kwargs: dict[str, Any], max_size: int, timeout: float):
        self._conninfo = conninfo
        self._kwargs = kwargs
        self._timeout = timeout
        self._slots = asyncio.Semaphore(max_size)
        self._idle: list[psycopg.AsyncConnection[Any]] = []
        self._closed = False

    @contextlib.asynccontextmanager
    async def connection(self) -> AsyncIterator[psycopg.AsyncConnection[Any]]:
        try:
            async with asyncio.timeout(self._timeout):
                await self._slots.acquire()
        except TimeoutError:
            raise PoolTimeout(f"no connection free within {self._timeout:g} s") from None
        try:
            connection = await self._lend()
            try:
                yield connection
            finally:
                await self._give_back(connection)
        finally:
            self._slots.release()

    async def _lend(self) -> psycopg.AsyncConnection[Any]:
        while self._idle:
            connection = self._idle.pop()
            if not _stirred(connection):
                return connection
            try:
                await connection.execute("")
            except psycopg.Error:
                await connection.close()
                continue
            return connection
        return await psycopg.AsyncConnection.connect(self._conninfo, **self._kwargs)

    async def _give_back(self, connection: psycopg.AsyncConnection[Any]) -> None:
        # A statement cancelled or failed mid-way may leave the connection busy: never reuse it.
        idle = connection.info.transaction_status == TransactionStatus.IDLE
        if self._closed or connection.closed or connection.broken or not idle:
            await connection.close()
        else:
            self._idle.append(connection)

    async def aclose(self) -> None:
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            await connection.close()

    def abandon(self) -> None:
        """Close the idle connections without their loop (it has ended, or runs elsewhere);
        a connection lent right now is closed when given back."""
        self._closed = True
        idle, self._idle = self._idle, []
        for connection in idle:
            connection.pgconn.finish()


def ping(url: str, *, timeout: float = 5.0) -> None:
    """Connect to the server behind a ledger URL and run ``SELECT 1``; create nothing.

    Raises :class:`~invites.ConnectionFailed` (without the password) when it does not answer.
    """
    label = ledger_label(url)
    password = ""
    try:
        conninfo, _ = _split_url(url)
        password = str(conninfo_to_dict(conninfo).get("password") or "")
        with psycopg.connect(
            conninfo, connect_timeout=max(1, round(timeout)), autocommit=True
        ) as connection:
            connection.execute("SELECT 1")
    except (ValueError, psycopg.Error) as exc:
        text = (str(exc).strip().splitlines() or [""])[0]
        if password:
            text = text.replace(password, "***")
        raise ConnectionFailed(
            f"the ledger {label} does not answer ({type(exc).__name__}: {text})",
            details={"ledger": label},
        ) from None
