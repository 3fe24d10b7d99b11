"""``invites sandbox`` from the command line: seeded users for bulk runs and the email counts.

One test serves the sandbox as a real subprocess (``invites sandbox --port 0 --users N``), resends
to the users it wrote out, and reads the counts back with ``invites sandbox --stats URL``.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from invites.cli import main
from invites.sandbox import (
    TENANT_API_KEY,
    TENANT_ID,
    TENANT_USER_INVITED,
    Sandbox,
    VendorRoute,
    VendorSandbox,
    create_app,
    default_vendors,
    serve,
)

STATS = "/__sandbox__/stats"


class Served:
    """A sandbox subprocess and what it printed before serving."""

    def __init__(self, process: subprocess.Popen[str], banner: list[str]) -> None:
        self.process = process
        self.banner = banner
        self.url = banner[0].split()[3]


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    argv = ["--port", "0", "--users", "3", "--users-dir", str(tmp_path / "users")]
    process = subprocess.Popen(  # noqa: S603  (this interpreter, fixed arguments)
        [sys.executable, "-m", "invites", "sandbox", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        banner: list[str] = []
        for line in process.stdout:  # the banner ends with the stats line, once listening
            banner.append(line.rstrip("\n"))
            if "email counts:" in line:
                break
        assert banner, "the sandbox exited before serving"
        assert banner[-1].endswith(STATS), banner
        yield Served(process, banner)
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_seeded_users_are_written_resent_and_counted(
    served: Served, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    users = tmp_path / "users"
    written = {
        path.stem: [row["user_id"] for row in csv.DictReader(io.StringIO(path.read_text("utf-8")))]
        for path in users.glob("*.csv")
    }
    assert written == {
        "ecosuite": ["eco-bulk-000001", "eco-bulk-000002", "eco-bulk-000003"],
        "softwareone": ["USR-9000-0001", "USR-9000-0002", "USR-9000-0003"],
        "tenant_api": [f"00000000-0000-4000-8000-00000000000{n}" for n in (1, 2, 3)],
    }
    assert any("tenant_api" in line and "3 invitable users" in line for line in served.banner)
    config = tmp_path / "invites.toml"
    config.write_text(
        f'[profiles.t]\nprovider = "tenant_api"\nbase_url = "{served.url}"\n'
        f'token = "{TENANT_API_KEY}"\ntenant_id = "{TENANT_ID}"\n',
        encoding="utf-8",
    )

    assert main(["resend", "--config", str(config), "--input", str(users / "tenant_api.csv")]) == 0
    capsys.readouterr()
    assert main(["sandbox", "--stats", served.url]) == 0
    stats = json.loads(capsys.readouterr().out)

    assert stats["emails"] == dict.fromkeys(written["tenant_api"], 1)
    assert stats["emails_total"] == 3
    assert stats["requests"] == 3  # the resends; reading the stats is not counted


def test_the_stats_are_not_counted_nor_rate_limited() -> None:
    sandbox = Sandbox(rate_limit=1, clock=lambda: 0.0)
    transport = httpx.ASGITransport(app=create_app(sandbox))

    async def scenario() -> list[httpx.Response]:
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
            tenant = {"X-API-Key": TENANT_API_KEY, "X-Tenant-ID": TENANT_ID}
            sent = await client.post(
                f"/v1/users/{TENANT_USER_INVITED}/resend-invite", headers=tenant
            )
            limited = await client.post(
                f"/v1/users/{TENANT_USER_INVITED}/resend-invite", headers=tenant
            )
            return [sent, limited, *[await client.get(STATS) for _ in range(3)]]

    sent, limited, *reads = asyncio.run(scenario())

    assert (sent.status_code, limited.status_code) == (200, 429)
    assert [read.status_code for read in reads] == [200, 200, 200]
    assert reads[-1].json() == {
        "emails": {TENANT_USER_INVITED: 1},
        "emails_total": 1,
        "requests": 2,
        "rate_limited": 1,
        "faults": 0,
    }
    assert sandbox.request_count == 2


def test_help_names_invites_sandbox(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sandbox", "--help"]) == 0
    shown = capsys.readouterr().out

    assert shown.startswith("usage: invites sandbox ")
    assert "python -m" not in shown
    for flag in ("--users N", "--users-dir DIR", "--stats URL"):
        assert flag in shown


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["--users-dir", "x"], "--users-dir needs --users N"),
        (["--users", "-1"], "must not be negative"),
        (["--users", "many"], "expected a whole number"),
    ],
)
def test_seeding_usage_errors_exit_2(
    argv: list[str], complaint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sandbox", *argv]) == 2
    assert complaint in capsys.readouterr().err


def test_stats_of_nothing_exit_1(capsys: pytest.CaptureFixture[str]) -> None:
    with serve(Sandbox()) as running:
        url = running.url + "/nowhere"  # a server, but no sandbox under that path

        assert main(["sandbox", "--stats", url]) == 1

    assert f"no sandbox stats at {url}" in capsys.readouterr().err


class _Fixed(VendorSandbox):
    """A vendor that cannot add users."""

    name = "fixed"
    path_prefixes = ("/fixed",)

    def routes(self) -> list[VendorRoute]:
        return []


def test_seed_users_skips_vendors_that_cannot_add_users() -> None:
    sandbox = Sandbox(vendors=[*default_vendors(), _Fixed()])

    seeded = sandbox.seed_users(2)

    assert set(seeded) == {"ecosuite", "softwareone", "tenant_api"}
    assert all(len(user_ids) == 2 for user_ids in seeded.values())


def test_no_vendor_may_claim_the_sandbox_paths() -> None:
    class Greedy(_Fixed):
        name = "greedy"
        path_prefixes = ("/__sandbox__",)

    with pytest.raises(ValueError, match="reserved"):
        Sandbox(vendors=[Greedy()])
