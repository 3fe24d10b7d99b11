"""The bulk runner: one outcome per invitee, lazy input, bounded concurrency, clean stops.

Concurrency is observed with barriers and events, never with sleeps: a resend that must stay in
flight waits on an event the test controls.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections import Counter
from collections.abc import AsyncGenerator, AsyncIterator, Callable, Iterable, Iterator
from typing import Any, cast

import pytest
from _support.vendors import vendor_config

import invites
import invites.bulk
from invites import (
    AlreadyVerified,
    InvalidInvitee,
    Invitee,
    OutcomeUnknown,
    RateLimited,
    ResendResult,
    UnexpectedResponse,
    UserNotFound,
)
from invites.sandbox import (
    TENANT_USER_COOLDOWN,
    TENANT_USER_INVITED,
    TENANT_USER_INVITED_2,
    TENANT_USER_UNKNOWN,
    TENANT_USER_VERIFIED,
    Fault,
    RunningSandbox,
)
from invites.testing import FakeProvider

MODES = ("sync", "async")


class Source:
    """An input that records what the runner pulled from it, pulling lazily from `items`."""

    def __init__(self, items: Iterable[Any]) -> None:
        self.items = items
        self.pulled: list[Any] = []

    def __iter__(self) -> Iterator[Any]:
        for item in self.items:
            self.pulled.append(item)
            yield item


def ids(count: int) -> Iterator[str]:
    return (f"u-{index}" for index in range(count))


def run(
    mode: str,
    provider: Any,
    invitees: Iterable[Any],
    *,
    concurrency: int = 8,
    on_outcome: Callable[[invites.Outcome], None] | None = None,
) -> list[invites.Outcome]:
    """Every outcome the runner yields, through the sync or the async runner; then close."""
    if mode == "sync":
        with contextlib.closing(provider):
            return list(
                invites.resend_many(
                    provider, invitees, concurrency=concurrency, on_outcome=on_outcome
                )
            )

    async def collect() -> list[invites.Outcome]:
        stream = invites.aresend_many(
            provider, invitees, concurrency=concurrency, on_outcome=on_outcome
        )
        try:
            return [outcome async for outcome in stream]
        finally:
            await provider.aclose()

    return asyncio.run(collect())


def sent(user_id: str) -> ResendResult:
    return ResendResult(provider="fake", user_id=user_id, message="sent")


# -- exactly one outcome per invitee ---------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_every_invitee_gets_exactly_one_outcome_under_mixed_results(mode: str) -> None:
    def crash(invitee: Invitee) -> ResendResult:
        raise RuntimeError("a plug-in bug")

    fake = FakeProvider(
        {
            "verified": AlreadyVerified("already verified"),
            "missing": UserNotFound("no such user"),
            "lost": OutcomeUnknown("read timeout after sending"),
            "slow-down": RateLimited("too many requests", retry_after=30),
            "garbled": UnexpectedResponse("not JSON", status_code=200),
            "refused-garbled": UnexpectedResponse("not JSON", status_code=500),
            "crash": crash,
        }
    )
    items: list[Any] = [
        "ok-1",
        Invitee(user_id="ok-2", email="a@example.com"),
        "verified",
        "missing",
        "lost",
        "slow-down",
        "garbled",
        "refused-garbled",
        "crash",
        "..",  # an unsafe id: refused before anything is sent
        42,  # not an invitee at all
    ]
    source = Source(items)
    hooked: list[invites.Outcome] = []

    outcomes = run(mode, fake, source, concurrency=3, on_outcome=hooked.append)

    by_id = {outcome.user_id: outcome for outcome in outcomes}
    assert len(outcomes) == len(items) == len(by_id)
    assert sorted(map(id, hooked)) == sorted(map(id, outcomes))
    statuses = {user_id: outcome.status for user_id, outcome in by_id.items()}
    assert statuses == {
        "ok-1": "sent",
        "ok-2": "sent",
        "verified": "already_verified",
        "missing": "failed",
        "lost": "unknown",
        "slow-down": "failed",
        "garbled": "unknown",  # accepted (2xx) but unreadable: it may have been sent
        "refused-garbled": "failed",
        "crash": "failed",
        "..": "failed",
        "42": "failed",
    }
    assert by_id["ok-1"].result == sent("ok-1")
    assert by_id["ok-1"].error is None
    assert by_id["ok-2"].invitee == items[1]
    assert type(by_id["crash"].error) is RuntimeError
    assert isinstance(by_id[".."].error, InvalidInvitee)
    assert isinstance(by_id["42"].error, TypeError)
    assert by_id["42"].invitee is None
    assert [o.ok for o in outcomes].count(True) == 3
    # The unsafe id and the non-invitee never reached the provider.
    expected_calls = ["ok-1", "ok-2", "verified", "missing", "lost", "slow-down", "garbled"]
    expected_calls += ["refused-garbled", "crash"]
    assert sorted(fake.calls) == sorted(expected_calls)


@pytest.mark.parametrize("mode", MODES)
def test_mixed_outcomes_through_the_sandbox(mode: str, server: RunningSandbox) -> None:
    sandbox = server.sandbox
    dropped_after_sending = TENANT_USER_INVITED_2
    sandbox.inject(dropped_after_sending, Fault.DROP_AFTER)
    bad_gateway = "3f1a7c1e-1111-4222-8333-444455556666"
    sandbox.inject(bad_gateway, Fault.BAD_GATEWAY)
    provider = invites.from_config(vendor_config("tenant_api", server.url))
    items = [
        TENANT_USER_INVITED,
        TENANT_USER_VERIFIED,
        TENANT_USER_UNKNOWN,
        TENANT_USER_COOLDOWN,
        dropped_after_sending,
        bad_gateway,
        "not-a-uuid",
    ]
    hooked: list[invites.Outcome] = []
    outcomes = run(mode, provider, Source(items), concurrency=4, on_outcome=hooked.append)

    statuses = {o.user_id: o.status for o in outcomes}
    assert len(outcomes) == len(hooked) == len(items)
    assert statuses == {
        TENANT_USER_INVITED: "sent",
        TENANT_USER_VERIFIED: "already_verified",
        TENANT_USER_UNKNOWN: "failed",
        TENANT_USER_COOLDOWN: "failed",
        dropped_after_sending: "unknown",
        bad_gateway: "unknown",
        "not-a-uuid": "failed",
    }
    errors = {o.user_id: type(o.error).__name__ for o in outcomes if o.error is not None}
    assert errors[TENANT_USER_UNKNOWN] == "UserNotFound"
    assert errors[dropped_after_sending] == "OutcomeUnknown"
    assert errors["not-a-uuid"] == "InvalidInvitee"
    # The dropped answer hid an email that did go out; nothing was sent twice.
    assert sandbox.emails_snapshot() == {TENANT_USER_INVITED: 1, dropped_after_sending: 1}
    resends = [r for r in sandbox.requests if r.method == "POST"]
    assert len(resends) == len(items) - 1  # the malformed id never left the process


# -- early stops -----------------------------------------------------------------------------


def test_breaking_early_accounts_for_every_pulled_input_once() -> None:
    release = threading.Event()

    def held(invitee: Invitee) -> ResendResult:
        release.wait(timeout=10)
        return sent(invitee.user_id)

    quick = {f"u-{index}" for index in range(3)}
    fake = FakeProvider({f"u-{index}": held for index in range(3, 50)})
    source = Source(ids(10**6))
    hooked: list[invites.Outcome] = []
    yielded: list[invites.Outcome] = []

    for outcome in invites.resend_many(fake, source, concurrency=4, on_outcome=hooked.append):
        yielded.append(outcome)
        if len(yielded) == 2:
            release.set()  # in-flight resends finish after the stop and reach on_outcome
            break

    pulled = Counter(source.pulled)
    assert all(count == 1 for count in pulled.values())
    assert Counter(o.user_id for o in hooked) == pulled
    assert {o.user_id for o in yielded} <= quick
    assert all(o in hooked for o in yielded)
    assert len(source.pulled) <= len(yielded) + 4
    assert all(o.status == "sent" for o in hooked)
    assert sorted(fake.calls) == sorted(source.pulled)


def test_outcomes_completed_together_reach_on_outcome_after_an_early_stop() -> None:
    # Several resends finish before the runner waits: the consumer takes one and stops; the
    # others must still be reported.
    finished = threading.Semaphore(0)
    release = threading.Event()

    def quick(invitee: Invitee) -> ResendResult:
        finished.release()
        return sent(invitee.user_id)

    def held(invitee: Invitee) -> ResendResult:
        release.wait(timeout=10)
        return sent(invitee.user_id)

    def source() -> Iterator[str]:
        yield from ("u-0", "u-1", "u-2")
        for _ in range(3):  # all three are done before the runner waits for an outcome
            assert finished.acquire(timeout=10)
        yield "u-held"
        yield "u-never"

    hooked: list[invites.Outcome] = []
    fake = FakeProvider({"u-0": quick, "u-1": quick, "u-2": quick, "u-held": held})
    stream = invites.resend_many(fake, source(), concurrency=4, on_outcome=hooked.append)
    first = next(stream)
    release.set()
    stream.close()

    assert first.user_id in {"u-0", "u-1", "u-2"}
    assert sorted(o.user_id for o in hooked) == ["u-0", "u-1", "u-2", "u-held"]


def test_an_input_that_raises_still_reports_the_resends_in_flight() -> None:
    release = threading.Event()

    def held(invitee: Invitee) -> ResendResult:
        release.wait(timeout=10)
        return sent(invitee.user_id)

    def source() -> Iterator[str]:
        yield "u-0"
        yield "u-1"
        release.set()
        raise OSError("the input file went away")

    hooked: list[invites.Outcome] = []
    fake = FakeProvider({"u-0": held, "u-1": held})
    with pytest.raises(OSError, match="went away"):
        list(invites.resend_many(fake, source(), concurrency=4, on_outcome=hooked.append))
    assert sorted(o.user_id for o in hooked) == ["u-0", "u-1"]
    assert all(o.status == "sent" for o in hooked)


class GatedAsyncProvider:
    """Answers `quick` ids at once; every other resend waits until cancelled."""

    name = "gated"

    def __init__(self, quick: set[str], in_flight_target: int) -> None:
        self.quick = quick
        self.waiting = 0
        self.cancelled: list[str] = []
        self.in_flight_target = in_flight_target
        self.all_waiting = asyncio.Event()

    def resend_invite(self, invitee: Invitee | str) -> ResendResult:
        raise NotImplementedError

    async def aresend_invite(self, invitee: Invitee | str) -> ResendResult:
        user_id = invitee.user_id if isinstance(invitee, Invitee) else invitee
        if user_id in self.quick:
            return sent(user_id)
        self.waiting += 1
        if self.waiting == self.in_flight_target:
            self.all_waiting.set()
        try:
            await asyncio.Event().wait()  # never set: only cancellation ends it
        except asyncio.CancelledError:
            self.cancelled.append(user_id)
            raise
        raise AssertionError("unreachable")

    def close(self) -> None:
        pass

    async def aclose(self) -> None:
        pass


def test_cancelling_the_consuming_task_reports_in_flight_resends_unknown() -> None:
    source = Source(ids(10**6))
    hooked: list[invites.Outcome] = []
    yielded: list[invites.Outcome] = []

    async def scenario() -> None:
        provider = GatedAsyncProvider({"u-0", "u-1", "u-2"}, in_flight_target=4)

        async def consume() -> None:
            async for outcome in invites.aresend_many(
                provider, source, concurrency=4, on_outcome=hooked.append
            ):
                yielded.append(outcome)

        consumer = asyncio.create_task(consume())
        await provider.all_waiting.wait()
        consumer.cancel()
        with pytest.raises(asyncio.CancelledError):
            await consumer
        assert sorted(provider.cancelled) == ["u-3", "u-4", "u-5", "u-6"]
        assert asyncio.all_tasks() == {asyncio.current_task()}

    asyncio.run(scenario())

    assert source.pulled == [f"u-{index}" for index in range(7)]
    assert Counter(o.user_id for o in hooked) == Counter(source.pulled)
    assert sorted(o.user_id for o in yielded) == ["u-0", "u-1", "u-2"]
    assert all(o in hooked for o in yielded)
    unknown = {o.user_id: o for o in hooked if o.status == "unknown"}
    assert sorted(unknown) == ["u-3", "u-4", "u-5", "u-6"]
    assert all(isinstance(o.error, OutcomeUnknown) for o in unknown.values())


def test_an_async_consumer_stopping_early_settles_in_flight_resends_on_close() -> None:
    source = Source(ids(10**6))
    hooked: list[invites.Outcome] = []

    async def scenario() -> list[invites.Outcome]:
        provider = GatedAsyncProvider({"u-0", "u-1"}, in_flight_target=3)
        taken = []
        stream = _closable(
            invites.aresend_many(provider, source, concurrency=3, on_outcome=hooked.append)
        )
        async with contextlib.aclosing(stream):
            async for outcome in stream:
                taken.append(outcome)
                if len(taken) == 2:
                    break
        assert asyncio.all_tasks() == {asyncio.current_task()}
        return taken

    taken = asyncio.run(scenario())

    assert [o.status for o in taken] == ["sent", "sent"]
    assert Counter(o.user_id for o in hooked) == Counter(source.pulled)
    assert [o.status for o in hooked].count("unknown") == len(source.pulled) - 2


# -- lazy input, bounded concurrency ---------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_a_huge_input_is_pulled_lazily(mode: str) -> None:
    source = Source(ids(10**6))
    fake = FakeProvider()
    hooked: list[invites.Outcome] = []

    if mode == "sync":
        stream = invites.resend_many(fake, source, concurrency=4, on_outcome=hooked.append)
        taken = list(itertools.islice(stream, 5))
        stream.close()
    else:

        async def take_five() -> list[invites.Outcome]:
            stream = _closable(
                invites.aresend_many(fake, source, concurrency=4, on_outcome=hooked.append)
            )
            async with contextlib.aclosing(stream):
                return [outcome async for outcome in _first(stream, 5)]

        taken = asyncio.run(take_five())

    assert len(taken) == 5
    assert 5 <= len(source.pulled) <= 5 + 4
    assert Counter(o.user_id for o in hooked) == Counter(source.pulled)


async def _first(stream: AsyncIterator[invites.Outcome], count: int) -> AsyncIterator[Any]:
    async for outcome in stream:
        yield outcome
        count -= 1
        if count == 0:
            return


class InFlightMeter:
    """Counts resends in flight; calls rendezvous in groups of `concurrency`.

    Each group's barrier trips only when `concurrency` resends are inside at once, which shows the
    limit is reached. `pull_overruns` records every input pulled while the runner already had
    `concurrency` resends unfinished, which would break the limit.
    """

    def __init__(self, concurrency: int) -> None:
        self.concurrency = concurrency
        self.lock = threading.Lock()
        self.active = 0
        self.max_active = 0
        self.pulled = 0
        self.finished = 0
        self.pull_overruns: list[int] = []

    def source(self, count: int) -> Iterator[str]:
        for index in range(count):
            with self.lock:
                if self.pulled - self.finished >= self.concurrency:
                    self.pull_overruns.append(index)
                self.pulled += 1
            yield f"u-{index}"

    def enter(self) -> None:
        with self.lock:
            self.active += 1
            self.max_active = max(self.max_active, self.active)

    def leave(self) -> None:
        with self.lock:
            self.active -= 1
            self.finished += 1


def test_sync_runner_never_exceeds_its_concurrency() -> None:
    meter = InFlightMeter(concurrency=4)
    barrier = threading.Barrier(4, timeout=10)

    def rendezvous(invitee: Invitee) -> ResendResult:
        meter.enter()
        try:
            barrier.wait()
        finally:
            meter.leave()
        return sent(invitee.user_id)

    count = 40
    fake = FakeProvider({f"u-{index}": rendezvous for index in range(count)})
    outcomes = list(invites.resend_many(fake, meter.source(count), concurrency=4))

    assert [o.status for o in outcomes] == ["sent"] * count
    assert meter.max_active == 4
    assert meter.pull_overruns == []


def test_async_runner_never_exceeds_its_concurrency() -> None:
    meter = InFlightMeter(concurrency=4)
    count = 40

    class Rendezvous:
        name = "rendezvous"

        def __init__(self) -> None:
            self.barrier = asyncio.Barrier(4)

        def resend_invite(self, invitee: Invitee | str) -> ResendResult:
            raise NotImplementedError

        async def aresend_invite(self, invitee: Invitee | str) -> ResendResult:
            assert isinstance(invitee, Invitee)
            meter.enter()
            try:
                async with asyncio.timeout(10):
                    await self.barrier.wait()
            finally:
                meter.leave()
            return sent(invitee.user_id)

        def close(self) -> None:
            pass

        async def aclose(self) -> None:
            pass

    async def scenario() -> list[invites.Outcome]:
        provider = Rendezvous()
        return [o async for o in invites.aresend_many(provider, meter.source(count), concurrency=4)]

    outcomes = asyncio.run(scenario())

    assert [o.status for o in outcomes] == ["sent"] * count
    assert meter.max_active == 4
    assert meter.pull_overruns == []


@pytest.mark.parametrize("mode", MODES)
def test_the_async_runner_takes_an_async_iterable_and_sync_takes_any_iterable(mode: str) -> None:
    fake = FakeProvider()
    if mode == "sync":
        outcomes = list(invites.resend_many(fake, ["a", "b"]))
    else:

        async def names() -> AsyncIterator[str]:
            yield "a"
            yield "b"

        async def collect() -> list[invites.Outcome]:
            return [o async for o in invites.aresend_many(fake, names())]

        outcomes = asyncio.run(collect())
    assert sorted(o.user_id for o in outcomes) == ["a", "b"]


@pytest.mark.parametrize("concurrency", [0, -1, True, 1.5, "4"])
def test_concurrency_must_be_a_positive_integer(concurrency: Any) -> None:
    with pytest.raises(ValueError, match="concurrency"):
        invites.resend_many(FakeProvider(), ["a"], concurrency=concurrency)
    with pytest.raises(ValueError, match="concurrency"):
        asyncio.run(_first_outcome(FakeProvider(), concurrency))


def _closable(stream: AsyncIterator[invites.Outcome]) -> AsyncGenerator[invites.Outcome, None]:
    """``aresend_many``'s stream as the async generator it is, which ``aclosing`` takes."""
    assert isinstance(stream, AsyncGenerator)
    return cast("AsyncGenerator[invites.Outcome, None]", stream)


async def _first_outcome(provider: FakeProvider, concurrency: Any) -> invites.Outcome:
    return await anext(invites.aresend_many(provider, ["a"], concurrency=concurrency))
