"""The retry decision, as one table: an attempt's outcome and its context -> what follows."""

from __future__ import annotations

import httpx
import pytest

from invites import ConnectionFailed, OutcomeUnknown
from invites._delivery.policy import DELIVER, Decision, RetryPolicy

REQUEST = httpx.Request("POST", "https://vendor.example/users/u-1/resend")


def answer(status: int, retry_after: str | None = None) -> httpx.Response:
    headers = {} if retry_after is None else {"Retry-After": retry_after}
    return httpx.Response(status, headers=headers, request=REQUEST)


def lost(kind: type[httpx.TransportError]) -> httpx.TransportError:
    return kind("test failure", request=REQUEST)


def policy(retry_unknown: bool) -> RetryPolicy:
    # Exact backoff (each wait is its upper bound): 0.5 s, 1 s, 2 s after attempts 1, 2, 3.
    return RetryPolicy(
        max_attempts=3,
        deadline=120.0,
        max_retry_after=60.0,
        retry_unknown=retry_unknown,
        jitter=lambda top: top,
    )


GIVE_UP = Decision(gave_up=True)
REFUSE = Decision(gave_up=True, error=ConnectionFailed)
UNKNOWN = Decision(gave_up=True, error=OutcomeUnknown)

# outcome, reads_only, retry_unknown, refreshable, attempt -> decision
TABLE = [
    # answers the flow reads as they are
    (answer(200), False, False, False, 1, DELIVER),
    (answer(400), False, False, False, 1, DELIVER),
    (answer(404), True, True, False, 1, DELIVER),
    (answer(500), True, True, False, 1, DELIVER),
    # a refused credential: refreshed once, the attempt not counted
    (answer(401), False, False, True, 1, Decision(wait=0.0, refresh=True)),
    (answer(401), False, False, True, 3, Decision(wait=0.0, refresh=True)),
    (answer(401), False, False, False, 1, DELIVER),
    # 429: retried, and every caller paused as long
    (answer(429, "2"), False, False, False, 1, Decision(wait=2.0, pause=2.0)),
    (answer(429), False, False, False, 1, Decision(wait=0.5, pause=0.5)),
    (answer(429), True, True, False, 2, Decision(wait=1.0, pause=1.0)),
    (answer(429, "2"), False, False, False, 3, Decision(pause=2.0, gave_up=True)),
    (answer(429), False, False, False, 3, Decision(pause=2.0, gave_up=True)),
    (answer(429, "61"), False, False, False, 1, Decision(pause=61.0, gave_up=True)),
    (answer(429, "soon"), False, False, False, 1, Decision(wait=0.5, pause=0.5)),
    # 503: retried, no pause
    (answer(503, "2"), False, False, False, 1, Decision(wait=2.0)),
    (answer(503), False, False, False, 2, Decision(wait=1.0)),
    (answer(503), False, False, False, 3, GIVE_UP),
    (answer(503, "61"), False, False, False, 1, GIVE_UP),
    # 502 and 504: the email may have gone, so only reads, or with retry_unknown
    (answer(502), False, False, False, 1, DELIVER),
    (answer(504), False, False, False, 1, DELIVER),
    (answer(502), True, False, False, 1, Decision(wait=0.5)),
    (answer(504), False, True, False, 2, Decision(wait=1.0)),
    (answer(504), True, False, False, 3, GIVE_UP),
    # nothing left the client: retried, then ConnectionFailed
    (lost(httpx.ConnectError), False, False, False, 1, Decision(wait=0.5)),
    (lost(httpx.ConnectTimeout), False, False, False, 2, Decision(wait=1.0)),
    (lost(httpx.PoolTimeout), False, False, False, 1, Decision(wait=0.5)),
    (lost(httpx.ConnectError), False, False, False, 3, REFUSE),
    # sent, answer lost: retried for reads or with retry_unknown
    (lost(httpx.ReadTimeout), False, False, False, 1, UNKNOWN),
    (lost(httpx.RemoteProtocolError), False, False, False, 1, UNKNOWN),
    (lost(httpx.ReadTimeout), True, False, False, 1, Decision(wait=0.5)),
    (lost(httpx.ReadTimeout), True, False, False, 3, REFUSE),
    (lost(httpx.RemoteProtocolError), False, True, False, 2, Decision(wait=1.0)),
    (lost(httpx.RemoteProtocolError), False, True, False, 3, UNKNOWN),
]


@pytest.mark.parametrize(
    ("outcome", "reads_only", "retry_unknown", "refreshable", "attempt", "expected"), TABLE
)
def test_decision_table(
    outcome: httpx.Response | Exception,
    reads_only: bool,
    retry_unknown: bool,
    refreshable: bool,
    attempt: int,
    expected: Decision,
) -> None:
    decided = policy(retry_unknown).decide(
        outcome, reads_only=reads_only, attempt=attempt, elapsed=0.0, refreshable=refreshable
    )
    assert decided == expected


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        (answer(503), GIVE_UP),
        (answer(429), Decision(pause=0.5, gave_up=True)),
        (answer(429, "2"), Decision(pause=2.0, gave_up=True)),
        (lost(httpx.ConnectError), REFUSE),
    ],
)
def test_no_retry_would_end_past_the_deadline(
    outcome: httpx.Response | Exception, expected: Decision
) -> None:
    decided = policy(False).decide(outcome, reads_only=False, attempt=1, elapsed=119.6)
    assert decided == expected


@pytest.mark.parametrize(
    ("outcome", "reads_only", "words"),
    [
        (lost(httpx.ConnectError), False, "could not reach the vendor (ConnectError); nothing"),
        (lost(httpx.ReadTimeout), True, "answer was lost (ReadTimeout) while reading, before"),
        (lost(httpx.ReadError), False, "no answer came back (ReadError); the invitation may"),
    ],
)
def test_a_failure_that_ends_the_call_says_whether_the_email_may_have_gone(
    outcome: Exception, reads_only: bool, words: str
) -> None:
    decided = policy(False).decide(outcome, reads_only=reads_only, attempt=3, elapsed=0.0)
    assert words in decided.message


def test_the_default_jitter_stays_below_the_exponential_bound() -> None:
    default = RetryPolicy()
    waits = [default.backoff(3) for _ in range(200)]
    assert all(0.0 <= wait <= 2.0 for wait in waits)
    assert len(set(waits)) > 1
