"""The profile keys that name shared servers: ``ledger`` and ``rate_limit_store``."""

from __future__ import annotations

import pytest
from _support.vendors import vendor_config

import invites
from invites import ConfigurationError

SECRET = "test-password-not-real"


@pytest.mark.parametrize(
    "ledger",
    [
        "ledger.db",
        "/var/lib/invites/ledger.db",
        "sqlite:///ledger.db",
        "postgresql://invites@db.example:5432/invites?schema=acme",
        "postgres://invites@db.example/invites",
    ],
)
def test_a_ledger_is_a_path_or_a_known_url(ledger: str) -> None:
    with invites.from_config(vendor_config("ecosuite", "https://e.example", ledger=ledger)) as p:
        assert p.settings.ledger == ledger


@pytest.mark.parametrize(
    ("ledger", "problem"),
    [("mysql://db/x", "must be a file path or a URL"), ("", "must not be empty"), (3, "")],
)
def test_a_bad_ledger_is_reported_with_its_key(ledger: object, problem: str) -> None:
    with pytest.raises(ConfigurationError, match=f"ledger: .*{problem}") as caught:
        invites.from_config(vendor_config("ecosuite", "https://e.example", ledger=ledger))
    assert "mysql://db" not in str(caught.value)  # values are never echoed


def test_a_bad_rate_limit_store_is_reported_with_its_key() -> None:
    config = vendor_config("ecosuite", "https://e.example", rate_limit_store="http://r.example")
    with pytest.raises(ConfigurationError, match="rate_limit_store: must be a redis://"):
        invites.from_config(config)


def test_passwords_in_server_urls_never_show_in_the_settings_repr() -> None:
    config = vendor_config(
        "ecosuite",
        "https://e.example",
        ledger=f"postgresql://invites:{SECRET}@db.example/invites",
        rate_limit_store=f"redis://:{SECRET}@cache.example:6380/2",
    )
    with invites.from_config(config) as provider:
        shown = repr(provider.settings)
    assert SECRET not in shown
    assert "postgresql://invites:***@db.example/invites" in shown
    assert "redis://cache.example:6380/2" in shown


def test_the_ledger_comes_from_the_environment_too() -> None:
    environ = {
        "INVITES_PROVIDER": "ecosuite",
        "INVITES_TOKEN": "test-token-not-real",
        "INVITES_LEDGER": "postgresql://invites@db.example/invites",
    }
    with invites.from_env(environ) as provider:
        assert provider.settings.ledger == "postgresql://invites@db.example/invites"
