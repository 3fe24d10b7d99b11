"""The per-user budget: at most N invitation emails to one user per sliding window.

``per_user_limit = "N/window"`` (``"1/24h"``, ``"3/7d"``; units s, m, h, d) is counted by the ledger
over its records of every run for one provider identity and user id: a record reads as a send when
it is ``sent``, ``unknown`` or an intent (its email may have gone), at the time it was claimed.
``already_verified`` and ``failed`` records, and refused claims, are not sends. The ledger checks
the budget in the same atomic step as the claim (see :meth:`invites.ledger.Ledger.claim`).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any, Final

import attrs

from .._settings.checks import parse_limit
from ..errors import ResendTooSoon

__all__ = ["COUNTED", "Budget", "TooSoon", "budget_of", "parse_limit", "too_soon_error"]

#: States whose records count as sends: their email went, or may have.
COUNTED: Final = frozenset({"intent", "sent", "unknown"})


@attrs.frozen
class Budget:
    """At most ``limit`` sends per user in any ``window`` seconds; ``text`` as configured.

    ``ignore``: this claim is granted over the budget (``ignore_budget``), and its record says so
    when the budget would have refused it.
    """

    limit: int
    window: float
    text: str = ""
    ignore: bool = False

    def refusal(self, sends: Iterable[float], now: float) -> TooSoon | None:
        """Why a send at ``now`` would exceed the budget, given the times of the user's sends;
        None when it fits."""
        recent = sorted((at for at in sends if at > now - self.window), reverse=True)
        if len(recent) < self.limit:
            return None
        # The send that must leave the window for one more to fit: the limit-th most recent.
        return TooSoon(
            retry_after=max(recent[self.limit - 1] + self.window - now, 0.0),
            last_sent_at=recent[0],
            sends=len(recent),
        )


@attrs.frozen
class TooSoon:
    """A claim the budget refused: ``sends`` in the window, the latest at ``last_sent_at`` (Unix
    time); one more fits in ``retry_after`` seconds."""

    retry_after: float
    last_sent_at: float
    sends: int


def budget_of(text: str | None, *, ignore: bool = False) -> Budget | None:
    """The :class:`Budget` a ``per_user_limit`` setting names; None when it is unset."""
    if text is None:
        return None
    limit, window = parse_limit(text)
    return Budget(limit=limit, window=window, text=text, ignore=ignore)


def too_soon_error(
    user_id: str, budget: Budget, too_soon: TooSoon | None, *, provider: str | None = None
) -> ResendTooSoon:
    """The error a claim the budget refused stands for (without ``too_soon``: the part a store
    fills in, ``retry_after`` and ``details["last_sent_at"]``)."""
    details: dict[str, Any] = {"per_user_limit": budget.text, "sends": budget.limit}
    message = f"per_user_limit {budget.text} reached for this user (every run sharing the ledger "
    if too_soon is None:
        message += "counts)"
    else:
        details.update(sends=too_soon.sends, last_sent_at=too_soon.last_sent_at)
        last = datetime.fromtimestamp(too_soon.last_sent_at, UTC).isoformat(timespec="seconds")
        message += f"counts): last sent {last}, one more fits in {_duration(too_soon.retry_after)}"
    return ResendTooSoon(
        message + "; nothing was sent",
        provider=provider,
        user_id=user_id,
        retry_after=None if too_soon is None else round(too_soon.retry_after, 3),
        details=details,
    )


def _duration(seconds: float) -> str:
    """``seconds`` for a person: ``45s``, ``12m05s``, ``3h20m``, ``2d04h``."""
    whole = max(round(seconds), 1)
    days, rest = divmod(whole, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours:02d}h"
    if hours:
        return f"{hours}h{minutes:02d}m"
    return f"{minutes}m{secs:02d}s" if minutes else f"{secs}s"
