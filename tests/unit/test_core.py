"""The vendor-neutral core: public API, models, exception tree, status table and registry."""

from __future__ import annotations

import asyncio
import importlib.metadata
import json
import pickle
import subprocess
import sys
import textwrap
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import attrs
import httpx
import pytest
from _support.vendors import vendor_config

import invites
from invites import registry
from invites._delivery.answers import error_class_for_status, response_error
from invites.sandbox import (
    SOFTWAREONE_ACCOUNT_ID,
    SOFTWAREONE_MEMBERSHIP_INVITED,
    TENANT_USER_INVITED,
)
from invites.testing import FakeProvider

Handler = Callable[[httpx.Request], httpx.Response]

BASE_URL = "https://vendor.example.test"

# -- helpers ---------------------------------------------------------------------------------------


def _ok(request: httpx.Request) -> httpx.Response:
    """A success answer every built-in vendor accepts (Ecosuite's profile GET included)."""
    if request.method == "GET":
        return httpx.Response(
            200, json={"email": "ada@example.test", "firstName": "Ada", "lastName": "Lovelace"}
        )
    if "/v1/users/" in request.url.path:
        return httpx.Response(200, json={"message": "Invite resent."})
    if "/public/v1/" in request.url.path:
        return httpx.Response(200, json={"id": "AUSR-1", "invitation": {"status": "Invited"}})
    return httpx.Response(200, json={})


class Recorder:
    """A MockTransport handler that records requests and answers with ``handler``."""

    def __init__(self, handler: Handler = _ok) -> None:
        self.handler = handler
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)


def _config(vendor: str, **overrides: Any) -> dict[str, Any]:
    return vendor_config(vendor, overrides.pop("base_url", BASE_URL), **overrides)


def _user_for(vendor: str) -> str:
    return {
        "ecosuite": "eco-user-1",
        "softwareone": "USR-0000-0001",
        "tenant_api": TENANT_USER_INVITED,
    }[vendor]


def _run_python(code: str, cwd: Path) -> str:
    completed = subprocess.run(  # noqa: S603
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    return completed.stdout.strip()


@pytest.fixture
def plugin_module(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The name of a fresh importable module defining ``AcmeProvider`` and ``NOT_A_PROVIDER``."""
    name = f"acme_invites_{uuid.uuid4().hex[:12]}"
    (tmp_path / f"{name}.py").write_text(
        textwrap.dedent(
            """
            import attrs

            from invites import BaseProvider, Call, ResendResult
            from invites import ProviderSettings


            @attrs.frozen(kw_only=True)
            class AcmeSettings(ProviderSettings):
                region: str = "eu"


            class AcmeProvider(BaseProvider):
                name = "acme"
                settings_class = AcmeSettings
                default_base_url = "https://acme.example.test"

                def flow(self, invitee):
                    url = f"{self.base_url}/{self.settings.region}/invite/{invitee.user_id}"
                    response = yield Call("POST", url)
                    return ResendResult(
                        provider=self.name,
                        user_id=invitee.user_id,
                        status_code=response.status_code,
                    )


            NOT_A_PROVIDER = 42
            """
        )
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(registry, "_registered", {})
    yield name
    sys.modules.pop(name, None)


# -- public API ------------------------------------------------------------------------------------

DESIGN_NAMES = {
    "from_config",
    "from_env",
    "load_profiles",
    "Profiles",
    "Invitee",
    "Access",
    "ResendResult",
    "InviteProvider",
    "AttemptEvent",
    "Secret",
    "register_provider",
    "known_providers",
    "resend_many",
    "aresend_many",
    "Outcome",
    "ConfigurationError",
    "InviteError",
    "InviteRejected",
    "AlreadyVerified",
    "InvitationExpired",
    "UserNotFound",
    "InvalidRequest",
    "AccessDenied",
    "AuthenticationFailed",
    "PermissionDenied",
    "TenantMismatch",
    "RateLimited",
    "ProviderUnavailable",
    "ConnectionFailed",
    "OutcomeUnknown",
    "UnexpectedResponse",
    "InvalidInvitee",
}


def test_every_design_name_is_exported_and_in_all() -> None:
    missing = DESIGN_NAMES - set(invites.__all__)
    assert not missing
    for name in DESIGN_NAMES:
        exported = getattr(invites, name)
        # The object itself, defined under that name inside the package: not an alias or a stub.
        assert exported.__name__ == name
        assert exported.__module__.startswith("invites.") or exported.__module__ == "invites"


def test_every_name_in_all_resolves_and_star_import_works() -> None:
    assert len(invites.__all__) == len(set(invites.__all__))
    namespace: dict[str, Any] = {}
    exec("from invites import *", namespace)  # noqa: S102
    for name in invites.__all__:
        assert namespace[name] is getattr(invites, name)


def test_unknown_attribute_raises_attribute_error() -> None:
    with pytest.raises(AttributeError, match="no_such_name"):
        _ = invites.no_such_name


def test_lazy_bulk_names_come_from_the_bulk_module() -> None:
    from invites import bulk

    assert invites.resend_many is bulk.resend_many
    assert invites.aresend_many is bulk.aresend_many
    assert invites.Outcome is bulk.Outcome


def test_version_matches_the_installed_distribution() -> None:
    assert invites.__version__ == importlib.metadata.version("invites")


@pytest.mark.parametrize("vendor", ["ecosuite", "softwareone", "tenant_api"])
def test_built_in_providers_satisfy_the_protocol_and_carry_their_name(vendor: str) -> None:
    provider = invites.from_config(_config(vendor))
    assert isinstance(provider, invites.InviteProvider)
    assert provider.name == vendor


def test_fake_provider_satisfies_the_protocol() -> None:
    fake = FakeProvider()
    assert isinstance(fake, invites.InviteProvider)
    assert fake.name == "fake"


def test_a_closed_fake_provider_refuses_resends_as_a_provider_does() -> None:
    with FakeProvider() as fake:
        fake.resend_invite("u-1")
    with pytest.raises(RuntimeError, match="closed"):
        fake.resend_invite("u-2")
    with pytest.raises(RuntimeError, match="closed"):
        asyncio.run(fake.aresend_invite("u-3"))
    with pytest.raises(RuntimeError, match="closed"), fake:
        pass
    assert fake.calls == ["u-1"]


def test_something_without_aclose_is_not_an_invite_provider() -> None:
    class Partial:
        name = "partial"

        def resend_invite(self, invitee: object) -> None: ...

        async def aresend_invite(self, invitee: object) -> None: ...

        def close(self) -> None: ...

    assert not isinstance(Partial(), invites.InviteProvider)
    assert not isinstance(object(), invites.InviteProvider)


# -- injected and owned clients --------------------------------------------------------------------


@pytest.mark.parametrize("vendor", ["ecosuite", "softwareone", "tenant_api"])
def test_from_config_sends_through_the_injected_client(vendor: str) -> None:
    recorder = Recorder()
    client = httpx.Client(transport=httpx.MockTransport(recorder))
    provider = invites.from_config(_config(vendor), client=client)
    result = provider.resend_invite(
        invites.Invitee(
            user_id=_user_for(vendor), email="ada@example.test", first_name="Ada", last_name="L"
        )
    )
    assert result.provider == vendor
    assert result.user_id == _user_for(vendor)
    assert len(recorder.requests) == 1
    assert recorder.requests[0].method in ("PUT", "POST")
    assert recorder.requests[0].url.host == "vendor.example.test"


def test_the_configured_timeout_applies_per_request_on_an_injected_client() -> None:
    recorder = Recorder()
    client = httpx.Client(transport=httpx.MockTransport(recorder), timeout=99.0)
    provider = invites.from_config(
        _config("tenant_api", timeout=4, timeouts={"connect": 1.5}), client=client
    )
    provider.resend_invite(TENANT_USER_INVITED)
    assert recorder.requests[0].extensions["timeout"] == {
        "connect": 1.5,
        "read": 4.0,
        "write": 4.0,
        "pool": 4.0,
    }


def test_with_block_leaves_an_injected_client_open() -> None:
    recorder = Recorder()
    client = httpx.Client(transport=httpx.MockTransport(recorder))
    with invites.from_config(_config("tenant_api"), client=client) as provider:
        provider.resend_invite(TENANT_USER_INVITED)
    assert not client.is_closed
    assert len(recorder.requests) == 1
    client.close()


def test_with_block_closes_the_client_the_provider_created() -> None:
    with invites.from_config(_config("tenant_api")) as provider:
        owned = provider._transport.client()
        assert not owned.is_closed
    assert owned.is_closed


def test_async_with_leaves_an_injected_async_client_open() -> None:
    recorder = Recorder()
    async_client = httpx.AsyncClient(transport=httpx.MockTransport(recorder))

    async def main() -> invites.ResendResult:
        async with invites.from_config(
            _config("tenant_api"), async_client=async_client
        ) as provider:
            return await provider.aresend_invite(TENANT_USER_INVITED)

    result = asyncio.run(main())
    assert result.message == "Invite resent."
    assert len(recorder.requests) == 1
    assert not async_client.is_closed
    asyncio.run(async_client.aclose())


def test_async_with_closes_both_clients_the_provider_created() -> None:
    async def main() -> tuple[httpx.Client, httpx.AsyncClient]:
        async with invites.from_config(_config("tenant_api")) as provider:
            owned_sync = provider._transport.client()
            owned_async = provider._transport.async_client()
            assert not owned_async.is_closed
        return owned_sync, owned_async

    owned_sync, owned_async = asyncio.run(main())
    assert owned_async.is_closed
    assert owned_sync.is_closed


def test_aclose_keeps_an_injected_sync_client_open() -> None:
    client = httpx.Client(transport=httpx.MockTransport(Recorder()))
    provider = invites.from_config(_config("ecosuite"), client=client)
    asyncio.run(provider.aclose())
    assert not client.is_closed
    client.close()


# -- models ----------------------------------------------------------------------------------------


def test_invitee_and_resend_result_are_frozen_attrs_classes() -> None:
    invitee = invites.Invitee(user_id="u-1", email="a@b.c")
    result = invites.ResendResult(provider="ecosuite", user_id="u-1")
    assert attrs.has(type(invitee))
    assert attrs.has(type(result))
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        invitee.user_id = "u-2"  # type: ignore[misc]
    with pytest.raises(attrs.exceptions.FrozenInstanceError):
        result.message = "changed"  # type: ignore[misc]
    assert invitee == invites.Invitee(user_id="u-1", email="a@b.c")
    assert hash(result) == hash(invites.ResendResult(provider="ecosuite", user_id="u-1"))


def test_resend_result_fields() -> None:
    result = invites.ResendResult(
        provider="softwareone", user_id="u-1", message="ok", invitation_status="Invited"
    )
    assert (result.provider, result.user_id, result.message, result.invitation_status) == (
        "softwareone",
        "u-1",
        "ok",
        "Invited",
    )
    assert result.status_code == 200


@pytest.mark.parametrize(
    "user_id",
    [
        "",
        "   ",
        ".",
        "..",
        "x" * 257,
        " leading",
        "trailing ",
        "line\nbreak",
        "nul\x00byte",
        "tab\tinside",
        "bidi\u202eoverride",
        "zero\u200bwidth",
        "line\u2028separator",
        5,
        None,
    ],
)
def test_an_unsafe_id_is_refused_when_the_invitee_is_built(user_id: object) -> None:
    with pytest.raises(invites.InvalidInvitee) as caught:
        invites.Invitee(user_id=user_id)  # type: ignore[arg-type]
    assert isinstance(caught.value, ValueError)
    assert isinstance(caught.value, invites.InviteError)


@pytest.mark.parametrize("user_id", ["u-1", "a/b", "USR-0000-0001", "é-user", "x" * 256])
def test_a_safe_id_is_accepted(user_id: str) -> None:
    assert invites.Invitee(user_id=user_id).user_id == user_id


def test_a_bare_id_is_accepted_and_sent_as_one_path_segment() -> None:
    recorder = Recorder()
    client = httpx.Client(transport=httpx.MockTransport(recorder))
    provider = invites.from_config(_config("ecosuite"), client=client)
    result = provider.resend_invite("team/ada")
    assert result.user_id == "team/ada"
    assert [(r.method, r.url.raw_path) for r in recorder.requests] == [
        ("GET", b"/users/team%2Fada"),
        ("PUT", b"/users/team%2Fada/resend"),
    ]
    assert json.loads(recorder.requests[1].content)["email"] == "ada@example.test"


def test_a_bare_id_is_accepted_by_the_async_driver() -> None:
    recorder = Recorder()
    client = httpx.AsyncClient(transport=httpx.MockTransport(recorder))
    provider = invites.from_config(_config("tenant_api"), async_client=client)
    result = asyncio.run(provider.aresend_invite(TENANT_USER_INVITED))
    assert result.user_id == TENANT_USER_INVITED
    assert recorder.requests[0].url.path == f"/v1/users/{TENANT_USER_INVITED}/resend-invite"


@pytest.mark.parametrize("user_id", ["", "..", "a\nb", "x" * 300])
def test_an_unsafe_bare_id_is_refused_before_any_request(user_id: str) -> None:
    recorder = Recorder()
    client = httpx.Client(transport=httpx.MockTransport(recorder))
    provider = invites.from_config(_config("ecosuite"), client=client)
    with pytest.raises(invites.InvalidInvitee):
        provider.resend_invite(user_id)
    assert recorder.requests == []


# -- errors ----------------------------------------------------------------------------------------

TREE: dict[type[BaseException], type[BaseException]] = {
    invites.InviteRejected: invites.InviteError,
    invites.AlreadyVerified: invites.InviteRejected,
    invites.InvitationExpired: invites.InviteRejected,
    invites.UserNotFound: invites.InviteRejected,
    invites.InvalidRequest: invites.InviteRejected,
    invites.AccessDenied: invites.InviteError,
    invites.AuthenticationFailed: invites.AccessDenied,
    invites.PermissionDenied: invites.AccessDenied,
    invites.TenantMismatch: invites.PermissionDenied,
    invites.RateLimited: invites.InviteError,
    invites.ProviderUnavailable: invites.InviteError,
    invites.ConnectionFailed: invites.InviteError,
    invites.OutcomeUnknown: invites.InviteError,
    invites.UnexpectedResponse: invites.InviteError,
    invites.InvalidInvitee: invites.InviteError,
}
INVITE_ERRORS = [invites.InviteError, *TREE]


@pytest.mark.parametrize(("child", "parent"), TREE.items(), ids=lambda c: c.__name__)
def test_exception_tree_parent(child: type[BaseException], parent: type[BaseException]) -> None:
    assert child.__bases__[0] is parent


def test_exception_tree_has_no_unexpected_links() -> None:
    assert issubclass(invites.InvalidInvitee, ValueError)
    assert issubclass(invites.InviteError, Exception)
    assert not issubclass(invites.InviteError, ValueError)
    assert issubclass(invites.ConfigurationError, ValueError)
    assert not issubclass(invites.ConfigurationError, invites.InviteError)
    assert not issubclass(invites.TenantMismatch, invites.InviteRejected)
    assert not issubclass(invites.RateLimited, invites.ProviderUnavailable)
    assert not issubclass(invites.OutcomeUnknown, invites.ProviderUnavailable)
    assert not issubclass(invites.UserNotFound, invites.AccessDenied)
    assert not issubclass(invites.AlreadyVerified, invites.InvitationExpired)


def test_except_invite_error_does_not_catch_a_configuration_error() -> None:
    caught: BaseException | None = None
    try:
        invites.from_config({"provider": "ecosuite"})
    except invites.InviteError:
        pytest.fail("ConfigurationError was caught as an InviteError")
    except invites.ConfigurationError as exc:
        caught = exc
    assert isinstance(caught, invites.ConfigurationError)
    assert "token: is required" in "\n".join(caught.problems)


ATTRIBUTES = {
    "provider": "tenant_api",
    "user_id": "u-1",
    "status_code": 403,
    "vendor_code": "tenant_mismatch",
    "request_id": "req-7",
    "retryable": False,
    "retry_after": 2.5,
    "attempts": 2,
    "details": {"notices": ["policy p1"]},
}


@pytest.mark.parametrize("cls", INVITE_ERRORS, ids=lambda c: c.__name__)
def test_every_error_carries_the_documented_attributes(cls: type[invites.InviteError]) -> None:
    error = cls("Tenant mismatch", **ATTRIBUTES)  # type: ignore[arg-type]
    assert error.message == "Tenant mismatch"
    for name, value in ATTRIBUTES.items():
        assert getattr(error, name) == value


@pytest.mark.parametrize("cls", INVITE_ERRORS, ids=lambda c: c.__name__)
def test_every_error_defaults_its_attributes(cls: type[invites.InviteError]) -> None:
    error = cls("boom")
    assert (error.provider, error.user_id, error.status_code, error.vendor_code) == (None,) * 4
    assert (error.request_id, error.retry_after, error.attempts) == (None,) * 3
    assert error.details == {}
    assert error.retryable is (cls in (invites.RateLimited, invites.ConnectionFailed))


@pytest.mark.parametrize("cls", INVITE_ERRORS, ids=lambda c: c.__name__)
def test_every_error_pickles_with_its_attributes(cls: type[invites.InviteError]) -> None:
    error = cls("Tenant mismatch", **ATTRIBUTES)  # type: ignore[arg-type]
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301
    assert type(copy) is cls
    assert copy.message == "Tenant mismatch"
    assert str(copy) == str(error)
    assert copy.args == error.args
    for name, value in ATTRIBUTES.items():
        assert getattr(copy, name) == value


def test_configuration_error_pickles_with_its_problems() -> None:
    error = invites.ConfigurationError(["timeout: must be greater than 0", "x: unknown key"])
    error.provider = "ecosuite"
    copy = pickle.loads(pickle.dumps(error))  # noqa: S301
    assert type(copy) is invites.ConfigurationError
    assert copy.problems == error.problems
    assert copy.provider == "ecosuite"
    assert "timeout: must be greater than 0" in str(copy)


def test_a_raised_configuration_error_pickles() -> None:
    with pytest.raises(invites.ConfigurationError) as caught:
        invites.from_config({"provider": "ecosuite", "timeout": 0, "token": "fake"})
    copy = pickle.loads(pickle.dumps(caught.value))  # noqa: S301
    assert copy.problems == caught.value.problems == ["timeout: must be greater than 0"]
    assert copy.provider == "ecosuite"
    assert str(copy) == str(caught.value)


def test_str_names_vendor_user_status_code_and_message_on_one_line() -> None:
    error = invites.TenantMismatch(
        "Tenant does not match the credential",
        provider="tenant_api",
        user_id="u-1",
        status_code=403,
        vendor_code="tenant_mismatch",
        request_id="req-7",
    )
    text = str(error)
    assert "\n" not in text
    assert text.startswith("tenant_api")
    for part in ("'u-1'", "403", "tenant_mismatch", "Tenant does not match the credential"):
        assert part in text
    assert "req-7" in text


def test_str_of_a_bare_error_is_its_message() -> None:
    assert str(invites.InviteError("nothing more known")) == "nothing more known"


def test_str_mentions_retry_after_and_attempts_when_known() -> None:
    error = invites.RateLimited("slow down", provider="ecosuite", retry_after=3.0, attempts=3)
    assert "retry after 3s" in str(error)
    assert "3 attempts" in str(error)


@pytest.mark.parametrize("breaker", ["\n", "\r\n", "\u2028", "\x1b[31m", "\u202e"])
def test_str_stays_one_line_when_the_vendor_message_has_line_breaks(breaker: str) -> None:
    error = invites.InvalidRequest(
        f"bad request{breaker}ERROR forged log line",
        provider="tenant_api",
        user_id="u-1",
        status_code=400,
        vendor_code=f"bad{breaker}code",
        request_id=f"req{breaker}7",
    )
    text = str(error)
    assert text.isprintable()
    assert "bad request" in text
    assert "ERROR forged log line" in text
    assert error.message.isprintable()


def test_repr_names_the_class_and_key_attributes() -> None:
    error = invites.UserNotFound("gone", provider="ecosuite", user_id="u-1", status_code=404)
    assert (
        repr(error) == "UserNotFound('gone', provider='ecosuite', user_id='u-1', status_code=404)"
    )


def test_retryable_can_be_overridden() -> None:
    assert invites.RateLimited("x", retryable=False).retryable is False
    assert invites.ProviderUnavailable("x", retryable=True).retryable is True


def _response(status: int, **kwargs: Any) -> httpx.Response:
    return httpx.Response(status, request=httpx.Request("POST", BASE_URL), **kwargs)


def test_a_503_is_a_retryable_provider_unavailable() -> None:
    error = response_error(None, _response(503), provider="ecosuite", user_id="u-1")
    assert type(error) is invites.ProviderUnavailable
    assert error.retryable is True
    assert error.status_code == 503


def test_a_500_is_a_provider_unavailable_that_is_not_retryable() -> None:
    error = response_error(None, _response(500), provider="ecosuite", user_id="u-1")
    assert type(error) is invites.ProviderUnavailable
    assert error.retryable is False


def test_a_429_keeps_its_retry_after() -> None:
    error = response_error(
        None, _response(429, headers={"Retry-After": "7"}), provider="ecosuite", user_id="u-1"
    )
    assert type(error) is invites.RateLimited
    assert error.retryable is True
    assert error.retry_after == 7.0


def test_a_redirect_says_redirects_are_not_followed() -> None:
    error = response_error(
        None, _response(302, headers={"Location": "/elsewhere"}), provider="x", user_id="u"
    )
    assert type(error) is invites.UnexpectedResponse
    assert "redirects are never followed" in error.message


def test_an_unread_body_is_kept_as_a_short_link_free_excerpt() -> None:
    body = b"<html>see https://invite.example.test/accept?t=abc</html>" + b"x" * 5000
    error = response_error(None, _response(500, content=body), provider="x", user_id="u")
    assert "https://invite.example.test" not in error.details["body"]
    assert "<url>" in error.details["body"]
    assert len(error.details["body"]) <= 2048 + 3


def test_a_503_through_a_provider_is_retryable_and_counts_attempts() -> None:
    recorder = Recorder(lambda request: httpx.Response(503, headers={"Retry-After": "0"}))
    client = httpx.Client(transport=httpx.MockTransport(recorder))
    provider = invites.from_config(_config("tenant_api", max_attempts=2), client=client)
    with pytest.raises(invites.ProviderUnavailable) as caught:
        provider.resend_invite(TENANT_USER_INVITED)
    assert len(recorder.requests) == 2
    assert caught.value.retryable is True
    assert caught.value.attempts == 2
    assert caught.value.provider == "tenant_api"
    assert caught.value.user_id == TENANT_USER_INVITED


def test_a_500_through_a_provider_is_not_retried() -> None:
    recorder = Recorder(lambda request: httpx.Response(500))
    client = httpx.Client(transport=httpx.MockTransport(recorder))
    provider = invites.from_config(_config("tenant_api"), client=client)
    with pytest.raises(invites.ProviderUnavailable) as caught:
        provider.resend_invite(TENANT_USER_INVITED)
    assert len(recorder.requests) == 1
    assert caught.value.retryable is False


# -- the status table ------------------------------------------------------------------------------

STATUS_TABLE: list[tuple[int, type[invites.InviteError]]] = [
    (400, invites.InvalidRequest),
    (401, invites.AuthenticationFailed),
    (403, invites.PermissionDenied),
    (404, invites.UserNotFound),
    (405, invites.InvalidRequest),
    (409, invites.InviteRejected),
    (410, invites.InviteRejected),
    (413, invites.InvalidRequest),
    (415, invites.InvalidRequest),
    (418, invites.InviteRejected),
    (422, invites.InvalidRequest),
    (429, invites.RateLimited),
    (451, invites.InviteRejected),
    (500, invites.ProviderUnavailable),
    (501, invites.ProviderUnavailable),
    (502, invites.OutcomeUnknown),
    (503, invites.ProviderUnavailable),
    (504, invites.OutcomeUnknown),
    (599, invites.ProviderUnavailable),
    (100, invites.UnexpectedResponse),
    (200, invites.UnexpectedResponse),
    (204, invites.UnexpectedResponse),
    (301, invites.UnexpectedResponse),
    (304, invites.UnexpectedResponse),
]


@pytest.mark.parametrize(("status", "expected"), STATUS_TABLE)
def test_error_class_for_status(status: int, expected: type[invites.InviteError]) -> None:
    assert error_class_for_status(status) is expected


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (502, invites.ProviderUnavailable),
        (504, invites.ProviderUnavailable),
        (503, invites.ProviderUnavailable),
        (404, invites.UserNotFound),
        (429, invites.RateLimited),
    ],
)
def test_error_class_for_status_of_a_read(status: int, expected: type[invites.InviteError]) -> None:
    assert error_class_for_status(status, reads_only=True) is expected


# -- registry --------------------------------------------------------------------------------------


def test_known_providers_lists_the_built_in_vendors(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(registry, "_registered", {})
    monkeypatch.setattr(registry, "_entry_points", {})
    assert invites.known_providers() == ["ecosuite", "softwareone", "tenant_api"]


def test_a_registered_class_is_built_from_config(plugin_module: str) -> None:
    module = __import__(plugin_module)
    invites.register_provider("acme", module.AcmeProvider)
    assert "acme" in invites.known_providers()
    recorder = Recorder()
    client = httpx.Client(transport=httpx.MockTransport(recorder))
    provider = invites.from_config(
        {"provider": "acme", "token": "fake-acme-token", "region": "us"}, client=client
    )
    assert isinstance(provider, module.AcmeProvider)
    assert isinstance(provider, invites.InviteProvider)
    assert provider.name == "acme"
    assert provider.resend_invite("u-1").provider == "acme"
    assert str(recorder.requests[0].url) == "https://acme.example.test/us/invite/u-1"
    assert recorder.requests[0].headers["Authorization"] == "Bearer fake-acme-token"


def test_a_plug_ins_own_keys_are_validated(plugin_module: str) -> None:
    invites.register_provider("acme", f"{plugin_module}:AcmeProvider")
    with pytest.raises(invites.ConfigurationError) as caught:
        invites.from_config({"provider": "acme", "token": "fake", "region": 3, "regoin": "eu"})
    assert caught.value.problems == [
        "region: expected a string, got int",
        "regoin: unknown key (did you mean 'region'?)",
    ]


def test_a_registered_import_string_is_loaded_when_first_used(plugin_module: str) -> None:
    invites.register_provider("acme", f"{plugin_module}:AcmeProvider")
    assert plugin_module not in sys.modules
    assert "acme" in invites.known_providers()
    assert plugin_module not in sys.modules
    provider = invites.from_config({"provider": "acme", "token": "fake"})
    assert plugin_module in sys.modules
    assert type(provider).__name__ == "AcmeProvider"
    assert provider.settings.region == "eu"  # type: ignore[attr-defined]


def test_a_registered_name_shadows_nothing_else(plugin_module: str) -> None:
    invites.register_provider("acme", f"{plugin_module}:AcmeProvider")
    assert type(invites.from_config(_config("ecosuite"))).__name__ == "EcosuiteProvider"


@pytest.mark.parametrize(
    ("target", "error"),
    [
        ("{module}:AcmeProviderr", "AttributeError"),
        ("{module}_missing:AcmeProvider", "ModuleNotFoundError"),
    ],
)
def test_a_registered_import_string_that_fails_is_a_configuration_error(
    plugin_module: str, target: str, error: str
) -> None:
    invites.register_provider("acme", target.format(module=plugin_module))
    with pytest.raises(invites.ConfigurationError) as caught:
        invites.from_config({"provider": "acme", "token": "fake"})
    assert caught.value.problems == [f"provider: cannot load provider 'acme' ({error})"]


def _fake_entry_points(value: str) -> Callable[..., importlib.metadata.EntryPoints]:
    points = importlib.metadata.EntryPoints(
        [importlib.metadata.EntryPoint(name="acme", value=value, group="invites.providers")]
    )

    def entry_points(**params: Any) -> importlib.metadata.EntryPoints:
        return points.select(**params)

    return entry_points


def test_a_provider_declared_as_an_entry_point_is_found(
    plugin_module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry, "_entry_points", None)
    monkeypatch.setattr(
        importlib.metadata, "entry_points", _fake_entry_points(f"{plugin_module}:AcmeProvider")
    )
    assert invites.known_providers() == ["acme", "ecosuite", "softwareone", "tenant_api"]
    provider = invites.from_config({"provider": "acme", "token": "fake"})
    assert provider.name == "acme"
    assert type(provider).__module__ == plugin_module


def test_entry_points_are_read_from_the_invites_providers_group(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    groups: list[str | None] = []

    def entry_points(**params: Any) -> importlib.metadata.EntryPoints:
        groups.append(params.get("group"))
        return importlib.metadata.EntryPoints([])

    monkeypatch.setattr(registry, "_entry_points", None)
    monkeypatch.setattr(importlib.metadata, "entry_points", entry_points)
    invites.known_providers()
    invites.known_providers()
    assert groups == ["invites.providers"]


def test_a_patched_entry_point_table_is_used(
    plugin_module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry, "_entry_points", {"acme": f"{plugin_module}:AcmeProvider"})
    assert "acme" in invites.known_providers()
    assert invites.from_config({"provider": "acme", "token": "fake"}).name == "acme"


def test_an_unknown_provider_lists_registered_and_entry_point_names(
    plugin_module: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry, "_entry_points", {"zeta": f"{plugin_module}:AcmeProvider"})
    invites.register_provider("acme", f"{plugin_module}:AcmeProvider")
    with pytest.raises(invites.ConfigurationError) as caught:
        invites.from_config({"provider": "nope", "token": "fake"})
    assert caught.value.problems == [
        "provider: unknown provider 'nope' (known: acme, ecosuite, softwareone, tenant_api, zeta)"
    ]


@pytest.mark.parametrize("name", ["", "acme-corp", "1acme", "acme corp", "acme.corp", None, 3])
def test_register_provider_refuses_a_name_that_is_not_an_identifier(
    name: object, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(registry, "_registered", {})
    with pytest.raises(ValueError, match="identifier"):
        invites.register_provider(name, "x:Y")  # type: ignore[arg-type]
    assert registry._registered == {}


def test_importing_invites_loads_no_vendor_and_no_optional_dependency(tmp_path: Path) -> None:
    # httpx itself imports rich when its CLI extras are installed, so compare against httpx alone.
    output = _run_python(
        """
        import sys
        import attrs, cattrs, httpx
        before = set(sys.modules)
        import invites
        added = sorted(set(sys.modules) - before)
        print(",".join(added))
        print(",".join(m for m in ("starlette", "uvicorn") if m in sys.modules))
        """,
        tmp_path,
    )
    added_line, optional_line = ([*output.splitlines(), "", ""])[:2]
    added = added_line.split(",")
    forbidden = ("providers", "invites.sandbox", "invites.bulk", "invites.testing", "rich")
    assert [m for m in added if m.startswith(forbidden)] == []
    assert "invites.config" in added
    assert optional_line == ""


def test_a_synchronous_resend_never_loads_asyncio(tmp_path: Path) -> None:
    # asyncio costs a synchronous program about 10 ms of start-up: only async code may load it.
    output = _run_python(
        """
        import json, sys, threading
        from http.server import BaseHTTPRequestHandler, HTTPServer

        class Vendor(BaseHTTPRequestHandler):
            def do_POST(self):
                body = json.dumps({"message": "Invite resent."}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        server = HTTPServer(("127.0.0.1", 0), Vendor)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        import invites
        provider = invites.from_config({
            "provider": "tenant_api",
            "base_url": f"http://127.0.0.1:{server.server_port}",
            "token": "fake-token",
            "tenant_id": "3f1c9a56-7b1e-4c55-9a77-2d6f1a0b9e11",
        })
        with provider:
            print(provider.resend_invite("3f1c9a56-7b1e-4c55-9a77-2d6f1a0b9e10").message)
        print(sorted(m for m in sys.modules if m.partition(".")[0] in ("asyncio", "concurrent")))
        """,
        tmp_path,
    )
    assert output.splitlines() == ["Invite resent.", "[]"]


def test_a_vendor_module_loads_only_when_its_provider_is_built(tmp_path: Path) -> None:
    output = _run_python(
        """
        import sys
        import invites
        def loaded(*names): print(*(f"invites.providers.{n}" in sys.modules for n in names))
        loaded("softwareone", "ecosuite")
        invites.from_config({"provider": "ecosuite", "token": "fake"})
        loaded("softwareone", "ecosuite")
        invites.known_providers()
        loaded("softwareone", "tenant_api")
        """,
        tmp_path,
    )
    assert output.splitlines() == ["False False", "False True", "False False"]


# -- SoftwareOne's deprecation warning -------------------------------------------------------------


def _legacy_config() -> dict[str, Any]:
    return _config("softwareone", account_id=None)


def test_the_legacy_endpoint_warns_once_when_built_and_never_per_call() -> None:
    recorder = Recorder()
    client = httpx.Client(transport=httpx.MockTransport(recorder))
    async_client = httpx.AsyncClient(transport=httpx.MockTransport(recorder))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        provider = invites.from_config(_legacy_config(), client=client, async_client=async_client)
        assert [w.category for w in caught] == [DeprecationWarning]
        assert "account_id" in str(caught[0].message)
        provider.resend_invite(SOFTWAREONE_MEMBERSHIP_INVITED)
        provider.resend_invite(SOFTWAREONE_MEMBERSHIP_INVITED)
        asyncio.run(provider.aresend_invite(SOFTWAREONE_MEMBERSHIP_INVITED))
    assert len(caught) == 1
    assert [r.url.path for r in recorder.requests] == [
        f"/public/v1/accounts/account-users/{SOFTWAREONE_MEMBERSHIP_INVITED}/resend-invite"
    ] * 3


def test_the_current_endpoint_does_not_warn() -> None:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        provider = invites.from_config(_config("softwareone"))
    assert caught == []
    assert provider.settings.account_id == SOFTWAREONE_ACCOUNT_ID  # type: ignore[attr-defined]


def test_the_deprecation_warning_points_at_the_callers_code() -> None:
    with pytest.warns(DeprecationWarning, match="account_id") as caught:
        invites.from_config(_legacy_config())
    assert caught[0].filename == __file__
