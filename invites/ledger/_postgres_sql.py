"""The PostgreSQL ledger's SQL: its table and schema, its statements, and rows read back.

Nothing here opens a connection; :mod:`invites.ledger._postgres_pool` does that.
"""

from __future__ import annotations

import re
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import psycopg
from psycopg import sql
from psycopg.conninfo import conninfo_to_dict

from . import Record, RecordKey, read_record

TABLE: Final = "invites_ledger"
_IDENTIFIER: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}\Z")
COLUMNS: Final = (
    "run",
    "identity",
    "user_id",
    "state",
    "owner",
    "lease_until",
    "claims",
    "result",
    "error",
    "created_at",
    "updated_at",
    "claimed_at",
    "budget_overridden",
)
_NOW: Final = "extract(epoch FROM clock_timestamp())::float8"

SCHEMA: Final = """
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {table} (
    seq         bigint GENERATED ALWAYS AS IDENTITY,
    run         text NOT NULL,
    identity    text NOT NULL,
    user_id     text NOT NULL,
    state       text NOT NULL
                CHECK (state IN ('intent', 'sent', 'already_verified', 'failed', 'unknown')),
    owner       text NOT NULL,
    lease_until double precision NOT NULL,
    claims      integer NOT NULL,
    result      text,
    error       text,
    previous    jsonb,
    created_at  double precision NOT NULL,
    updated_at  double precision NOT NULL,
    claimed_at  double precision,
    budget_overridden boolean NOT NULL DEFAULT false,
    PRIMARY KEY (run, identity, user_id)
);
CREATE INDEX IF NOT EXISTS {user_index} ON {table} (user_id);
CREATE INDEX IF NOT EXISTS {run_index} ON {table} (run, updated_at);
"""
#: The index names, in the table's schema. ``RUN_INDEX`` lets a poll for a run's records written
#: since a time read those only, whatever the run's size.
USER_INDEX: Final = f"{TABLE}_user"
RUN_INDEX: Final = f"{TABLE}_run_updated"

# The WHERE of the upsert is may_claim() as SQL, evaluated on the locked, current row.
_CLAIM: Final = """
INSERT INTO {table} AS t
    (run, identity, user_id, state, owner, lease_until, claims, created_at, updated_at,
     claimed_at)
SELECT %(run)s, %(identity)s, %(user_id)s, 'intent', %(owner)s, now.t + %(lease)s, 1,
       now.t, now.t, now.t
FROM (SELECT {now} AS t) AS now
ON CONFLICT (run, identity, user_id) DO UPDATE SET
    state = 'intent',
    owner = excluded.owner,
    lease_until = excluded.lease_until,
    claims = t.claims + 1,
    result = NULL,
    error = NULL,
    updated_at = excluded.updated_at,
    claimed_at = excluded.claimed_at,
    budget_overridden = false,
    previous = jsonb_build_object(
        'state', t.state, 'owner', t.owner, 'lease_until', t.lease_until, 'claims', t.claims,
        'result', t.result, 'error', t.error, 'created_at', t.created_at,
        'updated_at', t.updated_at, 'claimed_at', t.claimed_at,
        'budget_overridden', t.budget_overridden)
WHERE t.state = 'failed'
   OR (%(retry_unknown)s AND (t.state = 'unknown'
       OR (t.state = 'intent' AND t.lease_until <= excluded.updated_at)))
RETURNING {columns}, previous
"""
_SELECT_NOW: Final = "SELECT {columns}, {now} FROM {table} WHERE {where_key}"
_SETTLE: Final = (
    "UPDATE {table} SET state = %(state)s, result = %(result)s, error = %(error)s, "
    "updated_at = {now} WHERE {where_key}{held} RETURNING {columns}"
)
# Queued outcomes, many in one statement: only an intent its owner still holds is settled.
_SETTLE_MANY: Final = (
    "UPDATE {table} AS t SET state = v.state, result = v.result, error = v.error, "
    "updated_at = {now} FROM (VALUES {values}) AS v(run, identity, user_id, owner, state, "
    "result, error) WHERE t.run = v.run AND t.identity = v.identity AND t.user_id = v.user_id "
    "AND t.state = 'intent' AND t.owner = v.owner RETURNING t.run, t.identity, t.user_id"
)
_WHERE_KEY: Final = "run = %(run)s AND identity = %(identity)s AND user_id = %(user_id)s"
_HELD: Final = " AND state = 'intent' AND owner = %(owner)s"


def split_url(url: str) -> tuple[str, str]:
    """``url`` without the ``schema`` query parameter (psycopg would refuse it), and the schema."""
    parts = urlsplit(url)
    scheme = "postgresql"  # also for postgres:// and postgresql+psycopg://
    query = parse_qsl(parts.query, keep_blank_values=True)
    schemas = [value for name, value in query if name == "schema"]
    rest = [(name, value) for name, value in query if name != "schema"]
    schema = schemas[-1] if schemas else "public"
    if not _IDENTIFIER.match(schema):
        raise ValueError("schema: expected a plain SQL identifier")
    return urlunsplit((scheme, parts.netloc, parts.path, urlencode(rest), "")), schema


def ledger_label(url: str) -> str:
    """``postgresql://user@host:port/db?schema=...`` of a ledger URL: never its password."""
    try:
        conninfo, schema = split_url(url)
        params = conninfo_to_dict(conninfo)
    except (ValueError, psycopg.Error):
        return "postgresql://(unreadable URL)"
    user = f"{params['user']}@" if params.get("user") else ""
    host = str(params.get("host") or "localhost")
    port = params.get("port") or 5432
    return f"postgresql://{user}{host}:{port}/{params.get('dbname') or ''}?schema={schema}"


def previous_record(key: RecordKey, data: dict[str, Any] | None) -> Record | None:
    if data is None:
        return None
    # A takeover by an older version of the library recorded fewer columns.
    return read_record([key.run, key.identity, key.user_id, *(data.get(c) for c in COLUMNS[3:])])


def key_params(key: RecordKey) -> dict[str, Any]:
    return {"run": key.run, "identity": key.identity, "user_id": key.user_id}


def claim_params(key: RecordKey, owner: str, lease: float, retry_unknown: bool) -> dict[str, Any]:
    return {**key_params(key), "owner": owner, "lease": lease, "retry_unknown": retry_unknown}


def settle_many(
    table: sql.Identifier, outcomes: list[tuple[RecordKey, str, str, str | None, str | None]]
) -> tuple[sql.Composed, list[Any]]:
    """The statement settling each of ``outcomes`` (key, owner, state, result, error) held by
    its owner, and its parameters; it returns the key of every record it settled."""
    values = sql.SQL(", ").join([sql.SQL("(%s, %s, %s, %s, %s, %s, %s)")] * len(outcomes))
    statement = sql.SQL(_SETTLE_MANY).format(table=table, now=sql.SQL(_NOW), values=values)
    params = [
        part
        for key, owner, state, result, error in outcomes
        for part in (key.run, key.identity, key.user_id, owner, state, result, error)
    ]
    return statement, params


def statements(table: sql.Identifier) -> dict[str, sql.Composed]:
    """The ledger's statements with ``table`` (schema-qualified) filled in."""
    names = {
        "table": table,
        "columns": sql.SQL(", ").join(map(sql.Identifier, COLUMNS)),
        "now": sql.SQL(_NOW),
        "where_key": sql.SQL(_WHERE_KEY),
    }
    return {
        "claim": sql.SQL(_CLAIM).format(**names),
        "select_now": sql.SQL(_SELECT_NOW).format(**names),
        "settle": sql.SQL(_SETTLE).format(**names, held=sql.SQL("")),
        "settle_held": sql.SQL(_SETTLE).format(**names, held=sql.SQL(_HELD)),
    }


def select_records(
    table: sql.Composable, *, run: str | None, user_id: str | None, since: float | None
) -> tuple[sql.Composed, list[Any]]:
    """The query for the records of ``run`` and/or ``user_id`` (written at or after ``since``),
    oldest first, and its parameters."""
    conditions = (("run", "=", run), ("user_id", "=", user_id), ("updated_at", ">=", since))
    where = [
        sql.SQL("{} {} %s").format(sql.Identifier(name), sql.SQL(operator))
        for name, operator, value in conditions
        if value is not None
    ]
    statement = sql.SQL("SELECT {columns} FROM {table}{where} ORDER BY created_at, seq").format(
        columns=sql.SQL(", ").join(map(sql.Identifier, COLUMNS)),
        table=table,
        where=sql.SQL(" WHERE ").join([sql.SQL(""), sql.SQL(" AND ").join(where)])
        if where
        else sql.SQL(""),
    )
    return statement, [value for _, _, value in conditions if value is not None]
