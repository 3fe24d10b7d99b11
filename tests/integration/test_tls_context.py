"""The library's own clients verify TLS with one context, loaded when a client first needs TLS.

Loading the CA bundle is most of what creating an httpx client costs: a client that only speaks
plain HTTP never loads it, and the sync client and every event loop's async client share it.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator

import pytest
import trustme
from _support.proxies import Origin, serving
from _support.vendors import vendor_config

import invites
from invites._http import transports as _http
from invites._http.transports import verifying_context
from invites.errors import ConnectionFailed
from invites.sandbox import TENANT_USER_INVITED, RunningSandbox

USER = "0badc0de-0000-4000-8000-000000000000"


@pytest.fixture
def origin() -> Iterator[Origin]:
    ca = trustme.CA()
    with serving(lambda loop: Origin(loop, ca)) as served:
        yield served


def _resend(url: str, asynchronous: bool, user: str = USER) -> invites.ResendResult:
    config = vendor_config("tenant_api", url, max_attempts=1)
    if not asynchronous:
        with invites.from_config(config) as provider:
            return provider.resend_invite(user)

    async def run() -> invites.ResendResult:
        async with invites.from_config(config) as provider:
            return await provider.aresend_invite(user)

    return asyncio.run(run())


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_plain_http_never_loads_the_tls_context(
    server: RunningSandbox, monkeypatch: pytest.MonkeyPatch, asynchronous: bool
) -> None:
    def refuse() -> ssl.SSLContext:
        raise AssertionError("the TLS context was loaded")

    monkeypatch.setattr(_http, "verifying_context", refuse)
    assert _resend(server.url, asynchronous, TENANT_USER_INVITED).status_code == 200


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_a_tls_context_that_cannot_be_loaded_is_a_connection_failure(
    monkeypatch: pytest.MonkeyPatch, asynchronous: bool
) -> None:
    def unreadable() -> ssl.SSLContext:
        raise FileNotFoundError("/nowhere/ca-bundle.pem")

    monkeypatch.setattr(_http, "verifying_context", unreadable)
    with pytest.raises(ConnectionFailed, match="nothing was sent"):
        _resend("https://127.0.0.1:9", asynchronous)


def test_the_shared_context_verifies_servers() -> None:
    context = verifying_context()
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname


@pytest.mark.parametrize("asynchronous", [False, True], ids=["sync", "async"])
def test_a_server_the_context_does_not_trust_is_refused_before_sending(
    origin: Origin, asynchronous: bool
) -> None:
    with pytest.raises(ConnectionFailed, match="nothing was sent"):
        _resend(origin.url, asynchronous)
    assert origin.requests == []


def test_every_client_takes_what_the_shared_context_trusts(origin: Origin) -> None:
    origin.ca.configure_trust(verifying_context())
    assert _resend(origin.url, asynchronous=False).status_code == 200
    assert _resend(origin.url, asynchronous=True).status_code == 200
    assert len(origin.requests) == 2
