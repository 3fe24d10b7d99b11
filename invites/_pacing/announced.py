"""What a vendor announces of its pace, parsed without I/O: how long to wait (``Retry-After``,
:func:`parse_retry_after`) and its budget, the ``RateLimit`` header fields.

The budget is read, in this order of precedence:

- the current IETF draft (draft-ietf-httpapi-ratelimit-headers-08 and later):
  ``RateLimit-Policy: "default";q=100;w=10`` (quota ``q`` per window ``w`` seconds) and
  ``RateLimit: "default";r=50;t=30`` (``r`` left, ``t`` seconds until the quota resets);
- the earlier drafts: ``RateLimit-Limit``, ``RateLimit-Remaining``, ``RateLimit-Reset``, with the
  window as a ``w`` parameter (``RateLimit-Limit: 10, 10;w=1``) or in ``RateLimit-Policy: 10;w=1``;
- the common ``X-RateLimit-Limit``, ``X-RateLimit-Remaining``, ``X-RateLimit-Reset`` (the reset
  as seconds, or as a Unix time when it is larger than :data:`EPOCH_AFTER`).

A budget becomes a rate (:func:`budget_rate`): a policy's quota over its window when the window
is known, else what is left over the seconds until the reset; with several policies, the
slowest. Malformed or negative values are ignored, never raised: a vendor's odd field must not
fail a resend.
"""

from __future__ import annotations

import email.utils
import re
import time
from collections.abc import Callable, Iterable
from typing import Final

import attrs

__all__ = ["Budget", "announced_rate", "budget_rate", "parse_budgets", "parse_retry_after"]

#: A reset larger than this many seconds is a Unix time (about 2001-09-09), not a delay.
EPOCH_AFTER: Final = 1_000_000_000

_TOKEN: Final = re.compile(r'\s*((?:[^,;"]|"(?:[^"\\]|\\.)*")+|[,;])')
_ITEM: Final = re.compile(r'"(?:[^"\\]|\\.)*"|[^\s"]+')
_NUMBER: Final = re.compile(r"\d{1,15}(?:\.\d{1,6})?")


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
class Budget:
    """One quota policy as the vendor announced it; None where it said nothing.

    ``quota`` units per ``window`` seconds; ``remaining`` units left; ``reset`` seconds until the
    quota resets.
    """

    quota: float | None = None
    window: float | None = None
    remaining: float | None = None
    reset: float | None = None


def _number(text: str) -> float | None:
    text = text.strip()
    return float(text) if _NUMBER.fullmatch(text) else None


def _members(value: str) -> list[tuple[str, dict[str, str]]]:
    """A structured-field list's members: (bare item, parameters); ``[]`` when malformed."""
    members: list[tuple[str, dict[str, str]]] = []
    item: str | None = None
    params: dict[str, str] = {}
    expect_param = False
    position = 0
    for match in _TOKEN.finditer(value):
        if match.start() != position:
            return []
        position = match.end()
        piece = match.group(1)
        if piece == ",":
            if item is not None:
                members.append((item, params))
            item, params, expect_param = None, {}, False
        elif piece == ";":
            expect_param = True
        elif expect_param:
            key, _, raw = piece.partition("=")
            params[key.strip().lower()] = raw.strip()
            expect_param = False
        elif item is None and _ITEM.fullmatch(piece.strip()):
            item = piece.strip()
        else:
            return []
    if value[position:].strip():
        return []
    if item is not None:
        members.append((item, params))
    return members


def _reset(text: str | None, now: float) -> float | None:
    seconds = None if text is None else _number(text)
    if seconds is not None and seconds > EPOCH_AFTER:
        seconds = max(0.0, seconds - now)
    return seconds


def _current_draft(policy: str | None, state: str | None) -> list[Budget]:
    """``RateLimit-Policy`` and ``RateLimit`` of the current draft, matched by policy name."""
    quotas: dict[str, tuple[float | None, float | None]] = {}
    for name, params in _members(policy or ""):
        if name.startswith('"'):
            quotas[name] = (_number(params.get("q", "")), _number(params.get("w", "")))
    budgets: dict[str, Budget] = {
        name: Budget(quota=quota, window=window) for name, (quota, window) in quotas.items()
    }
    for name, params in _members(state or ""):
        if name.startswith('"'):
            quota, window = quotas.get(name, (None, None))
            budgets[name] = Budget(
                quota=quota,
                window=window,
                remaining=_number(params.get("r", "")),
                reset=_number(params.get("t", "")),
            )
    return list(budgets.values())


def _windows(value: str | None) -> list[Budget]:
    """Quota policies of the earlier drafts: ``10, 10;w=1`` or ``10;w=1, 1000;w=3600``."""
    found = []
    for item, params in _members(value or ""):
        quota, window = _number(item), _number(params.get("w", ""))
        if quota is not None:
            found.append(Budget(quota=quota, window=window))
    return found


def _trio(limit: str | None, remaining: str | None, reset: str | None, now: float) -> Budget:
    """The three fields of the earlier drafts, or of the ``X-`` convention."""
    return Budget(
        quota=None if limit is None else _number(limit.split(",")[0].split(";")[0]),
        remaining=None if remaining is None else _number(remaining),
        reset=_reset(reset, now),
    )


def parse_budgets(fields: Iterable[tuple[str, str]], *, now: float) -> list[Budget]:
    """The budgets a response announces, from its header ``fields`` (name, value), the first of
    the three conventions present winning; ``now`` is the Unix time, for a reset given as one."""
    seen: dict[str, str] = {}
    for name, value in fields:
        key = name.lower()
        seen[key] = f"{seen[key]}, {value}" if key in seen else value
    current = _current_draft(seen.get("ratelimit-policy"), seen.get("ratelimit"))
    if current:
        return current
    if "ratelimit-limit" in seen or "ratelimit-remaining" in seen:
        trio = _trio(
            seen.get("ratelimit-limit"),
            seen.get("ratelimit-remaining"),
            seen.get("ratelimit-reset"),
            now,
        )
        windows = _windows(seen.get("ratelimit-policy")) or _windows(seen.get("ratelimit-limit"))
        windows = [policy for policy in windows if policy.window is not None]
        if not windows:
            return [trio]
        # What is left belongs to the first policy (the one the limit names).
        first = attrs.evolve(windows[0], remaining=trio.remaining, reset=trio.reset)
        return [first, *windows[1:]]
    if "x-ratelimit-limit" in seen or "x-ratelimit-remaining" in seen:
        return [
            _trio(
                seen.get("x-ratelimit-limit"),
                seen.get("x-ratelimit-remaining"),
                seen.get("x-ratelimit-reset"),
                now,
            )
        ]
    return []


def _rate(budget: Budget) -> float | None:
    if budget.quota is not None and budget.window:
        return budget.quota / budget.window
    if budget.remaining is not None and budget.reset:
        return budget.remaining / budget.reset
    return None


def budget_rate(budgets: Iterable[Budget]) -> float | None:
    """Requests per second the budgets allow: the slowest policy's; None when none says."""
    rates = [rate for rate in map(_rate, budgets) if rate is not None]
    return min(rates) if rates else None


def announced_rate(
    raw: Iterable[tuple[bytes, bytes]], *, now: Callable[[], float] = time.time
) -> float | None:
    """The rate a response's raw headers (``httpx.Headers.raw``) announce; None when none.

    One pass over the names; only a response carrying a rate-limit field is parsed.
    """
    fields = [
        (name.decode("latin-1"), value.decode("latin-1"))
        for name, value in raw
        if b"ratelimit" in name.lower()
    ]
    if not fields:
        return None
    return budget_rate(parse_budgets(fields, now=now()))
