"""Pacing: how fast a provider may send, and the pause a vendor's 429 imposes on every caller.

The delivery engine never calls a pacer: it yields pacing actions that the sync or async driver
performs, so a pacer may do network I/O (a pace shared between processes through a store). A
pacer method may raise :class:`~invites.ConnectionFailed` when its store is unreachable; the
driver hands that error back to the engine, and nothing is sent.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    import httpx

__all__ = ["Learner", "Pacer", "Throttle"]

Clock = Callable[[], float]


class Pacer(Protocol):
    """A provider-wide pace: slots for requests, and a pause that holds every caller."""

    def reserve(self) -> float:
        """Reserve the next slot; seconds to wait before sending (0: now), any pause included.

        Below 0: no slot was reserved (they are handed out only so far ahead); ask again after
        that many seconds.
        """
        ...

    def paused_for(self) -> float:
        """Seconds left in a provider-wide pause (0: none)."""
        ...

    def pause(self, seconds: float) -> None:
        """Hold every caller ``seconds`` from now; a longer pause in force wins."""
        ...

    async def areserve(self) -> float:
        """:meth:`reserve` from async code."""
        ...

    async def apaused_for(self) -> float:
        """:meth:`paused_for` from async code."""
        ...

    async def apause(self, seconds: float) -> None:
        """:meth:`pause` from async code."""
        ...


@runtime_checkable
class Learner(Protocol):
    """A pacer that reads the vendor's answers: the engine hands it each one while ``learns``."""

    learns: bool

    def observe(self, response: httpx.Response) -> None:
        """Learn from one vendor answer (its status, ``Retry-After``, ``RateLimit`` fields)."""
        ...

    async def aobserve(self, response: httpx.Response) -> None:
        """:meth:`observe` from async code."""
        ...


class _Blocking(Pacer, Learner, Protocol):
    """A pacer that also learns, with blocking methods."""


class InProcessTwins:
    """The async twins of an in-process pacer's methods: its lock is only ever held for a few
    arithmetic steps, so they call the blocking methods and need not yield."""

    async def areserve(self: _Blocking) -> float:
        return self.reserve()

    async def apaused_for(self: _Blocking) -> float:
        return self.paused_for()

    async def apause(self: _Blocking, seconds: float) -> None:
        self.pause(seconds)

    async def aobserve(self: _Blocking, response: httpx.Response) -> None:
        self.observe(response)


class Throttle(InProcessTwins):
    """A :class:`Pacer` shared by every thread and task using one provider in one process.

    ``rate`` (requests per second, bursts of at most ``max(1, rate)``) is enforced with the generic
    cell rate algorithm: each caller reserves the next free slot and waits until it. ``pause``
    holds every caller until a moment (a vendor's 429 ``Retry-After``), with or without a rate; a
    slot reserved before a pause began is void, and its holder reserves a new one. With a rate,
    a budget the vendor announces in its ``RateLimit`` fields (:meth:`observe`) can lower the
    rate while it holds, never raise it.
    """

    __slots__ = (
        "_announced",
        "_clock",
        "_interval",
        "_lock",
        "_paused_until",
        "_tat",
        "_tolerance",
        "learns",
    )

    def __init__(self, rate: float | None, *, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._paused_until = 0.0
        self._tat = 0.0
        # (the interval an announced budget imposes, until when it holds)
        self._announced = (0.0, 0.0)
        self.learns = rate is not None
        if rate is None:
            self._interval = 0.0
            self._tolerance = 0.0
        else:
            self._interval = 1.0 / rate
            self._tolerance = (max(1, int(rate)) - 1) * self._interval

    def reserve(self) -> float:
        """Reserve a slot; return how long the caller must wait before sending (0 for now)."""
        if not self._interval and not self._paused_until:
            return 0.0
        with self._lock:
            now = self._clock()
            start = max(now, self._paused_until)
            if not self._interval:
                return start - now
            tat = max(self._tat, start)
            step, tolerance = self._interval, self._tolerance
            announced, until = self._announced
            if now < until and announced > step:  # a slower announced budget: its burst too
                step, tolerance = announced, (max(1, int(1.0 / announced)) - 1) * announced
            self._tat = tat + step
            return max(0.0, tat - tolerance - now, start - now)

    def idle(self) -> bool:
        """True while :meth:`reserve` and :meth:`paused_for` can only answer 0: no rate, no pause.

        A pause, once one was imposed, keeps this False: the pacer is asked from then on.
        """
        return not self._interval and not self._paused_until

    def paused_for(self) -> float:
        """Seconds left in a pause, 0 when none is in force."""
        if not self._paused_until:
            return 0.0
        return max(0.0, self._paused_until - self._clock())

    def pause(self, seconds: float) -> None:
        """Hold every caller for ``seconds`` from now (a longer pause in force wins)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)

    def observe(self, response: httpx.Response) -> None:
        """Slow down to a budget the vendor announces, for as long as an announcement holds."""
        from .announced import announced_rate
        from .control import FLOOR, FRESH, MARGIN

        rate = announced_rate(response.headers.raw)
        if rate is not None:
            with self._lock:
                self._announced = (1.0 / max(FLOOR, MARGIN * rate), self._clock() + FRESH)
