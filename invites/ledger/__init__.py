"""A write-ahead ledger of resends: each invitee is sent at most once per run, whatever happens.

Every resend under a ledger follows one record's life, keyed by :class:`RecordKey` (run, provider
identity, user id)::

    (none) --claim, atomic, durable--> intent(owner, lease_until) --the request may leave-->
    intent --2xx------------------------------> sent(result)         settled: never sent again
    intent --AlreadyVerified-----------------> already_verified     settled
    intent --nothing was sent----------------> failed(error)        a later claim takes it again
    intent --OutcomeUnknown------------------> unknown(error)       never resent unless asked
    intent, no outcome (crash, lease out)      reads as unknown     never resent unless asked

The claim commits before any byte of the resend leaves, and the outcome commits after it, so a
process killed at any moment leaves either nothing (nothing was sent), an intent (the email may
have gone: ``unknown``) or the true outcome. The claim is one atomic step: of two callers racing
for the same key, exactly one is granted it. An outcome may also be queued
(:meth:`Ledger.settle_soon`, as the bulk runners do) and committed with later writes: until
:meth:`Ledger.flush` returns, a crash leaves its intent, so an outcome already reported to a
caller may read ``unknown`` afterwards, never another outcome.

``open_ledger(url_or_path)`` picks an implementation by URL scheme: SQLite from the standard
library for a plain path or ``sqlite:///path``; ``postgresql://`` the PostgreSQL implementation
(psycopg 3, the optional extra ``postgres``), for processes on many machines.

Writing an implementation: subclass :class:`Ledger` and implement :meth:`Ledger.claim`,
:meth:`Ledger.settle`, :meth:`Ledger.get`, :meth:`Ledger.records` and :meth:`Ledger.close` with
exactly the semantics their docstrings state (the test-suite's contract tests apply to every
implementation; ``budget`` is passed to :meth:`Ledger.claim` only under a ``per_user_limit``).
The async methods default to running the sync ones on a worker thread; override them when the
store has a native async client. :meth:`Ledger.settle_soon` (and its async twin)
default to a waiting :meth:`Ledger.settle` and :meth:`Ledger.flush` to nothing; override them to
commit outcomes in groups. :func:`dump_result`, :func:`load_result`, :func:`dump_error` and
:func:`load_error` turn outcomes into JSON text and back.
"""

from __future__ import annotations

import abc
import asyncio
import os
import socket
import uuid
from collections.abc import Callable, Iterator, Sequence
from importlib import import_module
from typing import Any, Final, Literal, TypeAlias

import attrs

from .._settings.identity import provider_identity
from ..errors import ConfigurationError, InviteError
from ..models import OutcomeStatus, ResendResult
from ._budget import Budget, TooSoon
from ._json import dump_error, dump_result, load_error, load_result
from ._owners import owner_gone

__all__ = [
    "Budget",
    "Claim",
    "Ledger",
    "OutcomeState",
    "ReadStatus",
    "Record",
    "RecordKey",
    "State",
    "TooSoon",
    "dump_error",
    "dump_result",
    "load_error",
    "load_result",
    "may_claim",
    "new_owner",
    "open_ledger",
    "owner_gone",
    "provider_identity",
    "read_record",
]

#: What a record holds. ``intent``: claimed, no outcome yet.
State: TypeAlias = Literal["intent", "sent", "already_verified", "failed", "unknown"]
#: The outcomes :meth:`Ledger.settle` records, and how a record reads (an intent with no outcome
#: reads ``unknown``): :data:`invites.models.OutcomeStatus`, under the names earlier releases
#: gave it here.
OutcomeState: TypeAlias = OutcomeStatus
ReadStatus: TypeAlias = OutcomeStatus

#: States a claim never takes over: the invitee needs nothing more.
SETTLED: Final = frozenset({"sent", "already_verified"})


@attrs.frozen
class RecordKey:
    """Whose resend a record is about.

    ``run`` names a bulk run or a single resend's idempotency key (one namespace: a run and a key
    spelled the same name the same resends); ``identity`` is :func:`provider_identity` of the
    provider; ``user_id`` the invitee's id.
    """

    run: str
    identity: str
    user_id: str


@attrs.frozen(kw_only=True)
class Record:
    """One key's record, as stored.

    ``owner`` is who last claimed it and ``lease_until`` (Unix time) until when that claim is
    presumed in flight; ``claims`` counts the claims granted so far (a failed record is claimed
    again). ``result`` is set for ``sent``, ``error`` for ``failed`` and ``unknown`` (and, for
    ``already_verified``, the vendor's refusal). ``created_at`` / ``updated_at`` are Unix times;
    ``claimed_at`` is when the latest claim was granted (None: never, or recorded before the
    ledger kept it), and ``budget_overridden`` says that claim went over the per-user budget
    because its caller ignored it (``ignore_budget``).
    """

    key: RecordKey
    state: State
    owner: str
    lease_until: float
    claims: int = 1
    result: ResendResult | None = None
    error: InviteError | None = None
    created_at: float = 0.0
    updated_at: float = 0.0
    claimed_at: float | None = None
    budget_overridden: bool = False

    def status(self) -> OutcomeStatus:
        """How the record reads: its outcome, or ``unknown`` for an intent with no outcome."""
        return "unknown" if self.state == "intent" else self.state

    def in_flight(self, now: float) -> bool:
        """Whether an intent's lease still runs: its owner may be sending right now."""
        return self.state == "intent" and self.lease_until > now


@attrs.frozen(kw_only=True)
class Claim:
    """The answer to :meth:`Ledger.claim`.

    ``granted``: the caller now holds the intent and may send. ``record`` is the record after the
    claim (the caller's new intent when granted, the existing record otherwise); ``previous`` is
    the record a granted claim replaced (a ``failed`` one, or an ``unknown`` one taken over with
    ``retry_unknown``), None when the key was new or the claim was refused. ``in_flight``: the
    claim was refused because the record is an intent whose lease still ran by the store's clock
    (another caller may be sending right now). ``too_soon``: the claim was refused by the budget
    (the record then is ``failed`` with :class:`~invites.ResendTooSoon`, unless it held more).
    """

    granted: bool
    record: Record
    previous: Record | None = None
    in_flight: bool = False
    too_soon: TooSoon | None = None


class Ledger(abc.ABC):
    """A durable, shared record of resends. Use as a (sync or async) context manager.

    Implementations are safe to share between threads, asyncio tasks (through the ``a`` methods,
    which never block the event loop) and processes pointing at the same store. A method returns
    only once what it wrote is durable. A store that cannot be reached or written raises
    :class:`~invites.ConnectionFailed` naming it (from :meth:`claim`: nothing was claimed).
    """

    @abc.abstractmethod
    def claim(
        self,
        key: RecordKey,
        *,
        owner: str,
        lease: float,
        retry_unknown: bool = False,
        budget: Budget | None = None,
    ) -> Claim:
        """Take ``key`` for ``owner``, in one atomic, durable step; say whether it was granted.

        Granted (the record becomes ``intent(owner, lease_until=now + lease)``, ``claims`` + 1)
        when there is no record, when it is ``failed`` (nothing was sent), and, only with
        ``retry_unknown``, when it is ``unknown`` or an intent whose lease has run out. Refused
        for ``sent`` and ``already_verified``, for ``unknown`` without ``retry_unknown``, and for
        any intent whose lease still runs (in flight, also when ``owner`` is the holder).

        With ``budget``, a claim the key allows is also refused (``too_soon``) when the records of
        every run for ``key.identity`` and ``key.user_id`` hold ``budget.limit`` sends claimed
        within ``budget.window`` (:mod:`invites.ledger._budget`), checked in the same atomic step;
        such a refusal is recorded as ``failed`` (unless the record holds an unknown outcome).
        With ``budget.ignore`` it is granted, its record marked ``budget_overridden``.
        """

    @abc.abstractmethod
    def settle(
        self,
        key: RecordKey,
        state: OutcomeStatus,
        *,
        owner: str | None,
        result: ResendResult | None = None,
        error: BaseException | None = None,
    ) -> Record | None:
        """Record the outcome of ``key``'s resend, durably; return the record as it now stands.

        With ``owner``: only an intent that ``owner`` holds is settled; otherwise nothing changes
        and None is returned (the claim was taken over, or a person settled it meanwhile). With
        ``owner=None``, a person's decision: the existing record takes ``state`` whatever it held
        (None when there is no record). ``result`` goes with ``sent``; ``error`` with the others.
        """

    def settle_soon(
        self,
        key: RecordKey,
        state: OutcomeStatus,
        *,
        owner: str,
        result: ResendResult | None = None,
        error: BaseException | None = None,
    ) -> None:
        """:meth:`settle` for ``owner``, without waiting for it to be durable.

        The outcome is durable once :meth:`flush` or :meth:`close` returns (or earlier); a crash
        before then leaves the intent, which reads ``unknown`` (never a second email). A failure
        is logged, not raised. Lets a caller go on to its next resend while outcomes are
        committed in groups. The default waits, like :meth:`settle`.
        """
        self.settle(key, state, owner=owner, result=result, error=error)

    def flush(self) -> None:
        """Return once every outcome this process queued with :meth:`settle_soon` is durable."""
        return None  # the default settle_soon waits: nothing is ever queued

    @abc.abstractmethod
    def get(self, key: RecordKey) -> Record | None:
        """The record of ``key``, or None."""

    @abc.abstractmethod
    def records(self, *, run: str | None = None, user_id: str | None = None) -> Iterator[Record]:
        """Every record, optionally of one run and/or one user id, oldest first."""

    def records_since(self, *, run: str, since: float) -> Iterator[Record]:
        """The records of ``run`` written at or after ``since`` (Unix time by the store's clock),
        oldest first. The default reads the whole run; stores override it to ask for those only."""
        return (record for record in self.records(run=run) if record.updated_at >= since)

    @abc.abstractmethod
    def close(self) -> None:
        """Release the store. Idempotent."""

    async def aclaim(
        self,
        key: RecordKey,
        *,
        owner: str,
        lease: float,
        retry_unknown: bool = False,
        budget: Budget | None = None,
    ) -> Claim:
        """:meth:`claim` without blocking the event loop."""
        extra = {} if budget is None else {"budget": budget}  # an implementation without budgets
        return await asyncio.to_thread(
            self.claim, key, owner=owner, lease=lease, retry_unknown=retry_unknown, **extra
        )

    async def asettle(
        self,
        key: RecordKey,
        state: OutcomeStatus,
        *,
        owner: str | None,
        result: ResendResult | None = None,
        error: BaseException | None = None,
    ) -> Record | None:
        """:meth:`settle` without blocking the event loop."""
        return await asyncio.to_thread(
            self.settle, key, state, owner=owner, result=result, error=error
        )

    async def asettle_soon(
        self,
        key: RecordKey,
        state: OutcomeStatus,
        *,
        owner: str,
        result: ResendResult | None = None,
        error: BaseException | None = None,
    ) -> None:
        """:meth:`settle_soon` without blocking the event loop."""
        await self.asettle(key, state, owner=owner, result=result, error=error)

    async def aflush(self) -> None:
        """:meth:`flush` without blocking the event loop."""
        await asyncio.to_thread(self.flush)

    async def aget(self, key: RecordKey) -> Record | None:
        """:meth:`get` without blocking the event loop."""
        return await asyncio.to_thread(self.get, key)

    async def aclose(self) -> None:
        """:meth:`close` without blocking the event loop."""
        await asyncio.to_thread(self.close)

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> Ledger:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def may_claim(record: Record | None, *, now: float, retry_unknown: bool) -> bool:
    """Whether :meth:`Ledger.claim` grants a key whose record is ``record`` at time ``now``."""
    if record is None or record.state == "failed":
        return True
    if not retry_unknown:
        return False
    return record.state == "unknown" or (record.state == "intent" and record.lease_until <= now)


#: URL scheme -> "module:factory"; the factory takes the URL (or path) and returns a Ledger.
_IMPLEMENTATIONS: Final[dict[str, tuple[str, str, str | None]]] = {
    "sqlite": ("invites.ledger._sqlite", "SQLiteLedger", None),
    "postgresql": ("invites.ledger._postgres", "PostgresLedger", "postgres"),
    "postgres": ("invites.ledger._postgres", "PostgresLedger", "postgres"),
}


def open_ledger(url_or_path: str | os.PathLike[str], *, read_only: bool = False) -> Ledger:
    """Open the ledger at ``url_or_path``: a file path or ``sqlite:///path`` (SQLite, created
    if missing), or ``postgresql://...`` (needs the ``postgres`` extra). ``read_only``: only
    read it (a SQLite file on a full disk, or not writable, is then not refused).

    Raises :class:`~invites.ConfigurationError` for an unknown scheme or a missing implementation.
    """
    target = os.fspath(url_or_path)
    if not isinstance(target, str) or not target:
        raise ConfigurationError("ledger: expected a path or a URL")
    scheme = target.split("://", 1)[0].lower() if "://" in target else "sqlite"
    scheme = scheme.split("+", 1)[0]  # postgresql+psycopg://
    entry = _IMPLEMENTATIONS.get(scheme)
    if entry is None:
        known = ", ".join(sorted(_IMPLEMENTATIONS))
        raise ConfigurationError(f"ledger: unknown scheme {scheme!r} (known: {known})")
    module_name, factory_name, extra = entry
    try:
        module = import_module(module_name)
    except ImportError as exc:
        hint = f"; install invites[{extra}]" if extra else ""
        raise ConfigurationError(
            f"ledger: no implementation available for {scheme}:// ({exc.name or exc}){hint}"
        ) from exc
    factory: Callable[..., Ledger] = getattr(module, factory_name)
    return factory(target, read_only=True) if read_only and scheme == "sqlite" else factory(target)


def new_owner() -> str:
    """A claim owner unique to this call: host, process id and a random part."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


# -- rows, for implementations --------------------------------------------------------------------


def read_record(row: Sequence[Any]) -> Record:
    """The :class:`Record` a stored row holds: run, identity, user id, state, owner, lease_until,
    claims, result, error, created_at, updated_at, then optionally claimed_at and
    budget_overridden (in that order; anything after is ignored)."""
    run, identity, user_id, state, owner, lease_until, claims, result, error, created, updated = (
        row[:11]
    )
    return Record(
        key=RecordKey(run=run, identity=identity, user_id=user_id),
        state=state,
        owner=owner,
        lease_until=lease_until,
        claims=claims,
        result=load_result(result),
        error=load_error(error),
        created_at=created,
        updated_at=updated,
        claimed_at=row[11] if len(row) > 11 else None,
        budget_overridden=bool(row[12]) if len(row) > 12 else False,
    )
