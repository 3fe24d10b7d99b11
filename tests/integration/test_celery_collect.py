"""fan_out's collector awaiting claims in flight elsewhere (a SQLite ledger; no broker: the
invitees are all claimed already, so nothing is published)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import celery

from invites.celery.collect import Collector
from invites.ledger import open_ledger
from invites.ledger._guard import Guard
from invites.testing import FakeProvider


def _ended_process_owner() -> str:
    """An owner string of a process of this host that has ended."""
    pid = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    return f"{socket.gethostname()}:{pid}:lost"


def test_intents_of_an_ended_process_end_unknown_and_a_live_ones_outcome_is_awaited(
    tmp_path: Path,
) -> None:
    lost = _ended_process_owner()
    live = f"{socket.gethostname()}:{os.getpid()}:worker"  # this process: never gone
    users = ["lost-1", "lost-2", "live-1", "lost-3"]
    app = celery.Celery("invites-test", set_as_current=False)
    with open_ledger(tmp_path / "ledger.db") as ledger:
        guard = Guard(ledger, FakeProvider())
        for user in users:
            owner = live if user.startswith("live") else lost
            assert ledger.claim(guard.key("r1", user), owner=owner, lease=3600).granted
        collector = Collector(app, guard, "sandbox", "r1", deadline=time.monotonic() + 60)

        assert list(collector.send(users)) == []  # every one in flight: awaited, not sent
        outcomes = collector.collect(poll_interval=0.01)
        first = [next(outcomes) for _ in range(3)]
        ledger.settle(guard.key("r1", "live-1"), "sent", owner=live)
        last = list(outcomes)

        assert sorted(outcome.user_id for outcome in first) == ["lost-1", "lost-2", "lost-3"]
        assert {outcome.status for outcome in first} == {"unknown"}
        assert all("its process ended" in str(outcome.error) for outcome in first)
        assert [(outcome.user_id, outcome.status) for outcome in last] == [("live-1", "sent")]
        assert {record.key.user_id: record.state for record in ledger.records(run="r1")} == {
            "lost-1": "unknown",
            "lost-2": "unknown",
            "lost-3": "unknown",
            "live-1": "sent",
        }
    app.close()
