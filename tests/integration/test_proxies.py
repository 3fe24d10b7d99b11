"""Proxies: the provider's own clients go through the one the environment or the ``proxy``
setting names, by httpx's rules; a proxy that refuses the tunnel is a connection failure.

Against a real forward proxy and a TLS vendor on loopback (tests/_support/proxies.py), sync and
async, with the provider's own clients and with a caller's.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import ssl
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import trustme
from _support.proxies import ForwardProxy, Origin, serving
from _support.vendors import vendor_config

import invites
from invites._http.proxies import Route
from invites._http.transports import verifying_context
from invites.errors import ConfigurationError, ConnectionFailed
from invites.sandbox import TENANT_USER_INVITED, RunningSandbox, Sandbox

USER = "0badc0de-0000-4000-8000-000000000000"
MODES = ["sync", "async"]
PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY")


@pytest.fixture(autouse=True)
def no_proxy_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    made = trustme.CA()
    made.configure_trust(verifying_context())  # the provider's own clients trust it
    return made


@pytest.fixture
def origin(ca: trustme.CA) -> Iterator[Origin]:
    with serving(lambda loop: Origin(loop, ca)) as served:
        yield served


@pytest.fixture
def proxy() -> Iterator[ForwardProxy]:
    with serving(ForwardProxy) as served:
        yield served


def _resend(
    config: dict[str, Any], mode: str, client: Any = None, user: str = USER
) -> invites.ResendResult:
    """One resend; a caller's ``client`` is the caller's to close, so it is closed here after."""
    if mode == "sync":
        with contextlib.ExitStack() as stack:
            if client is not None:
                stack.enter_context(client)
            with invites.from_config(config, client=client) as provider:
                return provider.resend_invite(user)

    async def run() -> invites.ResendResult:
        async with contextlib.AsyncExitStack() as stack:
            if client is not None:
                await stack.enter_async_context(client)
            async with invites.from_config(config, async_client=client) as provider:
                return await provider.aresend_invite(user)

    return asyncio.run(run())


def _callers_client(mode: str, proxy: str, ca: trustme.CA) -> Any:
    context = ssl.create_default_context()
    ca.configure_trust(context)
    kind = httpx.Client if mode == "sync" else httpx.AsyncClient
    return kind(proxy=proxy, verify=context)


@pytest.mark.parametrize("mode", MODES)
def test_with_https_proxy_set_a_resend_goes_through_the_proxy(
    origin: Origin, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    result = _resend(vendor_config("tenant_api", origin.url), mode)
    assert result.status_code == 200
    assert proxy.seen == [f"CONNECT 127.0.0.1:{origin.port} HTTP/1.1"]
    assert len(origin.requests) == 1


@pytest.mark.parametrize("mode", MODES)
def test_http_proxy_forwards_a_plain_http_resend(
    server: RunningSandbox,
    sandbox: Sandbox,
    proxy: ForwardProxy,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
) -> None:
    monkeypatch.setenv("http_proxy", proxy.url)
    result = _resend(vendor_config("tenant_api", server.url), mode, user=TENANT_USER_INVITED)
    assert result.status_code == 200
    assert len(proxy.seen) == 1
    assert proxy.seen[0].startswith(f"POST {server.url}/")
    assert sandbox.emails_sent(TENANT_USER_INVITED) == 1


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("no_proxy", ["127.0.0.1", "*", "localhost,127.0.0.1"])
def test_no_proxy_bypasses_the_proxy(
    origin: Origin, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch, mode: str, no_proxy: str
) -> None:
    monkeypatch.setenv("ALL_PROXY", proxy.url)
    monkeypatch.setenv("NO_PROXY", no_proxy)
    assert _resend(vendor_config("tenant_api", origin.url), mode).status_code == 200
    assert proxy.seen == []
    assert len(origin.requests) == 1


@pytest.mark.parametrize("mode", MODES)
def test_the_proxy_setting_overrides_the_environment(
    origin: Origin, proxy: ForwardProxy, monkeypatch: pytest.MonkeyPatch, mode: str
) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # nothing listens there
    monkeypatch.setenv("NO_PROXY", "127.0.0.1")
    config = vendor_config("tenant_api", origin.url, proxy=proxy.url)
    assert _resend(config, mode).status_code == 200
    assert len(proxy.seen) == 1


@pytest.mark.parametrize("mode", MODES)
def test_a_proxy_url_s_credentials_are_sent_to_the_proxy_and_never_shown(
    origin: Origin, proxy: ForwardProxy, mode: str
) -> None:
    url = proxy.url.replace("http://", "http://agent:fake-proxy-secret@")
    config = vendor_config("tenant_api", origin.url, proxy=url)
    assert _resend(config, mode).status_code == 200
    assert proxy.auth == ["Basic " + base64.b64encode(b"agent:fake-proxy-secret").decode()]
    with invites.from_config(config) as provider:
        assert "fake-proxy-secret" not in repr(provider.settings)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("status", [403, 407, 502])
@pytest.mark.parametrize("whose", ["own", "caller's"])
def test_a_refused_tunnel_is_a_retryable_connection_failure(
    origin: Origin,
    proxy: ForwardProxy,
    ca: trustme.CA,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
    status: int,
    whose: str,
) -> None:
    proxy.refuse = status
    monkeypatch.setenv("HTTPS_PROXY", proxy.url)
    client = _callers_client(mode, proxy.url, ca) if whose == "caller's" else None
    config = vendor_config("tenant_api", origin.url, max_attempts=2)
    with pytest.raises(ConnectionFailed) as caught:
        _resend(config, mode, client)
    assert caught.value.retryable
    assert "nothing was sent" in caught.value.message
    assert ("proxy's credentials" in caught.value.message) is (status == 407)
    assert len(proxy.seen) == 2  # retried
    assert origin.requests == []


@pytest.mark.parametrize("mode", MODES)
def test_a_forward_proxy_s_407_is_a_connection_failure(
    server: RunningSandbox,
    sandbox: Sandbox,
    proxy: ForwardProxy,
    monkeypatch: pytest.MonkeyPatch,
    mode: str,
) -> None:
    proxy.refuse = 407
    monkeypatch.setenv("HTTP_PROXY", proxy.url)
    with pytest.raises(ConnectionFailed, match="proxy's credentials"):
        _resend(vendor_config("tenant_api", server.url), mode, user=TENANT_USER_INVITED)
    assert sandbox.emails_sent(TENANT_USER_INVITED) == 0


@pytest.mark.parametrize("mode", MODES)
def test_a_caller_s_client_goes_through_its_own_proxy(
    origin: Origin, proxy: ForwardProxy, ca: trustme.CA, mode: str
) -> None:
    client = _callers_client(mode, proxy.url, ca)
    assert _resend(vendor_config("tenant_api", origin.url), mode, client).status_code == 200
    assert len(proxy.seen) == 1
    assert len(origin.requests) == 1


@pytest.mark.parametrize("mode", MODES)
def test_the_deadline_holds_through_a_stalled_tunnel(
    origin: Origin, proxy: ForwardProxy, mode: str
) -> None:
    proxy.stall = True
    config = vendor_config("tenant_api", origin.url, proxy=proxy.url, timeout=30, deadline=1)
    started = time.monotonic()
    with pytest.raises(ConnectionFailed, match="nothing was sent"):
        _resend(config, mode)
    assert time.monotonic() - started < 5
    assert origin.requests == []


@pytest.mark.parametrize(
    ("proxy", "problem"),
    [
        ("socks5://127.0.0.1:1080", "http:// proxies only"),
        ("https://127.0.0.1:3128", "http:// proxies only"),
        ("http://user:fake-proxy-secret@[::1", "not a valid proxy URL"),
        ("http://", "names no proxy host"),
    ],
)
def test_a_proxy_setting_that_cannot_be_used_is_refused_at_construction(
    proxy: str, problem: str
) -> None:
    with pytest.raises(ConfigurationError, match="proxy") as caught:
        invites.from_config(vendor_config("tenant_api", "https://vendor.invalid", proxy=proxy))
    assert problem in str(caught.value)
    assert "fake-proxy-secret" not in str(caught.value)


def test_a_proxy_variable_that_cannot_be_used_is_refused_at_construction(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("ALL_PROXY", "socks5://127.0.0.1:1080")
    with pytest.raises(ConfigurationError, match="ALL_PROXY names a socks5:// proxy"):
        invites.from_config(vendor_config("tenant_api", "https://vendor.invalid"))


@pytest.mark.parametrize(
    ("no_proxy", "url", "bypassed"),
    [
        ("example.com", "https://example.com/", True),
        ("example.com", "https://api.example.com/", True),
        ("example.com", "https://badexample.com/", False),
        (".example.com", "https://example.com/", False),
        (".example.com", "https://api.example.com/", True),
        ("example.com:8443", "https://example.com:8443/", True),
        ("example.com:8443", "https://example.com/", False),
        ("10.0.0.1", "https://10.0.0.1/", True),
        ("10.0.0.1", "https://10.0.0.10/", False),
        ("[::1]:443", "https://[::1]/", True),
        ("localhost", "http://localhost:8000/", True),
        ("EXAMPLE.com", "https://Example.COM/", True),
        ("*", "https://anything.test/", True),
        ("", "https://example.com/", False),
    ],
)
def test_no_proxy_follows_httpx_s_rules(
    monkeypatch: pytest.MonkeyPatch, no_proxy: str, url: str, bypassed: bool
) -> None:
    monkeypatch.setenv("ALL_PROXY", "http://proxy.invalid:3128")
    monkeypatch.setenv("NO_PROXY", no_proxy)
    proxy = Route().proxy_for(httpx.URL(url))
    assert (proxy is None) is bypassed
    if proxy is not None:
        assert repr(proxy) == "Proxy('http://proxy.invalid:3128')"


def test_each_scheme_takes_its_own_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTP_PROXY", "plain.invalid:3128")  # no scheme: http://
    monkeypatch.setenv("HTTPS_PROXY", "http://secure.invalid:3128")
    route = Route()
    assert repr(route.proxy_for(httpx.URL("http://vendor.test/"))) == (
        "Proxy('http://plain.invalid:3128')"
    )
    assert repr(route.proxy_for(httpx.URL("https://vendor.test/"))) == (
        "Proxy('http://secure.invalid:3128')"
    )
