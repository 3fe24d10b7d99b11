"""Re-record every vendor cassette from the sandbox.

    python scripts/record_cassettes.py                 # every vendor
    python scripts/record_cassettes.py softwareone     # only the vendors named

Serves a fresh `invites.sandbox.Sandbox` on an ephemeral 127.0.0.1 port, runs each documented
scenario of ``tests/_support/cassettes.py`` through its adapter and writes
``cassettes/<vendor>/<scenario>.yaml`` (stored URLs read ``http://sandbox.invalid``, whatever the
port). Each scenario's outcome, requests and email count are checked while recording; sandbox
cassettes of scenarios that no longer exist are removed (``live_*`` cassettes are left alone).
Exits non-zero when a scenario misbehaves or a cassette holds a credential or an invitation link.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from _support.cassettes import CASSETTES, SCENARIOS, leaks, record  # noqa: E402

from invites.sandbox import Sandbox, serve  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("vendors", nargs="*", metavar="VENDOR", help=", ".join(SCENARIOS))
    vendors = parser.parse_args(argv).vendors or list(SCENARIOS)
    unknown = sorted(set(vendors) - set(SCENARIOS))
    if unknown:
        parser.error(f"unknown vendor(s) {', '.join(unknown)}; choose from {', '.join(SCENARIOS)}")
    failures = 0
    with serve(Sandbox()) as running:
        for vendor in vendors:
            scenarios = SCENARIOS[vendor]
            for scenario in scenarios:
                try:
                    outcome = record(scenario, running)
                except AssertionError as problem:
                    failures += 1
                    print(f"FAILED  {scenario.id}: {problem}", file=sys.stderr)
                    continue
                print(f"recorded {scenario.path.relative_to(ROOT)}  ->  {type(outcome).__name__}")
            current = {scenario.path for scenario in scenarios}
            for stale in sorted((CASSETTES / vendor).glob("*.yaml")):
                if stale not in current and not stale.name.startswith("live_"):
                    stale.unlink()
                    print(f"removed  {stale.relative_to(ROOT)} (no such scenario)")
    found = leaks()
    for leak in found:
        print(f"LEAK    {leak}", file=sys.stderr)
    return 1 if failures or found else 0


if __name__ == "__main__":
    raise SystemExit(main())
