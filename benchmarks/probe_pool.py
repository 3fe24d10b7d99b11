"""How aresend_many behaves when its concurrency exceeds the client's connection pool.

Serves the sandbox under uvicorn in a process of its own, every resend answered after
``--latency`` seconds, and runs ``aresend_many`` over ``--users`` tenant-API users at each
``--concurrency``, with the provider's own client (``own``) and with raw-httpx clients of a few
pool shapes (``limits:MAX/KEEPALIVE``). Prints requests per second and the outcomes' errors.

    python benchmarks/probe_pool.py --latency 0.05 --users 2000 --concurrency 100 500
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import bench_tenant_users

import invites
from invites.sandbox import TENANT_API_KEY, TENANT_ID

_SERVER = """
import socket, sys, uvicorn
sys.path.insert(0, {bench!r})
from _harness import bench_tenant_users
from invites.sandbox import Fault, Sandbox, create_app
sandbox = Sandbox(fault_rate=1.0, faults=[Fault.SLOW], slow_seconds={latency}, seed=1,
                  request_log_limit=1000)
sandbox.add_users("tenant_api", bench_tenant_users({users}))
config = uvicorn.Config(create_app(sandbox), host="127.0.0.1", port=0, log_level="warning",
                        lifespan="off", backlog=4096)
sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
sock.bind(("127.0.0.1", 0))
sock.listen(4096)
print(f"http://127.0.0.1:{{sock.getsockname()[1]}}", flush=True)
uvicorn.Server(config).run(sockets=[sock])
"""


async def _run(url: str, users: list[str], concurrency: int, shape: str) -> str:
    client: httpx.AsyncClient | None = None
    if shape != "own":
        most, keep = (int(part) for part in shape.split(":")[1].split("/"))
        limits = httpx.Limits(max_connections=most, max_keepalive_connections=keep)
        client = httpx.AsyncClient(limits=limits, timeout=10)
    config: dict[str, Any] = {"provider": "tenant_api", "base_url": url, "token": TENANT_API_KEY,
                              "tenant_id": TENANT_ID, "timeout": 10, "deadline": 60}  # fmt: skip
    provider = invites.from_config(config, async_client=client)
    errors: collections.Counter[str] = collections.Counter()
    started = time.perf_counter()
    async for outcome in invites.aresend_many(provider, users, concurrency=concurrency):
        if not outcome.ok:
            errors[type(outcome.error).__name__ + ":" + str(outcome.error)[-60:]] += 1
    elapsed = time.perf_counter() - started
    await provider.aclose()
    if client is not None:
        await client.aclose()
    failed = sum(errors.values())
    return (
        f"{len(users) / elapsed:7.0f} resends/s  {elapsed:6.1f} s  failed {failed} {dict(errors)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--latency", type=float, default=0.05)
    parser.add_argument("--users", type=int, default=2000)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[100, 500])
    parser.add_argument("--shape", nargs="+", default=["own"])
    args = parser.parse_args()
    bench = str(Path(__file__).resolve().parent)
    code = _SERVER.format(bench=bench, latency=args.latency, users=args.users)
    server = subprocess.Popen(  # noqa: S603 - this interpreter, running the code above
        [sys.executable, "-c", code], stdout=subprocess.PIPE, text=True
    )
    try:
        assert server.stdout is not None
        url = server.stdout.readline().strip()
        users = bench_tenant_users(args.users)
        for shape in args.shape:
            for concurrency in args.concurrency:
                line = asyncio.run(_run(url, users, concurrency, shape))
                print(f"{shape:>16} concurrency {concurrency:4}: {line}", flush=True)
    finally:
        server.terminate()
        server.wait()


if __name__ == "__main__":
    main()
