"""A worker cut off from RabbitMQ without a close, as a dropped NAT entry or firewall does: the
broker misses its heartbeats, closes its connection and hands its unacknowledged tasks to another
worker within a few of configure()'s heartbeat intervals (Celery's default would take minutes).
The task it was sending when cut off is delivered again meanwhile; the ledger keeps it to one
email.

Needs RabbitMQ and PostgreSQL on loopback (skipped when unreachable, unless
INVITES_REQUIRE_SERVICES=1).
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import subprocess
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit

import celery
import pytest
from _support.celery_workers import (
    APP_MODULE,
    fresh_queue,
    start_worker,
    stop_worker,
    worker_env,
    write_profiles,
)
from _support.relay import Relay
from _support.services import AMQP_URL, fresh_postgres_url
from _support.vendors import vendor_config

import invites
from invites import celery as invites_celery
from invites.celery.collect import queue_consumers
from invites.celery.fanout import BROKER_HEARTBEAT
from invites.ledger import Record, RecordKey, open_ledger, provider_identity
from invites.sandbox import Fault, RunningSandbox, Sandbox, serve

pytestmark = pytest.mark.services

#: Tasks a worker of start_worker holds at once: its 8 threads times configure()'s prefetch of 1.
WORKER_SLOTS = 8
#: RabbitMQ closes a silent connection 2 to 3 heartbeat intervals after the last byte it got;
#: one interval more and a few seconds for the redelivered tasks to be sent. (Celery's default
#: heartbeat, 120 s, gets RabbitMQ's 60 s: 2 to 3 minutes.)
RECOVERY_BOUND = 4 * BROKER_HEARTBEAT + 5

#: What each worker appends its tasks' results to (a file named by TEST_REPORTS), as JSON lines.
REPORTING = """
import json
from celery.signals import task_success


@task_success.connect
def _report(result=None, **_):
    with open(os.environ["TEST_REPORTS"], "a", encoding="utf-8") as reports:
        reports.write(json.dumps(result) + "\\n")
"""


class Hold:
    """The sandbox's wait for `Fault.SLOW`: until released (at most ``limit`` seconds)."""

    def __init__(self, limit: float = 120.0) -> None:
        self.released = threading.Event()
        self.limit = limit

    async def sleep(self, _: float) -> None:
        deadline = time.monotonic() + self.limit
        while not self.released.is_set() and time.monotonic() < deadline:
            await asyncio.sleep(0.02)


@pytest.fixture(scope="module")
def hold() -> Hold:
    return Hold()


@pytest.fixture(scope="module")
def served(hold: Hold) -> Iterator[RunningSandbox]:
    """This module's sandbox: an invitee given `Fault.SLOW` is answered when ``hold`` says."""
    with serve(Sandbox(sleep=hold.sleep)) as running:
        yield running


@pytest.fixture
def queue() -> Iterator[str]:
    """A queue no other test uses; deleted afterwards."""
    with fresh_queue() as name:
        yield name


@dataclasses.dataclass
class Deployment:
    """Workers of one queue, profiles file and ledger (start_worker: the manual's command, a
    thread pool and a node name of its own); ``relay`` stands between RabbitMQ and each worker
    started through it."""

    directory: Path
    ledger: str
    profiles: Path
    queue: str
    relay: Relay
    app: celery.Celery
    workers: list[subprocess.Popen[bytes]] = dataclasses.field(default_factory=list)

    def start(self, name: str, *, relayed: bool) -> subprocess.Popen[bytes]:
        broker = self.relay.url(AMQP_URL) if relayed else AMQP_URL
        env = worker_env(self.directory, broker, self.queue, self.profiles)
        env["TEST_REPORTS"] = str(self.directory / f"{name}.jsonl")
        (self.directory / "celery_app.py").write_text(APP_MODULE + REPORTING, encoding="utf-8")
        self.workers.append(start_worker(self.directory, name, env))
        return self.workers[-1]

    def reports(self, name: str) -> list[dict[str, object]]:
        """The results worker ``name``'s tasks returned so far."""
        path = self.directory / f"{name}.jsonl"
        lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
        return [json.loads(line) for line in lines if line.endswith("}")]

    def ready(self) -> int:
        """Messages of the queue that no consumer holds (RabbitMQ's ready count)."""
        with self.app.connection_for_write() as connection:
            channel = connection.default_channel
            declared = channel.queue_declare(self.queue, passive=True)  # type: ignore[attr-defined]
        return int(declared.message_count)


@pytest.fixture
def deployment(
    tmp_path: Path, server: RunningSandbox, hold: Hold, queue: str
) -> Iterator[Deployment]:
    url = fresh_postgres_url()
    # A timeout long enough for a held answer: the resend completes, however long it is held.
    profiles = write_profiles(tmp_path / "invites.toml", server.url, url, timeout=120)
    broker = urlsplit(AMQP_URL)
    app = celery.Celery("invites-test", broker=AMQP_URL, set_as_current=False)
    app.conf.task_default_queue = queue
    invites_celery.configure(app)
    relay = Relay((broker.hostname or "127.0.0.1", broker.port or 5672))
    hold.released.clear()
    deployed = Deployment(tmp_path, url, profiles, queue, relay, app)
    try:
        yield deployed
    finally:
        hold.released.set()
        relay.close()  # a cut-off worker then learns at once that its broker is gone
        for worker in deployed.workers:
            stop_worker(worker)
        app.close()


def wait_for(condition: Callable[[], bool], what: str, until: float) -> None:
    """Waits for ``condition`` until the monotonic time ``until``; AssertionError after."""
    while not condition():
        if time.monotonic() >= until:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def pid_of(record: Record | None) -> int | None:
    """The process that claimed ``record`` (its owner is ``host:pid:token``)."""
    return None if record is None else int(record.owner.split(":")[1])


def test_a_worker_cut_off_from_the_broker_hands_its_tasks_over_within_a_few_heartbeats(
    deployment: Deployment, server: RunningSandbox, sandbox: Sandbox, hold: Hold
) -> None:
    sending, *later = users = [str(uuid.uuid4()) for _ in range(1 + WORKER_SLOTS + 4)]
    sandbox.add_users("tenant_api", users)
    sandbox.inject(sending, Fault.SLOW)  # answered once worker B has found it in flight
    with invites.from_config(vendor_config("tenant_api", server.url)) as provider:
        key = RecordKey("r1", provider_identity(provider), sending)
    worker_a = deployment.start("a", relayed=True)
    wait_for(
        lambda: queue_consumers(deployment.app, deployment.queue) == 1,
        "worker A to consume the queue",
        time.monotonic() + 60,
    )
    cut: list[float] = []

    def in_flight_at_b() -> bool:
        return any(
            report.get("user_id") == sending
            and report.get("outcome") == "unknown"
            and "in flight" in str(report.get("message"))
            for report in deployment.reports("b")
        )

    def rows() -> Iterator[str]:
        yield sending
        with open_ledger(deployment.ledger) as ledger:
            claimed = time.monotonic() + 60
            wait_for(lambda: pid_of(ledger.get(key)) == worker_a.pid, "A to claim", claimed)
        # Worker A is mid-send: its broker connection goes silent, nothing is closed.
        deployment.relay.black_hole()
        cut.append(time.time())
        recovered = time.monotonic() + RECOVERY_BOUND
        yield from later
        # The broker hands worker A a task for each free slot; none of them arrives.
        filled = time.monotonic() + 10
        expected = len(later) - (WORKER_SLOTS - 1)
        wait_for(lambda: deployment.ready() == expected, "A's slots to be filled", filled)
        deployment.start("b", relayed=False)
        wait_for(in_flight_at_b, "B to be given A's task while A sends it", recovered)
        hold.released.set()

    outcomes = list(
        invites_celery.fan_out(
            deployment.app, rows(), run="r1", profiles=deployment.profiles, timeout=90
        )
    )

    assert sorted(outcome.user_id for outcome in outcomes) == sorted(users)
    assert {outcome.status for outcome in outcomes} == {"sent"}
    assert sandbox.emails_snapshot() == dict.fromkeys(users, 1)  # each emailed once
    with open_ledger(deployment.ledger) as ledger:
        records = {record.key.user_id: record for record in ledger.records(run="r1")}
    assert pid_of(records[sending]) == worker_a.pid  # worker A finished its resend
    assert {pid_of(records[user]) for user in later} == {deployment.workers[1].pid}
    assert all(record.claims == 1 for record in records.values())  # nothing claimed twice
    recovery = max(records[user].updated_at for user in later) - cut[0]
    assert recovery < RECOVERY_BOUND, f"worker A's tasks were sent {recovery:.1f} s after the cut"
