"""What the per-user budget adds to a ledger claim: round trips, and time.

A claim under ``per_user_limit`` also counts the user's sends over every run, in the same atomic
step. Measured on users who already have two sends in the window (from two other runs), under a
limit never reached (every budgeted claim is granted, and counts 2 to 2 + 2 x rounds rows):

- PostgreSQL round trips per claim, plain and budgeted, counted by a loopback TCP relay between
  the ledger and the server (each time the client speaks after the server did is one round trip);
- PostgreSQL µs per claim, plain and budgeted (direct connection, rounds alternated, medians);
- SQLite µs per claim, plain and budgeted (each claim one synced commit).

Run alone: ``python benchmarks/run.py --only budget`` (or ``python benchmarks/bench_budget.py``).
The server is ``$INVITES_BENCH_POSTGRES_URL`` (default ``postgresql://postgres@127.0.0.1:5432/
test``); each ledger lives in a schema of its own, dropped at the end.
"""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from _harness import Row, alternate, median

from invites.ledger import Budget, Ledger, RecordKey, open_ledger

URL = os.environ.get("INVITES_BENCH_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test")
IDENTITY = '{"vendor":"bench"}'
#: Never reached: every round's claims are sends too, so each user's count grows round by round.
BUDGET = Budget(limit=10_000, window=3600.0, text="10000/1h")


class Relay:
    """A loopback TCP relay to ``target`` that counts request/response turns."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.turns = 0
        self._lock = threading.Lock()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            server = socket.create_connection(self.target)
            last = ["server"]  # whose bytes went last on this connection
            for source, sink, side in ((client, server, "client"), (server, client, "server")):
                args = (source, sink, side, last)
                threading.Thread(target=self._pump, args=args, daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, side: str, last: list[str]) -> None:
        with contextlib.suppress(OSError):
            while data := source.recv(65536):
                with self._lock:
                    if side == "client" and last[0] == "server":
                        self.turns += 1
                    last[0] = side
                sink.sendall(data)
        with contextlib.suppress(OSError):
            sink.shutdown(socket.SHUT_WR)

    def close(self) -> None:
        self._listener.close()


def _seeded(ledger: Ledger, count: int) -> list[str]:
    """``count`` users with two sends each, from two earlier runs."""
    users = [uuid.uuid4().hex for _ in range(count)]
    for run in ("earlier-1", "earlier-2"):
        for user in users:
            key = RecordKey(run, IDENTITY, user)
            ledger.claim(key, owner=run, lease=60)
            ledger.settle(key, "sent", owner=run)
    return users


def _claims(ledger: Ledger, users: list[str], budget: Budget | None) -> float:
    """Seconds per claim of a fresh run over ``users``."""
    run = uuid.uuid4().hex
    started = time.perf_counter()
    for user in users:
        # budget=None is a plain claim: the statement every claim made before budgets existed
        claim = ledger.claim(RecordKey(run, IDENTITY, user), owner=run, lease=60, budget=budget)
        if not claim.granted:
            raise RuntimeError(f"a benchmark claim was refused: {claim}")
    return (time.perf_counter() - started) / len(users)


def _turns(relay: Relay, action: Callable[[], object]) -> int:
    before = relay.turns
    action()
    time.sleep(0.05)  # the relay's threads count the last answer
    return relay.turns - before


@contextlib.contextmanager
def _schema_url() -> Iterator[str]:
    import psycopg
    from psycopg import sql

    schema = f"invites_bench_{uuid.uuid4().hex[:12]}"
    try:
        yield f"{URL}?schema={schema}"
    finally:
        with psycopg.connect(URL, autocommit=True) as connection:
            connection.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
            )


def _postgres(count: int, rounds: int) -> list[Row]:
    from psycopg.conninfo import conninfo_to_dict

    params = conninfo_to_dict(URL)
    target = (str(params.get("host") or "127.0.0.1"), int(params.get("port") or 5432))
    relay = Relay(target)
    rows = []
    with _schema_url() as url:
        relayed = url.replace(f"{target[0]}:{target[1]}", f"127.0.0.1:{relay.port}")
        with open_ledger(relayed) as ledger:
            users = _seeded(ledger, count)
            _claims(ledger, users[:5], None)  # the pool's connections are open
            plain = _turns(relay, lambda: _claims(ledger, users, None)) / count
            budgeted = _turns(relay, lambda: _claims(ledger, users, BUDGET)) / count
        relay.close()
        rows.append(
            Row("budget pg round trips", budgeted, plain, "trips/claim", budgeted - plain,
                "+ <= 1", budgeted - plain <= 1.0, "relay-counted; budget vs plain claim")
        )  # fmt: skip
        with open_ledger(url) as ledger:
            users = _seeded(ledger, count)
            sides = {
                "plain": lambda: _claims(ledger, users, None),
                "budgeted": lambda: _claims(ledger, users, BUDGET),
            }
            times = alternate(sides, rounds)
    plain_us, budget_us = median(times["plain"]) * 1e6, median(times["budgeted"]) * 1e6
    rows.append(
        Row("budget pg claim", budget_us, plain_us, "µs/claim", budget_us / plain_us, "info",
            None, f"{count} claims x {rounds} rounds, loopback server")
    )  # fmt: skip
    return rows


def _sqlite(count: int, rounds: int) -> Row:
    with (
        tempfile.TemporaryDirectory() as directory,
        open_ledger(Path(directory) / "l.db") as ledger,
    ):
        users = _seeded(ledger, count)
        sides = {
            "plain": lambda: _claims(ledger, users, None),
            "budgeted": lambda: _claims(ledger, users, BUDGET),
        }
        times = alternate(sides, rounds)
    plain_us, budget_us = median(times["plain"]) * 1e6, median(times["budgeted"]) * 1e6
    return Row("budget sqlite claim", budget_us, plain_us, "µs/claim", budget_us / plain_us,
               "info", None, f"{count} claims x {rounds} rounds, synced commits")  # fmt: skip


def run(quick: bool) -> list[Row]:
    count, rounds = (100, 2) if quick else (300, 6)
    rows = [_sqlite(count, rounds)]
    try:
        rows += _postgres(count, rounds)
    except Exception as exc:  # the server is optional for this suite
        rows.append(Row("budget pg", None, None, "-", None, "info", None, f"skipped: {exc}"))
    return rows


if __name__ == "__main__":
    for row in run(quick=False):
        print(row)
