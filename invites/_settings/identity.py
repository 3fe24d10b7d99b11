"""Whose users a provider reaches, and which user a written id names: the keys of every record.

Kept apart from the ledger and from pacing so that neither loads the other: the core builds a
shared pacer from the provider identity without importing the ledger package, and the ledger keys
its records by the same string. Both are computed from canonical forms, so that every spelling of
one vendor (``HTTP://Host:443/`` and ``http://host``) and of one user (an upper-case UUID and a
lower-case one) names one identity and one user.
"""

from __future__ import annotations

import json
import urllib.parse
from typing import TYPE_CHECKING, Any, Final

import attrs

if TYPE_CHECKING:
    from .._protocol import InviteProvider

__all__ = ["canonical_base_url", "canonical_user_id", "compute_identity", "provider_identity"]

_DEFAULT_PORTS: Final = {"http": 80, "https": 443}


def canonical_base_url(url: str) -> str:
    """``url`` in one spelling: scheme and host lower-cased, the scheme's default port dropped,
    trailing slashes stripped. The path keeps its case (servers may tell paths apart by it)."""
    parts = urllib.parse.urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:  # not a port: leave the URL to the settings' checks and to httpx
        return url.rstrip("/")
    host = (parts.hostname or "").lower()
    if ":" in host:  # an IPv6 literal
        host = f"[{host}]"
    if port is not None and port != _DEFAULT_PORTS.get(scheme):
        host = f"{host}:{port}"
    return urllib.parse.urlunsplit((scheme, host, parts.path.rstrip("/"), parts.query, ""))


def canonical_user_id(provider: object, user_id: str) -> str:
    """The one spelling of ``user_id`` the provider's vendor gives the user it names.

    A :class:`~invites.BaseProvider` asks its adapter (:meth:`~invites.BaseProvider.
    canonical_user_id`); any other provider's ids compare as written.
    """
    hook = getattr(provider, "canonical_user_id", None)
    if hook is None:
        return user_id
    canonical = hook(user_id)
    return canonical if isinstance(canonical, str) else user_id


def compute_identity(name: str, base_url: str | None, settings: Any) -> str:
    """The identity of a provider named ``name`` at ``base_url`` (already canonical) with
    ``settings``: vendor, base URL and every settings field marked ``identity=True``."""
    parts: dict[str, Any] = {"vendor": name}
    if base_url is not None:
        parts["base_url"] = base_url
    if settings is not None and attrs.has(type(settings)):
        for field in attrs.fields(type(settings)):
            if field.metadata.get("identity"):
                value = getattr(settings, field.name)
                if value is not None:
                    parts[field.name] = str(value)
    return json.dumps(parts, sort_keys=True, separators=(",", ":"))


def provider_identity(provider: InviteProvider) -> str:
    """Whose users a provider resends to, as a stable string: never its token or profile name.

    For a :class:`~invites.BaseProvider`: the identity it computed once when built, from its
    canonical base URL (:func:`canonical_base_url`, plus the vendor's own rules, such as
    SoftwareOne's ``/public/v1``), its vendor name and every settings field whose attrs metadata
    has ``identity=True`` (the tenant id, the account id). Any other provider: its ``name`` and
    base URL. Two providers with the same identity share ledger records and, through one
    ``rate_limit_store``, one pace; changing the tenant, account or base URL starts fresh ones.
    """
    identity = getattr(provider, "identity", None)
    if isinstance(identity, str):
        return identity
    base_url = getattr(provider, "base_url", None)
    canonical = canonical_base_url(base_url) if isinstance(base_url, str) else None
    return compute_identity(provider.name, canonical, getattr(provider, "settings", None))
