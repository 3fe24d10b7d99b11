"""Resend to many invitees with bounded concurrency, accounting for each exactly once.

Inputs are pulled lazily, at most ``concurrency`` resends are in flight, and every invitee pulled
from the input gives exactly one :class:`Outcome`, in completion order. An error for one invitee
never escapes: it becomes that invitee's outcome. When the consumer stops early (or the run is
cancelled), nothing new starts; resends already in flight finish (sync) or are cancelled and
reported ``unknown`` (async), and their outcomes go to ``on_outcome`` so none is lost.
"""

from __future__ import annotations

import asyncio
import itertools
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
from .errors import AlreadyVerified, OutcomeUnknown, UnexpectedResponse
from .models import Invitee, ResendResult, as_invitee

__all__ = ["Outcome", "OutcomeStatus", "aresend_many", "resend_many"]

OutcomeStatus: TypeAlias = Literal["sent", "already_verified", "failed", "unknown"]
OutcomeHook: TypeAlias = Callable[["Outcome"], None]


@attrs.frozen(kw_only=True)
class Outcome:
    """What became of one invitee.

    ``status`` is ``"sent"`` (``result`` set), ``"already_verified"``, ``"failed"`` (nothing was
    sent, or the vendor refused) or ``"unknown"`` (the invitation may or may not have gone out);
    ``error`` holds the exception for every status but ``"sent"``.
    """

    invitee: Invitee | None
    user_id: str
    status: OutcomeStatus
    result: ResendResult | None = None
    error: BaseException | None = None

    @property
    def ok(self) -> bool:
        """True when the invitee needs nothing more: sent or already verified."""
        return self.status in ("sent", "already_verified")


def _status(error: BaseException) -> OutcomeStatus:
    if isinstance(error, AlreadyVerified):
        return "already_verified"
    if isinstance(error, OutcomeUnknown | asyncio.CancelledError):
        return "unknown"
    if isinstance(error, UnexpectedResponse) and 200 <= (error.status_code or 0) < 300:
        return "unknown"  # the vendor accepted the request but its answer was unreadable
    return "failed"


def _user_id(item: object) -> str:
    if isinstance(item, Invitee):
        return item.user_id
    if isinstance(item, str | int):
        return str(item)  # a numeric id reads as itself
    # Anything else goes by its type's name: its repr could be long, or show what it holds.
    return f"<{type(item).__name__}>"


def _failed(item: object, error: BaseException) -> Outcome:
    invitee = item if isinstance(item, Invitee) else None
    return Outcome(invitee=invitee, user_id=_user_id(item), status=_status(error), error=error)


def _sent(invitee: Invitee, result: ResendResult) -> Outcome:
    return Outcome(invitee=invitee, user_id=invitee.user_id, status="sent", result=result)


def resend_one(provider: InviteProvider, item: Invitee | str) -> Outcome:
    """Resend to one invitee and return its outcome; never raises for the invitee's sake."""
    try:
        invitee = as_invitee(item)
        return _sent(invitee, provider.resend_invite(invitee))
    except Exception as exc:
        return _failed(item, exc)


async def aresend_one(provider: InviteProvider, item: Invitee | str) -> Outcome:
    """Async twin of :func:`resend_one`; a cancelled resend is reported ``unknown``."""
    try:
        invitee = as_invitee(item)
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


def _check_arguments(invitees: object, concurrency: int) -> None:
    if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
        raise ValueError(f"concurrency must be a positive integer, got {concurrency!r}")
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
) -> Generator[Outcome, None, None]:
    """Resend to every invitee on up to ``concurrency`` threads; yield outcomes as they complete.

    ``on_outcome`` sees every outcome as it completes, including those that finish after the
    consumer stopped iterating. Closing the generator (or leaving a ``for`` loop over it) waits
    for the resends in flight.
    """
    _check_arguments(invitees, concurrency)
    return _resend_many(provider, iter(invitees), concurrency, on_outcome)


def _resend_many(
    provider: InviteProvider,
    source: Iterator[Invitee | str],
    concurrency: int,
    on_outcome: OutcomeHook | None,
) -> Generator[Outcome, None, None]:
    pending: set[Future[Outcome]] = set()
    ready: list[Future[Outcome]] = []  # completed, not yet yielded
    executor = ThreadPoolExecutor(max_workers=concurrency, thread_name_prefix="invites")
    exhausted = False
    try:
        while True:
            while not exhausted and len(pending) < concurrency:
                try:
                    item = next(source)
                except StopIteration:
                    exhausted = True
                    break
                pending.add(executor.submit(resend_one, provider, item))
            if not pending:
                return
            done, pending = wait(pending, return_when=FIRST_COMPLETED)
            ready.extend(done)
            while ready:
                outcome = ready.pop().result()
                if on_outcome is not None:
                    on_outcome(outcome)
                yield outcome
    finally:
        # The consumer stopped early, or the input raised: hand the outcomes completed but not
        # yet yielded to on_outcome, then those of the resends in flight, as each finishes.
        try:
            for future in itertools.chain(ready, as_completed(pending)):
                outcome = future.result()
                if on_outcome is not None:
                    on_outcome(outcome)
        finally:
            executor.shutdown(wait=True)


async def aresend_many(
    provider: InviteProvider,
    invitees: Iterable[Invitee | str] | AsyncIterable[Invitee | str],
    *,
    concurrency: int = 8,
    on_outcome: OutcomeHook | None = None,
) -> AsyncIterator[Outcome]:
    """Async twin of :func:`resend_many`: up to ``concurrency`` tasks, outcomes as they complete.

    When the consumer stops or the run is cancelled, in-flight resends are cancelled and reported
    ``unknown`` to ``on_outcome`` (a request may already have reached the vendor). A consumer that
    may stop early should iterate inside ``contextlib.aclosing(...)``: an abandoned async generator
    is closed only when it is garbage-collected.
    """
    _check_arguments(invitees, concurrency)
    source = _aiter(invitees)
    items: dict[asyncio.Task[Outcome], Invitee | str] = {}
    exhausted = False
    try:
        while True:
            while not exhausted and len(items) < concurrency:
                try:
                    item = await anext(source)
                except StopAsyncIteration:
                    exhausted = True
                    break
                items[asyncio.create_task(aresend_one(provider, item))] = item
            if not items:
                return
            done, _ = await asyncio.wait(items, return_when=asyncio.FIRST_COMPLETED)
            for task in done:
                del items[task]
                outcome = task.result()
                if on_outcome is not None:
                    on_outcome(outcome)
                yield outcome
    finally:
        for task in items:
            task.cancel()
        for task, item in items.items():
            # aresend_one reports its own cancellation as "unknown"; a task cancelled before it
            # started is reported the same way.
            try:
                outcome = await asyncio.shield(task)
            except asyncio.CancelledError:
                outcome = _cancelled(provider, item)
            if on_outcome is not None:
                on_outcome(outcome)


async def _aiter(
    invitees: Iterable[Invitee | str] | AsyncIterable[Invitee | str],
) -> AsyncIterator[Invitee | str]:
    if isinstance(invitees, AsyncIterable):
        async for item in invitees:
            yield item
    else:
        for item in invitees:
            yield item
