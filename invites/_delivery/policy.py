"""Delivery policy shared by every vendor: what is retried, and how long to wait.

All of it is free of I/O: the engine (:mod:`invites._delivery.engine`) turns a :class:`Decision`
into actions, which the drivers in :mod:`invites._delivery.drivers` perform.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Final

import attrs
import httpx

from .._pacing.announced import parse_retry_after
from ..errors import ConnectionFailed, InviteError, OutcomeUnknown

__all__ = [
    "CONNECT_ERRORS",
    "DECIDED_STATUSES",
    "DELIVER",
    "Decision",
    "RetryPolicy",
]

#: Transport failures raised before the request left: retrying them cannot send twice.
#: Failures before anything reached the vendor: a proxy refusing the tunnel is one.
CONNECT_ERRORS: Final = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,
)


@attrs.frozen(slots=True)
class Decision:
    """What follows one attempt's outcome (see :meth:`RetryPolicy.decide`).

    ``wait``: another attempt follows after this many seconds; None: none follows, and the answer
    goes to the vendor's flow, or ``error`` is raised when it is set. ``pause``: first hold every
    caller of the provider this long; the next attempt then waits out the pause instead of
    sleeping ``wait``. ``refresh``: fetch a new token and repeat the attempt without counting it.
    ``gave_up``: the failure was retriable but the attempts, the deadline or ``max_retry_after``
    ran out. ``message`` words ``error``.
    """

    wait: float | None = None
    pause: float | None = None
    refresh: bool = False
    gave_up: bool = False
    error: type[InviteError] | None = None
    message: str = attrs.field(default="", eq=False)


#: The decision for an answer the flow reads as it is (the common case: compare by identity).
DELIVER: Final = Decision()
#: The statuses :meth:`RetryPolicy.decide` may answer otherwise than :data:`DELIVER`: an answer
#: with any other status is delivered whatever the attempt, so the engine need not ask.
DECIDED_STATUSES: Final = frozenset({401, 429, 502, 503, 504})


def _jitter_or_uniform(jitter: Callable[[float], float] | None) -> Callable[[float], float]:
    if jitter is not None:
        return jitter
    rng = random.Random()
    return lambda top: rng.uniform(0.0, top)


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
    #: Given a backoff's upper bound, the wait (None: uniformly random below it).
    jitter: Callable[[float], float] = attrs.field(
        default=None, converter=_jitter_or_uniform, eq=False
    )

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

    def decide(
        self,
        outcome: httpx.Response | Exception,
        *,
        reads_only: bool,
        attempt: int,
        elapsed: float,
        refreshable: bool = False,
    ) -> Decision:
        """What follows attempt number ``attempt`` (from 1), ``elapsed`` seconds into the resend.

        ``outcome`` is the vendor's answer or the transport failure; ``reads_only`` marks a request
        that cannot send an email; ``refreshable``: the token comes from a token provider and was
        not refreshed yet for this call. The whole table:

        - 401, refreshable: refresh the token, repeat the attempt (not counted).
        - 429: retry after ``Retry-After`` (or the backoff) and pause every caller as long;
          ``Retry-After`` beyond ``max_retry_after`` ends the retries, the pause still holds.
        - 503: retry after ``Retry-After`` (or the backoff).
        - 502, 504: retry after the backoff for reads or with ``retry_unknown``, else deliver.
        - any other status: deliver the answer to the flow.
        - connection failed before sending: retry, then raise ConnectionFailed.
        - answer lost after sending: retry a read or with ``retry_unknown``; raise ConnectionFailed
          for a read, OutcomeUnknown otherwise.
        """
        if isinstance(outcome, Exception):
            connect = isinstance(outcome, CONNECT_ERRORS)
            if connect or reads_only or self.retry_unknown:
                wait = self.wait_before_retry(attempt, None, elapsed)
                if wait is not None:
                    return Decision(wait=wait)
            return _failed(outcome, connect, reads_only)
        status = outcome.status_code
        if status == 401 and refreshable:
            return Decision(wait=0.0, refresh=True)
        if status == 429 or status == 503:
            retry_after = parse_retry_after(outcome.headers.get("retry-after"))
            wait = self.wait_before_retry(attempt, retry_after, elapsed)
            if status == 503:
                return Decision(wait=wait, gave_up=wait is None)
            # The vendor asked this client, not this request, to slow down: hold every caller
            # for as long as it said (or the backoff when it did not say).
            pause = retry_after
            if pause is None:
                pause = wait if wait is not None else self.backoff(attempt)
            return Decision(wait=wait, pause=pause, gave_up=wait is None)
        if (status == 502 or status == 504) and (reads_only or self.retry_unknown):
            wait = self.wait_before_retry(attempt, None, elapsed)
            return Decision(wait=wait, gave_up=wait is None)
        return DELIVER


def _failed(failure: Exception, connect: bool, reads_only: bool) -> Decision:
    """Giving up after a transport failure: what the caller is told about the email."""
    name = type(failure).__name__
    if isinstance(failure, httpx.ProxyError):
        message = f"the proxy did not reach the vendor ({failure}); nothing was sent"
        if str(failure).startswith("407"):
            message += " (configure the proxy's credentials: http://user:password@host:port)"
        return Decision(gave_up=True, error=ConnectionFailed, message=message)
    if connect:
        message = f"could not reach the vendor ({name}); nothing was sent"
        return Decision(gave_up=True, error=ConnectionFailed, message=message)
    if reads_only:
        message = f"the vendor's answer was lost ({name}) while reading, before any resend was sent"
        return Decision(gave_up=True, error=ConnectionFailed, message=message)
    if isinstance(failure, httpx.TransportError):
        message = f"the request was sent but no answer came back ({name})"
    else:  # raised inside the HTTP client (a closed client or event loop): it may have left
        message = f"the HTTP client failed ({name}) after the request may have left"
    message += "; the invitation may or may not have been sent"
    return Decision(gave_up=True, error=OutcomeUnknown, message=message)
