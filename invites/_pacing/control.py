"""Adaptive pacing's decisions, free of I/O: a state and an answer in, the next state out.

``rate_limit = "auto"`` learns a rate nobody published the way TCP learns a path's capacity:

- **Slow start.** From ``start`` requests/s, double the rate after every second in which the
  callers used most of it (at least :data:`USED` of it was accepted), until the first 429.
- **Additive increase.** After that, per such second, grow half way back towards :data:`TOWARD`
  of the rate of the last cut (at most :data:`LEAP` of the rate), and at least by
  ``max(MIN_STEP, STEP x rate)``: quickly back after a cut, then probing slowly.
- **Multiplicative decrease.** The first 429 ends slow start: the rate goes back to the last
  one fully accepted (:data:`SLOW_START_CUT`). After that a 429 cuts the rate to :data:`CUT` of
  itself; a 429 soon after the previous cut had settled (within :data:`AGAIN` seconds: the cut
  was not enough, the vendor's limit dropped) cuts it to :data:`CUT_AGAIN` of itself. 429s
  answering requests sent before a cut took effect (until its ``Retry-After``, or :data:`HOLD`
  s) are the same overshoot: one cut.
- **Announced budgets.** When the vendor says its budget (``RateLimit`` fields, see
  :mod:`invites._pacing.announced`), the rate becomes :data:`MARGIN` of it, and stays there while
  the vendor keeps saying it (an announcement holds :data:`FRESH` s). With a fixed ``rate_limit``
  an announcement can only lower the rate, never raise it above the setting.

A ``Retry-After`` pause is not decided here: the delivery policy imposes it as it always did.
The same function runs in one process (:mod:`invites._pacing.adaptive`) and, with a store, as Lua in
Redis (:mod:`invites._pacing.redis_script`), field for field.
"""

from __future__ import annotations

import math
from typing import Final

import attrs

__all__ = ["Answer", "PaceState", "Tuning", "allowed_rate", "decide"]

#: The rate ``"auto"`` starts from without ``rate_limit_start`` (requests per second).
START: Final = 2.0
#: No rate is cut below this (requests per second).
FLOOR: Final = 0.2
#: The second over which accepted answers are counted.
WINDOW: Final = 1.0
#: The share of the rate a second must have used for the rate to grow (else callers sent less).
USED: Final = 0.6
#: Additive increase per used second: this share of the rate, at least MIN_STEP requests/s.
STEP: Final = 0.02
MIN_STEP: Final = 0.5
#: Multiplicative decrease on a 429, and on a 429 soon after the last cut.
CUT: Final = 0.85
CUT_AGAIN: Final = 0.5
SLOW_START_CUT: Final = 0.5
#: Below the rate of the last cut, grow half way back per used second, at most by this share
#: of the rate...
LEAP: Final = 0.05
#: ... aiming just under it: the rate of a cut is above the vendor's limit.
TOWARD: Final = 0.8
#: Seconds after a cut (without ``Retry-After``) during which 429s are the same overshoot.
HOLD: Final = 1.0
#: Seconds after that during which another 429 means the cut was not enough.
AGAIN: Final = 3.0
#: A learned pace hands out slots at most this many seconds ahead (a queue of slots reserved at
#: an old rate would hold the callers to it); a caller beyond waits at least POLL and asks again.
HORIZON: Final = 1.0
POLL: Final = 0.5
#: The share of an announced budget paced to, and how long an announcement holds.
MARGIN: Final = 0.95
FRESH: Final = 10.0


@attrs.frozen(kw_only=True)
class Tuning:
    """What the settings say: ``start`` (the fixed rate when ``fixed``), ``most`` (the ceiling,
    ``rate_limit_max``; infinity when none)."""

    start: float = START
    most: float = math.inf
    fixed: bool = False


@attrs.frozen(kw_only=True)
class PaceState:
    """What the controller knows, in seconds of one clock (a process's, or the store's).

    ``rate``: requests per second to pace at (before an announcement's cap, see
    :func:`allowed_rate`). ``found``: the rate the last cut was made from (0: still in slow
    start). ``since``/``accepted``: the counting window and the answers accepted in it.
    ``calm``: 429s before this instant are the overshoot already cut for. ``announced``: the
    vendor's announced rate (0: none), held until ``announced_until``.
    """

    rate: float
    found: float = 0.0
    since: float = 0.0
    accepted: int = 0
    calm: float = 0.0
    announced: float = 0.0
    announced_until: float = 0.0

    @classmethod
    def initial(cls, tuning: Tuning, at: float) -> PaceState:
        return cls(rate=min(tuning.start, tuning.most), since=at)


@attrs.frozen(kw_only=True)
class Answer:
    """What the callers saw since they last told the controller, at ``at``.

    ``accepted``: answers that were not 429; ``throttled``: a 429 (with its ``retry_after``, if
    any); ``announced``: the rate the vendor's budget fields allow (see
    :func:`invites._pacing.announced.budget_rate`), None when it said none.
    """

    at: float
    accepted: int = 0
    throttled: bool = False
    retry_after: float | None = None
    announced: float | None = None


def allowed_rate(state: PaceState, at: float) -> float:
    """The rate to pace at, at ``at``: ``state.rate``, capped by an announcement still fresh."""
    if state.announced > 0 and at < state.announced_until:
        return min(state.rate, state.announced)
    return state.rate


def decide(state: PaceState, answer: Answer, tuning: Tuning) -> PaceState:
    """The state after ``answer``; see the module's docstring for the rules."""
    at = answer.at
    if answer.announced is not None:
        announced = max(FLOOR, MARGIN * answer.announced)
        state = attrs.evolve(state, announced=announced, announced_until=at + FRESH)
        if not tuning.fixed:
            rate = min(announced, tuning.most)
            state = attrs.evolve(state, rate=rate, found=rate, since=at, accepted=0)
    if tuning.fixed:
        return state
    if at - state.since >= WINDOW:
        state = _window_closed(state, at, tuning)
    if answer.throttled:
        return _cut(state, at, answer.retry_after)
    if answer.accepted:
        return attrs.evolve(state, accepted=state.accepted + answer.accepted)
    return state


def _window_closed(state: PaceState, at: float, tuning: Tuning) -> PaceState:
    """Grow the rate when the window now ending used most of it; start a new window."""
    used = state.accepted / (at - state.since)
    rate = state.rate
    if used >= USED * rate and at >= state.announced_until:
        if state.found == 0:
            rate = 2.0 * rate
        else:
            probe = max(MIN_STEP, STEP * rate)
            rate += max(probe, min((TOWARD * state.found - rate) / 2, LEAP * rate))
        rate = min(rate, tuning.most)
    return attrs.evolve(state, rate=rate, since=at, accepted=0)


def _cut(state: PaceState, at: float, retry_after: float | None) -> PaceState:
    """A 429: cut the rate once per overshoot, harder when the last cut was not enough."""
    if at < state.calm:
        return state
    # The end of slow start goes back to the last rate fully accepted.
    again = CUT_AGAIN if at < state.calm + AGAIN else CUT
    factor = SLOW_START_CUT if state.found == 0 else again
    rate = max(FLOOR, factor * state.rate)
    hold = HOLD if retry_after is None else max(HOLD, retry_after)
    return attrs.evolve(state, rate=rate, found=state.rate, since=at, accepted=0, calm=at + hold)
