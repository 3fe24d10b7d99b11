"""The vendor's announced budget: header fields -> budgets -> the rate they allow, row by row."""

from __future__ import annotations

import pytest

from invites._pacing.announced import Budget, announced_rate, budget_rate, parse_budgets

NOW = 1_700_000_000.0

# header fields -> budgets, and the rate they allow (None: none)
TABLE: list[tuple[list[tuple[str, str]], list[Budget], float | None]] = [
    # the current draft: a policy and its state, matched by name
    (
        [("RateLimit-Policy", '"default";q=100;w=10'), ("RateLimit", '"default";r=50;t=30')],
        [Budget(quota=100, window=10, remaining=50, reset=30)],
        10.0,
    ),
    (
        [("ratelimit-policy", '"burst";q=100;w=10, "daily";q=8640;w=86400')],
        [Budget(quota=100, window=10), Budget(quota=8640, window=86400)],
        0.1,
    ),
    (
        [("RateLimit-Policy", '"a"; q=10 ; w=1'), ("RateLimit-Policy", '"b";q=6;w=2')],
        [Budget(quota=10, window=1), Budget(quota=6, window=2)],
        3.0,
    ),
    ([("RateLimit", '"default";r=5;t=2')], [Budget(remaining=5, reset=2)], 2.5),
    ([("RateLimit", '"default";r=0;t=2')], [Budget(remaining=0, reset=2)], 0.0),
    ([("RateLimit", '"default";r=5;t=0')], [Budget(remaining=5, reset=0)], None),
    ([("RateLimit-Policy", '"x,y";q=10;w=1')], [Budget(quota=10, window=1)], 10.0),
    (
        [("RateLimit-Policy", '"default";q=10;w=1;qu="requests";pk=:cHsdsRa894==:')],
        [Budget(quota=10, window=1)],
        10.0,
    ),
    # malformed: ignored, never raised
    ([("RateLimit-Policy", "q=10;w=1")], [], None),
    ([("RateLimit-Policy", '"d";q=ten;w=1')], [Budget(window=1)], None),
    ([("RateLimit-Policy", '"d";q=-10;w=1')], [Budget(window=1)], None),
    ([("RateLimit-Policy", '"unterminated;q=10;w=1')], [], None),
    ([("RateLimit-Policy", '"d" "e";q=1;w=1')], [], None),
    ([("RateLimit", '"d";r=1e9;t=1')], [Budget(reset=1)], None),
    # the earlier drafts: the three fields, the window as a parameter or a policy
    (
        [("RateLimit-Limit", "10"), ("RateLimit-Remaining", "3"), ("RateLimit-Reset", "2")],
        [Budget(quota=10, remaining=3, reset=2)],
        1.5,
    ),
    (
        [("RateLimit-Limit", "10, 10;w=1"), ("RateLimit-Remaining", "9"), ("RateLimit-Reset", "1")],
        [Budget(quota=10, window=1, remaining=9, reset=1)],
        10.0,
    ),
    (
        [("RateLimit-Limit", "10"), ("RateLimit-Policy", "10;w=1, 1000;w=3600")],
        [Budget(quota=10, window=1), Budget(quota=1000, window=3600)],
        1000 / 3600,
    ),
    # the X- convention; a large reset is a Unix time
    (
        [("X-RateLimit-Limit", "40"), ("X-RateLimit-Remaining", "12"), ("X-RateLimit-Reset", "1")],
        [Budget(quota=40, remaining=12, reset=1)],
        12.0,
    ),
    (
        [("x-ratelimit-remaining", "50"), ("x-ratelimit-reset", str(int(NOW) + 100))],
        [Budget(remaining=50, reset=100)],
        0.5,
    ),
    (
        [("X-RateLimit-Remaining", "50"), ("X-RateLimit-Reset", str(int(NOW) - 100))],
        [Budget(remaining=50, reset=0)],
        None,
    ),
    ([("X-RateLimit-Limit", "40"), ("X-RateLimit-Reset", "0")], [Budget(quota=40, reset=0)], None),
    ([("X-RateLimit-Limit", "abc"), ("X-RateLimit-Remaining", "-1")], [Budget()], None),
    # the current draft wins over the others; nothing said, nothing paced
    (
        [
            ("X-RateLimit-Remaining", "1"),
            ("X-RateLimit-Reset", "1"),
            ("RateLimit-Policy", '"d";q=20;w=1'),
        ],
        [Budget(quota=20, window=1)],
        20.0,
    ),
    ([("Retry-After", "1"), ("Content-Type", "application/json")], [], None),
]


@pytest.mark.parametrize(("fields", "budgets", "rate"), TABLE)
def test_announced_budgets_row_by_row(
    fields: list[tuple[str, str]], budgets: list[Budget], rate: float | None
) -> None:
    assert parse_budgets(fields, now=NOW) == budgets
    assert budget_rate(budgets) == (None if rate is None else pytest.approx(rate))


def test_the_raw_headers_of_a_response_are_read_in_one_pass() -> None:
    raw = [(b"Content-Type", b"application/json"), (b"RATELIMIT-POLICY", b'"d";q=40;w=1')]
    assert announced_rate(raw, now=lambda: NOW) == 40.0
    assert announced_rate([(b"Content-Type", b"text/html")], now=lambda: NOW) is None
    assert announced_rate([(b"X-RateLimit-Reset", b"\xff")], now=lambda: NOW) is None
