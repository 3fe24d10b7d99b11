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
import queue
from collections.abc import (
    AsyncIterable,
    AsyncIterator,
    Generator,
    Iterable,
    Iterator,
    Mapping,
)
from concurrent.futures import Future, ThreadPoolExecutor

import attrs

from ._outcome import (
    Ledgered,
    Outcome,
    OutcomeHook,
    OutcomeStatus,
    aresend_one,
    cancelled,
    resend_one,
    user_id_of,
)
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
        held = self.in_flight.get(user_id_of(item))
        if held is not None:
            held.append(item)
            return True
        self.in_flight[user_id_of(item)] = []
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
    ledgered = None if ledger is None else Ledgered(ledger, provider, run, retry_unknown)
    return _resend_many(provider, iter(invitees), concurrency, _Hook(on_outcome), ledgered)


def _resend_many(
    provider: InviteProvider,
    source: Iterator[Invitee | str],
    concurrency: int,
    hook: _Hook,
    ledgered: Ledgered | None,
) -> Generator[Outcome, None, None]:
    # Each resend hands its finished future to a queue: taking the next outcome costs the same
    # at any concurrency (waiting on every pending future at once costs one lock per future).
    finished: queue.SimpleQueue[Future[Outcome]] = queue.SimpleQueue()
    ready: collections.deque[Outcome] = collections.deque()  # completed, not yet reported
    repeats = _Repeats(ledgered is not None)
    executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="invites")
    in_flight = 0
    exhausted = False
    try:
        while True:
            while not ready and not exhausted and hook.error is None and in_flight < concurrency:
                try:
                    item = next(source)
                except StopIteration:
                    exhausted = True
                    break
                if not repeats.hold(item):
                    executor.submit(resend_one, provider, item, ledgered).add_done_callback(
                        finished.put
                    )
                    in_flight += 1
            if not in_flight and not ready:
                break
            if not ready:
                future = finished.get()
                in_flight -= 1
                ready.extend(repeats.expand(future.result()))
            outcome = ready.popleft()
            hook(outcome)
            yield outcome
    finally:
        _drain(ready, finished, in_flight, repeats, hook, executor, ledgered)
    if hook.error is not None:
        raise hook.error


def _drain(
    ready: collections.deque[Outcome],
    finished: queue.SimpleQueue[Future[Outcome]],
    in_flight: int,
    repeats: _Repeats,
    hook: _Hook,
    executor: ThreadPoolExecutor,
    ledgered: Ledgered | None,
) -> None:
    """Hand the outcomes completed but not yet reported to on_outcome, then those of the
    ``in_flight`` resends as each finishes (the consumer may have stopped early, or the input
    raised); then wait until the ledger holds every outcome."""
    try:
        while ready:
            hook(ready.popleft())
        for _ in range(in_flight):
            for outcome in repeats.expand(finished.get().result()):
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
    ledgered = None if ledger is None else Ledgered(ledger, provider, run, retry_unknown)
    hook = _Hook(on_outcome)
    source = _aiter(invitees)
    items: dict[asyncio.Task[Outcome], Invitee | str] = {}
    # Each task hands itself over when done: as with threads, no wait on every task at once.
    finished: asyncio.Queue[asyncio.Task[Outcome]] = asyncio.Queue()
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
                    task.add_done_callback(finished.put_nowait)
                    items[task] = item
            if not items and not ready:
                break
            if not ready:
                task = await finished.get()
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
            outcome = cancelled(provider, item)
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
