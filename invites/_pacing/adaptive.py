"""Adaptive pacing in one process: ``rate_limit = "auto"`` without a store.

:class:`AutoThrottle` is a :class:`~invites._pacing.local.Pacer` whose rate the controller
(:mod:`invites._pacing.control`) sets from the answers the provider reads (:meth:`observe`): it
grows while the vendor accepts, falls on a 429, and follows a budget the vendor announces in its
``RateLimit`` fields. Slots are spaced evenly (no burst: a learned rate is an estimate), and a
429's ``Retry-After`` pauses every caller as with a fixed rate. Slots are handed out at most
:data:`~invites._pacing.control.HORIZON` ahead: a caller beyond it is told to ask again.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import httpx

from .announced import announced_rate, parse_retry_after
from .control import HORIZON, POLL, Answer, PaceState, Tuning, allowed_rate, decide
from .local import InProcessTwins

__all__ = ["AutoThrottle", "answer_of"]


def answer_of(response: httpx.Response, at: float) -> Answer:
    """What one vendor answer tells the controller, at ``at`` on the controller's clock."""
    throttled = response.status_code == 429
    return Answer(
        at=at,
        accepted=0 if throttled else 1,
        throttled=throttled,
        retry_after=parse_retry_after(response.headers.get("retry-after")) if throttled else None,
        announced=announced_rate(response.headers.raw),
    )


class AutoThrottle(InProcessTwins):
    """A learned pace shared by every thread and task using one provider in one process."""

    __slots__ = ("_clock", "_lock", "_paused_until", "_state", "_tat", "_tuning")

    learns = True

    def __init__(self, tuning: Tuning, *, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._tuning = tuning
        self._lock = threading.Lock()
        self._paused_until = 0.0
        self._tat = 0.0
        self._state = PaceState.initial(tuning, clock())

    @property
    def rate(self) -> float:
        """The rate paced at now (requests per second)."""
        return allowed_rate(self._state, self._clock())

    def reserve(self) -> float:
        """Reserve the next slot; seconds to wait before sending (0: now), any pause included."""
        with self._lock:
            now = self._clock()
            start = max(now, self._paused_until)
            tat = max(self._tat, start)
            if tat - now > HORIZON:  # no slot so far ahead: the rate may change meanwhile
                return -max(POLL, tat - now - HORIZON)
            self._tat = tat + 1.0 / allowed_rate(self._state, now)
            return tat - now

    def idle(self) -> bool:
        return False

    def paused_for(self) -> float:
        """Seconds left in a pause, 0 when none is in force."""
        return max(0.0, self._paused_until - self._clock())

    def pause(self, seconds: float) -> None:
        """Hold every caller for ``seconds`` from now (a longer pause in force wins)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)

    def observe(self, response: httpx.Response) -> None:
        """Learn from one vendor answer."""
        at = self._clock()
        answer = answer_of(response, at)
        with self._lock:
            before = allowed_rate(self._state, at)
            self._state = decide(self._state, answer, self._tuning)
            after = allowed_rate(self._state, at)
            if after > before and self._tat > at:
                # Slots handed out at the old rate need not hold back the new ones.
                self._tat = at + (self._tat - at) * before / after
