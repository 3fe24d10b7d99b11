"""The per-user budget as callers see it: the setting, single resends, bulk runs, processes.

Every resend goes to the sandbox over a real socket, which counts the emails each user got.
"""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest
from _support.services import fresh_postgres_url
from _support.vendors import vendor_config

import invites
from invites import ConfigurationError, ResendTooSoon
from invites.ledger import open_ledger
from invites.sandbox import RunningSandbox, Sandbox

MODES = ("sync", "async")


def users(sandbox: Sandbox, count: int) -> list[str]:
    ids = [str(uuid.uuid4()) for _ in range(count)]
    sandbox.add_users("tenant_api", ids)
    return ids


def config(server: RunningSandbox, ledger: Path | str, limit: str = "1/1h") -> dict[str, Any]:
    return vendor_config("tenant_api", server.url, ledger=str(ledger), per_user_limit=limit)


def bulk(mode: str, provider: Any, ids: list[str], **options: Any) -> list[invites.Outcome]:
    if mode == "sync":
        return list(invites.resend_many(provider, ids, concurrency=4, **options))

    async def run() -> list[invites.Outcome]:
        return [o async for o in invites.aresend_many(provider, ids, concurrency=4, **options)]

    return asyncio.run(run())


# -- the setting ---------------------------------------------------------------------------------


def test_a_limit_without_a_ledger_is_a_configuration_error_naming_the_ledger() -> None:
    settings = vendor_config("tenant_api", "https://api.example", per_user_limit="1/24h")
    with pytest.raises(ConfigurationError) as caught:
        invites.from_config(settings)
    assert caught.value.problems[0].startswith("ledger:")
    assert "per_user_limit" in caught.value.problems[0]


@pytest.mark.parametrize("bad", ["1/24", "0/1h", "often", 3])
def test_a_bad_limit_is_a_configuration_error_naming_the_key(bad: object, tmp_path: Path) -> None:
    settings = vendor_config(
        "tenant_api", "https://api.example", ledger=str(tmp_path / "l.db"), per_user_limit=bad
    )
    with pytest.raises(ConfigurationError, match="per_user_limit"):
        invites.from_config(settings)


def test_the_limit_comes_from_the_environment_and_from_profiles(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    base = vendor_config("tenant_api", "https://api.example")
    for name, value in base.items():
        monkeypatch.setenv(f"INVITES_{name.upper()}", str(value))
    monkeypatch.setenv("INVITES_LEDGER", str(tmp_path / "l.db"))
    monkeypatch.setenv("INVITES_PER_USER_LIMIT", "3/7d")
    with invites.from_env() as provider:
        assert provider.settings.per_user_limit == "3/7d"
    profile = tmp_path / "invites.toml"
    lines = [f"{k} = {json.dumps(v)}" for k, v in base.items()]
    lines += [f"ledger = {json.dumps(str(tmp_path / 'l.db'))}", 'per_user_limit = "1/24h"']
    profile.write_text("[profiles.acme]\n" + "\n".join(lines) + "\n")
    profiles = invites.load_profiles(profile)
    try:
        assert profiles["acme"].settings.per_user_limit == "1/24h"
    finally:
        profiles.close()


# -- single resends -------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_a_second_resend_inside_the_window_raises_before_any_request(
    mode: str, server: RunningSandbox, sandbox: Sandbox, tmp_path: Path
) -> None:
    (user,) = users(sandbox, 1)
    with invites.from_config(config(server, tmp_path / "l.db")) as provider:
        if mode == "sync":
            provider.resend_invite(user)
            requests = sandbox.request_count
            with pytest.raises(ResendTooSoon) as caught:
                provider.resend_invite(user)
        else:
            asyncio.run(provider.aresend_invite(user))
            requests = sandbox.request_count
            with pytest.raises(ResendTooSoon) as caught:
                asyncio.run(provider.aresend_invite(user))
    assert sandbox.request_count == requests  # nothing left for the refused one
    assert sandbox.emails_sent(user) == 1
    error = caught.value
    assert isinstance(error, invites.InviteError)
    assert error.provider == "tenant_api"
    assert error.user_id == user
    assert error.retry_after is not None
    assert 3590 < error.retry_after <= 3600
    assert error.last_sent_at is not None
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301 - our own object
    assert type(copy) is ResendTooSoon
    assert (copy.retry_after, copy.last_sent_at) == (error.retry_after, error.last_sent_at)


def test_ignore_budget_sends_once_more_and_the_ledger_says_so(
    server: RunningSandbox, sandbox: Sandbox, tmp_path: Path
) -> None:
    (user,) = users(sandbox, 1)
    with invites.from_config(config(server, tmp_path / "l.db")) as provider:
        provider.resend_invite(user)
        provider.resend_invite(user, ignore_budget=True)
        with pytest.raises(ResendTooSoon):
            provider.resend_invite(user)  # the override was for one call
    assert sandbox.emails_sent(user) == 2
    with open_ledger(tmp_path / "l.db") as ledger:
        records = list(ledger.records(user_id=user))
    assert [(r.state, r.budget_overridden) for r in records] == [
        ("sent", False),
        ("sent", True),
        ("failed", False),
    ]


def test_an_idempotency_key_the_budget_refused_is_sent_once_the_budget_allows(
    server: RunningSandbox, sandbox: Sandbox, tmp_path: Path
) -> None:
    (user,) = users(sandbox, 1)
    with invites.from_config(config(server, tmp_path / "l.db")) as provider:
        provider.resend_invite(user)
        with pytest.raises(ResendTooSoon):
            provider.resend_invite(user, idempotency_key="reminder-1")
    with invites.from_config(config(server, tmp_path / "l.db", "2/1h")) as provider:
        provider.resend_invite(user, idempotency_key="reminder-1")  # not a replayed refusal
        provider.resend_invite(user, idempotency_key="reminder-1")  # now a replayed send
    assert sandbox.emails_sent(user) == 2


# -- bulk runs ------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_two_runs_send_each_user_once_and_the_second_skips_every_row(
    mode: str, server: RunningSandbox, sandbox: Sandbox, tmp_path: Path
) -> None:
    ids = users(sandbox, 6)
    with (
        invites.from_config(config(server, tmp_path / "l.db")) as provider,
        open_ledger(tmp_path / "l.db") as ledger,
    ):
        first = bulk(mode, provider, ids, ledger=ledger, run="monday")
        second = bulk(mode, provider, ids, ledger=ledger, run="nightly")
    assert {o.status for o in first} == {"sent"}
    assert all(o.status == "failed" and o.skipped and o.too_soon for o in second)
    assert all(isinstance(o.error, ResendTooSoon) for o in second)
    assert sandbox.emails_snapshot() == dict.fromkeys(ids, 1)


def test_two_an_hour_allows_exactly_two_runs_and_ignore_budget_a_third(
    server: RunningSandbox, sandbox: Sandbox, tmp_path: Path
) -> None:
    ids = users(sandbox, 4)
    with (
        invites.from_config(config(server, tmp_path / "l.db", "2/1h")) as provider,
        open_ledger(tmp_path / "l.db") as ledger,
    ):
        for run in ("a", "b", "c"):
            bulk("sync", provider, ids, ledger=ledger, run=run)
        assert sandbox.emails_snapshot() == dict.fromkeys(ids, 2)
        forced = bulk("sync", provider, ids, ledger=ledger, run="d", ignore_budget=True)
        assert {o.status for o in forced} == {"sent"}
        assert sandbox.emails_snapshot() == dict.fromkeys(ids, 3)
        overridden = [r for r in ledger.records(run="d") if r.budget_overridden]
    assert sorted(r.key.user_id for r in overridden) == sorted(ids)


def test_a_bulk_run_without_a_ledger_counts_in_the_providers_own(
    server: RunningSandbox, sandbox: Sandbox, tmp_path: Path
) -> None:
    ids = users(sandbox, 3)
    with invites.from_config(config(server, tmp_path / "l.db")) as provider:
        first = bulk("sync", provider, ids)
        second = bulk("async", provider, ids)
        with pytest.raises(ValueError, match="ignore_budget"):
            bulk("sync", provider, ids, ignore_budget=True)
    assert {o.status for o in first} == {"sent"}
    assert all(o.too_soon and o.skipped for o in second)
    assert sandbox.emails_snapshot() == dict.fromkeys(ids, 1)


# -- processes racing -----------------------------------------------------------------------------

_RACER = textwrap.dedent(
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
            print(json.dumps([outcome.user_id, outcome.status, outcome.too_soon]), flush=True)
    """
)


@pytest.mark.parametrize("store", ["sqlite", "postgres"])
def test_two_processes_with_different_runs_racing_200_users_email_each_once(
    store: str, server: RunningSandbox, sandbox: Sandbox, tmp_path: Path
) -> None:
    url = str(tmp_path / "l.db") if store == "sqlite" else fresh_postgres_url()
    ids = users(sandbox, 200)
    settings = config(server, url)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    processes = []
    for run in ("nightly", "support-tool"):
        process = subprocess.Popen(  # noqa: S603
            [sys.executable, "-c", _RACER, json.dumps(settings), url, run],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert process.stdin is not None
        assert process.stdout is not None
        process.stdin.write(" ".join(ids) + "\n")
        process.stdin.flush()
        assert process.stdout.readline() == "ready\n"
        processes.append(process)
    for process in processes:  # released together: every user is raced for
        assert process.stdin is not None
        process.stdin.write("go\n")
        process.stdin.flush()
    outputs = [process.communicate(timeout=120)[0] for process in processes]

    assert [process.returncode for process in processes] == [0, 0]
    lines = [json.loads(line) for output in outputs for line in output.splitlines()]
    assert len(lines) == 400
    assert sandbox.emails_snapshot() == dict.fromkeys(ids, 1)
    sent = [user for user, status, _ in lines if status == "sent"]
    refused = [user for user, status, too_soon in lines if status == "failed" and too_soon]
    assert sorted(sent) == sorted(ids)
    assert sorted(refused) == sorted(ids)
