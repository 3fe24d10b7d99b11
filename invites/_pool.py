"""The provider's own connection pools: httpcore's, with its TLS context loaded at the first TLS
connection and its bookkeeping pass made linear.

Loading the CA bundle is most of what creating an httpx client costs: the pools take the one
verifying context of the process (:func:`verifying_context`) when their first TLS connection
needs it, so a client for plain HTTP never loads it and every client shares it.

httpcore 1.0's pool runs one pass over its connections whenever a request arrives or an answer
is closed, and that pass compares, for every connection, the keep-alive limit with a list built
over every connection: the work grows with the square of the connections open, paid under the
pool's lock, twice a request. :func:`assign` takes the same decisions, in the same order, from
one walk: it closes the same connections, reuses the same one, opens a new one in the same case.
The asyncio pool's pass also counts a connection busy from the moment it is given to a request
(:class:`AsyncPool`). Only a pool of the httpcore series it was written against gets it
(:data:`LINEAR`); any other keeps httpcore's own pass.
"""

from __future__ import annotations

import ssl
import threading
from typing import Any, Final, Protocol

import httpcore
import httpx

__all__ = ["LINEAR", "AsyncPool", "SyncPool", "assign", "placeholder_context", "verifying_context"]

#: Whether the installed httpcore is the series whose pass :func:`assign` reproduces.
LINEAR: Final = httpcore.__version__.startswith("1.0.")


class _Connection(Protocol):
    def is_closed(self) -> bool: ...
    def has_expired(self) -> bool: ...
    def is_idle(self) -> bool: ...
    def is_available(self) -> bool: ...
    def can_handle_request(self, origin: Any) -> bool: ...


def assign(pool: Any, *, given_is_busy: bool = False) -> list[Any]:
    """httpcore's ``_assign_requests_to_connections`` in one walk; the connections to close.

    Called with the pool's lock held, as httpcore calls its own. With ``given_is_busy`` (and
    HTTP/2 off), a connection counts as busy from the moment it is given to a request, as
    httpcore's own pass would decide if the connection said so; see :class:`AsyncPool`.
    """
    connections: list[_Connection] = pool._connections
    closing: list[_Connection] = []
    busy = _given(pool) if given_is_busy and not pool._http2 else set()
    # Drop closed connections, close expired ones and idle ones past the keep-alive limit
    # (httpcore counts every connection against that limit, idle or not: kept as it is).
    for connection in list(connections):
        if connection.is_closed():
            connections.remove(connection)
        elif connection.has_expired() or (
            connection not in busy
            and connection.is_idle()
            and len(connections) > pool._max_keepalive_connections
        ):
            connections.remove(connection)
            closing.append(connection)
    for pool_request in [request for request in pool._requests if request.is_queued()]:
        origin = pool_request.request.url.origin
        reusable, idle = _first_reusable_and_idle(connections, origin, busy)
        if reusable is not None:
            pool_request.assign_to_connection(reusable)
            if given_is_busy and not pool._http2:
                busy.add(reusable)
            continue
        if len(connections) >= pool._max_connections:
            if idle is None:
                continue  # the request waits for a connection
            connections.remove(idle)
            closing.append(idle)
        connection = pool.create_connection(origin)
        connections.append(connection)
        pool_request.assign_to_connection(connection)
    return closing


def _given(pool: Any) -> set[Any]:
    """The idle connections given to a request that has not started on them yet."""
    return {
        request.connection
        for request in pool._requests
        if request.connection is not None and request.connection.is_idle()
    }


def _first_reusable_and_idle(
    connections: list[_Connection], origin: Any, busy: set[Any]
) -> tuple[_Connection | None, _Connection | None]:
    """The first connection that can take a request to ``origin`` now, else the first idle one;
    a connection in ``busy`` is neither."""
    idle = None
    for connection in connections:
        if connection in busy:
            continue
        if connection.can_handle_request(origin) and connection.is_available():
            return connection, idle
        if idle is None and connection.is_idle():
            idle = connection
    return None, idle


_context_lock = threading.Lock()
_context: ssl.SSLContext | None = None


def verifying_context() -> ssl.SSLContext:
    """The TLS context every client the library creates verifies servers with, made once.

    It is httpx's default: certifi's CA bundle, or ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``.
    """
    global _context
    with _context_lock:
        if _context is None:
            _context = httpx.create_ssl_context()
        return _context


def placeholder_context() -> ssl.SSLContext:
    """What httpx's transport is built with before its pool is replaced by one of these: it
    trusts nothing."""
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


class SyncPool(httpcore.ConnectionPool):
    """httpcore's pool, taking :func:`verifying_context` at its first TLS connection, with
    :func:`assign` as its bookkeeping pass under httpcore 1.0."""

    def create_connection(self, origin: httpcore.Origin) -> httpcore.ConnectionInterface:
        if self._ssl_context is None and origin.scheme == b"https":
            self._ssl_context = verifying_context()
        return super().create_connection(origin)

    if LINEAR:

        def _assign_requests_to_connections(self) -> list[httpcore.ConnectionInterface]:
            return assign(self)


class AsyncPool(httpcore.AsyncConnectionPool):
    """:class:`SyncPool` for asyncio, where a connection is busy once given to a request.

    An HTTP/1.1 connection is idle until a request starts on it, and under asyncio the task
    given it starts only when the loop reaches it: every pass run meanwhile (one per answer
    closed) may give the same connection to another request, or close it, and each such request
    fails with ``ConnectionNotAvailable`` and queues again, about twice a request at
    concurrency 8 over loopback. Counting the connection busy from the moment it is given spares
    those attempts; a request that finds no connection free opens one, as httpcore's would. (A
    thread given a connection starts on it about as soon as it is woken: the race is rare
    there, and the thread pool keeps httpcore's decisions.)
    """

    def create_connection(self, origin: httpcore.Origin) -> httpcore.AsyncConnectionInterface:
        if self._ssl_context is None and origin.scheme == b"https":
            self._ssl_context = verifying_context()
        return super().create_connection(origin)

    if LINEAR:

        def _assign_requests_to_connections(self) -> list[httpcore.AsyncConnectionInterface]:
            return assign(self, given_is_busy=True)
