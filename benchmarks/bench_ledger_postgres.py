"""What the PostgreSQL ledger costs a resend: claim before, outcome after, on a real server.

The same resends through the sandbox (its own process, loopback) with and without a PostgreSQL
ledger, rounds alternated, each round a fresh run (every claim a new row):

- one at a time (``resend_many`` at concurrency 1): the added latency per resend, in µs, and the
  ratio to a loopback resend without a ledger;
- 32 in flight (``aresend_many``): the throughput ratio.

The server is ``$INVITES_BENCH_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/
test``); the ledger lives in a schema of its own, dropped at the end. Unreachable: one
informational row says so.
"""

from __future__ import annotations

import asyncio
import os
import time
import uuid
from typing import Any

from _harness import Row, bench_tenant_users, median, paired_ratios, sandbox_process

import invites
from invites.sandbox import TENANT_API_KEY, TENANT_ID

URL = os.environ.get("INVITES_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
CONCURRENCY = 32


def _config(url: str) -> dict[str, Any]:
    return {
        "provider": "tenant_api",
        "base_url": url,
        "token": TENANT_API_KEY,
        "tenant_id": TENANT_ID,
    }


def _sequential(provider: Any, users: list[str], ledger: Any) -> float:
    options = {} if ledger is None else {"ledger": ledger, "run": uuid.uuid4().hex}
    started = time.perf_counter()
    for outcome in invites.resend_many(provider, users, concurrency=1, **options):
        if outcome.status != "sent" or outcome.skipped:
            raise RuntimeError(f"a benchmark resend was not sent: {outcome}")
    return time.perf_counter() - started


async def _concurrent(provider: Any, users: list[str], ledger: Any) -> float:
    options = {} if ledger is None else {"ledger": ledger, "run": uuid.uuid4().hex}
    started = time.perf_counter()
    async for outcome in invites.aresend_many(provider, users, concurrency=CONCURRENCY, **options):
        if outcome.status != "sent" or outcome.skipped:
            raise RuntimeError(f"a benchmark resend was not sent: {outcome}")
    return time.perf_counter() - started


def _unreachable() -> str | None:
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install 'invites[postgres]')"
    try:
        with psycopg.connect(URL, connect_timeout=3) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}"
    return None


def _drop(schema: str) -> None:
    import psycopg
    from psycopg import sql

    with psycopg.connect(URL, autocommit=True) as connection:
        connection.execute(
            sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
        )


def run(quick: bool) -> list[Row]:
    problem = _unreachable()
    if problem is not None:
        return [
            Row("ledger postgresql", None, None, "-", None, "info", None, f"skipped: {problem}")
        ]
    count, rounds = (100, 2) if quick else (300, 6)
    users = bench_tenant_users(count)
    schema = f"invites_bench_{uuid.uuid4().hex[:12]}"
    try:
        with sandbox_process(tenant_users=count) as server:
            provider = invites.from_config(_config(server.url))
            ledger = invites.open_ledger(f"{URL}?schema={schema}")
            with provider, ledger:
                sequential, concurrent = _measure(provider, ledger, users, rounds)
        commit_us = _bare_commit_us(schema, count)
    finally:
        _drop(schema)
    return _rows(count, rounds, sequential, concurrent, commit_us)


def _bare_commit_us(schema: str, count: int) -> float:
    """µs of one autocommitted one-row INSERT on the same server: the floor of a durable write."""
    import psycopg
    from psycopg import sql

    table = sql.Identifier(schema, "bare")
    with psycopg.connect(URL, autocommit=True) as connection:
        connection.execute(sql.SQL("CREATE TABLE {} (id text PRIMARY KEY)").format(table))
        insert = sql.SQL("INSERT INTO {} VALUES (%s)").format(table)
        started = time.perf_counter()
        for index in range(count):
            connection.execute(insert, (str(index),))
        return (time.perf_counter() - started) / count * 1e6


def _measure(
    provider: Any, ledger: Any, users: list[str], rounds: int
) -> tuple[dict[str, list[float]], dict[str, list[float]]]:
    _sequential(provider, users[:50], ledger)  # warm up: connections, prepared statements
    _sequential(provider, users[:50], None)
    sequential: dict[str, list[float]] = {"ledger": [], "plain": []}
    for index in range(rounds):
        order = ["ledger", "plain"] if index % 2 == 0 else ["plain", "ledger"]
        for name in order:
            sequential[name].append(
                _sequential(provider, users, ledger if name == "ledger" else None)
            )

    async def alternate() -> dict[str, list[float]]:
        await _concurrent(provider, users[:100], ledger)
        await _concurrent(provider, users[:100], None)
        results: dict[str, list[float]] = {"ledger": [], "plain": []}
        for index in range(rounds):
            order = ["ledger", "plain"] if index % 2 == 0 else ["plain", "ledger"]
            for name in order:
                results[name].append(
                    await _concurrent(provider, users, ledger if name == "ledger" else None)
                )
        return results

    return sequential, asyncio.run(alternate())


def _rows(
    count: int,
    rounds: int,
    sequential: dict[str, list[float]],
    concurrent: dict[str, list[float]],
    commit_us: float,
) -> list[Row]:
    per = {name: [s / count * 1e6 for s in runs] for name, runs in sequential.items()}
    added = [a - b for a, b in zip(per["ledger"], per["plain"], strict=True)]
    rate = {name: [count / s for s in runs] for name, runs in concurrent.items()}
    note = (
        f"{count} resends a round, {rounds} alternated rounds, a fresh run each; sandbox in its "
        "own process, PostgreSQL on loopback; ratio = median of per-round ratios"
    )
    return [
        Row(
            benchmark="ledger postgresql, one at a time (latency)",
            invites=median(per["ledger"]),
            raw=median(per["plain"]),
            unit="us/resend",
            ratio=median(paired_ratios(per["ledger"], per["plain"])),
            target="info",
            passed=None,
            note=f"{note}; the ledger adds {median(added):,.0f} us a resend (a durable claim "
            f"waited for, its outcome queued; a bare one-row INSERT commit on this server takes "
            f"{commit_us:,.0f} us)",
            detail={"us_per_resend": per, "added_us": added, "bare_commit_us": commit_us},
        ),
        Row(
            benchmark=f"ledger postgresql, {CONCURRENCY} in flight (throughput)",
            invites=median(rate["ledger"]),
            raw=median(rate["plain"]),
            unit="resends/s",
            ratio=median(paired_ratios(rate["ledger"], rate["plain"])),
            target="info",
            passed=None,
            note="aresend_many; each event loop has its own connection pool",
            detail={"rate": rate},
        ),
    ]
