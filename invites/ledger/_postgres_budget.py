"""The PostgreSQL ledger's schema upgrades and its budgeted claim.

A claim under a per-user budget is one call of a PL/pgSQL function, in its own transaction (one
round trip, like a plain claim). The function first takes a transaction-scoped advisory lock on
(table, identity, user id): every budgeted claim for that user, from any run, process or machine,
queues there. Under READ COMMITTED each statement after the lock takes a fresh snapshot, so the
count of the user's sends sees every claim committed before the lock was granted; the claim (or
the refusal) then commits with the function's statement, and only then is the lock released. A
plain claim of the same key (no budget) does not take the lock, so the function's own writes keep
the plain claim's conditions on the row, as the plain claim's statement does.

Upgrades: a table created before the budget lacks ``claimed_at`` and ``budget_overridden``;
:func:`migrate` adds them (``ADD COLUMN IF NOT EXISTS``, no row rewritten: the default is a
constant) and creates the function, under an advisory lock so that processes upgrading at once
queue instead of racing. A table created before the index on ``(run, updated_at)`` gets it
(``CREATE INDEX IF NOT EXISTS``: it reads the table once, and writes to the table wait until it
is built, about a second per million records). A process of an older version keeps working on
the upgraded table: its statements name their columns.
"""

from __future__ import annotations

from typing import Any, Final

import psycopg
from psycopg import sql

from . import Budget, Claim, RecordKey, read_record
from ._budget import too_soon_error
from ._json import dump_error
from ._postgres_sql import RUN_INDEX, SCHEMA, TABLE, USER_INDEX, previous_record

__all__ = [
    "FUNCTION",
    "budget_claim",
    "claim_params",
    "migrate",
    "select_function",
    "upgrade_statements",
]

#: The budgeted claim's function, in the ledger's schema (the suffix changes with its signature).
FUNCTION: Final = f"{TABLE}_claim_v2"

_UPGRADE: Final = """
ALTER TABLE {table} ADD COLUMN IF NOT EXISTS claimed_at double precision;
ALTER TABLE {table} ADD COLUMN IF NOT EXISTS budget_overridden boolean NOT NULL DEFAULT false;
"""

_OUT: Final = (
    "v_row.run, v_row.identity, v_row.user_id, v_row.state, v_row.owner, v_row.lease_until, "
    "v_row.claims, v_row.result, v_row.error, v_row.created_at, v_row.updated_at, "
    "v_row.claimed_at, v_row.budget_overridden"
)
_TAKES: Final = (
    "t.state = 'failed' OR (p_retry_unknown AND (t.state = 'unknown' "
    "OR (t.state = 'intent' AND t.lease_until <= v_now)))"
)
_KEY: Final = "t.run = p_run AND t.identity = p_identity AND t.user_id = p_user_id"

_FUNCTION_BODY: Final = """
CREATE OR REPLACE FUNCTION {function}(
    p_run text, p_identity text, p_user_id text, p_owner text, p_lease double precision,
    p_retry_unknown boolean, p_limit integer, p_window double precision, p_ignore boolean,
    p_refusal jsonb)
RETURNS TABLE (
    o_run text, o_identity text, o_user_id text, o_state text, o_owner text,
    o_lease_until double precision, o_claims integer, o_result text, o_error text,
    o_created_at double precision, o_updated_at double precision, o_claimed_at double precision,
    o_budget_overridden boolean, o_granted boolean, o_previous jsonb,
    o_sends double precision[], o_now double precision)
LANGUAGE plpgsql VOLATILE AS $invites$
DECLARE
    v_now double precision := extract(epoch FROM clock_timestamp())::float8;
    v_row {table}%ROWTYPE;
    v_found boolean;
    v_sends double precision[];
    v_over boolean;
BEGIN
    PERFORM pg_advisory_xact_lock(
        hashtextextended({lock} || p_identity || chr(10) || p_user_id, 0));
    SELECT * INTO v_row FROM {table} AS t WHERE {key} FOR UPDATE;
    v_found := FOUND;
    IF v_found AND NOT (v_row.state = 'failed' OR (p_retry_unknown AND (v_row.state = 'unknown'
            OR (v_row.state = 'intent' AND v_row.lease_until <= v_now)))) THEN
        RETURN QUERY SELECT {out}, false, NULL::jsonb, NULL::float8[], v_now;
        RETURN;
    END IF;
    SELECT coalesce(array_agg(s.at ORDER BY s.at DESC), '{{}}') INTO v_sends
    FROM (SELECT coalesce(t.claimed_at, t.updated_at) AS at FROM {table} AS t
          WHERE t.identity = p_identity AND t.user_id = p_user_id
            AND t.state IN ('intent', 'sent', 'unknown')) AS s
    WHERE s.at > v_now - p_window;
    v_over := cardinality(v_sends) >= p_limit;
    IF v_over AND NOT p_ignore THEN
        IF NOT v_found OR v_row.state = 'failed' THEN
            INSERT INTO {table} AS t (run, identity, user_id, state, owner, lease_until, claims,
                                      error, created_at, updated_at)
            VALUES (p_run, p_identity, p_user_id, 'failed', p_owner, v_now, 0,
                    (p_refusal || jsonb_build_object(
                        'retry_after', round((v_sends[p_limit] + p_window - v_now)::numeric, 3),
                        'details', (p_refusal -> 'details') || jsonb_build_object(
                            'sends', cardinality(v_sends), 'last_sent_at', v_sends[1])))::text,
                    v_now, v_now)
            ON CONFLICT (run, identity, user_id) DO UPDATE SET
                state = 'failed', owner = excluded.owner, lease_until = excluded.lease_until,
                result = NULL, error = excluded.error, updated_at = excluded.updated_at
            WHERE t.state = 'failed'
            RETURNING * INTO v_row;
            IF NOT FOUND THEN
                SELECT * INTO v_row FROM {table} AS t WHERE {key};
            END IF;
        END IF;
        RETURN QUERY SELECT {out}, false, NULL::jsonb, v_sends, v_now;
        RETURN;
    END IF;
    INSERT INTO {table} AS t (run, identity, user_id, state, owner, lease_until, claims,
                              created_at, updated_at, claimed_at, budget_overridden)
    VALUES (p_run, p_identity, p_user_id, 'intent', p_owner, v_now + p_lease, 1, v_now, v_now,
            v_now, v_over)
    ON CONFLICT (run, identity, user_id) DO UPDATE SET
        state = 'intent', owner = excluded.owner, lease_until = excluded.lease_until,
        claims = t.claims + 1, result = NULL, error = NULL, updated_at = excluded.updated_at,
        claimed_at = excluded.claimed_at, budget_overridden = excluded.budget_overridden,
        previous = jsonb_build_object(
            'state', t.state, 'owner', t.owner, 'lease_until', t.lease_until,
            'claims', t.claims, 'result', t.result, 'error', t.error,
            'created_at', t.created_at, 'updated_at', t.updated_at,
            'claimed_at', t.claimed_at, 'budget_overridden', t.budget_overridden)
    WHERE {takes}
    RETURNING * INTO v_row;
    IF NOT FOUND THEN  -- a claim without a budget took the key meanwhile
        SELECT * INTO v_row FROM {table} AS t WHERE {key};
        RETURN QUERY SELECT {out}, false, NULL::jsonb, v_sends, v_now;
        RETURN;
    END IF;
    RETURN QUERY SELECT {out}, true, v_row.previous, v_sends, v_now;
END
$invites$
"""


def upgrade_statements(schema: str, table: sql.Identifier) -> sql.Composed:
    """Every statement creating or upgrading the schema, table, index and function."""
    names = {"table": table, "schema": sql.Identifier(schema)}
    function = sql.SQL(_FUNCTION_BODY).format(
        function=sql.Identifier(schema, FUNCTION),
        lock=sql.Literal(f"invites-ledger-budget:{schema}:"),
        out=sql.SQL(_OUT),
        takes=sql.SQL(_TAKES),
        key=sql.SQL(_KEY),
        **names,
    )
    return sql.Composed(
        [
            sql.SQL(SCHEMA).format(
                **names,
                user_index=sql.Identifier(USER_INDEX),
                run_index=sql.Identifier(RUN_INDEX),
            ),
            sql.SQL(_UPGRADE).format(**names),
            function,
        ]
    )


def migrate(connection: psycopg.Connection[Any], schema: str, table: sql.Identifier) -> None:
    """Create or upgrade the ledger's schema on ``connection`` (autocommit) unless it is current:
    the function is created last, so its presence says everything before it is there, except the
    index on ``(run, updated_at)``, which a table upgraded by an earlier version lacks."""
    function = sql.Identifier(schema, FUNCTION).as_string(connection)
    index = sql.Identifier(schema, RUN_INDEX).as_string(connection)
    current = connection.execute(
        "SELECT to_regproc(%s) IS NOT NULL AND to_regclass(%s) IS NOT NULL", (function, index)
    )
    if current.fetchone() == (True,):
        return
    name = table.as_string(connection)
    with connection.transaction():
        connection.execute(
            "SELECT pg_advisory_xact_lock(hashtext(%s))", (f"invites-ledger:{name}",)
        )
        connection.execute(upgrade_statements(schema, table))


def claim_params(
    key: RecordKey, owner: str, lease: float, retry_unknown: bool, budget: Budget
) -> tuple[Any, ...]:
    """The function's arguments, in order."""
    refusal = dump_error(too_soon_error(key.user_id, budget, None))
    return (
        key.run,
        key.identity,
        key.user_id,
        owner,
        lease,
        retry_unknown,
        budget.limit,
        budget.window,
        budget.ignore,
        refusal,
    )


def budget_claim(key: RecordKey, row: Any, budget: Budget) -> Claim:
    """The :class:`~invites.ledger.Claim` one row of the function stands for."""
    record = read_record(row)
    granted, previous, sends, now = row[13:17]
    if granted:
        return Claim(granted=True, record=record, previous=previous_record(key, previous))
    too_soon = None if sends is None else budget.refusal(sends, now)
    if too_soon is not None and not budget.ignore:
        return Claim(granted=False, record=record, too_soon=too_soon)
    return Claim(granted=False, record=record, in_flight=record.in_flight(now))


def select_function(schema: str) -> sql.Composed:
    """The statement calling the function, with its ten arguments as placeholders."""
    return sql.SQL("SELECT * FROM {}(%s, %s, %s, %s, %s, %s, %s, %s, %s, %s::jsonb)").format(
        sql.Identifier(schema, FUNCTION)
    )
