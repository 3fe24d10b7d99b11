"""The SQLite ledger's claim, as a job of its writer: the key's rule, then the per-user budget.

A job runs inside the writer's ``BEGIN IMMEDIATE`` transaction, which holds the file's write lock
against every other connection and process: reading the user's sends, deciding and writing the
claim are one atomic step. A budget job's ``rows`` also hold every record of the key's identity
and user id that may count as a send (see :func:`~invites.ledger._sqlite_file.read_user_rows`),
including those an earlier job of the same transaction wrote.
"""

from __future__ import annotations

from . import Budget, Claim, RecordKey, may_claim, read_record
from ._budget import COUNTED, too_soon_error
from ._json import dump_error
from ._owners import owner_alive
from ._sqlite_file import Row, Rows, key_params
from ._sqlite_writer import Work

__all__ = ["claim_work"]


def claim_work(
    key: RecordKey, owner: str, lease: float, retry_unknown: bool, budget: Budget | None
) -> Work:
    """The job answering :meth:`~invites.ledger.Ledger.claim` for ``key``."""

    def work(rows: Rows, now: float) -> Claim:
        row = rows[key]
        previous = None if row is None else read_record(row)
        if not may_claim(previous, now=now, retry_unknown=retry_unknown):
            assert previous is not None
            return Claim(granted=False, record=previous, in_flight=previous.in_flight(now))
        if previous is not None and previous.state == "intent" and owner_alive(previous.owner):
            # Its lease ran out by this clock, but its owner runs: it may be sending right now.
            return Claim(granted=False, record=previous, in_flight=True)
        overridden = False
        if budget is not None:
            too_soon = budget.refusal(_sends(rows, key), now)
            if too_soon is not None and not budget.ignore:
                if row is None or row[3] == "failed":  # an unknown outcome is kept, not replaced
                    error = dump_error(too_soon_error(key.user_id, budget, too_soon))
                    row = rows[key] = _refused(key, row, owner, error, now)
                return Claim(granted=False, record=read_record(row), too_soon=too_soon)
            overridden = too_soon is not None
        claims = 1 if row is None else row[6] + 1
        created = now if row is None else row[9]
        new = (*key_params(key), "intent", owner, now + lease, claims, None, None, created, now)
        granted = rows[key] = (*new, now, int(overridden))
        return Claim(granted=True, record=read_record(granted), previous=previous)

    return work


def _sends(rows: Rows, key: RecordKey) -> list[float]:
    """When each of the user's records that counts as a send was claimed (an old record that
    never said: when it was last written)."""
    return [
        row[11] if row[11] is not None else row[10]
        for other, row in rows.items()
        if row is not None
        and other.user_id == key.user_id
        and other.identity == key.identity
        and row[3] in COUNTED
    ]


def _refused(key: RecordKey, row: Row | None, owner: str, error: str | None, now: float) -> Row:
    """The ``failed`` record of a claim the budget refused: nothing was sent, no claim granted."""
    if row is None:
        return (*key_params(key), "failed", owner, now, 0, None, error, now, now, None, 0)
    return (*row[:3], "failed", owner, now, row[6], None, error, row[9], now, row[11], row[12])
