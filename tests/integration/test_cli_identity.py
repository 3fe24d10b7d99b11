"""``invites resend`` keys each user and each vendor once, whatever their spelling: end to end
through the sandbox served on loopback."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from invites.cli import main
from invites.ledger import open_ledger
from invites.sandbox import (
    SOFTWAREONE_ACCOUNT_ID,
    SOFTWAREONE_TOKEN,
    SOFTWAREONE_USER_INVITED,
    TENANT_API_KEY,
    TENANT_ID,
    TENANT_USER_INVITED,
    RunningSandbox,
    Sandbox,
)


def run_cli(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, list[Any], str]:
    code = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    assert TENANT_API_KEY not in captured.out + captured.err
    return code, [json.loads(line) for line in captured.out.splitlines()], captured.err


def tenant_config(path: Path, base_url: str) -> Path:
    path.write_text(
        f'[profiles.tenant]\nprovider = "tenant_api"\nbase_url = "{base_url}"\n'
        f'token = "{TENANT_API_KEY}"\n'
        f'tenant_id = "{TENANT_ID}"\n',
        encoding="utf-8",
    )
    return path


def test_a_run_and_a_rerun_with_one_uuid_in_three_cases_email_once(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, server: RunningSandbox, sandbox: Sandbox
) -> None:
    config = tenant_config(tmp_path / "invites.toml", server.url)
    journal = tmp_path / "journal.db"
    upper, lower = TENANT_USER_INVITED.upper(), TENANT_USER_INVITED.lower()
    mixed = upper[:8] + lower[8:]
    users = tmp_path / "users.csv"
    users.write_text(f"user_id\n{upper}\n{lower}\n{mixed}\n", encoding="utf-8")

    code, records, err = run_cli(
        capsys, "resend", "--config", config, "--input", users, "--journal", journal
    )
    assert code == 0, err
    assert sorted(r["user_id"] for r in records) == sorted([upper, lower, mixed])  # as written
    assert {r["outcome"] for r in records} == {"sent"}
    assert [r.get("duplicate_of") for r in records].count("line 2") == 2
    assert "repeated (line 2)" in err

    code, again, err = run_cli(
        capsys, "resend", "--config", config, mixed, lower, upper, "--journal", journal
    )
    assert code == 0, err
    assert [r["user_id"] for r in again] == [mixed, lower, upper]
    assert all(r["skipped"] for r in again)

    assert sandbox.emails_snapshot() == {TENANT_USER_INVITED: 1}
    with open_ledger(journal) as ledger:
        assert [r.key.user_id for r in ledger.records()] == [TENANT_USER_INVITED]


def test_three_spellings_of_one_base_url_with_one_journal_and_run_email_once(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, server: RunningSandbox, sandbox: Sandbox
) -> None:
    assert server.url.startswith("http://")
    host_and_port = server.url.removeprefix("http://")
    journal = tmp_path / "journal.db"
    for n, base_url in enumerate(
        [f"HTTP://{host_and_port.upper()}", f"http://{host_and_port}/", server.url]
    ):
        config = tenant_config(tmp_path / f"invites-{n}.toml", base_url)
        code, records, err = run_cli(
            capsys, "resend", "--config", config, TENANT_USER_INVITED, "--journal", journal
        )
        assert code == 0, err
        assert [r["skipped"] for r in records] == [n > 0]

    assert sandbox.emails_snapshot() == {TENANT_USER_INVITED: 1}
    with open_ledger(journal) as ledger:
        assert len(list(ledger.records())) == 1


def test_softwareone_public_v1_and_the_bare_host_are_one_vendor(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, server: RunningSandbox, sandbox: Sandbox
) -> None:
    journal = tmp_path / "journal.db"
    for n, suffix in enumerate(["/public/v1/", "", "/public"]):
        config = tmp_path / f"invites-{n}.toml"
        config.write_text(
            f'[profiles.s1]\nprovider = "softwareone"\nbase_url = "{server.url}{suffix}"\n'
            f'token = "{SOFTWAREONE_TOKEN}"\naccount_id = "{SOFTWAREONE_ACCOUNT_ID}"\n',
            encoding="utf-8",
        )
        code, records, err = run_cli(
            capsys, "resend", "--config", config, SOFTWAREONE_USER_INVITED, "--journal", journal
        )
        assert code == 0, err
        assert [r["skipped"] for r in records] == [n > 0]
    assert sandbox.emails_sent(SOFTWAREONE_USER_INVITED) == 1
