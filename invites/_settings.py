"""Settings every provider shares; vendors subclass :class:`ProviderSettings` with their keys."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, NewType

import attrs

from ._secret import Secret

__all__ = [
    "AttemptHook",
    "BaseUrl",
    "NonNegativeFloat",
    "PositiveFloat",
    "PositiveInt",
    "ProviderSettings",
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
    #: Path or URL of the ledger that ``resend_invite(..., idempotency_key=...)`` records in.
    ledger: str | None = None
