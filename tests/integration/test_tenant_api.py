"""Tenant-header API: ``POST /v1/users/{id}/resend-invite`` with ``X-Tenant-ID``.

Through the sandbox over a real socket (sync and async), from the cassettes in
``cassettes/tenant_api/``, against hand-written answers for codes the sandbox does not produce,
and live.
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from _support.cassettes import (
    CASSETTE_BASE_URL,
    LIVE_TENANT_API_BASE_URL,
    MODES,
    REDACTED,
    TENANT_API_SCENARIOS,
    Mode,
    Scenario,
    assert_current,
    build_quietly,
    calls_of,
    cassette_vcr,
    check_outcome,
    leaks,
    live_target,
    missing_live_variables,
    outcome_of,
    record_live,
    recorded_requests,
    replay,
    resend,
    resend_captured,
    scenario_config,
)
from _support.vendors import vendor_config
from vcr.errors import CannotOverwriteExistingCassetteException
from vcr.request import Request as VcrRequest

from invites import (
    AlreadyVerified,
    AuthenticationFailed,
    InvalidInvitee,
    InvalidRequest,
    InviteError,
    InviteRejected,
    OutcomeUnknown,
    PermissionDenied,
    ProviderUnavailable,
    ResendResult,
    TenantMismatch,
    UnexpectedResponse,
    UserNotFound,
)
from invites.sandbox import (
    OTHER_TENANT_ID,
    TENANT_API_KEY,
    TENANT_BEARER_TOKEN,
    TENANT_ID,
    TENANT_USER_COOLDOWN,
    TENANT_USER_INVITED,
    TENANT_USER_INVITED_2,
    TENANT_USER_UNKNOWN,
    TENANT_USER_VERIFIED,
    RunningSandbox,
    Sandbox,
)

#: Every exchange runs through the sync and the async driver: both must give the same outcome.
modes = pytest.mark.parametrize("mode", MODES)


def resend_path(user_id: str) -> str:
    return f"/v1/users/{user_id}/resend-invite"


# --- the resend, through the sandbox --------------------------------------------------------------


@modes
def test_api_key_resend_sends_the_key_and_the_tenant(
    server: RunningSandbox, sandbox: Sandbox, mode: Mode
) -> None:
    outcome, sent = resend_captured(
        vendor_config("tenant_api", server.url), TENANT_USER_INVITED, mode
    )

    assert outcome == ResendResult(
        provider="tenant_api",
        user_id=TENANT_USER_INVITED,
        message="Invite resent.",
        status_code=200,
    )
    [request] = sent
    assert request.method == "POST"
    assert str(request.url) == server.url + resend_path(TENANT_USER_INVITED)
    assert request.headers["X-API-Key"] == TENANT_API_KEY
    assert request.headers["X-Tenant-ID"] == TENANT_ID
    assert "Authorization" not in request.headers
    assert request.content == b""
    assert sandbox.emails_snapshot() == {TENANT_USER_INVITED: 1}


@modes
def test_bearer_resend_sends_an_authorization_header(
    server: RunningSandbox, sandbox: Sandbox, mode: Mode
) -> None:
    config = vendor_config("tenant_api", server.url, auth="bearer", token=TENANT_BEARER_TOKEN)

    outcome, sent = resend_captured(config, TENANT_USER_INVITED_2, mode)

    assert isinstance(outcome, ResendResult)
    assert outcome.message == "Invite resent."
    [request] = sent
    assert request.headers["Authorization"] == f"Bearer {TENANT_BEARER_TOKEN}"
    assert request.headers["X-Tenant-ID"] == TENANT_ID
    assert "X-API-Key" not in request.headers
    assert sandbox.emails_snapshot() == {TENANT_USER_INVITED_2: 1}


@modes
def test_an_upper_case_uuid_is_sent_in_canonical_form(
    server: RunningSandbox, sandbox: Sandbox, mode: Mode
) -> None:
    outcome, sent = resend_captured(
        vendor_config("tenant_api", server.url), TENANT_USER_INVITED.upper(), mode
    )

    assert isinstance(outcome, ResendResult)
    assert outcome.user_id == TENANT_USER_INVITED  # the user's one id: UUIDs compare without case
    assert calls_of(sent) == [("POST", resend_path(TENANT_USER_INVITED))]
    assert sandbox.emails_snapshot() == {TENANT_USER_INVITED: 1}


# --- refusals -------------------------------------------------------------------------------------


@modes
def test_409_already_verified(server: RunningSandbox, sandbox: Sandbox, mode: Mode) -> None:
    outcome, sent = resend_captured(
        vendor_config("tenant_api", server.url), TENANT_USER_VERIFIED, mode
    )

    assert type(outcome) is AlreadyVerified
    assert (outcome.status_code, outcome.vendor_code) == (409, "already_verified")
    assert outcome.message == "User is already verified."
    assert str(outcome) == (
        f"tenant_api, user '{TENANT_USER_VERIFIED}', HTTP 409, code 'already_verified': "
        "User is already verified."
    )
    assert len(sent) == 1
    assert sandbox.emails_snapshot() == {}


@modes
def test_tenant_mismatch_keeps_the_policy_notices(
    server: RunningSandbox, sandbox: Sandbox, mode: Mode
) -> None:
    config = vendor_config("tenant_api", server.url, tenant_id=OTHER_TENANT_ID)

    outcome, sent = resend_captured(config, TENANT_USER_INVITED, mode)

    assert type(outcome) is TenantMismatch
    assert isinstance(outcome, PermissionDenied)
    assert (outcome.status_code, outcome.vendor_code) == (403, "tenant_mismatch")
    assert outcome.details["notices"] == ["policy tenant-isolation forbids cross-tenant access"]
    [request] = sent
    assert request.headers["X-Tenant-ID"] == OTHER_TENANT_ID
    assert sandbox.emails_snapshot() == {}


@modes
def test_not_found_keeps_the_policy_notices(
    server: RunningSandbox, sandbox: Sandbox, mode: Mode
) -> None:
    outcome, _ = resend_captured(vendor_config("tenant_api", server.url), TENANT_USER_UNKNOWN, mode)

    assert type(outcome) is UserNotFound
    assert (outcome.status_code, outcome.vendor_code) == (404, "not_found")
    assert outcome.message == "User not found."
    assert outcome.details["notices"] == ["policy read-users matched no user"]
    assert sandbox.emails_snapshot() == {}


@modes
def test_an_undocumented_code_maps_by_status_and_is_kept(
    server: RunningSandbox, sandbox: Sandbox, mode: Mode
) -> None:
    outcome, _ = resend_captured(
        vendor_config("tenant_api", server.url), TENANT_USER_COOLDOWN, mode
    )

    assert type(outcome) is InvalidRequest
    assert (outcome.status_code, outcome.vendor_code) == (422, "invite_cooldown")
    assert outcome.message == "An invitation was sent recently."
    assert outcome.details["details"] == {"retry_in": 300}
    assert "invite_cooldown" in str(outcome)
    assert sandbox.emails_snapshot() == {}


@modes
@pytest.mark.parametrize(
    "user_id",
    [
        "not-a-uuid",
        "eco-user-1",
        "1234",
        TENANT_USER_INVITED[:-1],
        # uuid.UUID() accepts these; the tenant API does not, and "_" would name another user.
        f"{{{TENANT_USER_INVITED}}}",
        f"urn:uuid:{TENANT_USER_INVITED}",
        TENANT_USER_INVITED.replace("-", ""),
        "a_" + TENANT_USER_INVITED.replace("-", "")[2:],
    ],
    ids=["word", "other-vendor", "digits", "short", "braces", "urn", "bare-hex", "underscore"],
)
def test_a_non_uuid_id_is_refused_before_anything_is_sent(
    server: RunningSandbox, sandbox: Sandbox, mode: Mode, user_id: str
) -> None:
    outcome, sent = resend_captured(vendor_config("tenant_api", server.url), user_id, mode)

    assert type(outcome) is InvalidInvitee
    assert (outcome.provider, outcome.user_id) == ("tenant_api", user_id)
    assert "UUID" in outcome.message
    assert sent == []
    assert sandbox.requests == []


@modes
@pytest.mark.parametrize("auth", ["api_key", "bearer"])
def test_401_is_authentication_failed(
    server: RunningSandbox, sandbox: Sandbox, mode: Mode, auth: str
) -> None:
    config = vendor_config("tenant_api", server.url, auth=auth, token="not-the-sandbox-key")

    outcome, sent = resend_captured(config, TENANT_USER_INVITED, mode)

    assert type(outcome) is AuthenticationFailed
    assert (outcome.status_code, outcome.vendor_code) == (401, "unauthorized")
    assert "not-the-sandbox-key" not in str(outcome) + repr(outcome)
    assert len(sent) == 1
    assert sandbox.emails_snapshot() == {}


# --- codes and shapes the sandbox does not produce ------------------------------------------------


@modes
@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (
            400,
            {"code": "already_verified", "message": "User is already verified."},
            AlreadyVerified,
        ),
        (404, {"code": "tenant_mismatch", "message": "x"}, TenantMismatch),
        (400, {"code": "not_found", "message": "x"}, UserNotFound),
        (404, {"code": "gone_fishing", "message": "x"}, UserNotFound),
        (400, {"code": "gone_fishing", "message": "x"}, InvalidRequest),
        (403, {"code": "gone_fishing", "message": "x"}, PermissionDenied),
        (409, {"code": "gone_fishing", "message": "x"}, InviteRejected),
        (410, {"message": "x"}, InviteRejected),
        (400, {"code": 7, "message": "x"}, InvalidRequest),
        (302, {"code": "already_verified", "message": "moved"}, UnexpectedResponse),
        (500, {"code": "not_found", "message": "x"}, ProviderUnavailable),
    ],
    ids=[
        "code-beats-400",
        "code-beats-404",
        "not-found-code",
        "unknown-404",
        "unknown-400",
        "unknown-403",
        "unknown-409",
        "no-code-410",
        "non-string-code",
        "redirect-ignores-code",
        "5xx-ignores-code",
    ],
)
def test_code_first_then_status(
    mode: Mode, status: int, body: dict[str, Any], expected: type[InviteError]
) -> None:
    def vendor(request: httpx.Request) -> httpx.Response:
        return httpx.Response(status, json=body)

    outcome, _ = resend_captured(
        vendor_config("tenant_api", "https://id.example.com"),
        TENANT_USER_INVITED,
        mode,
        transport=httpx.MockTransport(vendor),
    )

    assert type(outcome) is expected
    assert outcome.status_code == status
    code = body.get("code")
    assert outcome.vendor_code == (code if isinstance(code, str) else None)


# --- cassettes ------------------------------------------------------------------------------------


@modes
@pytest.mark.parametrize("scenario", TENANT_API_SCENARIOS, ids=lambda scenario: scenario.name)
def test_cassette_replays_with_exactly_the_recorded_requests(
    scenario: Scenario, mode: Mode
) -> None:
    check_outcome(scenario, replay(scenario, mode))


def test_cassettes_pin_the_documented_wire_format() -> None:
    by_name = {scenario.name: scenario for scenario in TENANT_API_SCENARIOS}
    [key] = recorded_requests(by_name["resend_api_key"].path)
    assert (key["method"], key["uri"]) == (
        "POST",
        CASSETTE_BASE_URL + resend_path(TENANT_USER_INVITED),
    )
    assert key["headers"]["x-api-key"] == [REDACTED]
    assert key["headers"]["x-tenant-id"] == [TENANT_ID]
    assert "authorization" not in key["headers"]
    assert not key["body"]
    [bearer] = recorded_requests(by_name["resend_bearer"].path)
    assert bearer["headers"]["authorization"] == [f"Bearer {REDACTED}"]
    assert "x-api-key" not in bearer["headers"]
    [mismatch] = recorded_requests(by_name["tenant_mismatch"].path)
    assert mismatch["headers"]["x-tenant-id"] == [OTHER_TENANT_ID]


@modes
def test_a_different_tenant_header_does_not_match_the_cassette(mode: Mode) -> None:
    """``X-Tenant-ID`` is part of the match: a replay with another tenant is refused."""
    [scenario] = [s for s in TENANT_API_SCENARIOS if s.name == "resend_api_key"]
    changed = dataclasses.replace(scenario, config={"tenant_id": OTHER_TENANT_ID})

    with cassette_vcr().use_cassette(str(scenario.path), record_mode="none") as cassette:
        provider = build_quietly(
            scenario_config(changed, CASSETTE_BASE_URL, allow_insecure_http=True)
        )
        outcome = outcome_of(lambda: resend(provider, changed.invitee, mode))
        assert cassette.play_count == 0

    # vcrpy refuses inside the HTTP client, where the provider cannot tell whether the request
    # left: the outcome is unknown, caused by the refusal.
    assert isinstance(outcome, OutcomeUnknown)
    assert isinstance(outcome.__cause__, CannotOverwriteExistingCassetteException)


def test_credential_headers_keep_only_their_scheme() -> None:
    recorder = cassette_vcr()
    scrub = recorder.get_merged_config()["before_record_request"]
    request = VcrRequest(
        "POST",
        "http://127.0.0.1:59999/v1/users/u/resend-invite",
        b"",
        {
            "X-API-Key": TENANT_API_KEY,
            "Authorization": f"Bearer {TENANT_BEARER_TOKEN}",
            "X-Tenant-ID": TENANT_ID,
            "User-Agent": "python-httpx/0.28.1",
            "Host": "127.0.0.1:59999",
        },
    )

    scrubbed = scrub(request)

    assert dict(scrubbed.headers) == {
        "x-api-key": REDACTED,
        "authorization": f"Bearer {REDACTED}",
        "x-tenant-id": TENANT_ID,
    }
    assert scrubbed.uri == CASSETTE_BASE_URL + "/v1/users/u/resend-invite"
    assert scrub(scrubbed).headers == scrubbed.headers  # vcrpy re-applies it on every load
    assert request.headers["X-API-Key"] == TENANT_API_KEY  # the live request is left alone


def test_cassettes_are_current(server: RunningSandbox, tmp_path: Path) -> None:
    """The committed cassettes hold what recording them again would (requests and statuses)."""
    assert_current(TENANT_API_SCENARIOS, server, tmp_path)


def test_cassettes_hold_no_credentials() -> None:
    assert leaks() == []


def test_live_recordings_replace_personal_data_and_the_host() -> None:
    recorder = cassette_vcr(base_url=LIVE_TENANT_API_BASE_URL, personal=True)
    scrub_request = recorder.get_merged_config()["before_record_request"]
    scrub_response = recorder.get_merged_config()["before_record_response"]
    sent = json.dumps({"email": "someone@example.com", "firstName": "Some", "lastName": "One"})
    request = VcrRequest(
        "PUT",
        "https://id.internal.example.com/users/u/resend",
        sent.encode(),
        {"Content-Type": "application/json", "Content-Length": str(len(sent))},
    )
    body = json.dumps({"user": {"id": "USR-1", "name": "Some One"}, "email": "someone@example.com"})

    scrubbed = scrub_request(request)
    answer = scrub_response(
        {"status": {"code": 200, "message": "OK"}, "headers": {}, "body": {"string": body.encode()}}
    )

    assert scrubbed.uri == LIVE_TENANT_API_BASE_URL + "/users/u/resend"
    assert scrubbed.headers["content-length"] == str(len(scrubbed.body))
    for text in (scrubbed.body.decode(), answer["body"]["string"].decode()):
        assert "someone@example.com" not in text
        assert "Some" not in text
    assert json.loads(answer["body"]["string"])["user"]["id"] == "USR-1"


# --- live -----------------------------------------------------------------------------------------


def test_live_variables_decide_the_skip() -> None:
    complete = {
        "INVITES_LIVE_TENANT_API_BASE_URL": "https://id.example.com",
        "INVITES_LIVE_TENANT_API_TOKEN": "live-key-not-real",
        "INVITES_LIVE_TENANT_API_TENANT_ID": TENANT_ID,
        "INVITES_LIVE_TENANT_API_USER_ID": TENANT_USER_INVITED,
    }
    target = live_target("tenant_api", {**complete, "INVITES_LIVE_TENANT_API_AUTH": "bearer"})
    assert target is not None
    assert target.config == {
        "provider": "tenant_api",
        "token": "live-key-not-real",
        "base_url": "https://id.example.com",
        "tenant_id": TENANT_ID,
        "auth": "bearer",
    }
    assert target.stored_base_url == LIVE_TENANT_API_BASE_URL
    assert "live-key-not-real" not in repr(target)
    for name in complete:
        assert live_target("tenant_api", {**complete, name: ""}) is None
        without = {key: value for key, value in complete.items() if key != name}
        assert missing_live_variables("tenant_api", without) == [name]


@pytest.mark.live
@pytest.mark.skipif(
    bool(missing_live_variables("tenant_api", os.environ)),
    reason="set INVITES_LIVE_TENANT_API_BASE_URL, _TOKEN, _TENANT_ID and _USER_ID to run",
)
def test_live_resend_records_a_filtered_cassette() -> None:
    target = live_target("tenant_api", os.environ)
    assert target is not None
    outcome, recorded = record_live(target)
    assert isinstance(outcome, ResendResult | InviteRejected), repr(outcome)
    assert recorded == 1
    text = target.path.read_text(encoding="utf-8")
    assert target.config["token"] not in text
    assert target.config["base_url"] not in text
