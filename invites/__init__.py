"""Resend user invitations through several identity vendors behind one interface.

>>> provider = invites.from_config({"provider": "ecosuite", "token": "..."})   # doctest: +SKIP
>>> provider.resend_invite("u-1")                                             # doctest: +SKIP

Only the core loads on import; vendor adapters load when configured, and the bulk runner, the test
double and the sandbox when first used.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from ._delivery.provider import AttemptEvent, BaseProvider, Call, Flow
from ._protocol import InviteProvider
from ._settings.fields import ProviderSettings
from ._settings.secret import Secret
from ._version import __version__ as __version__
from .config import Profiles, from_config, from_env, load_profiles
from .errors import (
    AccessDenied,
    AlreadyVerified,
    AuthenticationFailed,
    ConfigurationError,
    ConnectionFailed,
    InvalidInvitee,
    InvalidRequest,
    InvitationExpired,
    InviteError,
    InviteRejected,
    OutcomeUnknown,
    PermissionDenied,
    ProviderUnavailable,
    RateLimited,
    ResendTooSoon,
    TenantMismatch,
    UnexpectedResponse,
    UserNotFound,
)
from .models import Access, Invitee, ResendResult
from .registry import known_providers, register_provider

if TYPE_CHECKING:
    from .bulk import Outcome, aresend_many, resend_many
    from .ledger import Ledger, open_ledger


# An application that configures no logging gets nothing from invites on stderr (not even
# through logging's last resort); one that configures it gets every record as usual.
logging.getLogger("invites").addHandler(logging.NullHandler())

__all__ = [
    "Access",
    "AccessDenied",
    "AlreadyVerified",
    "AttemptEvent",
    "AuthenticationFailed",
    "BaseProvider",
    "Call",
    "ConfigurationError",
    "ConnectionFailed",
    "Flow",
    "InvalidInvitee",
    "InvalidRequest",
    "InvitationExpired",
    "InviteError",
    "InviteProvider",
    "InviteRejected",
    "Invitee",
    "Ledger",
    "Outcome",
    "OutcomeUnknown",
    "PermissionDenied",
    "Profiles",
    "ProviderSettings",
    "ProviderUnavailable",
    "RateLimited",
    "ResendResult",
    "ResendTooSoon",
    "Secret",
    "TenantMismatch",
    "UnexpectedResponse",
    "UserNotFound",
    "aresend_many",
    "from_config",
    "from_env",
    "known_providers",
    "load_profiles",
    "open_ledger",
    "register_provider",
    "resend_many",
]

_LAZY = {
    "Outcome": "bulk",
    "resend_many": "bulk",
    "aresend_many": "bulk",
    "Ledger": "ledger",
    "open_ledger": "ledger",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'invites' has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(f"invites.{module}"), name)
    globals()[name] = value
    return value
