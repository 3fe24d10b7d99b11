"""The provider's own connection pools: httpcore's, with its TLS context loaded at the first TLS
connection and its bookkeeping pass made linear.

Loading the CA bundle is most of what creating an httpx client costs: the pools take the one
verifying context of the process (:func:`verifying_context`) when their first TLS connection
needs it, so a client for plain HTTP never loads it and every client shares it.

httpcore 1.0's pool runs one pass over its connections whenever a request arrives or an answer
is closed, and that pass compares, for every connection, the keep-alive limit with a list built
over every connection: the work grows with the square of the connections open, paid under the
pool's lock, twice a request. :func:`assign` takes the same decisions, in the same order, from
one walk: it closes the same connections, reuses the same one, opens a new one in the same case,
except that it keeps an unexpired connection given to a request that has not started on it yet
(httpcore may close it, and the request can then fail after it was sent). The asyncio pool's
pass also counts such a connection busy (:class:`AsyncPool`). Only a pool of the httpcore
series it was written against gets it (:data:`LINEAR`); any other keeps httpcore's own pass.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import Container
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


def assign(pool: Any, *, reuse_given: bool = True) -> list[Any]:
    """httpcore's ``_assign_requests_to_connections`` in one walk; the connections to close.

    Called with the pool's lock held, as httpcore calls its own. One decision differs: a
    connection given to a request that has not started on it yet is still idle to httpcore, which
    may close it (past the keep-alive limit, or to make room for another origin) after the lock
    is released, just as that request starts on it: the request then fails after it may have been
    sent. Here a connection a request holds is closed only once it has expired (its keep-alive
    time is over, or the server closed it), as httpcore would close it too. With ``reuse_given``
    False (the asyncio pool), it is not given to a second request either; see
    :class:`AsyncPool`.
    """
    connections: list[_Connection] = pool._connections
    closing: list[_Connection] = []
    given = _Given(pool, now=not reuse_given)
    # Drop closed connections, close expired ones and idle ones past the keep-alive limit that no
    # request holds (httpcore counts every connection against that limit, idle or not: kept).
    for connection in list(connections):
        if connection.is_closed():
            connections.remove(connection)
        elif connection.has_expired() or (
            connection.is_idle()
            and len(connections) > pool._max_keepalive_connections
            and connection not in given
        ):
            connections.remove(connection)
            closing.append(connection)
    skip = () if reuse_given else given
    for pool_request in [request for request in pool._requests if request.is_queued()]:
        origin = pool_request.request.url.origin
        chosen = _first_reusable(connections, origin, skip)
        if chosen is None:
            if len(connections) >= pool._max_connections:
                idle = next((c for c in connections if c.is_idle() and c not in given), None)
                if idle is None:
                    continue  # the request waits for a connection
                connections.remove(idle)
                closing.append(idle)
            chosen = pool.create_connection(origin)
            connections.append(chosen)
        pool_request.assign_to_connection(chosen)
        given.add(chosen)
    return closing


class _Given:
    """The connections the pool's requests hold (given and not started on yet, in use, or done
    with and not yet handed back), found the first time one is asked about, or at once with
    ``now``."""

    __slots__ = ("_found", "_pool")

    def __init__(self, pool: Any, *, now: bool) -> None:
        self._pool = pool
        self._found: set[Any] | None = self._find() if now else None

    def _find(self) -> set[Any]:
        # Each read once: a thread whose request lost its connection clears it without the lock.
        return {request.connection for request in self._pool._requests} - {None}

    def __contains__(self, connection: object) -> bool:
        if self._found is None:
            self._found = self._find()
        return connection in self._found

    def add(self, connection: object) -> None:
        if self._found is not None:  # else found with the rest when first asked
            self._found.add(connection)


def _first_reusable(
    connections: list[_Connection], origin: Any, skip: Container[object]
) -> _Connection | None:
    """The first connection that can take a request to ``origin`` now, not in ``skip``."""
    for connection in connections:
        if (
            connection.can_handle_request(origin)
            and connection.is_available()
            and connection not in skip
        ):
            return connection
    return None


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
    closed) may give the same connection to another request, which then fails with
    ``ConnectionNotAvailable`` and queues again, about twice a request at concurrency 8 over
    loopback. Counting the connection busy from the moment it is given spares those attempts; a
    request that finds no connection free opens one, as httpcore's would. (A thread given a
    connection starts on it about as soon as it is woken: that race is rare there, and the
    thread pool keeps httpcore's choice, which opens fewer connections.) With HTTP/2 enabled, a
    connection may take several requests, and this pool decides as :class:`SyncPool` does.
    """

    def create_connection(self, origin: httpcore.Origin) -> httpcore.AsyncConnectionInterface:
        if self._ssl_context is None and origin.scheme == b"https":
            self._ssl_context = verifying_context()
        return super().create_connection(origin)

    if LINEAR:

        def _assign_requests_to_connections(self) -> list[httpcore.AsyncConnectionInterface]:
            return assign(self, reuse_given=self._http2)
