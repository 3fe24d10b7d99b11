"""Delivery policy shared by every vendor: what is retried, how long to wait, how fast to go.

All of it is free of I/O: the drivers in :mod:`invites._base` do the sleeping and the sending.
"""

from __future__ import annotations

import email.utils
import random
import threading
import time
from collections.abc import Callable

import attrs

__all__ = ["RetryPolicy", "Throttle", "parse_retry_after"]

Clock = Callable[[], float]


def parse_retry_after(value: str | None, *, now: Callable[[], float] = time.time) -> float | None:
    """Seconds to wait from a ``Retry-After`` header: delta-seconds or an HTTP date; else None."""
    if not value:
        return None
    value = value.strip()
    if value.isascii() and value.isdigit():
        return float(value)
    try:
        seconds = float(value)
    except ValueError:
        pass
    else:
        return seconds if seconds >= 0 and seconds == seconds else None
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - now())


@attrs.frozen(kw_only=True)
class RetryPolicy:
    """When to try a request again, and after how long.

    Retried: connection failures before the request left (connect/pool timeouts), 429 and 503.
    Outcome-unknown failures (read timeouts, dropped connections, 502, 504) are retried only for
    reads, which cannot send an email, or when ``retry_unknown`` is set. Waits follow exponential
    backoff with full jitter (``base * 2**n``, capped at ``cap``), or the vendor's ``Retry-After``
    when it gave one; a ``Retry-After`` beyond ``max_retry_after`` ends the retries.
    """

    max_attempts: int = 3
    deadline: float = 120.0
    max_retry_after: float = 60.0
    retry_unknown: bool = False
    base: float = 0.5
    cap: float = 30.0
    jitter: Callable[[float], float] = attrs.field(default=None, eq=False)

    def __attrs_post_init__(self) -> None:
        if self.jitter is None:
            rng = random.Random()
            object.__setattr__(self, "jitter", lambda top: rng.uniform(0.0, top))

    def backoff(self, attempt: int) -> float:
        """Full-jitter wait before attempt ``attempt + 1``."""
        return self.jitter(min(self.cap, self.base * 2 ** (attempt - 1)))

    def wait_before_retry(
        self, attempt: int, retry_after: float | None, elapsed: float
    ) -> float | None:
        """Seconds to wait before another attempt, or None when the budget is spent."""
        if attempt >= self.max_attempts:
            return None
        if retry_after is not None:
            if retry_after > self.max_retry_after:
                return None
            wait = retry_after
        else:
            wait = self.backoff(attempt)
        if elapsed + wait >= self.deadline:
            return None
        return wait

    def may_pause(self, seconds: float, elapsed: float) -> bool:
        """Whether a caller may wait out a provider-wide pause (a 429's ``Retry-After``).

        The same bounds as a retry's wait: at most ``max_retry_after``, and within the deadline.
        """
        return seconds <= self.max_retry_after and elapsed + seconds < self.deadline


class Throttle:
    """A provider-wide pace shared by every thread and task using one provider.

    ``rate`` (requests per second, bursts of at most ``max(1, rate)``) is enforced with the generic
    cell rate algorithm: each caller reserves the next free slot and waits until it. ``pause``
    holds every caller until a moment (a vendor's 429 ``Retry-After``), with or without a rate; a
    slot reserved before a pause began is void, and its holder reserves a new one.
    """

    __slots__ = ("_clock", "_interval", "_lock", "_paused_until", "_tat", "_tolerance")

    def __init__(self, rate: float | None, *, clock: Clock = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._paused_until = 0.0
        self._tat = 0.0
        if rate is None:
            self._interval = 0.0
            self._tolerance = 0.0
        else:
            self._interval = 1.0 / rate
            self._tolerance = (max(1, int(rate)) - 1) * self._interval

    def acquire(self) -> float:
        """Reserve a slot; return how long the caller must wait before sending (0 for now)."""
        if not self._interval and not self._paused_until:
            return 0.0
        with self._lock:
            now = self._clock()
            start = max(now, self._paused_until)
            if not self._interval:
                return start - now
            tat = max(self._tat, start)
            allowed = tat - self._tolerance
            self._tat = tat + self._interval
            return max(0.0, allowed - now, start - now)

    def paused_for(self) -> float:
        """Seconds left in a pause, 0 when none is in force."""
        if not self._paused_until:
            return 0.0
        return max(0.0, self._paused_until - self._clock())

    def pause(self, seconds: float) -> None:
        """Hold every caller for ``seconds`` from now (a longer pause in force wins)."""
        with self._lock:
            self._paused_until = max(self._paused_until, self._clock() + seconds)
