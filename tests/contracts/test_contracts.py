"""Contract tests: the vendors' own published examples, fed exactly through the adapters.

The cassettes prove agreement with the sandbox; these prove agreement with what the vendors
published. Every example lives in ``tests/data/`` with its source in ``tests/data/SOURCES.md``
(or a ``_source`` key). The network is an ``httpx.MockTransport`` answering with the example.
"""

from __future__ import annotations

import json
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from _support.cassettes import MODES, Mode, calls_of, resend_captured
from _support.vendors import vendor_config

import invites
from invites import (
    AlreadyVerified,
    InvalidRequest,
    InviteError,
    InviteRejected,
    ProviderUnavailable,
    ResendResult,
    UserNotFound,
)
from invites.sandbox import SOFTWAREONE_ACCOUNT_ID

DATA = Path(__file__).parents[1] / "data"
modes = pytest.mark.parametrize("mode", MODES)

SOFTWAREONE = "https://api.platform.softwareone.com"
ECOSUITE = "https://api.ecosuite.io"
# The ids of the published account-user example: a membership (AUSR-) of a user (USR-).
ACCOUNT_USER_ID = "AUSR-4134-7183-7330"
USER_ID = "USR-6375-2499"
CURRENT = f"/public/v1/accounts/accounts/{SOFTWAREONE_ACCOUNT_ID}/users/{USER_ID}"
LEGACY = f"/public/v1/accounts/account-users/{ACCOUNT_USER_ID}"

Handler = Callable[[httpx.Request], httpx.Response]


def example(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


CLIENT = example("softwareone-client-test-bodies.json")
ECOSUITE_PAGE = example("ecosuite-resend-user-invite.json")


def answer(status: int, body: object) -> Callable[[], httpx.Response]:
    return lambda: httpx.Response(status, json=body)


def client_answer(name: str) -> Callable[[], httpx.Response]:
    """An answer from the official client's tests, with its status and content type."""
    entry = CLIENT[name]
    if "text" in entry:
        return lambda: httpx.Response(
            entry["status"], text=entry["text"], headers={"content-type": entry["content_type"]}
        )
    return answer(entry["status"], entry["body"])


def softwareone(
    resend: Callable[[], httpx.Response],
    mode: Mode,
    *,
    state: Callable[[], httpx.Response] | None = None,
    renewal: Callable[[], httpx.Response] | None = None,
    legacy: bool = False,
    **config: Any,
) -> tuple[ResendResult | InviteError, list[tuple[str, str]]]:
    """One resend whose answers are `resend`, then `state` (the GET), then `renewal`."""

    def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.path
        reply = {"resend-invite": resend, "send-new-invite": renewal}.get(path.rsplit("/", 1)[-1])
        if request.method == "GET":
            reply = state
        assert reply is not None, f"unexpected {request.method} {path}"
        return reply()

    if legacy:
        config = {"account_id": None, **config}
    user_id = ACCOUNT_USER_ID if legacy else USER_ID
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        outcome, sent = resend_captured(
            vendor_config("softwareone", SOFTWAREONE, **config),
            user_id,
            mode,
            transport=httpx.MockTransport(handle),
        )
    return outcome, calls_of(sent)


# --- SoftwareOne: success ---------------------------------------------------------------------


@modes
def test_the_documented_resend_answer_is_a_result(mode: Mode) -> None:
    body = example("softwareone-resend-user-invitation-200.json")

    outcome, calls = softwareone(answer(200, body), mode, legacy=True)

    assert outcome == ResendResult(
        provider="softwareone", user_id=ACCOUNT_USER_ID, invitation_status="text"
    )
    assert calls == [("POST", f"{LEGACY}/resend-invite")]


@modes
def test_the_documented_account_user_object_is_a_result(mode: Mode) -> None:
    [account_user] = example("softwareone-account-user-object.json")["data"]
    assert (account_user["id"], account_user["user"]["id"]) == (ACCOUNT_USER_ID, USER_ID)

    outcome, calls = softwareone(answer(200, account_user), mode)

    assert outcome == ResendResult(
        provider="softwareone", user_id=USER_ID, invitation_status="Invited"
    )
    assert calls == [("POST", f"{CURRENT}/resend-invite")]


@modes
def test_the_official_clients_invite_answer_is_a_result(mode: Mode) -> None:
    outcome, _ = softwareone(client_answer("invite_action_200"), mode)

    assert outcome == ResendResult(provider="softwareone", user_id=USER_ID)


# --- SoftwareOne: refusals explained by the membership's state --------------------------------


@modes
def test_a_refusal_then_the_documented_active_user_is_already_verified(mode: Mode) -> None:
    user = example("softwareone-user-object-account-context.json")
    assert user["status"] == "Active"
    refusal = example("softwareone-errors-handling-400.json")

    outcome, calls = softwareone(answer(400, refusal), mode, state=answer(200, user))

    assert type(outcome) is AlreadyVerified
    assert outcome.details["state"] == "Active"
    assert calls == [("POST", f"{CURRENT}/resend-invite"), ("GET", CURRENT)]


@modes
def test_a_refusal_then_the_documented_invited_account_user_stands(mode: Mode) -> None:
    [account_user] = example("softwareone-account-user-object.json")["data"]
    refusal = example("softwareone-error-without-parameters.json")

    outcome, _ = softwareone(answer(400, refusal), mode, state=answer(200, account_user))

    assert type(outcome) is InvalidRequest
    assert outcome.message == "External ID is too long"


@modes
def test_the_official_clients_invite_answer_completes_a_renewal(mode: Mode) -> None:
    expired = {"id": ACCOUNT_USER_ID, "invitation": {"status": "InvitationExpired"}}

    outcome, calls = softwareone(
        answer(409, example("softwareone-error-without-parameters.json") | {"status": 409}),
        mode,
        state=answer(200, expired),
        renewal=client_answer("invite_action_200"),
        renew_expired=True,
    )

    assert outcome == ResendResult(provider="softwareone", user_id=USER_ID, renewed=True)
    assert calls[-1] == ("POST", f"{CURRENT}/send-new-invite")


# --- SoftwareOne: error bodies ----------------------------------------------------------------


@modes
def test_the_documented_error_without_parameters(mode: Mode) -> None:
    body = example("softwareone-error-without-parameters.json")

    outcome, _ = softwareone(answer(400, body), mode, state=answer(404, {}))

    assert type(outcome) is InvalidRequest
    assert outcome.status_code == 400
    assert outcome.message == "External ID is too long"
    assert outcome.request_id == body["traceId"]
    assert outcome.details["title"] == "Order update failed"


@modes
def test_the_documented_error_with_parameters_says_each_message_once(mode: Mode) -> None:
    body = example("softwareone-error-with-parameters.json")
    messages = [error["message"] for error in body["errors"]]
    assert body["detail"] == "; ".join(messages)  # the shape that used to double every text

    outcome, _ = softwareone(answer(400, body), mode, state=answer(404, {}))

    assert type(outcome) is InvalidRequest
    assert outcome.message == body["detail"]
    for message in messages:
        assert str(outcome).count(message) == 1
    assert outcome.details["errors"] == messages


@modes
def test_the_documented_validation_error_keeps_its_field_errors(mode: Mode) -> None:
    body = example("softwareone-errors-handling-400.json")

    outcome, _ = softwareone(answer(400, body), mode, state=answer(404, {}))

    assert type(outcome) is InvalidRequest
    assert outcome.message == (
        "One or more validation errors occurred.: mistake: Unknown expression group."
    )
    assert outcome.request_id == body["traceId"]
    assert outcome.details["errors"] == ["mistake: Unknown expression group."]


@modes
def test_the_official_clients_api_error_with_errors_as_a_string(mode: Mode) -> None:
    outcome, _ = softwareone(client_answer("api_error"), mode, state=answer(404, {}))

    assert type(outcome) is InvalidRequest
    assert outcome.message == "Invalid input: Some error details"
    assert outcome.request_id == "abc123"


@modes
@pytest.mark.parametrize("legacy", [False, True], ids=["current", "legacy"])
def test_the_gateways_not_found_is_user_not_found(mode: Mode, legacy: bool) -> None:
    outcome, calls = softwareone(client_answer("gateway_not_found"), mode, legacy=legacy)

    assert type(outcome) is UserNotFound
    assert outcome.status_code == 404
    assert outcome.message.startswith("Resource not found")
    assert ("set account_id" in outcome.message) is legacy
    assert len(calls) == 1


@modes
def test_an_account_user_id_on_the_current_endpoint_is_named_as_such(mode: Mode) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(404, json=CLIENT["gateway_not_found"]["body"])

    outcome, _ = resend_captured(
        vendor_config("softwareone", SOFTWAREONE),
        ACCOUNT_USER_ID,
        mode,
        transport=httpx.MockTransport(handle),
    )

    assert type(outcome) is UserNotFound
    assert "this endpoint takes user ids (USR-...)" in outcome.message


@modes
def test_the_official_clients_plain_text_500_is_provider_unavailable(mode: Mode) -> None:
    outcome, calls = softwareone(client_answer("plain_text_500"), mode)

    assert type(outcome) is ProviderUnavailable
    assert outcome.status_code == 500
    assert "Internal Server Error" in outcome.details["body"]
    assert len(calls) == 1


@pytest.mark.parametrize(("given", "expected"), CLIENT["base_urls"]["rows"])
def test_the_base_url_rule_is_the_official_clients(given: str, expected: str) -> None:
    config = vendor_config("softwareone", given, allow_insecure_http=True)

    assert invites.from_config(config).base_url == expected


# --- Ecosuite ---------------------------------------------------------------------------------


def ecosuite(
    handler: Handler, mode: Mode, invitee: invites.Invitee | str = "eco-42"
) -> tuple[ResendResult | InviteError, list[httpx.Request]]:
    return resend_captured(
        vendor_config("ecosuite", ECOSUITE), invitee, mode, transport=httpx.MockTransport(handler)
    )


@modes
def test_the_documented_profile_is_resent_exactly(mode: Mode) -> None:
    profile = ECOSUITE_PAGE["request_body"]

    def handle(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(200, json=profile)
        return httpx.Response(200, json=ECOSUITE_PAGE["response_200"])

    outcome, sent = ecosuite(handle, mode)

    assert outcome == ResendResult(provider="ecosuite", user_id="eco-42")
    assert calls_of(sent) == [("GET", "/users/eco-42"), ("PUT", "/users/eco-42/resend")]
    assert json.loads(sent[1].content) == profile


@modes
def test_the_documented_400_is_invalid_request(mode: Mode) -> None:
    body = {"message": ECOSUITE_PAGE["response_400_text"]}
    invitee = invites.Invitee(
        user_id="eco-42", email="name@gmail.com", first_name="text", last_name="text"
    )

    outcome, sent = ecosuite(lambda request: httpx.Response(400, json=body), mode, invitee)

    assert type(outcome) is InvalidRequest
    assert outcome.message == "Invalid status value"
    assert outcome.status_code == 400
    assert calls_of(sent) == [("PUT", "/users/eco-42/resend")]


# --- Tenant-header API ------------------------------------------------------------------------

TENANT_PAGE = example("tenant-api-resend-invite.json")
TENANT_USER = "2489e9ad-2ee2-8e00-8ec9-32d5f69181c0"


def tenant(status: int, body: object, mode: Mode) -> ResendResult | InviteError:
    config = vendor_config("tenant_api", "https://identity.example.com", tenant_id=TENANT_USER)
    transport = httpx.MockTransport(lambda request: httpx.Response(status, json=body))
    outcome, _ = resend_captured(config, TENANT_USER, mode, transport=transport)
    return outcome


@modes
def test_the_tenant_apis_generated_200_example_is_a_result(mode: Mode) -> None:
    outcome = tenant(200, TENANT_PAGE["response_200"], mode)

    assert outcome == ResendResult(provider="tenant_api", user_id=TENANT_USER, message="example")


@modes
@pytest.mark.parametrize(("status", "expected"), [(404, UserNotFound), (409, InviteRejected)])
def test_the_tenant_apis_generated_error_example_maps_by_status(
    mode: Mode, status: int, expected: type[InviteError]
) -> None:
    outcome = tenant(status, TENANT_PAGE["error"], mode)

    assert type(outcome) is expected
    assert outcome.vendor_code == "example"
    assert outcome.message == "example"
    assert outcome.details["notices"] == ["example"]
