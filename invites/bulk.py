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
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Generator,
    Iterable,
    Iterator,
    Mapping,
)
from typing import Final, cast

from ._bulk.resend_one import (
    Hook,
    Ledgered,
    Outcome,
    OutcomeHook,
    OutcomeStatus,
    Repeats,
    aresend_one,
    cancelled,
)
from ._bulk.threads import ThreadRun
from ._protocol import InviteProvider
from .ledger import Ledger
from .models import Invitee

__all__ = ["Outcome", "OutcomeStatus", "aresend_many", "resend_many"]


def _within_pool(provider: InviteProvider, concurrency: int, *, asynchronous: bool) -> int:
    """``concurrency``, at most the connections of the client the provider owns.

    More resends in flight than connections only queue inside httpcore's pool, whose bookkeeping
    grows with the queue, until they fail with ``PoolTimeout``; a caller's own client keeps the
    limits the caller gave it.
    """
    limit = getattr(provider, "connection_limit", None)
    most = limit(asynchronous=asynchronous) if callable(limit) else None
    return concurrency if most is None else min(concurrency, most)


def _ledgered(
    ledger: Ledger | None,
    provider: InviteProvider,
    run: str | None,
    retry_unknown: bool,
    ignore_budget: bool,
) -> Ledgered | None:
    if ledger is None:
        return None
    return Ledgered(ledger, provider, run, retry_unknown, ignore_budget)


def _check_arguments(
    invitees: object, concurrency: int, ledger: Ledger | None, ignore_budget: bool
) -> None:
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency must be a positive integer, got {concurrency!r}")
    if ignore_budget and ledger is None:
        raise ValueError("ignore_budget needs the run's ledger: resend_many(..., ledger=, run=)")
    if isinstance(invitees, str | bytes | Mapping):
        # Iterating one would resend to each character, or to each key.
        raise TypeError(
            f"invitees must be an iterable of Invitees or user ids, not a {type(invitees).__name__}"
        )


def resend_many(
    provider: InviteProvider,
    invitees: Iterable[Invitee | str],
    *,
    concurrency: int = 8,
    on_outcome: OutcomeHook | None = None,
    ledger: Ledger | None = None,
    run: str | None = None,
    retry_unknown: bool = False,
    ignore_budget: bool = False,
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

    Under the provider's ``per_user_limit``, each claim also asks the budget, over the records
    of every run in the ledger: an invitee it refuses is ``failed``, ``skipped``, with
    :class:`~invites.ResendTooSoon` (nothing sent). ``ignore_budget`` (with a ledger) sends
    anyway for this run, and the ledger records each resend that went over the budget.
    """
    _check_arguments(invitees, concurrency, ledger, ignore_budget)
    concurrency = _within_pool(provider, concurrency, asynchronous=False)
    ledgered = _ledgered(ledger, provider, run, retry_unknown, ignore_budget)
    return _resend_many(provider, iter(invitees), concurrency, Hook(on_outcome), ledgered)


def _resend_many(
    provider: InviteProvider,
    source: Iterator[Invitee | str],
    concurrency: int,
    hook: Hook,
    ledgered: Ledgered | None,
) -> Generator[Outcome, None, None]:
    run = ThreadRun(provider, source, concurrency, hook, ledgered)
    try:
        while True:
            if not run.ready:
                run.fill()
            if not run.in_flight and not run.ready:
                break
            outcome = run.next_outcome()
            hook(outcome)
            yield outcome
    finally:
        run.drain()
    if hook.error is not None:
        raise hook.error


async def aresend_many(
    provider: InviteProvider,
    invitees: Iterable[Invitee | str] | AsyncIterable[Invitee | str],
    *,
    concurrency: int = 8,
    on_outcome: OutcomeHook | None = None,
    ledger: Ledger | None = None,
    run: str | None = None,
    retry_unknown: bool = False,
    ignore_budget: bool = False,
) -> AsyncIterator[Outcome]:
    """Async twin of :func:`resend_many`: up to ``concurrency`` tasks, outcomes as they complete.

    When the consumer stops or the run is cancelled, in-flight resends are cancelled and reported
    ``unknown`` to ``on_outcome`` (a request may already have reached the vendor; with a ledger,
    each is recorded so before it is reported). A consumer that may stop early should iterate
    inside ``contextlib.aclosing(...)``: an abandoned async generator is closed only when it is
    garbage-collected.
    """
    _check_arguments(invitees, concurrency, ledger, ignore_budget)
    concurrency = _within_pool(provider, concurrency, asynchronous=True)
    ledgered = _ledgered(ledger, provider, run, retry_unknown, ignore_budget)
    hook = Hook(on_outcome)
    tasks = _TaskRun(provider, invitees, concurrency, hook, ledgered)
    try:
        while True:
            if not tasks.ready:
                await tasks.fill()
            if not tasks.items and not tasks.ready:
                break
            outcome = await tasks.next_outcome()
            hook(outcome)
            yield outcome
    finally:
        await tasks.settle()
        if ledgered is not None:
            await ledgered.aflush()
    if hook.error is not None:
        raise hook.error


_END: Final = object()


class _TaskRun:
    """The state of one :func:`aresend_many` run: a task per resend in flight.

    Each task appends its outcome to :attr:`done` and wakes the runner itself: no done-callback
    and no queue stand between a finished resend and the next one starting.
    """

    def __init__(
        self,
        provider: InviteProvider,
        invitees: Iterable[Invitee | str] | AsyncIterable[Invitee | str],
        concurrency: int,
        hook: Hook,
        ledgered: Ledgered | None,
    ) -> None:
        self.provider = provider
        # A plain iterable is pulled directly: an async generator around it costs a step a pull.
        self.source: Iterator[Invitee | str] | None = None
        self.asource: AsyncIterator[Invitee | str] | None = None
        if isinstance(invitees, AsyncIterable):
            self.asource = aiter(invitees)
        else:
            self.source = iter(invitees)
        self.concurrency = concurrency
        self.hook = hook
        self.ledgered = ledgered
        self.items: dict[asyncio.Task[Outcome], Invitee | str] = {}
        self.done: collections.deque[tuple[asyncio.Task[Outcome], Outcome]] = collections.deque()
        self.waiter: asyncio.Future[None] | None = None
        self.ready: collections.deque[Outcome] = collections.deque()
        self.repeats = Repeats(ledgered is not None, provider)
        self.exhausted = False

    async def fill(self) -> None:
        """Start resends until ``concurrency`` are in flight or the input ends."""
        while not self.exhausted and self.hook.error is None and len(self.items) < self.concurrency:
            if self.source is not None:
                pulled = next(self.source, _END)
            else:
                assert self.asource is not None
                pulled = await anext(self.asource, _END)
            if pulled is _END:
                self.exhausted = True
                return
            item = cast("Invitee | str", pulled)
            if not self.repeats.hold(item):
                self.items[asyncio.create_task(self._resend(item))] = item

    async def _resend(self, item: Invitee | str) -> Outcome:
        outcome = await aresend_one(self.provider, item, self.ledgered)
        self.done.append((cast("asyncio.Task[Outcome]", asyncio.current_task()), outcome))
        waiter = self.waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        return outcome

    async def next_outcome(self) -> Outcome:
        """The next outcome to report, waiting for a resend to finish when none is ready."""
        if not self.ready:
            while not self.done:
                self.waiter = asyncio.get_running_loop().create_future()
                try:
                    await self.waiter
                finally:
                    self.waiter = None
            task, outcome = self.done.popleft()
            del self.items[task]
            self.ready.extend(self.repeats.expand(outcome))
        return self.ready.popleft()

    async def settle(self) -> None:
        """Report what completed, then cancel what is in flight and report each as it settles."""
        hook, repeats = self.hook, self.repeats
        while self.ready:
            hook(self.ready.popleft())
        for task in self.items:
            task.cancel()
        for task, item in self.items.items():
            # aresend_one reports its own cancellation as "unknown"; a task cancelled before it
            # started is reported the same way.
            try:
                outcome = await asyncio.shield(task)
            except asyncio.CancelledError:
                outcome = cancelled(self.provider, item)
            for each in repeats.expand(outcome):
                hook(each)
