"""What only the SQLite ledger promises about how it commits: lookups by key, outcomes in groups."""

from __future__ import annotations

import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest

from invites import ResendResult, UserNotFound
from invites.ledger import RecordKey, _sqlite_writer, open_ledger
from invites.ledger._sqlite import SQLiteLedger
from invites.ledger._sqlite_file import open_file, read_rows, select_records


def key(user_id: str = "u-1", run: str = "run-1") -> RecordKey:
    return RecordKey(run=run, identity='{"vendor":"fake"}', user_id=user_id)


def result(user_id: str = "u-1") -> ResendResult:
    return ResendResult(provider="fake", user_id=user_id, message="sent")


def test_reading_a_group_of_keys_searches_the_primary_key(tmp_path: Path) -> None:
    # A commit reads the rows of every key it touches: a scan would cost the whole table each time.
    connection = open_file(str(tmp_path / "ledger.db"), 5.0)
    statements: list[str] = []
    connection.set_trace_callback(statements.append)
    read_rows(connection, {key("u-1"), key("u-2"), key("u-3", run="run-2")})
    connection.set_trace_callback(None)
    (select,) = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    plan = [row[3] for row in connection.execute(f"EXPLAIN QUERY PLAN {select}")]
    connection.close()
    assert any("USING INDEX" in step and "run=?" in step for step in plan), plan
    assert not any(step.startswith("SCAN") and "invites_ledger" in step for step in plan), plan


def _idle_poll_plan(connection: sqlite3.Connection) -> list[str]:
    sql, params = select_records(run="run-1", user_id=None, since=time.time())
    return [row[3] for row in connection.execute(f"EXPLAIN QUERY PLAN {sql}", params)]


def test_an_idle_poll_searches_the_runs_recent_records_not_the_run(tmp_path: Path) -> None:
    # A poll for a run's outcomes asks for what was written since the last one: with nothing new
    # it must cost the same whatever the run's size.
    connection = open_file(str(tmp_path / "ledger.db"), 5.0)
    plan = _idle_poll_plan(connection)
    connection.close()
    assert any("USING INDEX" in step and "run=? AND updated_at>?" in step for step in plan), plan
    assert not any(step.startswith("SCAN") for step in plan), plan


#: A file as version 2 of the schema created it (before the index on run and updated_at).
_V2_SQLITE = """
CREATE TABLE invites_ledger (
    run TEXT NOT NULL, identity TEXT NOT NULL, user_id TEXT NOT NULL,
    state TEXT NOT NULL
        CHECK (state IN ('intent', 'sent', 'already_verified', 'failed', 'unknown')),
    owner TEXT NOT NULL, lease_until REAL NOT NULL, claims INTEGER NOT NULL,
    result TEXT, error TEXT, created_at REAL NOT NULL, updated_at REAL NOT NULL,
    claimed_at REAL, budget_overridden INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run, identity, user_id));
CREATE INDEX invites_ledger_user ON invites_ledger (user_id);
PRAGMA user_version = 2;
"""


def test_a_version_2_file_is_upgraded_in_place_and_keeps_its_records(tmp_path: Path) -> None:
    path = tmp_path / "v2.db"
    now = time.time()
    old = sqlite3.connect(path)
    old.executescript(_V2_SQLITE)
    old.executemany(
        "INSERT INTO invites_ledger VALUES (?, '{\"vendor\":\"fake\"}', ?, ?, 'o', ?, 1, NULL, "
        "NULL, ?, ?, ?, 0)",
        [
            ("run-1", "u-1", "sent", now - 3600, now - 3600, now - 3600, now - 3600),
            ("run-1", "u-2", "intent", now + 60, now - 3600, now, now),
            ("run-2", "u-3", "intent", now + 60, now, now, now),
        ],
    )
    old.commit()
    old.close()

    with open_ledger(path) as ledger:
        records = {record.key: record for record in ledger.records()}
        recent = list(ledger.records_since(run="run-1", since=now - 60))
        assert ledger.claim(key("u-4"), owner="a", lease=60).granted
    upgraded = open_file(str(path), 5.0)
    version = upgraded.execute("PRAGMA user_version").fetchone()
    plan = _idle_poll_plan(upgraded)
    upgraded.close()

    assert {k.user_id: (r.state, r.updated_at) for k, r in records.items()} == {
        "u-1": ("sent", now - 3600),
        "u-2": ("intent", now),
        "u-3": ("intent", now),
    }
    assert [record.key for record in recent] == [key("u-2")]
    assert version == (3,)
    assert any("USING INDEX" in step and "updated_at>?" in step for step in plan), plan


def test_keys_differing_in_any_part_read_their_own_rows(tmp_path: Path) -> None:
    connection = open_file(str(tmp_path / "ledger.db"), 5.0)
    upsert = (
        "INSERT INTO invites_ledger (run, identity, user_id, state, owner, lease_until, claims, "
        "created_at, updated_at) VALUES (?, ?, ?, 'sent', 'o', 0, 1, 0, 0)"
    )
    stored = [key("u-1"), key("u-1", run="run-2"), RecordKey("run-1", "other", "u-1")]
    connection.executemany(upsert, [(k.run, k.identity, k.user_id) for k in stored])
    rows = read_rows(connection, {*stored, key("u-2")})
    connection.close()
    assert {k for k, row in rows.items() if row is not None} == set(stored)
    assert all(row is None or (row[0], row[1], row[2]) == (k.run, k.identity, k.user_id)
               for k, row in rows.items())  # fmt: skip
    assert rows[key("u-2")] is None


def test_a_queued_outcome_is_committed_with_the_next_claim(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_sqlite_writer, "LINGER", 600.0)  # only a claim or a flush commits it
    commits: list[list[RecordKey | None]] = []
    commit = _sqlite_writer.Writer._commit

    def recording(self: _sqlite_writer.Writer, connection: Any, batch: list[Any]) -> None:
        commits.append([job.key for job in batch])
        commit(self, connection, batch)

    monkeypatch.setattr(_sqlite_writer.Writer, "_commit", recording)
    with SQLiteLedger(tmp_path / "ledger.db") as ledger:
        assert ledger.claim(key("u-1"), owner="a", lease=60).granted
        ledger.settle_soon(key("u-1"), "sent", owner="a", result=result("u-1"))
        assert ledger.claim(key("u-2"), owner="a", lease=60).granted
        assert commits == [[key("u-1")], [key("u-1"), key("u-2")]]
        ledger.settle_soon(key("u-2"), "failed", owner="a", error=UserNotFound("gone"))
        ledger.flush()
        assert commits[-1] == [key("u-2"), None]
        assert _stored_states(tmp_path / "ledger.db") == {"u-1": "sent", "u-2": "failed"}


def test_a_queued_outcome_with_nothing_after_it_is_committed_on_its_own(tmp_path: Path) -> None:
    with SQLiteLedger(tmp_path / "ledger.db") as ledger:
        assert ledger.claim(key(), owner="a", lease=60).granted
        ledger.settle_soon(key(), "sent", owner="a", result=result())
        deadline = time.monotonic() + 30
        while _stored_states(tmp_path / "ledger.db") != {"u-1": "sent"}:
            assert time.monotonic() < deadline, "the outcome was never committed"
            time.sleep(0.01)


def test_a_closed_ledger_has_committed_its_queued_outcomes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_sqlite_writer, "LINGER", 600.0)
    ledger = SQLiteLedger(tmp_path / "ledger.db")
    for n in range(5):
        assert ledger.claim(key(f"u-{n}"), owner="a", lease=60).granted
        ledger.settle_soon(key(f"u-{n}"), "already_verified", owner="a")
    ledger.close()
    assert _stored_states(tmp_path / "ledger.db") == {
        f"u-{n}": "already_verified" for n in range(5)
    }


def _stored_states(path: Path) -> dict[str, str]:
    """What another process reading the file sees."""
    connection = sqlite3.connect(path)
    try:
        return dict(connection.execute("SELECT user_id, state FROM invites_ledger").fetchall())
    finally:
        connection.close()
