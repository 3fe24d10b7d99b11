"""Whose users a provider reaches: the one identity the ledger and shared pacing key by.

Kept apart from both so that neither loads the other: the core builds a shared pacer from it
without importing the ledger package, and the ledger keys its records by the same string.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

import attrs

if TYPE_CHECKING:
    from ._protocol import InviteProvider

__all__ = ["provider_identity"]


def provider_identity(provider: InviteProvider) -> str:
    """Whose users a provider resends to, as a stable string: never its token or profile name.

    For a provider with ``settings`` (every :class:`~invites.BaseProvider`): its vendor name, its
    base URL and every settings field whose attrs metadata has ``identity=True`` (the tenant id,
    the account id). Any other provider: its ``name``. Two providers with the same identity share
    ledger records and, through one ``rate_limit_store``, one pace; changing the tenant, account or
    base URL starts fresh ones.
    """
    parts: dict[str, Any] = {"vendor": provider.name}
    base_url = getattr(provider, "base_url", None)
    if isinstance(base_url, str):
        parts["base_url"] = base_url.rstrip("/")
    settings = getattr(provider, "settings", None)
    if settings is not None and attrs.has(type(settings)):
        for field in attrs.fields(type(settings)):
            if field.metadata.get("identity"):
                value = getattr(settings, field.name)
                if value is not None:
                    parts[field.name] = str(value)
    return json.dumps(parts, sort_keys=True, separators=(",", ":"))
