"""Exactly once across process deaths: ``invites resend --journal`` killed again and again.

One run of 1,000 users goes through the sandbox over a real socket (uvicorn), every resend slowed
by the sandbox so that resends are in flight whenever a signal lands. The CLI runs as a real
child process and is stopped at 30+ random moments (after a random number of outcomes it wrote),
then rerun to completion (``python -m invites resend``). Afterwards: no user was emailed twice,
every input row has exactly one final outcome, every ``sent`` has exactly one email, and every
user with an email is ``sent`` or ``unknown``.

The stopped processes are forked from a launcher process that imported the library once and
then runs ``invites.cli.main`` in each child: starting 60+ interpreters from scratch would cost
most of the time budget on two cores. Each child is a process of its own, with its own signal
handlers, ledger connection and sockets, and is stopped by a real signal.

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
import uuid
from collections.abc import Iterator, Sequence
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


def cli_args(
    config: Path, csv: Path, journal: Path, output: Path, concurrency: int = CONCURRENCY
) -> list[str]:
    return [
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
        str(concurrency),
    ]


def start(
    config: Path, csv: Path, journal: Path, output: Path, concurrency: int = CONCURRENCY
) -> subprocess.Popen[bytes]:
    args = cli_args(config, csv, journal, output, concurrency)
    command = [sys.executable, "-m", "invites", *args]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    return subprocess.Popen(  # noqa: S603
        command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env
    )


#: An output line is about 150 bytes: the size stands in for the count of outcomes written.
LINE_BYTES = 150


_LAUNCHER = """
import json, os, sys, time
import httpx, invites.cli, invites.cli.resend, invites.bulk, invites.ledger._sqlite
import invites.ledger._provider_ledger, invites.providers.tenant_api
print("ready", flush=True)
for line in sys.stdin:
    job = json.loads(line)
    errors = os.open(job["stderr"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
    pid = os.fork()
    if pid == 0:
        os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)
        os.dup2(errors, 2)
        code = 70
        try:
            code = invites.cli.main(job["argv"])
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    os.close(errors)
    stopped, deadline = False, time.monotonic() + 60
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        try:
            size = os.path.getsize(job["output"])
        except FileNotFoundError:
            size = 0
        if size >= job["stop_at_bytes"] or time.monotonic() > deadline:
            for signum, delay in job["signals"]:
                time.sleep(delay)
                os.kill(pid, signum)
            stopped = True
            _, status = os.waitpid(pid, 0)
            break
        time.sleep(0.005)  # when to stop it is random anyway; no assertion depends on timing
    code = -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)
    print(json.dumps({"stopped": stopped, "code": code}), flush=True)
"""


class Launcher:
    """A process that imported the library once and forks one CLI run per request."""

    def __init__(self) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
        self.process = subprocess.Popen(  # noqa: S603
            [sys.executable, "-c", _LAUNCHER],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert self.process.stdout is not None
        assert self.process.stdout.readline() == "ready\n"

    def run(
        self,
        argv: list[str],
        output: Path,
        stop_at_bytes: int,
        signals: Sequence[tuple[int, float]],
    ) -> dict[str, Any]:
        """Run the CLI; once ``output`` holds ``stop_at_bytes``, send ``signals`` (each after
        its delay). Returns whether it was stopped and its exit code (-N: killed by signal N)."""
        assert self.process.stdin is not None
        assert self.process.stdout is not None
        job = {
            "argv": argv,
            "output": str(output),
            "stderr": str(output) + ".err",
            "stop_at_bytes": stop_at_bytes,
            "signals": signals,
        }
        self.process.stdin.write(json.dumps(job) + "\n")
        self.process.stdin.flush()
        answer: dict[str, Any] = json.loads(self.process.stdout.readline())
        return answer

    def close(self) -> None:
        assert self.process.stdin is not None
        self.process.stdin.close()
        self.process.wait(timeout=30)


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
    """Run the CLI and stop it after a random number of outcomes, ``STOPS`` times."""
    rng = random.Random(f"{kind}-stops")
    stats: dict[str, Any] = {"stopped_in_flight": 0, "torn": 0, "codes": []}
    launcher = Launcher()
    try:
        for attempt in range(STOPS):
            output = tmp_path / f"out-{attempt}.jsonl"
            if kind == "sigterm":
                # Every other time a second SIGTERM follows while the first is being handled.
                signals = [(signal.SIGTERM, 0.0)] + [(signal.SIGTERM, 0.01)] * (attempt % 2)
            else:
                signals = [(signal.SIGKILL, 0.0)]
            stop_at = rng.randint(1, 25) * LINE_BYTES
            answer = launcher.run(cli_args(config, csv, journal, output), output, stop_at, signals)
            stats["codes"].append(answer["code"])
            if not answer["stopped"]:
                break  # it finished everything before the stop
            stats["stopped_in_flight"] += 1
            if kind == "sigterm":
                errors = Path(str(output) + ".err").read_text(errors="replace")
                assert "the resends in flight finished and were recorded" in errors, errors
                # 143, or killed by the second SIGTERM after everything was recorded, in the
                # instant between restoring the default handler and exiting (a shell reads
                # both as 143).
                assert answer["code"] == 143 or (len(signals) == 2 and answer["code"] == -15)
            elif attempt % 2 and tear_last_write(journal, rng):
                stats["torn"] += 1
    finally:
        launcher.close()
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


def test_two_processes_racing_over_one_ledger_email_each_user_once(
    slow_server: RunningSandbox, tmp_path: Path
) -> None:
    sandbox = slow_server.sandbox
    sandbox.reset()
    namespace = uuid.uuid5(uuid.NAMESPACE_URL, "race")
    users = [str(uuid.uuid5(namespace, str(n))) for n in range(500)]
    sandbox.add_users("tenant_api", users)
    config, _ = write_inputs(tmp_path, slow_server.url, users)
    csv = tmp_path / "race.csv"
    csv.write_text("user_id\n" + "\n".join(users) + "\n", encoding="utf-8")
    journal = tmp_path / "journal.db"
    outputs = [tmp_path / f"racer-{n}.jsonl" for n in range(2)]

    # Concurrency 4: each run takes seconds, so the two overlap whatever their start-up times.
    racers = [start(config, csv, journal, output, concurrency=4) for output in outputs]
    for racer in racers:
        _, err = racer.communicate(timeout=120)
        assert racer.returncode in (0, 1), err.decode(errors="replace")

    assert sandbox.emails_snapshot() == dict.fromkeys(users, 1)
    lines = [
        json.loads(line)
        for output in outputs
        for line in output.read_text(encoding="utf-8").splitlines()
    ]
    sent_here = sorted(line["user_id"] for line in lines if not line["skipped"])
    assert sent_here == sorted(users)  # each user sent by exactly one of the two
    for output in outputs:  # both raced: each sent some
        assert any(not json.loads(line)["skipped"] for line in output.read_text().splitlines())
    assert len(lines) == 2 * len(users)  # and accounted by both
    with open_ledger(journal) as ledger:
        assert {r.state for r in ledger.records()} == {"sent"}
