"""Exactly once across process deaths: ``invites resend --journal`` killed again and again.

One run of 1,000 users goes through the sandbox over a real socket (uvicorn), every resend slowed
by the sandbox so that resends are in flight whenever a signal lands. The CLI runs as a real
child process and is stopped at 30+ random moments (after a random number of outcomes it wrote),
then rerun to completion. Afterwards: no user was emailed twice, every input row has exactly one
final outcome, every ``sent`` has exactly one email, and every user with an email is ``sent`` or
``unknown``.

- SIGKILL: nothing is handled; about half the kills also leave a torn write behind (a partial WAL
  frame appended, as a write cut off by power loss would).
- SIGTERM (sometimes twice): the CLI drains and exits 143, so nothing is left unknown.
"""

from __future__ import annotations

import json
import os
import random
import signal
import struct
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from invites.ledger import open_ledger
from invites.sandbox import TENANT_API_KEY, TENANT_ID, Fault, RunningSandbox, Sandbox, serve

USERS = 1000
REPEATS = 10  # rows that repeat an earlier row: each still gets its own output line
STOPS = 32
CONCURRENCY = 16


@pytest.fixture(scope="module")
def slow_server() -> Iterator[RunningSandbox]:
    """The sandbox answering every resend after 20 ms, so that resends are always in flight."""
    sandbox = Sandbox(fault_rate=1.0, faults=[Fault.SLOW], slow_seconds=0.02, seed=7)
    with serve(sandbox) as running:
        yield running


def write_inputs(tmp_path: Path, base_url: str, users: list[str]) -> tuple[Path, Path]:
    config = tmp_path / "invites.toml"
    config.write_text(
        f"""\
[profiles.tenant]
provider = "tenant_api"
base_url = "{base_url}"
token = "{TENANT_API_KEY}"
tenant_id = "{TENANT_ID}"
""",
        encoding="utf-8",
    )
    rows = [*users, *random.Random(3).sample(users, REPEATS)]
    csv = tmp_path / "users.csv"
    csv.write_text("user_id\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return config, csv


def start(config: Path, csv: Path, journal: Path, output: Path) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "invites",
        "resend",
        "--config",
        str(config),
        "--input",
        str(csv),
        "--journal",
        str(journal),
        "--output",
        str(output),
        "--concurrency",
        str(CONCURRENCY),
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen(  # noqa: S603
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
    )


#: An output line is about 150 bytes: the size stands in for the count of outcomes written.
LINE_BYTES = 150


def size_of(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def wait_for_outcomes(process: subprocess.Popen[bytes], output: Path, count: int) -> bool:
    """Wait until ``process`` wrote about ``count`` output lines (True) or exited (False)."""
    deadline = time.monotonic() + 60
    while size_of(output) < count * LINE_BYTES:
        if process.poll() is not None:
            return False
        assert time.monotonic() < deadline, "the CLI made no progress"
        time.sleep(0.005)  # when to stop it is random anyway; no assertion depends on timing
    return process.poll() is None


def tear_last_write(journal: Path, rng: random.Random) -> bool:
    """Append a partial WAL frame (a frame header and half a page) to the journal's WAL."""
    wal = Path(str(journal) + "-wal")
    if not wal.exists() or wal.stat().st_size <= 32:
        return False
    data = wal.read_bytes()
    page_size = struct.unpack(">I", data[8:12])[0]
    frame = 24 + page_size
    frames = (len(data) - 32) // frame
    if frames == 0:
        return False
    last_header = bytearray(data[32 + (frames - 1) * frame : 32 + (frames - 1) * frame + 24])
    last_header[4:8] = struct.pack(">I", 0)  # not a commit frame: the write never finished
    with wal.open("ab") as fh:
        fh.write(bytes(last_header) + rng.randbytes(page_size // 2))
    return True


def stop_repeatedly(
    kind: str, config: Path, csv: Path, journal: Path, tmp_path: Path
) -> dict[str, Any]:
    """Start the CLI and stop it after a random number of outcomes, ``STOPS`` times."""
    rng = random.Random(f"{kind}-stops")
    stats: dict[str, Any] = {"stopped_in_flight": 0, "torn": 0, "codes": []}
    for attempt in range(STOPS):
        output = tmp_path / f"out-{attempt}.jsonl"
        process = start(config, csv, journal, output)
        if not wait_for_outcomes(process, output, rng.randint(1, 25)):
            stats["codes"].append(process.wait())
            break  # it finished everything before the stop
        if kind == "sigterm":
            process.send_signal(signal.SIGTERM)
            if attempt % 2:
                process.send_signal(signal.SIGTERM)  # a second signal while draining
        else:
            process.send_signal(signal.SIGKILL)
        _, err = process.communicate(timeout=60)
        stats["codes"].append(process.returncode)
        stats["stopped_in_flight"] += 1
        if kind == "sigterm":
            assert process.returncode == 143, err.decode(errors="replace")
        elif attempt % 2 and tear_last_write(journal, rng):
            stats["torn"] += 1
    return stats


def final_run(config: Path, csv: Path, journal: Path, tmp_path: Path) -> list[dict[str, Any]]:
    output = tmp_path / "final.jsonl"
    process = start(config, csv, journal, output)
    _, err = process.communicate(timeout=120)
    assert process.returncode in (0, 1), err.decode(errors="replace")
    return [json.loads(line) for line in output.read_text(encoding="utf-8").splitlines()]


@pytest.mark.parametrize("kind", ["sigkill", "sigterm"])
def test_stopping_the_cli_at_random_moments_never_emails_anyone_twice(
    kind: str, slow_server: RunningSandbox, tmp_path: Path
) -> None:
    sandbox = slow_server.sandbox
    sandbox.reset()
    namespace = uuid.uuid5(uuid.NAMESPACE_URL, kind)
    users = [str(uuid.uuid5(namespace, str(n))) for n in range(USERS)]
    sandbox.add_users("tenant_api", users)
    config, csv = write_inputs(tmp_path, slow_server.url, users)
    journal = tmp_path / "journal.db"

    stats = stop_repeatedly(kind, config, csv, journal, tmp_path)
    final = final_run(config, csv, journal, tmp_path)

    assert stats["stopped_in_flight"] >= 30, stats
    if kind == "sigkill":
        assert stats["torn"] >= 10, stats
    emails = sandbox.emails_snapshot()
    assert set(emails) <= set(users)
    assert max(emails.values()) == 1  # no one emailed twice

    # Every input row: exactly one final outcome line, sent or unknown.
    rows = [f"line {n}" for n in range(2, USERS + REPEATS + 2)]
    assert sorted(r["row"] for r in final) == sorted(rows)
    assert {r["outcome"] for r in final} <= {"sent", "unknown"}
    assert {r["user_id"] for r in final} == set(users)

    with open_ledger(journal) as ledger:
        records = {r.key.user_id: r for r in ledger.records(run="default")}
    assert set(records) == set(users)
    reads = {user: record.status() for user, record in records.items()}
    assert set(reads.values()) <= {"sent", "unknown"}
    for user, status in reads.items():
        if status == "sent":
            assert emails.get(user) == 1, user  # every sent has exactly one email
    for user in emails:
        assert reads[user] in ("sent", "unknown"), user
    by_user = {r["user_id"]: r["outcome"] for r in final if "duplicate_of" not in r}
    assert by_user == reads
    if kind == "sigterm":
        # A handled stop finishes and records every resend in flight: nothing is left unknown.
        assert set(reads.values()) == {"sent"}
        assert len(emails) == USERS
