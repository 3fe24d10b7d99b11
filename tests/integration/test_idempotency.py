"""Single resends with an idempotency key: sent at most once per key, replayed from the ledger.

Every test drives the tenant API through the sandbox over a real socket and counts the emails
and requests the sandbox saw.
"""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path
from typing import Any

import pytest
from _support.vendors import vendor_config

import invites
from invites import (
    AlreadyVerified,
    ConfigurationError,
    OutcomeUnknown,
    ResendResult,
    UserNotFound,
)
from invites.ledger import open_ledger
from invites.providers.tenant_api import TenantApiSettings
from invites.sandbox import (
    TENANT_USER_INVITED,
    TENANT_USER_INVITED_2,
    TENANT_USER_UNKNOWN,
    TENANT_USER_VERIFIED,
    Fault,
    RunningSandbox,
    Sandbox,
)

MODES = ("sync", "async")


def resend(mode: str, provider: Any, user_id: str, key: str | None) -> ResendResult:
    if mode == "sync":
        result: ResendResult = provider.resend_invite(user_id, idempotency_key=key)
        return result

    async def once() -> ResendResult:
        result: ResendResult = await provider.aresend_invite(user_id, idempotency_key=key)
        return result

    return asyncio.run(once())  # the provider works from one event loop after another


def provider_for(server: RunningSandbox, tmp_path: Path, **overrides: Any) -> Any:
    config = vendor_config(
        "tenant_api", server.url, ledger=str(tmp_path / "ledger.db"), **overrides
    )
    return invites.from_config(config)


@pytest.mark.parametrize("mode", MODES)
def test_a_key_sends_once_and_replays_the_result(
    mode: str, server: RunningSandbox, sandbox: Sandbox, tmp_path: Path
) -> None:
    with provider_for(server, tmp_path) as provider:
        first = resend(mode, provider, TENANT_USER_INVITED, "welcome-1")
        again = resend(mode, provider, TENANT_USER_INVITED, "welcome-1")
        other_key = resend(mode, provider, TENANT_USER_INVITED, "welcome-2")
        other_user = resend(mode, provider, TENANT_USER_INVITED_2, "welcome-1")

    assert again == first
    assert other_key.user_id == TENANT_USER_INVITED
    assert other_user.user_id == TENANT_USER_INVITED_2
    assert sandbox.emails_sent(TENANT_USER_INVITED) == 2  # one per key
    assert sandbox.emails_sent(TENANT_USER_INVITED_2) == 1
    assert sandbox.request_count == 3


@pytest.mark.parametrize("mode", MODES)
def test_the_key_survives_the_provider(
    mode: str, server: RunningSandbox, sandbox: Sandbox, tmp_path: Path
) -> None:
    for _ in range(3):
        with provider_for(server, tmp_path) as provider:
            resend(mode, provider, TENANT_USER_INVITED, "welcome-1")

    assert sandbox.emails_sent(TENANT_USER_INVITED) == 1


@pytest.mark.parametrize("mode", MODES)
def test_without_a_key_nothing_changes(
    mode: str, server: RunningSandbox, sandbox: Sandbox, tmp_path: Path
) -> None:
    with provider_for(server, tmp_path) as provider:
        resend(mode, provider, TENANT_USER_INVITED, None)
        resend(mode, provider, TENANT_USER_INVITED, None)

    assert sandbox.emails_sent(TENANT_USER_INVITED) == 2
    with open_ledger(tmp_path / "ledger.db") as ledger:
        assert list(ledger.records()) == []


@pytest.mark.parametrize(
    ("user_id", "error"),
    [(TENANT_USER_UNKNOWN, UserNotFound), (TENANT_USER_VERIFIED, AlreadyVerified)],
)
@pytest.mark.parametrize("mode", MODES)
def test_a_recorded_error_is_raised_again_without_a_request(
    mode: str,
    user_id: str,
    error: type[Exception],
    server: RunningSandbox,
    sandbox: Sandbox,
    tmp_path: Path,
) -> None:
    with provider_for(server, tmp_path) as provider:
        with pytest.raises(error) as first:
            resend(mode, provider, user_id, "k")
        with pytest.raises(error) as again:
            resend(mode, provider, user_id, "k")

    assert str(again.value) == str(first.value)
    assert sandbox.request_count == 1


@pytest.mark.parametrize("mode", MODES)
def test_an_unknown_outcome_is_never_sent_again(
    mode: str, server: RunningSandbox, sandbox: Sandbox, tmp_path: Path
) -> None:
    sandbox.inject(TENANT_USER_INVITED, Fault.DROP_AFTER)  # the vendor acted, the answer is lost
    with provider_for(server, tmp_path) as provider:
        with pytest.raises(OutcomeUnknown):
            resend(mode, provider, TENANT_USER_INVITED, "k")
        with pytest.raises(OutcomeUnknown, match="outcome is unknown"):
            resend(mode, provider, TENANT_USER_INVITED, "k")

    assert sandbox.emails_sent(TENANT_USER_INVITED) == 1
    assert sandbox.request_count == 1


def test_racing_threads_with_one_key_send_once(
    server: RunningSandbox, sandbox: Sandbox, tmp_path: Path
) -> None:
    sandbox.inject(TENANT_USER_INVITED, Fault.SLOW)  # keeps the first resend in flight
    start = threading.Barrier(8)
    answers: list[ResendResult | Exception] = []

    with provider_for(server, tmp_path) as provider:

        def call() -> None:
            start.wait()
            try:
                answers.append(provider.resend_invite(TENANT_USER_INVITED, idempotency_key="k"))
            except OutcomeUnknown as exc:
                answers.append(exc)

        threads = [threading.Thread(target=call) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        settled = provider.resend_invite(TENANT_USER_INVITED, idempotency_key="k")

    assert sandbox.emails_sent(TENANT_USER_INVITED) == 1
    assert len(answers) == 8
    results = [a for a in answers if isinstance(a, ResendResult)]
    assert results
    assert all(a == settled for a in results)
    assert all("in flight elsewhere" in str(a) for a in answers if isinstance(a, Exception))


def test_a_key_without_a_ledger_is_a_configuration_error(
    server: RunningSandbox, sandbox: Sandbox
) -> None:
    with (
        invites.from_config(vendor_config("tenant_api", server.url)) as provider,
        pytest.raises(ConfigurationError, match="idempotency_key needs a ledger"),
    ):
        provider.resend_invite(TENANT_USER_INVITED, idempotency_key="k")

    assert sandbox.request_count == 0


def test_a_ledger_argument_is_used_and_left_open(
    server: RunningSandbox, sandbox: Sandbox, tmp_path: Path
) -> None:
    from invites.providers.tenant_api import TenantApiProvider

    ledger = open_ledger(tmp_path / "shared.db")
    config = vendor_config("tenant_api", server.url)
    settings = _tenant_settings(config)
    for _ in range(2):
        with TenantApiProvider(settings, ledger=ledger) as provider:
            provider.resend_invite(TENANT_USER_INVITED, idempotency_key="k")

    assert sandbox.emails_sent(TENANT_USER_INVITED) == 1
    assert [r.key.run for r in ledger.records()] == ["k"]  # still open after both closed
    ledger.close()
    with pytest.raises(ConfigurationError, match="passed as an argument"):
        TenantApiProvider(
            _tenant_settings({**config, "ledger": str(tmp_path / "x.db")}),
            ledger=open_ledger(tmp_path / "y.db"),
        )


@pytest.mark.parametrize("key", ["", "   ", 7])
def test_an_empty_key_is_refused_before_sending(
    key: Any, server: RunningSandbox, sandbox: Sandbox, tmp_path: Path
) -> None:
    with (
        provider_for(server, tmp_path) as provider,
        pytest.raises(ValueError, match="idempotency_key"),
    ):
        provider.resend_invite(TENANT_USER_INVITED, idempotency_key=key)

    assert sandbox.request_count == 0


def test_a_bad_ledger_setting_is_a_configuration_error(tmp_path: Path) -> None:
    config = vendor_config("tenant_api", "https://tenant.example", ledger="mysql://db/x")
    with pytest.raises(ConfigurationError, match="ledger: must be a file path or a URL"):
        invites.from_config(config)


def _tenant_settings(config: dict[str, Any]) -> TenantApiSettings:
    settings = invites.from_config(config).settings
    assert isinstance(settings, TenantApiSettings)
    return settings
