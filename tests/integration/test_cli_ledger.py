"""``invites resend --journal`` as a ledger, and ``invites ledger show | export | settle``.

Commands run in-process through ``invites.cli.main`` against the sandbox on loopback.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from invites.cli import main
from invites.ledger import open_ledger
from invites.sandbox import (
    OTHER_TENANT_ID,
    TENANT_API_KEY,
    TENANT_ID,
    TENANT_USER_INVITED,
    TENANT_USER_INVITED_2,
    TENANT_USER_VERIFIED,
    Fault,
    RunningSandbox,
)


class Result:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code = code
        self.out = out
        self.err = err

    @property
    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out.splitlines()]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Any:
    def run(*args: str | Path) -> Result:
        code = main([str(arg) for arg in args])
        captured = capsys.readouterr()
        assert TENANT_API_KEY not in captured.out + captured.err
        return Result(code, captured.out, captured.err)

    return run


@pytest.fixture
def config(tmp_path: Path, server: RunningSandbox) -> Path:
    path = tmp_path / "invites.toml"
    path.write_text(
        f"""\
[profiles.tenant]
provider = "tenant_api"
base_url = "{server.url}"
token = "{TENANT_API_KEY}"
tenant_id = "{TENANT_ID}"
""",
        encoding="utf-8",
    )
    return path


def test_an_unknown_outcome_is_listed_and_settled_by_hand(
    cli: Any, config: Path, tmp_path: Path, server: RunningSandbox
) -> None:
    journal = tmp_path / "journal.db"
    server.sandbox.inject(TENANT_USER_INVITED, Fault.DROP_AFTER)
    resend = ("resend", TENANT_USER_INVITED, TENANT_USER_VERIFIED, "--config", config)
    first = cli(*resend, "--journal", journal)
    assert first.code == 1

    shown = cli("ledger", "show", journal, "--state", "unknown")
    exported = cli("ledger", "export", journal)

    assert shown.code == 0
    assert TENANT_USER_INVITED in shown.out
    assert TENANT_USER_VERIFIED not in shown.out
    assert "1 records, 1 unknown" in shown.out
    assert f"invites ledger settle {journal} USER_ID --as sent|failed" in shown.out
    rows = {row["user_id"]: row for row in exported.records}
    assert rows[TENANT_USER_INVITED]["reads"] == "unknown"
    assert rows[TENANT_USER_INVITED]["error"]["type"] == "OutcomeUnknown"
    assert rows[TENANT_USER_VERIFIED]["state"] == "already_verified"
    assert rows[TENANT_USER_VERIFIED]["identity"]["tenant_id"] == TENANT_ID
    assert rows[TENANT_USER_VERIFIED]["run"] == "default"

    # Checked with the vendor: it did go out. The rerun then counts it as sent.
    settled = cli(
        "ledger", "settle", journal, TENANT_USER_INVITED, "--as", "sent", "--note", "seen"
    )
    assert settled.code == 0
    assert "-> sent" in settled.out
    rerun = cli(*resend, "--journal", journal)
    assert rerun.code == 0
    assert {r["outcome"] for r in rerun.records} == {"sent", "already_verified"}
    assert all(r["skipped"] for r in rerun.records)
    by_user = {r["user_id"]: r for r in rerun.records}
    assert by_user[TENANT_USER_INVITED]["message"] == "settled by hand as sent: seen"
    assert server.sandbox.emails_sent(TENANT_USER_INVITED) == 1


def test_settling_as_failed_lets_the_next_run_send(
    cli: Any, config: Path, tmp_path: Path, server: RunningSandbox
) -> None:
    journal = tmp_path / "journal.db"
    server.sandbox.inject(TENANT_USER_INVITED, Fault.DROP_BEFORE)  # the vendor never acted
    resend = ("resend", TENANT_USER_INVITED, "--config", config, "--journal", journal)
    assert cli(*resend).records[0]["outcome"] == "unknown"
    assert cli(*resend).records[0]["skipped"] is True

    assert cli("ledger", "settle", journal, TENANT_USER_INVITED, "--as", "failed").code == 0
    rerun = cli(*resend)

    assert rerun.records[0]["outcome"] == "sent"
    assert rerun.records[0]["skipped"] is False
    assert server.sandbox.emails_sent(TENANT_USER_INVITED) == 1


def test_settle_needs_one_matching_record(
    cli: Any, config: Path, tmp_path: Path, server: RunningSandbox
) -> None:
    journal = tmp_path / "journal.db"
    for run in ("monday", "tuesday"):
        args = ("resend", TENANT_USER_INVITED, "--config", config, "--journal", journal)
        result = cli(*args, "--run", run)
        assert result.records[0]["skipped"] is False  # another run name sends again

    missing = cli("ledger", "settle", journal, TENANT_USER_INVITED_2, "--as", "sent")
    ambiguous = cli("ledger", "settle", journal, TENANT_USER_INVITED, "--as", "sent")
    settle = ("ledger", "settle", journal, TENANT_USER_INVITED)
    chosen = cli(*settle, "--as", "failed", "--run", "monday")
    no_file = cli("ledger", "show", tmp_path / "none.db")

    assert missing.code == 2
    assert "no record of user" in missing.err
    assert ambiguous.code == 2
    assert "choose one with --run" in ambiguous.err
    assert chosen.code == 0
    assert no_file.code == 2
    assert server.sandbox.emails_sent(TENANT_USER_INVITED) == 2
    with open_ledger(journal) as ledger:
        states = {r.key.run: r.state for r in ledger.records()}
    assert states == {"monday": "failed", "tuesday": "sent"}


def test_every_input_row_gets_one_output_line(
    cli: Any, config: Path, tmp_path: Path, server: RunningSandbox
) -> None:
    users = tmp_path / "users.csv"
    users.write_text(
        "user_id\n"
        f"{TENANT_USER_INVITED}\n"  # line 2
        "not-a-uuid\n"  # line 3: refused before sending
        f"{TENANT_USER_INVITED}\n"  # line 4: repeats line 2
        f"{TENANT_USER_VERIFIED}\n"  # line 5
        "not-a-uuid\n"  # line 6: repeats line 3
        f"{TENANT_USER_INVITED}\n",  # line 7: repeats line 2
        encoding="utf-8",
    )
    journal = tmp_path / "journal.db"

    result = cli("resend", "--config", config, "--input", users, "--journal", journal)

    rows = {r["row"]: r for r in result.records}
    assert sorted(rows) == [f"line {n}" for n in range(2, 8)]
    assert len(result.records) == 6
    assert rows["line 4"]["duplicate_of"] == rows["line 7"]["duplicate_of"] == "line 2"
    assert rows["line 6"]["duplicate_of"] == "line 3"
    assert rows["line 6"]["outcome"] == rows["line 3"]["outcome"] == "failed"
    assert rows["line 4"]["outcome"] == "sent"
    assert server.sandbox.emails_sent(TENANT_USER_INVITED) == 1
    assert "3 repeated rows" in result.err


def test_a_dry_run_reads_the_journal_and_never_creates_it(
    cli: Any, config: Path, tmp_path: Path, server: RunningSandbox
) -> None:
    journal = tmp_path / "journal.db"
    resend = ("resend", TENANT_USER_INVITED, TENANT_USER_INVITED_2, "--config", config)

    before = cli(*resend, "--journal", journal, "--dry-run")
    assert not journal.exists()
    cli("resend", TENANT_USER_INVITED, "--config", config, "--journal", journal)
    after = cli(*resend, "--journal", journal, "--dry-run")

    assert "2 to resend" in before.err
    assert "1 to resend, 0 invalid, 1 skipped (journal: sent)" in after.err
    assert server.sandbox.emails_snapshot() == {TENANT_USER_INVITED: 1}


def test_a_journal_reused_with_another_tenant_does_not_skip_its_users(
    cli: Any, tmp_path: Path, server: RunningSandbox
) -> None:
    config = tmp_path / "two.toml"
    profiles = {"first": TENANT_ID, "renamed": TENANT_ID, "other": OTHER_TENANT_ID}
    config.write_text(
        "".join(
            f'[profiles.{name}]\nprovider = "tenant_api"\nbase_url = "{server.url}"\n'
            f'token = "{TENANT_API_KEY}"\ntenant_id = "{tenant}"\n\n'
            for name, tenant in profiles.items()
        ),
        encoding="utf-8",
    )
    journal = tmp_path / "journal.db"
    resend = ("resend", TENANT_USER_INVITED, "--config", config, "--journal", journal)

    first = cli(*resend, "--profile", "first")
    renamed = cli(*resend, "--profile", "renamed")
    other = cli(*resend, "--profile", "other")

    assert first.records[0]["outcome"] == "sent"
    assert renamed.records[0]["skipped"] is True  # the profile's name is not its identity
    assert other.records[0]["skipped"] is False  # another tenant's user: tried, not skipped
    assert other.records[0]["error"] == "TenantMismatch"
    assert server.sandbox.emails_sent(TENANT_USER_INVITED) == 1
