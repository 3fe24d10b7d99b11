"""SoftwareOne's official client (``mpt-api-client``) against ``invites sandbox`` over a socket.

The client needs Python >= 3.12. ``INVITES_MPT_PYTHON`` names an interpreter that has it
(``.ci/run`` prepares one and sets it); without it, this interpreter is used when it qualifies, and
the test is skipped otherwise, saying why. When the variable is set, an interpreter that cannot
run the client is a failure, not a skip.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from invites.sandbox import (
    SOFTWAREONE_ACCOUNT_ID,
    SOFTWAREONE_MEMBERSHIP_ACTIVE,
    SOFTWAREONE_MEMBERSHIP_INVITED,
    SOFTWAREONE_TOKEN,
    SOFTWAREONE_USER_ACTIVE,
    SOFTWAREONE_USER_EXPIRED,
    SOFTWAREONE_USER_INVITED,
)

DRIVER = Path(__file__).parents[1] / "_support" / "official_client_driver.py"
VARIABLE = "INVITES_MPT_PYTHON"
PROBE = "import sys, mpt_api_client; assert sys.version_info >= (3, 12), sys.version"


def _interpreter() -> str:
    """The interpreter to run the official client with; skips the test when there is none."""
    configured = os.environ.get(VARIABLE)
    if configured:
        probe = subprocess.run(  # noqa: S603  (the interpreter the environment names)
            [configured, "-c", PROBE], capture_output=True, text=True, timeout=60, check=False
        )
        assert probe.returncode == 0, (
            f"{VARIABLE}={configured} cannot run mpt-api-client: {probe.stderr}"
        )
        return configured
    if sys.version_info < (3, 12):
        pytest.skip(f"mpt-api-client needs Python >= 3.12; set {VARIABLE} to such an interpreter")
    if importlib.util.find_spec("mpt_api_client") is None:
        pytest.skip(f"mpt-api-client is not installed; set {VARIABLE} to an interpreter with it")
    return sys.executable


@pytest.fixture
def sandbox_url() -> Iterator[str]:
    """``invites sandbox --port 0`` as a subprocess; its URL once it listens."""
    process = subprocess.Popen(
        [sys.executable, "-m", "invites", "sandbox", "--port", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        banner = []
        for line in process.stdout:  # the banner ends with the stats line, once listening
            banner.append(line)
            if "email counts:" in line:
                break
        assert banner, "the sandbox exited before serving"
        yield banner[0].split()[3]
    finally:
        process.terminate()
        process.wait(timeout=30)


def _drive(python: str, url: str) -> dict[str, Any]:
    config = {
        "base_url": url,
        "token": SOFTWAREONE_TOKEN,
        "bad_token": "idt:TKN-FAKE-0000:fake-token-not-accepted",
        "account_id": SOFTWAREONE_ACCOUNT_ID,
        "users": {
            "invited": SOFTWAREONE_USER_INVITED,
            "active": SOFTWAREONE_USER_ACTIVE,
            "expired": SOFTWAREONE_USER_EXPIRED,
            "unknown": "USR-9999-9999",
        },
    }
    run = subprocess.run(  # noqa: S603  (a chosen interpreter, our own script)
        [python, str(DRIVER), json.dumps(config)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "MPT_API_BASE_URL": "", "MPT_API_TOKEN": ""},
    )
    assert run.returncode == 0, run.stderr
    outcomes: dict[str, Any] = json.loads(run.stdout)
    return outcomes


def test_the_official_client_reads_every_answer(sandbox_url: str) -> None:
    python = _interpreter()

    got = _drive(python, sandbox_url)

    # Reads: the account user as AccountUser has it, select honoured.
    invited = got["get_invited"]
    assert invited["model"] == "AccountsUser"
    assert invited["body"]["id"] == SOFTWAREONE_MEMBERSHIP_INVITED
    assert invited["body"]["invitation"]["status"] == "Invited"
    assert "lastLoginAt" not in invited["body"]
    selected = got["get_selected"]["body"]
    assert selected["id"] == SOFTWAREONE_MEMBERSHIP_ACTIVE
    assert ("audit" in selected, "modules" in selected) == (False, False)
    # Invite actions.
    assert got["resend_invited"]["body"]["invitation"]["status"] == "Invited"
    assert got["send_new_expired"]["body"]["invitation"]["status"] == "Invited"
    assert got["resend_renewed"]["body"]["invitation"]["status"] == "Invited"
    # The 400 reads as the published example: the client prints title and detail.
    active = got["resend_active"]
    assert active["error"] == "MPTAPIError"
    assert (active["status_code"], active["title"]) == (400, "Bad Request")
    assert active["detail"] == "One or more validation errors occurred."
    assert active["text"].startswith("400 Bad Request - One or more validation errors occurred. (")
    assert active["errors"] == {"status": ["Account user is not in Invited state."]}
    assert got["send_new_invited"]["status_code"] == 400
    # The assumed 409, the 404s, the 501 naming the operation and the 401: all MPTAPIError.
    assert (got["resend_expired"]["status_code"], got["resend_expired"]["title"]) == (
        409,
        "Conflict",
    )
    for step in ("get_unknown", "resend_unknown"):
        assert (got[step]["error"], got[step]["status_code"]) == ("MPTAPIError", 404)
        assert got[step]["detail"] == "Account user USR-9999-9999 not found."
    accept = got["accept_invite"]
    assert (accept["error"], accept["status_code"], accept["title"]) == (
        "MPTAPIError",
        501,
        "Not Implemented",
    )
    assert "does not simulate accept-invite" in accept["detail"]
    assert (got["bad_token"]["status_code"], got["bad_token"]["title"]) == (401, "Unauthorized")
    for outcome in got.values():
        if "error" in outcome:
            assert outcome["trace_id"].startswith("00-")
    # Emails: one resend to the invited user; a renewal and a resend to the expired one.
    stats = httpx.get(f"{sandbox_url}/__sandbox__/stats").json()
    assert stats["emails"] == {SOFTWAREONE_USER_INVITED: 1, SOFTWAREONE_USER_EXPIRED: 2}
