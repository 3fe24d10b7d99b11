"""A bounded soak: 1,000 resends through a faulty sandbox over a real socket, async and threaded.

A seeded 30 % of resend requests draw a fault (every kind but ``SLOW``). Whatever happens, each
invitee gets exactly one outcome, nobody gets two emails, every ``sent`` is one email, every
``failed`` is none, and every ``unknown`` is explained by the fault that ended it. Waits are on a
fake clock, so the run takes seconds. ``pytest -m soak -s`` shows a one-line summary per driver.
"""

from __future__ import annotations

import asyncio
import collections
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from _support.vendors import vendor_config

import invites
from invites import (
    ConnectionFailed,
    Invitee,
    OutcomeUnknown,
    ProviderUnavailable,
    RateLimited,
    UnexpectedResponse,
)
from invites.bulk import Outcome
from invites.sandbox import Fault, RunningSandbox, Sandbox, serve

pytestmark = pytest.mark.soak

RESENDS = 1000
CONCURRENCY = 16
FAULT_RATE = 0.3
SEED = 20251024
FAULTS = tuple(fault for fault in Fault if fault is not Fault.SLOW)
#: Faults after which the vendor has acted although the client saw no usable answer.
ACTED = {Fault.DROP_AFTER}


class FakeTime:
    """A monotonic clock that moves only when a resend sleeps; safe across threads and tasks."""

    def __init__(self) -> None:
        self.now = 1000.0
        self.waits = 0
        self._lock = threading.Lock()

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self._lock:
            self.waits += 1
            self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)
        await asyncio.sleep(0)


@pytest.fixture
def faulty() -> Iterator[RunningSandbox]:
    sandbox = Sandbox(fault_rate=FAULT_RATE, seed=SEED, faults=FAULTS, retry_after=1)
    with serve(sandbox) as running:
        yield running


def tenant_users(sandbox: Sandbox) -> list[str]:
    """RESENDS invitable tenant-API users, added to the sandbox's seeded ones."""
    ids = [str(uuid.UUID(int=n, version=4)) for n in range(1, RESENDS + 1)]
    sandbox.add_users("tenant_api", ids)
    return ids


def ecosuite_users(sandbox: Sandbox) -> list[Invitee]:
    """RESENDS manageable Ecosuite users, added to the sandbox's seeded ones."""
    ids = [f"soak-user-{n:04d}" for n in range(1, RESENDS + 1)]
    sandbox.add_users("ecosuite", ids)
    return [
        Invitee(user_id=i, email="soak@example.com", first_name="S", last_name="T") for i in ids
    ]


def provider_for(vendor: str, running: RunningSandbox, fake: FakeTime) -> invites.BaseProvider:
    configured = invites.from_config(vendor_config(vendor, running.url))
    return type(configured)(
        configured.settings, clock=fake.clock, sleep=fake.sleep, async_sleep=fake.async_sleep
    )


def check(
    label: str,
    outcomes: list[Outcome],
    user_ids: list[str],
    sandbox: Sandbox,
    max_attempts: int,
    seconds: float,
    fake: FakeTime,
) -> None:
    """Assert the delivery invariants over a finished run and print its summary line."""
    emails = sandbox.emails_snapshot()
    faults: dict[str, list[Fault]] = collections.defaultdict(list)
    for user_id, fault in sandbox.fault_log:
        faults[user_id].append(fault)
    requests = collections.Counter(r.path.split("/")[-2] for r in sandbox.requests)

    # Exactly one outcome per invitee.
    assert sorted(o.user_id for o in outcomes) == sorted(user_ids)
    # Nobody was sent two emails, and only invitees were sent any.
    assert set(emails) <= set(user_ids)
    assert set(emails.values()) <= {1}
    # The run met every kind of fault.
    assert {f for fs in faults.values() for f in fs} == set(FAULTS)

    for outcome in outcomes:
        user_id = outcome.user_id
        last = faults[user_id][-1] if faults[user_id] else None
        # Every request either drew a fault or was the one that succeeded.
        assert requests[user_id] == len(faults[user_id]) + (outcome.status == "sent")
        if outcome.status == "sent":
            assert emails.get(user_id) == 1
            continue
        error: Any = outcome.error
        assert error.attempts == requests[user_id] <= max_attempts
        if outcome.status == "failed":
            assert isinstance(error, ConnectionFailed | RateLimited | ProviderUnavailable)
            assert emails.get(user_id, 0) == 0
        else:
            assert outcome.status == "unknown"
            assert isinstance(error, OutcomeUnknown | UnexpectedResponse)
            assert emails.get(user_id, 0) == (1 if last in ACTED else 0)

    counts = collections.Counter(o.status for o in outcomes)
    sent = counts["sent"]
    errors = collections.Counter(type(o.error).__name__ for o in outcomes if o.error is not None)
    breakdown = ", ".join(f"{name} {count}" for name, count in sorted(errors.items()))
    assert sum(emails.values()) == sent + sum(
        1 for o in outcomes if o.status == "unknown" and faults[o.user_id][-1] in ACTED
    )
    print(
        f"\nsoak[{label}]: {len(outcomes)} resends, concurrency {CONCURRENCY}, "
        f"fault_rate {FAULT_RATE}, seed {SEED}: sent={sent} failed={counts['failed']} "
        f"unknown={counts['unknown']}; errors: {breakdown}; "
        f"emails={sum(emails.values())}; "
        f"requests={sandbox.request_count} faults={len(sandbox.fault_log)} "
        f"waits={fake.waits}; {seconds:.1f} s"
    )


def timed(run: Callable[[], list[Outcome]]) -> tuple[list[Outcome], float]:
    started = time.perf_counter()
    outcomes = run()
    return outcomes, time.perf_counter() - started


def test_soak_async(faulty: RunningSandbox) -> None:
    user_ids = tenant_users(faulty.sandbox)
    fake = FakeTime()
    provider = provider_for("tenant_api", faulty, fake)

    async def go() -> list[Outcome]:
        async with provider:
            return [
                o async for o in invites.aresend_many(provider, user_ids, concurrency=CONCURRENCY)
            ]

    outcomes, seconds = timed(lambda: asyncio.run(go()))

    check("async, tenant_api", outcomes, user_ids, faulty.sandbox, 3, seconds, fake)


def test_soak_threads(faulty: RunningSandbox) -> None:
    invitees = ecosuite_users(faulty.sandbox)
    fake = FakeTime()
    provider = provider_for("ecosuite", faulty, fake)

    def go() -> list[Outcome]:
        with provider:
            return list(invites.resend_many(provider, invitees, concurrency=CONCURRENCY))

    outcomes, seconds = timed(go)

    user_ids = [i.user_id for i in invitees]
    check("threads, ecosuite", outcomes, user_ids, faulty.sandbox, 3, seconds, fake)
