"""One provider from any number of event loops and threads; what follows a request that left;
and a closed provider staying closed.

The sandbox runs over a real loopback socket; plug-in flows and failing clients run on
``httpx.MockTransport``.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import re
import threading
import warnings
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from _support.vendors import vendor_config

import invites
from invites import (
    ConnectionFailed,
    Invitee,
    OutcomeUnknown,
    ProviderSettings,
    ResendResult,
    UserNotFound,
)
from invites.adapter import BaseProvider, Call, Flow, json_object, segment
from invites.sandbox import (
    TENANT_API_KEY,
    TENANT_USER_INVITED,
    TENANT_USER_UNKNOWN,
    RunningSandbox,
    Sandbox,
)

PLUGIN_URL = "https://api.plugin.example"
FAKE_TOKEN = "test-token-not-real"


def tenant_api(server: RunningSandbox, **overrides: Any) -> invites.BaseProvider:
    return invites.from_config(vendor_config("tenant_api", server.url, **overrides))


# -- any number of event loops -----------------------------------------------------------------


def test_one_provider_serves_twenty_asyncio_runs_in_a_row(
    server: RunningSandbox, sandbox: Sandbox
) -> None:
    provider = tenant_api(server)
    clients: list[httpx.AsyncClient] = []

    async def job() -> ResendResult:
        clients.append(provider._transport.async_client())
        return await provider.aresend_invite(TENANT_USER_INVITED)

    results = [asyncio.run(job()) for _ in range(20)]
    provider.close()

    assert all(result.user_id == TENANT_USER_INVITED for result in results)
    assert sandbox.emails_sent(TENANT_USER_INVITED) == 20
    # Each loop had its own client, closed when asyncio.run shut that loop down.
    assert len({id(client) for client in clients}) == 20
    assert all(client.is_closed for client in clients)
    assert not provider._transport.holds_open_clients()


def test_four_threads_with_their_own_loops_share_the_pace_and_the_token(
    server: RunningSandbox, sandbox: Sandbox
) -> None:
    rate, threads, each = 8.0, 4, 50  # 1/8 s adds up exactly in binary
    sleeps: list[tuple[float, int]] = []
    token_calls: list[int] = []

    async def fetch_token() -> str:
        token_calls.append(threading.get_ident())
        await asyncio.sleep(0)  # a real await in whichever loop refreshes
        return TENANT_API_KEY

    async def record_sleep(seconds: float) -> None:
        sleeps.append((seconds, threading.get_ident()))
        await asyncio.sleep(0)

    configured = tenant_api(server, token=None, token_provider=fetch_token, rate_limit=rate)
    # A clock that stands still: the shared throttle's schedule is then exact, and the test
    # waits for nothing. Every slot after the burst is a sleep this long from the same "now".
    provider = type(configured)(configured.settings, clock=lambda: 1000.0, async_sleep=record_sleep)
    start = threading.Barrier(threads)
    outcomes: list[ResendResult | BaseException] = []

    async def job() -> list[ResendResult | BaseException]:
        calls = [provider.aresend_invite(TENANT_USER_INVITED) for _ in range(each)]
        return await asyncio.gather(*calls, return_exceptions=True)

    def worker() -> None:
        start.wait()
        outcomes.extend(asyncio.run(job()))

    workers = [threading.Thread(target=worker) for _ in range(threads)]
    for thread in workers:
        thread.start()
    for thread in workers:
        thread.join()
    provider.close()

    total = threads * each
    assert [o for o in outcomes if not isinstance(o, ResendResult)] == []
    assert len(outcomes) == total
    assert sandbox.emails_sent(TENANT_USER_INVITED) == total
    assert len(token_calls) == 1  # one refresh, shared by every loop
    # One throttle for all: the burst went at once, then one slot every 1/rate seconds, handed
    # out across the threads; four throttles would have let four bursts through.
    burst = int(rate)
    expected = [step / rate for step in range(1, total - burst + 1)]
    assert sorted(seconds for seconds, _ in sleeps) == pytest.approx(expected)
    assert len({thread for _, thread in sleeps}) == threads


def test_an_injected_async_client_is_refused_in_another_loop_before_sending() -> None:
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"message": "Invite resent."})

    client = httpx.AsyncClient(transport=httpx.MockTransport(answer))
    provider = invites.from_config(vendor_config("tenant_api", PLUGIN_URL), async_client=client)
    first = asyncio.run(provider.aresend_invite(TENANT_USER_INVITED))
    assert first.user_id == TENANT_USER_INVITED

    with pytest.raises(ConnectionFailed, match="another event loop") as info:
        asyncio.run(provider.aresend_invite(TENANT_USER_INVITED))

    error = info.value
    assert (error.provider, error.user_id, error.attempts) == ("tenant_api", TENANT_USER_INVITED, 0)
    assert error.retryable is False  # the same client will not work any better
    assert len(seen) == 1
    provider.close()
    assert not client.is_closed  # the caller's


def test_a_caller_client_bound_elsewhere_first_gives_an_unknown_outcome(
    server: RunningSandbox,
) -> None:
    """The caller used its client in another loop first: the provider cannot see that, and httpx
    fails once the request may have reached the vendor."""
    elsewhere = asyncio.new_event_loop()
    client = httpx.AsyncClient()
    try:
        # Leaves a keep-alive connection that belongs to the other loop.
        elsewhere.run_until_complete(client.get(server.url + "/nothing-here"))
        provider = invites.from_config(vendor_config("tenant_api", server.url), async_client=client)

        with pytest.raises(OutcomeUnknown) as info:
            asyncio.run(provider.aresend_invite(TENANT_USER_INVITED))

        assert info.value.__cause__ is not None
        provider.close()
    finally:
        elsewhere.run_until_complete(client.aclose())
        elsewhere.close()


# -- nothing after the wire turns into a plain failure -------------------------------------------


class Plugin(BaseProvider[ProviderSettings]):
    """A plug-in adapter with a bug: it reads a field its vendor does not send."""

    name = "plugin"

    def flow(self, invitee: Invitee) -> Flow:
        user_id = invitee.user_id
        response = yield Call("POST", f"{self.base_url}/users/{segment(user_id)}/resend")
        data = json_object(response, provider=self.name, user_id=user_id)
        return ResendResult(provider=self.name, user_id=user_id, message=data["missing"])


class ReadingPlugin(BaseProvider[ProviderSettings]):
    """A plug-in adapter whose bug strikes after a read, before anything that may send."""

    name = "plugin"

    def flow(self, invitee: Invitee) -> Flow:
        url = f"{self.base_url}/users/{segment(invitee.user_id)}"
        response = yield Call("GET", url, reads_only=True)
        raise KeyError(response.json()["missing"])


def plugin(
    cls: type[BaseProvider[ProviderSettings]],
    answer: Callable[[httpx.Request], httpx.Response],
    **settings: Any,
) -> tuple[BaseProvider[ProviderSettings], list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return answer(request)

    transport = httpx.MockTransport(handler)
    provider = cls(
        ProviderSettings(base_url=PLUGIN_URL, token=invites.Secret(FAKE_TOKEN), **settings),
        client=httpx.Client(transport=transport),
        async_client=httpx.AsyncClient(transport=transport),
        sleep=lambda seconds: None,
        async_sleep=_no_async_sleep,
    )
    return provider, seen


async def _no_async_sleep(seconds: float) -> None:
    return None


def resend(mode: str, provider: BaseProvider[Any], user_id: str = "u-1") -> ResendResult:
    if mode == "sync":
        return provider.resend_invite(user_id)
    return asyncio.run(provider.aresend_invite(user_id))


def sent(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"message": "sent"})


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_plugin_bug_after_its_request_left_is_an_unknown_outcome(mode: str) -> None:
    provider, seen = plugin(Plugin, sent)

    with pytest.raises(OutcomeUnknown, match=r"failed \(KeyError\)") as info:
        resend(mode, provider)

    error = info.value
    assert isinstance(error.__cause__, KeyError)
    assert (error.provider, error.user_id, error.attempts) == ("plugin", "u-1", 1)
    assert len(seen) == 1


def test_a_plugin_bug_after_its_request_left_is_unknown_in_a_bulk_run() -> None:
    provider, _ = plugin(Plugin, sent)

    [outcome] = invites.resend_many(provider, ["u-1"])

    assert outcome.status == "unknown"  # a rerun must not send it again
    assert isinstance(outcome.error, OutcomeUnknown)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_plugin_bug_before_anything_that_may_send_is_raised_as_it_is(mode: str) -> None:
    provider, seen = plugin(ReadingPlugin, lambda request: httpx.Response(200, json={}))

    with pytest.raises(KeyError):
        resend(mode, provider)

    assert [request.method for request in seen] == ["GET"]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_an_error_inside_the_http_client_after_sending_is_an_unknown_outcome(mode: str) -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("Event loop is closed")  # what httpx lets through from asyncio

    provider, seen = plugin(Plugin, broken, retry_unknown=False)

    with pytest.raises(OutcomeUnknown, match=r"HTTP client failed \(RuntimeError\)") as info:
        resend(mode, provider)

    assert isinstance(info.value.__cause__, RuntimeError)
    assert len(seen) == 1  # not retried: it may have been sent


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_an_error_inside_the_http_client_on_a_read_is_retried_then_nothing_was_sent(
    mode: str,
) -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        raise RuntimeError("Event loop is closed")

    provider, seen = plugin(ReadingPlugin, broken, max_attempts=2)

    with pytest.raises(ConnectionFailed, match=r"lost \(RuntimeError\) while reading"):
        resend(mode, provider)

    assert [request.method for request in seen] == ["GET", "GET"]


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_raising_on_attempt_hook_changes_no_outcome(
    mode: str,
    server: RunningSandbox,
    sandbox: Sandbox,
    caplog: pytest.LogCaptureFixture,
) -> None:
    events: list[invites.AttemptEvent] = []

    def hook(event: invites.AttemptEvent) -> None:
        events.append(event)
        raise ValueError("metrics backend is down")

    provider = tenant_api(server, on_attempt=hook)
    with caplog.at_level(logging.WARNING, logger="invites"):
        result = resend(mode, provider, TENANT_USER_INVITED)
        with pytest.raises(UserNotFound):
            resend(mode, provider, TENANT_USER_UNKNOWN)
        outcomes = list(invites.resend_many(provider, [TENANT_USER_INVITED], concurrency=1))
    provider.close()

    assert result.user_id == TENANT_USER_INVITED
    assert [outcome.status for outcome in outcomes] == ["sent"]
    assert sandbox.emails_sent(TENANT_USER_INVITED) == 2
    assert len(events) == 3
    warned = [r for r in caplog.records if "on_attempt hook raised" in r.getMessage()]
    assert len(warned) == 3
    for record in warned:
        assert record.exc_info is not None
        assert isinstance(record.exc_info[1], ValueError)
    assert TENANT_API_KEY not in caplog.text


# -- closed means closed -----------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_closed_provider_refuses_to_resend(
    mode: str, server: RunningSandbox, sandbox: Sandbox
) -> None:
    provider = tenant_api(server)
    resend(mode, provider, TENANT_USER_INVITED)
    if mode == "sync":
        provider.close()
    else:
        asyncio.run(provider.aclose())

    with pytest.raises(RuntimeError, match="has been closed"):
        resend(mode, provider, TENANT_USER_INVITED)
    with pytest.raises(RuntimeError, match="has been closed"), provider:
        pass

    assert sandbox.emails_sent(TENANT_USER_INVITED) == 1
    assert not provider._transport.holds_open_clients()


def test_a_closed_provider_with_the_callers_clients_refuses_too() -> None:
    provider, seen = plugin(Plugin, sent)
    provider.close()

    with pytest.raises(RuntimeError, match="has been closed"):
        provider.resend_invite("u-1")
    with pytest.raises(RuntimeError, match="has been closed"):
        asyncio.run(provider.aresend_invite("u-1"))
    assert seen == []


def test_close_from_another_thread_closes_a_running_loops_client(
    server: RunningSandbox,
) -> None:
    provider = tenant_api(server)
    loop = asyncio.new_event_loop()
    thread = threading.Thread(target=loop.run_forever)
    thread.start()
    try:

        async def use() -> httpx.AsyncClient:
            await provider.aresend_invite(TENANT_USER_INVITED)
            return provider._transport.async_client()

        client = asyncio.run_coroutine_threadsafe(use(), loop).result()
        with warnings.catch_warnings():
            warnings.simplefilter("error", ResourceWarning)  # a running loop closes it: no warning
            provider.close()
        # The loop runs its callbacks in order: the close was scheduled before this.
        asyncio.run_coroutine_threadsafe(asyncio.sleep(0), loop).result()
        assert client.is_closed
    finally:
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


def test_close_warns_about_a_client_whose_loop_is_idle(server: RunningSandbox) -> None:
    provider = tenant_api(server)
    loop = asyncio.new_event_loop()
    try:
        loop.run_until_complete(provider.aresend_invite(TENANT_USER_INVITED))
        client = loop.run_until_complete(_current_client(provider))

        with pytest.warns(ResourceWarning, match="closes only when that loop runs again"):
            provider.close()
        assert not client.is_closed

        loop.run_until_complete(asyncio.sleep(0))  # the loop runs again: the close starts
        assert client.is_closed
    finally:
        loop.run_until_complete(loop.shutdown_asyncgens())
        loop.close()


async def _current_client(provider: invites.BaseProvider) -> httpx.AsyncClient:
    return provider._transport.async_client()


def test_an_unclosed_provider_holding_its_client_warns_when_collected(
    server: RunningSandbox,
) -> None:
    provider = tenant_api(server)
    provider.resend_invite(TENANT_USER_INVITED)
    name = re.escape(repr(provider))

    with pytest.warns(ResourceWarning, match=f"unclosed provider {name}"):  # noqa: PT031
        del provider
        gc.collect()


def test_a_closed_or_unused_provider_is_collected_silently(server: RunningSandbox) -> None:
    closed = tenant_api(server)
    closed.resend_invite(TENANT_USER_INVITED)
    closed.close()
    unused = tenant_api(server)
    gc.collect()  # what earlier tests left behind

    with warnings.catch_warnings():
        warnings.filterwarnings("error", "unclosed provider", ResourceWarning)
        del closed, unused
        gc.collect()
