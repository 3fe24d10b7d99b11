"""The library's own clients verify TLS with one context, loaded at the first TLS connection.

Loading the CA bundle is most of what creating an httpx client costs, so a provider's clients
defer it until a connection needs TLS, and the sync client and every event loop's async client
share the one context.
"""

from __future__ import annotations

import asyncio
import ssl
from typing import Any

import httpcore
import httpx
from support import vendor_config

import invites
from invites._pool import verifying_context

HTTPS = httpcore.Origin(b"https", b"vendor.invalid", 443)
HTTP = httpcore.Origin(b"http", b"vendor.invalid", 80)


def _pool(client: httpx.Client | httpx.AsyncClient) -> Any:
    return client._transport._pool  # type: ignore[union-attr]


def _provider(base_url: str) -> invites.BaseProvider:
    return invites.from_config(vendor_config("tenant_api", base_url))


def test_a_new_client_holds_no_tls_context_and_plain_http_never_loads_one() -> None:
    with _provider("http://127.0.0.1:9") as provider:
        pool = _pool(provider._transport.client())
        assert pool._ssl_context is None
        pool.create_connection(HTTP)
        assert pool._ssl_context is None


def test_the_first_tls_connection_takes_the_shared_verifying_context() -> None:
    with _provider("https://vendor.invalid") as provider:
        pool = _pool(provider._transport.client())
        pool.create_connection(HTTPS)
        context = pool._ssl_context
    assert context is verifying_context()
    assert context.verify_mode == ssl.CERT_REQUIRED
    assert context.check_hostname


def test_every_event_loops_client_shares_the_sync_clients_context() -> None:
    provider = _provider("https://vendor.invalid")

    async def loop_context() -> object:
        try:
            pool = _pool(provider._transport.async_client())
            pool.create_connection(HTTPS)
            return pool._ssl_context
        finally:
            await provider.aclose()

    first = asyncio.run(loop_context())
    provider = _provider("https://vendor.invalid")
    second = asyncio.run(loop_context())
    assert first is second is verifying_context()
