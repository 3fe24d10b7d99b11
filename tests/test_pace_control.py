"""Adaptive pacing's controller, as one table: a state and an answer -> the next state.

The same rows run through the Lua copy in the Redis store (tests/test_pacing_auto_redis.py).
"""

from __future__ import annotations

import math
from typing import Any

import attrs
import httpx
import pytest

import invites
from invites._pace_control import Answer, PaceState, Tuning, allowed_rate, decide
from invites._pacing import Throttle
from invites._pacing_auto import AutoThrottle
from invites.testing import ResendSteps, Send, Sleep

AUTO = Tuning(start=2.0)
CAPPED = Tuning(start=2.0, most=30.0)
FIXED = Tuning(start=10.0, most=10.0, fixed=True)
TENANT = "0b5e7c1a-1111-4a4a-8b8b-000000000001"


def state(rate: float, **fields: Any) -> PaceState:
    return PaceState(rate=rate, **fields)


def ok(at: float, count: int = 1, announced: float | None = None) -> Answer:
    return Answer(at=at, accepted=count, announced=announced)


def refused(at: float, retry_after: float | None = None) -> Answer:
    return Answer(at=at, throttled=True, retry_after=retry_after)


# state, answer, tuning -> next state
TABLE = [
    # slow start: count accepted answers in the window...
    (state(2.0), ok(0.5), AUTO, state(2.0, accepted=1)),
    (state(2.0), ok(0.5, count=3), AUTO, state(2.0, accepted=3)),
    # ... double the rate after a window that used it, not after one that did not
    (state(2.0, accepted=2), ok(1.0), AUTO, state(4.0, since=1.0, accepted=1)),
    (state(8.0, accepted=4), ok(1.0), AUTO, state(8.0, since=1.0, accepted=1)),
    (state(8.0, accepted=5), ok(1.0), AUTO, state(16.0, since=1.0, accepted=1)),
    # a long quiet window: its rate was not used, so no growth
    (state(4.0, accepted=4), ok(10.0), AUTO, state(4.0, since=10.0, accepted=1)),
    # never above the ceiling
    (state(20.0, accepted=20), ok(1.0), CAPPED, state(30.0, since=1.0, accepted=1)),
    # the first 429 ends slow start: back to the last rate fully accepted; 429s until its
    # Retry-After (at least HOLD) are the same overshoot
    (
        state(40.0, accepted=10),
        refused(0.5, retry_after=1.0),
        AUTO,
        state(20.0, found=40.0, since=0.5, calm=1.5),
    ),
    (
        state(40.0, accepted=10),
        refused(0.5, retry_after=3.0),
        AUTO,
        state(20.0, found=40.0, since=0.5, calm=3.5),
    ),
    (
        state(40.0, accepted=10),
        refused(0.5, retry_after=0.1),
        AUTO,
        state(20.0, found=40.0, since=0.5, calm=1.5),
    ),
    (
        state(20.0, found=40.0, since=0.5, calm=1.5),
        refused(1.2),
        AUTO,
        state(20.0, found=40.0, since=0.5, calm=1.5),
    ),
    # after that: a 429 long after the last cut cuts to CUT; one soon after it, to CUT_AGAIN
    (
        state(40.0, found=41.0, since=19.5, calm=10.0),
        refused(20.0),
        AUTO,
        state(34.0, found=40.0, since=20.0, calm=21.0),
    ),
    (
        state(34.0, found=40.0, since=10.5, calm=10.0),
        refused(11.0),
        AUTO,
        state(17.0, found=34.0, since=11.0, calm=12.0),
    ),
    (state(0.2, found=1.0), refused(100.0), AUTO, state(0.2, found=0.2, since=100.0, calm=101.0)),
    # growth after a cut: half way back towards 0.8 of the cut's rate, at most 5 % a second...
    (
        state(20.0, found=40.0, accepted=20),
        ok(1.0),
        AUTO,
        state(21.0, found=40.0, since=1.0, accepted=1),
    ),
    (
        state(33.0, found=40.0, accepted=33),
        ok(1.0),
        AUTO,
        state(33.66, found=40.0, since=1.0, accepted=1),
    ),
    # ... then probing by 2 % (at least 0.5/s)
    (
        state(40.0, found=40.0, accepted=40),
        ok(1.0),
        AUTO,
        state(40.8, found=40.0, since=1.0, accepted=1),
    ),
    (
        state(5.0, found=5.0, accepted=5),
        ok(1.0),
        AUTO,
        state(5.5, found=5.0, since=1.0, accepted=1),
    ),
    (
        state(29.8, found=40.0, accepted=30),
        ok(1.0),
        CAPPED,
        state(30.0, found=40.0, since=1.0, accepted=1),
    ),
    # an announced budget replaces the guess (0.95 of it, under the ceiling) and holds 10 s
    (
        state(2.0),
        ok(3.0, announced=40.0),
        AUTO,
        state(38.0, found=38.0, since=3.0, accepted=1, announced=38.0, announced_until=13.0),
    ),
    (
        state(2.0),
        ok(3.0, announced=40.0),
        CAPPED,
        state(30.0, found=30.0, since=3.0, accepted=1, announced=38.0, announced_until=13.0),
    ),
    (
        state(2.0),
        ok(3.0, announced=0.0),
        AUTO,
        state(0.2, found=0.2, since=3.0, accepted=1, announced=0.2, announced_until=13.0),
    ),
    # while it holds, no growth beyond it
    (
        state(38.0, found=38.0, accepted=38, announced=38.0, announced_until=13.0),
        ok(1.0),
        AUTO,
        state(38.0, found=38.0, since=1.0, accepted=1, announced=38.0, announced_until=13.0),
    ),
    # a fixed rate never moves; an announcement is only recorded (it caps, see allowed_rate)
    (state(10.0), ok(1.0, count=50), FIXED, state(10.0)),
    (state(10.0), refused(1.0, retry_after=2.0), FIXED, state(10.0)),
    (
        state(10.0),
        ok(1.0, announced=4.0),
        FIXED,
        state(10.0, announced=3.8, announced_until=11.0),
    ),
]


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
