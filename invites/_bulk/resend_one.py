"""One invitee's outcome, and the resend that produces it: never an exception for its sake.

:func:`resend_one` / :func:`aresend_one` resend to one invitee (under a run's ledger when given)
and turn whatever happens into an :class:`Outcome`; the bulk runners in :mod:`invites.bulk`
schedule them, and share :class:`Hook` (``on_outcome``) and :class:`Repeats` (a user id repeated
under a ledger).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import attrs

from .._outcome import Outcome, OutcomeHook
from .._protocol import InviteProvider
from .._settings.identity import canonical_user_id
from .._telemetry import ACTIVE, Watch
from ..errors import InviteError, OutcomeUnknown, ResendTooSoon
from ..ledger import Ledger
from ..ledger._guard import Guard, Guarded
from ..models import Invitee, OutcomeStatus, ResendResult, as_invitee, outcome_status

__all__ = [
    "Hook",
    "Ledgered",
    "Outcome",
    "OutcomeHook",
    "OutcomeStatus",
    "Repeats",
    "aresend_one",
    "cancelled",
    "resend_one",
    "user_id_of",
]

logger = logging.getLogger("invites")


def user_id_of(item: object, provider: object = None) -> str:
    """The user id ``item`` names, in ``provider``'s canonical spelling when one is given."""
    if isinstance(item, Invitee):
        user_id = item.user_id
    elif isinstance(item, str | int):
        user_id = str(item)  # a numeric id reads as itself
    else:
        # Anything else goes by its type's name: its repr could be long, or show what it holds.
        return f"<{type(item).__name__}>"
    return user_id if provider is None else canonical_user_id(provider, user_id)


def _failed(item: object, error: BaseException, provider: object = None) -> Outcome:
    invitee = item if isinstance(item, Invitee) else None
    written = canonical = user_id_of(item)
    if isinstance(item, Invitee | str):
        with contextlib.suppress(Exception):  # an id the adapter cannot read keeps its spelling
            canonical = canonical_user_id(provider, written)
    return Outcome(
        invitee=invitee,
        user_id=canonical,
        input_id=written,
        status=outcome_status(error),
        error=error,
        skipped=isinstance(error, ResendTooSoon),  # the provider's own budget refused it
    )


def _sent(invitee: Invitee, result: ResendResult, provider: InviteProvider) -> Outcome:
    return Outcome(
        invitee=invitee,
        user_id=canonical_user_id(provider, invitee.user_id),
        input_id=invitee.user_id,
        status="sent",
        result=result,
    )


def _guarded(invitee: Invitee, guarded: Guarded, provider: InviteProvider) -> Outcome:
    return Outcome(
        invitee=invitee,
        user_id=canonical_user_id(provider, invitee.user_id),
        input_id=invitee.user_id,
        status=guarded.status,
        result=guarded.result,
        error=guarded.error,
        skipped=guarded.skipped,
        resent_unknown=guarded.resent_unknown,
    )


class Ledgered:
    """A :class:`~invites.ledger._guard.Guard` bound to one provider and one run."""

    def __init__(
        self,
        ledger: Ledger,
        provider: InviteProvider,
        run: str | None,
        retry_unknown: bool,
        ignore_budget: bool = False,
    ) -> None:
        if not isinstance(run, str) or not run:
            raise ValueError("a ledger needs a run name: resend_many(..., ledger=, run='...')")
        # Outcomes are committed in groups while the next resends go out; each claim is still
        # durable before its request leaves, and closing the ledger commits what is queued.
        self.guard = Guard(
            ledger,
            provider,
            retry_unknown=retry_unknown,
            wait_for_outcomes=False,
            ignore_budget=ignore_budget,
        )
        self.provider = provider
        self.run = run

    def resend(self, invitee: Invitee) -> Outcome:
        guarded = self.guard.run(self.run, invitee, self.provider.resend_invite)
        return _guarded(invitee, guarded, self.provider)

    async def aresend(self, invitee: Invitee) -> Outcome:
        guarded = await self.guard.arun(self.run, invitee, self.provider.aresend_invite)
        return _guarded(invitee, guarded, self.provider)

    def flush(self) -> None:
        """Wait until every outcome of the run is durable (they are committed in groups)."""
        try:
            self.guard.ledger.flush()
        except InviteError as exc:
            logger.warning("ledger: the run's last outcomes may not be recorded: %s", exc)

    async def aflush(self) -> None:
        try:
            await asyncio.shield(self.guard.ledger.aflush())
        except InviteError as exc:
            logger.warning("ledger: the run's last outcomes may not be recorded: %s", exc)


def resend_one(
    provider: InviteProvider, item: Invitee | str, ledgered: Ledgered | None = None
) -> Outcome:
    """Resend to one invitee and return its outcome; never raises for the invitee's sake."""
    watch = _watch(provider, item)
    active = ACTIVE.set(watch)
    try:
        outcome = _resend_one(provider, item, ledgered)
    finally:
        ACTIVE.reset(active)
    _ended(watch, outcome)
    return outcome


def _resend_one(
    provider: InviteProvider, item: Invitee | str, ledgered: Ledgered | None
) -> Outcome:
    try:
        invitee = as_invitee(item)
        if ledgered is not None:
            return ledgered.resend(invitee)
        return _sent(invitee, provider.resend_invite(invitee), provider)
    except Exception as exc:
        return _failed(item, exc, provider)


async def aresend_one(
    provider: InviteProvider, item: Invitee | str, ledgered: Ledgered | None = None
) -> Outcome:
    """Async twin of :func:`resend_one`; a cancelled resend is reported ``unknown``."""
    watch = _watch(provider, item)
    active = ACTIVE.set(watch)
    try:
        outcome = await _aresend_one(provider, item, ledgered)
    finally:
        ACTIVE.reset(active)
    _ended(watch, outcome)
    return outcome


async def _aresend_one(
    provider: InviteProvider, item: Invitee | str, ledgered: Ledgered | None
) -> Outcome:
    try:
        invitee = as_invitee(item)
        if ledgered is not None:
            return await ledgered.aresend(invitee)
        return _sent(invitee, await provider.aresend_invite(invitee), provider)
    except asyncio.CancelledError:
        return cancelled(provider, item)
    except Exception as exc:
        return _failed(item, exc, provider)


def _watch(provider: InviteProvider, item: object) -> Watch:
    """The watch of one bulk resend: the provider's resend reports to it, not on its own."""
    hook = getattr(getattr(provider, "settings", None), "on_outcome", None)
    return Watch(provider.name, user_id_of(item), hook if callable(hook) else None).start()


def _ended(watch: Watch, outcome: Outcome) -> None:
    watch.user_id = outcome.user_id  # the vendor's canonical spelling, once known
    watch.end(
        outcome.status,
        invitee=outcome.invitee,
        result=outcome.result,
        error=outcome.error,
        skipped=outcome.skipped,
        outcome=outcome,
    )


def cancelled(provider: InviteProvider, item: object) -> Outcome:
    error = OutcomeUnknown(
        "the run was cancelled while this resend was in flight; it may have been sent",
        provider=provider.name,
        user_id=user_id_of(item),
    )
    return _failed(item, error, provider)


class Hook:
    """``on_outcome``, called for every outcome even after it raised; the first error is kept."""

    def __init__(self, hook: OutcomeHook | None) -> None:
        self.hook = hook
        self.error: Exception | None = None

    def __call__(self, outcome: Outcome) -> None:
        if self.hook is None:
            return
        try:
            self.hook(outcome)
        except Exception as exc:
            if self.error is None:
                self.error = exc


class Repeats:
    """With a ledger, a repeat of a user id in flight waits for its outcome instead of racing it.

    Ids compare in ``provider``'s canonical spelling (``A3E8…`` repeats ``a3e8…`` where the vendor
    says so). Only user ids in flight are held, so memory stays bounded by the concurrency; a
    repeat that comes after the first finished is settled by the ledger.
    """

    def __init__(self, active: bool, provider: object = None) -> None:
        self.active = active
        self.provider = provider
        self.in_flight: dict[str, list[Invitee | str]] = {}

    def hold(self, item: Invitee | str) -> bool:
        """Start tracking ``item``'s user id; True when it is a repeat, held for later."""
        if not self.active:
            return False
        try:
            user_id = user_id_of(item, self.provider)
        except Exception:  # the resend reports the bad id
            return False
        held = self.in_flight.get(user_id)
        if held is not None:
            held.append(item)
            return True
        self.in_flight[user_id] = []
        return False

    def expand(self, outcome: Outcome) -> list[Outcome]:
        """``outcome`` followed by one for each held repeat of its user id."""
        if not self.active:
            return [outcome]
        held = self.in_flight.pop(outcome.user_id, [])
        repeats = [
            attrs.evolve(
                outcome,
                invitee=item if isinstance(item, Invitee) else outcome.invitee,
                input_id=user_id_of(item),
                skipped=True,
                resent_unknown=False,
            )
            for item in held
        ]
        return [outcome, *repeats]
