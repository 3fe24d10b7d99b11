"""Shared pieces of the benchmarks: result rows, alternated timing rounds, the sandbox process.

Every comparison alternates its two sides round by round (A B, then B A, ...) so that a slow
patch of a shared machine hits both, and reports medians.
"""

from __future__ import annotations

import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx

HERE = Path(__file__).resolve().parent


@dataclass
class Row:
    """One line of the result table.

    ``invites`` and ``raw`` are in ``unit``; ``ratio`` is what ``target`` is checked against;
    ``passed`` is None for an informational row.
    """

    benchmark: str
    invites: float | None
    raw: float | None
    unit: str
    ratio: float | None
    target: str
    passed: bool | None
    note: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def at_most(value: float | None, limit: float) -> bool | None:
    return None if value is None else value <= limit


def at_least(value: float | None, limit: float) -> bool | None:
    return None if value is None else value >= limit


def median(values: list[float]) -> float:
    return statistics.median(values)


def alternate(sides: dict[str, Callable[[], float]], rounds: int) -> dict[str, list[float]]:
    """Run each side once per round, alternating the order; return each side's measurements.

    A side returns its own measurement (seconds, a rate, ...). Garbage is collected before each
    side so that one side's garbage is not collected on the other's clock.
    """
    names = list(sides)
    results: dict[str, list[float]] = {name: [] for name in names}
    for index in range(rounds):
        order = names if index % 2 == 0 else names[::-1]
        for name in order:
            gc.collect()
            results[name].append(sides[name]())
    return results


def paired_ratios(numerator: list[float], denominator: list[float]) -> list[float]:
    """Ratio of each round's two measurements (rounds paired in time)."""
    return [a / b for a, b in zip(numerator, denominator, strict=True)]


def bench_tenant_users(count: int) -> list[str]:
    """Distinct, deterministic tenant-API user ids (canonical UUIDs) for the loopback runs."""
    return [str(uuid.UUID(int=(0xBE7C << 112) | index)) for index in range(count)]


# -- the sandbox in its own process -------------------------------------------------------------


@dataclass
class SandboxProcess:
    """A sandbox served by ``benchmarks/_server.py`` in a child process."""

    url: str
    process: subprocess.Popen[str]

    def stats(self) -> dict[str, Any]:
        """The sandbox's counters (requests, 429s drawn, emails per user)."""
        answer = httpx.get(self.url + "/__bench__/stats", timeout=10)
        answer.raise_for_status()
        data: dict[str, Any] = answer.json()
        return data

    def reset(self) -> None:
        """Forget emails, requests and rate-limit state (a full bucket again)."""
        httpx.post(self.url + "/__bench__/reset", timeout=10).raise_for_status()


@contextmanager
def sandbox_process(
    *,
    rate_limit: float | None = None,
    tenant_users: int = 0,
    latency: float = 0.0,
    startup_timeout: float = 20.0,
    options: Sequence[str] = (),
) -> Iterator[SandboxProcess]:
    """Start the sandbox in a child process on a free loopback port; stop it on exit.

    ``latency``: seconds the sandbox waits before every answer, as a vendor's server takes.
    ``options`` go to ``_server.py`` as they are (e.g. ``--hidden-limit 40``).
    """
    command = [sys.executable, str(HERE / "_server.py"), "--port", "0", "--latency", str(latency)]
    command += options
    if rate_limit is not None:
        command += ["--rate-limit", str(rate_limit)]
    if tenant_users:
        command += ["--tenant-users", str(tenant_users)]
    with tempfile.TemporaryFile("w+") as errors:
        process = subprocess.Popen(  # noqa: S603 (this interpreter, a script of this folder)
            command,
            stdout=subprocess.PIPE,
            stderr=errors,
            stdin=subprocess.DEVNULL,
            text=True,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )
        try:
            url = _first_line(process, startup_timeout)
            if not url.startswith("http://"):
                errors.seek(0)
                raise RuntimeError(f"the sandbox did not start: {url!r} {errors.read()[-2000:]}")
            yield SandboxProcess(url, process)
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
            if process.stdout is not None:
                process.stdout.close()


def _first_line(process: subprocess.Popen[str], timeout: float) -> str:
    assert process.stdout is not None
    stdout = process.stdout
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(stdout.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    return lines[0].strip() if lines else ""


def run_child(
    code_or_script: list[str], timeout: float = 240.0, env: dict[str, str] | None = None
) -> tuple[dict[str, Any], float]:
    """Run ``python <args>`` in a fresh process; return its last stdout line as JSON, and wall s."""
    started = time.perf_counter()
    done = subprocess.run(  # noqa: S603 (this interpreter, code of this folder)
        [sys.executable, *code_or_script],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        check=False,
        env=env,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"child failed ({done.returncode}): {done.stderr[-2000:]}")
    lines = done.stdout.strip().splitlines()
    result: dict[str, Any] = json.loads(lines[-1])
    return result, wall
