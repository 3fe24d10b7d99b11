"""What one poll of a fanned-out run's outcomes costs as the run grows (``fan_out``'s collector).

Fills one run with N settled records through the ledger's own API, then writes ``--recent``
more (the outcomes that arrived since the previous poll) and times, per poll: reading the whole
run (``Ledger.records(run=...)``, what the sender did before), reading what changed since the
previous poll less the collector's overlap (``Ledger.records_since``), and a poll when nothing
changed. Then what a record's writes cost at that size (a claim and its outcome, as a worker
writes them; each write also updates the index a poll searches), µs a record.

    python benchmarks/bench_fanout_collect.py                    # SQLite, 2,000 and 20,000
    python benchmarks/bench_fanout_collect.py --rows 2000 20000 100000
    python benchmarks/bench_fanout_collect.py --postgres postgresql://postgres@127.0.0.1:5432/test

Expected: the ``records_since`` rows stay near-flat in N and grow with ``--recent`` (the
records transferred), the "nothing new" row stays flat in N (the store searches the index on
``(run, updated_at)``); the whole-run row grows with N.
"""

from __future__ import annotations

import argparse
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from invites.celery.collect import OVERLAP
from invites.ledger import Ledger, RecordKey, open_ledger

IDENTITY = '{"base_url":"https://vendor.example","vendor":"tenant_api"}'
ROUNDS = 5
WRITES = 500


def fill(ledger: Ledger, run: str, count: int, prefix: str) -> None:
    for n in range(count):
        key = RecordKey(run, IDENTITY, f"{prefix}{n}")
        ledger.claim(key, owner="bench", lease=60)
        ledger.settle_soon(key, "sent", owner="bench")
    ledger.flush()


def per_poll(call: Callable[[], int]) -> tuple[int, float]:
    started = time.perf_counter()
    rows = 0
    for _ in range(ROUNDS):
        rows = call()
    return rows, (time.perf_counter() - started) / ROUNDS * 1000


def measure(ledger: Ledger, size: int, recent: int) -> None:
    run = f"bench-{uuid.uuid4().hex[:8]}"
    fill(ledger, run, size, "old-")
    time.sleep(OVERLAP + 0.5)  # the old records fall out of the overlap, as in a long run
    since = time.time() - OVERLAP
    fill(ledger, run, recent, "new-")
    idle = time.time() + 60  # nothing written after this
    rows = {
        "whole run": per_poll(lambda: sum(1 for _ in ledger.records(run=run))),
        "records_since": per_poll(lambda: len(list(ledger.records_since(run=run, since=since)))),
        "nothing new": per_poll(lambda: len(list(ledger.records_since(run=run, since=idle)))),
    }
    for name, (count, ms) in rows.items():
        print(f"{size + recent:>8,}  {name:<14} {count:>8,} records  {ms:8.1f} ms a poll")
    started = time.perf_counter()
    fill(ledger, run, WRITES, "more-")
    us = (time.perf_counter() - started) / WRITES * 1e6
    print(f"{size + recent:>8,}  {'writes':<14} {WRITES:>8,} records  {us:8.0f} µs a record")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--rows", type=int, nargs="+", default=[2000, 20000])
    parser.add_argument("--recent", type=int, default=100)
    parser.add_argument("--postgres", metavar="URL", help="a PostgreSQL ledger URL instead")
    args = parser.parse_args()
    print(f"{'run size':>8}  {'poll':<14} {'read':>16}  {'cost':>13}")
    with tempfile.TemporaryDirectory() as directory:
        target = args.postgres or str(Path(directory) / "ledger.db")
        with open_ledger(target) as ledger:
            for size in args.rows:
                measure(ledger, size, args.recent)


if __name__ == "__main__":
    main()
