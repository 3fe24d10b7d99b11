"""The PostgreSQL ledger against a real server: many processes, dropped connections, the schema.

The contract every ledger keeps runs in test_ledger.py; this module covers what only a shared
server adds. Each test works in a fresh schema (tests/_support/services.py). Skipped when PostgreSQL
is unreachable, unless INVITES_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import textwrap
import threading
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from _support.services import POSTGRES_URL, fresh_postgres_url, postgres_problem, require
from _support.vendors import vendor_config

import invites
from invites import ConnectionFailed
from invites.ledger import Ledger, Record, RecordKey, open_ledger
from invites.sandbox import RunningSandbox, Sandbox

pytestmark = pytest.mark.services

psycopg = pytest.importorskip("psycopg")


@pytest.fixture
def url() -> str:
    return fresh_postgres_url()


@pytest.fixture
def ledger(url: str) -> Iterator[Ledger]:
    with open_ledger(url) as opened:
        yield opened


def uuids(count: int) -> list[str]:
    return [str(uuid.uuid4()) for _ in range(count)]


# -- many processes, one run ---------------------------------------------------------------------

_RESENDER = textwrap.dedent(
    """
    import json, sys
    import invites
    from invites.ledger import open_ledger
    config, url, run = json.loads(sys.argv[1]), sys.argv[2], sys.argv[3]
    users = sys.stdin.readline().split()
    with invites.from_config(config) as provider, open_ledger(url) as ledger:
        print("ready", flush=True)
        sys.stdin.readline()
        for outcome in invites.resend_many(provider, users, concurrency=8, ledger=ledger, run=run):
            print(json.dumps([outcome.user_id, outcome.status, outcome.skipped]), flush=True)
    """
)


def _resender(
    config: dict[str, Any], url: str, run: str, users: list[str]
) -> subprocess.Popen[str]:
    process = subprocess.Popen(  # noqa: S603
        [sys.executable, "-c", _RESENDER, json.dumps(config), url, run],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    assert process.stdin is not None
    assert process.stdout is not None
    process.stdin.write(" ".join(users) + "\n")
    process.stdin.flush()
    assert process.stdout.readline() == "ready\n"
    return process


def test_four_processes_send_each_invitee_exactly_once(
    url: str, server: RunningSandbox, sandbox: Sandbox
) -> None:
    users = uuids(1000)
    sandbox.add_users("tenant_api", users)
    config = vendor_config("tenant_api", server.url)
    processes = [_resender(config, url, "monday", users) for _ in range(4)]
    for process in processes:  # released together: every invitee is raced for
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    outputs = [process.communicate(timeout=120)[0] for process in processes]

    assert [process.returncode for process in processes] == [0, 0, 0, 0]
    reports: dict[str, list[tuple[int, str, bool]]] = defaultdict(list)
    for index, output in enumerate(outputs):
        lines = [json.loads(line) for line in output.splitlines()]
        assert len(lines) == len(users)  # every process accounts for every invitee
        for user_id, status, skipped in lines:
            reports[user_id].append((index, status, skipped))
    assert sandbox.emails_snapshot() == dict.fromkeys(users, 1)
    for user_id in users:
        senders = [r for r in reports[user_id] if r[1] == "sent" and not r[2]]
        assert len(senders) == 1, (user_id, reports[user_id])
        others = [r for r in reports[user_id] if r is not senders[0]]
        assert len(others) == 3
        assert all(skipped for _, _, skipped in others)  # settled (or in flight) elsewhere
    senders_per_process = Counter(
        index for rows in reports.values() for index, status, skipped in rows if not skipped
    )
    assert sum(senders_per_process.values()) == len(users)
    with open_ledger(url) as ledger:
        states = Counter(record.state for record in ledger.records(run="monday"))
    assert states == {"sent": len(users)}


# -- connections killed mid-run ------------------------------------------------------------------


def _terminate(application_name: str) -> int:
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        rows = connection.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = %s",
            (application_name,),
        ).fetchall()
    return len(rows)


def drive(mode: str, provider: Any, users: list[str], **options: Any) -> None:
    """One bulk run through the sync or the async runner."""
    if mode == "sync":
        for _ in invites.resend_many(provider, users, concurrency=8, **options):
            pass
        return

    async def run() -> None:
        async for _ in invites.aresend_many(provider, users, concurrency=8, **options):
            pass

    asyncio.run(run())


def check_outcome(outcome: invites.Outcome, emails: int, record: Record | None) -> None:
    """An outcome and the ledger agree with the emails the sandbox counted."""
    if outcome.status == "sent":
        assert emails == 1
    elif outcome.status == "failed":  # the claim failed: nothing was sent
        assert emails == 0
        assert isinstance(outcome.error, ConnectionFailed)
        assert record is None or record.status() == "unknown"
    else:
        assert outcome.status == "unknown"
    if record is not None and record.state == "sent":
        assert emails == 1


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_killed_connections_never_send_twice_and_every_invitee_gets_one_outcome(
    mode: str, url: str, server: RunningSandbox, sandbox: Sandbox
) -> None:
    users = uuids(400)
    sandbox.add_users("tenant_api", users)
    application_name = f"invites-test-{uuid.uuid4().hex[:8]}"
    killable = f"{url}&application_name={application_name}"
    terminated: list[int] = []
    outcomes: list[invites.Outcome] = []

    def on_outcome(outcome: invites.Outcome) -> None:
        if len(outcomes) % 60 == 30:  # several times, while other resends are in flight
            terminated.append(_terminate(application_name))
        outcomes.append(outcome)

    config = vendor_config("tenant_api", server.url)
    with invites.from_config(config) as provider, open_ledger(killable) as ledger:
        drive(mode, provider, users, ledger=ledger, run="r", on_outcome=on_outcome)
        records = {record.key.user_id: record for record in ledger.records(run="r")}

    assert sum(terminated) > 0
    emails = sandbox.emails_snapshot()
    assert set(emails.values()) <= {1}
    assert sorted(outcome.user_id for outcome in outcomes) == sorted(users)
    for outcome in outcomes:
        check_outcome(outcome, emails.get(outcome.user_id, 0), records.get(outcome.user_id))

    # A rerun resends only what was never claimed; nothing whose email may have gone.
    with invites.from_config(config) as provider, open_ledger(url) as ledger:
        rerun = list(invites.resend_many(provider, users, concurrency=8, ledger=ledger, run="r"))
    emails = sandbox.emails_snapshot()
    assert set(emails.values()) <= {1}
    for outcome in rerun:
        if not outcome.skipped:
            assert outcome.status == "sent"


# -- the schema ----------------------------------------------------------------------------------


def test_many_processes_creating_the_schema_at_once_all_succeed(url: str) -> None:
    start = threading.Barrier(8)
    errors: list[BaseException] = []

    def open_it() -> None:
        start.wait()
        try:
            open_ledger(url).close()
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_it) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    with open_ledger(url) as ledger:
        assert ledger.claim(RecordKey("r", "i", "u"), owner="a", lease=60).granted


def _schema(url: str) -> str:
    return url.rsplit("schema=", 1)[1]


def _idle_poll_plan(url: str, run: str, since: float) -> str:
    from psycopg import sql

    from invites.ledger._postgres_sql import TABLE, select_records

    statement, values = select_records(
        sql.Identifier(_schema(url), TABLE), run=run, user_id=None, since=since
    )
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        rows = connection.execute(sql.SQL("EXPLAIN ") + statement, values).fetchall()
    return "\n".join(row[0] for row in rows)


def test_a_ledger_created_before_the_run_index_gets_it_and_keeps_its_records(url: str) -> None:
    from psycopg import sql

    from invites.ledger._postgres_sql import RUN_INDEX

    keys = [RecordKey("r", "i", f"u-{n}") for n in range(3)]
    with open_ledger(url) as ledger:
        for key in keys:
            assert ledger.claim(key, owner="a", lease=60).granted
        ledger.settle(keys[0], "sent", owner="a")
        before = list(ledger.records(run="r"))
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        # The ledger as the previous schema left it: table, user index and function, no run index.
        connection.execute(sql.SQL("DROP INDEX {}").format(sql.Identifier(_schema(url), RUN_INDEX)))

    with open_ledger(url) as ledger:
        after = list(ledger.records(run="r"))
        since = after[2].updated_at  # u-2's claim, the last write but u-0's outcome
        recent = list(ledger.records_since(run="r", since=since))
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        (definition,) = connection.execute(
            "SELECT indexdef FROM pg_indexes WHERE schemaname = %s AND indexname = %s",
            (_schema(url), RUN_INDEX),
        ).fetchone() or (None,)

    assert after == before
    assert [record.key for record in recent] == [keys[0], keys[2]]
    assert definition is not None
    assert definition.endswith("(run, updated_at)")


def test_an_idle_poll_searches_the_runs_recent_records_not_the_run(url: str) -> None:
    from psycopg import sql

    from invites.ledger._postgres_sql import RUN_INDEX, TABLE

    open_ledger(url).close()
    table = sql.Identifier(_schema(url), TABLE)
    with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
        connection.execute(
            sql.SQL(
                "INSERT INTO {} (run, identity, user_id, state, owner, lease_until, claims, "
                "created_at, updated_at) SELECT 'r', 'i', 'u-' || n, 'sent', 'a', 0, 1, n, n "
                "FROM generate_series(1, 5000) AS n"
            ).format(table)
        )
        connection.execute(sql.SQL("ANALYZE {}").format(table))

    plan = _idle_poll_plan(url, "r", 5001.0)

    assert RUN_INDEX in plan, plan
    assert "Seq Scan" not in plan, plan


def test_the_password_is_never_shown() -> None:
    require("PostgreSQL", postgres_problem())
    secret = "test-password-not-real"
    with pytest.raises(ConnectionFailed) as caught:
        open_ledger(f"postgresql://postgres:{secret}@127.0.0.1:1/test?connect_timeout=2")
    assert secret not in str(caught.value)
    assert secret not in repr(caught.value)
    assert "127.0.0.1:1" in str(caught.value)
    with_password = POSTGRES_URL.replace("postgres@", f"postgres:{secret}@", 1)
    assert secret in with_password
    with open_ledger(with_password) as ledger:  # trust authentication ignores it
        assert secret not in repr(ledger)
        ledger.close()
        with pytest.raises(ConnectionFailed) as closed:
            ledger.get(RecordKey("r", "i", "u"))
    assert secret not in str(closed.value)


def test_event_loops_on_several_threads_share_one_ledger(ledger: Ledger) -> None:
    granted: list[int] = []
    lock = threading.Lock()

    def loop_worker() -> None:
        async def claim_all() -> int:
            claims = await asyncio.gather(
                *(
                    ledger.aclaim(RecordKey("r", "i", f"u-{n}"), owner="x", lease=60)
                    for n in range(100)
                )
            )
            return sum(claim.granted for claim in claims)

        count = asyncio.run(claim_all())
        with lock:
            granted.append(count)

    threads = [threading.Thread(target=loop_worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sum(granted) == 100
    assert len(granted) == 4


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_an_idle_connection_the_server_dropped_is_replaced_not_failed(url: str, mode: str) -> None:
    application_name = f"invites-test-{uuid.uuid4().hex[:8]}"
    key = RecordKey("r", "i", "u")

    def terminate() -> int:
        with psycopg.connect(POSTGRES_URL, autocommit=True) as connection:
            rows = connection.execute(
                "SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity "
                "WHERE application_name = %s",
                (application_name,),
            ).fetchall()
        return sum(1 for (done,) in rows if done)

    with open_ledger(f"{url}&application_name={application_name}") as ledger:
        if mode == "sync":
            assert ledger.claim(key, owner="a", lease=60).granted
            assert terminate() >= 1
            record = ledger.get(key)
        else:

            async def around() -> Record | None:
                assert (await ledger.aclaim(key, owner="a", lease=60)).granted
                assert await asyncio.to_thread(terminate) >= 1
                return await ledger.aget(key)

            record = asyncio.run(around())

    assert record is not None
    assert record.owner == "a"


def test_async_use_leaves_no_task_behind_so_a_loop_can_end_with_the_ledger_open(
    ledger: Ledger,
) -> None:
    async def claim_and_look() -> set[asyncio.Task[Any]]:
        claims = await asyncio.gather(
            *(ledger.aclaim(RecordKey("r", "i", f"u-{n}"), owner="a", lease=60) for n in range(20))
        )
        assert all(claim.granted for claim in claims)
        return asyncio.all_tasks() - {asyncio.current_task()}

    assert asyncio.run(claim_and_look()) == set()
    again = asyncio.run(ledger.aget(RecordKey("r", "i", "u-3")))  # another loop, its own pool
    assert again is not None
    assert again.owner == "a"


# -- outcomes queued without waiting -------------------------------------------------------------


def _key(user_id: str) -> RecordKey:
    return RecordKey(run="run-soon", identity='{"vendor":"fake"}', user_id=user_id)


def test_queued_outcomes_are_written_in_groups_off_the_callers_thread_and_kept_by_close(
    url: str,
) -> None:
    ledger = open_ledger(url)
    groups: list[tuple[threading.Thread, list[str]]] = []
    write = ledger._settle_many  # type: ignore[attr-defined]

    def recording(outcomes: list[Any]) -> set[RecordKey]:
        groups.append((threading.current_thread(), [o[0].user_id for o in outcomes]))
        written: set[RecordKey] = write(outcomes)
        return written

    ledger._queued._write = recording  # type: ignore[attr-defined]
    for n in range(10):
        assert ledger.claim(_key(f"u-{n}"), owner="a", lease=60).granted
        ledger.settle_soon(_key(f"u-{n}"), "already_verified", owner="a")
    ledger.settle_soon(_key("u-0"), "sent", owner="someone else")  # not theirs: not written
    ledger.close()
    assert sorted(user for _, users in groups for user in users) == sorted(
        [f"u-{n}" for n in range(10)] + ["u-0"]
    )
    assert threading.current_thread() not in {thread for thread, _ in groups}
    with open_ledger(url) as reopened:
        states = {r.key.user_id: r.state for r in reopened.records(run="run-soon")}
    assert states == {f"u-{n}": "already_verified" for n in range(10)}


def test_many_queued_outcomes_take_few_statements(url: str) -> None:
    async def main() -> tuple[int, dict[str, str]]:
        async with open_ledger(url) as ledger:
            write = ledger._asettle_many  # type: ignore[attr-defined]
            calls: list[int] = []

            async def counting(outcomes: list[Any]) -> set[RecordKey]:
                calls.append(len(outcomes))
                written: set[RecordKey] = await write(outcomes)
                return written

            ledger._queued._awrite = counting  # type: ignore[attr-defined]
            keys = [_key(f"u-{n}") for n in range(50)]
            await asyncio.gather(*(ledger.aclaim(k, owner="a", lease=60) for k in keys))
            for k in keys:
                await ledger.asettle_soon(k, "already_verified", owner="a")
            await ledger.aflush()
            states: dict[str, str] = {
                r.key.user_id: r.state for r in ledger.records(run="run-soon")
            }
            return len(calls), states

    statements, states = asyncio.run(main())
    assert statements < 50  # queued while one group was written: they go in the next group
    assert states == {f"u-{n}": "already_verified" for n in range(50)}


def test_async_queued_outcomes_are_tasks_that_aflush_waits_for(url: str) -> None:
    async def main() -> set[str]:
        async with open_ledger(url) as ledger:
            assert (await ledger.aclaim(_key("u-1"), owner="a", lease=60)).granted
            before = asyncio.all_tasks()
            await ledger.asettle_soon(_key("u-1"), "already_verified", owner="a")
            queued = asyncio.all_tasks() - before
            assert len(queued) == 1  # the write runs on its own; the caller did not wait for it
            await ledger.aflush()
            assert all(task.done() for task in queued)
            record = await ledger.aget(_key("u-1"))
            assert record is not None
            return {record.state}

    assert asyncio.run(main()) == {"already_verified"}


def test_an_outcome_queued_after_close_is_logged_not_raised(
    url: str, caplog: pytest.LogCaptureFixture
) -> None:
    ledger = open_ledger(url)
    assert ledger.claim(_key("u-1"), owner="a", lease=60).granted
    ledger.close()
    ledger.settle_soon(_key("u-1"), "sent", owner="a")
    ledger.flush()
    assert "not recorded" in caplog.text
    with open_ledger(url) as reopened:
        record = reopened.get(_key("u-1"))
    assert record is not None
    assert record.state == "intent"
