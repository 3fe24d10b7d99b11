"""The ledger's contract, for every implementation, plus what only the SQLite file promises.

A new implementation joins the contract tests by adding a factory to ``LEDGERS``.
"""

from __future__ import annotations

import asyncio
import importlib.util
import math
import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from _support.services import fresh_postgres_url
from _support.vendors import vendor_config

import invites
from invites import ConfigurationError, ConnectionFailed, OutcomeUnknown, ResendResult, UserNotFound
from invites.ledger import (
    Claim,
    Ledger,
    RecordKey,
    dump_error,
    load_error,
    new_owner,
    open_ledger,
    provider_identity,
)
from invites.ledger._sqlite import SQLiteLedger
from invites.testing import FakeProvider

LEDGERS: dict[str, Callable[[Path], Ledger]] = {
    "sqlite": lambda tmp: open_ledger(tmp / "ledger.db"),
    "postgres": lambda tmp: open_ledger(fresh_postgres_url()),
}


@pytest.fixture(params=sorted(LEDGERS))
def ledger(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Ledger]:
    with LEDGERS[request.param](tmp_path) as opened:
        yield opened


def key(user_id: str = "u-1", run: str = "run-1") -> RecordKey:
    return RecordKey(run=run, identity='{"vendor":"fake"}', user_id=user_id)


def result(user_id: str = "u-1") -> ResendResult:
    return ResendResult(provider="fake", user_id=user_id, message="sent", request_id="req-1")


# -- claims -------------------------------------------------------------------------------------


def test_a_new_key_is_claimed_once(ledger: Ledger) -> None:
    first = ledger.claim(key(), owner="a", lease=60)
    again = ledger.claim(key(), owner="a", lease=60)
    other = ledger.claim(key(), owner="b", lease=60)

    assert first.granted
    assert first.previous is None
    assert first.record.state == "intent"
    assert first.record.owner == "a"
    assert first.record.claims == 1
    assert first.record.lease_until >= first.record.created_at + 59
    assert not again.granted
    assert not other.granted
    assert other.record.owner == "a"
    assert other.record.status() == "unknown"  # an intent with no outcome reads unknown


def test_keys_differ_by_run_identity_and_user(ledger: Ledger) -> None:
    base = key()
    variants = [
        base,
        RecordKey(run="run-2", identity=base.identity, user_id=base.user_id),
        RecordKey(run=base.run, identity='{"vendor":"other"}', user_id=base.user_id),
        RecordKey(run=base.run, identity=base.identity, user_id="u-2"),
    ]
    assert all(ledger.claim(k, owner="a", lease=60).granted for k in variants)


def test_settled_keys_are_never_claimed_again(ledger: Ledger) -> None:
    sent, verified = key("u-sent"), key("u-verified")
    for k in (sent, verified):
        ledger.claim(k, owner="a", lease=60)
    ledger.settle(sent, "sent", owner="a", result=result("u-sent"))
    ledger.settle(verified, "already_verified", owner="a")

    for k in (sent, verified):
        claim = ledger.claim(k, owner="b", lease=0, retry_unknown=True)
        assert not claim.granted
    record = ledger.get(sent)
    assert record is not None
    assert record.result == result("u-sent")


def test_a_failed_key_is_claimed_again_and_the_failure_kept_in_previous(ledger: Ledger) -> None:
    ledger.claim(key(), owner="a", lease=60)
    ledger.settle(key(), "failed", owner="a", error=UserNotFound("gone", provider="fake"))

    claim = ledger.claim(key(), owner="b", lease=60)

    assert claim.granted
    assert claim.record.state == "intent"
    assert claim.record.owner == "b"
    assert claim.record.claims == 2
    assert claim.record.error is None
    assert claim.previous is not None
    assert claim.previous.state == "failed"
    assert isinstance(claim.previous.error, UserNotFound)


def test_unknown_is_claimed_only_with_retry_unknown(ledger: Ledger) -> None:
    ledger.claim(key(), owner="a", lease=60)
    ledger.settle(key(), "unknown", owner="a", error=OutcomeUnknown("timed out"))

    refused = ledger.claim(key(), owner="b", lease=60)
    retried = ledger.claim(key(), owner="b", lease=60, retry_unknown=True)

    assert not refused.granted
    assert refused.record.status() == "unknown"
    assert retried.granted
    assert retried.previous is not None
    assert retried.previous.state == "unknown"


def test_a_live_intent_is_never_taken_over(ledger: Ledger) -> None:
    ledger.claim(key(), owner="a", lease=3600)

    claim = ledger.claim(key(), owner="b", lease=60, retry_unknown=True)

    assert not claim.granted
    assert claim.in_flight
    assert claim.record.in_flight(claim.record.created_at + 1)


def test_an_intent_whose_lease_ran_out_is_taken_over_only_with_retry_unknown(
    ledger: Ledger,
) -> None:
    ledger.claim(key(), owner="a", lease=0)

    refused = ledger.claim(key(), owner="b", lease=60)
    retried = ledger.claim(key(), owner="b", lease=60, retry_unknown=True)

    assert not refused.granted
    assert not refused.in_flight
    assert not refused.record.in_flight(refused.record.lease_until)
    assert retried.granted
    assert retried.record.owner == "b"
    assert retried.previous is not None
    assert retried.previous.owner == "a"


# -- outcomes -----------------------------------------------------------------------------------


def test_an_outcome_is_recorded_only_by_the_intent_holder(ledger: Ledger) -> None:
    ledger.claim(key(), owner="a", lease=60)

    assert ledger.settle(key(), "sent", owner="b", result=result()) is None
    assert ledger.settle(key("u-none"), "sent", owner="a", result=result()) is None
    settled = ledger.settle(key(), "sent", owner="a", result=result())
    twice = ledger.settle(key(), "failed", owner="a", error=UserNotFound("x"))

    assert settled is not None
    assert settled.state == "sent"
    assert settled.result == result()
    assert twice is None
    stored = ledger.get(key())
    assert stored is not None
    assert stored.state == "sent"


def test_a_person_settles_any_existing_record(ledger: Ledger) -> None:
    ledger.claim(key(), owner="a", lease=3600)

    settled = ledger.settle(key(), "failed", owner=None, error=OutcomeUnknown("checked: not sent"))
    missing = ledger.settle(key("u-none"), "sent", owner=None)

    assert settled is not None
    assert settled.state == "failed"
    assert missing is None
    assert ledger.claim(key(), owner="b", lease=60).granted  # failed: sent again by a rerun
    assert ledger.settle(key(), "sent", owner=None) is not None


def test_errors_and_results_survive_the_store(ledger: Ledger) -> None:
    error = UserNotFound(
        "no such user",
        provider="fake",
        user_id="u-1",
        status_code=404,
        vendor_code="not_found",
        request_id="req-9",
        attempts=2,
        details={"hint": "check the id"},
    )
    ledger.claim(key(), owner="a", lease=60)
    ledger.settle(key(), "failed", owner="a", error=error)

    stored = ledger.get(key())

    assert stored is not None
    assert isinstance(stored.error, UserNotFound)
    assert repr(stored.error) == repr(error)
    assert str(stored.error) == str(error)
    assert stored.error.details == {"hint": "check the id"}
    assert stored.error.attempts == 2


def test_a_foreign_exception_is_kept_as_an_invite_error() -> None:
    loaded = load_error(dump_error(KeyError("boom")))
    assert type(loaded) is invites.InviteError
    assert "KeyError" in str(loaded)
    assert "boom" in str(loaded)


def test_records_lists_by_run_and_user_oldest_first(ledger: Ledger) -> None:
    for user in ("u-1", "u-2", "u-3"):
        ledger.claim(key(user), owner="a", lease=60)
    ledger.claim(key("u-1", run="run-2"), owner="a", lease=60)

    assert [r.key.user_id for r in ledger.records(run="run-1")] == ["u-1", "u-2", "u-3"]
    assert [r.key.run for r in ledger.records(user_id="u-1")] == ["run-1", "run-2"]
    assert len(list(ledger.records())) == 4


# -- concurrency --------------------------------------------------------------------------------


def test_records_since_are_the_runs_records_written_at_or_after_it(ledger: Ledger) -> None:
    assert ledger.claim(key("u-1"), owner="a", lease=60).granted
    assert ledger.claim(key("u-2"), owner="a", lease=60).granted
    assert ledger.claim(key("u-3", run="run-2"), owner="a", lease=60).granted
    first, second = ledger.get(key("u-1")), ledger.get(key("u-2"))
    assert first is not None
    assert second is not None
    assert first.updated_at < second.updated_at  # two commits, one after the other
    since = second.updated_at

    written = list(ledger.records_since(run="run-1", since=since))
    later = list(ledger.records_since(run="run-1", since=math.nextafter(since, math.inf)))
    ledger.settle(key("u-1"), "sent", owner="a", result=result("u-1"))
    changed = list(ledger.records_since(run="run-1", since=since))

    assert written == [second]  # one written at ``since`` is kept; older ones and other runs not
    assert later == []
    assert [(record.key, record.state) for record in changed] == [
        (key("u-1"), "sent"),  # written again since: read again, oldest first
        (key("u-2"), "intent"),
    ]


def test_racing_threads_are_each_granted_a_key_once(ledger: Ledger) -> None:
    keys = [key(f"u-{n}") for n in range(200)]
    granted: list[list[RecordKey]] = [[] for _ in range(6)]
    start = threading.Barrier(6)

    def worker(index: int) -> None:
        start.wait()
        for k in keys:
            if ledger.claim(k, owner=f"w{index}", lease=60).granted:
                granted[index].append(k)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    everything = [k for part in granted for k in part]
    assert sorted(everything, key=str) == sorted(keys, key=str)


def test_racing_tasks_are_each_granted_a_key_once(ledger: Ledger) -> None:
    async def main() -> list[Claim]:
        async with asyncio.TaskGroup() as group:
            tasks = [
                group.create_task(ledger.aclaim(key(f"u-{n % 50}"), owner=f"t{n}", lease=60))
                for n in range(200)
            ]
        claims = [task.result() for task in tasks]
        for claim in claims:
            if claim.granted:
                await ledger.asettle(claim.record.key, "sent", owner=claim.record.owner)
        return claims

    claims = asyncio.run(main())

    assert sum(claim.granted for claim in claims) == 50
    stored = asyncio.run(ledger.aget(key("u-7")))
    assert stored is not None
    assert stored.state == "sent"


# -- opening ------------------------------------------------------------------------------------


def test_sqlite_urls_and_paths_open_the_same_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    with open_ledger("sqlite:///relative.db") as ledger:
        ledger.claim(key(), owner="a", lease=60)
    with open_ledger(f"sqlite:///{tmp_path}/relative.db") as ledger:
        assert ledger.get(key()) is not None
    with open_ledger(tmp_path / "relative.db") as ledger:
        assert ledger.get(key()) is not None


def test_unknown_schemes_and_missing_implementations_are_configuration_errors() -> None:
    with pytest.raises(ConfigurationError, match="unknown scheme 'mysql'"):
        open_ledger("mysql://localhost/db")
    if importlib.util.find_spec("invites.ledger._postgres") is None:
        with pytest.raises(ConfigurationError, match=r"postgresql://.*invites\[postgres\]"):
            open_ledger("postgresql://localhost/test")


def test_an_unusable_file_is_a_connection_failure(tmp_path: Path) -> None:
    with pytest.raises(ConnectionFailed, match="not usable"):
        open_ledger(tmp_path / "missing-dir" / "ledger.db")
    (tmp_path / "garbage.db").write_bytes(b"not a database" * 100)
    with pytest.raises(ConnectionFailed, match="not usable"):
        open_ledger(tmp_path / "garbage.db")


def test_a_closed_ledger_refuses_work(tmp_path: Path) -> None:
    ledger = open_ledger(tmp_path / "ledger.db")
    ledger.close()
    ledger.close()
    with pytest.raises(ConnectionFailed):
        ledger.claim(key(), owner="a", lease=60)


# -- identity -----------------------------------------------------------------------------------


def test_identity_is_the_vendor_base_url_and_tenant_never_the_token() -> None:
    url = "https://tenant.example"
    tenant_a = "0b8a3f5e-4b63-4c8e-9d8f-1c2b3a4d5e6f"
    tenant_b = "1c9b4a6f-5c74-4d9f-8e9a-2d3c4b5e6f70"

    def identity(base_url: str = url, **overrides: object) -> str:
        config = vendor_config("tenant_api", base_url, **overrides)
        with invites.from_config(config) as provider:
            return provider_identity(provider)

    same = identity(tenant_id=tenant_a)
    assert identity(tenant_id=tenant_a, token="test-token-not-real-2") == same
    assert identity(tenant_id=tenant_b) != same
    assert identity(tenant_id=tenant_a, base_url="https://other.example") != same
    assert "test-token" not in same
    assert tenant_a in same
    assert "tenant_api" in same


def test_identity_of_softwareone_includes_the_account() -> None:
    with invites.from_config(vendor_config("softwareone", "https://s1.example")) as provider:
        current = provider_identity(provider)
    other = vendor_config("softwareone", "https://s1.example", account_id="ACC-9999-0002")
    with invites.from_config(other) as provider:
        assert provider_identity(provider) != current


def test_a_plain_provider_is_identified_by_its_name() -> None:
    assert provider_identity(FakeProvider(name="plug")) == '{"vendor":"plug"}'


def test_owners_are_unique() -> None:
    assert len({new_owner() for _ in range(100)}) == 100


# -- SQLite: durability and processes -----------------------------------------------------------

_CHILD = textwrap.dedent(
    """
    import sys
    from invites.ledger import RecordKey, open_ledger
    path, owner, count, mode = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    ledger = open_ledger(path)
    print("ready", flush=True)
    sys.stdin.readline()
    for n in range(count):
        claim = ledger.claim(RecordKey("run", "id", f"u-{n}"), owner=owner, lease=60)
        if claim.granted:
            print(f"u-{n}", flush=True)
    if mode == "hang":
        print("done", flush=True)
        sys.stdin.readline()
    ledger.close()
    """
)


def _child(path: Path, owner: str, count: int, mode: str = "exit") -> subprocess.Popen[str]:
    process = subprocess.Popen(  # noqa: S603
        [sys.executable, "-c", _CHILD, str(path), owner, str(count), mode],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert process.stdout is not None
    assert process.stdout.readline() == "ready\n"
    return process


def test_two_processes_racing_are_each_granted_a_key_once(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    children = [_child(path, f"p{n}", 300) for n in range(2)]
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    outputs = [child.communicate(timeout=60)[0].split() for child in children]

    assert all(child.returncode == 0 for child in children)
    granted = outputs[0] + outputs[1]
    assert sorted(granted) == sorted(f"u-{n}" for n in range(300))


def test_a_claim_survives_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    child = _child(path, "killed", 20, mode="hang")
    assert child.stdin is not None
    assert child.stdout is not None
    child.stdin.write("go\n")
    child.stdin.flush()
    granted = [child.stdout.readline().strip() for _ in range(21)]
    assert granted[-1] == "done"
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=10)

    with SQLiteLedger(path) as ledger:
        records = list(ledger.records(run="run"))
    assert [r.key.user_id for r in records] == granted[:-1]
    assert {r.state for r in records} == {"intent"}
    assert {r.owner for r in records} == {"killed"}


def test_queued_outcomes_are_durable_after_flush(ledger: Ledger) -> None:
    keys = [key(f"u-{n}") for n in range(20)]
    for k in keys:
        assert ledger.claim(k, owner="a", lease=60).granted
        ledger.settle_soon(k, "sent", owner="a", result=result(k.user_id))
    ledger.settle_soon(key("u-none"), "sent", owner="a")  # no record: dropped, not raised
    ledger.flush()

    stored = [ledger.get(k) for k in keys]
    assert all(r is not None and r.state == "sent" for r in stored)
    assert ledger.get(key("u-none")) is None


def test_queued_outcomes_are_durable_after_close(tmp_path: Path) -> None:
    path = tmp_path / "ledger.db"
    with open_ledger(path) as ledger:
        ledger.claim(key(), owner="a", lease=60)
        ledger.settle_soon(key(), "unknown", owner="a", error=OutcomeUnknown("lost"))
    with open_ledger(path) as reopened:
        record = reopened.get(key())
    assert record is not None
    assert record.state == "unknown"
    assert isinstance(record.error, OutcomeUnknown)


def test_async_queued_outcomes_and_flush(ledger: Ledger) -> None:
    async def main() -> None:
        claim = await ledger.aclaim(key(), owner="a", lease=60)
        assert claim.granted
        await ledger.asettle_soon(key(), "already_verified", owner="a")
        await ledger.aflush()

    asyncio.run(main())
    record = ledger.get(key())
    assert record is not None
    assert record.state == "already_verified"


def test_processes_opening_one_new_sqlite_file_at_once_all_get_it(tmp_path: Path) -> None:
    # Switching a new file to WAL takes a lock SQLite may refuse at once rather than wait for.
    path = tmp_path / "new.db"
    script = textwrap.dedent(
        f"""
        import sys, time
        from invites.ledger import open_ledger
        start = float(sys.argv[1])
        while time.time() < start:
            pass
        with open_ledger({str(path)!r}) as ledger:
            print(len(list(ledger.records())))
        """
    )
    start = f"{time.time() + 1.5:.3f}"
    racers = [
        subprocess.Popen(  # noqa: S603
            [sys.executable, "-c", script, start], stdout=subprocess.PIPE, stderr=subprocess.PIPE
        )
        for _ in range(8)
    ]
    results = [racer.communicate(timeout=60) for racer in racers]
    failures = [
        err.decode() for racer, (_, err) in zip(racers, results, strict=True) if racer.returncode
    ]
    assert failures == []
    assert [out.strip() for out, _ in results] == [b"0"] * 8
