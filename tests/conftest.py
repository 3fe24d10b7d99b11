"""Fixtures shared by every test module: the sandbox, served over a real loopback socket."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings

from invites.sandbox import RunningSandbox, Sandbox, serve

# CI judges main, not the draw: there (HYPOTHESIS_PROFILE=ci, set by .ci/run) every property test
# draws the same examples on every clean clone; elsewhere each run explores new ones.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


@pytest.fixture(scope="module")
def served() -> Iterator[RunningSandbox]:
    """One sandbox server per test module (starting uvicorn for every test costs ~0.2 s)."""
    with serve(Sandbox()) as running:
        yield running


@pytest.fixture
def server(served: RunningSandbox) -> RunningSandbox:
    """The module's sandbox over a real socket, reset: its seeded users, no faults, no counts.

    ``server.url`` is its base URL for every vendor.
    """
    served.sandbox.reset()
    return served


@pytest.fixture
def sandbox(server: RunningSandbox) -> Sandbox:
    """The state behind ``server``: emails sent, requests seen, faults to inject."""
    return server.sandbox


@pytest.fixture(scope="session", autouse=True)
def _drop_postgres_schemas() -> Iterator[None]:
    """Drops the PostgreSQL schemas the session's tests created (see tests/_support/services.py)."""
    yield
    from _support.services import drop_postgres_schemas

    drop_postgres_schemas()
