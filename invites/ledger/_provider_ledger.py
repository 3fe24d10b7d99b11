"""The ledger behind a provider's ``resend_invite(..., idempotency_key=...)``.

The claim, replay and recording rules are those of :class:`~invites.ledger._guard.Guard`, shared
with the bulk runner and the task queue.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Awaitable, Callable

from .._protocol import InviteProvider
from ..errors import ConfigurationError, InviteError, ResendTooSoon
from ..models import Invitee, ResendResult
from . import Ledger, Record, open_ledger
from ._guard import Guard, Guarded

__all__ = ["ProviderLedger"]


def _check_key(idempotency_key: object) -> str:
    if not isinstance(idempotency_key, str) or not idempotency_key.strip():
        raise ValueError("idempotency_key must be a non-empty string")
    return idempotency_key


class ProviderLedger:
    """The ledger behind a provider's ``resend_invite(..., idempotency_key=...)``.

    Built from the ``ledger`` setting (a path or URL, opened at the first resend with a key, so
    that building a provider connects to nothing, and closed with the provider)
    or from a :class:`~invites.ledger.Ledger` the caller passed (left open: the caller owns it).
    A key names one resend: a second call with it sends nothing and returns the recorded result
    or raises the recorded error (``OutcomeUnknown`` while no outcome is recorded).
    Under a ``per_user_limit``, a resend without a key is claimed too, under a key of its own
    (``resend_invite:<random>``), so that the budget counts it and may refuse it
    (:class:`~invites.ResendTooSoon`, nothing sent).
    """

    def __init__(self, ledger: Ledger | None, *, setting: str | None = None) -> None:
        self._ledger: Ledger | None = ledger
        self._setting = setting  # set: the ledger is ours, reopened after close() like a client
        self._lock = threading.Lock()
        self._guard: Guard | None = None

    @classmethod
    def build(cls, setting: str | None, ledger: Ledger | None) -> ProviderLedger | None:
        """The binding for a provider's ``ledger`` setting or argument; None for neither."""
        if setting is not None and ledger is not None:
            raise ConfigurationError("ledger: set in the configuration and passed as an argument")
        if ledger is not None:
            return cls(ledger)
        if setting is None:
            return None
        return cls(None, setting=setting)

    @property
    def ledger(self) -> Ledger:
        with self._lock:
            if self._ledger is None:
                assert self._setting is not None
                self._ledger = open_ledger(self._setting)
                self._guard = None
            return self._ledger

    def guard(self, provider: InviteProvider) -> Guard:
        ledger = self.ledger
        guard = self._guard
        if guard is None or guard.ledger is not ledger:
            settings = getattr(provider, "settings", None)
            retry = bool(getattr(settings, "retry_unknown", False))
            guard = self._guard = Guard(ledger, provider, retry_unknown=retry)
        return guard

    def resend(
        self,
        provider: InviteProvider,
        idempotency_key: str | None,
        invitee: Invitee,
        send: Callable[[Invitee], ResendResult],
        *,
        ignore_budget: bool = False,
    ) -> ResendResult:
        guard = self.guard(provider)
        if idempotency_key is None:  # a budgeted resend: its own key, never recorded before
            run = _own_key()
        else:
            run = _check_key(idempotency_key)
            failed = _recorded_failure(guard.ledger.get(guard.key(run, invitee.user_id)))
            if failed is not None:
                return failed.unwrap()
        return guard.run(run, invitee, send, ignore_budget=ignore_budget).unwrap()

    async def aresend(
        self,
        provider: InviteProvider,
        idempotency_key: str | None,
        invitee: Invitee,
        send: Callable[[Invitee], Awaitable[ResendResult]],
        *,
        ignore_budget: bool = False,
    ) -> ResendResult:
        guard = self.guard(provider)
        if idempotency_key is None:
            run = _own_key()
        else:
            run = _check_key(idempotency_key)
            failed = _recorded_failure(await guard.ledger.aget(guard.key(run, invitee.user_id)))
            if failed is not None:
                return failed.unwrap()
        guarded = await guard.arun(run, invitee, send, ignore_budget=ignore_budget)
        if guarded.cancelled:
            raise asyncio.CancelledError
        return guarded.unwrap()

    def close(self) -> None:
        """Close the ledger if the provider opened it (the next resend opens it again)."""
        if self._setting is None:
            return
        with self._lock:
            ledger, self._ledger = self._ledger, None
        if ledger is not None:
            ledger.close()


def _own_key() -> str:
    return f"resend_invite:{uuid.uuid4().hex}"


def _recorded_failure(record: Record | None) -> Guarded | None:
    # A key names one resend: its recorded failure is replayed, not retried (a bulk run's rerun,
    # by contrast, claims a failed record again). A budget's refusal is not the resend's outcome:
    # the key is claimed again, and the budget asked again.
    if record is None or record.state != "failed" or isinstance(record.error, ResendTooSoon):
        return None
    error = record.error or InviteError("the ledger records this resend as failed")
    return Guarded(status="failed", error=error, skipped=True)
