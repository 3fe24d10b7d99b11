"""Resend to many invitees with bounded concurrency, accounting for each exactly once.

Inputs are pulled lazily, at most ``concurrency`` resends are in flight, and every invitee pulled
from the input gives exactly one :class:`Outcome`, in completion order. An error for one invitee
never escapes: it becomes that invitee's outcome. When the consumer stops early (or the run is
cancelled), nothing new starts; resends already in flight finish (sync) or are cancelled and
reported ``unknown`` (async), and their outcomes go to ``on_outcome`` so none is lost.

With a ``ledger`` and a ``run`` name, every resend is claimed in the ledger before it is sent and
its outcome recorded after (see :mod:`invites.ledger`): an invitee the run already settled, or
whose earlier attempt may have sent the email, is not sent again, whatever stopped the earlier
process.
"""

from __future__ import annotations

import asyncio
import collections
import logging
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Callable,
    Generator,
    Iterable,
    Iterator,
    Mapping,
)
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, as_completed, wait
from typing import Literal, TypeAlias

import attrs

from ._protocol import InviteProvider
from .errors import InviteError, OutcomeUnknown
from .ledger import Ledger
from .ledger._guard import Guard, Guarded, outcome_status
from .models import Invitee, ResendResult, as_invitee

__all__ = ["Outcome", "OutcomeStatus", "aresend_many", "resend_many"]

logger = logging.getLogger("invites")

OutcomeStatus: TypeAlias = Literal["sent", "already_verified", "failed", "unknown"]
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
    have the email twice.
    """

    invitee: Invitee | None
    user_id: str
    status: OutcomeStatus
    result: ResendResult | None = None
    error: BaseException | None = None
    skipped: bool = False
    resent_unknown: bool = False

    @property
    def ok(self) -> bool:
        """True when the invitee needs nothing more: sent or already verified."""
        return self.status in ("sent", "already_verified")


def _user_id(item: object) -> str:
    if isinstance(item, Invitee):
        return item.user_id
    if isinstance(item, str | int):
        return str(item)  # a numeric id reads as itself
    # Anything else goes by its type's name: its repr could be long, or show what it holds.
    return f"<{type(item).__name__}>"


def _failed(item: object, error: BaseException) -> Outcome:
    invitee = item if isinstance(item, Invitee) else None
    return Outcome(
        invitee=invitee, user_id=_user_id(item), status=outcome_status(error), error=error
    )


def _sent(invitee: Invitee, result: ResendResult) -> Outcome:
    return Outcome(invitee=invitee, user_id=invitee.user_id, status="sent", result=result)


def _guarded(invitee: Invitee, guarded: Guarded) -> Outcome:
    return Outcome(
        invitee=invitee,
        user_id=invitee.user_id,
        status=guarded.status,
        result=guarded.result,
        error=guarded.error,
        skipped=guarded.skipped,
        resent_unknown=guarded.resent_unknown,
    )


class _Ledgered:
    """A :class:`~invites.ledger._guard.Guard` bound to one provider and one run."""

    def __init__(
        self, ledger: Ledger, provider: InviteProvider, run: str | None, retry_unknown: bool
    ) -> None:
        if not isinstance(run, str) or not run:
            raise ValueError("a ledger needs a run name: resend_many(..., ledger=, run='...')")
        # Outcomes are committed in groups while the next resends go out; each claim is still
        # durable before its request leaves, and closing the ledger commits what is queued.
        self.guard = Guard(ledger, provider, retry_unknown=retry_unknown, wait_for_outcomes=False)
        self.provider = provider
        self.run = run

    def resend(self, invitee: Invitee) -> Outcome:
        return _guarded(invitee, self.guard.run(self.run, invitee, self.provider.resend_invite))

    async def aresend(self, invitee: Invitee) -> Outcome:
        guarded = await self.guard.arun(self.run, invitee, self.provider.aresend_invite)
        return _guarded(invitee, guarded)

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
    provider: InviteProvider, item: Invitee | str, ledgered: _Ledgered | None = None
) -> Outcome:
    """Resend to one invitee and return its outcome; never raises for the invitee's sake."""
    try:
        invitee = as_invitee(item)
        if ledgered is not None:
            return ledgered.resend(invitee)
        return _sent(invitee, provider.resend_invite(invitee))
    except Exception as exc:
        return _failed(item, exc)


async def aresend_one(
    provider: InviteProvider, item: Invitee | str, ledgered: _Ledgered | None = None
) -> Outcome:
    """Async twin of :func:`resend_one`; a cancelled resend is reported ``unknown``."""
    try:
        invitee = as_invitee(item)
        if ledgered is not None:
            return await ledgered.aresend(invitee)
        return _sent(invitee, await provider.aresend_invite(invitee))
    except asyncio.CancelledError:
        return _cancelled(provider, item)
    except Exception as exc:
        return _failed(item, exc)


def _cancelled(provider: InviteProvider, item: object) -> Outcome:
    error = OutcomeUnknown(
        "the run was cancelled while this resend was in flight; it may have been sent",
        provider=provider.name,
        user_id=_user_id(item),
    )
    return _failed(item, error)


def _within_pool(provider: InviteProvider, concurrency: int, *, asynchronous: bool) -> int:
    """``concurrency``, at most the connections of the client the provider owns.

    More resends in flight than connections only queue inside httpcore's pool, whose bookkeeping
    grows with the queue, until they fail with ``PoolTimeout``; a caller's own client keeps the
    limits the caller gave it.
    """
    limit = getattr(provider, "_connection_limit", None)
    most = limit(asynchronous=asynchronous) if callable(limit) else None
    return concurrency if most is None else min(concurrency, most)


def _check_arguments(invitees: object, concurrency: int) -> None:
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency must be a positive integer, got {concurrency!r}")
    if isinstance(invitees, str | bytes | Mapping):
        # Iterating one would resend to each character, or to each key.
        raise TypeError(
            f"invitees must be an iterable of Invitees or user ids, not a {type(invitees).__name__}"
        )


class _Hook:
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


class _Repeats:
    """With a ledger, a repeat of a user id in flight waits for its outcome instead of racing it.

    Only user ids in flight are held, so memory stays bounded by the concurrency; a repeat that
    comes after the first finished is settled by the ledger.
    """

    def __init__(self, active: bool) -> None:
        self.active = active
        self.in_flight: dict[str, list[Invitee | str]] = {}

    def hold(self, item: Invitee | str) -> bool:
        """Start tracking ``item``'s user id; True when it is a repeat, held for later."""
        if not self.active:
            return False
        held = self.in_flight.get(_user_id(item))
        if held is not None:
            held.append(item)
            return True
        self.in_flight[_user_id(item)] = []
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
                skipped=True,
                resent_unknown=False,
            )
            for item in held
        ]
        return [outcome, *repeats]


def resend_many(
    provider: InviteProvider,
    invitees: Iterable[Invitee | str],
    *,
    concurrency: int = 8,
    on_outcome: OutcomeHook | None = None,
    ledger: Ledger | None = None,
    run: str | None = None,
    retry_unknown: bool = False,
) -> Generator[Outcome, None, None]:
    """Resend to every invitee on up to ``concurrency`` threads; yield outcomes as they complete.

    ``on_outcome`` sees every outcome as it completes, including those that finish after the
    consumer stopped iterating; if it raises, nothing new starts and its first error is raised
    once every resend in flight has finished and been reported. Closing the generator (or leaving
    a ``for`` loop over it) waits for the resends in flight.

    With ``ledger`` (and ``run``, the name a rerun resumes by), each invitee is claimed before it
    is sent: one the run settled is not sent again (``skipped``), and one whose earlier attempt
    left no outcome is reported ``unknown`` unless ``retry_unknown``. A user id repeated in the
    input is sent at most once; each repeat gets the first one's outcome, ``skipped``.
    """
    _check_arguments(invitees, concurrency)
    concurrency = _within_pool(provider, concurrency, asynchronous=False)
    ledgered = None if ledger is None else _Ledgered(ledger, provider, run, retry_unknown)
    return _resend_many(provider, iter(invitees), concurrency, _Hook(on_outcome), ledgered)


def _resend_many(
    provider: InviteProvider,
    source: Iterator[Invitee | str],
    concurrency: int,
    hook: _Hook,
    ledgered: _Ledgered | None,
) -> Generator[Outcome, None, None]:
    pending: set[Future[Outcome]] = set()
    ready: collections.deque[Outcome] = collections.deque()  # completed, not yet reported
    repeats = _Repeats(ledgered is not None)
    executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="invites")
    exhausted = False
    try:
        while True:
            while not ready and not exhausted and hook.error is None and len(pending) < concurrency:
                try:
                    item = next(source)
                except StopIteration:
                    exhausted = True
                    break
                if not repeats.hold(item):
                    pending.add(executor.submit(resend_one, provider, item, ledgered))
            if not pending and not ready:
                break
            if not ready:
                done, pending = wait(pending, return_when=FIRST_COMPLETED)
                for future in done:
                    ready.extend(repeats.expand(future.result()))
            outcome = ready.popleft()
            hook(outcome)
            yield outcome
    finally:
        _drain(ready, pending, repeats, hook, executor, ledgered)
    if hook.error is not None:
        raise hook.error


def _drain(
    ready: collections.deque[Outcome],
    pending: set[Future[Outcome]],
    repeats: _Repeats,
    hook: _Hook,
    executor: ThreadPoolExecutor,
    ledgered: _Ledgered | None,
) -> None:
    """Hand the outcomes completed but not yet reported to on_outcome, then those of the
    resends in flight as each finishes (the consumer may have stopped early, or the input
    raised); then wait until the ledger holds every outcome."""
    try:
        while ready:
            hook(ready.popleft())
        for future in as_completed(pending):
            for outcome in repeats.expand(future.result()):
                hook(outcome)
    finally:
        executor.shutdown(wait=True)
        if ledgered is not None:
            ledgered.flush()


async def aresend_many(
    provider: InviteProvider,
    invitees: Iterable[Invitee | str] | AsyncIterable[Invitee | str],
    *,
    concurrency: int = 8,
    on_outcome: OutcomeHook | None = None,
    ledger: Ledger | None = None,
    run: str | None = None,
    retry_unknown: bool = False,
) -> AsyncIterator[Outcome]:
    """Async twin of :func:`resend_many`: up to ``concurrency`` tasks, outcomes as they complete.

    When the consumer stops or the run is cancelled, in-flight resends are cancelled and reported
    ``unknown`` to ``on_outcome`` (a request may already have reached the vendor; with a ledger,
    each is recorded so before it is reported). A consumer that may stop early should iterate
    inside ``contextlib.aclosing(...)``: an abandoned async generator is closed only when it is
    garbage-collected.
    """
    _check_arguments(invitees, concurrency)
    concurrency = _within_pool(provider, concurrency, asynchronous=True)
    ledgered = None if ledger is None else _Ledgered(ledger, provider, run, retry_unknown)
    hook = _Hook(on_outcome)
    source = _aiter(invitees)
    items: dict[asyncio.Task[Outcome], Invitee | str] = {}
    ready: collections.deque[Outcome] = collections.deque()
    repeats = _Repeats(ledgered is not None)
    exhausted = False
    try:
        while True:
            while not ready and not exhausted and hook.error is None and len(items) < concurrency:
                try:
                    item = await anext(source)
                except StopAsyncIteration:
                    exhausted = True
                    break
                if not repeats.hold(item):
                    task = asyncio.create_task(aresend_one(provider, item, ledgered))
                    items[task] = item
            if not items and not ready:
                break
            if not ready:
                done, _ = await asyncio.wait(items, return_when=asyncio.FIRST_COMPLETED)
                for task in done:
                    del items[task]
                    ready.extend(repeats.expand(task.result()))
            outcome = ready.popleft()
            hook(outcome)
            yield outcome
    finally:
        await _settle_in_flight(provider, items, ready, repeats, hook)
        if ledgered is not None:
            await ledgered.aflush()
    if hook.error is not None:
        raise hook.error


async def _settle_in_flight(
    provider: InviteProvider,
    items: dict[asyncio.Task[Outcome], Invitee | str],
    ready: collections.deque[Outcome],
    repeats: _Repeats,
    hook: _Hook,
) -> None:
    """Report what completed, then cancel what is in flight and report each as it settles."""
    while ready:
        hook(ready.popleft())
    for task in items:
        task.cancel()
    for task, item in items.items():
        # aresend_one reports its own cancellation as "unknown"; a task cancelled before it
        # started is reported the same way.
        try:
            outcome = await asyncio.shield(task)
        except asyncio.CancelledError:
            outcome = _cancelled(provider, item)
        for each in repeats.expand(outcome):
            hook(each)


async def _aiter(
    invitees: Iterable[Invitee | str] | AsyncIterable[Invitee | str],
) -> AsyncIterator[Invitee | str]:
    if isinstance(invitees, AsyncIterable):
        async for item in invitees:
            yield item
    else:
        for item in invitees:
            yield item
