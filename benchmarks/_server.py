"""Serve the sandbox for the loopback benchmarks, in a process of its own.

Prints the base URL on its first line, then serves until terminated. Next to the sandbox's own
routes it answers ``GET /__bench__/stats`` (request count, 429s drawn, emails per user) and
``POST /__bench__/reset``; neither passes through the sandbox, so neither is counted or rate
limited.

``--hidden-limit R`` puts a vendor's limit in front (``--announce-budget``, ``--limit-schedule``;
``GET``/``POST /__sandbox__/limit``: see ``invites.sandbox._limit``).

``--tenant-users N`` makes N more tenant-API users invitable (``Sandbox.add_users``, ids from
``_harness.bench_tenant_users``), so a bulk run can resend to each user once.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
from pathlib import Path
from typing import Any

import uvicorn

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _harness import bench_tenant_users

from invites.sandbox import Fault, Sandbox, create_app
from invites.sandbox._limit import ANNOUNCE_STYLES, HiddenLimit, LimitGate, parse_schedule

_JSON = [(b"content-type", b"application/json")]


def _add_tenant_users(sandbox: Sandbox, count: int) -> bool:
    """Make ``count`` more tenant-API users invitable; False if this sandbox cannot."""
    add_users = getattr(sandbox, "add_users", None)
    if add_users is None:
        return False
    add_users("tenant_api", bench_tenant_users(count))
    return True


def _with_bench_routes(app: Any, sandbox: Sandbox, widened: bool) -> Any:
    async def outer(scope: dict[str, Any], receive: Any, send: Any) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not path.startswith("/__bench__/"):
            await app(scope, receive, send)
            return
        body: dict[str, Any]
        if path == "/__bench__/stats":
            emails = sandbox.emails_snapshot()
            body = {
                "requests": sandbox.request_count,
                "rate_limited": sandbox.rate_limited,
                "emails": sum(emails.values()),
                "users_emailed": len(emails),
                "users_emailed_twice": sum(1 for count in emails.values() if count > 1),
                "max_emails_per_user": max(emails.values(), default=0),
                "extra_tenant_users": widened,
            }
        elif path == "/__bench__/reset":
            sandbox.reset()
            body = {"reset": True}
        else:
            body = {"error": "unknown"}
        payload = json.dumps(body).encode()
        await send({"type": "http.response.start", "status": 200, "headers": _JSON})
        await send({"type": "http.response.body", "body": payload})

    return outer


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--rate-limit", type=float, default=None)
    parser.add_argument("--tenant-users", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0, help="seconds before each answer")
    # A vendor's hidden limit in front (invites.sandbox._limit): announced, changed mid-run.
    parser.add_argument("--hidden-limit", type=float, default=None)
    parser.add_argument("--announce-budget", choices=ANNOUNCE_STYLES, default=None)
    parser.add_argument("--limit-schedule", default=None)
    args = parser.parse_args()
    # Keep the request log bounded: a long run must not grow the server's memory.
    slow = {"fault_rate": 1.0, "faults": [Fault.SLOW], "slow_seconds": args.latency}
    sandbox = Sandbox(
        rate_limit=args.rate_limit, request_log_limit=1000, **(slow if args.latency else {})
    )
    widened = _add_tenant_users(sandbox, args.tenant_users) if args.tenant_users else False
    inner: Any = create_app(sandbox)
    if args.hidden_limit is not None:
        schedule = parse_schedule(args.limit_schedule) if args.limit_schedule else []
        limit = HiddenLimit(args.hidden_limit, announce=args.announce_budget, schedule=schedule)
        inner = LimitGate(inner, limit, sandbox)
    app = _with_bench_routes(inner, sandbox, widened)
    config = uvicorn.Config(
        app, host="127.0.0.1", port=args.port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    # Created with an explicit IPPROTO_TCP: asyncio turns Nagle off (TCP_NODELAY) only on
    # sockets whose proto says TCP, and a small response written in two pieces would otherwise
    # wait for the client's delayed ACK (about 40 ms per request).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    sock.bind(("127.0.0.1", args.port))
    sock.listen(config.backlog)
    print(f"http://127.0.0.1:{sock.getsockname()[1]}", flush=True)
    server.run(sockets=[sock])


if __name__ == "__main__":
    main()
