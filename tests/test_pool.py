"""The provider's connection pool decides as httpcore's own does, in one walk over its connections.

Every decision of the bookkeeping pass (which connections are dropped or closed, which queued
request gets which connection, when a new one is opened) is compared with httpcore's own pass on
the same state; the one difference allowed is how often each connection is asked.
"""

from __future__ import annotations

from typing import Any

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


class FakeConnection:
    """A connection in one state; counts how often the pool asks whether it is idle."""

    def __init__(self, state: str, name: str) -> None:
        self.state = state
        self.name = name
        self.idle_asked = 0

    def is_closed(self) -> bool:
        return self.state == "closed"

    def has_expired(self) -> bool:
        return self.state == "expired"

    def is_idle(self) -> bool:
        self.idle_asked += 1
        return self.state in ("idle", "other-origin", "failed")

    def is_available(self) -> bool:
        return self.state in ("idle", "other-origin")

    def can_handle_request(self, origin: Any) -> bool:
        return self.state != "other-origin"


def _pool(states: list[str], queued: int, max_connections: int, keepalive: int) -> Any:
    pool: Any = SyncPool(max_connections=max_connections, max_keepalive_connections=keepalive)
    pool._connections = [FakeConnection(state, f"c{index}") for index, state in enumerate(states)]
    pool._requests = [
        PoolRequest(httpcore.Request("GET", f"http://vendor.invalid/{index}"))
        for index in range(queued)
    ]
    created = iter(range(1000))
    pool.create_connection = lambda origin: FakeConnection("connecting", f"new{next(created)}")
    return pool


def _decisions(pool: Any, closing: list[Any]) -> tuple[list[str], list[str], list[str | None]]:
    assigned = [None if r.connection is None else r.connection.name for r in pool._requests]
    return [c.name for c in pool._connections], [c.name for c in closing], assigned


@settings(max_examples=300, deadline=None)
@given(
    states=st.lists(st.sampled_from(STATES), max_size=12),
    queued=st.integers(min_value=0, max_value=6),
    max_connections=st.integers(min_value=1, max_value=10),
    keepalive=st.integers(min_value=0, max_value=10),
)
def test_the_pass_decides_as_httpcores_own(
    states: list[str], queued: int, max_connections: int, keepalive: int
) -> None:
    keepalive = min(keepalive, max_connections)
    theirs = _pool(states, queued, max_connections, keepalive)
    expected = _decisions(theirs, httpcore.ConnectionPool._assign_requests_to_connections(theirs))

    ours = _pool(states, queued, max_connections, keepalive)
    assert _decisions(ours, assign(ours)) == expected


def test_each_connection_is_asked_a_bounded_number_of_times() -> None:
    pool = _pool(["active"] * 50 + ["idle"], queued=3, max_connections=100, keepalive=20)

    assign(pool)

    # Once in the clean-up, once per queued request at most; httpcore's own pass asks every
    # connection once per connection in its clean-up alone (51 times each here).
    assert max(connection.idle_asked for connection in pool._connections) <= 1 + 3


def test_the_providers_transports_use_the_pool() -> None:
    assert type(sync_transport(LIMITS)._pool) is SyncPool
    assert type(async_transport(LIMITS)._pool) is AsyncPool
