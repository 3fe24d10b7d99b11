"""Fixtures shared by every test module: a fresh sandbox, served over a real loopback socket."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from invites.sandbox import RunningSandbox, Sandbox, serve


@pytest.fixture
def sandbox() -> Sandbox:
    """A sandbox with its seeded users and no faults."""
    return Sandbox()


@pytest.fixture
def server(sandbox: Sandbox) -> Iterator[RunningSandbox]:
    """``sandbox`` served by uvicorn on an ephemeral 127.0.0.1 port; ``server.url`` is its base."""
    with serve(sandbox) as running:
        yield running
