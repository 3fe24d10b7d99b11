"""Adaptive pacing's controller as rows: a state and an answer -> the next state (run by
tests/unit/test_pace_control.py, and through the Lua copy by
tests/services/test_pacing_auto_redis.py)."""

from __future__ import annotations

from typing import Any

from invites._pacing.control import Answer, PaceState, Tuning

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
