"""Adaptive pacing's controller, as one table: a state and an answer -> the next state.

The same rows run through the Lua copy in the Redis store
(tests/services/test_pacing_auto_redis.py).
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import httpx
import pytest
from _support.pace_rows import AUTO, TABLE, TENANT, state

import invites
from invites._pacing.adaptive import AutoThrottle
from invites._pacing.control import Answer, PaceState, Tuning, allowed_rate, decide
from invites._pacing.local import Throttle
from invites.testing import ResendSteps, Send, Sleep


def fields(value: PaceState) -> list[float]:
    return [float(getattr(value, field.name)) for field in attrs.fields(PaceState)]


@pytest.mark.parametrize(("before", "answer", "tuning", "after"), TABLE)
def test_the_controller_decides_row_by_row(
    before: PaceState, answer: Answer, tuning: Tuning, after: PaceState
) -> None:
    assert fields(decide(before, answer, tuning)) == pytest.approx(fields(after))


# state, instant -> the rate paced at
ALLOWED = [
    (state(20.0), 5.0, 20.0),
    (state(20.0, announced=9.5, announced_until=13.0), 5.0, 9.5),
    (state(20.0, announced=9.5, announced_until=13.0), 13.0, 20.0),
    (state(5.0, announced=9.5, announced_until=13.0), 5.0, 5.0),
]


@pytest.mark.parametrize(("current", "at", "rate"), ALLOWED)
def test_an_announcement_caps_the_rate_while_it_holds(
    current: PaceState, at: float, rate: float
) -> None:
    assert allowed_rate(current, at) == rate


def test_the_initial_state_starts_under_the_ceiling() -> None:
    assert PaceState.initial(Tuning(start=50.0, most=30.0), 7.0) == state(30.0, since=7.0)
    assert PaceState.initial(AUTO, 0.0).rate == 2.0


# -- the local pacers, driven by a fake clock ---------------------------------------------------


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def answer(status: int, headers: dict[str, str] | None = None) -> httpx.Response:
    return httpx.Response(status, headers=headers or {})


def test_the_auto_throttle_spaces_slots_at_the_learned_rate() -> None:
    clock = Clock()
    pacer = AutoThrottle(Tuning(start=4.0), clock=clock)
    assert [pacer.reserve() for _ in range(4)] == [0.0, 0.25, 0.5, 0.75]
    for _ in range(4):
        pacer.observe(answer(200))
    clock.now += 1.0
    pacer.observe(answer(200))  # the window closes having used the rate: doubled
    assert pacer.rate == 8.0
    pacer.observe(answer(429, {"Retry-After": "2"}))
    assert pacer.rate == 4.0
    pacer.pause(2.0)
    assert pacer.paused_for() == 2.0
    # The pause ends 2 s ahead, beyond the horizon of 1 s: no slot yet, ask again in 1 s.
    assert pacer.reserve() == -1.0
    clock.now += 1.0
    assert pacer.reserve() == 1.0  # the slot after the pause
    assert pacer.reserve() == -0.5  # 1.25 s ahead: ask again after the poll interval


def test_the_auto_throttle_follows_an_announced_budget() -> None:
    clock = Clock()
    pacer = AutoThrottle(Tuning(start=1.0), clock=clock)
    assert [pacer.reserve(), pacer.reserve()] == [0.0, 1.0]
    pacer.observe(answer(200, {"RateLimit-Policy": '"d";q=100;w=10', "RateLimit": '"d";r=9;t=3'}))
    assert pacer.rate == pytest.approx(9.5)
    # The slots handed out at 1/s no longer hold back those at 9.5/s.
    assert pacer.reserve() == pytest.approx(2.0 / 9.5)


def test_a_fixed_throttle_only_slows_down_to_an_announced_budget() -> None:
    clock = Clock()
    pacer = Throttle(10.0, clock=clock)
    assert pacer.learns
    pacer.observe(answer(200, {"X-RateLimit-Limit": "100", "X-RateLimit-Remaining": "50",
                               "X-RateLimit-Reset": "1"}))  # fmt: skip
    [pacer.reserve() for _ in range(10)]  # the burst of 10
    assert pacer.reserve() == pytest.approx(0.1)  # 10/s: the announced 47.5/s is not faster
    pacer.observe(answer(200, {"X-RateLimit-Remaining": "2", "X-RateLimit-Reset": "1"}))
    clock.now += 5.0  # idle: a full burst again, but the announced 1.9/s allows a burst of 1
    first, second = pacer.reserve(), pacer.reserve()
    assert first == 0.0
    assert second == pytest.approx(1 / 1.9)
    clock.now += 100.0  # the announcement no longer holds
    waits = [pacer.reserve() for _ in range(11)]
    assert waits[-1] - waits[-2] == pytest.approx(0.1)
    assert not Throttle(None).learns


def test_auto_from_every_configuration_source(tmp_path: Any) -> None:
    base = {"provider": "tenant_api", "token": "fake-token-1", "tenant_id": TENANT}
    base["base_url"] = "http://127.0.0.1:9"
    provider = invites.from_config({**base, "rate_limit": "auto", "rate_limit_max": 30})
    assert isinstance(provider._pacer, AutoThrottle)
    assert provider._pacer.rate == 2.0
    env = {f"INVITES_{key.upper()}": str(value) for key, value in base.items()}
    provider = invites.from_env({**env, "INVITES_RATE_LIMIT": "auto",
                                 "INVITES_RATE_LIMIT_START": "5"})  # fmt: skip
    assert isinstance(provider._pacer, AutoThrottle)
    assert provider._pacer.rate == 5.0
    profiles = tmp_path / "invites.toml"
    profiles.write_text(
        '[profiles.t]\nprovider = "tenant_api"\ntoken = "fake-token-1"\n'
        f'tenant_id = "{TENANT}"\n'
        'base_url = "http://127.0.0.1:9"\nrate_limit = "auto"\nrate_limit_start = 3\n'
    )
    provider = invites.load_profiles(profiles)["t"]
    assert isinstance(provider._pacer, AutoThrottle)
    assert provider._pacer.rate == 3.0


BAD = [
    ({"rate_limit": "fast"}, 'rate_limit: expected a number or "auto"'),
    (
        {"rate_limit": 5, "rate_limit_max": 9},
        'rate_limit_max: applies only with rate_limit = "auto"',
    ),
    ({"rate_limit": "auto", "rate_limit_start": 0}, "rate_limit_start: must be greater than 0"),
    (
        {"rate_limit": "auto", "rate_limit_max": math.nan},
        "rate_limit_max: expected a finite number",
    ),
]


@pytest.mark.parametrize(("overrides", "problem"), BAD)
def test_a_bad_auto_setting_is_named(overrides: dict[str, Any], problem: str) -> None:
    config = {"provider": "tenant_api", "token": "fake-token-1", "tenant_id": TENANT, **overrides}
    with pytest.raises(invites.ConfigurationError, match=problem.replace("(", r"\(")):
        invites.from_config(config)


# -- the engine with a learned pace: slots only a little ahead ------------------------------------


def test_a_caller_beyond_the_horizon_waits_and_asks_again() -> None:
    clock = Clock()
    configured = invites.from_config(
        {"provider": "tenant_api", "token": "fake-token-1", "tenant_id": TENANT,
         "base_url": "http://127.0.0.1:9", "rate_limit": "auto"}
    )  # fmt: skip
    provider = type(configured)(configured.settings, clock=clock)
    callers = [ResendSteps(provider, TENANT) for _ in range(4)]
    # 2/s: slots now, at +0.5 s and +1 s; the fourth would be 1.5 s ahead, beyond the horizon.
    first = [steps.advance() for steps in callers]
    assert isinstance(first[0], Send)
    assert first[1:] == [Sleep(0.5), Sleep(1.0), Sleep(0.5)]
    clock.now += 0.5
    assert callers[3].advance() == Sleep(1.0)  # asked again: now given the +1.5 s slot
    provider.close()
