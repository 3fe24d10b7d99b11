"""The CLI's ledger on every path: the profile's ``ledger`` when ``--journal`` is not given, URLs
everywhere a path is taken, a ledger that cannot be used stopping the run before anything is
sent, and ``invites ledger show | export | settle`` on SQLite and PostgreSQL."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from _support.services import fresh_postgres_url, postgres_problem, require

from invites.cli import main
from invites.sandbox import (
    TENANT_API_KEY,
    TENANT_ID,
    TENANT_USER_INVITED,
    TENANT_USER_INVITED_2,
    TENANT_USER_VERIFIED,
    Fault,
    RunningSandbox,
    Sandbox,
)

PASSWORD = "fake-password-4fa9c1"  # never shown
USERS = (TENANT_USER_INVITED, TENANT_USER_INVITED_2, TENANT_USER_VERIFIED)


class Ran:
    def __init__(self, code: int, out: str, err: str) -> None:
        self.code, self.out, self.err = code, out, err

    @property
    def records(self) -> list[dict[str, Any]]:
        return [json.loads(line) for line in self.out.splitlines()]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]) -> Any:
    def run(*args: str | Path) -> Ran:
        code = main([str(arg) for arg in args])
        captured = capsys.readouterr()
        for secret in (TENANT_API_KEY, PASSWORD):
            assert secret not in captured.out + captured.err
        return Ran(code, captured.out, captured.err)

    return run


def profile(path: Path, base_url: str, ledger: str | None) -> Path:
    line = "" if ledger is None else f'ledger = "{ledger}"\n'
    path.write_text(
        f'[profiles.acme]\nprovider = "tenant_api"\nbase_url = "{base_url}"\n'
        f'token = "{TENANT_API_KEY}"\ntenant_id = "{TENANT_ID}"\n{line}',
        encoding="utf-8",
    )
    return path


def sends(sandbox: Sandbox) -> int:
    return sum(sandbox.emails_snapshot().values())


def test_the_profiles_ledger_is_the_runs_ledger_without_journal(
    cli: Any, tmp_path: Path, server: RunningSandbox, sandbox: Sandbox
) -> None:
    ledger = tmp_path / "ledger.db"
    config = profile(tmp_path / "invites.toml", server.url, str(ledger))

    first = cli("resend", "--config", config, *USERS)
    assert first.code == 0, first.err
    assert f"ledger {ledger} (the ledger of profile 'acme'), run 'default'" in first.err
    assert sends(sandbox) == 2

    dry = cli("resend", "--config", config, *USERS, "--dry-run")
    assert dry.code == 0, dry.err
    assert "0 to resend" in dry.err
    assert "2 skipped (journal: sent)" in dry.err

    rerun = cli("resend", "--config", config, *USERS)
    assert rerun.code == 0, rerun.err
    assert all(r["skipped"] for r in rerun.records)
    assert sends(sandbox) == 2  # the rerun emailed nobody


def test_journal_takes_a_sqlite_url_and_wins_over_the_profile(
    cli: Any, tmp_path: Path, server: RunningSandbox, sandbox: Sandbox
) -> None:
    config = profile(tmp_path / "invites.toml", server.url, str(tmp_path / "profile.db"))
    url = f"sqlite:///{tmp_path / 'journal.db'}"  # sqlite:////abs/path
    for _ in range(2):
        ran = cli("resend", "--config", config, TENANT_USER_INVITED, "--journal", url)
        assert ran.code == 0, ran.err
        assert f"ledger {url} (--journal)" in ran.err
    assert sends(sandbox) == 1
    assert (tmp_path / "journal.db").exists()
    assert not (tmp_path / "profile.db").exists()

    shown = cli("ledger", "show", url)
    assert shown.code == 0, shown.err
    assert "1 records, 0 unknown" in shown.out


@pytest.mark.parametrize(
    "ledger",
    [
        f"postgresql://invites:{PASSWORD}@127.0.0.1:1/ledger",  # nothing listens there
        "/nonexistent-directory-4fa9c1/ledger.db",
    ],
    ids=["dead-server", "no-such-directory"],
)
@pytest.mark.parametrize("where", ["profile", "journal"])
def test_an_unusable_ledger_stops_the_run_before_anything_is_sent(
    cli: Any, tmp_path: Path, server: RunningSandbox, sandbox: Sandbox, ledger: str, where: str
) -> None:
    if ledger.startswith("postgresql"):
        pytest.importorskip("psycopg")
    config = profile(tmp_path / "invites.toml", server.url, ledger if where == "profile" else None)
    journal = ("--journal", ledger) if where == "journal" else ()

    ran = cli("resend", "--config", config, *USERS, *journal)

    assert ran.code == 2
    assert "cannot be used" in ran.err
    assert ran.out == ""
    assert sandbox.requests == []
    if ledger.startswith("postgresql"):
        assert "invites:***@127.0.0.1:1/ledger" in ran.err


def test_ledger_commands_on_postgresql_by_url_and_by_profile(
    cli: Any, tmp_path: Path, server: RunningSandbox, sandbox: Sandbox
) -> None:
    require("PostgreSQL", postgres_problem())
    url = fresh_postgres_url()
    config = profile(tmp_path / "invites.toml", server.url, url)
    sandbox.inject(TENANT_USER_INVITED, Fault.DROP_AFTER)

    first = cli("resend", "--config", config, *USERS)
    assert first.code == 1, first.err  # one unknown outcome
    assert sends(sandbox) == 2

    shown = cli("ledger", "show", url, "--state", "unknown")
    assert shown.code == 0, shown.err
    assert TENANT_USER_INVITED in shown.out
    assert "1 records, 1 unknown" in shown.out
    exported = cli("ledger", "export", "--config", config, "--profile", "acme")
    assert exported.code == 0, exported.err
    assert {r["user_id"]: r["reads"] for r in exported.records} == {
        TENANT_USER_INVITED: "unknown",
        TENANT_USER_INVITED_2: "sent",
        TENANT_USER_VERIFIED: "already_verified",
    }

    settled = cli(
        "ledger", "settle", "--config", config, TENANT_USER_INVITED.upper(), "--as", "failed"
    )
    assert settled.code == 0, settled.err
    assert f"{TENANT_USER_INVITED} (run 'default'): unknown" in settled.out
    rerun = cli("resend", "--config", config, *USERS)
    assert rerun.code == 0, rerun.err
    assert [r["user_id"] for r in rerun.records if not r["skipped"]] == [TENANT_USER_INVITED]


def test_ledger_commands_name_their_ledger(
    cli: Any, tmp_path: Path, server: RunningSandbox
) -> None:
    config = profile(tmp_path / "invites.toml", server.url, None)
    neither = cli("ledger", "show")
    both = cli("ledger", "show", tmp_path / "x.db", "--config", config)
    no_ledger = cli("ledger", "export", "--config", config)
    missing = cli("ledger", "show", f"sqlite:///{tmp_path / 'none.db'}")

    assert (neither.code, both.code, no_ledger.code, missing.code) == (2, 2, 2, 2)
    assert "give its path or URL, or --config" in neither.err
    assert "not both" in both.err
    assert "profile 'acme'" in no_ledger.err
    assert "no such ledger file" in missing.err
    assert not (tmp_path / "none.db").exists()


def test_show_streams_a_long_selection_in_fixed_columns(
    cli: Any, tmp_path: Path, server: RunningSandbox
) -> None:
    from invites import from_config
    from invites.ledger import RecordKey, open_ledger, provider_identity

    path = tmp_path / "ledger.db"
    with (
        from_config(
            {
                "provider": "tenant_api",
                "base_url": server.url,
                "token": "fake-token-1",
                "tenant_id": TENANT_ID,
            }
        ) as provider,
        open_ledger(path) as ledger,
    ):
        identity = provider_identity(provider)
        for n in range(1200):
            key = RecordKey("bulk", identity, f"user-{n:05}" + ("-long" * 5 if n == 900 else ""))
            assert ledger.claim(key, owner="me", lease=0.0).granted
            ledger.settle(key, "failed" if n % 2 else "unknown", owner="me")

    shown = cli("ledger", "show", path)

    lines = shown.out.splitlines()
    assert lines[0].split() == ["run", "vendor", "user_id", "state", "updated", "claims", "message"]
    body = lines[2:1202]
    assert [line.split()[2] for line in body[:3]] == ["user-00000", "user-00001", "user-00002"]
    assert len({line.index("tenant_api") for line in body}) == 1  # one layout for every row
    assert "1200 records, 600 unknown" in shown.out
