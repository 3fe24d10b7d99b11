"""Settings every provider shares; vendors subclass :class:`ProviderSettings` with their keys."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, NewType
from urllib.parse import urlsplit, urlunsplit

import attrs

from ._secret import Secret

__all__ = [
    "AttemptHook",
    "BaseUrl",
    "LedgerUrl",
    "NonNegativeFloat",
    "PositiveFloat",
    "PositiveInt",
    "ProviderSettings",
    "StoreUrl",
    "TenantId",
    "Timeouts",
    "TokenProvider",
]

#: An absolute ``http(s)`` URL with no credentials, query or fragment.
BaseUrl = NewType("BaseUrl", str)
#: A UUID in its canonical lower-case form.
TenantId = NewType("TenantId", str)
PositiveFloat = NewType("PositiveFloat", float)
NonNegativeFloat = NewType("NonNegativeFloat", float)
PositiveInt = NewType("PositiveInt", int)
#: Where providers share their pace: ``redis://``, ``rediss://`` or ``unix://``.
StoreUrl = NewType("StoreUrl", str)
#: Where resends are recorded: a SQLite path or ``sqlite:///`` URL, or ``postgresql://...``.
LedgerUrl = NewType("LedgerUrl", str)

#: Returns a fresh token (or an awaitable of one); called when none is cached and after a 401.
TokenProvider = Callable[[], "str | Awaitable[str]"]
#: Receives an :class:`invites.AttemptEvent` after every attempt.
AttemptHook = Callable[[Any], None]


@attrs.frozen(kw_only=True)
class Timeouts:
    """Per-phase timeouts in seconds; an unset phase takes ``timeout``."""

    connect: PositiveFloat | None = None
    read: PositiveFloat | None = None
    write: PositiveFloat | None = None
    pool: PositiveFloat | None = None


@attrs.frozen(kw_only=True)
class ProviderSettings:
    """Keys every provider accepts. See the README's configuration reference."""

    provider: str
    base_url: BaseUrl | None = None
    token: Secret | None = attrs.field(default=None, repr=False)
    token_env: str | None = None
    token_provider: TokenProvider | None = attrs.field(default=None, repr=False)
    timeout: PositiveFloat = PositiveFloat(10.0)
    timeouts: Timeouts | None = None
    max_attempts: PositiveInt = PositiveInt(3)
    rate_limit: PositiveFloat | None = None
    max_retry_after: NonNegativeFloat = NonNegativeFloat(60.0)
    deadline: PositiveFloat = PositiveFloat(120.0)
    retry_unknown: bool = False
    allow_insecure_http: bool = False
    on_attempt: AttemptHook | None = attrs.field(default=None, repr=False)
    rate_limit_store: StoreUrl | None = attrs.field(
        default=None, repr=lambda url: repr(url and store_label(url))
    )
    ledger: LedgerUrl | None = attrs.field(
        default=None, repr=lambda url: repr(url and without_password(url))
    )


def store_label(url: str) -> str:
    """``scheme://host:port/db`` of a store URL: what errors and reprs show (no credentials)."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"unix://{parts.path}"
    host = parts.hostname or "localhost"
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}:{parts.port or 6379}{parts.path or '/0'}"


def without_password(url: str) -> str:
    """``url`` with any password in it replaced by ``***`` (a path is returned unchanged)."""
    if "://" not in url:
        return url
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url.split("://", 1)[0] + "://(unreadable URL)"
    if not password:
        return url
    user, _, host = parts.netloc.rpartition("@")
    user = user.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
