"""``invites resend`` under a profile's per_user_limit, and ``invites ledger show --user``.

Commands run in-process through ``invites.cli.main`` against the sandbox served on loopback,
which counts the emails each user got.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any

import pytest

from invites.cli import main
from invites.ledger import open_ledger
from invites.sandbox import TENANT_API_KEY, TENANT_ID, RunningSandbox, Sandbox


def run(capsys: pytest.CaptureFixture[str], *args: str | Path) -> tuple[int, list[Any], str]:
    code = main([str(arg) for arg in args])
    captured = capsys.readouterr()
    assert TENANT_API_KEY not in captured.out + captured.err
    return code, [json.loads(line) for line in captured.out.splitlines()], captured.err


def profile(tmp_path: Path, server: RunningSandbox, limit: str, ledger: Path) -> Path:
    path = tmp_path / "invites.toml"
    path.write_text(
        f"""\
[profiles.tenant]
provider = "tenant_api"
base_url = "{server.url}"
token = "{TENANT_API_KEY}"
tenant_id = "{TENANT_ID}"
ledger = "{ledger}"
per_user_limit = "{limit}"
""",
        encoding="utf-8",
    )
    return path


def users(sandbox: Sandbox, count: int) -> list[str]:
    ids = [str(uuid.uuid4()) for _ in range(count)]
    sandbox.add_users("tenant_api", ids)
    return ids


def test_a_second_run_of_another_name_sends_nothing_and_exits_0(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, server: RunningSandbox, sandbox: Sandbox
) -> None:
    ids = users(sandbox, 5)
    config = profile(tmp_path, server, "1/1h", tmp_path / "ledger.db")

    first = run(capsys, "resend", "--config", config, "--run", "monday", *ids)
    second = run(capsys, "resend", "--config", config, "--run", "reminder", *ids)

    assert first[0] == 0
    assert {line["outcome"] for line in first[1]} == {"sent"}
    code, lines, err = second
    assert code == 0  # the budget did its job
    assert len(lines) == len(ids)
    assert all(
        line["outcome"] == "failed" and line["error"] == "ResendTooSoon" and line["skipped"]
        for line in lines
    )
    assert "per_user_limit 1/1h" in lines[0]["message"]
    assert "0 sent" in err
    assert "0 failed" in err
    assert f"{len(ids)} skipped (per-user budget)" in err
    assert "resend to" not in err  # no warning per refused row: the budget did its job

    code, _, err = run(capsys, "resend", "--config", config, "--run", "later", "--dry-run", *ids)
    assert code == 0
    assert f"0 to resend, 0 invalid, {len(ids)} skipped (per-user budget)" in err
    assert sandbox.emails_snapshot() == dict.fromkeys(ids, 1)


def test_a_run_with_real_failures_still_fails_beside_budget_skips(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, server: RunningSandbox, sandbox: Sandbox
) -> None:
    ids = users(sandbox, 2)
    config = profile(tmp_path, server, "1/1h", tmp_path / "ledger.db")
    run(capsys, "resend", "--config", config, "--run", "a", *ids)
    code, lines, _ = run(
        capsys, "resend", "--config", config, "--run", "b", *ids, str(uuid.uuid4())
    )
    assert code == 1
    errors = sorted(line["error"] for line in lines)
    assert errors == ["ResendTooSoon", "ResendTooSoon", "UserNotFound"]


def test_two_an_hour_and_ignore_budget_from_the_command_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, server: RunningSandbox, sandbox: Sandbox
) -> None:
    ids = users(sandbox, 3)
    ledger = tmp_path / "ledger.db"
    config = profile(tmp_path, server, "2/1h", ledger)
    for name in ("a", "b", "c"):
        assert run(capsys, "resend", "--config", config, "--run", name, *ids)[0] == 0
    assert sandbox.emails_snapshot() == dict.fromkeys(ids, 2)

    code, lines, _ = run(
        capsys, "resend", "--config", config, "--run", "urgent", "--ignore-budget", *ids
    )
    assert code == 0
    assert {line["outcome"] for line in lines} == {"sent"}
    assert sandbox.emails_snapshot() == dict.fromkeys(ids, 3)
    with open_ledger(ledger) as opened:
        urgent = list(opened.records(run="urgent"))
    assert len(urgent) == len(ids)
    assert all(record.budget_overridden for record in urgent)


def test_ledger_show_user_lists_every_run_with_times(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, server: RunningSandbox, sandbox: Sandbox
) -> None:
    ids = users(sandbox, 2)
    ledger = tmp_path / "ledger.db"
    config = profile(tmp_path, server, "1/1h", ledger)
    run(capsys, "resend", "--config", config, "--run", "monday", *ids)
    run(capsys, "resend", "--config", config, "--run", "reminder", *ids)
    run(capsys, "resend", "--config", config, "--run", "urgent", "--ignore-budget", ids[0])

    code = main(["ledger", "show", str(ledger), "--user", ids[0].upper()])
    out = capsys.readouterr().out
    assert code == 0
    lines = out.splitlines()
    runs = [
        name for name in ("monday", "reminder", "urgent") if any(name in line for line in lines)
    ]
    assert runs == ["monday", "reminder", "urgent"]
    monday = next(line for line in lines if "monday" in line)
    assert " sent " in monday
    assert "yes" in monday
    assert "refused by the budget" in next(line for line in lines if "reminder" in line)
    assert "over the budget" in next(line for line in lines if "urgent" in line)
    assert f"user {ids[0].upper()}: 3 records, 2 of them sends" in out
    assert ids[1] not in out

    assert main(["ledger", "export", str(ledger), "--run", "urgent"]) == 0
    (exported,) = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert exported["budget_overridden"] is True
    assert exported["claimed_at"] is not None
