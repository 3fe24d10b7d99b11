"""Shared test helpers: configurations for each vendor pointing at a sandbox."""

from __future__ import annotations

from typing import Any

from invites.sandbox import (
    ECOSUITE_TOKEN,
    SOFTWAREONE_ACCOUNT_ID,
    SOFTWAREONE_TOKEN,
    TENANT_API_KEY,
    TENANT_ID,
)

VENDORS = ("ecosuite", "softwareone", "tenant_api")


def vendor_config(vendor: str, base_url: str, **overrides: Any) -> dict[str, Any]:
    """A working configuration for ``vendor`` against a sandbox at ``base_url``.

    SoftwareOne uses the current endpoint unless ``account_id=None`` is passed.
    """
    config: dict[str, Any]
    if vendor == "ecosuite":
        config = {"provider": "ecosuite", "token": ECOSUITE_TOKEN}
    elif vendor == "softwareone":
        config = {
            "provider": "softwareone",
            "token": SOFTWAREONE_TOKEN,
            "account_id": SOFTWAREONE_ACCOUNT_ID,
        }
    elif vendor == "tenant_api":
        config = {"provider": "tenant_api", "token": TENANT_API_KEY, "tenant_id": TENANT_ID}
    else:
        raise ValueError(vendor)
    config["base_url"] = base_url
    config.update(overrides)
    return {key: value for key, value in config.items() if value is not None}
