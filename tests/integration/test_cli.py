"""The ``invites`` command line, end to end through the sandbox served on loopback.

Commands run in-process through ``invites.cli.main`` (output captured by capsys); one subprocess
checks ``python -m invites --help`` and what it imports.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import invites.cli
from invites.cli import main
from invites.cli import rows as cli_rows
from invites.ledger import open_ledger
from invites.sandbox import (
    ECOSUITE_TOKEN,
    SOFTWAREONE_ACCOUNT_ID,
    SOFTWAREONE_TOKEN,
    TENANT_API_KEY,
    TENANT_ID,
    TENANT_USER_COOLDOWN,
    TENANT_USER_INVITED,
    TENANT_USER_INVITED_2,
    TENANT_USER_UNKNOWN,
    TENANT_USER_VERIFIED,
    Fault,
    RunningSandbox,
)

RECORD_KEYS = {"user_id", "row", "outcome", "error", "message", "status_code", "skipped"}
SECRETS = (TENANT_API_KEY, ECOSUITE_TOKEN, SOFTWAREONE_TOKEN)


class Result:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code = code
        self.out = out
        self.err = err

    @property
    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out.splitlines()]

    def by_user(self) -> dict[str | None, dict[str, Any]]:
        return {record["user_id"]: record for record in self.records}


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Any:
    def run(*args: str | Path) -> Result:
        code = main([str(arg) for arg in args])
        captured = capsys.readouterr()
        for secret in SECRETS:
            assert secret not in captured.out
            assert secret not in captured.err
        return Result(code, captured.out, captured.err)

    return run


def write_config(path: Path, base_url: str) -> Path:
    path.write_text(
        f"""\
default = "tenant"

[profiles.tenant]
provider = "tenant_api"
base_url = "{base_url}"
token = "{TENANT_API_KEY}"
tenant_id = "{TENANT_ID}"

[profiles.ecosuite]
provider = "ecosuite"
base_url = "{base_url}"
token = "{ECOSUITE_TOKEN}"

[profiles.softwareone]
provider = "softwareone"
base_url = "{base_url}"
token = "{SOFTWAREONE_TOKEN}"
account_id = "{SOFTWAREONE_ACCOUNT_ID}"
""",
        encoding="utf-8",
    )
    return path


@pytest.fixture
def config(tmp_path: Path, server: RunningSandbox) -> Path:
    return write_config(tmp_path / "invites.toml", server.url)


def write_csv(path: Path, *lines: str) -> Path:
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def resends(server: RunningSandbox) -> list[str]:
    """The paths of every resend request the sandbox received."""
    return [r.path for r in server.sandbox.requests if r.method in ("POST", "PUT")]


# -- resend ----------------------------------------------------------------------------------


def test_csv_in_jsonl_out_exit_0(
    cli: Any, config: Path, tmp_path: Path, server: RunningSandbox
) -> None:
    users = write_csv(
        tmp_path / "users.csv",
        "user_id,email,first_name,last_name,timezone,user_type",
        f"{TENANT_USER_INVITED},ada@example.com,Ada,Lovelace,Europe/London,admin",
        f"{TENANT_USER_VERIFIED},,,,,",
    )

    result = cli("resend", "--config", config, "--input", users)

    assert result.code == 0
    assert all(set(record) == RECORD_KEYS for record in result.records)
    assert result.by_user() == {
        TENANT_USER_INVITED: {
            "user_id": TENANT_USER_INVITED,
            "row": "line 2",
            "outcome": "sent",
            "error": None,
            "message": "Invite resent.",
            "status_code": 200,
            "skipped": False,
        },
        TENANT_USER_VERIFIED: {
            "user_id": TENANT_USER_VERIFIED,
            "row": "line 3",
            "outcome": "already_verified",
            "error": "AlreadyVerified",
            "message": "User is already verified.",
            "status_code": 409,
            "skipped": False,
        },
    }
    assert server.sandbox.emails_snapshot() == {TENANT_USER_INVITED: 1}
    assert "2 invitees" in result.err
    assert "1 sent, 1 already verified, 0 failed, 0 unknown" in result.err


def test_any_failure_exits_1_and_reports_the_mapped_error(
    cli: Any, config: Path, server: RunningSandbox
) -> None:
    result = cli(
        "resend", TENANT_USER_INVITED, TENANT_USER_UNKNOWN, TENANT_USER_COOLDOWN, "--config", config
    )

    assert result.code == 1
    records = result.by_user()
    assert records[TENANT_USER_INVITED]["outcome"] == "sent"
    assert records[TENANT_USER_UNKNOWN] == {
        "user_id": TENANT_USER_UNKNOWN,
        "row": "argument 2",
        "outcome": "failed",
        "error": "UserNotFound",
        "message": "User not found.",
        "status_code": 404,
        "skipped": False,
    }
    assert records[TENANT_USER_COOLDOWN]["status_code"] == 422
    assert "UserNotFound" in result.err  # the summary table


def test_other_profiles_and_an_output_file(
    cli: Any, config: Path, tmp_path: Path, server: RunningSandbox
) -> None:
    output = tmp_path / "out.jsonl"
    users = tmp_path / "users.jsonl"
    users.write_text('{"user_id": "eco-user-1"}\n{"user_id": "eco-user-2", "timezone": "UTC"}\n')

    result = cli(
        "resend", "--config", config, "--profile", "ecosuite", "--input", users, "--output", output
    )

    assert result.code == 0
    assert result.out == ""
    lines = [json.loads(line) for line in output.read_text().splitlines()]
    assert sorted((r["user_id"], r["outcome"]) for r in lines) == [
        ("eco-user-1", "sent"),
        ("eco-user-2", "sent"),
    ]
    assert server.sandbox.emails_snapshot() == {"eco-user-1": 1, "eco-user-2": 1}


def test_bad_rows_are_reported_with_line_numbers_and_counted_failed(
    cli: Any, config: Path, tmp_path: Path, server: RunningSandbox
) -> None:
    users = write_csv(
        tmp_path / "users.csv",
        "user_id,email",
        ",nobody@example.com",  # line 2: no user id
        "..,x@example.com",  # line 3: unsafe id
        f"{TENANT_USER_INVITED},a@example.com",  # line 4: fine
        "not-a-uuid,",  # line 5: the tenant API takes UUIDs only
        "one,two,three",  # line 6: too many fields
        f'{TENANT_USER_INVITED_2},"bad\x07mail@example.com"',  # line 7: control character
    )

    result = cli("resend", "--config", config, "--input", users)

    assert result.code == 1
    for line in (2, 3, 5, 6, 7):
        assert f"users.csv: line {line}: " in result.err
    assert "line 4" not in result.err
    failed = [r for r in result.records if r["outcome"] == "failed"]
    assert sorted(r["message"].split(":")[0] for r in failed) == [
        "line 2",
        "line 3",
        "line 5",
        "line 6",
        "line 7",
    ]
    assert {r["error"] for r in failed} == {"InvalidInvitee"}
    assert {r["user_id"] for r in failed} == {None, "..", "not-a-uuid", TENANT_USER_INVITED_2}
    assert result.by_user()[TENANT_USER_INVITED]["outcome"] == "sent"
    # The bad rows never reached the vendor; the good one went through.
    assert len(resends(server)) == 1
    assert server.sandbox.emails_snapshot() == {TENANT_USER_INVITED: 1}


def test_bad_json_lines_are_reported_with_line_numbers(
    cli: Any, config: Path, tmp_path: Path
) -> None:
    users = tmp_path / "users.jsonl"
    users.write_text(
        f'{{"user_id": "{TENANT_USER_INVITED}"}}\n'
        "\n"
        "{not json\n"
        '["a list"]\n'
        '{"email": "no-id@example.com"}\n'
        f'{{"user_id": "{TENANT_USER_VERIFIED}", "nickname": "v"}}\n'
    )

    result = cli("resend", "--config", config, "--input", users)

    assert result.code == 1
    assert "users.jsonl: line 3: not valid JSON" in result.err
    assert "users.jsonl: line 4: expected a JSON object, got list" in result.err
    assert "users.jsonl: line 5: user_id is missing" in result.err
    assert "ignoring unknown keys: nickname" in result.err
    outcomes = sorted(r["outcome"] for r in result.records)
    assert outcomes == ["already_verified", "failed", "failed", "failed", "sent"]


def test_a_repeated_user_id_is_resent_once(
    cli: Any, config: Path, tmp_path: Path, server: RunningSandbox
) -> None:
    result = cli(
        "resend", TENANT_USER_INVITED, TENANT_USER_INVITED, TENANT_USER_INVITED, "--config", config
    )

    assert result.code == 0
    first, *repeats = result.records
    assert first["row"] == "argument 1"
    assert first["outcome"] == "sent"
    assert not first["skipped"]
    assert [r["row"] for r in repeats] == ["argument 2", "argument 3"]
    for repeat in repeats:
        assert repeat == {
            **first,
            "row": repeat["row"],
            "skipped": True,
            "duplicate_of": "argument 1",
        }
    assert "argument 2: user id" in result.err
    assert server.sandbox.emails_sent(TENANT_USER_INVITED) == 1


def test_dry_run_checks_every_row_and_sends_nothing(
    cli: Any, config: Path, tmp_path: Path, server: RunningSandbox
) -> None:
    journal = tmp_path / "journal.db"
    good = write_csv(tmp_path / "good.csv", "user_id", TENANT_USER_INVITED, TENANT_USER_UNKNOWN)
    bad = write_csv(tmp_path / "bad.csv", "user_id", TENANT_USER_INVITED, "not-a-uuid")

    clean = cli("resend", "--config", config, "--input", good, "--dry-run", "--journal", journal)
    dirty = cli("resend", "--config", config, "--input", bad, "--dry-run")

    assert clean.code == 0
    assert clean.out == ""
    assert "dry run, nothing sent: 2 to resend, 0 invalid" in clean.err
    assert dirty.code == 1
    assert dirty.out == ""
    assert "bad.csv: line 3: the tenant API's user ids are UUIDs" in dirty.err
    assert server.sandbox.requests == []
    assert not journal.exists()


def test_the_journal_resumes_without_sending_anything_twice(
    cli: Any, config: Path, tmp_path: Path, server: RunningSandbox
) -> None:
    sandbox = server.sandbox
    journal = tmp_path / "journal.db"
    users = write_csv(
        tmp_path / "users.csv",
        "user_id",
        TENANT_USER_INVITED,
        TENANT_USER_INVITED_2,
        TENANT_USER_VERIFIED,
        TENANT_USER_UNKNOWN,
    )
    args = ("resend", "--config", config, "--input", users, "--journal", journal)

    first = cli(*args)
    sent_before = resends(server)
    second = cli(*args)

    assert first.code == second.code == 1  # the unknown user fails both times
    assert len(sent_before) == 4
    # Only the invitee that failed is tried again.
    assert resends(server)[4:] == [f"/v1/users/{TENANT_USER_UNKNOWN}/resend-invite"]
    assert sandbox.emails_snapshot() == {TENANT_USER_INVITED: 1, TENANT_USER_INVITED_2: 1}
    rerun = second.by_user()
    assert {user: r["skipped"] for user, r in rerun.items()} == {
        TENANT_USER_INVITED: True,
        TENANT_USER_INVITED_2: True,
        TENANT_USER_VERIFIED: True,
        TENANT_USER_UNKNOWN: False,
    }
    assert rerun[TENANT_USER_VERIFIED]["outcome"] == "already_verified"
    assert "3 skipped (journal)" in second.err
    with open_ledger(journal) as ledger:
        records = {r.key.user_id: r for r in ledger.records(run="default")}
    assert {user: r.state for user, r in records.items()} == {
        TENANT_USER_INVITED: "sent",
        TENANT_USER_INVITED_2: "sent",
        TENANT_USER_VERIFIED: "already_verified",
        TENANT_USER_UNKNOWN: "failed",
    }
    assert records[TENANT_USER_UNKNOWN].claims == 2  # claimed again by the rerun
    assert all('"vendor":"tenant_api"' in r.key.identity for r in records.values())

    # Once every invitee is done, a rerun sends nothing at all and succeeds.
    users.write_text(f"user_id\n{TENANT_USER_INVITED}\n{TENANT_USER_VERIFIED}\n")
    requests_before = len(sandbox.requests)
    third = cli(*args)
    assert third.code == 0
    assert len(sandbox.requests) == requests_before
    assert all(r["skipped"] for r in third.records)


def test_an_interrupted_run_journals_what_was_in_flight_and_resumes(
    cli: Any, config: Path, tmp_path: Path, server: RunningSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    journal = tmp_path / "journal.db"
    users = write_csv(
        tmp_path / "users.csv",
        "user_id",
        TENANT_USER_INVITED,
        TENANT_USER_VERIFIED,
        TENANT_USER_INVITED_2,
        TENANT_USER_UNKNOWN,
    )
    args = ("resend", "--config", config, "--input", users, "--journal", journal)
    rows = cli_rows.InputFile.rows

    def interrupted_after_two(self: cli_rows.InputFile) -> Iterator[Any]:
        for index, row in enumerate(rows(self)):
            if index == 2:
                # Ctrl-C in the runner's first fill, before it ever waits for an outcome: the
                # two resends already started are settled only by its interrupt path.
                raise KeyboardInterrupt
            yield row

    with monkeypatch.context() as patch:
        patch.setattr(cli_rows.InputFile, "rows", interrupted_after_two)
        first = cli(*args)
    second = cli(*args)

    assert first.code == 130
    assert "interrupted" in first.err
    with open_ledger(journal) as ledger:
        records = list(ledger.records())
    journaled = [r.key.user_id for r in records]
    # The two rows pulled before the interrupt were settled and journaled by the first run.
    assert sorted(journaled[:2]) == sorted([TENANT_USER_INVITED, TENANT_USER_VERIFIED])
    assert sorted(journaled[2:]) == sorted([TENANT_USER_INVITED_2, TENANT_USER_UNKNOWN])
    assert all(r.claims == 1 and r.state != "intent" for r in records)
    assert second.code == 1
    assert server.sandbox.emails_snapshot() == {TENANT_USER_INVITED: 1, TENANT_USER_INVITED_2: 1}
    assert len(resends(server)) == 4  # each invitee tried exactly once across both runs


def test_unknown_outcomes_are_skipped_unless_retried(
    cli: Any, config: Path, tmp_path: Path, server: RunningSandbox
) -> None:
    sandbox = server.sandbox
    sandbox.inject(TENANT_USER_INVITED, Fault.DROP_AFTER)  # sent, but the answer is lost
    journal = tmp_path / "journal.db"
    args = ("resend", TENANT_USER_INVITED, "--config", config, "--journal", journal)

    first = cli(*args)
    second = cli(*args)
    third = cli(*args, "--retry-unknown")

    assert first.code == 1
    assert first.records[0]["outcome"] == "unknown"
    assert first.records[0]["error"] == "OutcomeUnknown"
    assert second.code == 1
    (skipped,) = second.records
    assert skipped["outcome"] == "unknown"
    assert skipped["error"] == "OutcomeUnknown"
    assert skipped["skipped"] is True
    assert "outcome is unknown" in skipped["message"]
    assert "not resent" in skipped["message"]
    assert "or resend with --retry-unknown" in second.err
    assert third.code == 0
    assert third.records[0]["outcome"] == "sent"
    assert third.records[0]["skipped"] is False
    assert len(resends(server)) == 2  # the rerun without --retry-unknown sent nothing
    assert sandbox.emails_sent(TENANT_USER_INVITED) == 2  # the risk --retry-unknown accepts


@pytest.mark.parametrize(
    "args",
    [
        pytest.param(["resend", TENANT_USER_INVITED], id="no --config"),
        pytest.param(["resend", TENANT_USER_INVITED, "--config", "{tmp}/none.toml"], id="no file"),
        pytest.param(
            ["resend", TENANT_USER_INVITED, "--config", "{config}", "--concurrency", "0"],
            id="bad concurrency",
        ),
        pytest.param(["resend", "--config", "{config}"], id="nothing to resend"),
        pytest.param(
            ["resend", TENANT_USER_INVITED, "--config", "{config}", "--profile", "nope"],
            id="unknown profile",
        ),
        pytest.param(
            ["resend", "--config", "{config}", "--input", "{tmp}/missing.csv"], id="missing input"
        ),
        pytest.param(
            ["resend", "--config", "{config}", "--input", "{tmp}/users.txt"], id="unknown format"
        ),
        pytest.param(
            ["resend", "--config", "{config}", "--input", "{tmp}/no-id-column.csv"],
            id="no user_id column",
        ),
        pytest.param(
            ["resend", TENANT_USER_INVITED, "--config", "{config}", "--journal", "{tmp}"],
            id="journal is a directory",
        ),
        pytest.param(
            ["resend", TENANT_USER_INVITED, "--config", "{config}", "--output", "{tmp}"],
            id="output is a directory",
        ),
        pytest.param(["check-config"], id="check-config without --config"),
        pytest.param(["frobnicate"], id="unknown command"),
        pytest.param([], id="no command"),
    ],
)
def test_usage_errors_exit_2_and_send_nothing(
    cli: Any, config: Path, tmp_path: Path, server: RunningSandbox, args: list[str]
) -> None:
    (tmp_path / "users.txt").write_text(f"{TENANT_USER_INVITED}\n")
    write_csv(tmp_path / "no-id-column.csv", "id,email", f"{TENANT_USER_INVITED},a@example.com")

    result = cli(*(arg.format(tmp=tmp_path, config=config) for arg in args))

    assert result.code == 2
    assert result.err.strip()
    assert result.out == ""
    assert server.sandbox.requests == []


def test_a_bad_configuration_exits_2_listing_every_problem_without_secrets(
    cli: Any, tmp_path: Path, server: RunningSandbox
) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(
        f"""\
[profiles.tenant]
provider = "tenant_api"
base_url = "{server.url}"
token = "{TENANT_API_KEY}"
tenant_id = "not-a-uuid"
timeout = -1
tokne = "typo"
"""
    )

    resend = cli("resend", TENANT_USER_INVITED, "--config", config)
    check = cli("check-config", "--config", config)

    for result in (resend, check):
        assert result.code == 2
        assert "profiles.tenant.tenant_id" in result.err
        assert "profiles.tenant.timeout" in result.err
        assert "profiles.tenant.tokne" in result.err
    assert server.sandbox.requests == []


# -- other commands --------------------------------------------------------------------------


def test_check_config_lists_profiles_and_providers_never_secrets(
    cli: Any,
    config: Path,
    tmp_path: Path,
    server: RunningSandbox,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    result = cli("check-config", "--config", config)

    assert result.code == 0
    assert result.out.splitlines()[0] == f"{config}: valid, 3 profiles"
    rows = [line.split() for line in result.out.splitlines()[1:]]
    assert [row[:2] for row in rows] == [
        ["tenant", "(default)"],
        ["ecosuite", "ecosuite"],
        ["softwareone", "softwareone"],
    ]
    assert rows[0][2] == "tenant_api"
    assert all(server.url in row for row in rows)
    assert all(row[-1] == "(hidden)" for row in rows)

    monkeypatch.setenv("INVITES_TEST_TOKEN", "env-held-credential")
    from_env = tmp_path / "env.toml"
    from_env.write_text(
        '[profiles.only]\nprovider = "ecosuite"\ntoken_env = "INVITES_TEST_TOKEN"\n'
    )
    one = cli("check-config", "--config", from_env, "--profile", "only")
    assert one.code == 0
    assert "from $INVITES_TEST_TOKEN" in one.out
    assert "env-held-credential" not in one.out + one.err
    assert cli("check-config", "--config", config, "--profile", "nope").code == 2


def test_providers_lists_the_known_names(cli: Any) -> None:
    result = cli("providers")

    assert result.code == 0
    assert result.out.splitlines() == invites.known_providers()
    assert {"ecosuite", "softwareone", "tenant_api"} <= set(result.out.split())


def test_demo_exits_0_and_shows_every_vendor(cli: Any) -> None:
    result = cli("demo")

    assert result.code == 0, result.out + result.err
    for text in (
        "ecosuite",
        "softwareone",
        "tenant_api",
        "PermissionDenied",
        "UserNotFound",
        "AlreadyVerified",
        "InvitationExpired",
        "TenantMismatch",
        "POST 429, POST 200",
        "POST 400, GET 200",
        "GET 200, PUT 200",
    ):
        assert text in result.out
    assert "12 invitees" in result.out
    assert "5 sent, 2 already verified, 5 failed, 0 unknown" in result.out
    assert "the sandbox counted 5 emails, none twice." in result.out


def test_help_imports_neither_the_sandbox_stack_nor_rich(tmp_path: Path) -> None:
    # httpx imports its own command line, and with it rich, whenever click is importable; hide
    # click (as in an install without httpx's cli extra) so that only invites' imports show.
    (tmp_path / "click.py").write_text("raise ImportError('hidden from this test')\n")
    env = {**os.environ, "PYTHONPATH": str(tmp_path)}
    done = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "invites", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        env=env,
    )

    assert done.returncode == 0, done.stderr[-2000:]
    assert "usage: invites" in done.stdout
    for command in ("resend", "demo", "sandbox", "check-config", "providers"):
        assert command in done.stdout
    imported = _imported(done.stderr)
    assert "invites.cli" in imported
    assert "httpx" in imported
    assert not [m for m in imported if m.split(".")[0] in ("starlette", "uvicorn", "rich")]


def _imported(importtime: str) -> set[str]:
    """The modules named in ``-X importtime`` output."""
    return {
        line.split("|")[2].strip()
        for line in importtime.splitlines()
        if line.startswith("import time:") and line.count("|") == 2
    }


# -- what a person sees ----------------------------------------------------------------------


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.parametrize("with_rich", [True, False], ids=["rich", "plain"])
def test_a_progress_bar_is_drawn_only_on_a_terminal(
    config: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    with_rich: bool,
) -> None:
    if not with_rich:
        monkeypatch.setitem(sys.modules, "rich", None)  # as if the cli extra were not installed

    assert main(["resend", TENANT_USER_INVITED, "--config", str(config)]) == 0
    piped = capsys.readouterr()
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    args = ["resend", TENANT_USER_INVITED_2, TENANT_USER_VERIFIED, "--config", str(config)]
    assert main(args) == 0
    shown = capsys.readouterr()

    assert "resending" not in piped.err
    assert "resending" in terminal.getvalue()
    assert "2/2" in terminal.getvalue()
    # stdout stays JSON Lines, with nothing of the progress display in it.
    outcomes = sorted(json.loads(line)["outcome"] for line in shown.out.splitlines())
    assert outcomes == ["already_verified", "sent"]


def test_the_summary_is_plain_text_without_rich(
    cli: Any, config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "rich", None)

    result = cli("resend", TENANT_USER_INVITED, TENANT_USER_UNKNOWN, "--config", config)

    assert result.code == 1
    lines = result.err.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("outcome"))
    assert lines[header].split() == ["outcome", "error", "invitees"]
    assert set(lines[header + 1].replace(" ", "")) == {"-"}
    assert lines[header + 2].split() == ["sent", "-", "1"]
    assert lines[header + 3].split() == ["failed", "UserNotFound", "1"]


def test_sandbox_hands_its_options_to_the_sandbox_server(cli: Any) -> None:
    result = cli("sandbox", "--help")

    assert result.code == 0
    assert "--port" in result.out
    assert "--fault-rate" in result.out


@pytest.mark.parametrize(
    "where", ["before", "after", "neither"], ids=["invites-v", "resend-v", "quiet"]
)
def test_verbose_is_taken_before_or_after_the_subcommand(
    cli: Any, config: Path, server: RunningSandbox, where: str
) -> None:
    args: list[str | Path] = ["resend", TENANT_USER_INVITED, "--config", config]
    if where == "before":
        args.insert(0, "-v")
    elif where == "after":
        args.insert(1, "-v")

    result = cli(*args)

    assert result.code == 0
    attempt = f"tenant_api POST /v1/users/{TENANT_USER_INVITED}/resend-invite -> 200 (attempt 1"
    assert (attempt in result.err) == (where != "neither")
    assert server.sandbox.emails_sent(TENANT_USER_INVITED) == 1


def test_the_summary_goes_to_stderr_written_to_a_file_without_a_progress_bar(
    config: Path, tmp_path: Path, server: RunningSandbox
) -> None:
    stderr_file = tmp_path / "stderr.log"
    with stderr_file.open("w", encoding="utf-8") as stderr:
        done = subprocess.run(  # noqa: S603  (this interpreter, fixed arguments)
            [sys.executable, "-m", "invites", "resend", TENANT_USER_INVITED, "--config", config],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            timeout=60,
            check=False,
        )
    logged = stderr_file.read_text(encoding="utf-8")

    assert done.returncode == 0
    assert [json.loads(line)["outcome"] for line in done.stdout.splitlines()] == ["sent"]
    # The summary (table and totals) is for the log; the progress bar is for a terminal only.
    assert logged.splitlines()[-1].startswith("invites: 1 invitees in ")
    assert any(line.split() == ["sent", "-", "1"] for line in logged.splitlines())
    assert "resending" not in logged
    assert "\r" not in logged
    assert "\x1b" not in logged
