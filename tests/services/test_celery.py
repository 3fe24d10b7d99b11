"""Resends as Celery tasks: the task in-process, then two real workers, one killed mid-run.

The worker tests need a real broker (RabbitMQ on loopback) and a real ledger (PostgreSQL); they
are skipped when either is unreachable, unless INVITES_REQUIRE_SERVICES=1.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import celery
import pytest
from _support.celery_workers import (
    start_worker,
    stop_worker,
    toml_value,
    worker_env,
    write_profiles,
)
from _support.services import AMQP_URL, amqp_problem, fresh_postgres_url, require
from _support.vendors import vendor_config

import invites
from invites import Invitee
from invites import celery as invites_celery
from invites.ledger import Ledger, RecordKey, open_ledger, owner_gone, provider_identity
from invites.sandbox import RunningSandbox, Sandbox


@pytest.fixture
def app(tmp_path: Path, server: RunningSandbox) -> Iterator[celery.Celery]:
    """An app whose tasks run in-process (eagerly), over a SQLite ledger."""
    profiles = write_profiles(tmp_path / "invites.toml", server.url, str(tmp_path / "ledger.db"))
    application = celery.Celery("invites-test", set_as_current=False)
    invites_celery.configure(application, profiles=profiles)
    application.conf.task_always_eager = True
    yield application
    invites_celery._RESOURCES.close()


def apply(app: celery.Celery, *args: Any, **kwargs: Any) -> dict[str, Any]:
    result: dict[str, Any] = app.tasks[invites_celery.TASK_NAME].apply(args, kwargs).get()
    return result


def test_a_redelivered_task_sends_nothing_and_replays_the_outcome(
    app: celery.Celery, sandbox: Sandbox
) -> None:
    invitee = invites_celery.invitee_to_json(Invitee(user_id=_uuid(sandbox), email="a@example.com"))

    first = apply(app, "sandbox", invitee, "run-1")
    again = apply(app, "sandbox", invitee, "run-1")
    other_run = apply(app, "sandbox", invitee, "run-2")

    assert first["outcome"] == "sent"
    assert first["skipped"] is False
    assert again["outcome"] == "sent"
    assert again["skipped"] is True
    assert other_run["skipped"] is False
    assert sandbox.emails_sent(invitee["user_id"]) == 2  # once per key, never per delivery


def test_a_refused_invitee_is_a_failed_outcome_and_a_rerun_may_send(
    app: celery.Celery, sandbox: Sandbox
) -> None:
    missing = str(uuid.uuid4())  # not a user of the sandbox: 404

    outcome = apply(app, "sandbox", missing, "run-1")

    assert outcome["outcome"] == "failed"
    assert outcome["error"] == "UserNotFound"
    assert outcome["status_code"] == 404
    assert sandbox.emails_sent(missing) == 0


def test_a_bad_invitee_is_failed_before_anything_is_claimed(app: celery.Celery) -> None:
    outcome = apply(app, "sandbox", {"user_id": "a\nb"}, "run-1")
    odd = apply(app, "sandbox", {"user_id": "u-1", "shoe_size": 44}, "run-1")

    assert outcome["outcome"] == "failed"
    assert outcome["error"] == "InvalidInvitee"
    assert odd["outcome"] == "failed"
    assert "shoe_size" in odd["message"]


def test_a_sender_with_another_identity_is_refused_without_sending(
    app: celery.Celery, sandbox: Sandbox, tmp_path: Path
) -> None:
    user = _uuid(sandbox)
    elsewhere = '{"base_url":"https://elsewhere.example","vendor":"tenant_api"}'

    outcome = apply(app, "sandbox", user, "run-1", identity=elsewhere)

    assert outcome["outcome"] == "failed"
    assert "different vendor" in outcome["message"]
    assert sandbox.emails_sent(user) == 0
    with open_ledger(tmp_path / "ledger.db") as ledger:
        record = ledger.get(RecordKey("run-1", elsewhere, user))
    assert record is not None
    assert record.state == "failed"


def test_a_killed_process_not_yet_reaped_counts_as_lost() -> None:
    child = subprocess.Popen([sys.executable, "-c", "input()"], stdin=subprocess.PIPE)
    owner = f"{socket.gethostname()}:{child.pid}:abc"
    try:
        assert not owner_gone(owner)
        child.send_signal(signal.SIGKILL)
        os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # exited, left unreaped
        assert owner_gone(owner)
    finally:
        child.kill()
        child.wait()
        assert child.stdin is not None
        child.stdin.close()
    assert not owner_gone(f"elsewhere.example:{child.pid}:abc")


def test_an_intent_left_by_a_lost_process_is_recorded_unknown_and_not_resent(
    app: celery.Celery, sandbox: Sandbox, tmp_path: Path, server: RunningSandbox
) -> None:
    user = _uuid(sandbox)
    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    with invites.from_config(vendor_config("tenant_api", server.url)) as provider:
        identity = provider_identity(provider)
    key = RecordKey("run-1", identity, user)
    with open_ledger(tmp_path / "ledger.db") as ledger:
        assert ledger.claim(key, owner=f"{socket.gethostname()}:{gone}:abc", lease=3600).granted

    outcome = apply(app, "sandbox", user, "run-1")

    assert outcome["outcome"] == "unknown"
    assert outcome["skipped"] is True
    assert sandbox.emails_sent(user) == 0
    with open_ledger(tmp_path / "ledger.db") as ledger:
        record = ledger.get(key)
    assert record is not None
    assert record.state == "unknown"
    assert "lost" in str(record.error)


def test_a_live_intent_is_left_alone(
    app: celery.Celery, sandbox: Sandbox, tmp_path: Path, server: RunningSandbox
) -> None:
    user = _uuid(sandbox)
    with invites.from_config(vendor_config("tenant_api", server.url)) as provider:
        key = RecordKey("run-1", provider_identity(provider), user)
    with open_ledger(tmp_path / "ledger.db") as ledger:
        owner = f"{socket.gethostname()}:{os.getpid()}:someone-else"
        assert ledger.claim(key, owner=owner, lease=3600).granted

    outcome = apply(app, "sandbox", user, "run-1")

    assert outcome["outcome"] == "unknown"
    assert "in flight" in outcome["message"]
    with open_ledger(tmp_path / "ledger.db") as ledger:
        record = ledger.get(key)
    assert record is not None
    assert record.state == "intent"


def test_invitees_travel_as_json() -> None:
    invitee = Invitee(
        user_id="u-1",
        email="ada@example.com",
        access=invites.Access(start_date="2024-01-01", restrict_projects="yes"),
    )
    data = invites_celery.invitee_to_json(invitee)

    assert data["access"] == {
        "start_date": "2024-01-01",
        "prevent_download": "no",
        "restrict_projects": "yes",
    }
    assert "first_name" not in data
    assert invites_celery.invitee_from_json(data) == invitee
    assert invites_celery.invitee_from_json("u-2") == Invitee(user_id="u-2")
    with pytest.raises(invites.InvalidInvitee):
        invites_celery.invitee_from_json({"user_id": "a\nb"})


def test_a_worker_without_a_ledger_refuses_to_resend(
    tmp_path: Path, server: RunningSandbox, sandbox: Sandbox
) -> None:
    config = vendor_config("tenant_api", server.url)
    path = tmp_path / "bare.toml"
    path.write_text(
        "[profiles.sandbox]\n" + "".join(f"{k} = {toml_value(v)}\n" for k, v in config.items()),
        encoding="utf-8",
    )
    application = celery.Celery("invites-test", set_as_current=False)
    invites_celery.configure(application, profiles=path)
    application.conf.task_always_eager = True
    user = _uuid(sandbox)
    try:
        with pytest.raises(invites.ConfigurationError, match="no ledger"):
            apply(application, "sandbox", user, "run-1")
    finally:
        invites_celery._RESOURCES.close()
    assert sandbox.emails_sent(user) == 0


def _uuid(sandbox: Sandbox) -> str:
    user = str(uuid.uuid4())
    sandbox.add_users("tenant_api", [user])
    return user


# -- two real workers, one killed ----------------------------------------------------------------


@pytest.mark.services
def test_two_workers_one_killed_mid_run_send_each_invitee_at_most_once(
    tmp_path: Path, server: RunningSandbox, sandbox: Sandbox
) -> None:
    require("RabbitMQ", amqp_problem())
    url = fresh_postgres_url()
    users = [str(uuid.uuid4()) for _ in range(2000)]
    sandbox.add_users("tenant_api", users)
    profiles = write_profiles(tmp_path / "invites.toml", server.url, url)
    queue = f"invites-test-{uuid.uuid4().hex[:12]}"
    env = worker_env(tmp_path, AMQP_URL, queue, profiles)
    app = celery.Celery("invites-test", broker=AMQP_URL, set_as_current=False)
    app.conf.task_default_queue = queue
    invites_celery.configure(app, profiles=profiles)
    workers = [start_worker(tmp_path, f"w{n}", env) for n in range(2)]
    victim = workers[0]
    killed_at: list[int] = []
    outcomes: list[invites.Outcome] = []

    def on_outcome(outcome: invites.Outcome) -> None:
        outcomes.append(outcome)
        if len(outcomes) == 300:
            victim.send_signal(signal.SIGKILL)
            killed_at.append(len(outcomes))

    try:
        for _ in invites_celery.fan_out(app, users, run="run-1", timeout=90, on_outcome=on_outcome):
            pass
    finally:
        for worker in workers:
            stop_worker(worker)
        with app.connection_for_write() as connection:
            connection.default_channel.queue_delete(queue)  # type: ignore[attr-defined]

    assert killed_at == [300]
    victim_log = (tmp_path / "w0.log").read_text(encoding="utf-8", errors="replace")
    assert victim.returncode == -signal.SIGKILL, victim_log[-4000:]
    emails = sandbox.emails_snapshot()
    assert set(emails.values()) <= {1}  # nobody was emailed twice
    assert sorted(outcome.user_id for outcome in outcomes) == sorted(users)
    with open_ledger(url) as ledger:
        records = {record.key.user_id: record for record in ledger.records(run="run-1")}
    assert sorted(records) == sorted(users)  # exactly one record per invitee
    states = Counter(record.state for record in records.values())
    assert set(states) <= {"sent", "unknown"}, states  # no intent is left behind
    for user_id, record in records.items():
        if record.state == "sent":
            assert emails.get(user_id) == 1
    by_pid = Counter(record.owner.split(":")[1] for record in records.values())
    assert by_pid[str(victim.pid)] > 0  # the killed worker had taken part
    assert len(by_pid) == 2
    for outcome in outcomes:
        assert outcome.status == records[outcome.user_id].status()


def test_fan_out_skips_what_the_ledger_settled_without_sending_tasks(
    tmp_path: Path, server: RunningSandbox, sandbox: Sandbox
) -> None:
    ledger_path = tmp_path / "ledger.db"
    profiles = write_profiles(tmp_path / "invites.toml", server.url, str(ledger_path))
    app = celery.Celery("invites-test", set_as_current=False)
    invites_celery.configure(app, profiles=profiles)
    sent: list[tuple[Any, ...]] = []
    app.send_task = lambda name, args, **_: sent.append(args)  # type: ignore[method-assign,assignment]
    users = [_uuid(sandbox) for _ in range(3)]
    with invites.from_config(vendor_config("tenant_api", server.url)) as provider:
        identity = provider_identity(provider)
    ledger: Ledger
    with open_ledger(ledger_path) as ledger:
        key = RecordKey("run-1", identity, users[0])
        ledger.claim(key, owner="earlier", lease=60)
        ledger.settle(key, "sent", owner="earlier")

    outcomes = list(invites_celery.fan_out(app, [users[0], users[0]], run="run-1", timeout=0.1))

    assert [(o.status, o.skipped) for o in outcomes] == [("sent", True), ("sent", True)]
    assert sent == []


def test_an_unreachable_ledger_sends_nothing_and_the_task_is_retried_then_fails(
    tmp_path: Path, server: RunningSandbox, sandbox: Sandbox
) -> None:
    dead = "postgresql://postgres:test-password-not-real@127.0.0.1:1/test?connect_timeout=2"
    profiles = write_profiles(tmp_path / "invites.toml", server.url, dead)
    application = celery.Celery("invites-test", set_as_current=False)
    invites_celery.configure(application, profiles=profiles)
    application.conf.task_always_eager = True
    user = _uuid(sandbox)
    try:
        result = application.tasks[invites_celery.TASK_NAME].apply(("sandbox", user, "run-1"))
        with pytest.raises(invites.ConnectionFailed) as caught:
            result.get()
    finally:
        invites_celery._RESOURCES.close()
    assert result.state == "FAILURE"
    assert "127.0.0.1:1" in str(caught.value)
    assert "test-password-not-real" not in str(caught.value)
    assert sandbox.emails_sent(user) == 0


def test_a_task_claims_at_most_once_so_a_redelivery_replays_its_failure(
    app: celery.Celery, sandbox: Sandbox, tmp_path: Path, server: RunningSandbox
) -> None:
    missing = str(uuid.uuid4())  # not a user of the sandbox: 404, nothing sent
    key = RecordKey("run-1", provider_identity_of(server), missing)

    first = apply(app, "sandbox", missing, "run-1", claims=0)
    redelivered = apply(app, "sandbox", missing, "run-1", claims=0)
    with open_ledger(tmp_path / "ledger.db") as ledger:
        after_redelivery = ledger.get(key)
    rerun = apply(app, "sandbox", missing, "run-1", claims=1)  # a later run's own task
    with open_ledger(tmp_path / "ledger.db") as ledger:
        after_rerun = ledger.get(key)

    assert (first["outcome"], first["skipped"]) == ("failed", False)
    assert (redelivered["outcome"], redelivered["skipped"]) == ("failed", True)
    assert redelivered["error"] == "UserNotFound"
    assert after_redelivery is not None
    assert after_redelivery.claims == 1
    assert (rerun["outcome"], rerun["skipped"]) == ("failed", False)
    assert after_rerun is not None
    assert after_rerun.claims == 2


def provider_identity_of(server: RunningSandbox) -> str:
    with invites.from_config(vendor_config("tenant_api", server.url)) as provider:
        return provider_identity(provider)


def test_fan_out_reports_a_claim_the_per_user_budget_refused_without_waiting(
    tmp_path: Path, server: RunningSandbox, sandbox: Sandbox
) -> None:
    ledger_path = tmp_path / "ledger.db"
    profiles = write_profiles(
        tmp_path / "invites.toml", server.url, str(ledger_path), per_user_limit="1/1h"
    )
    app = celery.Celery("invites-test", set_as_current=False)
    invites_celery.configure(app, profiles=profiles)

    def run_inline(name: str, args: Any, kwargs: Any, **_: Any) -> None:
        app.tasks[name].apply(args, kwargs)

    app.send_task = run_inline  # type: ignore[method-assign,assignment]
    user = _uuid(sandbox)
    try:
        first = list(invites_celery.fan_out(app, [user], run="run-1", timeout=30))
        second = list(invites_celery.fan_out(app, [user], run="run-2", timeout=30))
    finally:
        invites_celery._RESOURCES.close()

    assert [(o.status, o.skipped) for o in first] == [("sent", False)]
    assert [(o.status, o.skipped) for o in second] == [("failed", True)]
    assert type(second[0].error).__name__ == "ResendTooSoon"
    assert sandbox.emails_sent(user) == 1


def test_a_worker_takes_the_rate_limit_store_from_the_environment(
    app: celery.Celery, sandbox: Sandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INVITES_RATE_LIMIT_STORE", "redis://:test-password-not-real@127.0.0.1:1/0")
    invites_celery._RESOURCES.close()  # profiles are loaded once per worker process
    user = _uuid(sandbox)

    outcome = apply(app, "sandbox", user, "run-1")

    assert outcome["outcome"] == "failed"  # the store does not answer: nothing is sent
    assert outcome["error"] == "ConnectionFailed"
    assert "127.0.0.1:1" in outcome["message"]
    assert "test-password-not-real" not in outcome["message"]
    assert sandbox.emails_sent(user) == 0
