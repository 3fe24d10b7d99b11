"""Four workers, uneven loads, one vendor limit nobody published: how each pacing fares, second by
second.

The sandbox (its own process, uvicorn on loopback) hides a limit of R requests/s (a token bucket
of one second, 429 with ``Retry-After`` beyond it: ``invites.sandbox._limit``). Four worker
processes resend distinct tenant-API users, split unevenly (40/30/20/10 %), ``aresend_many`` with
concurrency 16 each, all sharing the Redis at 127.0.0.1:6379 where told. One run each:

- per process: ``rate_limit = R/4`` in each worker, no store (the safe per-process guess);
- shared fixed: ``rate_limit = R`` through the store;
- shared auto: ``rate_limit = "auto"`` through the store;
- shared auto, the limit halving mid-run (R -> R/2 at ``--change-at`` s);
- shared auto, the vendor announcing its budget (``RateLimit-Policy``/``RateLimit``).

Printed per run, from the sandbox's own per-second counts: admitted requests per second (over the
whole run, and steady: after the first 5 s), the share of 429s, resends not sent, users emailed
twice; for the halving run, the same from 2 s after the change. Drawn: a PNG with one panel per
run (admitted and 429s per second, the hidden limit, the learned rate for the auto runs).

``python benchmarks/bench_adaptive_pacing.py [--rate 40] [--count 1200] [--png PATH]`` (needs the
test install, Redis, and matplotlib: the ``bench`` extra). The figures move with the machine's
load: on a shared two-core machine, rerun before trusting a single one.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx
from _harness import bench_tenant_users, sandbox_process

WORKERS = 4
SHARES = (0.4, 0.3, 0.2, 0.1)
CONCURRENCY = 16
STORE = "redis://127.0.0.1:6379/0"
PNG = Path(__file__).resolve().parent.parent / "docs" / "images" / "pacing-timeline.png"


# -- one worker process ---------------------------------------------------------------------------


def _worker(spec: dict[str, Any]) -> dict[str, Any]:
    import invites

    logging.getLogger("invites").addHandler(logging.NullHandler())
    outcomes: dict[str, int] = {}

    async def main() -> float:
        async with invites.from_config(spec["config"]) as provider:
            print("ready", flush=True)  # built and imported: the parent sets the start
            start_at = float(sys.stdin.readline())
            await asyncio.sleep(max(0.0, start_at - time.time()))
            async for outcome in invites.aresend_many(
                provider, spec["users"], concurrency=CONCURRENCY
            ):
                outcomes[outcome.status] = outcomes.get(outcome.status, 0) + 1
        return time.time()

    finished = asyncio.run(main())
    return {"outcomes": outcomes, "finished": finished}


# -- the parent -----------------------------------------------------------------------------------


def _config(kind: str, url: str, rate: float, prefix: str) -> dict[str, Any]:
    from invites.sandbox import TENANT_API_KEY, TENANT_ID

    config: dict[str, Any] = {"provider": "tenant_api", "base_url": url, "token": TENANT_API_KEY}
    config["tenant_id"] = TENANT_ID
    config["max_attempts"] = 5
    if kind == "per process":
        return {**config, "rate_limit": rate / WORKERS}
    shared = {"rate_limit_store": STORE, "rate_limit_key_prefix": prefix}
    if kind == "shared fixed":
        return {**config, **shared, "rate_limit": rate}
    return {**config, **shared, "rate_limit": "auto"}


def _split(users: list[str]) -> list[list[str]]:
    parts, start = [], 0
    for index, share in enumerate(SHARES):
        end = len(users) if index == WORKERS - 1 else start + round(share * len(users))
        parts.append(users[start:end])
        start = end
    return parts


class _RateWatch:
    """Samples the learned rate in the store every 0.25 s, for the picture."""

    def __init__(self, prefix: str, start_at: float) -> None:
        import redis

        self.client = redis.Redis.from_url(STORE)
        self.prefix, self.start_at = prefix, start_at
        self.samples: list[tuple[float, float]] = []
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        while not self.done.wait(0.25):
            for key in self.client.scan_iter(match=self.prefix + ":*"):
                rate = self.client.hget(key, "rate")
                if rate is not None:
                    self.samples.append((time.time() - self.start_at, float(rate)))

    def stop(self) -> list[tuple[float, float]]:
        self.done.set()
        self.thread.join()
        for key in self.client.scan_iter(match=self.prefix + ":*"):
            self.client.delete(key)
        self.client.close()
        return self.samples


def _start(children: list[subprocess.Popen[str]]) -> float:
    """Wait until every worker is ready; tell them all one start, half a second from now."""
    for child in children:
        assert child.stdout is not None
        if child.stdout.readline().strip() != "ready":
            raise RuntimeError("a worker did not start")
    start_at = time.time() + 0.5
    for child in children:
        assert child.stdin is not None
        child.stdin.write(f"{start_at}\n")
        child.stdin.flush()
    return start_at


def _run(kind: str, server: Any, rate: float, users: list[str]) -> dict[str, Any]:
    prefix = f"invites-bench:{uuid.uuid4().hex}"
    config = _config(kind, server.url, rate, prefix)
    children = [
        subprocess.Popen(  # noqa: S603 (this interpreter, this script)
            [sys.executable, __file__, "--worker", json.dumps({"config": config, "users": part})],
            stdout=subprocess.PIPE,
            stdin=subprocess.PIPE,
            text=True,
        )
        for part in _split(users)
    ]
    start_at = _start(children)
    time.sleep(max(0.0, start_at - time.time() - 0.05))
    httpx.post(server.url + "/__sandbox__/limit/reset", timeout=10).raise_for_status()
    watch = _RateWatch(prefix, start_at)
    results = []
    for child in children:
        output, _ = child.communicate(timeout=900)  # closes its stdin too
        if child.returncode != 0:
            raise RuntimeError(f"a worker failed ({child.returncode})")
        results.append(json.loads(output.strip().splitlines()[-1]))
    learned = watch.stop()
    limit = httpx.get(server.url + "/__sandbox__/limit", timeout=10).json()
    stats = server.stats()
    outcomes: dict[str, int] = {}
    for result in results:
        for status, count in result["outcomes"].items():
            outcomes[status] = outcomes.get(status, 0) + count
    wall = max(result["finished"] for result in results) - start_at
    return {
        "kind": kind,
        "wall": wall,
        "timeline": limit["timeline"],
        "changes": limit["changes"],
        "learned": learned,
        "outcomes": outcomes,
        "twice": stats["users_emailed_twice"],
        "count": len(users),
    }


def _share(pairs: list[list[int]]) -> tuple[float, float]:
    """(admitted per second, share of 429s) over whole seconds ``pairs``."""
    admitted = sum(pair[0] for pair in pairs)
    refused = sum(pair[1] for pair in pairs)
    return admitted / max(1, len(pairs)), refused / max(1, admitted + refused)


def figures(run: dict[str, Any], rate: float, change_at: float | None) -> dict[str, Any]:
    """The run's figures from the sandbox's per-second counts (the last, partial second left out
    of the rates)."""
    timeline = run["timeline"]
    whole = timeline[: max(1, int(run["wall"]))]
    mean, share = _share(whole)
    steady, steady_share = _share(whole[5:])
    found = {
        "admitted_per_s": mean,
        "of_R": mean / rate,
        "steady_of_R": steady / rate,
        "share_429": share,
        "steady_share_429": steady_share,
        "not_sent": run["count"] - run["outcomes"].get("sent", 0),
        "emailed_twice": run["twice"],
        "wall": run["wall"],
    }
    if change_at is not None:
        after = whole[int(change_at) + 2 :]
        accepted, after_share = _share(after)
        found["after_change_of_new_R"] = accepted / (rate / 2)
        found["after_change_share_429"] = after_share
    return found


def _line(title: str, found: dict[str, Any]) -> str:
    text = (
        f"{title:<34} {found['admitted_per_s']:5.1f}/s = {found['of_R']:.2f} R "
        f"(steady {found['steady_of_R']:.2f} R), 429s {found['share_429']:6.2%}, "
        f"not sent {found['not_sent']}, emailed twice {found['emailed_twice']}, "
        f"wall {found['wall']:.1f} s"
    )
    if "after_change_of_new_R" in found:
        text += (
            f"\n{'':<34} from 2 s after the change: {found['after_change_of_new_R']:.2f} of the "
            f"new limit, 429s {found['after_change_share_429']:.2%}"
        )
    return text


def draw(runs: list[tuple[str, dict[str, Any]]], rate: float, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, grid = plt.subplots(
        len(runs), 1, figsize=(10, 2.3 * len(runs)), sharex=True, squeeze=False
    )
    axes = [row[0] for row in grid]
    for axis, (title, run) in zip(axes, runs, strict=True):
        seconds = range(len(run["timeline"]))
        axis.bar(seconds, [p[0] for p in run["timeline"]], width=0.9, color="#4c9a2a",
                 label="admitted/s", align="edge")  # fmt: skip
        axis.bar(seconds, [p[1] for p in run["timeline"]], width=0.9, color="#d62728",
                 bottom=[p[0] for p in run["timeline"]], label="429/s", align="edge")  # fmt: skip
        limits = [(0.0, rate), *[(at, new) for at, new in run["changes"]]]
        xs = [at for at, _ in limits] + [len(run["timeline"])]
        axis.step(xs, [new for _, new in limits] + [limits[-1][1]], where="post", color="black",
                  linestyle="--", linewidth=1, label="hidden limit")  # fmt: skip
        if run["learned"]:
            axis.plot(*zip(*run["learned"], strict=True), color="#1f77b4", linewidth=1.2,
                      label="learned rate")  # fmt: skip
        axis.set_title(title, fontsize=9, loc="left")
        axis.set_ylabel("requests")
        axis.set_ylim(0, rate * 1.9)
    axes[0].legend(loc="upper right", fontsize=7, ncol=4)
    axes[-1].set_xlabel("seconds")
    fig.tight_layout()
    fig.savefig(path, dpi=90)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=40.0, help="the hidden limit R (req/s)")
    parser.add_argument("--count", type=int, default=1200, help="users per run")
    parser.add_argument("--change-at", type=float, default=15.0, help="when the limit halves")
    parser.add_argument("--png", type=Path, default=PNG, help="where the picture goes")
    parser.add_argument("--only", default=None, help="comma-separated run titles to make")
    parser.add_argument("--dump", action="store_true", help="print each run's raw timeline")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(_worker(json.loads(args.worker))))
        return
    rate, count = args.rate, args.count
    halving = int(args.change_at * rate + 15 * rate / 2)  # 15 s at the halved limit
    plans = [
        ("per process, rate_limit R/4", "per process", [], count),
        ("shared fixed, rate_limit R", "shared fixed", [], count),
        ('shared auto, rate_limit "auto"', "shared auto", [], count),
        (
            f"shared auto, limit halves at {args.change_at:g} s",
            "shared auto",
            ["--limit-schedule", f"{args.change_at}:{rate / 2}"],
            halving,
        ),
        ("shared auto, budget announced", "shared auto", ["--announce-budget", "ietf"], count),
    ]
    if args.only:
        wanted = args.only.split(",")
        plans = [plan for plan in plans if any(word in plan[0] for word in wanted)]
    runs = []
    for title, kind, options, users_count in plans:
        users = bench_tenant_users(users_count)
        with sandbox_process(
            tenant_users=users_count, options=["--hidden-limit", str(rate), *options]
        ) as server:
            run = _run(kind, server, rate, users)
        change_at = args.change_at if "--limit-schedule" in options else None
        print(_line(title, figures(run, rate, change_at)), flush=True)
        if args.dump:
            print(json.dumps({"timeline": run["timeline"], "learned": run["learned"][::4]}))
        runs.append((title, run))
    draw(runs, rate, args.png)
    print(f"timeline: {args.png}")


if __name__ == "__main__":
    main()
