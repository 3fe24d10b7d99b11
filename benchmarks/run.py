"""Run the performance suite: ``python benchmarks/run.py [--quick] [--json] [--only NAME ...]``.

Compares ``invites`` with raw httpx doing the same work and prints one table: benchmark, invites,
raw, ratio, target, pass/fail (``--json``: the same as JSON, with every round's figures).

- overhead:  per-call cost of one resend on an in-process ``httpx.MockTransport``, per vendor,
             sync and async.
- bulk:      resends over loopback against the sandbox (its own process), threads and async,
             concurrency 1, 8, 64 and 256.
- ratelimit: 1,000 resends (200 with ``--quick``) against a sandbox admitting 100 requests/s.
- coldstart: ``import invites`` + ``from_config`` vs ``import httpx, attrs, cattrs`` + a client.
- memory:    peak RSS of ``resend_many`` over 10,000 vs 100,000 invitees.
- ledger:    the write-ahead ledger's cost per resend (durable commits), alone and in a bulk run.
- ledger-postgres: what a PostgreSQL ledger adds to a loopback resend (latency, throughput).
- shared:    four processes against one vendor limit: a shared Redis pace vs per-process limits
             (only with ``--only shared``: it needs the Redis server and takes under two minutes).
- budget:    what a per-user budget adds to a ledger claim: PostgreSQL round trips (counted by a
             relay) and µs per claim on both stores (only with ``--only budget``).
- storage:   opening a 50k-record SQLite ledger (quick_check + commit probe), and SIGTERM to exit
             of a CLI run whose ledger stops answering (only with ``--only storage``).

The machine may be shared: every comparison alternates its sides and reports medians. Exit
status is 0 unless ``--check`` is given and a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Row

SUITES = (
    "vendor",
    "overhead",
    "bulk",
    "ratelimit",
    "coldstart",
    "memory",
    "ledger",
    "ledger-postgres",
)
OPTIONAL = ("shared", "budget", "storage")


def _suite(name: str) -> Callable[[bool], list[Row]]:
    if name == "vendor":
        import bench_vendor

        return bench_vendor.run
    if name == "overhead":
        import bench_overhead

        return bench_overhead.run
    if name == "bulk":
        import bench_loopback

        return bench_loopback.bulk
    if name == "ratelimit":
        import bench_loopback

        return bench_loopback.rate_limited
    if name == "coldstart":
        import bench_coldstart

        return bench_coldstart.run
    if name == "memory":
        import bench_memory

        return bench_memory.run
    if name == "ledger":
        import bench_ledger

        return bench_ledger.run
    if name == "ledger-postgres":
        import bench_ledger_postgres

        return bench_ledger_postgres.run
    if name == "shared":
        import bench_shared_pacing

        return bench_shared_pacing.run
    if name == "budget":
        import bench_budget

        return bench_budget.run
    if name == "storage":
        import bench_ledger_storage

        return bench_ledger_storage.run
    raise ValueError(name)


def _machine() -> dict[str, object]:
    import httpx

    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "platform": platform.platform(),
        "cpus": os.cpu_count(),
        "httpx": httpx.__version__,
    }


def _number(value: float | None) -> str:
    if value is None:
        return "-"
    if value >= 1000 or value == int(value):
        return f"{value:,.0f}"
    if value >= 100:
        return f"{value:.1f}"
    return f"{value:.3g}" if value < 10 else f"{value:.2f}"


def _ratio(row: Row) -> str:
    if row.ratio is None:
        return "-"
    if row.target.endswith("%"):
        return f"{row.ratio * 100:.2f}%"
    if row.target.startswith("growth"):
        return f"+{row.ratio:.2f} MB"
    if row.unit == "emails / resends":
        return f"{row.ratio:.0f} twice"
    return f"{row.ratio:.3f}x"


def _verdict(row: Row) -> str:
    return "info" if row.passed is None else ("PASS" if row.passed else "FAIL")


def table(rows: list[Row]) -> str:
    header = ("benchmark", "invites", "raw", "unit", "ratio", "target", "result")
    lines = [
        (
            row.benchmark,
            _number(row.invites),
            _number(row.raw),
            row.unit,
            _ratio(row),
            row.target,
            _verdict(row),
        )
        for row in rows
    ]
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *lines, strict=True)]
    out = []
    for index, line in enumerate([header, *lines]):
        cells = [
            cell.ljust(width) if column in (0, 3, 5) else cell.rjust(width)
            for column, (cell, width) in enumerate(zip(line, widths, strict=True))
        ]
        out.append("  ".join(cells).rstrip())
        if index == 0:
            out.append("  ".join("-" * width for width in widths))
    notes = [f"- {row.benchmark}: {row.note}" for row in rows if row.note]
    return "\n".join([*out, "", "notes:", *notes])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a short smoke run")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument(
        "--only",
        nargs="+",
        choices=SUITES + OPTIONAL,
        default=list(SUITES),
        metavar="NAME",
        help=f"run only these benchmarks ({', '.join(SUITES + OPTIONAL)})",
    )
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    args = parser.parse_args(argv)
    # SoftwareOne's legacy endpoint warns; the benchmarks use the current one.
    warnings.simplefilter("ignore", DeprecationWarning)
    started = time.perf_counter()
    rows: list[Row] = []
    for name in args.only:
        if not args.json:
            print(f"running {name} ...", file=sys.stderr, flush=True)
        rows.extend(_suite(name)(args.quick))
    elapsed = time.perf_counter() - started
    if args.json:
        document = {
            "machine": _machine(),
            "quick": args.quick,
            "seconds": round(elapsed, 1),
            "rows": [row.as_dict() for row in rows],
        }
        print(json.dumps(document, indent=2))
    else:
        machine = _machine()
        print(
            f"invites benchmarks{' (quick)' if args.quick else ''}: Python {machine['python']}, "
            f"{machine['cpus']} CPUs, httpx {machine['httpx']}, {elapsed:.0f} s"
        )
        print()
        print(table(rows))
    missed = any(row.passed is False for row in rows)
    return 1 if args.check and missed else 0


if __name__ == "__main__":
    sys.exit(main())
