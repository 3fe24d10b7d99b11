"""What only the SQLite ledger promises about how it commits: lookups by key, outcomes in groups."""

from __future__ import annotations

from pathlib import Path

from invites.ledger import RecordKey
from invites.ledger._sqlite_file import open_file, read_rows


def key(user_id: str = "u-1", run: str = "run-1") -> RecordKey:
    return RecordKey(run=run, identity='{"vendor":"fake"}', user_id=user_id)


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


def test_keys_differing_in_any_part_read_their_own_rows(tmp_path: Path) -> None:
    connection = open_file(str(tmp_path / "ledger.db"), 5.0)
    upsert = "INSERT INTO invites_ledger VALUES (?, ?, ?, 'sent', 'o', 0, 1, NULL, NULL, 0, 0)"
    stored = [key("u-1"), key("u-1", run="run-2"), RecordKey("run-1", "other", "u-1")]
    connection.executemany(upsert, [(k.run, k.identity, k.user_id) for k in stored])
    rows = read_rows(connection, {*stored, key("u-2")})
    connection.close()
    assert {k for k, row in rows.items() if row is not None} == set(stored)
    assert all(row is None or (row[0], row[1], row[2]) == (k.run, k.identity, k.user_id)
               for k, row in rows.items())  # fmt: skip
    assert rows[key("u-2")] is None
