"""The real servers some tests need: PostgreSQL, Redis, RabbitMQ on loopback.

A test that needs one calls :func:`require`: unreachable, it is skipped with the reason, except
when ``INVITES_REQUIRE_SERVICES=1`` (CI), where it fails. Nothing here fakes a server.
PostgreSQL tests each get a fresh schema (:func:`fresh_postgres_url`), dropped at the end of the
session, so parallel runs and reruns never share rows.
"""

from __future__ import annotations

import functools
import os
import socket
import uuid
from typing import Final

import pytest

POSTGRES_URL: Final = os.environ.get(
    "INVITES_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
REDIS_URL: Final = os.environ.get("INVITES_TEST_REDIS_URL", "redis://127.0.0.1:6379")
AMQP_URL: Final = os.environ.get("INVITES_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")

_SCHEMAS: list[str] = []


def services_required() -> bool:
    return os.environ.get("INVITES_REQUIRE_SERVICES") == "1"


def require(name: str, problem: str | None) -> None:
    """Skip (or, when services are required, fail) when ``problem`` says a server is missing."""
    if problem is None:
        return
    message = f"{name} is not reachable: {problem}"
    if services_required():
        pytest.fail(message + " (INVITES_REQUIRE_SERVICES=1)")
    pytest.skip(message)


@functools.cache
def postgres_problem() -> str | None:
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install 'invites[postgres]')"
    try:
        with psycopg.connect(POSTGRES_URL, connect_timeout=3) as connection:
            connection.execute("SELECT 1")
    except psycopg.Error as exc:
        return f"{type(exc).__name__}: {str(exc).strip().splitlines()[0]}"
    return None


def _tcp_problem(host: str, port: int) -> str | None:
    try:
        with socket.create_connection((host, port), timeout=3):
            return None
    except OSError as exc:
        return f"{host}:{port}: {exc}"


@functools.cache
def redis_problem() -> str | None:
    try:
        import redis
    except ImportError:
        return "redis-py is not installed"
    try:
        client = redis.Redis.from_url(REDIS_URL, socket_timeout=3)
        client.ping()
        client.close()
    except redis.RedisError as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


@functools.cache
def amqp_problem() -> str | None:
    return _tcp_problem("127.0.0.1", 5672)


def fresh_postgres_url() -> str:
    """A ledger URL naming a schema no one else uses; it is dropped when the session ends."""
    require("PostgreSQL", postgres_problem())
    schema = f"invites_test_{uuid.uuid4().hex[:16]}"
    _SCHEMAS.append(schema)
    separator = "&" if "?" in POSTGRES_URL else "?"
    return f"{POSTGRES_URL}{separator}schema={schema}"


def drop_postgres_schemas() -> None:
    if not _SCHEMAS:
        return
    import psycopg
    from psycopg import sql

    with psycopg.connect(POSTGRES_URL, autocommit=True, connect_timeout=3) as connection:
        while _SCHEMAS:
            schema = _SCHEMAS.pop()
            connection.execute(
                sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(sql.Identifier(schema))
            )
