"""Bulk resends over loopback against the sandbox, served by uvicorn in a process of its own.

The sandbox runs in a child process, not in a thread of this one: in a thread it would share this
process's GIL, so the server's work would be charged to whichever client side happened to be
running and the client's own cost would be hidden behind it. In its own process it uses the
other core, as a real vendor would, and the client side is measured alone.

- Bulk: ``invites.aresend_many`` vs raw ``httpx.AsyncClient`` under an ``asyncio.Semaphore``, at
  the same concurrency, rounds alternated; throughput (resends/s) and client CPU per resend.
- Rate-limited bulk: the sandbox admits 100 requests/s and the provider is configured with
  ``rate_limit = 100``; the elapsed time against the ideal ``N / 100`` s, the 429s the sandbox
  drew, and how many emails each user received.
"""

from __future__ import annotations

import asyncio
import itertools
import time
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
from invites.sandbox import TENANT_API_KEY, TENANT_ID, TENANT_USER_INVITED

CONCURRENCY = 32


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


async def _invites_run(provider: Any, count: int, concurrency: int) -> tuple[float, float, int]:
    """Elapsed s, client CPU s, and failures for ``count`` resends through ``aresend_many``."""
    failures = 0
    wall, cpu = time.perf_counter(), time.process_time()
    async for outcome in invites.aresend_many(
        provider, itertools.repeat(TENANT_USER_INVITED, count), concurrency=concurrency
    ):
        if not outcome.ok:
            failures += 1
    return time.perf_counter() - wall, time.process_time() - cpu, failures


async def _raw_run(
    client: httpx.AsyncClient, url: str, count: int, concurrency: int
) -> tuple[float, float, int]:
    """The same resends with raw httpx: a semaphore bounds the tasks in flight."""
    headers = {"X-Tenant-ID": TENANT_ID, "X-API-Key": TENANT_API_KEY}
    semaphore = asyncio.Semaphore(concurrency)
    failures = 0

    async def resend(user_id: str) -> RawResult | None:
        nonlocal failures
        async with semaphore:
            try:
                response = await client.post(
                    f"{url}/v1/users/{user_id}/resend-invite", headers=headers
                )
                if response.status_code != 200:
                    failures += 1
                    return None
                data = response.json()
                return RawResult(user_id, 200, message=data.get("message"))
            except httpx.HTTPError:
                failures += 1
                return None

    wall, cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(resend(TENANT_USER_INVITED) for _ in range(count)))
    return time.perf_counter() - wall, time.process_time() - cpu, failures


def bulk(quick: bool) -> list[Row]:
    # 5,000 resends a side, in short alternated rounds so that both sides meet the same load.
    count, rounds = (250, 2) if quick else (500, 10)
    with sandbox_process() as server:

        async def main() -> dict[str, list[tuple[float, float, int]]]:
            provider = invites.from_config(_config(server.url))
            async with provider, httpx.AsyncClient() as client:
                sides = {
                    "invites": lambda: _invites_run(provider, count, CONCURRENCY),
                    "raw": lambda: _raw_run(client, server.url, count, CONCURRENCY),
                }
                # Warm up: connections, code paths.
                await _invites_run(provider, 200, CONCURRENCY)
                await _raw_run(client, server.url, 200, CONCURRENCY)
                results: dict[str, list[tuple[float, float, int]]] = {"invites": [], "raw": []}
                for index in range(rounds):
                    order = list(sides) if index % 2 == 0 else list(sides)[::-1]
                    for name in order:
                        results[name].append(await sides[name]())
                return results

        results = asyncio.run(main())
    rate = {name: [count / elapsed for elapsed, _, _ in runs] for name, runs in results.items()}
    cpu = {name: [c / count * 1e6 for _, c, _ in runs] for name, runs in results.items()}
    failures = {name: sum(f for _, _, f in runs) for name, runs in results.items()}
    ratio = median(paired_ratios(rate["invites"], rate["raw"]))
    cpu_ratio = median(paired_ratios(cpu["invites"], cpu["raw"]))
    note = (
        f"{count * rounds} resends a side in {rounds} alternated rounds of {count}, concurrency "
        f"{CONCURRENCY}, sandbox in its own process (uvicorn); ratio = median of per-round ratios"
    )
    if any(failures.values()):
        note += f"; FAILED RESENDS: {failures}"
    return [
        Row(
            benchmark="bulk loopback tenant_api (throughput)",
            invites=median(rate["invites"]),
            raw=median(rate["raw"]),
            unit="resends/s",
            ratio=ratio,
            target=">= 0.95x",
            passed=bool(at_least(ratio, 0.95)) and not any(failures.values()),
            note=note,
            detail={"rate": rate, "cpu_us": cpu, "failures": failures},
        ),
        Row(
            benchmark="bulk loopback tenant_api (client CPU)",
            invites=median(cpu["invites"]),
            raw=median(cpu["raw"]),
            unit="us/resend",
            ratio=cpu_ratio,
            target="info",
            passed=None,
            note="CPU time of this (client) process per resend; the server's is not counted",
        ),
    ]


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
