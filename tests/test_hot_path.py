"""The per-request path stays cheap: no import machinery, no work a request does not need."""

from __future__ import annotations

import asyncio
import contextlib
import importlib.abc
import importlib.machinery
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from types import ModuleType

import httpx
from support import vendor_config

import invites
from invites._pacing import Throttle
from invites.sandbox import TENANT_USER_INVITED, RunningSandbox


class _ImportSearches(importlib.abc.MetaPathFinder):
    """Records every module the import system searches for from one thread.

    A finder on ``sys.meta_path`` is asked only about names missing from ``sys.modules``: an
    import that succeeded once is never searched again, one that failed is searched every time.
    """

    def __init__(self, thread: int) -> None:
        self.thread = thread
        self.names: list[str] = []

    def find_spec(
        self,
        fullname: str,
        path: Sequence[str] | None,
        target: ModuleType | None = None,
    ) -> importlib.machinery.ModuleSpec | None:
        if threading.get_ident() == self.thread:
            self.names.append(fullname)
        return None  # the next finder decides


@contextmanager
def _import_searches() -> Iterator[list[str]]:
    finder = _ImportSearches(threading.get_ident())
    sys.meta_path.insert(0, finder)
    try:
        yield finder.names
    finally:
        sys.meta_path.remove(finder)


def test_an_async_resend_over_a_socket_searches_for_no_module(server: RunningSandbox) -> None:
    # httpcore asks which async library runs it several times per request by importing sniffio
    # inside a function: without sniffio installed, each of those imports fails and searches
    # the whole import path again (tens of microseconds each).
    config = vendor_config("tenant_api", server.url)

    async def resend_twice() -> list[str]:
        async with invites.from_config(config) as provider:
            await provider.aresend_invite(TENANT_USER_INVITED)  # first use loads what it needs
            with _import_searches() as searched:
                result = await provider.aresend_invite(TENANT_USER_INVITED)
            assert result.status_code == 200
            return searched

    assert asyncio.run(resend_twice()) == []


def test_the_import_search_probe_sees_a_failing_import() -> None:
    def failing_import() -> None:
        with contextlib.suppress(ImportError):
            import invites_no_such_module  # type: ignore[import-not-found]  # noqa: F401

    with _import_searches() as searched:
        failing_import()
        failing_import()
    assert searched == ["invites_no_such_module", "invites_no_such_module"]


def test_a_sync_resend_over_a_socket_searches_for_no_module(server: RunningSandbox) -> None:
    config = vendor_config("tenant_api", server.url)
    with invites.from_config(config) as provider, httpx.Client() as warm:
        warm.get(server.url + "/")  # httpx's own first-use imports
        provider.resend_invite(TENANT_USER_INVITED)
        with _import_searches() as searched:
            result = provider.resend_invite(TENANT_USER_INVITED)
    assert result.status_code == 200
    assert searched == []


def test_a_throttle_is_idle_only_without_rate_and_before_any_pause() -> None:
    now = [100.0]
    unpaced = Throttle(None, clock=lambda: now[0])
    assert unpaced.idle()
    assert not Throttle(5.0, clock=lambda: now[0]).idle()
    unpaced.pause(2.0)
    assert not unpaced.idle()
    assert unpaced.paused_for() == 2.0
    now[0] += 3.0  # the pause is over, the pacer is still asked (and answers 0)
    assert not unpaced.idle()
    assert unpaced.reserve() == 0.0
