"""Adaptive pacing shared through the real Redis server at 127.0.0.1:6379.

The controller's table runs through its Lua copy on the server; two providers of one identity
learn one rate and one announced budget. Skipped when the server is unreachable, unless
``INVITES_REQUIRE_SERVICES=1`` (then they fail). Every test uses its own key prefix, removed
afterwards; nothing sleeps for real.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from typing import Any

import attrs
import httpx
import pytest
from _support.pace_rows import TABLE
from _support.services import REDIS_URL, redis_problem, require
from _support.vendors import vendor_config

import invites
from invites import ResendResult
from invites._pacing.control import Answer, PaceState, Tuning
from invites._pacing.redis_script import SCRIPT, decide_args, state_of
from invites._pacing.redis_store import RedisPacer
from invites.sandbox import TENANT_USER_INVITED, Fault, RunningSandbox, Sandbox

pytestmark = pytest.mark.redis

POLICY = {"RateLimit-Policy": '"default";q=40;w=1', "RateLimit": '"default";r=30;t=1'}


@pytest.fixture
def store() -> Iterator[Any]:
    """A client of the test server; the test's keys (``store.prefix``) are removed afterwards."""
    require("Redis", redis_problem())
    import redis

    client: Any = redis.Redis.from_url(REDIS_URL)
    client.prefix = f"invites-test:{uuid.uuid4().hex}"
    yield client
    keys = list(client.scan_iter(match=client.prefix + ":*"))
    if keys:
        client.delete(*keys)
    client.close()


def shared(url: str, store: Any, **overrides: Any) -> dict[str, Any]:
    return vendor_config(
        "tenant_api",
        url,
        rate_limit_store=REDIS_URL,
        rate_limit_key_prefix=store.prefix,
        **overrides,
    )


def pacer_of(provider: invites.BaseProvider) -> RedisPacer:
    pacer = provider._pacer
    assert isinstance(pacer, RedisPacer)
    return pacer


def fields(value: PaceState) -> list[float]:
    return [float(getattr(value, field.name)) for field in attrs.fields(PaceState)]


@pytest.mark.parametrize(("before", "answer", "tuning", "after"), TABLE)
def test_the_stores_controller_decides_as_the_table_says(
    store: Any, before: PaceState, answer: Answer, tuning: Tuning, after: PaceState
) -> None:
    script = store.register_script(SCRIPT)
    answered = script(keys=[f"{store.prefix}:unused"], args=decide_args(before, answer, tuning))
    assert fields(state_of(answered)) == pytest.approx(fields(after))
    assert not store.exists(f"{store.prefix}:unused")


def test_two_providers_learn_one_rate_from_a_429(
    server: RunningSandbox, sandbox: Sandbox, store: Any
) -> None:
    config = shared(server.url, store, rate_limit="auto", rate_limit_start=8)
    waited: list[float] = []
    first, second = (
        type(p)(p.settings, sleep=waited.append)
        for p in (invites.from_config(config), invites.from_config(config))
    )
    assert pacer_of(first).learned_rate() == pacer_of(second).learned_rate() == 8.0

    sandbox.retry_after = 0  # the retry goes at once (the sleeps here are recorded, not slept)
    sandbox.inject(TENANT_USER_INVITED, Fault.RATE_LIMIT)
    assert isinstance(first.resend_invite(TENANT_USER_INVITED), ResendResult)

    # The 429 ended slow start for the identity: both pace at half the rate now.
    assert pacer_of(second).learned_rate() == 4.0
    assert len(waited) == 1
    assert 0.0 < waited[0] <= 0.25  # the retry's slot, at 4/s
    assert asyncio.run(second.aresend_invite(TENANT_USER_INVITED)).user_id == TENANT_USER_INVITED
    assert sandbox.emails_sent(TENANT_USER_INVITED) == 2
    first.close()
    second.close()


def test_accepted_answers_ride_on_reservations_and_grow_the_shared_rate(store: Any) -> None:
    config = shared("http://127.0.0.1:9", store, rate_limit="auto", rate_limit_start=4)
    one, other = (pacer_of(invites.from_config(config)) for _ in range(2))
    for _ in range(4):
        one.observe(httpx.Response(200))  # no round trip: counted for the next reservation
    assert not store.exists(one.key)
    one.reserve()
    assert int(float(store.hget(one.key, "acc"))) == 4
    # A second later, by the server's clock (the window's start moved back instead of waiting).
    store.hset(one.key, "since", float(store.hget(one.key, "since")) - 1.0)
    one.observe(httpx.Response(200))
    asyncio.run(one.areserve())
    assert other.learned_rate() == 8.0  # the window used the rate: doubled, for both
    assert 590_000 < store.pttl(one.key) <= 601_000  # a learned rate outlives idle seconds


def test_an_announced_budget_is_shared_and_a_fixed_rate_only_slows_down(store: Any) -> None:
    auto = shared("http://127.0.0.1:9", store, rate_limit="auto")
    one, other = (pacer_of(invites.from_config(auto)) for _ in range(2))
    one.reserve()
    before = int(store.hget(one.key, "tat"))  # the next slot at 2/s: 0.5 s ahead
    one.observe(httpx.Response(200, headers=POLICY))
    assert other.learned_rate() == pytest.approx(38.0)
    other.reserve()
    # The slot handed out at 2/s no longer holds back those at 38/s: the next one comes after
    # 0.5 s x 2/38 at most, plus one interval at 38/s.
    assert int(store.hget(one.key, "tat")) - before < -400_000

    fixed = shared("http://127.0.0.1:10", store, rate_limit=10)
    one, other = (pacer_of(invites.from_config(fixed)) for _ in range(2))
    one.observe(httpx.Response(200, headers=POLICY))
    assert other.learned_rate() == 10.0  # never faster than the setting
    asyncio.run(one.aobserve(httpx.Response(200, headers={"X-RateLimit-Remaining": "4",
                                                         "X-RateLimit-Reset": "1"})))  # fmt: skip
    assert other.learned_rate() == pytest.approx(3.8)
    slots = []
    for _ in range(3):
        other.reserve()
        slots.append(int(store.hget(other.key, "tat")))  # the next free slot, on the server
    assert slots[2] - slots[1] == slots[1] - slots[0] == round(1_000_000 / 3.8)
