"""What configuration and transport refuse: insecure or odd base URLs, non-UUID tenants, header
injection through tokens or prefixes, TLS switched off, and redirects to another origin.

Nothing here touches the network: requests go to an ``httpx.MockTransport`` that records them.
"""

from __future__ import annotations

import asyncio
import warnings
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from _support.vendors import VENDORS, vendor_config

import invites
from invites import (
    AuthenticationFailed,
    ConfigurationError,
    Invitee,
    InviteError,
    UnexpectedResponse,
)
from invites._http.transports import AsyncTransport, SyncTransport

TENANT = "f1d47ff5-fb86-4c2c-a055-bd273415770b"
TENANT_USER = "a3e8b3cd-92f7-4c96-8976-5afdb2e921bc"
TOKEN = "FAKE-CONFIG-TOKEN-5c1e"

#: A user each vendor resends to in one request (Ecosuite gets a full invitee: no profile read).
TARGETS: dict[str, Invitee | str] = {
    "ecosuite": Invitee(user_id="eco-1", email="ada@example.com", first_name="A", last_name="L"),
    "softwareone": "USR-0000-0001",
    "tenant_api": TENANT_USER,
}
OK_BODIES: dict[str, Any] = {
    "ecosuite": {},
    "softwareone": {"id": "AUSR-0000-0001", "invitation": {"status": "Invited"}},
    "tenant_api": {"message": "Invite resent."},
}


class Recorder:
    """An httpx client over a MockTransport that records requests and answers with ``answer``."""

    def __init__(self, answer: Callable[[httpx.Request], httpx.Response]) -> None:
        self.sent: list[httpx.Request] = []
        self.answer = answer

    def handler(self, request: httpx.Request) -> httpx.Response:
        self.sent.append(request)
        return self.answer(request)

    def client(self, **kwargs: Any) -> httpx.Client:
        return httpx.Client(transport=httpx.MockTransport(self.handler), **kwargs)


def _ok(vendor: str) -> Recorder:
    return Recorder(lambda request: httpx.Response(200, json=OK_BODIES[vendor]))


def _config(vendor: str, base_url: str = "https://vendor.example", **overrides: Any) -> Any:
    overrides.setdefault("token", TOKEN)
    if vendor == "tenant_api":
        overrides.setdefault("tenant_id", TENANT)
    return vendor_config(vendor, base_url, **overrides)


def _resend(
    mode: str, config: Any, transport: httpx.MockTransport, target: Invitee | str, **client: Any
) -> invites.ResendResult:
    """Resend through ``transport`` with the sync or the async driver."""
    if mode == "sync":
        provider = invites.from_config(config, client=httpx.Client(transport=transport, **client))
        return provider.resend_invite(target)
    async_client = httpx.AsyncClient(transport=transport, **client)
    provider = invites.from_config(config, async_client=async_client)
    return asyncio.run(provider.aresend_invite(target))


def _problems(config: Any, **kwargs: Any) -> list[str]:
    with pytest.raises(ConfigurationError) as caught:
        invites.from_config(config, **kwargs)
    return caught.value.problems


# -- base_url --------------------------------------------------------------------------------------

ALLOWED_BASE_URLS = [
    "https://vendor.example",
    "https://vendor.example/",
    "https://vendor.example:8443/api",
    "https://VENDOR.example",
    "http://127.0.0.1:8000",
    "http://127.255.255.254",
    "http://[::1]:8080",
    "http://localhost",
    "http://LOCALHOST:9000",
]


@pytest.mark.parametrize("base_url", ALLOWED_BASE_URLS)
@pytest.mark.parametrize("vendor", VENDORS)
def test_https_and_loopback_http_are_accepted_and_used(vendor: str, base_url: str) -> None:
    recorder = _ok(vendor)
    provider = invites.from_config(_config(vendor, base_url), client=recorder.client())
    provider.resend_invite(TARGETS[vendor])
    (request,) = recorder.sent
    configured = httpx.URL(base_url)
    assert (request.url.scheme, request.url.host, request.url.port) == (
        configured.scheme,
        configured.host,
        configured.port,
    )


#: (base_url, why, and for a plain-http URL to another host, the https rule as well)
REFUSED_BASE_URLS: list[tuple[str, ...]] = [
    ("http://vendor.example", "must use https://"),
    ("http://10.0.0.1", "must use https://"),
    ("http://0.0.0.0:8000", "must use https://"),
    ("http://localhost.evil.example", "must use https://"),
    ("http://127.0.0.1.nip.io", "must use https://"),
    ("http://2130706433", "must use https://"),
    ("http://0x7f000001", "must use https://"),
    ("https://user:FAKE-URL-PASSWORD@vendor.example", "must not contain credentials"),
    ("https://FAKE-URL-PASSWORD@vendor.example", "must not contain credentials"),
    ("http://127.0.0.1:80@evil.example", "must not contain credentials", "must use https://"),
    ("https://vendor.example\\@evil.example", "must not contain credentials"),
    ("https://vendor.example/?key=FAKE-URL-PASSWORD", "must not contain a query"),
    ("https://vendor.example?", "must not contain a query"),
    ("https://vendor.example/#FAKE-URL-PASSWORD", "must not contain a fragment"),
    ("https://vendor.example#", "must not contain a fragment"),
    ("ftp://vendor.example", "must be an http:// or https:// URL"),
    ("file:///etc/passwd", "must be an http:// or https:// URL"),
    ("javascript:alert(1)", "must be an http:// or https:// URL"),
    ("vendor.example", "must be an http:// or https:// URL"),
    ("//vendor.example", "must be an http:// or https:// URL"),
    ("https://", "has no host"),
    ("http:/127.0.0.1", "has no host"),
    ("https://evil.example\\.vendor.example", "has an invalid host"),
    ("https://vendor..example", "has an invalid host"),
    ("https://vendor.example:99999", "has an invalid port"),
    ("https://vendor.example:-1", "has an invalid port"),
    ("https://vendor.example/\r\nX-Injected: 1", "must not contain CR, LF or NUL"),
    ("https://vendor.example/\x0bx", "must not contain control characters"),
]


@pytest.mark.parametrize(
    ("base_url", "why", "also"), [(row[0], row[1], row[2:]) for row in REFUSED_BASE_URLS]
)
@pytest.mark.parametrize("insecure", [False, True])
def test_a_bad_base_url_is_refused_without_echoing_it(
    base_url: str, why: str, also: tuple[str, ...], insecure: bool
) -> None:
    config = _config("tenant_api", base_url, allow_insecure_http=insecure)
    if insecure and why == "must use https://":
        invites.from_config(config)  # the opt-in lifts the https rule, and only that rule
        return
    problems = _problems(config)
    expected = [why] + ([] if insecure else list(also))
    assert len(problems) == len(expected)
    for problem, reason in zip(problems, expected, strict=True):
        assert problem.startswith(f"base_url: {reason}")
        assert "FAKE-URL-PASSWORD" not in problem
        assert "evil" not in problem


def test_allow_insecure_http_must_be_a_boolean() -> None:
    problems = _problems(_config("ecosuite", "http://vendor.example", allow_insecure_http="yes"))
    assert problems == ["allow_insecure_http: expected true or false, got str"]


def test_from_env_applies_the_same_rules() -> None:
    environ = {
        "INVITES_PROVIDER": "ecosuite",
        "INVITES_TOKEN": TOKEN,
        "INVITES_BASE_URL": "http://vendor.example",
    }
    with pytest.raises(ConfigurationError) as caught:
        invites.from_env(environ)
    assert caught.value.problems[0].startswith("INVITES_BASE_URL: must use https://")
    environ["INVITES_ALLOW_INSECURE_HTTP"] = "true"
    assert invites.from_env(environ).base_url == "http://vendor.example"


# -- tenant_id -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "tenant_id",
    [
        "",
        "tenant-1",
        "../admin",
        TENANT + "/x",
        " " + TENANT,
        TENANT + "\r\nX-Injected: 1",
        TENANT[:-1],
        TENANT + "0",
        "+" + TENANT.replace("-", "")[1:],  # uuid.UUID's int() syntax: another tenant
        "1_" + TENANT.replace("-", "")[2:],
        "{" + TENANT,
        TENANT.replace("-", "")[:8] + "-" + TENANT.replace("-", "")[8:],
    ],
)
def test_a_tenant_id_that_is_not_a_uuid_is_refused(tenant_id: str) -> None:
    problems = _problems(_config("tenant_api", tenant_id=tenant_id))
    assert len(problems) == 1
    assert problems[0].startswith("tenant_id: must")


@pytest.mark.parametrize(
    "spelling", [TENANT, TENANT.upper(), "{" + TENANT + "}", "urn:uuid:" + TENANT]
)
def test_the_tenant_header_carries_the_canonical_uuid(spelling: str) -> None:
    recorder = _ok("tenant_api")
    provider = invites.from_config(
        _config("tenant_api", tenant_id=spelling), client=recorder.client()
    )
    provider.resend_invite(TENANT_USER)
    assert recorder.sent[0].headers["x-tenant-id"] == TENANT


# -- header values ---------------------------------------------------------------------------------

BAD_TOKENS = [
    "Zq9tok\r\nX-Injected: 1",
    "Zq9tok\nX-Injected: 1",
    "Zq9tok\rX",
    "Zq9tok\x00",
    "Zq9tok\x0bx",
    "Zq9tok\x7f",
    "Zq9tok\tx",
    "Zq9t\u00f6k",
    "Zq9tok\u2028x",
]


@pytest.mark.parametrize("token", BAD_TOKENS)
@pytest.mark.parametrize("vendor", VENDORS)
def test_a_token_that_could_break_a_header_is_refused(vendor: str, token: str) -> None:
    (problem,) = _problems(_config(vendor, token=token))
    assert problem.startswith("token: a secret must")
    assert "Zq9" not in problem


@pytest.mark.parametrize("token", BAD_TOKENS)
def test_a_token_env_value_that_could_break_a_header_is_refused(token: str) -> None:
    config = _config("ecosuite", token=None, token_env="ECO_TOKEN")
    (problem,) = _problems(config, environ={"ECO_TOKEN": token})
    assert problem.startswith("token_env: ")
    assert "Zq9" not in problem


@pytest.mark.parametrize("token", BAD_TOKENS)
@pytest.mark.parametrize("vendor", VENDORS)
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_token_provider_returning_a_bad_token_sends_nothing(
    vendor: str, token: str, mode: str
) -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(200, json=OK_BODIES[vendor])

    config = _config(vendor, token=None, token_provider=lambda: token)
    with pytest.raises(AuthenticationFailed) as caught:
        _resend(mode, config, httpx.MockTransport(handler), TARGETS[vendor])
    assert sent == []
    assert "Zq9" not in str(caught.value)


@pytest.mark.parametrize(
    "prefix", ["Bearer\r\nX-Injected: 1", "Bearer\n", "Bearer\x00", "Bearer\x0b", "Bearer\x85"]
)
def test_an_auth_prefix_that_could_break_a_header_is_refused(prefix: str) -> None:
    (problem,) = _problems(_config("ecosuite", auth_prefix=prefix))
    assert problem.startswith("auth_prefix: must not contain")


def test_a_non_ascii_auth_prefix_is_refused_by_configuration() -> None:
    (problem,) = _problems(_config("ecosuite", auth_prefix="B\u00e9arer"))
    assert problem.startswith("auth_prefix: ")


@pytest.mark.parametrize("vendor", VENDORS)
def test_only_the_vendors_auth_header_carries_the_token(vendor: str) -> None:
    recorder = _ok(vendor)
    provider = invites.from_config(_config(vendor), client=recorder.client())
    provider.resend_invite(TARGETS[vendor])
    (request,) = recorder.sent
    expected = {
        "ecosuite": ("authorization", TOKEN),
        "softwareone": ("authorization", "Bearer " + TOKEN),
        "tenant_api": ("x-api-key", TOKEN),
    }[vendor]
    carrying = [(k.lower(), v) for k, v in request.headers.items() if TOKEN in v]
    assert carrying == [expected]
    assert TOKEN not in str(request.url)
    assert TOKEN.encode() not in request.content


# -- TLS -------------------------------------------------------------------------------------------


@pytest.fixture
def client_kwargs(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every keyword set the library passes when it creates an httpx client itself."""
    seen: list[dict[str, Any]] = []
    for cls in (httpx.Client, httpx.AsyncClient):
        original = cls.__init__

        def spy(self: Any, *args: Any, __original: Any = original, **kwargs: Any) -> None:
            seen.append(kwargs)
            __original(self, *args, **kwargs)

        monkeypatch.setattr(cls, "__init__", spy)
    return seen


@pytest.mark.parametrize("vendor", VENDORS)
def test_the_providers_own_clients_verify_tls(
    vendor: str, client_kwargs: list[dict[str, Any]]
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        provider = invites.from_config(_config(vendor))

    async def check() -> None:  # an async client is made for the running event loop
        clients = [provider._transport.client(), provider._transport.async_client()]
        assert len(client_kwargs) == 2
        for kwargs in client_kwargs:
            assert kwargs.get("verify", True) is True
            assert kwargs.get("follow_redirects", False) is False
        for client in clients:  # their TLS context: tests/integration/test_tls_context.py
            assert client.follow_redirects is False
        await provider.aclose()

    asyncio.run(check())


def test_an_injected_client_is_used_as_given() -> None:
    """TLS is the caller's business with their own client: the provider creates none."""
    client = httpx.Client(verify=False)  # noqa: S501  (the caller's choice, never the library's)
    provider = invites.from_config(_config("ecosuite"), client=client)
    assert provider._transport.client() is client
    provider.close()
    assert not client.is_closed  # the provider does not close what it did not create
    client.close()


# -- redirects -------------------------------------------------------------------------------------

REDIRECT_BODIES: list[tuple[str, dict[str, str], bytes]] = [
    ("empty", {}, b""),
    ("html", {"content-type": "text/html"}, b"<a href='https://evil.example/'>moved</a>"),
    ("vendor-json", {"content-type": "application/json"}, b'{"message": "moved"}'),
]


@pytest.mark.parametrize("status", [301, 302, 303, 307, 308])
@pytest.mark.parametrize(("body_name", "headers", "body"), REDIRECT_BODIES)
@pytest.mark.parametrize("vendor", [*VENDORS, "ecosuite-profile"])
@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_redirect_is_never_followed(
    vendor: str, status: int, body_name: str, headers: dict[str, str], body: bytes, mode: str
) -> None:
    sent: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        return httpx.Response(
            status, headers={**headers, "location": "https://evil.example/steal"}, content=body
        )

    name = "ecosuite" if vendor == "ecosuite-profile" else vendor
    target = "eco-1" if vendor == "ecosuite-profile" else TARGETS[vendor]
    with pytest.raises(InviteError) as caught:
        # Even a client that would follow redirects on its own does not.
        _resend(mode, _config(name), httpx.MockTransport(handler), target, follow_redirects=True)
    error = caught.value
    assert type(error) is UnexpectedResponse
    assert error.status_code == status
    assert f"HTTP {status}" in str(error)
    assert len(sent) == 1
    assert sent[0].url.host == "vendor.example"
    assert "evil.example" not in str(error)
    assert "evil.example" not in repr(error.details)


def test_a_tenant_redirect_with_an_error_code_is_still_unexpected() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(
            302,
            headers={"location": "https://evil.example/"},
            json={"code": "already_verified", "message": "moved"},
        )

    provider = invites.from_config(
        _config("tenant_api"), client=httpx.Client(transport=httpx.MockTransport(handler))
    )
    with pytest.raises(InviteError) as caught:
        provider.resend_invite(TENANT_USER)
    assert type(caught.value) is UnexpectedResponse


@pytest.mark.parametrize("location", ["http://x:abc", "http://[::1", "https://\x00"])
def test_a_redirect_with_a_malformed_location_is_unexpected(
    location: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The provider's own client drops a 3xx's Location before httpx parses it. (A caller's own
    # client parses it first: an unparsable one is then a RemoteProtocolError, OutcomeUnknown.)
    def handler(transport: Any, request: httpx.Request) -> httpx.Response:
        return httpx.Response(302, headers=[(b"location", location.encode())])

    monkeypatch.setattr(SyncTransport, "handle_request", handler)
    with (
        invites.from_config(_config("tenant_api")) as provider,
        pytest.raises(InviteError) as caught,
    ):
        provider.resend_invite(TENANT_USER)
    assert type(caught.value) is UnexpectedResponse
    assert caught.value.status_code == 302


# -- cookies ---------------------------------------------------------------------------------------


@pytest.fixture
def vendor_over_fake_sockets(monkeypatch: pytest.MonkeyPatch) -> list[httpx.Request]:
    """The provider's own clients talk to a fake vendor: their transports are patched, not
    replaced. The vendor sets a cookie (a non-ASCII one first) on every answer."""
    sent: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        sent.append(request)
        cookie = b"sid=\x80" if len(sent) == 1 else b"sid=abc"
        return httpx.Response(
            200,
            headers=[(b"set-cookie", cookie), (b"content-type", b"application/json")],
            content=b'{"message": "Invite resent."}',
        )

    async def answer_async(self: Any, request: httpx.Request) -> httpx.Response:
        return answer(request)

    monkeypatch.setattr(SyncTransport, "handle_request", lambda self, r: answer(r))
    monkeypatch.setattr(AsyncTransport, "handle_async_request", answer_async)
    return sent


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_the_providers_own_clients_keep_no_cookies(
    vendor_over_fake_sockets: list[httpx.Request], mode: str
) -> None:
    provider = invites.from_config(_config("tenant_api"))
    for _ in range(3):
        if mode == "sync":
            result = provider.resend_invite(TENANT_USER)
        else:
            result = asyncio.run(provider.aresend_invite(TENANT_USER))
        assert isinstance(result, invites.ResendResult)
    provider.close()
    assert len(vendor_over_fake_sockets) == 3
    assert all("cookie" not in request.headers for request in vendor_over_fake_sockets)
