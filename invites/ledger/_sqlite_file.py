"""The SQLite ledger's file: where a target names it, its table, and rows read and written."""

from __future__ import annotations

import os
import random
import sqlite3
import time
from pathlib import Path
from typing import Any, Final, TypeAlias

from . import RecordKey

#: 1: the table; 2: ``claimed_at`` and ``budget_overridden`` (the per-user budget); 3: the index
#: on ``(run, updated_at)``, so that asking for a run's records written since a time reads those
#: only (a poll for outcomes with nothing new costs the same whatever the run's size).
SCHEMA_VERSION: Final = 3
SCHEMA: Final = """
CREATE TABLE IF NOT EXISTS invites_ledger (
    run         TEXT NOT NULL,
    identity    TEXT NOT NULL,
    user_id     TEXT NOT NULL,
    state       TEXT NOT NULL
                CHECK (state IN ('intent', 'sent', 'already_verified', 'failed', 'unknown')),
    owner       TEXT NOT NULL,
    lease_until REAL NOT NULL,
    claims      INTEGER NOT NULL,
    result      TEXT,
    error       TEXT,
    created_at  REAL NOT NULL,
    updated_at  REAL NOT NULL,
    claimed_at  REAL,
    budget_overridden INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (run, identity, user_id)
);
CREATE INDEX IF NOT EXISTS invites_ledger_user ON invites_ledger (user_id);
CREATE INDEX IF NOT EXISTS invites_ledger_run_updated ON invites_ledger (run, updated_at);
"""
#: Columns a file of schema version 1 lacks, added by the upgrade to version 2.
_ADDED: Final = {
    "claimed_at": "REAL",
    "budget_overridden": "INTEGER NOT NULL DEFAULT 0",
}
COLUMNS: Final = (
    "run, identity, user_id, state, owner, lease_until, claims, result, error, created_at, "
    "updated_at, claimed_at, budget_overridden"
)
_UPSERT_TAIL: Final = (
    " ON CONFLICT (run, identity, user_id) DO UPDATE SET state = excluded.state, "
    "owner = excluded.owner, lease_until = excluded.lease_until, claims = excluded.claims, "
    "result = excluded.result, error = excluded.error, updated_at = excluded.updated_at, "
    "claimed_at = excluded.claimed_at, budget_overridden = excluded.budget_overridden"
)
_ROW_PARAMS: Final = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"


def path_of(target: str) -> str:
    """The file a ``sqlite:`` URL or a plain path names (``sqlite:///rel.db``,
    ``sqlite:////abs.db``, as SQLAlchemy spells them)."""
    if target.lower().startswith("sqlite://"):
        rest = target[len("sqlite://") :]
        if not rest.startswith("/") or rest == "/":
            raise ValueError("expected sqlite:///relative/path or sqlite:////absolute/path")
        return rest[1:]
    return target


#: A record's row as stored, in ``COLUMNS`` order.
Row: TypeAlias = tuple[Any, ...]
#: The rows one transaction reads and writes, by key; None: no record.
Rows: TypeAlias = dict[RecordKey, "Row | None"]


class Untrusted(Exception):
    """The file is no ledger this library can trust: the message says why and what to do."""


def open_file(path: str, busy_timeout: float) -> sqlite3.Connection:
    """Connect to the ledger file at ``path`` in WAL mode, creating its table when missing.

    Raises :class:`Untrusted` for an existing empty file or one that fails SQLite's
    ``quick_check``: a ledger that lost its records would send every invitation again.
    """
    directory = Path(path).parent
    if not directory.is_dir():
        raise FileNotFoundError(f"no directory {str(directory)!r}")
    if _stays_empty(path):
        raise Untrusted(
            "the file exists but is empty: its records are lost, and a run would send every "
            "invitation again; restore it from a backup (invites ledger backup), or delete it to "
            "start a new ledger on purpose"
        )
    connection = sqlite3.connect(
        path,
        timeout=busy_timeout,
        isolation_level=None,  # explicit BEGIN IMMEDIATE / COMMIT
        check_same_thread=False,
    )
    # Two processes opening a new file at once: switching it to WAL takes a lock for which SQLite
    # may answer "locked" at once instead of waiting out busy_timeout, so the setup is retried.
    give_up = time.monotonic() + busy_timeout
    while True:
        try:
            _set_up(connection)
            return connection
        except sqlite3.OperationalError as exc:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            if "locked" not in str(exc) and "busy" not in str(exc):
                connection.close()
                raise
            if time.monotonic() >= give_up:
                connection.close()
                raise
            time.sleep(random.uniform(0.005, 0.05))
        except sqlite3.DatabaseError as exc:  # not a database, malformed
            connection.close()
            raise Untrusted(_DAMAGED.format(exc=exc)) from exc


#: How long an existing empty file may take to get its header from the process creating it.
EMPTY_GRACE: Final = 1.0


def _stays_empty(path: str) -> bool:
    """Whether ``path`` is an existing file that stays empty for :data:`EMPTY_GRACE` seconds.

    SQLite creates a new file empty and writes its header within milliseconds: a file still empty
    after that lost its content (truncated by a crash, emptied by a tool), so it is no new ledger.
    """
    give_up = time.monotonic() + EMPTY_GRACE
    while True:
        try:
            if os.path.getsize(path) > 0:
                return False
        except OSError:
            return False  # no file: a new ledger
        if time.monotonic() >= give_up:
            return True
        time.sleep(0.05)


_DAMAGED: Final = (
    "the file is damaged ({exc}); a run would trust records that may be lost or wrong: restore it "
    "from a backup (invites ledger backup), or settle what it still holds by hand"
)
#: Bytes the probe writes and commits at open: room for the first claims, or a clear refusal.
PROBE_BYTES: Final = 64 * 1024


def check(connection: sqlite3.Connection) -> None:
    """Raise :class:`Untrusted` unless ``PRAGMA quick_check`` finds the file sound."""
    try:
        problems = [row[0] for row in connection.execute("PRAGMA quick_check(5)")]
    except sqlite3.DatabaseError as exc:
        raise Untrusted(_DAMAGED.format(exc=exc)) from exc
    if problems != ["ok"]:
        raise Untrusted(_DAMAGED.format(exc="; ".join(map(str, problems))))


def probe(connection: sqlite3.Connection) -> None:
    """Commit a write of :data:`PROBE_BYTES` and take it back: raise ``sqlite3.Error`` when the
    file cannot take a commit now (read-only, full, locked past the busy timeout)."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        connection.execute(
            "CREATE TABLE IF NOT EXISTS invites_ledger_probe (id INTEGER PRIMARY KEY, data BLOB)"
        )
        connection.execute(
            "INSERT OR REPLACE INTO invites_ledger_probe VALUES (1, zeroblob(?))", (PROBE_BYTES,)
        )
        connection.execute("COMMIT")
    finally:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
    connection.execute("DELETE FROM invites_ledger_probe")


def checkpoint(connection: sqlite3.Connection, mode: str = "PASSIVE") -> None:
    """Copy what the WAL holds into the file itself (``TRUNCATE`` also empties the WAL)."""
    connection.execute(f"PRAGMA wal_checkpoint({mode})")


def backup(source: str, target: str) -> int:
    """Copy the ledger ``source`` to the new file ``target`` with SQLite's online backup (safe
    while a run writes to it); return the records copied. Raises :class:`Untrusted` when the
    source or the copy fails its check, ``FileExistsError`` when ``target`` exists."""
    if os.path.exists(target):
        raise FileExistsError(f"{target}: exists already; choose a new file")
    source_connection = open_file(source, 30.0)
    try:
        check(source_connection)
        copy = sqlite3.connect(target)
        try:
            source_connection.backup(copy)
            check(copy)
            copy.execute("PRAGMA journal_mode = WAL")
            count: int = copy.execute("SELECT count(*) FROM invites_ledger").fetchone()[0]
        finally:
            copy.close()
    finally:
        source_connection.close()
    return count


def _set_up(connection: sqlite3.Connection) -> None:
    connection.execute("PRAGMA journal_mode = WAL")
    # FULL: a commit is synced to disk before it returns (WAL's NORMAL is not durable
    # across power loss).
    connection.execute("PRAGMA synchronous = FULL")
    if connection.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
        connection.execute("BEGIN IMMEDIATE")
        # On a file of an earlier version this creates the indexes it lacks (reading every
        # record once, writers waiting meanwhile); the columns it lacks are added after.
        for statement in SCHEMA.split(";"):
            if statement.strip():
                connection.execute(statement)
        _upgrade(connection)
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        connection.execute("COMMIT")


def _upgrade(connection: sqlite3.Connection) -> None:
    """Add the columns a version 1 file lacks, inside the caller's write transaction.

    Each is looked up first, so a file another process upgraded meanwhile (or one an older
    library re-marked version 1) is left as it is. Adding a column rewrites no row: a record
    written before reads ``claimed_at`` None (the budget then counts its ``updated_at``).
    """
    present = {row[1] for row in connection.execute("PRAGMA table_info(invites_ledger)")}
    for name, declaration in _ADDED.items():
        if name not in present:
            connection.execute(f"ALTER TABLE invites_ledger ADD COLUMN {name} {declaration}")


def read_rows(connection: sqlite3.Connection, keys: set[RecordKey]) -> Rows:
    """The rows of ``keys`` (None for a key with no record), in one statement.

    The keys are a joined list of values, so each is one primary-key lookup: a ``(run,
    identity, user_id) IN (VALUES ...)`` test would scan the whole table instead.
    """
    rows: Rows = dict.fromkeys(keys)
    if not keys:
        return rows
    params = [part for key in keys for part in key_params(key)]
    for row in connection.execute(_read_sql(len(keys)), params):
        rows[RecordKey(row[0], row[1], row[2])] = tuple(row)
    return rows


_KEYED_COLUMNS: Final = ", ".join(f"l.{name.strip()}" for name in COLUMNS.split(","))


def _read_sql(count: int) -> str:
    values = ", ".join(["(?, ?, ?)"] * count)
    return (
        f"SELECT {_KEYED_COLUMNS} FROM (VALUES {values}) AS k "  # noqa: S608 - values bound
        "JOIN invites_ledger AS l "
        "ON l.run = k.column1 AND l.identity = k.column2 AND l.user_id = k.column3"
    )


#: The rows of a user that may count as sends, in ``COLUMNS`` order (the budget).
_USER_SQL: Final = (
    f"SELECT {_KEYED_COLUMNS} FROM (VALUES {{values}}) AS u JOIN invites_ledger AS l "  # noqa: S608
    "ON l.user_id = u.column2 AND l.identity = u.column1 "
    "WHERE l.state IN ('intent', 'sent', 'unknown')"
)


def read_user_rows(connection: sqlite3.Connection, users: set[tuple[str, str]], rows: Rows) -> None:
    """Add to ``rows`` every record of each (identity, user id) of ``users`` that may count
    against its budget, in one statement (through the index on ``user_id``); a row ``rows``
    holds already is kept as it is (a job of this transaction may have changed it)."""
    if not users:
        return
    values = ", ".join(["(?, ?)"] * len(users))
    params = [part for user in users for part in user]
    for row in connection.execute(_USER_SQL.format(values=values), params):
        rows.setdefault(RecordKey(row[0], row[1], row[2]), tuple(row))


def select_records(
    *, run: str | None, user_id: str | None, since: float | None
) -> tuple[str, list[object]]:
    """The query for the records of ``run`` and/or ``user_id`` (written at or after ``since``),
    oldest first, and its parameters. With ``run`` and ``since`` it searches the index on
    ``(run, updated_at)``: it reads the records written since, not the whole run."""
    where: list[str] = []
    params: list[object] = []
    conditions = (("run = ?", run), ("user_id = ?", user_id), ("updated_at >= ?", since))
    for condition, value in conditions:
        if value is not None:
            where.append(condition)
            params.append(value)
    sql = f"SELECT {COLUMNS} FROM invites_ledger"  # noqa: S608 - fixed column list
    if where:
        sql += " WHERE " + " AND ".join(where)
    return sql + " ORDER BY created_at, rowid", params


def write_rows(connection: sqlite3.Connection, rows: list[Row]) -> None:
    """Insert or update ``rows`` (in ``COLUMNS`` order), in one statement."""
    if not rows:
        return
    values = ", ".join([_ROW_PARAMS] * len(rows))
    connection.execute(
        f"INSERT INTO invites_ledger ({COLUMNS}) VALUES {values}{_UPSERT_TAIL}",  # noqa: S608
        [value for row in rows for value in row],
    )


def key_params(key: RecordKey) -> tuple[str, str, str]:
    return (key.run, key.identity, key.user_id)
