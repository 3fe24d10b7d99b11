"""The provider's connection pool decides as httpcore's own does, in one walk over its connections.

Every decision of the bookkeeping pass (which connections are dropped or closed, which queued
request gets which connection, when a new one is opened) is compared with httpcore's own pass on
the same state, with one difference: a connection given to a request that has not started on it
is not idle to the pool (httpcore would close it under that request); to the asyncio pool it is
not available either. httpcore's pass runs over connections that say so; the one difference
allowed beyond that is how often each connection is asked.
"""

from __future__ import annotations

from typing import Any, Literal

import httpcore
import pytest
from httpcore._sync.connection_pool import PoolRequest
from hypothesis import given, settings
from hypothesis import strategies as st

from invites._deadline import async_transport, sync_transport
from invites._pool import LINEAR, AsyncPool, SyncPool, assign
from invites._transport import LIMITS

# The pass reproduced is httpcore 1.0's; another series keeps its own pool (see invites._pool).
pytestmark = pytest.mark.skipif(not LINEAR, reason="only httpcore 1.0 pools use invites' pass")

STATES = ("closed", "expired", "idle", "active", "connecting", "other-origin", "failed")
#: How a connection given to a request that has not started on it tells httpcore's pass so:
#: not idle ("sync"), neither idle nor available ("async"), or not at all (None).
Given = Literal["sync", "async"] | None


class FakeConnection:
    """A connection in one state; counts how often the pool asks whether it is idle.

    With ``requests`` (the pool's), a connection one of them holds answers as ``given`` says.
    """

    def __init__(
        self, state: str, name: str, requests: list[Any] | None = None, given: Given = None
    ) -> None:
        self.state = state
        self.name = name
        self.idle_asked = 0
        self.requests = requests
        self.given = given

    def _held(self) -> bool:
        return any(request.connection is self for request in self.requests or ())

    def is_closed(self) -> bool:
        return self.state == "closed"

    def has_expired(self) -> bool:
        return self.state == "expired"

    def is_idle(self) -> bool:
        self.idle_asked += 1
        held = self.given is not None and self._held()
        return self.state in ("idle", "other-origin", "failed") and not held

    def is_available(self) -> bool:
        held = self.given == "async" and self._held()
        return self.state in ("idle", "other-origin") and not held

    def can_handle_request(self, origin: Any) -> bool:
        return self.state != "other-origin"


def _pool(
    states: list[str],
    queued: int,
    max_connections: int,
    keepalive: int,
    *,
    given_to: tuple[int, ...] = (),
    given: Given = None,
    pool_class: type[Any] = SyncPool,
) -> Any:
    """A pool over connections in ``states``, with ``queued`` requests waiting and one request
    already given each connection of ``given_to`` (indexes), not started on it yet."""
    pool: Any = pool_class(max_connections=max_connections, max_keepalive_connections=keepalive)
    requests: list[Any] = []
    pool._connections = [
        FakeConnection(state, f"c{index}", requests, given) for index, state in enumerate(states)
    ]
    for index in given_to:
        waiting = PoolRequest(httpcore.Request("GET", f"http://vendor.invalid/given{index}"))
        waiting.assign_to_connection(pool._connections[index])
        requests.append(waiting)
    requests += [
        PoolRequest(httpcore.Request("GET", f"http://vendor.invalid/{index}"))
        for index in range(queued)
    ]
    pool._requests = requests
    created = iter(range(1000))
    pool.create_connection = lambda origin: FakeConnection(
        "connecting", f"new{next(created)}", requests, given
    )
    return pool


def _decisions(pool: Any, closing: list[Any]) -> tuple[list[str], list[str], list[str | None]]:
    assigned = [None if r.connection is None else r.connection.name for r in pool._requests]
    return [c.name for c in pool._connections], [c.name for c in closing], assigned


_STATE_SPACE = {
    "states": st.lists(st.sampled_from(STATES), max_size=12),
    "given_to": st.lists(st.integers(min_value=0, max_value=11), max_size=4, unique=True),
    "queued": st.integers(min_value=0, max_value=6),
    "max_connections": st.integers(min_value=1, max_value=10),
    "keepalive": st.integers(min_value=0, max_value=10),
}


def _given_to(states: list[str], indexes: list[int]) -> tuple[int, ...]:
    """Of ``indexes``, the idle connections: only those can be given to a request not started."""
    return tuple(i for i in indexes if i < len(states) and states[i] in ("idle", "other-origin"))


#: Each pool, how a connection given to a request that has not started on it looks to it, and
#: httpcore's pass it reproduces.
POOLS = [
    pytest.param(SyncPool, "sync", httpcore.ConnectionPool, id="threads"),
    pytest.param(AsyncPool, "async", httpcore.AsyncConnectionPool, id="asyncio"),
]


@pytest.mark.parametrize(("pool_class", "looks", "httpcores"), POOLS)
@settings(max_examples=300, deadline=None)
@given(**_STATE_SPACE)
def test_the_pass_decides_as_httpcores_own_over_connections_that_say_they_are_given(
    pool_class: type[Any],
    looks: Given,
    httpcores: Any,
    states: list[str],
    given_to: list[int],
    queued: int,
    max_connections: int,
    keepalive: int,
) -> None:
    keepalive = min(keepalive, max_connections)
    held = _given_to(states, given_to)
    theirs = _pool(states, queued, max_connections, keepalive, given_to=held, given=looks)
    expected = _decisions(theirs, httpcores._assign_requests_to_connections(theirs))

    ours = _pool(states, queued, max_connections, keepalive, given_to=held, pool_class=pool_class)
    assert _decisions(ours, ours._assign_requests_to_connections()) == expected


class StartingConnection(FakeConnection):
    """Idle when the pool first asks, then active: its request started on it meanwhile."""

    def is_idle(self) -> bool:
        self.idle_asked += 1
        return self.idle_asked == 1


def test_a_connection_whose_request_starts_during_the_pass_is_not_closed() -> None:
    pool = _pool(["idle", "idle"], 0, 10, 0, given_to=(0,))
    pool._connections[0] = starting = StartingConnection("idle", "c0")
    pool._requests[0].connection = starting

    closed = pool._assign_requests_to_connections()

    assert [c.name for c in closed] == ["c1"]


def test_with_http2_the_async_pool_gives_a_held_connection_again() -> None:
    # An HTTP/2 connection takes several requests at once: the asyncio pool then decides as the
    # thread pool does.
    pool = _pool(["idle"], queued=2, max_connections=10, keepalive=10, pool_class=AsyncPool)
    pool._http2 = True

    pool._assign_requests_to_connections()

    assert [request.connection.name for request in pool._requests] == ["c0", "c0"]


def test_an_idle_connection_given_to_a_request_is_not_given_to_another() -> None:
    # httpcore's own pass gives the one idle connection to all three requests: two then fail
    # with ConnectionNotAvailable and queue again. The asyncio pool opens a connection each.
    pool = _pool(["idle"], queued=3, max_connections=10, keepalive=10, pool_class=AsyncPool)

    pool._assign_requests_to_connections()

    assert [request.connection.name for request in pool._requests] == ["c0", "new0", "new1"]


def test_each_connection_is_asked_a_bounded_number_of_times() -> None:
    pool = _pool(["active"] * 50 + ["idle"], queued=3, max_connections=100, keepalive=20)

    assign(pool)

    # Once in the clean-up, once per queued request at most; httpcore's own pass asks every
    # connection once per connection in its clean-up alone (51 times each here).
    assert max(connection.idle_asked for connection in pool._connections) <= 1 + 3


def test_the_providers_transports_use_the_pool() -> None:
    assert type(sync_transport(LIMITS)._pool) is SyncPool
    assert type(async_transport(LIMITS)._pool) is AsyncPool
