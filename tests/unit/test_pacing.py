"""Pacing through the drivers: an injected pacer, its failures, and a pause shared by providers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from _support.vendors import vendor_config

import invites
from invites import ConnectionFailed, RateLimited, ResendResult
from invites._pacing.local import Pacer, Throttle
from invites.sandbox import TENANT_USER_INVITED

BASE_URL = "https://vendor.example"
MODES = ("sync", "async")


class FakeTime:
    def __init__(self) -> None:
        self.now = 1000.0
        self.waits: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)


class RecordingPacer:
    """A pacer that records what it was asked, and fails where told (an unreachable store)."""

    def __init__(self, fail: str | None = None, paused: float = 0.0, wait: float = 0.0) -> None:
        self.fail = fail
        self.paused = paused
        self.wait = wait
        self.calls: list[str] = []

    def _do(self, name: str, value: float = 0.0) -> float:
        self.calls.append(name)
        if name.removeprefix("a") == self.fail:
            raise ConnectionFailed("the pacing store is unreachable")
        return value

    def reserve(self) -> float:
        return self._do("reserve", self.wait)

    def paused_for(self) -> float:
        return self._do("paused_for", self.paused)

    def pause(self, seconds: float) -> None:
        self._do("pause")

    async def areserve(self) -> float:
        return self._do("areserve", self.wait)

    async def apaused_for(self) -> float:
        return self._do("apaused_for", self.paused)

    async def apause(self, seconds: float) -> None:
        self._do("apause")


def provider_on(
    answer: Callable[[httpx.Request], httpx.Response],
    sent: list[httpx.Request],
    fake: FakeTime,
    pacer: Pacer | None = None,
    **overrides: Any,
) -> invites.BaseProvider:
    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return answer(request)

    transport = httpx.MockTransport(handler)
    configured = invites.from_config(vendor_config("tenant_api", BASE_URL, **overrides))
    return type(configured)(
        configured.settings,
        client=httpx.Client(transport=transport),
        async_client=httpx.AsyncClient(transport=transport),
        pacer=pacer,
        clock=fake.clock,
        sleep=fake.sleep,
        async_sleep=fake.async_sleep,
    )


def ok(request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, json={"message": "sent"})


def resend(mode: str, provider: invites.BaseProvider) -> ResendResult:
    if mode == "sync":
        return provider.resend_invite(TENANT_USER_INVITED)
    return asyncio.run(provider.aresend_invite(TENANT_USER_INVITED))


def test_the_local_throttle_is_a_pacer() -> None:
    throttle: Pacer = Throttle(2.0, clock=lambda: 100.0)
    assert throttle.reserve() == 0.0
    assert asyncio.run(throttle.areserve()) == 0.0  # a burst of two
    assert asyncio.run(throttle.areserve()) == 0.5
    asyncio.run(throttle.apause(30.0))
    assert asyncio.run(throttle.apaused_for()) == 30.0
    assert throttle.reserve() == 30.0  # the first slot after the pause


@pytest.mark.parametrize("mode", MODES)
def test_the_drivers_ask_an_injected_pacer_before_each_request(mode: str) -> None:
    fake, sent, pacer = FakeTime(), list[httpx.Request](), RecordingPacer(wait=0.25)
    provider = provider_on(ok, sent, fake, pacer)

    assert isinstance(resend(mode, provider), ResendResult)

    prefix = "" if mode == "sync" else "a"
    # the pause is asked again after the wait: a pause that began meanwhile voids the slot
    assert pacer.calls == [prefix + "paused_for", prefix + "reserve", prefix + "paused_for"]
    assert fake.waits == [0.25]
    assert len(sent) == 1


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("failing", ["paused_for", "reserve"])
def test_an_unreachable_pacing_store_sends_nothing(mode: str, failing: str) -> None:
    fake, sent = FakeTime(), list[httpx.Request]()
    provider = provider_on(ok, sent, fake, RecordingPacer(fail=failing))

    with pytest.raises(ConnectionFailed) as caught:
        resend(mode, provider)

    error = caught.value
    assert (error.provider, error.user_id, error.attempts) == (
        "tenant_api",
        TENANT_USER_INVITED,
        0,
    )
    assert "pacing store" in str(error)
    assert sent == []


@pytest.mark.parametrize("mode", MODES)
def test_a_pacer_that_fails_to_pause_after_a_429_ends_the_resend(mode: str) -> None:
    fake, sent = FakeTime(), list[httpx.Request]()

    def limited(request: httpx.Request) -> httpx.Response:
        return httpx.Response(429, headers={"Retry-After": "3"}, json={"code": "slow_down"})

    provider = provider_on(limited, sent, fake, RecordingPacer(fail="pause"))

    with pytest.raises(ConnectionFailed) as caught:
        resend(mode, provider)

    assert caught.value.attempts == 1
    assert len(sent) == 1


@pytest.mark.parametrize("mode", MODES)
def test_a_429_pauses_every_provider_sharing_the_pacer(mode: str) -> None:
    fake = FakeTime()
    shared = Throttle(None, clock=fake.clock)
    answers = iter([httpx.Response(429, headers={"Retry-After": "7"}, json={})])
    sent_a: list[httpx.Request] = []
    sent_b: list[httpx.Request] = []
    a = provider_on(lambda request: next(answers), sent_a, fake, shared, max_attempts=1)
    b = provider_on(ok, sent_b, fake, shared)

    with pytest.raises(RateLimited):
        resend(mode, a)
    assert isinstance(resend(mode, b), ResendResult)

    assert fake.waits == [7.0]  # b waited out the pause a's vendor asked for
    assert len(sent_b) == 1


@pytest.mark.parametrize("mode", MODES)
def test_a_pause_too_long_to_wait_is_refused_before_reserving(mode: str) -> None:
    fake, sent, pacer = FakeTime(), list[httpx.Request](), RecordingPacer(paused=600.0)
    provider = provider_on(ok, sent, fake, pacer)

    with pytest.raises(RateLimited) as caught:
        resend(mode, provider)

    assert caught.value.retry_after == 600.0
    assert [call.removeprefix("a") for call in pacer.calls] == ["paused_for"]
    assert sent == []
