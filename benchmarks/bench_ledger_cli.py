"""``invites ledger show`` and ``export`` over large ledgers: wall time and peak RSS.

Fills a ledger with N records (a third ``sent`` with a result, a third ``failed`` with an error, a
third ``unknown``; written straight into the table, since N resends would measure the resends),
then runs ``python -m invites ledger show|export LEDGER > /dev/null`` in a fresh process per
command and reads the child's own peak RSS and CPU time (``os.wait4``) and its wall time (which a
busy machine inflates; the CPU time it does not).

    python benchmarks/bench_ledger_cli.py                      # SQLite, 10,000 and 50,000 rows
    python benchmarks/bench_ledger_cli.py --rows 10000 100000  # other sizes
    python benchmarks/bench_ledger_cli.py --postgres postgresql://postgres@127.0.0.1:5432/test

Targets: ``show`` of 50,000 records within 10 s and 150 MB, at most about 1 s per 10,000 rows;
peak RSS flat as N grows.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

IDENTITY = json.dumps(
    {
        "base_url": "https://vendor.example",
        "tenant_id": str(uuid.UUID(int=7)),
        "vendor": "tenant_api",
    },
    sort_keys=True,
    separators=(",", ":"),
)
_RESULT = json.dumps(
    {
        "provider": "tenant_api",
        "user_id": "",
        "message": "Invite resent.",
        "status_code": 200,
        "invitation_status": None,
        "request_id": None,
        "renewed": False,
    }
)
_ERROR = json.dumps(
    {"type": "OutcomeUnknown", "message": "the read timed out after the request was sent"}
)


def rows(count: int) -> Iterator[tuple[Any, ...]]:
    """``count`` records as the ledgers store them, oldest first."""
    now = time.time() - count
    for index in range(count):
        state = ("sent", "failed", "unknown")[index % 3]
        result = _RESULT if state == "sent" else None
        error = None if state == "sent" else _ERROR
        stamp = now + index
        yield (
            "bench",
            IDENTITY,
            str(uuid.UUID(int=index)),
            state,
            f"bench-host:{index % 97}:0123456789ab",
            stamp,
            1,
            result,
            error,
            stamp,
            stamp,
        )


def fill_sqlite(directory: Path, count: int) -> str:
    import sqlite3

    from invites.ledger import open_ledger

    path = directory / f"ledger-{count}.db"
    open_ledger(path).close()  # the schema, as the library creates it
    connection = sqlite3.connect(path)
    with connection:
        connection.executemany(
            "INSERT INTO invites_ledger VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows(count)
        )
    connection.close()
    return str(path)


def fill_postgres(base_url: str, count: int) -> str:
    import psycopg

    from invites.ledger import open_ledger

    schema = f"bench_cli_{uuid.uuid4().hex[:12]}"
    separator = "&" if "?" in base_url else "?"
    url = f"{base_url}{separator}schema={schema}"
    open_ledger(url).close()
    columns = (
        "run, identity, user_id, state, owner, lease_until, claims, result, error, created_at, "
        "updated_at"
    )
    with (
        psycopg.connect(base_url) as connection,
        connection.cursor().copy(f"COPY {schema}.invites_ledger ({columns}) FROM STDIN") as copy,
    ):
        for row in rows(count):
            copy.write_row(row)
    return url


def drop_postgres(base_url: str, url: str) -> None:
    import psycopg

    schema = url.rsplit("schema=", 1)[1]
    with psycopg.connect(base_url, autocommit=True) as connection:
        connection.execute(f"DROP SCHEMA IF EXISTS {schema} CASCADE")


def measure(command: str, ledger: str) -> dict[str, Any]:
    """Run ``invites ledger COMMAND LEDGER`` in a fresh process; its wall time and peak RSS."""
    argv = [sys.executable, "-m", "invites", "ledger", command, ledger]
    started = time.perf_counter()
    with open(os.devnull, "w") as sink:
        child = subprocess.Popen(  # noqa: S603 (this interpreter, the installed command)
            argv, stdout=sink, stderr=subprocess.PIPE
        )
        _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    error = child.stderr.read().decode() if child.stderr is not None else ""
    if child.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} exited {child.returncode}: {error}")
    cpu = usage.ru_utime + usage.ru_stime
    return {"command": command, "seconds": wall, "cpu": cpu, "peak_mb": usage.ru_maxrss / 1024}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[10_000, 50_000])
    parser.add_argument("--postgres", metavar="URL", help="also measure a PostgreSQL ledger")
    args = parser.parse_args()
    backends = ["sqlite"] + (["postgresql"] if args.postgres else [])
    header = f"{'backend':<11}{'rows':>8}  {'command':<7}{'wall s':>8}{'s/10k':>7}{'CPU s':>7}"
    print(header + f"{'peak MB':>9}")
    failed = False
    with tempfile.TemporaryDirectory() as directory:
        for backend in backends:
            for count in args.rows:
                if backend == "sqlite":
                    ledger = fill_sqlite(Path(directory), count)
                else:
                    ledger = fill_postgres(args.postgres, count)
                try:
                    for command in ("show", "export"):
                        got = measure(command, ledger)
                        per_10k = got["seconds"] * 10_000 / count
                        print(
                            f"{backend:<11}{count:>8}  {command:<7}{got['seconds']:>8.2f}"
                            f"{per_10k:>7.2f}{got['cpu']:>7.2f}{got['peak_mb']:>9.1f}"
                        )
                        if command == "show" and count == 50_000:
                            failed |= got["seconds"] > 10 or got["peak_mb"] > 150
                finally:
                    if backend == "postgresql":
                        drop_postgres(args.postgres, ledger)
    if failed:
        print("show of 50,000 records: over 10 s or 150 MB")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
