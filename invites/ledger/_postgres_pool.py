"""Connections of the PostgreSQL ledger: the sync pool's check, one event loop's own pool, and
a bare reachability check."""

from __future__ import annotations

import asyncio
import contextlib
import select
from collections.abc import AsyncIterator
from typing import Any

import psycopg
from psycopg.conninfo import conninfo_to_dict
from psycopg.pq import TransactionStatus
from psycopg_pool import ConnectionPool, PoolTimeout

from ..errors import ConnectionFailed
from ._postgres_sql import ledger_label, split_url


def _stirred(connection: psycopg.Connection[Any] | psycopg.AsyncConnection[Any]) -> bool:
    """Whether an idle connection's socket has something to read: nothing is expected on it, so
    the server has said something (most often a termination notice before closing)."""
    if connection.closed or connection.broken:
        return True
    readable, _, _ = select.select([connection.fileno()], [], [], 0)
    return bool(readable)


def check_lent(connection: psycopg.Connection[Any]) -> None:
    """The pool's check before lending a connection: a round trip only when the socket stirred."""
    if _stirred(connection):
        ConnectionPool.check_connection(connection)


class LoopPool:
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
        conninfo, _ = split_url(url)
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
