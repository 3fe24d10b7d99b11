"""The command line with servers: ``ledger migrate``, ``check-config`` asking the servers a
profile names, and ``resend --via celery`` against a real worker, compared with a local run."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest
from _support.celery_workers import start_worker, stop_worker, worker_env, write_profiles
from _support.services import (
    AMQP_URL,
    POSTGRES_URL,
    REDIS_URL,
    amqp_problem,
    fresh_postgres_url,
    postgres_problem,
    redis_problem,
    require,
)

from invites.cli import main
from invites.sandbox import (
    TENANT_USER_INVITED,
    TENANT_USER_INVITED_2,
    TENANT_USER_UNKNOWN,
    TENANT_USER_VERIFIED,
    RunningSandbox,
    Sandbox,
)

pytestmark = pytest.mark.services

psycopg = pytest.importorskip("psycopg")

SECRET = "test-password-not-real"


def cli(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, str, str]:
    code = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def table_exists(url: str) -> bool:
    schema = url.rsplit("schema=", 1)[1]
    with psycopg.connect(POSTGRES_URL) as connection:
        row = connection.execute("SELECT to_regclass(%s)", (f"{schema}.invites_ledger",)).fetchone()
    return row is not None and row[0] is not None


# -- ledger migrate ------------------------------------------------------------------------------


def test_ledger_migrate_creates_the_schema_once_and_again(
    capsys: pytest.CaptureFixture[str],
) -> None:
    url = fresh_postgres_url()
    assert not table_exists(url)

    first = cli(capsys, "ledger", "migrate", url)
    again = cli(capsys, "ledger", "migrate", url)

    assert first[0] == 0
    assert again[0] == 0
    assert "schema ready" in first[1]
    assert table_exists(url)


def test_ledger_migrate_reports_an_unreachable_server_without_its_password(
    capsys: pytest.CaptureFixture[str],
) -> None:
    require("PostgreSQL", postgres_problem())
    code, out, err = cli(
        capsys, "ledger", "migrate", f"postgresql://u:{SECRET}@127.0.0.1:1/x?connect_timeout=2"
    )
    unknown = cli(capsys, "ledger", "migrate", "mysql://db/x")

    assert code == 1
    assert "127.0.0.1:1" in err
    assert SECRET not in out + err
    assert unknown[0] == 2
    assert "unknown scheme" in unknown[2]


# -- check-config --------------------------------------------------------------------------------


def test_check_config_asks_the_ledger_and_the_rate_limit_store(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, server: RunningSandbox
) -> None:
    require("Redis", redis_problem())
    url = fresh_postgres_url().replace("postgres@", f"postgres:{SECRET}@", 1)
    config = write_profiles(
        tmp_path / "ok.toml", server.url, url, rate_limit_store=f"{REDIS_URL}/0"
    )

    code, out, err = cli(capsys, "check-config", "--config", config)

    assert code == 0, err
    assert "ledger postgresql://postgres:***@" in out
    assert "rate_limit_store redis://127.0.0.1:6379/0: ok" in out
    assert SECRET not in out + err


def test_check_config_fails_when_a_named_server_does_not_answer(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, server: RunningSandbox
) -> None:
    require("PostgreSQL", postgres_problem())
    dead = f"postgresql://postgres:{SECRET}@127.0.0.1:1/test?connect_timeout=2"
    config = write_profiles(
        tmp_path / "dead.toml", server.url, dead, rate_limit_store="redis://127.0.0.1:1/0"
    )

    code, out, err = cli(capsys, "check-config", "--config", config)

    assert code == 1
    assert "does not answer" in err
    assert "rate_limit_store redis://127.0.0.1:1/0: does not answer PING" in err
    assert SECRET not in out + err


# -- resend --via celery -------------------------------------------------------------------------


def records(out: str) -> list[dict[str, Any]]:
    return sorted((json.loads(line) for line in out.splitlines()), key=lambda r: r["user_id"])


def test_resend_via_celery_prints_what_a_local_run_prints(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, server: RunningSandbox, sandbox: Sandbox
) -> None:
    require("RabbitMQ", amqp_problem())
    users = [TENANT_USER_INVITED, TENANT_USER_INVITED_2, TENANT_USER_VERIFIED, TENANT_USER_UNKNOWN]
    rows = tmp_path / "rows.csv"
    rows.write_text("user_id\n" + "".join(f"{user}\n" for user in users), encoding="utf-8")
    config = write_profiles(tmp_path / "invites.toml", server.url, fresh_postgres_url())
    queue = f"invites-test-{uuid.uuid4().hex[:12]}"
    worker = start_worker(tmp_path, "w", worker_env(tmp_path, AMQP_URL, queue, config))
    via_celery = ("--via", "celery", "--broker", AMQP_URL, "--queue", queue, "--run", "r1")
    try:
        local = cli(capsys, "resend", "--config", config, "--input", rows)
        local_emails = sandbox.emails_snapshot()
        sandbox.reset()
        remote = cli(capsys, "resend", "--config", config, "--input", rows, *via_celery)
        remote_emails = sandbox.emails_snapshot()
        again = cli(capsys, "resend", "--config", config, "--input", rows, *via_celery)
    finally:
        stop_worker(worker)
        from kombu import Connection

        with Connection(AMQP_URL) as connection:
            connection.default_channel.queue_delete(queue)  # type: ignore[attr-defined]

    assert local[0] == remote[0] == again[0] == 1  # the unknown user failed in each
    assert records(remote[1]) == records(local[1])
    assert remote_emails == local_emails == {TENANT_USER_INVITED: 1, TENANT_USER_INVITED_2: 1}
    assert sandbox.emails_snapshot() == remote_emails  # the rerun sent nothing
    replayed = records(again[1])
    sent = [r for r in replayed if r["outcome"] in ("sent", "already_verified")]
    assert sent
    assert all(r["skipped"] for r in sent)
    assert [r["outcome"] for r in replayed] == [r["outcome"] for r in records(remote[1])]


def test_resend_via_celery_needs_no_token_takes_the_broker_from_the_environment_and_warns(
    capsys: pytest.CaptureFixture[str],
    tmp_path: Path,
    server: RunningSandbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    require("RabbitMQ", amqp_problem())
    config = write_profiles(tmp_path / "invites.toml", server.url, fresh_postgres_url())
    text = config.read_text(encoding="utf-8")
    token_line = next(line for line in text.splitlines() if line.startswith("token = "))
    config.write_text(
        text.replace(token_line, 'token_env = "INVITES_TEST_TOKEN_NOBODY_SET"'), encoding="utf-8"
    )
    monkeypatch.delenv("INVITES_TEST_TOKEN_NOBODY_SET", raising=False)
    monkeypatch.setenv("INVITES_BROKER", AMQP_URL)
    queue = f"invites-test-{uuid.uuid4().hex[:12]}"
    try:
        code, out, err = cli(
            capsys, "resend", "--config", config, TENANT_USER_INVITED,
            "--via", "celery", "--queue", queue, "--run", "r1", "--wait", "2",
        )  # fmt: skip
    finally:
        from kombu import Connection

        with Connection(AMQP_URL) as connection:
            connection.default_channel.queue_delete(queue)  # type: ignore[attr-defined]

    assert code == 1, err
    assert f"no worker consumes queue {queue!r}" in err
    assert records(out)[0]["outcome"] == "unknown"
    assert "guest" not in err
