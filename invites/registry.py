"""Provider names and the classes behind them.

Built-in vendors are imported only when first used. Third parties add theirs with
:func:`register_provider`, or declare them in the ``invites.providers`` entry-point group::

    [project.entry-points."invites.providers"]
    acme = "acme_invites:AcmeProvider"
"""

from __future__ import annotations

import importlib
import threading
from typing import TYPE_CHECKING, Final

if TYPE_CHECKING:
    from ._delivery.provider import BaseProvider

__all__ = ["ENTRY_POINT_GROUP", "known_providers", "provider_class", "register_provider"]

ENTRY_POINT_GROUP: Final = "invites.providers"

_BUILTIN: Final = {
    "ecosuite": "invites.providers.ecosuite:EcosuiteProvider",
    "softwareone": "invites.providers.softwareone:SoftwareOneProvider",
    "tenant_api": "invites.providers.tenant_api:TenantApiProvider",
}

_lock = threading.Lock()
_registered: dict[str, type[BaseProvider] | str] = {}
_entry_points: dict[str, str] | None = None


def register_provider(name: str, provider: type[BaseProvider] | str) -> None:
    """Make ``provider`` (a class, or ``"module:Class"``) available as ``provider = name``."""
    if not isinstance(name, str) or not name.isidentifier():
        raise ValueError(f"a provider name must be an identifier, got {name!r}")
    with _lock:
        _registered[name] = provider


def _plugin_entry_points() -> dict[str, str]:
    global _entry_points
    if _entry_points is None:
        from importlib.metadata import entry_points

        _entry_points = {ep.name: ep.value for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return _entry_points


def known_providers() -> list[str]:
    """Every provider name that can be configured, sorted."""
    return sorted({*_BUILTIN, *_registered, *_plugin_entry_points()})


def provider_class(name: str) -> type[BaseProvider]:
    """The class for ``name``; raises ``LookupError`` for an unknown name."""
    target = _registered.get(name) or _BUILTIN.get(name)
    if target is None:
        target = _plugin_entry_points().get(name)
    if target is None:
        raise LookupError(name)
    if isinstance(target, str):
        module_name, _, attr = target.partition(":")
        loaded: type[BaseProvider] = getattr(importlib.import_module(module_name), attr)
        return loaded
    return target
