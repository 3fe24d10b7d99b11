"""The servers a profile names (its ledger, its pacing store): do they answer?"""

from __future__ import annotations

from pathlib import Path

from .._delivery.provider import BaseProvider
from .._settings.fields import store_label
from ..errors import InviteError, redact_url

__all__ = ["check_servers"]

#: Seconds each server gets to answer.
TIMEOUT = 5.0


def check_servers(provider: BaseProvider) -> list[tuple[str, str | None]]:
    """``(what, problem)`` for the ledger and the pacing store a profile names; ``problem`` is
    None when it answered (or, for a SQLite file, when its directory exists)."""
    checks: list[tuple[str, str | None]] = []
    ledger = provider.settings.ledger
    if ledger is not None:
        checks.append((f"ledger {redact_url(ledger)}", _ledger_problem(ledger)))
    store = getattr(provider.settings, "rate_limit_store", None)
    if isinstance(store, str):
        checks.append((f"rate_limit_store {store_label(store)}", _redis_problem(store)))
    return checks


def _ledger_problem(url: str) -> str | None:
    scheme = url.split("://", 1)[0].lower() if "://" in url else "sqlite"
    if scheme == "sqlite":
        path = Path(url[len("sqlite:///") :] if url.lower().startswith("sqlite:///") else url)
        if not path.parent.is_dir():
            return f"no directory {str(path.parent)!r}"
        return None
    try:
        from ..ledger._postgres import ping
    except ImportError:
        return "not checked: needs the postgres extra (pip install 'invites[postgres]')"
    try:
        ping(url, timeout=TIMEOUT)
    except InviteError as exc:
        return redact_url(exc.message)
    return None


def _redis_problem(url: str) -> str | None:
    try:
        import redis
    except ImportError:
        return "not checked: needs redis-py (pip install 'invites[redis]')"
    client = redis.Redis.from_url(url, socket_connect_timeout=TIMEOUT, socket_timeout=TIMEOUT)
    try:
        client.ping()
    except redis.RedisError as exc:
        return redact_url(f"does not answer PING ({type(exc).__name__}: {exc})")
    finally:
        client.close()
    return None
