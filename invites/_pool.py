"""The provider's own connection pools: httpcore's, with its bookkeeping pass made linear.

httpcore 1.0's pool runs one pass over its connections whenever a request arrives or an answer
is closed, and that pass compares, for every connection, the keep-alive limit with a list built
over every connection: the work grows with the square of the connections open, paid under the
pool's lock, twice a request. :func:`assign` takes the same decisions, in the same order, from
one walk: it closes the same connections, reuses the same one, opens a new one in the same case.
Only a pool of the httpcore series it was written against gets it (:data:`LINEAR`); any other
keeps httpcore's own pass.
"""

from __future__ import annotations

from typing import Any, Final, Protocol

import httpcore

__all__ = ["LINEAR", "AsyncPool", "SyncPool", "assign"]

#: Whether the installed httpcore is the series whose pass :func:`assign` reproduces.
LINEAR: Final = httpcore.__version__.startswith("1.0.")


class _Connection(Protocol):
    def is_closed(self) -> bool: ...
    def has_expired(self) -> bool: ...
    def is_idle(self) -> bool: ...
    def is_available(self) -> bool: ...
    def can_handle_request(self, origin: Any) -> bool: ...


def assign(pool: Any) -> list[Any]:
    """httpcore's ``_assign_requests_to_connections`` in one walk; the connections to close.

    Called with the pool's lock held, as httpcore calls its own.
    """
    connections: list[_Connection] = pool._connections
    closing: list[_Connection] = []
    # Drop closed connections, close expired ones and idle ones past the keep-alive limit
    # (httpcore counts every connection against that limit, idle or not: kept as it is).
    for connection in list(connections):
        if connection.is_closed():
            connections.remove(connection)
        elif connection.has_expired() or (
            connection.is_idle() and len(connections) > pool._max_keepalive_connections
        ):
            connections.remove(connection)
            closing.append(connection)
    for pool_request in [request for request in pool._requests if request.is_queued()]:
        origin = pool_request.request.url.origin
        reusable, idle = _first_reusable_and_idle(connections, origin)
        if reusable is not None:
            pool_request.assign_to_connection(reusable)
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


def _first_reusable_and_idle(
    connections: list[_Connection], origin: Any
) -> tuple[_Connection | None, _Connection | None]:
    """The first connection that can take a request to ``origin`` now, else the first idle one."""
    idle = None
    for connection in connections:
        if connection.can_handle_request(origin) and connection.is_available():
            return connection, idle
        if idle is None and connection.is_idle():
            idle = connection
    return None, idle


class SyncPool(httpcore.ConnectionPool):
    """httpcore's pool with :func:`assign` as its bookkeeping pass."""

    def _assign_requests_to_connections(self) -> list[httpcore.ConnectionInterface]:
        return assign(self)


class AsyncPool(httpcore.AsyncConnectionPool):
    """httpcore's async pool with :func:`assign` as its bookkeeping pass."""

    def _assign_requests_to_connections(self) -> list[httpcore.AsyncConnectionInterface]:
        return assign(self)
