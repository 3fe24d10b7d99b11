"""The SQLite ledger's file: where a target names it, its table, and rows read and written."""

from __future__ import annotations

import random
import sqlite3
import time
from pathlib import Path
from typing import Any, Final, TypeAlias

from . import RecordKey

SCHEMA_VERSION: Final = 1
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
    PRIMARY KEY (run, identity, user_id)
);
CREATE INDEX IF NOT EXISTS invites_ledger_user ON invites_ledger (user_id);
"""
COLUMNS: Final = (
    "run, identity, user_id, state, owner, lease_until, claims, result, error, created_at, "
    "updated_at"
)
_UPSERT_TAIL: Final = (
    " ON CONFLICT (run, identity, user_id) DO UPDATE SET state = excluded.state, "
    "owner = excluded.owner, lease_until = excluded.lease_until, claims = excluded.claims, "
    "result = excluded.result, error = excluded.error, updated_at = excluded.updated_at"
)
_ROW_PARAMS: Final = "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"


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


def open_file(path: str, busy_timeout: float) -> sqlite3.Connection:
    """Connect to the ledger file at ``path`` in WAL mode, creating its table when missing."""
    directory = Path(path).parent
    if not directory.is_dir():
        raise FileNotFoundError(f"no directory {str(directory)!r}")
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


def _set_up(connection: sqlite3.Connection) -> None:
    connection.execute("PRAGMA journal_mode = WAL")
    # FULL: a commit is synced to disk before it returns (WAL's NORMAL is not durable
    # across power loss).
    connection.execute("PRAGMA synchronous = FULL")
    if connection.execute("PRAGMA user_version").fetchone()[0] != SCHEMA_VERSION:
        connection.execute("BEGIN IMMEDIATE")
        for statement in SCHEMA.split(";"):
            if statement.strip():
                connection.execute(statement)
        connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        connection.execute("COMMIT")


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
