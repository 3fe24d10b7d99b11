"""Four worker processes against one vendor limit: a shared Redis pace vs per-process limits.

The sandbox (its own process) admits R requests/s, a token bucket of R, and answers 429 with
``Retry-After`` beyond it, as a vendor does. Four worker processes resend N distinct tenant-API
users between them (``aresend_many``, concurrency 16 each), started at the same instant, in three
configurations, one after the other against a fresh bucket:

- shared:  ``rate_limit = R`` and ``rate_limit_store`` = the Redis at 127.0.0.1:6379, so the four
           share one pace;
- storm:   ``rate_limit = R`` per process, no store: together four times too fast;
- split:   ``rate_limit = R / 4`` per process, no store.

Reported per configuration: the aggregate rate of admitted requests (their mean over the run, and
the most that left the workers in any one-second window, which the vendor's bucket caps at R plus
its burst of R), the 429s drawn against all requests, the wall time against the ideal ``N / R``,
resends that failed, and users emailed twice. Targets (shared only): peak <= 2R, 429s <= 1 %,
wall <= 1.10 x N/R.

``python benchmarks/bench_shared_pacing.py [--quick] [--rate R] [--count N]`` runs it alone;
``python benchmarks/run.py --only shared`` puts it in the suite's table. Needs the test install
(the ``sandbox`` and ``redis`` extras) and the Redis server; without it the shared row says so.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import Row, at_most, bench_tenant_users, sandbox_process

WORKERS = 4
CONCURRENCY = 16
STORE = "redis://127.0.0.1:6379/0"


# -- one worker process ---------------------------------------------------------------------------


def _worker(spec: dict[str, Any]) -> dict[str, Any]:
    import invites

    # Giving up after 429s is what the per-process runs show; one line each would drown the table.
    logging.getLogger("invites").addHandler(logging.NullHandler())
    admitted: list[float] = []
    refused: list[float] = []
    config = dict(spec["config"])

    def on_attempt(event: Any) -> None:
        sent_at = time.time() - event.elapsed_ms / 1000.0  # when the request left, not its answer
        if event.status_code == 200:
            admitted.append(sent_at)
        elif event.status_code == 429:
            refused.append(sent_at)

    config["on_attempt"] = on_attempt
    outcomes: dict[str, int] = {}

    async def main() -> float:
        async with invites.from_config(config) as provider:
            while time.time() < spec["start_at"]:
                await asyncio.sleep(0.002)
            async for outcome in invites.aresend_many(
                provider, spec["users"], concurrency=CONCURRENCY
            ):
                outcomes[outcome.status] = outcomes.get(outcome.status, 0) + 1
        return time.time()

    finished = asyncio.run(main())
    return {"admitted": admitted, "refused": refused, "outcomes": outcomes, "finished": finished}


# -- the parent -----------------------------------------------------------------------------------


def _redis_up() -> str | None:
    """None when the Redis server answers, else why not."""
    try:
        import redis
    except ImportError:
        return "redis-py is not installed (the redis extra)"
    try:
        client = redis.Redis.from_url(STORE, socket_connect_timeout=1, socket_timeout=1)
        client.ping()
        client.close()
    except redis.RedisError as exc:
        return f"Redis at 127.0.0.1:6379 is unreachable ({type(exc).__name__})"
    return None


def _run_workers(configs: list[dict[str, Any]], users: list[str]) -> dict[str, Any]:
    start_at = time.time() + 3.0  # after every worker has imported and built its provider
    children = []
    for index, config in enumerate(configs):
        spec = {"config": config, "users": users[index::WORKERS], "start_at": start_at}
        children.append(
            subprocess.Popen(  # noqa: S603 (this interpreter, this script)
                [sys.executable, __file__, "--worker", json.dumps(spec)],
                stdout=subprocess.PIPE,
                stdin=subprocess.DEVNULL,
                text=True,
            )
        )
    results = []
    for child in children:
        output, _ = child.communicate(timeout=600)
        if child.returncode != 0:
            raise RuntimeError(f"a worker failed ({child.returncode})")
        results.append(json.loads(output.strip().splitlines()[-1]))
    admitted = sorted(t for result in results for t in result["admitted"])
    refused = sorted(t - start_at for result in results for t in result["refused"])
    outcomes: dict[str, int] = {}
    for result in results:
        for status, count in result["outcomes"].items():
            outcomes[status] = outcomes.get(status, 0) + count
    wall = max(result["finished"] for result in results) - start_at
    return {"admitted": admitted, "refused": refused, "outcomes": outcomes, "wall": wall}


def _peak_per_second(instants: list[float]) -> int:
    """The most instants in any window of one second."""
    peak, first = 0, 0
    for last, instant in enumerate(instants):
        while instant - instants[first] >= 1.0:
            first += 1
        peak = max(peak, last - first + 1)
    return peak


def _configs(kind: str, url: str, rate: float, prefix: str) -> list[dict[str, Any]]:
    from invites.sandbox import TENANT_API_KEY, TENANT_ID

    base = {"provider": "tenant_api", "base_url": url, "token": TENANT_API_KEY}
    base["tenant_id"] = TENANT_ID
    if kind == "shared":
        extra = {"rate_limit": rate, "rate_limit_store": STORE, "rate_limit_key_prefix": prefix}
    elif kind == "storm":
        extra = {"rate_limit": rate}
    else:
        extra = {"rate_limit": rate / WORKERS}
    return [{**base, **extra} for _ in range(WORKERS)]


def _forget(prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(STORE)
    keys = list(client.scan_iter(match=prefix + ":*"))
    if keys:
        client.delete(*keys)
    client.close()


def _measure(kind: str, server: Any, rate: float, users: list[str]) -> dict[str, Any]:
    prefix = f"invites-bench:{uuid.uuid4().hex}"
    server.reset()  # a full bucket and no emails yet
    try:
        run = _run_workers(_configs(kind, server.url, rate, prefix), users)
    finally:
        if kind == "shared":
            _forget(prefix)
    stats = server.stats()
    run["requests"] = stats["requests"]
    run["rate_limited"] = stats["rate_limited"]
    run["twice"] = stats["users_emailed_twice"]
    run["emails"] = stats["emails"]
    return run


def _rows(kind: str, run: dict[str, Any], rate: float, count: int) -> list[Row]:
    ideal = count / rate
    admitted = run["admitted"]
    mean = len(admitted) / run["wall"] if run["wall"] > 0 else 0.0
    peak = _peak_per_second(admitted)
    share = run["rate_limited"] / max(1, run["requests"])
    failed = count - run["outcomes"].get("sent", 0)
    judged = kind == "shared"
    label = {
        "shared": f"shared store, rate_limit {rate:g} each",
        "storm": f"per process, rate_limit {rate:g} each",
        "split": f"per process, rate_limit {rate / WORKERS:g} each",
    }[kind]
    note = (
        f"{WORKERS} processes x concurrency {CONCURRENCY}, {count} distinct users, vendor "
        f"{rate:g}/s; mean {mean:.1f} admitted/s; {failed} resends not sent "
        f"({run['outcomes']}); users emailed twice: {run['twice']}"
    )
    return [
        Row(
            benchmark=f"{label} (peak admitted/s)",
            invites=float(peak),
            raw=rate,
            unit="requests in 1 s",
            ratio=peak / rate,
            target="<= 2x (R + burst)" if judged else "info",
            passed=bool(at_most(peak, 2 * rate)) if judged else None,
            note=note,
            detail={"mean_rate": mean, "outcomes": run["outcomes"]},
        ),
        Row(
            benchmark=f"{label} (429s drawn)",
            invites=float(run["rate_limited"]),
            raw=float(run["requests"]),
            unit="429s / requests",
            ratio=share,
            target="<= 1%" if judged else "compare: <= 1%",
            passed=(share <= 0.01) if judged else None,
        ),
        Row(
            benchmark=f"{label} (wall)",
            invites=run["wall"],
            raw=ideal,
            unit="s",
            ratio=run["wall"] / ideal,
            target="<= 1.10x ideal" if judged else "info",
            passed=(run["wall"] <= 1.10 * ideal and failed == 0 and run["twice"] == 0)
            if judged
            else None,
        ),
    ]


def run(quick: bool, *, rate: float = 20.0, count: int | None = None) -> list[Row]:
    count = count or (160 if quick else 500)
    users = bench_tenant_users(count)
    down = _redis_up()
    kinds = ["storm", "split"] if down else ["shared", "storm", "split"]
    rows: list[Row] = []
    with sandbox_process(rate_limit=rate, tenant_users=count) as server:
        for kind in kinds:
            rows.extend(_rows(kind, _measure(kind, server, rate, users), rate, count))
    if down:
        rows.insert(
            0,
            Row("shared store", None, None, "-", None, "needs Redis", False, note=down),
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="160 users instead of 500")
    parser.add_argument("--rate", type=float, default=20.0, help="the vendor's limit R (req/s)")
    parser.add_argument("--count", type=int, default=None, help="users to resend to")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(_worker(json.loads(args.worker))))
        return
    import run as suite

    print(suite.table(run(args.quick, rate=args.rate, count=args.count)))


if __name__ == "__main__":
    main()
