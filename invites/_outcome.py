"""What became of one invitee: :class:`Outcome`, a value every bulk runner, the ledger's guard
and the outcome hook speak (public as :class:`invites.bulk.Outcome`)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

import attrs

from .errors import ResendTooSoon
from .models import Invitee, OutcomeStatus, ResendResult

__all__ = ["Outcome", "OutcomeHook"]

OutcomeHook: TypeAlias = Callable[["Outcome"], None]


@attrs.frozen(kw_only=True)
class Outcome:
    """What became of one invitee.

    ``status`` is ``"sent"`` (``result`` set), ``"already_verified"``, ``"failed"`` (nothing was
    sent, or the vendor refused) or ``"unknown"`` (the invitation may or may not have gone out);
    ``error`` holds the exception for every status but ``"sent"``. With a ledger: ``skipped`` is
    True when the ledger settled it and this call sent nothing (an earlier attempt did, or may
    have, or it repeats an invitee of this call); ``resent_unknown`` is True when an earlier
    attempt's outcome was unknown and this call sent again (``retry_unknown``): the invitee may
    have the email twice. A resend the per-user budget refused is ``failed`` and ``skipped``
    (nothing was sent), its ``error`` a :class:`~invites.ResendTooSoon` (see :attr:`too_soon`).

    ``user_id`` is the vendor's canonical spelling of the id (a UUID in lower case: see
    :meth:`~invites.BaseProvider.canonical_user_id`), the one the ledger and the repeated-id
    check go by; ``input_id`` is the id as the caller wrote it, to match outcomes to input rows.
    """

    invitee: Invitee | None
    user_id: str
    status: OutcomeStatus
    result: ResendResult | None = None
    error: BaseException | None = None
    skipped: bool = False
    resent_unknown: bool = False
    input_id: str = attrs.field(default=attrs.Factory(lambda self: self.user_id, takes_self=True))

    @property
    def ok(self) -> bool:
        """True when the invitee needs nothing more: sent or already verified."""
        return self.status in ("sent", "already_verified")

    @property
    def too_soon(self) -> bool:
        """True when the per-user budget refused this resend (nothing was sent)."""
        return isinstance(self.error, ResendTooSoon)
