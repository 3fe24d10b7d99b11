"""Send at most once per key: claim in the ledger, send only when granted, record the outcome.

One :class:`Guard` serves the bulk runner (a run name per call) and a provider's single resends
(an idempotency key per call): both get the same claim, replay and recording rules.
"""

from __future__ import annotations

import asyncio
import contextvars
import logging
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

import attrs

from .._protocol import InviteProvider
from .._settings.identity import canonical_user_id
from .._telemetry import ClaimResult, claimed
from ..errors import (
    AlreadyVerified,
    InviteError,
    OutcomeUnknown,
)
from ..models import Invitee, OutcomeStatus, ResendResult, outcome_status
from . import (
    Budget,
    Claim,
    Ledger,
    Record,
    RecordKey,
    new_owner,
    owner_gone,
)
from . import provider_identity as _identity
from ._budget import budget_of, too_soon_error
from ._owners import owned_by

__all__ = ["DEFAULT_LEASE", "Guard", "Guarded", "under_claim"]

_T = TypeVar("_T")

#: True while a guard's granted claim is being sent: the provider's own per-user budget must
#: not claim the same resend a second time.
_CLAIMED: Final = contextvars.ContextVar("invites_claimed", default=False)


def under_claim() -> bool:
    """Whether the running code sends a resend a guard has claimed (and counted) already."""
    return _CLAIMED.get()


logger = logging.getLogger("invites.ledger")

#: Lease of a provider without a ``deadline`` setting, in seconds.
DEFAULT_LEASE: Final = 600.0
#: Added to a provider's deadline: its last request may still be answering when it runs out.
_LEASE_MARGIN: Final = 60.0


@attrs.frozen(kw_only=True)
class Guarded:
    """What became of one guarded resend.

    ``skipped``: the ledger had settled it (or it is in flight elsewhere) and nothing was sent;
    ``resent_unknown``: an earlier attempt's outcome was unknown and this call sent again
    (``retry_unknown``); ``cancelled``: the caller's task was cancelled (the outcome is recorded).
    """

    status: OutcomeStatus
    result: ResendResult | None = None
    error: BaseException | None = None
    skipped: bool = False
    resent_unknown: bool = False
    cancelled: bool = False

    def unwrap(self) -> ResendResult:
        """The result when sent, else raise the error (``OutcomeUnknown`` for an unknown one)."""
        if self.status == "sent" and self.result is not None:
            return self.result
        if self.error is not None:
            raise self.error
        raise OutcomeUnknown("the ledger holds no usable outcome for this resend")


def _budget_of(provider: object, ignore: bool) -> Budget | None:
    limit = getattr(getattr(provider, "settings", None), "per_user_limit", None)
    return budget_of(limit, ignore=ignore) if isinstance(limit, str) else None


def _claim_result(claim: Claim) -> ClaimResult:
    if claim.granted:
        return "granted"
    if claim.too_soon is not None:
        return "too_soon"
    return "in_flight" if claim.in_flight else "settled"


def _lease_of(provider: object) -> float:
    settings = getattr(provider, "settings", None)
    deadline = getattr(settings, "deadline", None)
    timeout = getattr(settings, "timeout", None)
    if isinstance(deadline, int | float) and isinstance(timeout, int | float):
        return float(deadline) + float(timeout) + _LEASE_MARGIN
    return DEFAULT_LEASE


class Guard:
    """Resends to ``provider`` under ``ledger``, each key claimed before anything is sent.

    ``retry_unknown`` lets a claim take over a record whose outcome is unknown (its email may
    have gone: the invitee may get it twice). ``lease`` defaults to the provider's deadline plus
    its timeout and a margin: the longest a resend may be in flight. Without
    ``wait_for_outcomes``, an outcome is queued (:meth:`Ledger.settle_soon`) and the caller goes
    on; a claim is always durable before anything is sent. The provider's ``per_user_limit``
    setting is checked with each claim (:mod:`invites.ledger._budget`); a claim it refuses
    sends nothing and is reported ``failed``, ``skipped``, with :class:`~invites.ResendTooSoon`.
    ``ignore_budget`` overrides it for every resend of this guard (recorded on each record that
    went over it).
    """

    def __init__(
        self,
        ledger: Ledger,
        provider: InviteProvider,
        *,
        retry_unknown: bool = False,
        lease: float | None = None,
        wait_for_outcomes: bool = True,
        ignore_budget: bool = False,
    ) -> None:
        self.ledger = ledger
        self.wait_for_outcomes = wait_for_outcomes
        self.provider_name = provider.name
        self.identity = _identity(provider)
        self._provider = provider
        self.retry_unknown = retry_unknown
        self.lease = _lease_of(provider) if lease is None else lease
        self.owner = new_owner()
        owned_by(self.owner, self)  # alive to other claimers on this host while this guard is
        self.budget = _budget_of(provider, ignore_budget)

    def _claim_options(self, ignore_budget: bool) -> dict[str, object]:
        budget = self.budget
        if budget is None:
            return {}  # a ledger implementation without budgets keeps working
        return {"budget": attrs.evolve(budget, ignore=True) if ignore_budget else budget}

    def key(self, run: str, user_id: str) -> RecordKey:
        """The record of ``user_id`` (in the vendor's canonical spelling) in ``run``."""
        user_id = canonical_user_id(self._provider, user_id)
        return RecordKey(run=run, identity=self.identity, user_id=user_id)

    def run(
        self,
        run: str,
        invitee: Invitee,
        send: Callable[[Invitee], ResendResult],
        *,
        ignore_budget: bool = False,
    ) -> Guarded:
        """Claim, send when granted, record the outcome; never raises for the invitee's sake."""
        key = self.key(run, invitee.user_id)
        try:
            claim = self.ledger.claim(
                key,
                owner=self.owner,
                lease=self.lease,
                retry_unknown=self.retry_unknown,
                **self._claim_options(ignore_budget),  # type: ignore[arg-type]
            )
        except InviteError as exc:
            claimed(self.provider_name, "error")
            # Nothing was sent; an unfinished claim (OutcomeUnknown) may still read unknown.
            return Guarded(status=outcome_status(exc), error=exc)
        claimed(self.provider_name, _claim_result(claim))
        if not claim.granted:
            return self.replay(claim)
        try:
            result = _sending(send, invitee)
        except Exception as exc:
            state = outcome_status(exc)
            self._settled(key, state, None, exc)
            return self._done(claim, state, error=exc)
        self._settled(key, "sent", result, None)
        return self._done(claim, "sent", result=result)

    async def arun(
        self,
        run: str,
        invitee: Invitee,
        send: Callable[[Invitee], Awaitable[ResendResult]],
        *,
        ignore_budget: bool = False,
    ) -> Guarded:
        """:meth:`run` from async code; a cancellation is recorded, then reported ``cancelled``."""
        key = self.key(run, invitee.user_id)
        claiming = asyncio.ensure_future(
            self.ledger.aclaim(
                key,
                owner=self.owner,
                lease=self.lease,
                retry_unknown=self.retry_unknown,
                **self._claim_options(ignore_budget),  # type: ignore[arg-type]
            )
        )
        try:
            claim = await asyncio.shield(claiming)
        except asyncio.CancelledError:
            return await self._cancelled_before_sending(key, claiming)
        except InviteError as exc:
            claimed(self.provider_name, "error")
            return Guarded(status=outcome_status(exc), error=exc)
        claimed(self.provider_name, _claim_result(claim))
        if not claim.granted:
            return self.replay(claim)
        try:
            result = await _asending(send, invitee)
        except asyncio.CancelledError as exc:
            unknown = OutcomeUnknown(
                "cancelled while the resend was in flight; it may have been sent",
                provider=self.provider_name,
                user_id=invitee.user_id,
            )
            unknown.__cause__ = exc
            await self._asettled(key, "unknown", None, unknown)
            return attrs.evolve(self._done(claim, "unknown", error=unknown), cancelled=True)
        except Exception as exc:
            state = outcome_status(exc)
            await self._asettled(key, state, None, exc)
            return self._done(claim, state, error=exc)
        await self._asettled(key, "sent", result, None)
        return self._done(claim, "sent", result=result)

    # -- replaying what the ledger holds ---------------------------------------------------------

    def replay(self, claim: Claim) -> Guarded:
        """The outcome a refused claim stands for; nothing is sent."""
        record = claim.record
        if claim.too_soon is not None and self.budget is not None:
            too_soon = too_soon_error(
                record.key.user_id, self.budget, claim.too_soon, provider=self.provider_name
            )
            return Guarded(status="failed", error=too_soon, skipped=True)
        if record.state == "sent":
            return Guarded(status="sent", result=record.result, skipped=True)
        if record.state == "already_verified":
            error = record.error or AlreadyVerified("the ledger records it as already verified")
            return Guarded(status="already_verified", error=error, skipped=True)
        return Guarded(status="unknown", error=self._unknown(claim), skipped=True)

    def _unknown(self, claim: Claim) -> OutcomeUnknown:
        record = claim.record
        # Only this message depends on it: an intent is never taken over for a gone owner, since
        # a process id may have been reused.
        if claim.in_flight and owner_gone(record.owner):
            why = (
                f"an earlier attempt's process ({record.owner}) ended while it was in flight "
                "and recorded no outcome: it may have been sent"
            )
        elif claim.in_flight:
            why = f"in flight elsewhere ({record.owner} holds it)"
        elif record.state == "intent":
            why = "an earlier attempt claimed it and recorded no outcome: it may have been sent"
        else:
            recorded = record.error.message if isinstance(record.error, InviteError) else None
            why = "an earlier attempt's outcome is unknown" + (f" ({recorded})" if recorded else "")
        return OutcomeUnknown(
            f"{why}; not resent (settle it in the ledger, or retry unknown outcomes)",
            provider=self.provider_name,
            user_id=record.key.user_id,
            details={"run": record.key.run, "ledger_state": record.state},
        )

    @staticmethod
    def _done(
        claim: Claim,
        status: OutcomeStatus,
        *,
        result: ResendResult | None = None,
        error: BaseException | None = None,
    ) -> Guarded:
        previous = claim.previous
        resent_unknown = previous is not None and previous.state in ("intent", "unknown")
        return Guarded(status=status, result=result, error=error, resent_unknown=resent_unknown)

    # -- recording -------------------------------------------------------------------------------

    def _settled(
        self,
        key: RecordKey,
        state: OutcomeStatus,
        result: ResendResult | None,
        error: BaseException | None,
    ) -> None:
        try:
            if not self.wait_for_outcomes:
                self.ledger.settle_soon(key, state, owner=self.owner, result=result, error=error)
                return
            record = self.ledger.settle(key, state, owner=self.owner, result=result, error=error)
        except InviteError as exc:
            self._unrecorded(key, state, exc)
            return
        if record is None:
            self._lost(key, state)

    async def _asettled(
        self,
        key: RecordKey,
        state: OutcomeStatus,
        result: ResendResult | None,
        error: BaseException | None,
    ) -> None:
        # Shielded: a second cancellation must not stop an outcome from being recorded.
        if self.wait_for_outcomes:
            waiting = self.ledger.asettle(key, state, owner=self.owner, result=result, error=error)
        else:
            waiting = self._none(
                self.ledger.asettle_soon(key, state, owner=self.owner, result=result, error=error)
            )
        settling = asyncio.ensure_future(waiting)
        try:
            record = await asyncio.shield(settling)
        except asyncio.CancelledError:
            return  # the write is queued and completes; until then the record reads unknown
        except InviteError as exc:
            self._unrecorded(key, state, exc)
            return
        if record is None and self.wait_for_outcomes:
            self._lost(key, state)

    @staticmethod
    async def _none(queued: Awaitable[None]) -> Record | None:
        await queued
        return None

    async def _cancelled_before_sending(
        self, key: RecordKey, claiming: asyncio.Future[Claim]
    ) -> Guarded:
        error = OutcomeUnknown(
            "cancelled before the resend was sent", provider=self.provider_name, user_id=key.user_id
        )
        try:
            claim = await asyncio.shield(claiming)
        except (asyncio.CancelledError, InviteError):
            # Nothing was sent; if the claim went through after all, its intent reads unknown.
            return Guarded(status="unknown", error=error, cancelled=True)
        if not claim.granted:
            return attrs.evolve(self.replay(claim), cancelled=True)
        nothing_sent = InviteError(
            "cancelled before the resend was sent; nothing was sent",
            provider=self.provider_name,
            user_id=key.user_id,
        )
        await self._asettled(key, "failed", None, nothing_sent)
        return Guarded(status="failed", error=nothing_sent, cancelled=True)

    @staticmethod
    def _unrecorded(key: RecordKey, state: str, exc: InviteError) -> None:
        logger.warning(
            "ledger: outcome %s of user %r (run %r) could not be recorded; it reads unknown: %s",
            state,
            key.user_id,
            key.run,
            exc,
        )

    @staticmethod
    def _lost(key: RecordKey, state: str) -> None:
        logger.warning(
            "ledger: user %r (run %r) was taken over or settled meanwhile; outcome %s not recorded",
            key.user_id,
            key.run,
            state,
        )


def _sending(send: Callable[[Invitee], _T], invitee: Invitee) -> _T:
    """``send(invitee)`` marked as claimed: the provider's own budget does not claim it again."""
    token = _CLAIMED.set(True)
    try:
        return send(invitee)
    finally:
        _CLAIMED.reset(token)


async def _asending(send: Callable[[Invitee], Awaitable[_T]], invitee: Invitee) -> _T:
    """:func:`_sending` for a coroutine: marked for as long as it is awaited."""
    token = _CLAIMED.set(True)
    try:
        return await send(invitee)
    finally:
        _CLAIMED.reset(token)
