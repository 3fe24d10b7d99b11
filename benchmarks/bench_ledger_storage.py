"""What trusting a SQLite ledger costs, and how fast a run on a stuck one obeys SIGTERM.

- Opening a ledger of N records: ``PRAGMA quick_check`` and the commit probe, in ms (paid once
  per open), beside a plain ``sqlite3.connect`` + ``SELECT count(*)``.
- SIGTERM to exit of ``invites resend --journal`` whose ledger stops answering mid-run (another
  connection holds the file's write lock): target ≤ 5 s.

Run alone: ``python benchmarks/run.py --only storage`` (or ``python
benchmarks/bench_ledger_storage.py``).
"""

from __future__ import annotations

import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _harness import Row, at_most, median

from invites.ledger import open_ledger
from invites.ledger._sqlite import SQLiteLedger
from invites.sandbox import TENANT_API_KEY, TENANT_ID, Fault, Sandbox, serve

_COLUMNS = (
    "run, identity, user_id, state, owner, lease_until, claims, result, error, created_at, "
    "updated_at"
)


def _filled(path: Path, count: int) -> None:
    open_ledger(path).close()
    identity = '{"vendor":"bench","base_url":"https://vendor.example"}'
    rows = [
        ("run", identity, f"user-{n:08d}", "sent", "o", 0.0, 1, '{"message":"ok"}', None, 0.0, 0.0)
        for n in range(count)
    ]
    with sqlite3.connect(path) as connection:
        connection.executemany(
            f"INSERT INTO invites_ledger ({_COLUMNS}) VALUES (?,?,?,?,?,?,?,?,?,?,?)",  # noqa: S608
            rows,
        )
    connection.close()


def _open_cost(count: int, rounds: int) -> Row:
    with tempfile.TemporaryDirectory() as directory:
        path = Path(directory) / "ledger.db"
        _filled(path, count)
        checked, plain = [], []
        for _ in range(rounds):
            started = time.perf_counter()
            SQLiteLedger(path).close()
            checked.append(time.perf_counter() - started)
            started = time.perf_counter()
            connection = sqlite3.connect(path)
            connection.execute("SELECT count(*) FROM invites_ledger").fetchone()
            connection.close()
            plain.append(time.perf_counter() - started)
    ms, raw = median(checked) * 1e3, median(plain) * 1e3
    return Row("ledger open (check + probe)", ms, raw, "ms/open", ms / raw, "info", None,
               f"{count} records; raw: connect + count(*)")  # fmt: skip


def _sigterm_stop(users: int) -> Row:
    with serve(Sandbox()) as server, tempfile.TemporaryDirectory() as directory:
        folder = Path(directory)
        ids = server.sandbox.seed_users(users)["tenant_api"]
        for user in ids:
            server.sandbox.inject(user, Fault.SLOW)
        (folder / "users.csv").write_text("user_id\n" + "\n".join(ids) + "\n")
        (folder / "c.toml").write_text(
            f'[profiles.t]\nprovider = "tenant_api"\nbase_url = "{server.url}"\n'
            f'token = "{TENANT_API_KEY}"\ntenant_id = "{TENANT_ID}"\n'
        )
        journal = folder / "journal.db"
        arguments = ["resend", "--config", str(folder / "c.toml"), "--input"]
        arguments += [str(folder / "users.csv"), "--journal", str(journal), "--concurrency", "4"]
        process = subprocess.Popen(  # noqa: S603  (this interpreter, fixed arguments)
            [sys.executable, "-m", "invites", *arguments],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert process.stdout is not None
        process.stdout.readline()  # the first outcome: the run is under way
        lock = sqlite3.connect(journal, timeout=30, isolation_level=None)
        lock.execute("BEGIN IMMEDIATE")
        started = time.monotonic()
        process.send_signal(signal.SIGTERM)
        process.communicate(timeout=60)
        took = time.monotonic() - started
        lock.rollback()
        lock.close()
    return Row("SIGTERM, stuck ledger", took, None, "s", took, "<= 5 s", at_most(took, 5.0),
               f"exit {process.returncode}; {users} users, 4 in flight")  # fmt: skip


def run(quick: bool) -> list[Row]:
    count, rounds = (10_000, 3) if quick else (50_000, 5)
    return [_open_cost(count, rounds), _sigterm_stop(200)]


if __name__ == "__main__":
    for row in run(quick=False):
        print(row)
