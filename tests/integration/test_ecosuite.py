"""Ecosuite: ``PUT /users/{userId}/resend`` through the sandbox, from cassettes, and live.

Every documented exchange runs over a real socket against the sandbox, through the sync and the
async driver alike; the cassettes in ``cassettes/ecosuite/`` pin the wire format.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
from _support.cassettes import (
    CASSETTE_BASE_URL,
    ECOSUITE_FULL_BODY,
    ECOSUITE_FULL_INVITEE,
    ECOSUITE_SCENARIOS,
    ECOSUITE_UNKNOWN_USER,
    MODES,
    REDACTED,
    Mode,
    Scenario,
    assert_current,
    calls_of,
    check_outcome,
    leaks,
    live_target,
    missing_live_variables,
    record_live,
    recorded_requests,
    replay,
    resend_captured,
)
from _support.vendors import vendor_config

import invites
from invites import (
    Access,
    AccessDenied,
    AuthenticationFailed,
    ConfigurationError,
    InvalidInvitee,
    InvalidRequest,
    Invitee,
    InviteRejected,
    PermissionDenied,
    ResendResult,
    UserNotFound,
)
from invites.sandbox import (
    ECOSUITE_PROFILES,
    ECOSUITE_TOKEN,
    ECOSUITE_USER_1,
    ECOSUITE_USER_2,
    ECOSUITE_USER_FORBIDDEN,
    RunningSandbox,
    Sandbox,
)

#: Every exchange runs through the sync and the async driver: both must give the same outcome.
modes = pytest.mark.parametrize("mode", MODES)


RESEND_1 = f"/users/{ECOSUITE_USER_1}/resend"


def profile_body(user_id: str) -> dict[str, Any]:
    """The resend body a stored profile becomes: every field, access included."""
    body: dict[str, Any] = json.loads(json.dumps(ECOSUITE_PROFILES[user_id], default=dict))
    return body


def sandbox_calls(sandbox: Sandbox) -> list[tuple[str, str]]:
    return [(request.method, request.path) for request in sandbox.requests]


def assert_nothing_sent(sandbox: Sandbox) -> None:
    assert sandbox.requests == []
    assert sandbox.emails_snapshot() == {}


# --- the resend, through the sandbox --------------------------------------------------------------


@modes
def test_full_invitee_is_one_put_with_the_documented_body(
    server: RunningSandbox, sandbox: Sandbox, mode: Mode
) -> None:
    outcome, sent = resend_captured(
        vendor_config("ecosuite", server.url), ECOSUITE_FULL_INVITEE, mode
    )

    assert outcome == ResendResult(provider="ecosuite", user_id=ECOSUITE_USER_1, status_code=200)
    [request] = sent
    assert request.method == "PUT"
    assert str(request.url) == server.url + RESEND_1
    assert request.headers["Authorization"] == ECOSUITE_TOKEN  # no "Bearer" by default
    assert "X-API-Key" not in request.headers
    assert request.headers["Content-Type"] == "application/json"
    assert json.loads(request.content) == ECOSUITE_FULL_BODY
    assert sandbox_calls(sandbox) == [("PUT", RESEND_1)]
    assert sandbox.emails_snapshot() == {ECOSUITE_USER_1: 1}


@modes
@pytest.mark.parametrize("user_id", [ECOSUITE_USER_1, ECOSUITE_USER_2])
def test_bare_id_gets_the_profile_then_resends_with_its_fields(
    server: RunningSandbox, sandbox: Sandbox, mode: Mode, user_id: str
) -> None:
    outcome, sent = resend_captured(vendor_config("ecosuite", server.url), user_id, mode)

    assert outcome == ResendResult(provider="ecosuite", user_id=user_id, status_code=200)
    get, put = sent
    assert (get.method, str(get.url)) == ("GET", f"{server.url}/users/{user_id}")
    assert get.content == b""
    assert get.headers["Authorization"] == ECOSUITE_TOKEN
    assert (put.method, str(put.url)) == ("PUT", f"{server.url}/users/{user_id}/resend")
    assert put.headers["Authorization"] == ECOSUITE_TOKEN
    assert json.loads(put.content) == profile_body(user_id)
    assert sandbox_calls(sandbox) == [
        ("GET", f"/users/{user_id}"),
        ("PUT", f"/users/{user_id}/resend"),
    ]
    assert sandbox.emails_snapshot() == {user_id: 1}


@modes
def test_profile_fills_only_the_fields_the_invitee_left_empty(
    server: RunningSandbox, sandbox: Sandbox, mode: Mode
) -> None:
    invitee = Invitee(user_id=ECOSUITE_USER_1, email="countess@example.com", last_name="Byron")

    outcome, sent = resend_captured(vendor_config("ecosuite", server.url), invitee, mode)

    assert isinstance(outcome, ResendResult)
    assert calls_of(sent) == [("GET", f"/users/{ECOSUITE_USER_1}"), ("PUT", RESEND_1)]
    assert json.loads(sent[1].content) == {
        **profile_body(ECOSUITE_USER_1),
        "email": "countess@example.com",
        "lastName": "Byron",
    }
    assert sandbox.emails_sent(ECOSUITE_USER_1) == 1


@modes
def test_empty_strings_count_as_left_empty(
    server: RunningSandbox, sandbox: Sandbox, mode: Mode
) -> None:
    invitee = Invitee(user_id=ECOSUITE_USER_2, email="", first_name="", last_name="Hopper-Smith")

    outcome, sent = resend_captured(vendor_config("ecosuite", server.url), invitee, mode)

    assert isinstance(outcome, ResendResult)
    assert json.loads(sent[1].content) == {
        **profile_body(ECOSUITE_USER_2),
        "lastName": "Hopper-Smith",
    }
    assert sandbox.emails_snapshot() == {ECOSUITE_USER_2: 1}


@modes
@pytest.mark.parametrize(
    "invitee",
    [
        ECOSUITE_USER_1,
        Invitee(user_id=ECOSUITE_USER_1, email="ada@example.com", first_name="Ada"),
    ],
    ids=["bare-id", "no-last-name"],
)
def test_without_fetch_profile_an_incomplete_invitee_is_refused_unsent(
    server: RunningSandbox, sandbox: Sandbox, mode: Mode, invitee: Invitee | str
) -> None:
    config = vendor_config("ecosuite", server.url, fetch_profile=False)

    outcome, sent = resend_captured(config, invitee, mode)

    assert type(outcome) is InvalidInvitee
    assert outcome.provider == "ecosuite"
    assert outcome.user_id == ECOSUITE_USER_1
    assert "fetch_profile" in str(outcome)
    assert sent == []
    assert_nothing_sent(sandbox)


@modes
@pytest.mark.parametrize(
    ("access", "problem"),
    [
        (Access(prevent_download="maybe"), "prevent_download"),
        (Access(restrict_projects="all"), "restrict_projects"),
        (Access(start_date="2025/01/06"), "start_date"),
        (Access(end_date="31-12-2026"), "end_date"),
    ],
)
def test_invalid_access_is_refused_before_anything_is_sent(
    server: RunningSandbox, sandbox: Sandbox, mode: Mode, access: Access, problem: str
) -> None:
    invitee = Invitee(
        user_id=ECOSUITE_USER_1,
        email="ada@example.com",
        first_name="Ada",
        last_name="Lovelace",
        access=access,
    )

    outcome, sent = resend_captured(vendor_config("ecosuite", server.url), invitee, mode)

    assert type(outcome) is InvalidInvitee
    assert problem in outcome.message
    assert sent == []
    assert_nothing_sent(sandbox)


@modes
def test_an_invalid_email_is_refused_before_the_profile_is_fetched(
    server: RunningSandbox, sandbox: Sandbox, mode: Mode
) -> None:
    invitee = Invitee(user_id=ECOSUITE_USER_1, email="not-an-email")

    outcome, sent = resend_captured(vendor_config("ecosuite", server.url), invitee, mode)

    assert type(outcome) is InvalidInvitee
    assert sent == []
    assert_nothing_sent(sandbox)


@modes
@pytest.mark.parametrize("invitee", [ECOSUITE_FULL_INVITEE, ECOSUITE_USER_1], ids=["full", "bare"])
def test_auth_prefix_bearer_prefixes_every_request(
    server: RunningSandbox, sandbox: Sandbox, mode: Mode, invitee: Invitee | str
) -> None:
    config = vendor_config("ecosuite", server.url, auth_prefix="Bearer")

    outcome, sent = resend_captured(config, invitee, mode)

    assert isinstance(outcome, ResendResult)
    assert sent
    assert {request.headers["Authorization"] for request in sent} == {f"Bearer {ECOSUITE_TOKEN}"}
    assert sandbox.emails_snapshot() == {ECOSUITE_USER_1: 1}


def test_a_prefix_that_is_not_printable_ascii_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="auth_prefix: must be printable ASCII"):
        invites.from_config(vendor_config("ecosuite", "https://api.ecosuite.io", auth_prefix="Bé"))


# --- refusals -------------------------------------------------------------------------------------


@modes
def test_400_invalid_status_value_keeps_the_vendor_message(
    server: RunningSandbox, sandbox: Sandbox, mode: Mode
) -> None:
    # A blank first name passes the adapter (it is a string) but not Ecosuite's validation.
    invitee = Invitee(
        user_id=ECOSUITE_USER_1, email="ada@example.com", first_name=" ", last_name="L"
    )

    outcome, sent = resend_captured(vendor_config("ecosuite", server.url), invitee, mode)

    assert type(outcome) is InvalidRequest
    assert isinstance(outcome, InviteRejected)
    assert (outcome.status_code, outcome.message) == (400, "Invalid status value")
    assert str(outcome) == (f"ecosuite, user '{ECOSUITE_USER_1}', HTTP 400: Invalid status value")
    assert outcome.retryable is False
    assert calls_of(sent) == [("PUT", RESEND_1)]
    assert sandbox.emails_snapshot() == {}


@modes
@pytest.mark.parametrize(
    ("invitee", "calls"),
    [
        (ECOSUITE_FULL_INVITEE, [("PUT", RESEND_1)]),
        (ECOSUITE_USER_1, [("GET", f"/users/{ECOSUITE_USER_1}")]),
    ],
    ids=["resend", "profile"],
)
def test_401_bad_token_is_authentication_failed(
    server: RunningSandbox,
    sandbox: Sandbox,
    mode: Mode,
    invitee: Invitee | str,
    calls: list[tuple[str, str]],
) -> None:
    config = vendor_config("ecosuite", server.url, token="not-the-sandbox-token")

    outcome, sent = resend_captured(config, invitee, mode)

    assert type(outcome) is AuthenticationFailed
    assert isinstance(outcome, AccessDenied)
    assert (outcome.status_code, outcome.message) == (401, "Unauthorized")
    assert "not-the-sandbox-token" not in str(outcome) + repr(outcome)
    assert calls_of(sent) == calls
    assert sandbox.emails_snapshot() == {}


@modes
@pytest.mark.parametrize("bare", [False, True], ids=["full", "bare"])
def test_403_is_permission_denied(
    server: RunningSandbox, sandbox: Sandbox, mode: Mode, bare: bool
) -> None:
    invitee = (
        ECOSUITE_USER_FORBIDDEN
        if bare
        else Invitee(
            user_id=ECOSUITE_USER_FORBIDDEN, email="x@example.com", first_name="X", last_name="Y"
        )
    )

    outcome, sent = resend_captured(vendor_config("ecosuite", server.url), invitee, mode)

    assert type(outcome) is PermissionDenied
    assert (outcome.status_code, outcome.message) == (403, "Forbidden")
    assert outcome.user_id == ECOSUITE_USER_FORBIDDEN
    assert len(sent) == 1
    assert sandbox.emails_snapshot() == {}


@modes
@pytest.mark.parametrize(
    ("bare", "call"),
    [
        (False, ("PUT", f"/users/{ECOSUITE_UNKNOWN_USER}/resend")),
        (True, ("GET", f"/users/{ECOSUITE_UNKNOWN_USER}")),
    ],
    ids=["resend", "profile"],
)
def test_404_unknown_user_is_user_not_found(
    server: RunningSandbox, sandbox: Sandbox, mode: Mode, bare: bool, call: tuple[str, str]
) -> None:
    invitee = (
        ECOSUITE_UNKNOWN_USER
        if bare
        else Invitee(
            user_id=ECOSUITE_UNKNOWN_USER, email="x@example.com", first_name="X", last_name="Y"
        )
    )

    outcome, sent = resend_captured(vendor_config("ecosuite", server.url), invitee, mode)

    assert type(outcome) is UserNotFound
    assert (outcome.status_code, outcome.message) == (404, "User not found")
    assert calls_of(sent) == [call]
    assert sandbox_calls(sandbox) == [call]
    assert sandbox.emails_snapshot() == {}


# --- cassettes ------------------------------------------------------------------------------------


@modes
@pytest.mark.parametrize("scenario", ECOSUITE_SCENARIOS, ids=lambda scenario: scenario.name)
def test_cassette_replays_with_exactly_the_recorded_requests(
    scenario: Scenario, mode: Mode
) -> None:
    check_outcome(scenario, replay(scenario, mode))


def test_cassettes_pin_the_documented_wire_format() -> None:
    by_name = {scenario.name: scenario for scenario in ECOSUITE_SCENARIOS}
    [full] = recorded_requests(by_name["resend_full_invitee"].path)
    assert (full["method"], full["uri"]) == ("PUT", CASSETTE_BASE_URL + RESEND_1)
    assert full["headers"]["authorization"] == [REDACTED]
    assert full["headers"]["content-type"] == ["application/json"]
    assert json.loads(full["body"]) == ECOSUITE_FULL_BODY

    [bearer] = recorded_requests(by_name["resend_auth_prefix_bearer"].path)
    assert bearer["headers"]["authorization"] == [f"Bearer {REDACTED}"]

    get, put = recorded_requests(by_name["resend_bare_id_fetches_profile"].path)
    assert (get["method"], get["uri"]) == ("GET", f"{CASSETTE_BASE_URL}/users/{ECOSUITE_USER_1}")
    assert json.loads(put["body"]) == profile_body(ECOSUITE_USER_1)


def test_cassettes_are_current(server: RunningSandbox, tmp_path: Path) -> None:
    """The committed cassettes hold what recording them again would (requests and statuses)."""
    assert_current(ECOSUITE_SCENARIOS, server, tmp_path)


def test_cassettes_hold_no_credentials() -> None:
    assert leaks() == []


# --- live -----------------------------------------------------------------------------------------


def test_live_variables_decide_the_skip() -> None:
    complete = {"INVITES_LIVE_ECOSUITE_TOKEN": "t", "INVITES_LIVE_ECOSUITE_USER_ID": "u"}
    assert missing_live_variables("ecosuite", complete) == []
    assert live_target("ecosuite", complete) is not None
    for name in complete:
        for partial in ({**complete, name: ""}, {k: v for k, v in complete.items() if k != name}):
            assert missing_live_variables("ecosuite", partial) == [name]
            assert live_target("ecosuite", partial) is None
    target = live_target("ecosuite", {**complete, "INVITES_LIVE_ECOSUITE_AUTH_PREFIX": "Bearer"})
    assert target is not None
    assert target.config == {"provider": "ecosuite", "token": "t", "auth_prefix": "Bearer"}
    assert "'t'" not in repr(target)


@pytest.mark.live
@pytest.mark.skipif(
    bool(missing_live_variables("ecosuite", os.environ)),
    reason="set INVITES_LIVE_ECOSUITE_TOKEN and INVITES_LIVE_ECOSUITE_USER_ID to run",
)
def test_live_resend_records_a_filtered_cassette() -> None:
    target = live_target("ecosuite", os.environ)
    assert target is not None
    outcome, recorded = record_live(target)
    assert isinstance(outcome, ResendResult | InviteRejected), repr(outcome)
    assert recorded >= 1
    text = target.path.read_text(encoding="utf-8")
    assert target.config["token"] not in text
