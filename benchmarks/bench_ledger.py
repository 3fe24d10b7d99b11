"""What the write-ahead ledger costs a resend, with every commit synced to disk.

- Ledger alone: a claim and an outcome (two durable commits) per resend, from one caller and from
  8 threads (the SQLite writer groups the commits queued while one is syncing; each caller still
  waits for the commit holding its own write). µs per resend. Then the same with each outcome
  queued (``settle_soon``), as ``resend_many`` records them: it rides on the next claim's commit.
- Grouping: where a synced commit costs more than 10 % of a loopback resend, one commit per
  resend is too many, and the commits must be grouped; the row counts the commits
  ``resend_many`` made per resend at concurrency 8 (one per resend would be ungrouped).
- Next to a loopback resend: ``resend_many`` at concurrency 8 and 32 through the sandbox in its
  own process (answering in about a millisecond), with and without a ledger, rounds alternated;
  µs of wall time per resend. With each of these, the same rounds' CPU time per resend (every
  thread of this process, and of it the writer thread's commits). The client and the sandbox
  keep both cores busy here, so what the ledger adds to the CPU time is what it adds to the wall
  time. These rows are informational.
- Next to a vendor that takes 50 ms to answer (the sandbox in its own process, waiting 50 ms
  before every answer, as a vendor's server is not in the client's interpreter): the same
  comparison at concurrency 32, where the ledger must add at most 10 %.

Every resend waits for its own claim to be on disk before its request leaves, so each pays about
one to two fsyncs of latency whatever the grouping; grouping divides the disk's work (one fsync
per group of claims and outcomes), not that wait. Against a sandbox answering in a millisecond
that wait dominates; against a vendor's real latency it fades.

The ledger file lives in a temporary directory (``INVITES_BENCH_LEDGER_DIR`` picks another, e.g.
the disk a service would use): the cost is mostly the disk's fsync.
"""

from __future__ import annotations

import functools
import itertools
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _harness import Row, alternate, at_most, bench_tenant_users, median, sandbox_process

import invites
from invites.ledger import Ledger, RecordKey, open_ledger
from invites.sandbox import TENANT_API_KEY, TENANT_ID

CONCURRENCY = 8
BULK_CONCURRENCY = (8, 32)
_runs = itertools.count()


def _ledger_alone(ledger: Ledger, count: int, callers: int, queued: bool = False) -> float:
    """µs per resend for ``count`` claim + outcome pairs spread over ``callers`` threads; with
    ``queued``, each outcome is queued (``settle_soon``, as ``resend_many`` does) and the time
    includes the final ``flush``."""
    run = f"alone-{next(_runs)}"
    result = invites.ResendResult(provider="bench", user_id="u")
    settle = ledger.settle_soon if queued else ledger.settle

    def work(offset: int) -> None:
        for index in range(offset, count, callers):
            key = RecordKey(run, '{"vendor":"bench"}', f"u-{index}")
            claim = ledger.claim(key, owner="bench", lease=60)
            assert claim.granted
            settle(key, "sent", owner="bench", result=result)

    threads = [threading.Thread(target=work, args=(n,)) for n in range(callers)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ledger.flush()
    return (time.perf_counter() - started) / count * 1e6


class _Commits:
    """The SQLite writer's commits from now on: how many, and its CPU seconds committing them."""

    def __init__(self, ledger: Ledger) -> None:
        self.count, self.cpu = 0, 0.0
        writer = ledger._writer  # type: ignore[attr-defined]  # the SQLite ledger's writer thread
        commit = writer._commit

        def counted(*args: Any) -> None:
            started = time.thread_time()  # the writer's own thread
            commit(*args)
            self.cpu += time.thread_time() - started
            self.count += 1

        writer._commit = counted

    def per_round(
        self, bulk: Callable[[], float], resends: int, commits: list[float], cpu: list[float]
    ) -> Callable[[], float]:
        """``bulk``, recording each round's commits and writer CPU µs per resend."""

        def run() -> float:
            count, writer_cpu = self.count, self.cpu
            wall = bulk()
            commits.append((self.count - count) / resends)
            cpu.append((self.cpu - writer_cpu) / resends * 1e6)
            return wall

        return run


def _config(url: str) -> dict[str, Any]:
    return {"provider": "tenant_api", "base_url": url, "token": TENANT_API_KEY,
            "tenant_id": TENANT_ID}  # fmt: skip


def _bulk(provider: Any, users: list[str], ledger: Ledger | None, concurrency: int) -> float:
    """µs of wall time per resend for one ``resend_many`` over ``users``."""
    options: dict[str, Any] = {}
    if ledger is not None:
        options = {"ledger": ledger, "run": f"bulk-{next(_runs)}"}
    started, cpu_started = time.perf_counter(), time.process_time()
    failed = sum(
        not outcome.ok
        for outcome in invites.resend_many(provider, users, concurrency=concurrency, **options)
    )
    elapsed = time.perf_counter() - started
    _last_cpu[0] = (time.process_time() - cpu_started) / len(users) * 1e6
    _failed.append(failed)
    return elapsed / len(users) * 1e6


#: CPU µs per resend (every thread of this process) of the last bulk round.
_last_cpu = [0.0]


def _timed_cpu(bulk: Callable[[], float], into: list[float]) -> Callable[[], float]:
    """``bulk``, recording its round's CPU time per resend in ``into``."""

    def run() -> float:
        wall = bulk()
        into.append(_last_cpu[0])
        return wall

    return run


#: Failed resends of each bulk round since the last row (a dropped connection, say): reported in
#: the row's note rather than losing every row of the run.
_failed: list[int] = []


def _failures() -> str:
    failed, rounds = sum(_failed), len(_failed)
    _failed.clear()
    return f"; {failed} resends failed over {rounds} rounds" if failed else ""


def _single(provider: Any, users: list[str]) -> float:
    """µs per resend, one at a time (no concurrency)."""
    started = time.perf_counter()
    for user in users:
        provider.resend_invite(user)
    return (time.perf_counter() - started) / len(users) * 1e6


def _bulk_rows(
    provider: Any, users: list[str], ledger: Ledger, rounds: int
) -> tuple[list[Row], dict[int, list[float]]]:
    """The loopback rows, and the commits per resend of each concurrency's ledger rounds."""
    rows = []
    commits = _Commits(ledger)
    commits_per_resend: dict[int, list[float]] = {}
    for concurrency in BULK_CONCURRENCY:
        cpu: dict[str, list[float]] = {"ledger": [], "none": [], "writer": []}
        counted = commits_per_resend[concurrency] = []
        ledgered = commits.per_round(
            functools.partial(_bulk, provider, users, ledger, concurrency),
            len(users),
            counted,
            cpu["writer"],
        )
        bulk = alternate(
            {
                "ledger": _timed_cpu(ledgered, cpu["ledger"]),
                "none": _timed_cpu(
                    functools.partial(_bulk, provider, users, None, concurrency), cpu["none"]
                ),
            },
            rounds,
        )
        ratio = median([a / b for a, b in zip(bulk["ledger"], bulk["none"], strict=True)])
        rows.append(
            Row(
                f"bulk + ledger, concurrency {concurrency}",
                median(bulk["ledger"]),
                median(bulk["none"]),
                "µs / resend",
                ratio,
                "info",
                None,
                note=f"resend_many over loopback, {len(users)} users, with vs without a "
                "ledger (wall time per resend); both cores busy: what the ledger adds is CPU "
                f"time (next row){_failures()}",
                detail={"ledger": bulk["ledger"], "none": bulk["none"], "commits": counted},
            )
        )
        rows.append(_cpu_row(concurrency, cpu))
    return rows, commits_per_resend


def _cpu_row(concurrency: int, cpu: dict[str, list[float]]) -> Row:
    """The same rounds' CPU time: where the process is busy, a ledger's cost is what it adds."""
    ratio = median([a / b for a, b in zip(cpu["ledger"], cpu["none"], strict=True)])
    writer = median(cpu["writer"])
    return Row(
        f"bulk + ledger, concurrency {concurrency}, CPU",
        median(cpu["ledger"]),
        median(cpu["none"]),
        "CPU µs / resend",
        ratio,
        "info",
        None,
        note="the rounds above: CPU time of this process (every thread) per resend, with vs "
        f"without a ledger; of it, the ledger's writer thread committing: {writer:,.0f} µs",
        detail=cpu,
    )


def _slow_vendor_row(ledger: Ledger, count: int, rounds: int) -> Row:
    users = bench_tenant_users(count)
    with (
        sandbox_process(latency=0.05, tenant_users=count) as running,
        invites.from_config(_config(running.url)) as provider,
    ):
        bulk = alternate(
            {
                "ledger": lambda: _bulk(provider, users, ledger, 32),
                "none": lambda: _bulk(provider, users, None, 32),
            },
            rounds,
        )
    overhead = median([a / b - 1 for a, b in zip(bulk["ledger"], bulk["none"], strict=True)])
    return Row(
        "bulk + ledger, 50 ms vendor",
        median(bulk["ledger"]),
        median(bulk["none"]),
        "µs / resend",
        overhead,
        "≤ 10%",
        at_most(overhead, 0.10),
        note=f"resend_many at concurrency 32, {count} users, every resend answered after 50 ms"
        f"{_failures()}",
        detail={"ledger": bulk["ledger"], "none": bulk["none"]},
    )


def run(quick: bool) -> list[Row]:
    count = 300 if quick else 2000
    rounds = 3 if quick else 5
    users = bench_tenant_users(count)
    directory = os.environ.get("INVITES_BENCH_LEDGER_DIR")
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        ledger = open_ledger(Path(tmp) / "ledger.db")
        try:
            alone = alternate(
                {
                    "one": lambda: _ledger_alone(ledger, count // 4, 1),
                    "grouped": lambda: _ledger_alone(ledger, count, CONCURRENCY),
                    "one queued": lambda: _ledger_alone(ledger, count // 4, 1, queued=True),
                    "grouped queued": lambda: _ledger_alone(ledger, count, CONCURRENCY, True),
                },
                rounds,
            )
            with (
                sandbox_process(tenant_users=count) as sandbox,
                invites.from_config(_config(sandbox.url)) as provider,
            ):
                single = median([_single(provider, users[:200]) for _ in range(rounds)])
                bulk_rows, commits = _bulk_rows(provider, users, ledger, rounds)
            bulk_rows.append(_slow_vendor_row(ledger, count // 2, rounds))
        finally:
            ledger.close()
    one, grouped = median(alone["one"]), median(alone["grouped"])
    return [
        Row(
            "ledger: 1 caller",
            one,
            single,
            "µs / resend",
            one / single,
            "info",
            None,
            note="claim + outcome (two synced commits) vs one sequential loopback resend",
            detail={"rounds": alone["one"]},
        ),
        Row(
            f"ledger: {CONCURRENCY} callers",
            grouped,
            single,
            "µs / resend",
            grouped / single,
            "info",
            None,
            note="the same from 8 threads: commits grouped, each caller waits for its own",
            detail={"rounds": alone["grouped"]},
        ),
        *_queued_rows(alone, single),
        _grouping_row(one / 2 / single, commits[CONCURRENCY]),
        *bulk_rows,
    ]


def _grouping_row(commit_share: float, commits_per_resend: list[float]) -> Row:
    """Commits must be grouped when one synced commit costs over 10 % of a loopback resend."""
    per_resend = median(commits_per_resend)
    return Row(
        f"ledger: commits per resend, resend_many c={CONCURRENCY}",
        per_resend,
        1.0,
        "commits / resend",
        per_resend,
        "< 1x if a commit > 10 % of a resend",
        commit_share <= 0.10 or per_resend < 1,
        note=f"a synced commit (1 caller, half of a claim + outcome) costs {commit_share:.0%} "
        "of a loopback resend, so commits are grouped: claims queued meanwhile share one, "
        "outcomes ride on the next claim's; raw = one commit per resend",
        detail={"rounds": commits_per_resend},
    )


def _queued_rows(alone: dict[str, list[float]], single: float) -> list[Row]:
    rows = []
    for name, callers in (("one queued", 1), ("grouped queued", CONCURRENCY)):
        value = median(alone[name])
        rows.append(
            Row(
                f"ledger: {callers} caller{'s' if callers > 1 else ''}, outcomes queued",
                value,
                single,
                "µs / resend",
                value / single,
                "info",
                None,
                note="claim + queued outcome, as resend_many records them (flushed at the end)",
                detail={"rounds": alone[name]},
            )
        )
    return rows


if __name__ == "__main__":
    for row in run(quick=True):
        print(row)
