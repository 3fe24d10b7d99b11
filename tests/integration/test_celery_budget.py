"""Celery tasks and fan_out under a profile's per_user_limit (tasks run in-process, eagerly)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import celery
import pytest
from _support.celery_workers import write_profiles

from invites import celery as invites_celery
from invites.ledger import open_ledger
from invites.sandbox import RunningSandbox, Sandbox


@pytest.fixture
def app(tmp_path: Path, server: RunningSandbox) -> Iterator[celery.Celery]:
    profiles = write_profiles(
        tmp_path / "invites.toml", server.url, str(tmp_path / "ledger.db"), per_user_limit="1/1h"
    )
    application = celery.Celery("invites-test", set_as_current=False)
    invites_celery.configure(application, profiles=profiles)
    application.conf.task_always_eager = True
    yield application
    invites_celery._RESOURCES.close()


def user(sandbox: Sandbox) -> str:
    user_id = str(uuid.uuid4())
    sandbox.add_users("tenant_api", [user_id])
    return user_id


def apply(app: celery.Celery, *args: Any, **kwargs: Any) -> dict[str, Any]:
    result: dict[str, Any] = app.tasks[invites_celery.TASK_NAME].apply(args, kwargs).get()
    return result


def test_a_task_of_another_run_is_skipped_and_ignore_budget_sends(
    app: celery.Celery, sandbox: Sandbox, tmp_path: Path
) -> None:
    user_id = user(sandbox)
    first = apply(app, "sandbox", user_id, "nightly")
    refused = apply(app, "sandbox", user_id, "support")
    forced = apply(app, "sandbox", user_id, "urgent", ignore_budget=True)

    assert (first["outcome"], first["skipped"]) == ("sent", False)
    assert (refused["outcome"], refused["error"], refused["skipped"]) == (
        "failed",
        "ResendTooSoon",
        True,
    )
    assert (forced["outcome"], forced["skipped"]) == ("sent", False)
    assert sandbox.emails_sent(user_id) == 2
    with open_ledger(tmp_path / "ledger.db") as ledger:
        (urgent,) = ledger.records(run="urgent")
    assert urgent.budget_overridden


def test_fan_out_reports_a_refused_invitee_skipped_without_waiting(
    app: celery.Celery, sandbox: Sandbox
) -> None:
    tasks = app.tasks[invites_celery.TASK_NAME]
    app.send_task = lambda name, args, kwargs, **_: tasks.apply(args, kwargs)  # type: ignore[method-assign]
    users = [user(sandbox) for _ in range(3)]
    first = list(invites_celery.fan_out(app, users, run="monday", timeout=30))
    second = list(invites_celery.fan_out(app, users, run="reminder", timeout=30))
    again = list(invites_celery.fan_out(app, users, run="reminder", timeout=30))

    assert {(o.status, o.skipped) for o in first} == {("sent", False)}
    assert all(o.status == "failed" and o.skipped and o.too_soon for o in second)
    assert all(o.too_soon for o in again)  # asked again, refused again: not an old refusal
    assert sandbox.emails_snapshot() == dict.fromkeys(users, 1)
