"""The resend's deadline over a caller's own ``httpx.AsyncClient``: the event loop ends each
exchange at the deadline, cancels nothing else, and leaves the caller's task as it found it."""

from __future__ import annotations

import asyncio
import time

import httpx
import pytest
from _support.vendors import vendor_config

import invites
from invites import OutcomeUnknown, ResendResult
from invites._http.watchdog import Watchdog
from invites.adapter import BaseProvider
from invites.sandbox import TENANT_USER_INVITED

OTHER_USER = "0f0e0d0c-0b0a-4909-8807-060504030201"


class Vendor:
    """Answers the users in ``answering`` at once and keeps everyone else waiting until
    ``release`` is set; ``waiting`` is set once a request waits."""

    def __init__(self, *answering: str) -> None:
        self.answering = set(answering)
        self.waiting = asyncio.Event()
        self.release = asyncio.Event()

    async def __call__(self, request: httpx.Request) -> httpx.Response:
        if not any(user in request.url.path for user in self.answering):
            self.waiting.set()
            await self.release.wait()
        return httpx.Response(200, json={"message": "Invite resent."})


def _provider(client: httpx.AsyncClient, deadline: float) -> BaseProvider:
    config = vendor_config("tenant_api", "https://vendor.example", deadline=deadline)
    return invites.from_config(config, async_client=client)


def test_an_answer_that_never_comes_is_unknown_at_the_deadline_and_the_task_goes_on() -> None:
    async def main() -> ResendResult:
        vendor = Vendor(OTHER_USER)
        async with (
            httpx.AsyncClient(transport=httpx.MockTransport(vendor)) as client,
            _provider(client, deadline=0.2) as provider,
        ):
            with pytest.raises(OutcomeUnknown) as caught:
                await provider.aresend_invite(TENANT_USER_INVITED)
            assert "deadline passed" in str(caught.value.__cause__)
            task = asyncio.current_task()
            assert task is not None
            assert task.cancelling() == 0
            await asyncio.sleep(0)  # a cancel left pending would be raised here
            return await provider.aresend_invite(OTHER_USER)  # the same client goes on

    assert asyncio.run(main()).user_id == OTHER_USER


def test_the_callers_own_cancel_goes_through_as_a_cancel() -> None:
    async def main() -> None:
        vendor = Vendor()
        async with (
            httpx.AsyncClient(transport=httpx.MockTransport(vendor)) as client,
            _provider(client, deadline=60) as provider,
        ):
            resend = asyncio.create_task(provider.aresend_invite(TENANT_USER_INVITED))
            await vendor.waiting.wait()
            resend.cancel()
            with pytest.raises(asyncio.CancelledError):
                await resend
            assert resend.cancelled()

    asyncio.run(main())


def test_a_cancel_inside_the_resend_is_the_callers_even_past_the_deadline() -> None:
    # The caller's own asyncio.timeout, shorter than the resend's deadline, stays the caller's.
    async def main() -> None:
        vendor = Vendor()
        async with (
            httpx.AsyncClient(transport=httpx.MockTransport(vendor)) as client,
            _provider(client, deadline=60) as provider,
        ):
            with pytest.raises(TimeoutError):
                async with asyncio.timeout(0.1):
                    await provider.aresend_invite(TENANT_USER_INVITED)

    asyncio.run(main())


@pytest.mark.parametrize("earlier_first", [True, False], ids=["earlier-first", "later-first"])
def test_each_exchange_ends_at_its_own_deadline_and_no_other(earlier_first: bool) -> None:
    async def exchange(watchdog: Watchdog, deadline: float, release: asyncio.Event) -> str:
        watched = watchdog.watch(deadline)
        try:
            await release.wait()
            return "answered"
        except BaseException as exc:
            if watched.timed_out(exc):
                return "timed out"
            raise
        finally:
            watched.done()

    async def main() -> tuple[str, str]:
        watchdog = Watchdog()
        release = asyncio.Event()
        now = time.monotonic()
        deadlines = {"soon": now + 0.05, "late": now + 60}
        order = ["soon", "late"] if earlier_first else ["late", "soon"]
        tasks = {
            name: asyncio.create_task(exchange(watchdog, deadlines[name], release))
            for name in order
        }
        soon = await tasks["soon"]
        release.set()
        return soon, await tasks["late"]

    assert asyncio.run(main()) == ("timed out", "answered")
