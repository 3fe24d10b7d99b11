"""The resend's deadline for a caller's own ``AsyncClient``: one timer for all its exchanges.

A caller's client has its own sockets, which do not know the deadline, so the event loop bounds
each exchange by cancelling its task past the deadline, as ``asyncio.timeout`` does.
``asyncio.timeout`` schedules and cancels a loop timer per exchange; a :class:`Watchdog` (one per
caller's client, which works in one event loop) keeps the exchanges under way and a single timer
for the earliest deadline among them. Exchanges mostly start in deadline order, so starting and
ending one rarely touches the loop's timers at all.

A cancellation the watchdog made is told from any other as ``asyncio.timeout`` tells it
(``Task.cancelling``/``Task.uncancel``): a caller's own cancel goes through untouched.
"""

from __future__ import annotations

import asyncio
import time

__all__ = ["Watchdog", "Watched"]


class Watched:
    """One exchange under the watchdog: ``expired`` once its task was cancelled for the deadline."""

    __slots__ = ("cancelling", "deadline", "expired", "task", "watchdog")

    def __init__(self, watchdog: Watchdog, task: asyncio.Task[object], deadline: float) -> None:
        self.watchdog = watchdog
        self.task = task
        self.deadline = deadline
        self.cancelling = task.cancelling()
        self.expired = False

    def timed_out(self, error: BaseException) -> bool:
        """Whether ``error``, raised in the exchange, is the deadline's cancel (then withdrawn)."""
        if not self.expired or type(error) is not asyncio.CancelledError:
            return False
        self.expired = False
        return self.task.uncancel() <= self.cancelling

    def done(self) -> None:
        """The exchange ended: stop watching it (a cancel it never saw is withdrawn)."""
        self.watchdog.under_way.discard(self)
        if self.expired:
            self.expired = False
            self.task.uncancel()


class Watchdog:
    """The exchanges under way through one client, and one timer for the earliest deadline."""

    __slots__ = ("timer", "under_way", "wakes_at")

    def __init__(self) -> None:
        self.under_way: set[Watched] = set()
        self.timer: asyncio.TimerHandle | None = None
        self.wakes_at = 0.0

    def watch(self, deadline: float) -> Watched:
        """Cancel the running task at ``deadline`` (a ``time.monotonic()`` instant) unless the
        returned :class:`Watched` is done first. Call it in the loop's task; end with ``done()``.
        """
        task = asyncio.current_task()
        assert task is not None  # a coroutine a loop runs runs in a task
        watched = Watched(self, task, deadline)
        self.under_way.add(watched)
        if self.timer is None or deadline < self.wakes_at:
            self._arm(deadline)
        return watched

    def _arm(self, deadline: float) -> None:
        if self.timer is not None:
            self.timer.cancel()
        loop = asyncio.get_running_loop()
        # The deadline is a time.monotonic() instant; the loop's clock may be another.
        self.timer = loop.call_at(loop.time() + (deadline - time.monotonic()), self._fire)
        self.wakes_at = deadline

    def _fire(self) -> None:
        self.timer = None
        # The loop may run a timer a little early by its own clock: the exchanges it was set for
        # are past their deadline, whatever time.monotonic() says.
        now = max(time.monotonic(), self.wakes_at)
        for watched in [watched for watched in self.under_way if watched.deadline <= now]:
            self.under_way.discard(watched)
            watched.expired = True
            watched.task.cancel()
        if self.under_way:
            self._arm(min(watched.deadline for watched in self.under_way))
