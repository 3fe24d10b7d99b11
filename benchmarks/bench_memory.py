"""Memory: peak RSS of ``resend_many`` over N generated invitees stays flat as N grows.

Each N runs in a fresh process (``python benchmarks/bench_memory.py N``) that resends to N lazily
generated tenant-API users through an in-process ``httpx.MockTransport`` and reports its peak RSS
(``ru_maxrss``). Outcomes are counted, never kept: what grows with N is the library's own.
"""

from __future__ import annotations

import json
import resource
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from _harness import Row, at_most, run_child

HERE = Path(__file__).resolve().parent
LIMIT_MB = 5.0


def _invitees(count: int) -> Iterator[str]:
    for index in range(count):
        yield str(uuid.UUID(int=index))


def child(count: int) -> dict[str, object]:
    """Resend to ``count`` users and report peak RSS (KiB) and the outcomes."""
    import httpx

    import invites
    from invites.sandbox import TENANT_API_KEY, TENANT_ID

    body = b'{"message": "Invite resent."}'
    headers = {"content-type": "application/json"}
    transport = httpx.MockTransport(
        lambda request: httpx.Response(200, headers=headers, content=body)
    )
    config = {
        "provider": "tenant_api",
        "base_url": "https://vendor.example",
        "token": TENANT_API_KEY,
        "tenant_id": TENANT_ID,
    }
    statuses: Counter[str] = Counter()
    started = time.perf_counter()
    with httpx.Client(transport=transport) as client:
        provider = invites.from_config(config, client=client)
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        for outcome in invites.resend_many(provider, _invitees(count), concurrency=8):
            statuses[outcome.status] += 1
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {
        "count": count,
        "peak_kib": peak,
        "before_kib": before,
        "statuses": dict(statuses),
        "seconds": time.perf_counter() - started,
    }


def run(quick: bool) -> list[Row]:
    small, large = (2_000, 20_000) if quick else (10_000, 100_000)
    script = str(HERE / "bench_memory.py")
    results = {}
    for count in (small, large):
        results[count], _ = run_child([script, str(count)], timeout=280)
    grown_mb = (results[large]["peak_kib"] - results[small]["peak_kib"]) / 1024
    complete = all(results[count]["statuses"] == {"sent": count} for count in (small, large))
    note = (
        f"peak RSS (ru_maxrss) of resend_many in a fresh process each; "
        f"{results[large]['seconds']:.1f} s for {large:,}"
    )
    if not complete:
        note += f"; NOT ALL SENT: {[results[c]['statuses'] for c in (small, large)]}"
    return [
        Row(
            benchmark=f"memory resend_many {large:,} vs {small:,}",
            invites=results[large]["peak_kib"] / 1024,
            raw=results[small]["peak_kib"] / 1024,
            unit="MB peak RSS",
            ratio=grown_mb,
            target=f"growth < {LIMIT_MB:.0f} MB",
            passed=bool(at_most(grown_mb, LIMIT_MB - 1e-9)) and complete,
            note=note,
            detail={str(count): result for count, result in results.items()},
        )
    ]


if __name__ == "__main__":
    print(json.dumps(child(int(sys.argv[1]))))
