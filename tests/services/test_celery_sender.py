"""The Celery deployment as docs/celery.md writes it, and its sender under faults: its worker
command started twice on one host, a queue nobody consumes, the sender's ledger connection cut,
an intent acknowledged but never settled, a prefork child killed mid-resend, and one killed after
its task's redelivery was checked (and found it in flight). Each run finishes, nobody is emailed
twice, and nothing printed is contradicted by the ledger afterwards.

Needs RabbitMQ and PostgreSQL on loopback (skipped when unreachable, unless
INVITES_REQUIRE_SERVICES=1).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import celery
import pytest
from _support.celery_workers import fresh_queue, stop_worker, worker_env, write_profiles
from _support.services import AMQP_URL, fresh_postgres_url
from _support.vendors import vendor_config
from kombu import Queue
from kombu.message import Message

import invites
from invites import celery as invites_celery
from invites.celery.collect import queue_consumers
from invites.ledger import RecordKey, open_ledger, provider_identity
from invites.sandbox import Fault, RunningSandbox, Sandbox, serve

pytestmark = pytest.mark.services

MANUAL = Path(__file__).resolve().parents[2] / "docs" / "celery.md"
SLOW_SECONDS = 4.0


@pytest.fixture(scope="module")
def served() -> Iterator[RunningSandbox]:
    """This module's sandbox: a slow answer takes long enough to kill its worker meanwhile."""
    with serve(Sandbox(slow_seconds=SLOW_SECONDS)) as running:
        yield running


@pytest.fixture
def queue() -> Iterator[str]:
    """A queue no other test uses; deleted afterwards."""
    with fresh_queue() as name:
        yield name


def sender_app(queue: str) -> celery.Celery:
    app = celery.Celery("invites-test", broker=AMQP_URL, set_as_current=False)
    app.conf.task_default_queue = queue
    return invites_celery.configure(app)


def tokenless_profiles(path: Path, base_url: str, ledger: str) -> Path:
    """The sender's profiles: the workers' identity and ledger, a token variable nobody set."""
    config = vendor_config("tenant_api", base_url, ledger=ledger)
    del config["token"]
    config["token_env"] = f"INVITES_TEST_UNSET_{uuid.uuid4().hex[:8].upper()}"
    lines = ["[profiles.sandbox]", *(f'{key} = "{value}"' for key, value in config.items())]
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def users_of(sandbox: Sandbox, count: int) -> list[str]:
    users = [str(uuid.uuid4()) for _ in range(count)]
    sandbox.add_users("tenant_api", users)
    return users


def identity_of(server: RunningSandbox) -> str:
    with invites.from_config(vendor_config("tenant_api", server.url)) as provider:
        return provider_identity(provider)


def assert_final(outcomes: list[invites.Outcome], users: list[str], url: str, run: str) -> None:
    """One outcome per invitee, each what the ledger holds now; nobody emailed twice."""
    assert sorted(outcome.user_id for outcome in outcomes) == sorted(users)
    with open_ledger(url) as ledger:
        records = {record.key.user_id: record for record in ledger.records(run=run)}
    for outcome in outcomes:
        record = records[outcome.user_id]
        assert record.state != "intent", outcome
        assert outcome.status == record.status(), (outcome, record)


def start_workers(
    directory: Path, env: dict[str, str], *args: str
) -> Callable[[], list[subprocess.Popen[bytes]]]:
    """A starter of worker processes on ``directory``'s ``celery_app`` (see celery_support)."""
    started: list[subprocess.Popen[bytes]] = []

    def start() -> list[subprocess.Popen[bytes]]:
        name = f"w{len(started)}-{uuid.uuid4().hex[:8]}@%h"
        command = [sys.executable, "-m", "celery", "-A", "celery_app", "worker", "-n", name]
        command += [*args, "--without-gossip", "--without-mingle", "--loglevel", "WARNING"]
        with (directory / f"w{len(started)}.log").open("wb") as log:
            started.append(
                subprocess.Popen(  # noqa: S603
                    command, cwd=directory, env=env, stdout=log, stderr=subprocess.STDOUT
                )
            )
        return started

    return start


def wait_for(condition: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() >= deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


# -- the manual's deployment (docs/celery.md) ------------------------------------------------------


def readme_block(language: str, containing: str) -> str:
    blocks = re.findall(rf"```{language}\n(.*?)```", MANUAL.read_text(encoding="utf-8"), re.S)
    (block,) = [block for block in blocks if containing in block]
    return str(block)


def test_two_workers_started_with_the_readme_command_on_one_host_both_run(
    tmp_path: Path, server: RunningSandbox, sandbox: Sandbox, queue: str
) -> None:
    url = fresh_postgres_url()
    profiles = write_profiles(tmp_path / "invites.toml", server.url, url)
    tasks = readme_block("python", "# tasks.py")
    # The one line the manual leaves out: a queue of this test's own on the shared broker.
    tasks += 'app.conf.task_default_queue = os.environ["TEST_QUEUE"]\n'
    (tmp_path / "tasks.py").write_text(tasks, encoding="utf-8")
    (command,) = readme_block("sh", "celery -A tasks worker").strip().splitlines()
    env = {
        **os.environ,
        "PATH": os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")]),
        "PYTHONPATH": os.pathsep.join([str(tmp_path), *sys.path]),
        "INVITES_BROKER": AMQP_URL,
        "INVITES_PROFILES": str(profiles),
        "TEST_QUEUE": queue,
    }
    workers: list[subprocess.Popen[bytes]] = []
    for n in range(2):
        with (tmp_path / f"readme-{n}.log").open("wb") as log:
            workers.append(
                subprocess.Popen(  # noqa: S603
                    ["bash", "-c", f"exec {command}"],  # noqa: S607
                    cwd=tmp_path,
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
            )
    app = sender_app(queue)
    users = users_of(sandbox, 6)
    try:

        def both_consume() -> bool:
            assert all(worker.poll() is None for worker in workers), _logs(tmp_path)
            return queue_consumers(app, queue) == 2

        wait_for(both_consume, "both workers to consume the queue")
        outcomes = list(invites_celery.fan_out(app, users, run="r1", profiles=profiles, timeout=60))
        assert all(worker.poll() is None for worker in workers), _logs(tmp_path)
    finally:
        for worker in workers:
            stop_worker(worker)
        app.close()

    assert [outcome.status for outcome in outcomes] == ["sent"] * len(users)
    assert set(sandbox.emails_snapshot().values()) == {1}
    assert "RESOURCE_LOCKED" not in _logs(tmp_path)


def _logs(directory: Path) -> str:
    return "\n".join(path.read_text(errors="replace")[-3000:] for path in directory.glob("*.log"))


def test_a_run_no_worker_consumes_warns_at_once_reports_progress_and_finishes(
    tmp_path: Path, server: RunningSandbox, sandbox: Sandbox, queue: str
) -> None:
    url = fresh_postgres_url()
    profiles = tokenless_profiles(tmp_path / "sender.toml", server.url, url)
    users = users_of(sandbox, 2)
    notes: list[tuple[float, str]] = []
    started = time.monotonic()
    app = sender_app(queue)
    try:
        outcomes = list(
            invites_celery.fan_out(
                app,
                users,
                run="r1",
                profiles=profiles,
                timeout=12,
                on_note=lambda text: notes.append((time.monotonic() - started, text)),
            )
        )
    finally:
        app.close()

    warned = [at for at, text in notes if f"no worker consumes queue {queue!r}" in text]
    assert warned, notes
    assert warned[0] < 20
    assert any("waiting for 2 outcome(s)" in text for _, text in notes), notes
    assert [outcome.status for outcome in outcomes] == ["unknown", "unknown"]
    assert all("no outcome recorded in time" in str(outcome.error) for outcome in outcomes)
    assert sandbox.emails_snapshot() == {}


# -- the sender under faults -----------------------------------------------------------------


class CuttableProxy:
    """A TCP proxy to PostgreSQL on loopback that a test can cut (every connection closed, new
    ones refused) and mend."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self.listener.getsockname()[1]
        self.open: list[socket.socket] = []
        self.refusing = False
        self.cuts = 0
        self.lock = threading.Lock()
        threading.Thread(target=self._accept, daemon=True).start()

    def url(self, url: str) -> str:
        parts = urlsplit(url)
        netloc = parts.netloc.rsplit("@", 1)[0] + f"@127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=netloc))

    def cut(self, *, at_once: bool = False) -> None:
        """Close every connection (``at_once``: so that both peers see it end now, not when
        next they send) and refuse new ones."""
        with self.lock:
            self.refusing = True
            self.cuts += 1
            for sock in self.open:
                if at_once:
                    with contextlib.suppress(OSError):
                        # Else a pump thread reading it keeps it open until a byte comes.
                        sock.shutdown(socket.SHUT_RDWR)
                sock.close()
            self.open.clear()

    def mend(self) -> None:
        with self.lock:
            self.refusing = False

    def close(self) -> None:
        self.listener.close()
        with self.lock:
            for sock in self.open:
                sock.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self.lock:
                if self.refusing:
                    client.close()
                    continue
                upstream = socket.create_connection(self.target)
                self.open += [client, upstream]
            for source, sink in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(source, sink), daemon=True).start()


def _pump(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
    except OSError:
        pass
    for sock in (source, sink):
        sock.close()


def test_the_senders_ledger_connection_cut_twice_is_asked_again_and_the_run_resumes(
    tmp_path: Path, server: RunningSandbox, sandbox: Sandbox, queue: str
) -> None:
    url = fresh_postgres_url()
    parts = urlsplit(url)
    proxy = CuttableProxy((parts.hostname or "127.0.0.1", parts.port or 5432))
    profiles = write_profiles(tmp_path / "invites.toml", server.url, url)
    sender_profiles = tokenless_profiles(tmp_path / "sender.toml", server.url, proxy.url(url))
    env = worker_env(tmp_path, AMQP_URL, queue, profiles)
    users = users_of(sandbox, 40)
    sandbox.inject(users[-1], Fault.SLOW)  # still awaited when the collecting cut comes
    notes: list[str] = []

    refused: list[str] = []

    def note(text: str) -> None:
        notes.append(text)
        if "the ledger did not answer" in text:
            refused.append(text)
            if len(refused) % 2 == 0:
                proxy.mend()  # after two refused attempts

    def rows() -> Iterator[str]:
        for n, user in enumerate(users):
            if n == 20:
                proxy.cut()  # while sending: the next pre-check fails
            yield user

    def on_outcome(outcome: invites.Outcome) -> None:
        if proxy.cuts == 1:
            proxy.cut()  # while collecting

    app = sender_app(queue)
    workers = start_workers(tmp_path, env, "--pool", "threads", "--concurrency", "8")()
    try:
        outcomes = list(
            invites_celery.fan_out(
                app,
                rows(),
                run="r1",
                profiles=sender_profiles,
                timeout=120,
                on_outcome=on_outcome,
                on_note=note,
            )
        )
    finally:
        for worker in workers:
            stop_worker(worker)
        proxy.close()
        app.close()

    assert proxy.cuts == 2
    assert len(refused) == 4, notes
    assert [outcome.status for outcome in outcomes] == ["sent"] * len(users)
    assert set(sandbox.emails_snapshot().values()) == {1}
    assert_final(outcomes, users, url, "r1")


def test_an_intent_acknowledged_but_never_settled_is_unknown_when_its_lease_ends(
    tmp_path: Path, server: RunningSandbox, sandbox: Sandbox, queue: str
) -> None:
    url = fresh_postgres_url()
    profiles = tokenless_profiles(tmp_path / "sender.toml", server.url, url)
    (user,) = users_of(sandbox, 1)
    key = RecordKey("r1", identity_of(server), user)
    app = sender_app(queue)

    def rows() -> Iterator[str]:
        yield user
        # Its task is published: play the worker on another host whose outcome commit failed
        # after it acknowledged the task. It claimed the key; nobody will settle it.
        with app.connection_for_write() as connection:
            bound = Queue(queue, channel=connection.default_channel)
            taken: list[Message] = []

            def take() -> bool:
                message = bound.get(no_ack=False)
                if message is not None:
                    taken.append(message)
                return bool(taken)

            wait_for(take, "its task in the queue")
            taken[0].ack()
        with open_ledger(url) as ledger:
            assert ledger.claim(key, owner="elsewhere.example:1:lost", lease=2).granted

    try:
        outcomes = list(
            invites_celery.fan_out(app, rows(), run="r1", profiles=profiles, timeout=120)
        )
    finally:
        app.close()

    (outcome,) = outcomes
    assert outcome.status == "unknown"
    assert "its lease ended" in str(outcome.error)
    assert sandbox.emails_snapshot() == {}
    assert_final(outcomes, [user], url, "r1")


@pytest.mark.parametrize("retry_unknown", [False, True])
def test_a_prefork_child_killed_mid_resend_ends_the_run_unknown_and_sends_nothing_twice(
    tmp_path: Path, server: RunningSandbox, sandbox: Sandbox, queue: str, retry_unknown: bool
) -> None:
    """Its redelivery records the lost intent unknown and replays it, even when the run retries
    unknown outcomes: those are an earlier claim's, not its own task's."""
    url = fresh_postgres_url()
    profiles = write_profiles(tmp_path / "invites.toml", server.url, url)
    sender_profiles = tokenless_profiles(tmp_path / "sender.toml", server.url, url)
    users = users_of(sandbox, 4)
    sandbox.inject(users[0], Fault.SLOW)
    key = RecordKey("r1", identity_of(server), users[0])
    env = worker_env(tmp_path, AMQP_URL, queue, profiles)
    workers = start_workers(tmp_path, env, "--pool", "prefork", "--concurrency", "1")()
    killed: list[int] = []
    app = sender_app(queue)

    def rows() -> Iterator[str]:
        yield from users
        # Every task is published: kill the child while it waits for the slow vendor.
        with open_ledger(url) as ledger:
            wait_for(lambda: (r := ledger.get(key)) is not None and r.state == "intent", "claim")
            record = ledger.get(key)
        assert record is not None
        wait_for(lambda: resends_of(sandbox, users[0]) == 1, "the resend at the vendor")
        pid = int(record.owner.split(":")[1])
        os.kill(pid, signal.SIGKILL)
        killed.append(pid)

    try:
        outcomes = list(
            invites_celery.fan_out(
                app,
                rows(),
                run="r1",
                profiles=sender_profiles,
                timeout=120,
                retry_unknown=retry_unknown,
            )
        )
    finally:
        for worker in workers:
            stop_worker(worker)
        app.close()

    assert killed
    statuses = {outcome.user_id: outcome.status for outcome in outcomes}
    assert statuses[users[0]] == "unknown"
    assert all(statuses[user] == "sent" for user in users[1:])
    assert [resends_of(sandbox, user) for user in users] == [1, 1, 1, 1]
    assert set(sandbox.emails_snapshot().values()) <= {1}
    assert_final(outcomes, users, url, "r1")


# -- a redelivery that finds its first delivery running, whose child is killed afterwards --------

#: Added to the second worker's app module: each task's return value, written per user id once
#: the task has ended (a delivery that sent nothing writes nothing to the ledger).
ENDED_MARKS = """
import json
from pathlib import Path

from celery.signals import task_postrun


@task_postrun.connect
def _ended(args=None, retval=None, **_):
    invitee = args[1]
    user = invitee["user_id"] if isinstance(invitee, dict) else invitee
    marks = Path(os.environ["TEST_MARKS"])
    (marks / f"{user}.tmp").write_text(json.dumps(retval), encoding="utf-8")
    (marks / f"{user}.tmp").replace(marks / f"{user}.json")
"""


class Held:
    """A vendor answer held until released: the `sleep` of a sandbox's `Fault.SLOW`."""

    def __init__(self) -> None:
        self.released = threading.Event()

    async def __call__(self, seconds: float) -> None:
        while not self.released.is_set():
            await asyncio.sleep(0.01)


@pytest.mark.parametrize("store", ["postgresql", "sqlite"])
def test_a_prefork_child_killed_after_its_redelivery_was_checked_ends_the_run_unknown(
    tmp_path: Path, queue: str, store: str
) -> None:
    """The first delivery's child holds the intent, waiting for the vendor; its worker loses the
    broker, which delivers the task again to a second worker. That delivery's check finds the
    intent's owner alive, replays it in flight, sends nothing and is acknowledged. Then the first
    child is killed: no delivery of the task is left, and its intent's owner is gone."""
    held = Held()
    url = fresh_postgres_url() if store == "postgresql" else str(tmp_path / "ledger.db")
    broker = urlsplit(AMQP_URL)
    cuttable = CuttableProxy((broker.hostname or "127.0.0.1", broker.port or 5672))
    marks = tmp_path / "marks"
    marks.mkdir()
    with serve(Sandbox(sleep=held)) as server:
        sandbox = server.sandbox
        # The first child waits for the held answer as long as it takes to kill it.
        profiles = write_profiles(
            tmp_path / "invites.toml", server.url, url, timeout=300, deadline=300
        )
        sender_profiles = tokenless_profiles(tmp_path / "sender.toml", server.url, url)
        users = users_of(sandbox, 3)
        sandbox.inject(users[0], Fault.SLOW)
        key = RecordKey("r1", identity_of(server), users[0])
        (tmp_path / "w1").mkdir()
        (tmp_path / "w2").mkdir()
        env1 = worker_env(tmp_path / "w1", cuttable.url(AMQP_URL), queue, profiles)
        env2 = {**worker_env(tmp_path / "w2", AMQP_URL, queue, profiles), "TEST_MARKS": str(marks)}
        with (tmp_path / "w2" / "celery_app.py").open("a", encoding="utf-8") as module:
            module.write(ENDED_MARKS)
        prefork = ("--pool", "prefork", "--concurrency", "1")
        workers = start_workers(tmp_path / "w1", env1, *prefork)()
        app = sender_app(queue)
        wait_for(lambda: queue_consumers(app, queue) == 1, "the first worker to consume")
        killed: list[int] = []

        def rows() -> Iterator[str]:
            yield from users
            # The first child claimed users[0] and waits for the vendor, which holds its answer.
            with open_ledger(url) as ledger:
                wait_for(
                    lambda: (r := ledger.get(key)) is not None and r.state == "intent", "claim"
                )
                intent = ledger.get(key)
            assert intent is not None
            wait_for(lambda: resends_of(sandbox, users[0]) == 1, "the first resend at the vendor")
            workers.extend(start_workers(tmp_path / "w2", env2, *prefork)())
            wait_for(lambda: queue_consumers(app, queue) == 2, "the second worker to consume")
            # The first worker loses the broker, which delivers the task to the second.
            cuttable.cut(at_once=True)
            wait_for(lambda: (marks / f"{users[0]}.json").exists(), "the redelivery to end")
            pid = int(intent.owner.split(":")[1])
            os.kill(pid, signal.SIGKILL)  # after the redelivery's check
            killed.append(pid)
            held.released.set()  # the vendor sends the one email it was asked for

        try:
            outcomes = list(
                invites_celery.fan_out(app, rows(), run="r1", profiles=sender_profiles, timeout=90)
            )
        finally:
            held.released.set()
            cuttable.mend()
            for worker in workers:
                stop_worker(worker)
            cuttable.close()
            app.close()

    assert killed
    redelivered = json.loads((marks / f"{users[0]}.json").read_text(encoding="utf-8"))
    # The redelivery found the intent in flight and sent nothing.
    assert (redelivered["outcome"], redelivered["skipped"]) == ("unknown", True), redelivered
    assert "in flight" in redelivered["message"], redelivered
    assert_final(outcomes, users, url, "r1")  # the intent settled, as printed
    statuses = {outcome.user_id: outcome for outcome in outcomes}
    lost = statuses[users[0]]
    assert lost.status == "unknown"
    assert "its process ended" in str(lost.error), lost.error  # not the end of the wait
    assert all(statuses[user].status == "sent" for user in users[1:])
    assert [resends_of(sandbox, user) for user in users] == [1, 1, 1]
    assert set(sandbox.emails_snapshot().values()) <= {1}


def resends_of(sandbox: Sandbox, user: str) -> int:
    """How many resend requests for ``user`` reached the vendor."""
    return sum(
        1 for request in sandbox.requests if request.method == "POST" and user in request.path
    )
