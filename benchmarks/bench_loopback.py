"""Bulk resends over loopback against the sandbox, served by uvicorn in a process of its own.

The sandbox runs in a child process, not in a thread of this one: in a thread it would share this
process's GIL, so the server's work would be charged to whichever client side happened to be
running and the client's own cost would be hidden behind it. In its own process it uses the
other core, as a real vendor would, and the client side is measured alone.

- Bulk: ``invites.resend_many`` vs raw ``httpx.Client`` under ``ThreadPoolExecutor.map``, and
  ``invites.aresend_many`` vs raw ``httpx.AsyncClient`` under an ``asyncio.Semaphore``, each at
  concurrency 1, 8, 64 and 256, rounds alternated; throughput (resends/s), and the client
  process's CPU time per resend (``time.process_time``, every thread), which load from other
  processes on the machine does not inflate as it does wall-clock throughput. Both sides use the
  pool limits the provider's own clients use (:data:`invites._http.clients.LIMITS`).
- Rate-limited bulk: the sandbox admits 100 requests/s and the provider is configured with
  ``rate_limit = 100``; the elapsed time against the ideal ``N / 100`` s, the 429s the sandbox
  drew, and how many emails each user received.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import itertools
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import attrs
import httpx
from _harness import (
    Row,
    at_least,
    at_most,
    bench_tenant_users,
    median,
    paired_ratios,
    sandbox_process,
)

import invites
from invites._http.clients import LIMITS
from invites.sandbox import TENANT_API_KEY, TENANT_ID, TENANT_USER_INVITED

CONCURRENCY = 32  # the rate-limited run
CONCURRENCIES = (1, 8, 64, 256)
#: The provider's default timeout, so that the raw side waits for a pooled connection as long.
TIMEOUT = 10.0


@attrs.frozen
class RawResult:
    user_id: str
    status_code: int
    message: str | None = None


def _config(url: str, **extra: Any) -> dict[str, Any]:
    return {
        "provider": "tenant_api",
        "base_url": url,
        "token": TENANT_API_KEY,
        "tenant_id": TENANT_ID,
        **extra,
    }


def _resend_raw(client: httpx.Client, url: str, headers: dict[str, str], user_id: str) -> bool:
    """One raw resend: the request, the status check, the JSON and a small result."""
    try:
        response = client.post(f"{url}/v1/users/{user_id}/resend-invite", headers=headers)
        if response.status_code != 200:
            return False
        data = response.json()
        RawResult(user_id, 200, message=data.get("message"))
        return True
    except httpx.HTTPError:
        return False


def _threads_invites(provider: Any, count: int, concurrency: int) -> tuple[float, int]:
    """Elapsed s and failures for ``count`` resends through ``resend_many``."""
    failures = 0
    wall = time.perf_counter()
    users = itertools.repeat(TENANT_USER_INVITED, count)
    for outcome in invites.resend_many(provider, users, concurrency=concurrency):
        failures += not outcome.ok
    return time.perf_counter() - wall, failures


def _threads_raw(client: httpx.Client, url: str, count: int, concurrency: int) -> tuple[float, int]:
    """The same resends with raw httpx: ``ThreadPoolExecutor.map`` over one shared client."""
    headers = {"X-Tenant-ID": TENANT_ID, "X-API-Key": TENANT_API_KEY}

    def resend(user_id: str) -> bool:
        return _resend_raw(client, url, headers, user_id)

    wall = time.perf_counter()
    with ThreadPoolExecutor(max_workers=concurrency) as executor:
        ok = sum(executor.map(resend, itertools.repeat(TENANT_USER_INVITED, count)))
    return time.perf_counter() - wall, count - ok


async def _async_invites(provider: Any, count: int, concurrency: int) -> tuple[float, int]:
    """Elapsed s and failures for ``count`` resends through ``aresend_many``."""
    failures = 0
    wall = time.perf_counter()
    users = itertools.repeat(TENANT_USER_INVITED, count)
    async for outcome in invites.aresend_many(provider, users, concurrency=concurrency):
        failures += not outcome.ok
    return time.perf_counter() - wall, failures


async def _async_raw(
    client: httpx.AsyncClient, url: str, count: int, concurrency: int
) -> tuple[float, int]:
    """The same resends with raw httpx: a semaphore bounds the tasks in flight."""
    headers = {"X-Tenant-ID": TENANT_ID, "X-API-Key": TENANT_API_KEY}
    semaphore = asyncio.Semaphore(concurrency)

    async def resend(user_id: str) -> bool:
        async with semaphore:
            try:
                response = await client.post(
                    f"{url}/v1/users/{user_id}/resend-invite", headers=headers
                )
                if response.status_code != 200:
                    return False
                data = response.json()
                RawResult(user_id, 200, message=data.get("message"))
                return True
            except httpx.HTTPError:
                return False

    wall = time.perf_counter()
    results = await asyncio.gather(*(resend(TENANT_USER_INVITED) for _ in range(count)))
    return time.perf_counter() - wall, count - sum(results)


Side = Callable[[], tuple[float, int]]
#: One side's round: elapsed s, failed resends, CPU s of this process (every thread).
Round = tuple[float, int, float]


def _alternated(sides: dict[str, Side], rounds: int) -> dict[str, list[Round]]:
    """Each side once per round, the order alternated; a warm-up round first."""
    for side in sides.values():
        side()
    results: dict[str, list[Round]] = {name: [] for name in sides}
    for index in range(rounds):
        order = list(sides) if index % 2 == 0 else list(sides)[::-1]
        for name in order:
            gc.collect()
            cpu = time.process_time()
            elapsed, failures = sides[name]()
            results[name].append((elapsed, failures, time.process_time() - cpu))
    return results


def _rows(mode: str, concurrency: int, count: int, results: dict[str, list[Round]]) -> list[Row]:
    """The throughput row, then the CPU-per-resend row of the same rounds."""
    cpu = {name: [1e6 * c / count for _, _, c in runs] for name, runs in results.items()}
    cpu_ratio = median(paired_ratios(cpu["invites"], cpu["raw"]))
    return [
        _row(mode, concurrency, count, results),
        Row(
            benchmark=f"bulk loopback {mode} c={concurrency} CPU",
            invites=median(cpu["invites"]),
            raw=median(cpu["raw"]),
            unit="CPU us/resend",
            ratio=cpu_ratio,
            target="info",
            passed=None,
            note="the client process's CPU time (every thread) per resend, same rounds",
            detail={"cpu_us_per_resend": cpu},
        ),
    ]


def _row(
    mode: str,
    concurrency: int,
    count: int,
    results: dict[str, list[Round]],
    *,
    label: str = "bulk loopback",
    at_least_ratio: float | None = None,
) -> Row:
    """The throughput row; ``at_least_ratio``: its target (None: information)."""
    rate = {name: [count / elapsed for elapsed, _, _ in runs] for name, runs in results.items()}
    failures = {name: sum(f for _, f, _ in runs) for name, runs in results.items()}
    ratio = median(paired_ratios(rate["invites"], rate["raw"]))
    raw = "ThreadPoolExecutor.map" if mode == "threads" else "asyncio.Semaphore + gather"
    note = (
        f"{len(rate['raw'])} alternated rounds of {count} resends a side; raw = one httpx "
        f"{'Client' if mode == 'threads' else 'AsyncClient'} + {raw}"
    )
    if any(failures.values()):
        note += f"; FAILED RESENDS: {failures}"
    passed = None if at_least_ratio is None else bool(at_least(ratio, at_least_ratio))
    return Row(
        benchmark=f"{label} {mode} c={concurrency}",
        invites=median(rate["invites"]),
        raw=median(rate["raw"]),
        unit="resends/s",
        ratio=ratio,
        target="info" if at_least_ratio is None else f">= {at_least_ratio:.2f}x",
        passed=False if any(failures.values()) else passed,
        note=note,
        detail={"rate": rate, "failures": failures},
    )


def _thread_rows(url: str, count: int, rounds: int) -> list[Row]:
    rows = []
    raw_client = httpx.Client(timeout=TIMEOUT, limits=LIMITS)
    with invites.from_config(_config(url)) as provider, raw_client as client:
        for concurrency in CONCURRENCIES:
            sides: dict[str, Side] = {
                "invites": functools.partial(_threads_invites, provider, count, concurrency),
                "raw": functools.partial(_threads_raw, client, url, count, concurrency),
            }
            rows += _rows("threads", concurrency, count, _alternated(sides, rounds))
    return rows


async def async_alternated(
    sides: dict[str, Callable[[], Awaitable[tuple[float, int]]]], rounds: int
) -> dict[str, list[Round]]:
    """:func:`_alternated` for coroutines: a warm-up round, then the order alternated."""
    for side in sides.values():  # warm up: connections, code paths
        await side()
    results: dict[str, list[Round]] = {name: [] for name in sides}
    for index in range(rounds):
        for name in list(sides) if index % 2 == 0 else list(sides)[::-1]:
            gc.collect()
            cpu = time.process_time()
            elapsed, failures = await sides[name]()
            results[name].append((elapsed, failures, time.process_time() - cpu))
    return results


def _async_rows(url: str, count: int, rounds: int) -> list[Row]:
    async def main() -> list[Row]:
        rows = []
        provider = invites.from_config(_config(url))
        async with provider, httpx.AsyncClient(timeout=TIMEOUT, limits=LIMITS) as client:
            for concurrency in CONCURRENCIES:
                sides: dict[str, Callable[[], Awaitable[tuple[float, int]]]] = {
                    "invites": functools.partial(_async_invites, provider, count, concurrency),
                    "raw": functools.partial(_async_raw, client, url, count, concurrency),
                }
                results = await async_alternated(sides, rounds)
                rows += _rows("async", concurrency, count, results)
        return rows

    return asyncio.run(main())


def bulk(quick: bool) -> list[Row]:
    """Threads and async at each concurrency, each against its best raw httpx equivalent."""
    count, rounds = (100, 2) if quick else (300, 16)
    with sandbox_process() as server:
        return [*_thread_rows(server.url, count, rounds), *_async_rows(server.url, count, rounds)]


def rate_limited(quick: bool) -> list[Row]:
    count = 200 if quick else 1000
    limit = 100.0
    ideal = count / limit
    with sandbox_process(rate_limit=limit, tenant_users=count) as server:
        first = server.stats()
        distinct = bool(first.get("extra_tenant_users"))
        users = bench_tenant_users(count) if distinct else [TENANT_USER_INVITED] * count
        statuses: dict[int | None, int] = {}

        def on_attempt(event: Any) -> None:
            statuses[event.status_code] = statuses.get(event.status_code, 0) + 1

        async def main() -> tuple[float, int]:
            config = _config(server.url, rate_limit=limit, on_attempt=on_attempt)
            sent = 0
            async with invites.from_config(config) as provider:
                server.reset()  # a full bucket, as for a vendor that has been idle
                started = time.perf_counter()
                async for outcome in invites.aresend_many(provider, users, concurrency=CONCURRENCY):
                    sent += outcome.status == "sent"
                return time.perf_counter() - started, sent

        elapsed, sent = asyncio.run(main())
        stats = server.stats()
    drawn = stats["rate_limited"]
    share = drawn / max(1, stats["requests"])
    ratio = elapsed / ideal
    if distinct:
        twice = stats["users_emailed_twice"]
        email_note = (
            f"{count} distinct users; {stats['emails']} emails to {stats['users_emailed']} users; "
            f"users emailed twice: {twice}"
        )
        emails_ok = twice == 0 and stats["emails"] == sent == count
    else:
        twice = None
        email_note = (
            "the sandbox has too few invitable users for one each: emails counted against "
            f"resends ({stats['emails']} emails for {sent} accepted resends of {count})"
        )
        emails_ok = stats["emails"] == sent == count
    hook_429 = statuses.get(429, 0)
    return [
        Row(
            benchmark=f"rate-limited bulk {count} @ 100/s (elapsed)",
            invites=elapsed,
            raw=ideal,
            unit="s",
            ratio=ratio,
            target="<= 1.10x ideal",
            passed=bool(at_most(ratio, 1.10)),
            note=f"raw column = the ideal N / limit; concurrency {CONCURRENCY}",
        ),
        Row(
            benchmark="rate-limited bulk (429s drawn)",
            invites=float(drawn),
            raw=float(stats["requests"]),
            unit="429s / requests",
            ratio=share,
            target="<= 2%",
            passed=share <= 0.02,
            note=f"counted by the sandbox; the on_attempt hook saw {hook_429}",
        ),
        Row(
            benchmark="rate-limited bulk (emails)",
            invites=float(stats["emails"]),
            raw=float(count),
            unit="emails / resends",
            ratio=None if twice is None else float(twice),
            target="each user once",
            passed=emails_ok,
            note=email_note,
            detail={"stats": stats, "attempt_statuses": {str(k): v for k, v in statuses.items()}},
        ),
    ]
