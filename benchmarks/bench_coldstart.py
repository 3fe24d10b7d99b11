"""Cold start: ``import invites`` plus the first ``from_config`` vs httpx, attrs and cattrs alone.

Every measurement is a fresh interpreter, the variants alternated run by run. The time is the
child's CPU time from its first statement to the end of the measured work, so the interpreter's
own start (the same for every variant) is not counted, nor is time the child spent waiting for a
core on a busy machine; the parent's wall time per process is kept in the details.

The library creates its client lazily, at the first send, so ``from_config`` alone builds no
client while the raw baseline does. Three invites variants are therefore measured: ``from_config``
alone; ``from_config`` plus the client the first send creates; and that plus the verifying TLS
context, which the library's clients load at their first TLS connection (httpx's
``Client()`` loads it at once: it is most of what creating a client costs), so the last row is
the cold start of a first resend over HTTPS.

Also checked: which modules a configured provider loads. The vendor in use must load; the other
vendors, the sandbox (starlette, uvicorn), the CLI and rich must not.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from _harness import Row, alternate, at_most, median, paired_ratios, run_child

from invites.sandbox import (
    ECOSUITE_TOKEN,
    SOFTWAREONE_ACCOUNT_ID,
    SOFTWAREONE_TOKEN,
    TENANT_API_KEY,
    TENANT_ID,
)

TARGET = 1.00
CONFIGS: dict[str, dict[str, Any]] = {
    "tenant_api": {
        "provider": "tenant_api",
        "base_url": "https://vendor.example",
        "token": TENANT_API_KEY,
        "tenant_id": TENANT_ID,
    },
    "ecosuite": {"provider": "ecosuite", "token": ECOSUITE_TOKEN},
    "softwareone": {
        "provider": "softwareone",
        "token": SOFTWAREONE_TOKEN,
        "account_id": SOFTWAREONE_ACCOUNT_ID,
    },
}
NOT_LOADED = (
    "invites.sandbox",
    "invites.cli",
    "invites.cli",
    "starlette",
    "uvicorn",
    "rich",
)

_PROLOGUE = "import time\n_t0 = time.process_time()\n"
_EPILOGUE = (
    "_t1 = time.process_time()\n"
    "import json, sys\n"
    "print(json.dumps({'seconds': _t1 - _t0, 'modules': sorted(sys.modules)}))\n"
)
VARIANTS = {
    "invites": "import invites\ninvites.from_config({config!r})\n",
    # The client a provider's first send creates (a private call: nothing public makes one early).
    "invites+client": "import invites\ninvites.from_config({config!r})._transport.client()\n",
    "invites+client+tls": (
        "import invites\nfrom invites._http.transports import verifying_context\n"
        "invites.from_config({config!r})._transport.client()\nverifying_context()\n"
    ),
    "raw": "import httpx, attrs, cattrs\nhttpx.Client()\n",
    "raw imports": "import httpx, attrs, cattrs\n",
}


def _code(variant: str, config: dict[str, Any]) -> str:
    return _PROLOGUE + VARIANTS[variant].format(config=config) + _EPILOGUE


def _loaded(modules: list[str], name: str) -> bool:
    return any(module == name or module.startswith(name + ".") for module in modules)


def _module_check() -> tuple[bool, str]:
    """Which unwanted modules each vendor's configuration loads, beyond what bare httpx loads."""
    baseline, _ = run_child(["-c", _code("raw imports", {})])
    by_dependencies = sorted(name for name in NOT_LOADED if _loaded(baseline["modules"], name))
    problems = []
    for vendor, config in CONFIGS.items():
        result, _ = run_child(["-c", _code("invites", config)])
        modules = result["modules"]
        if not _loaded(modules, f"invites.providers.{vendor}"):
            problems.append(f"{vendor}: invites.providers.{vendor} not loaded")
        unwanted = [f"invites.providers.{other}" for other in CONFIGS if other != vendor]
        for name in (*unwanted, *NOT_LOADED):
            if name not in by_dependencies and _loaded(modules, name):
                problems.append(f"{vendor}: {name} loaded")
    clean = [name for name in NOT_LOADED if name not in by_dependencies]
    note = "invites.providers.<vendor> loads; not loaded: the other vendors, " + ", ".join(clean)
    if by_dependencies:
        note += (
            f"; {', '.join(by_dependencies)} also load with bare `import httpx` here (httpx "
            "imports its command line, httpx._main, when click and rich are installed), so "
            "they are not counted against invites"
        )
    if problems:
        return False, "; ".join(problems)
    return True, note


def _cached_bytecode_env(prefix: str) -> dict[str, str]:
    """The environment with bytecode written to and read from ``prefix``.

    An installed library runs from .pyc files, but an editable install under
    ``PYTHONDONTWRITEBYTECODE=1`` recompiles its sources in every process while its dependencies
    load their cached bytecode; the children here all use one fresh cache, warmed first.
    """
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPYCACHEPREFIX"] = prefix
    return env


def run(quick: bool) -> list[Row]:
    runs = 5 if quick else 20
    config = CONFIGS["tenant_api"]
    walls: dict[str, list[float]] = {name: [] for name in VARIANTS}
    with tempfile.TemporaryDirectory(prefix="invites-bench-pyc-") as prefix:
        env = _cached_bytecode_env(prefix)

        def side(variant: str) -> Any:
            def measure() -> float:
                result, wall = run_child(["-c", _code(variant, config)], env=env)
                walls[variant].append(wall * 1000)
                return float(result["seconds"]) * 1000

            return measure

        sides = {name: side(name) for name in VARIANTS}
        for measure in sides.values():  # fill the bytecode cache
            measure()
        for recorded in walls.values():
            recorded.clear()
        times = alternate(sides, runs)
    rows = []
    client_ms = median(times["raw"]) - median(times["raw imports"])
    for variant, label, explain, target in (
        (
            "invites",
            "import + from_config (no client yet)",
            "invites creates its client at the first send, so this side creates none",
            TARGET,
        ),
        (
            "invites+client",
            "import + from_config + client",
            "this side also creates the client the first send creates; its TLS context is "
            "loaded at the first TLS connection",
            TARGET,
        ),
        (
            "invites+client+tls",
            "import + from_config + client + TLS context",
            "this side also loads the verifying TLS context, as a first resend over HTTPS does",
            None,
        ),
    ):
        ratio = median(paired_ratios(times[variant], times["raw"]))
        rows.append(
            Row(
                benchmark=f"cold start {label}",
                invites=median(times[variant]),
                raw=median(times["raw"]),
                unit="ms",
                ratio=ratio,
                target="info" if target is None else f"<= {target:.2f}x",
                passed=None if target is None else at_most(ratio, target),
                note=(
                    f"tenant_api, {runs} fresh processes per variant, alternated; CPU time inside "
                    "the child (interpreter start excluded), bytecode cached for all; raw = "
                    "import httpx, attrs, cattrs + httpx.Client() (that client alone: "
                    f"{client_ms:.1f} ms); {explain}"
                ),
                detail={"in_child_ms": times, "process_wall_ms": walls},
            )
        )
    passed, note = _module_check()
    rows.append(
        Row(
            benchmark="cold start modules loaded",
            invites=None,
            raw=None,
            unit="",
            ratio=None,
            target="lazy vendors",
            passed=passed,
            note=note,
        )
    )
    return rows
