"""The bulk runner under a ledger: settled invitees are not sent again, unknown ones are not
guessed at, repeats are accounted once each, and a failing hook loses no outcome.

In-flight resends are held on events the test controls, never on sleeps.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import subprocess
import sys
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest
from _support.vendors import vendor_config

import invites
from invites import (
    AlreadyVerified,
    ConnectionFailed,
    Invitee,
    OutcomeUnknown,
    ResendResult,
    UserNotFound,
)
from invites.ledger import Ledger, RecordKey, open_ledger, provider_identity
from invites.sandbox import RunningSandbox
from invites.testing import FakeProvider

MODES = ("sync", "async")


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    with open_ledger(tmp_path / "ledger.db") as opened:
        yield opened


def run(
    mode: str,
    provider: Any,
    invitees: Iterable[Any],
    *,
    concurrency: int = 4,
    on_outcome: Callable[[invites.Outcome], None] | None = None,
    **options: Any,
) -> list[invites.Outcome]:
    """Every outcome of one run through the sync or async runner."""
    if mode == "sync":
        return list(
            invites.resend_many(
                provider, invitees, concurrency=concurrency, on_outcome=on_outcome, **options
            )
        )

    async def collect() -> list[invites.Outcome]:
        stream = invites.aresend_many(
            provider, invitees, concurrency=concurrency, on_outcome=on_outcome, **options
        )
        return [outcome async for outcome in stream]

    return asyncio.run(collect())


def by_id(outcomes: list[invites.Outcome]) -> dict[str, invites.Outcome]:
    return {outcome.user_id: outcome for outcome in outcomes}


@pytest.mark.parametrize("mode", MODES)
def test_a_rerun_sends_nothing_the_run_settled(mode: str, ledger: Ledger) -> None:
    fake = FakeProvider({"u-verified": AlreadyVerified("already verified")})
    users = ["u-1", "u-2", "u-3", "u-verified"]

    first = by_id(run(mode, fake, users, ledger=ledger, run="monday"))
    again = by_id(run(mode, fake, users, ledger=ledger, run="monday"))

    assert sorted(fake.calls) == sorted(users)
    assert {o.status for o in first.values()} == {"sent", "already_verified"}
    assert not any(o.skipped for o in first.values())
    assert all(o.skipped for o in again.values())
    assert again["u-1"].status == "sent"
    assert again["u-1"].result == first["u-1"].result
    assert again["u-verified"].status == "already_verified"
    assert isinstance(again["u-verified"].error, AlreadyVerified)


@pytest.mark.parametrize("mode", MODES)
def test_another_run_name_sends_again(mode: str, ledger: Ledger) -> None:
    fake = FakeProvider()
    run(mode, fake, ["u-1"], ledger=ledger, run="monday")
    outcomes = run(mode, fake, ["u-1"], ledger=ledger, run="tuesday")

    assert fake.calls == ["u-1", "u-1"]
    assert not outcomes[0].skipped


@pytest.mark.parametrize("mode", MODES)
def test_a_failure_is_tried_again_by_a_rerun(mode: str, ledger: Ledger) -> None:
    fake = FakeProvider({"u-1": UserNotFound("not yet")})
    first = run(mode, fake, ["u-1"], ledger=ledger, run="r")
    del fake.results["u-1"]
    second = run(mode, fake, ["u-1"], ledger=ledger, run="r")

    assert first[0].status == "failed"
    assert second[0].status == "sent"
    assert not second[0].skipped
    assert fake.calls == ["u-1", "u-1"]
    record = ledger.get(RecordKey("r", provider_identity(fake), "u-1"))
    assert record is not None
    assert record.state == "sent"
    assert record.claims == 2


@pytest.mark.parametrize("mode", MODES)
def test_an_unknown_outcome_is_never_resent_unless_asked(mode: str, ledger: Ledger) -> None:
    fake = FakeProvider({"u-lost": OutcomeUnknown("read timeout after sending")})
    run(mode, fake, ["u-lost"], ledger=ledger, run="r")
    del fake.results["u-lost"]

    refused = run(mode, fake, ["u-lost"], ledger=ledger, run="r")
    assert fake.calls == ["u-lost"]
    assert refused[0].status == "unknown"
    assert refused[0].skipped
    assert isinstance(refused[0].error, OutcomeUnknown)
    assert "read timeout after sending" in str(refused[0].error)

    retried = run(mode, fake, ["u-lost"], ledger=ledger, run="r", retry_unknown=True)
    assert fake.calls == ["u-lost", "u-lost"]
    assert retried[0].status == "sent"
    assert retried[0].resent_unknown
    assert not retried[0].skipped


@pytest.mark.parametrize("mode", MODES)
def test_an_intent_without_outcome_reads_unknown(mode: str, ledger: Ledger) -> None:
    fake = FakeProvider()
    identity = provider_identity(fake)
    ledger.claim(RecordKey("r", identity, "u-crashed"), owner="gone", lease=0)
    ledger.claim(RecordKey("r", identity, "u-busy"), owner="elsewhere", lease=3600)

    outcomes = by_id(run(mode, fake, ["u-crashed", "u-busy"], ledger=ledger, run="r"))

    assert fake.calls == []
    assert {o.status for o in outcomes.values()} == {"unknown"}
    assert "recorded no outcome" in str(outcomes["u-crashed"].error)
    assert "in flight elsewhere" in str(outcomes["u-busy"].error)

    retried = by_id(
        run(mode, fake, ["u-crashed", "u-busy"], ledger=ledger, run="r", retry_unknown=True)
    )
    assert fake.calls == ["u-crashed"]  # a live lease is never taken over
    assert retried["u-crashed"].resent_unknown
    assert retried["u-busy"].status == "unknown"


class HeldUntilReleased:
    """Sends at once, except to ``held``: that resend waits until ``release()``."""

    name = "fake"

    def __init__(self, held: str) -> None:
        self.held = held
        self.calls: list[str] = []
        self._thread_release = threading.Event()
        self._async_release: asyncio.Event | None = None

    def release(self) -> None:
        self._thread_release.set()
        if self._async_release is not None:
            self._async_release.set()

    def resend_invite(self, invitee: Invitee | str) -> ResendResult:
        user_id = invites.models.as_invitee(invitee).user_id
        self.calls.append(user_id)
        if user_id == self.held:
            assert self._thread_release.wait(timeout=30)
        return ResendResult(provider=self.name, user_id=user_id, message="sent")

    async def aresend_invite(self, invitee: Invitee | str) -> ResendResult:
        user_id = invites.models.as_invitee(invitee).user_id
        self.calls.append(user_id)
        if user_id == self.held:
            self._async_release = asyncio.Event()
            await self._async_release.wait()
        return ResendResult(provider=self.name, user_id=user_id, message="sent")

    def close(self) -> None:
        pass

    async def aclose(self) -> None:
        pass


@pytest.mark.parametrize("mode", MODES)
def test_a_repeated_user_id_is_sent_once_and_each_row_accounted(mode: str, ledger: Ledger) -> None:
    provider = HeldUntilReleased("u-1")
    items = ["u-1", "u-2", "u-1", "u-3", "u-1", "u-2"]

    def hook(outcome: invites.Outcome) -> None:
        if outcome.user_id == "u-3":
            provider.release()  # u-1 stayed in flight while its repeats were read

    outcomes = run(mode, provider, items, ledger=ledger, run="r", on_outcome=hook)

    assert Counter(provider.calls) == {"u-1": 1, "u-2": 1, "u-3": 1}
    assert Counter(o.user_id for o in outcomes) == Counter(items)
    ones = [o for o in outcomes if o.user_id == "u-1"]
    assert [o.status for o in ones] == ["sent"] * 3
    assert sorted(o.skipped for o in ones) == [False, True, True]
    twos = [o for o in outcomes if o.user_id == "u-2"]
    assert sorted(o.skipped for o in twos) == [False, True]


@pytest.mark.parametrize("mode", MODES)
def test_an_unusable_ledger_sends_nothing(mode: str, tmp_path: Path) -> None:
    ledger = open_ledger(tmp_path / "ledger.db")
    ledger.close()
    fake = FakeProvider()

    outcomes = run(mode, fake, ["u-1", "u-2"], ledger=ledger, run="r")

    assert fake.calls == []
    assert {o.status for o in outcomes} == {"failed"}
    assert all(isinstance(o.error, ConnectionFailed) for o in outcomes)


def test_a_ledger_needs_a_run_name(ledger: Ledger) -> None:
    with pytest.raises(ValueError, match="run name"):
        invites.resend_many(FakeProvider(), ["u-1"], ledger=ledger)


# -- hooks --------------------------------------------------------------------------------------


@pytest.mark.parametrize("with_ledger", [False, True])
@pytest.mark.parametrize("mode", MODES)
def test_a_failing_hook_propagates_after_every_resend_in_flight_was_reported(
    mode: str, with_ledger: bool, tmp_path: Path
) -> None:
    fake = FakeProvider()
    hooked: list[invites.Outcome] = []
    options: dict[str, Any] = {}
    if with_ledger:
        options = {"ledger": open_ledger(tmp_path / "ledger.db"), "run": "r"}

    def hook(outcome: invites.Outcome) -> None:
        hooked.append(outcome)
        if len(hooked) in (1, 3):
            raise RuntimeError(f"hook failed on outcome {len(hooked)}")

    with pytest.raises(RuntimeError, match="hook failed on outcome 1"):
        run(mode, fake, (f"u-{n}" for n in range(1000)), concurrency=8, on_outcome=hook, **options)

    assert len(fake.calls) < 1000  # nothing new started after the hook failed
    assert sorted(o.user_id for o in hooked) == sorted(fake.calls)
    if with_ledger:
        ledger: Ledger = options["ledger"]
        records = list(ledger.records(run="r"))
        assert sorted(r.key.user_id for r in records) == sorted(fake.calls)
        assert {r.state for r in records} == {"sent"}
        ledger.close()


# -- cancellation -------------------------------------------------------------------------------


class HeldAsyncProvider:
    """Every resend waits until cancelled; ``all_waiting`` is set once ``target`` are waiting."""

    name = "held"

    def __init__(self, target: int) -> None:
        self.target = target
        self.waiting = 0
        self.all_waiting = asyncio.Event()

    def resend_invite(self, invitee: Invitee | str) -> ResendResult:
        raise NotImplementedError

    async def aresend_invite(self, invitee: Invitee | str) -> ResendResult:
        self.waiting += 1
        if self.waiting == self.target:
            self.all_waiting.set()
        await asyncio.Event().wait()
        raise AssertionError("unreachable")

    def close(self) -> None:
        pass

    async def aclose(self) -> None:
        pass


def test_a_cancelled_async_run_records_its_in_flight_resends_unknown(ledger: Ledger) -> None:
    hooked: list[invites.Outcome] = []

    async def scenario() -> None:
        provider = HeldAsyncProvider(target=4)

        async def consume() -> None:
            async for _ in invites.aresend_many(
                provider,
                (f"u-{n}" for n in range(100)),
                concurrency=4,
                on_outcome=hooked.append,
                ledger=ledger,
                run="r",
            ):
                pass

        consumer = asyncio.create_task(consume())
        await provider.all_waiting.wait()
        consumer.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await consumer

    asyncio.run(scenario())

    records = list(ledger.records(run="r"))
    assert sorted(r.key.user_id for r in records) == [f"u-{n}" for n in range(4)]
    assert {r.state for r in records} == {"unknown"}
    assert sorted(o.user_id for o in hooked) == [f"u-{n}" for n in range(4)]
    assert {o.status for o in hooked} == {"unknown"}


# -- through the sandbox ------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_a_rerun_through_the_sandbox_emails_no_one_twice(
    mode: str, server: RunningSandbox, ledger: Ledger
) -> None:
    users = [str(uuid.UUID(int=0xB000 + n)) for n in range(40)]
    server.sandbox.add_users("tenant_api", users)

    async def arun() -> list[invites.Outcome]:
        async with invites.from_config(vendor_config("tenant_api", server.url)) as provider:
            stream = invites.aresend_many(provider, users, concurrency=8, ledger=ledger, run="r")
            return [outcome async for outcome in stream]

    for _ in range(2):
        if mode == "async":
            outcomes = asyncio.run(arun())
        else:
            with invites.from_config(vendor_config("tenant_api", server.url)) as provider:
                outcomes = run(mode, provider, users, concurrency=8, ledger=ledger, run="r")

    assert all(o.skipped and o.status == "sent" for o in outcomes)
    assert server.sandbox.emails_snapshot() == dict.fromkeys(users, 1)


def test_an_intent_of_a_process_that_ended_says_so(ledger: Ledger) -> None:
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    fake = FakeProvider()
    owner = f"{socket.gethostname()}:{ended.stdout.strip()}:0123456789ab"
    ledger.claim(RecordKey("r", provider_identity(fake), "u-1"), owner=owner, lease=3600)

    (outcome,) = invites.resend_many(fake, ["u-1"], ledger=ledger, run="r")

    assert outcome.status == "unknown"
    assert "ended while it was in flight" in str(outcome.error)
    assert fake.calls == []
