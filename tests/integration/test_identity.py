"""One identity per vendor and one id per user, whatever their spelling.

Every spelling of one base URL gives one provider identity and one shared-pacing key; ids
compare as each vendor says (UUIDs without case), in the ledger's keys, the bulk runner's
repeated-id check and every outcome.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from _support.vendors import vendor_config

import invites
from invites._pacing.redis_store import RedisPacer
from invites._settings.identity import canonical_base_url
from invites.ledger import Ledger, open_ledger, provider_identity
from invites.sandbox import (
    SOFTWAREONE_USER_INVITED,
    TENANT_USER_INVITED,
    RunningSandbox,
    Sandbox,
)

STORE = "redis://127.0.0.1:6379/0"  # never contacted: building a shared pacer connects to nothing


def pacing_key(provider: invites.BaseProvider) -> str:
    pacer = provider._pacer
    assert isinstance(pacer, RedisPacer)
    return pacer.key


def spellings(vendor: str) -> list[str]:
    base = ["https://api.example.com", "HTTPS://API.Example.COM", "https://api.example.com/"]
    base += ["https://api.example.com:443", "Https://api.EXAMPLE.com:443//"]
    if vendor == "softwareone":
        base += ["https://api.example.com/public", "https://API.example.com:443/public/v1/"]
    return base


@pytest.mark.parametrize("vendor", ["ecosuite", "softwareone", "tenant_api"])
def test_every_spelling_of_one_vendor_gives_one_identity_and_one_pacing_key(vendor: str) -> None:
    providers = [
        invites.from_config(vendor_config(vendor, url, rate_limit_store=STORE))
        for url in spellings(vendor)
    ]
    try:
        assert {provider_identity(p) for p in providers} == {providers[0].identity}
        assert {pacing_key(p) for p in providers} == {pacing_key(providers[0])}
        assert {p.base_url for p in providers} == {"https://api.example.com"}
    finally:
        for provider in providers:
            provider.close()


@pytest.mark.parametrize(
    "other",
    [
        "https://api.example.com:8443",
        "http://api.example.com",  # another scheme: another service
        "https://api2.example.com",
        "https://api.example.com/Tenant",  # a path keeps its case
        "https://api.example.com/public/v2",
    ],
)
def test_another_endpoint_is_another_identity(other: str) -> None:
    config = vendor_config("softwareone", "https://api.example.com", rate_limit_store=STORE)
    with (
        invites.from_config(config) as one,
        invites.from_config({**config, "base_url": other, "allow_insecure_http": True}) as two,
    ):
        assert provider_identity(one) != provider_identity(two)
        assert pacing_key(one) != pacing_key(two)


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        ("HTTP://LOCALHOST:80/", "http://localhost"),
        ("http://[::1]:8080/x/", "http://[::1]:8080/x"),
        ("https://h.example:443/A/b//", "https://h.example/A/b"),
        ("https://h.example:80", "https://h.example:80"),
    ],
)
def test_canonical_base_url(url: str, canonical: str) -> None:
    assert canonical_base_url(url) == canonical


def test_canonical_user_ids_per_vendor(server: RunningSandbox) -> None:
    upper = TENANT_USER_INVITED.upper()
    with (
        invites.from_config(vendor_config("tenant_api", server.url)) as tenant,
        invites.from_config(vendor_config("softwareone", server.url)) as softwareone,
        invites.from_config(vendor_config("ecosuite", server.url)) as ecosuite,
    ):
        assert tenant.canonical_user_id(upper) == TENANT_USER_INVITED
        assert tenant.canonical_user_id("not-a-uuid") == "not-a-uuid"  # the flow refuses it
        assert softwareone.canonical_user_id("USR-aB12") == "USR-aB12"
        assert ecosuite.canonical_user_id("Eco-User-1") == "Eco-User-1"


def three_cases(user_id: str) -> list[str]:
    return [user_id.upper(), user_id.lower(), user_id[:4].upper() + user_id[4:].lower()]


def test_one_run_and_a_rerun_with_one_uuid_in_three_cases_email_once(
    server: RunningSandbox, sandbox: Sandbox, tmp_path: Path
) -> None:
    ids = three_cases(TENANT_USER_INVITED)
    with (
        open_ledger(tmp_path / "ledger.db") as ledger,
        invites.from_config(vendor_config("tenant_api", server.url)) as provider,
    ):
        first = list(invites.resend_many(provider, ids, ledger=ledger, run="r", concurrency=3))
        again = list(invites.resend_many(provider, ids[::-1], ledger=ledger, run="r"))
        records = list(ledger.records())

    assert sandbox.emails_snapshot() == {TENANT_USER_INVITED: 1}
    assert sorted(o.input_id for o in first) == sorted(ids)  # outcomes match what was given
    assert {o.user_id for o in first + again} == {TENANT_USER_INVITED}
    assert {o.status for o in first + again} == {"sent"}
    assert [o.skipped for o in first].count(False) == 1
    assert all(o.skipped for o in again)
    assert [r.key.user_id for r in records] == [TENANT_USER_INVITED]


def test_async_bulk_compares_canonical_ids(
    server: RunningSandbox, sandbox: Sandbox, tmp_path: Path
) -> None:
    ids = three_cases(TENANT_USER_INVITED)

    async def run(ledger: Ledger) -> list[invites.Outcome]:
        async with invites.from_config(vendor_config("tenant_api", server.url)) as provider:
            stream = invites.aresend_many(provider, ids, ledger=ledger, run="r", concurrency=3)
            return [outcome async for outcome in stream]

    with open_ledger(tmp_path / "ledger.db") as ledger:
        outcomes = asyncio.run(run(ledger))
    assert sandbox.emails_snapshot() == {TENANT_USER_INVITED: 1}
    assert {o.user_id for o in outcomes} == {TENANT_USER_INVITED}
    assert sorted(o.input_id for o in outcomes) == sorted(ids)


def test_idempotency_key_replays_for_another_spelling(
    server: RunningSandbox, sandbox: Sandbox, tmp_path: Path
) -> None:
    config = vendor_config("tenant_api", server.url, ledger=str(tmp_path / "ledger.db"))
    with invites.from_config(config) as provider:
        for user_id in three_cases(TENANT_USER_INVITED):
            result = provider.resend_invite(user_id, idempotency_key="welcome")
            assert result.user_id == TENANT_USER_INVITED
    assert sandbox.emails_snapshot() == {TENANT_USER_INVITED: 1}


def test_softwareone_ids_keep_their_case(
    server: RunningSandbox, sandbox: Sandbox, tmp_path: Path
) -> None:
    with (
        open_ledger(tmp_path / "ledger.db") as ledger,
        invites.from_config(vendor_config("softwareone", server.url + "/public/v1")) as provider,
    ):
        outcomes = list(
            invites.resend_many(
                provider,
                [SOFTWAREONE_USER_INVITED, SOFTWAREONE_USER_INVITED.lower()],
                ledger=ledger,
                run="r",
            )
        )
    assert sandbox.emails_sent(SOFTWAREONE_USER_INVITED) == 1
    assert [o.user_id for o in outcomes] == [o.input_id for o in outcomes]
    assert not any(o.skipped for o in outcomes)  # two ids: the vendor answers for each
