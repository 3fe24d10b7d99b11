"""SoftwareOne: the current and the deprecated resend-invite endpoints.

Through the sandbox over a real socket (sync and async), from the cassettes in
``cassettes/softwareone/``, against hand-written answers (``httpx.MockTransport``) for the shapes
the sandbox does not produce, and live.
"""

from __future__ import annotations

import asyncio
import copy
import json
import os
import re
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _support.cassettes import (
    CASSETTE_BASE_URL,
    INVITATION_URL_PLACEHOLDER,
    MODES,
    REDACTED,
    SOFTWAREONE_SCENARIOS,
    SOFTWAREONE_UNKNOWN_MEMBERSHIP,
    SOFTWAREONE_UNKNOWN_USER,
    Mode,
    Scenario,
    assert_current,
    calls_of,
    cassette_vcr,
    check_outcome,
    leaks,
    live_target,
    missing_live_variables,
    record_live,
    recorded_requests,
    recorded_responses,
    replay,
    resend_captured,
)
from _support.vendors import vendor_config

import invites
from invites import (
    AlreadyVerified,
    AuthenticationFailed,
    ConfigurationError,
    InvalidRequest,
    InvitationExpired,
    InviteError,
    InviteRejected,
    PermissionDenied,
    ProviderUnavailable,
    ResendResult,
    UnexpectedResponse,
    UserNotFound,
)
from invites.sandbox import (
    SOFTWAREONE_ACCOUNT_ID,
    SOFTWAREONE_MEMBERSHIP_ACTIVE,
    SOFTWAREONE_MEMBERSHIP_EXPIRED,
    SOFTWAREONE_MEMBERSHIP_INVITED,
    SOFTWAREONE_TOKEN,
    SOFTWAREONE_USER_ACTIVE,
    SOFTWAREONE_USER_DELETED,
    SOFTWAREONE_USER_EXPIRED,
    SOFTWAREONE_USER_INVITED,
    Fault,
    RunningSandbox,
    Sandbox,
    SoftwareOneSandbox,
    serve,
)

#: Every exchange runs through the sync and the async driver: both must give the same outcome.
modes = pytest.mark.parametrize("mode", MODES)

CURRENT = f"/public/v1/accounts/accounts/{SOFTWAREONE_ACCOUNT_ID}/users/"
LEGACY = "/public/v1/accounts/account-users/"
TRACE_ID = re.compile(r"00-[0-9a-f]{32}-[0-9a-f]{16}-00")
DATA = Path(__file__).parents[1] / "data"
INVITATION_LINK = "https://portal.example.com/invitations/3f9c2e7a1b4d5e6f7a8b9c0d"


@pytest.fixture(scope="module")
def served() -> Iterator[RunningSandbox]:
    """One sandbox server for the module; `server` hands it out reset, as good as new."""
    with serve(Sandbox()) as running:
        yield running


@pytest.fixture
def server(served: RunningSandbox) -> Iterator[RunningSandbox]:
    """The module's sandbox over a real socket, with its seeded state and no faults."""
    served.sandbox.reset()
    served.sandbox.vendor(SoftwareOneSandbox).legacy_removed = False
    yield served
    served.sandbox.vendor(SoftwareOneSandbox).legacy_removed = False


@pytest.fixture
def sandbox(server: RunningSandbox) -> Sandbox:
    return server.sandbox


def legacy_config(base_url: str, **overrides: Any) -> dict[str, Any]:
    return vendor_config("softwareone", base_url, account_id=None, **overrides)


def sandbox_calls(sandbox: Sandbox) -> list[tuple[str, str]]:
    return [(request.method, request.path) for request in sandbox.requests]


def everything_said(error: InviteError | ResendResult) -> str:
    """Every text a caller or a log could show of an outcome."""
    texts = [str(error), repr(error)]
    if isinstance(error, InviteError):
        texts.append(repr(error.details))
        texts.extend(
            repr(getattr(error, name)) for name in ("message", "request_id", "vendor_code")
        )
    return "\n".join(texts)


# --- the current endpoint -------------------------------------------------------------------------


@modes
def test_current_endpoint_resends_to_an_invited_member(
    server: RunningSandbox, sandbox: Sandbox, mode: Mode
) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no DeprecationWarning with account_id set
        outcome, sent = resend_captured(
            vendor_config("softwareone", server.url), SOFTWAREONE_USER_INVITED, mode
        )

    assert outcome == ResendResult(
        provider="softwareone",
        user_id=SOFTWAREONE_USER_INVITED,
        invitation_status="Invited",
        status_code=200,
    )
    [request] = sent
    assert request.method == "POST"
    assert str(request.url) == f"{server.url}{CURRENT}{SOFTWAREONE_USER_INVITED}/resend-invite"
    assert request.headers["Authorization"] == f"Bearer {SOFTWAREONE_TOKEN}"
    assert request.content == b""
    assert sandbox.emails_snapshot() == {SOFTWAREONE_USER_INVITED: 1}


@modes
@pytest.mark.parametrize("suffix", ["/public", "/public/v1", "/public/v1/", "/"])
def test_base_url_ending_in_public_or_public_v1_is_stripped(
    server: RunningSandbox, sandbox: Sandbox, mode: Mode, suffix: str
) -> None:
    config = vendor_config("softwareone", server.url + suffix)
    assert invites.from_config(config).base_url == server.url

    outcome, sent = resend_captured(config, SOFTWAREONE_USER_INVITED, mode)

    assert isinstance(outcome, ResendResult)
    assert calls_of(sent) == [("POST", f"{CURRENT}{SOFTWAREONE_USER_INVITED}/resend-invite")]
    assert sandbox.emails_sent(SOFTWAREONE_USER_INVITED) == 1


@modes
@pytest.mark.parametrize(
    ("user_id", "legacy"),
    [(SOFTWAREONE_USER_ACTIVE, False), (SOFTWAREONE_MEMBERSHIP_ACTIVE, True)],
    ids=["current", "legacy"],
)
def test_active_member_is_already_verified_after_reading_its_state(
    server: RunningSandbox, sandbox: Sandbox, mode: Mode, user_id: str, legacy: bool
) -> None:
    config = legacy_config(server.url) if legacy else vendor_config("softwareone", server.url)

    outcome, sent = resend_captured(config, user_id, mode)

    assert type(outcome) is AlreadyVerified
    member = (LEGACY if legacy else CURRENT) + user_id
    assert calls_of(sent) == [("POST", member + "/resend-invite"), ("GET", member)]
    assert sandbox_calls(sandbox) == calls_of(sent)
    assert outcome.status_code == 400
    assert outcome.details["state"] == "Active"
    # Problem details whose ``errors`` is a mapping of field -> messages.
    assert outcome.details["errors"] == ["status: Account user is not in Invited state."]
    assert outcome.details["title"] == "Bad Request"
    assert outcome.message.startswith("One or more validation errors occurred.")
    assert TRACE_ID.fullmatch(outcome.request_id or "")
    assert "Account user is not in Invited state." in str(outcome)
    assert sandbox.emails_snapshot() == {}


@modes
@pytest.mark.parametrize(
    ("user_id", "legacy"),
    [(SOFTWAREONE_USER_EXPIRED, False), (SOFTWAREONE_MEMBERSHIP_EXPIRED, True)],
    ids=["current", "legacy"],
)
def test_expired_invitation_is_invitation_expired(
    server: RunningSandbox, sandbox: Sandbox, mode: Mode, user_id: str, legacy: bool
) -> None:
    config = legacy_config(server.url) if legacy else vendor_config("softwareone", server.url)

    outcome, sent = resend_captured(config, user_id, mode)

    assert type(outcome) is InvitationExpired
    member = (LEGACY if legacy else CURRENT) + user_id
    assert calls_of(sent) == [("POST", member + "/resend-invite"), ("GET", member)]
    assert outcome.status_code == 409
    assert outcome.details["state"] == "InvitationExpired"
    # Problem details whose ``errors`` is a list of {message, properties, id, parameters}.
    assert outcome.details["errors"] == ["Invitation has expired; send a new invitation."]
    needs = "account_id and renew_expired = true" if legacy else "renew_expired = true"
    assert outcome.message == (
        "Invitation has expired; send a new invitation. (the membership is InvitationExpired); "
        f"set {needs} to send a new invitation instead"
    )
    assert TRACE_ID.fullmatch(outcome.request_id or "")
    assert sandbox.emails_snapshot() == {}


@modes
def test_renew_expired_sends_one_new_invitation(
    server: RunningSandbox, sandbox: Sandbox, mode: Mode
) -> None:
    config = vendor_config("softwareone", server.url, renew_expired=True)

    outcome, sent = resend_captured(config, SOFTWAREONE_USER_EXPIRED, mode)

    assert outcome == ResendResult(
        provider="softwareone",
        user_id=SOFTWAREONE_USER_EXPIRED,
        invitation_status="Invited",
        status_code=200,
        renewed=True,
    )
    member = CURRENT + SOFTWAREONE_USER_EXPIRED
    assert calls_of(sent) == [
        ("POST", member + "/resend-invite"),
        ("GET", member),
        ("POST", member + "/send-new-invite"),
    ]
    assert sandbox.emails_snapshot() == {SOFTWAREONE_USER_EXPIRED: 1}


@modes
@pytest.mark.parametrize(
    ("user_id", "expected"),
    [(SOFTWAREONE_USER_INVITED, ResendResult), (SOFTWAREONE_USER_ACTIVE, AlreadyVerified)],
)
def test_renew_expired_leaves_other_outcomes_alone(
    server: RunningSandbox, sandbox: Sandbox, mode: Mode, user_id: str, expected: type
) -> None:
    config = vendor_config("softwareone", server.url, renew_expired=True)

    outcome, sent = resend_captured(config, user_id, mode)

    assert type(outcome) is expected
    assert not getattr(outcome, "renewed", False)
    assert all(not path.endswith("/send-new-invite") for _, path in calls_of(sent))


@modes
def test_a_refused_renewal_raises_its_own_error_after_the_expiry(mode: Mode) -> None:
    def handle(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/resend-invite"):
            return httpx.Response(409, json=problem(409, detail="Expired"))
        if request.method == "GET":
            return httpx.Response(
                200, json=member(None) | {"invitation": {"status": "Invitation expired"}}
            )
        return httpx.Response(403, json=problem(403, title="Forbidden", detail="Not allowed"))

    outcome, sent = run_mock(handle, mode, renew_expired=True)

    assert isinstance(outcome, PermissionDenied)
    assert outcome.message == "Not allowed"
    assert isinstance(outcome.__cause__, InvitationExpired)
    assert [request.url.path.rsplit("/", 1)[-1] for request in sent] == [
        "resend-invite",
        SOFTWAREONE_USER_INVITED,
        "send-new-invite",
    ]


def test_renew_expired_needs_the_current_endpoint() -> None:
    config = legacy_config("https://api.platform.softwareone.com", renew_expired=True)

    with pytest.raises(ConfigurationError, match="renew_expired: needs account_id"):
        invites.from_config(config)


@modes
@pytest.mark.parametrize(
    ("user_id", "legacy", "says"),
    [
        ("AUSR-4134-7183-7330", False, "this endpoint takes user ids (USR-...)"),
        ("USR-6375-2499", True, "the deprecated endpoint takes account-user ids (AUSR-...)"),
    ],
    ids=["account-user-id-on-current", "user-id-on-legacy"],
)
def test_a_404_for_the_other_kind_of_id_says_which_kind_the_endpoint_takes(
    server: RunningSandbox, mode: Mode, user_id: str, legacy: bool, says: str
) -> None:
    config = legacy_config(server.url) if legacy else vendor_config("softwareone", server.url)

    outcome, _ = resend_captured(config, user_id, mode)

    assert type(outcome) is UserNotFound
    assert says in outcome.message


@modes
@pytest.mark.parametrize(
    ("user_id", "legacy"),
    [(SOFTWAREONE_UNKNOWN_USER, False), (SOFTWAREONE_UNKNOWN_MEMBERSHIP, True)],
    ids=["user-id-on-current", "account-user-id-on-legacy"],
)
def test_a_404_for_the_right_kind_of_id_names_no_kind(
    server: RunningSandbox, mode: Mode, user_id: str, legacy: bool
) -> None:
    config = legacy_config(server.url) if legacy else vendor_config("softwareone", server.url)

    outcome, _ = resend_captured(config, user_id, mode)

    assert type(outcome) is UserNotFound
    assert "takes" not in outcome.message


@modes
@pytest.mark.parametrize("user_id", [SOFTWAREONE_USER_DELETED, SOFTWAREONE_UNKNOWN_USER])
def test_deleted_or_unknown_member_is_user_not_found(
    server: RunningSandbox, sandbox: Sandbox, mode: Mode, user_id: str
) -> None:
    outcome, sent = resend_captured(vendor_config("softwareone", server.url), user_id, mode)

    assert type(outcome) is UserNotFound
    assert outcome.status_code == 404
    assert outcome.message == f"Account user {user_id} not found."
    assert "account_id" not in outcome.message  # the legacy hint is for the legacy endpoint only
    assert TRACE_ID.fullmatch(outcome.request_id or "")
    assert calls_of(sent) == [("POST", f"{CURRENT}{user_id}/resend-invite")]  # no state read
    assert sandbox.emails_snapshot() == {}


@modes
def test_401_is_authentication_failed_with_the_trace_id(
    server: RunningSandbox, sandbox: Sandbox, mode: Mode
) -> None:
    config = vendor_config("softwareone", server.url, token="idt:TKN-FAKE-9999:wrong")

    outcome, sent = resend_captured(config, SOFTWAREONE_USER_INVITED, mode)

    assert type(outcome) is AuthenticationFailed
    assert outcome.status_code == 401
    assert outcome.message == "A valid bearer token is required."
    assert TRACE_ID.fullmatch(outcome.request_id or "")
    assert f"request id {outcome.request_id}" in str(outcome)
    assert "wrong" not in everything_said(outcome)
    assert len(sent) == 1
    assert sandbox.emails_snapshot() == {}


@modes
def test_html_error_page_is_provider_unavailable_with_an_excerpt(
    server: RunningSandbox, sandbox: Sandbox, mode: Mode
) -> None:
    sandbox.inject(SOFTWAREONE_USER_INVITED, Fault.HTML_ERROR)

    outcome, sent = resend_captured(
        vendor_config("softwareone", server.url), SOFTWAREONE_USER_INVITED, mode
    )

    assert type(outcome) is ProviderUnavailable
    assert outcome.status_code == 500
    assert outcome.request_id is None
    assert "Internal Server Error" in outcome.details["body"]
    assert len(sent) == 1  # a 500 is not retried
    assert sandbox.emails_snapshot() == {}


# --- the deprecated endpoint ----------------------------------------------------------------------


@modes
def test_legacy_endpoint_warns_once_when_built_and_resends(
    server: RunningSandbox, sandbox: Sandbox, mode: Mode
) -> None:
    with pytest.warns(DeprecationWarning, match="deprecated") as warned:
        provider = invites.from_config(legacy_config(server.url))
    assert len(warned) == 1
    assert "account_id" in str(warned[0].message)
    assert warned[0].filename == __file__  # the caller's line, not the library's

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # resending warns no more
        if mode == "sync":
            with provider:
                outcome = provider.resend_invite(SOFTWAREONE_MEMBERSHIP_INVITED)
        else:

            async def go() -> ResendResult:
                async with provider:
                    return await provider.aresend_invite(SOFTWAREONE_MEMBERSHIP_INVITED)

            outcome = asyncio.run(go())

    assert outcome == ResendResult(
        provider="softwareone",
        user_id=SOFTWAREONE_MEMBERSHIP_INVITED,
        invitation_status="Invited",
        status_code=200,
    )
    assert sandbox_calls(sandbox) == [
        ("POST", f"{LEGACY}{SOFTWAREONE_MEMBERSHIP_INVITED}/resend-invite")
    ]
    assert sandbox.emails_snapshot() == {SOFTWAREONE_MEMBERSHIP_INVITED: 1}


@modes
def test_legacy_404_when_removed_says_to_set_account_id(mode: Mode) -> None:
    with serve(Sandbox(vendors=[SoftwareOneSandbox(legacy_removed=True)])) as running:
        outcome, sent = resend_captured(
            legacy_config(running.url), SOFTWAREONE_MEMBERSHIP_INVITED, mode
        )
        emails = running.sandbox.emails_snapshot()

    assert type(outcome) is UserNotFound
    assert outcome.status_code == 404
    assert outcome.request_id is None
    # The gateway's {"message", "statusCode"} shape.
    assert outcome.message.startswith("Resource not found; ")
    assert "may have been removed" in outcome.message
    assert "set account_id" in outcome.message
    assert calls_of(sent) == [("POST", f"{LEGACY}{SOFTWAREONE_MEMBERSHIP_INVITED}/resend-invite")]
    assert emails == {}


@modes
def test_legacy_404_for_an_unknown_membership_also_carries_the_hint(
    server: RunningSandbox, mode: Mode
) -> None:
    outcome, _ = resend_captured(legacy_config(server.url), SOFTWAREONE_UNKNOWN_MEMBERSHIP, mode)

    assert type(outcome) is UserNotFound
    assert outcome.message.startswith(f"Account user {SOFTWAREONE_UNKNOWN_MEMBERSHIP} not found.")
    assert "set account_id" in outcome.message


# --- answer shapes the sandbox does not produce ---------------------------------------------------

Handler = Callable[[httpx.Request], httpx.Response]
Reply = Callable[[], httpx.Response]


def problem(status: int, **fields: Any) -> dict[str, Any]:
    return {"type": "https://tools.ietf.org/html/rfc9110", "status": status, **fields}


def member(state: str | None, *, url: str | None = INVITATION_LINK) -> dict[str, Any]:
    """An account-user object; `state` as the platform's ``status`` (None: no ``status``)."""
    body: dict[str, Any] = {
        "id": "AUSR-0000-0001",
        "user": {"id": SOFTWAREONE_USER_INVITED, "name": "Alan Turing"},
        "invitation": {"url": url, "status": state or "Invited"},
    }
    if state is not None:
        body["status"] = state
    return body


def reply(status: int, **kwargs: Any) -> Reply:
    """A vendor's answer, built afresh for each request (a response is read only once)."""
    return lambda: httpx.Response(status, **kwargs)


def answering(resend: Reply, state: Reply | None = None) -> Handler:
    """A vendor answering the resend with `resend` and the state read with `state`."""

    def handle(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            return resend()
        assert state is not None, "unexpected state read"
        return state()

    return handle


def run_mock(handler: Handler, mode: Mode, **config: Any) -> tuple[Any, list[httpx.Request]]:
    return resend_captured(
        vendor_config("softwareone", "https://api.platform.softwareone.com", **config),
        SOFTWAREONE_USER_INVITED,
        mode,
        transport=httpx.MockTransport(handler),
    )


def seed_example() -> dict[str, Any]:
    """The 200 example of the vendor's page for the deprecated endpoint (tests/data/SOURCES.md)."""
    text = (DATA / "softwareone-resend-user-invitation-200.json").read_text(encoding="utf-8")
    example: dict[str, Any] = json.loads(text)
    return example


@modes
def test_the_seed_example_parses_as_a_result(mode: Mode) -> None:
    example = seed_example()
    assert example["audit"]["created"]["by"]["0"] == "["  # the generator's circular junk

    outcome, sent = run_mock(answering(reply(200, json=example)), mode, account_id=None)

    assert outcome == ResendResult(
        provider="softwareone",
        user_id=SOFTWAREONE_USER_INVITED,
        invitation_status="text",
        status_code=200,
    )
    assert calls_of(sent) == [("POST", f"{LEGACY}{SOFTWAREONE_USER_INVITED}/resend-invite")]


@modes
def test_the_invitation_link_never_shows_in_a_result(mode: Mode) -> None:
    example = seed_example()
    example["invitation"]["url"] = INVITATION_LINK

    outcome, _ = run_mock(answering(reply(200, json=example)), mode)

    assert isinstance(outcome, ResendResult)
    assert INVITATION_LINK not in everything_said(outcome)
    assert "invitations/" not in everything_said(outcome)


@modes
@pytest.mark.parametrize(
    ("resend", "state", "expected"),
    [
        # Refused, and the state read shows why.
        (
            reply(400, json=problem(400, title="Bad", errors={"status": ["no"]})),
            reply(200, json=member("Active", url=None)),
            AlreadyVerified,
        ),
        (
            reply(409, json=problem(409, detail="Conflict")),
            reply(200, json=member(None) | {"invitation": {"status": "Active"}}),
            AlreadyVerified,
        ),
        (
            reply(409, json={"message": "conflict", "statusCode": 409}),
            reply(200, json=member("InvitationExpired")),
            InvitationExpired,
        ),
        # Refused, and the state read does not explain it: the refusal stands.
        (
            reply(400, json=problem(400, detail="Invalid", errors={"id": ["bad"]})),
            reply(200, json=member("Invited")),
            InvalidRequest,
        ),
        (
            reply(409, json=problem(409, detail="Conflict")),
            reply(500, text="<html>down</html>", headers={"content-type": "text/html"}),
            InviteRejected,
        ),
        (
            reply(400, text="<html>Bad Request</html>", headers={"content-type": "text/html"}),
            reply(200, text="not json", headers={"content-type": "application/json"}),
            InvalidRequest,
        ),
    ],
    ids=[
        "400-status-active",
        "409-invitation-status-active",
        "409-gateway-shape-expired",
        "400-invited-stands",
        "409-state-unreadable-stands",
        "400-html-state-not-json",
    ],
)
def test_a_refusal_is_classified_by_the_members_state(
    mode: Mode, resend: Reply, state: Reply, expected: type[InviteError]
) -> None:
    outcome, sent = run_mock(answering(resend, state), mode)

    assert type(outcome) is expected
    assert outcome.status_code == resend().status_code
    member_path = f"{CURRENT}{SOFTWAREONE_USER_INVITED}"
    assert calls_of(sent)[:2] == [("POST", member_path + "/resend-invite"), ("GET", member_path)]
    assert INVITATION_LINK not in everything_said(outcome)


@modes
@pytest.mark.parametrize(
    ("errors", "expected"),
    [
        (
            {"email": ["is required", "is invalid"], "name": "too long"},
            ["email: is required", "email: is invalid", "name: too long"],
        ),
        (
            [
                {"message": "first", "properties": ["a"], "id": "E1", "parameters": {}},
                {"message": "second", "properties": [], "id": "E2", "parameters": {}},
                "third",
                {"id": "E4"},
            ],
            ["first", "second", "third"],
        ),
    ],
    ids=["mapping", "list"],
)
def test_both_errors_shapes_and_the_trace_id_are_kept(
    mode: Mode, errors: Any, expected: list[str]
) -> None:
    body = problem(422, title="Unprocessable", traceId="00-abc-def-00", errors=errors)

    outcome, _ = run_mock(answering(reply(422, json=body)), mode)

    assert type(outcome) is InvalidRequest
    assert outcome.details["errors"] == expected
    assert outcome.request_id == "00-abc-def-00"
    for message in expected:
        assert message in outcome.message


@modes
@pytest.mark.parametrize(
    ("response", "expected", "message"),
    [
        (
            reply(404, json={"message": "Resource not found", "statusCode": 404}),
            UserNotFound,
            "Resource not found",
        ),
        (
            reply(403, json={"message": "Forbidden", "statusCode": 403}),
            invites.PermissionDenied,
            "Forbidden",
        ),
        (
            reply(503, text="Service Unavailable", headers={"content-type": "text/plain"}),
            ProviderUnavailable,
            "Service Unavailable",
        ),
        (
            reply(200, text="<html>ok</html>", headers={"content-type": "text/html"}),
            UnexpectedResponse,
            "not a JSON object",
        ),
        (reply(200, json=[member("Invited")]), UnexpectedResponse, "not a JSON object"),
    ],
    ids=["gateway-404", "gateway-403", "text-503", "html-200", "list-200"],
)
def test_gateway_and_non_json_answers_map_by_status(
    mode: Mode, response: Reply, expected: type[InviteError], message: str
) -> None:
    outcome, sent = run_mock(answering(response), mode, max_attempts=1)

    assert type(outcome) is expected
    assert message in outcome.message
    assert len(sent) == 1
    assert INVITATION_LINK not in everything_said(outcome)
    assert "invitations/" not in everything_said(outcome)


@modes
def test_an_invitation_link_in_an_error_body_is_not_kept(mode: Mode) -> None:
    odd = reply(418, json={"invitation": {"url": INVITATION_LINK, "status": "Invited"}})

    outcome, _ = run_mock(answering(odd), mode)

    assert isinstance(outcome, InviteRejected)
    assert "body" in outcome.details
    assert INVITATION_LINK not in everything_said(outcome)


# --- cassettes ------------------------------------------------------------------------------------


@modes
@pytest.mark.parametrize("scenario", SOFTWAREONE_SCENARIOS, ids=lambda scenario: scenario.name)
def test_cassette_replays_with_exactly_the_recorded_requests(
    scenario: Scenario, mode: Mode
) -> None:
    outcome = replay(scenario, mode)

    check_outcome(scenario, outcome)
    if isinstance(outcome, InviteError) and scenario.fields.get("request_id", "") is not None:
        trace_ids = [
            json.loads(response["body"]["string"]).get("traceId")
            for response in recorded_responses(scenario.path)
        ]
        assert outcome.request_id == trace_ids[0]  # the refusal's, not the state read's


def test_cassettes_pin_the_documented_wire_format() -> None:
    by_name = {scenario.name: scenario for scenario in SOFTWAREONE_SCENARIOS}
    [current] = recorded_requests(by_name["resend_invited"].path)
    assert current["method"] == "POST"
    assert current["uri"] == (
        f"{CASSETTE_BASE_URL}{CURRENT}{SOFTWAREONE_USER_INVITED}/resend-invite"
    )
    assert current["headers"]["authorization"] == [f"Bearer {REDACTED}"]
    assert not current["body"]
    [legacy] = recorded_requests(by_name["legacy_resend_invited"].path)
    assert legacy["uri"] == (
        f"{CASSETTE_BASE_URL}{LEGACY}{SOFTWAREONE_MEMBERSHIP_INVITED}/resend-invite"
    )
    _, read = recorded_requests(by_name["resend_active"].path)
    assert (read["method"], read["uri"]) == (
        "GET",
        f"{CASSETTE_BASE_URL}{CURRENT}{SOFTWAREONE_USER_ACTIVE}",
    )
    [answer] = recorded_responses(by_name["resend_invited"].path)
    assert json.loads(answer["body"]["string"])["invitation"] == {
        "url": INVITATION_URL_PLACEHOLDER,
        "status": "Invited",
    }


def test_cassettes_are_current(server: RunningSandbox, tmp_path: Path) -> None:
    """The committed cassettes hold what recording them again would (requests and statuses)."""
    assert_current(SOFTWAREONE_SCENARIOS, server, tmp_path)


def test_cassettes_hold_no_credentials_or_invitation_links() -> None:
    assert leaks() == []


def test_invitation_links_are_replaced_wherever_an_invitation_is() -> None:
    body = {
        "invitation": {"url": INVITATION_LINK, "status": "Invited"},
        "items": [{"invitation": {"url": "http://x.example/invitations/1"}}],
        "link": {"url": "https://docs.example.com/kept"},
    }
    raw = json.dumps(body).encode()
    response = {
        "status": {"code": 200, "message": "OK"},
        "headers": {
            "Content-Type": ["application/json"],
            "Content-Length": [str(len(raw))],
            "Date": ["Mon, 01 Jan 2026 00:00:00 GMT"],
        },
        "body": {"string": raw},
    }
    recorder = cassette_vcr()
    scrub = recorder.get_merged_config()["before_record_response"]

    scrubbed = scrub(copy.deepcopy(response))

    data = json.loads(scrubbed["body"]["string"])
    assert data["invitation"]["url"] == INVITATION_URL_PLACEHOLDER
    assert data["items"][0]["invitation"]["url"] == INVITATION_URL_PLACEHOLDER
    assert data["link"]["url"] == "https://docs.example.com/kept"
    assert scrubbed["headers"]["Content-Length"] == [str(len(scrubbed["body"]["string"]))]
    assert "Date" not in scrubbed["headers"]
    assert scrub(copy.deepcopy(scrubbed)) == scrubbed  # vcrpy re-applies it on every load


# --- live -----------------------------------------------------------------------------------------


def test_live_variables_decide_the_skip() -> None:
    complete = {
        "INVITES_LIVE_SOFTWAREONE_TOKEN": "idt:TKN-LIVE-0000:not-real",
        "INVITES_LIVE_SOFTWAREONE_ACCOUNT_ID": "ACC-1",
        "INVITES_LIVE_SOFTWAREONE_USER_ID": "USR-1",
    }
    target = live_target("softwareone", complete)
    assert target is not None
    assert target.config["account_id"] == "ACC-1"
    assert target.user_id == "USR-1"
    assert target.stored_base_url == "https://api.platform.softwareone.com"
    assert "not-real" not in repr(target)
    for name in complete:
        assert live_target("softwareone", {**complete, name: ""}) is None
        assert missing_live_variables("softwareone", {**complete, name: ""}) == [name]


@pytest.mark.live
@pytest.mark.skipif(
    bool(missing_live_variables("softwareone", os.environ)),
    reason="set INVITES_LIVE_SOFTWAREONE_TOKEN, _ACCOUNT_ID and _USER_ID to run",
)
def test_live_resend_records_a_filtered_cassette() -> None:
    target = live_target("softwareone", os.environ)
    assert target is not None
    outcome, recorded = record_live(target)
    assert isinstance(outcome, ResendResult | InviteRejected), repr(outcome)
    assert recorded >= 1
    text = target.path.read_text(encoding="utf-8")
    assert target.config["token"] not in text
    assert "invitations/" not in text


@modes
@pytest.mark.parametrize(
    ("body", "message"),
    [
        # Every text of `errors` already in `detail`, in each shape.
        (problem(400, detail="A; B", errors=[{"message": "A"}, {"message": "B"}]), "A; B"),
        (problem(400, detail="A", errors={"id": ["A"]}), "A"),
        (problem(400, detail="A", errors="A"), "A"),
        # Repeated entries, and a text `detail` does not say.
        (problem(400, detail="A", errors=[{"message": "B"}, {"message": "B"}, "A"]), "A: B"),
        (problem(400, errors=[{"message": "B"}, {"message": "B"}]), "B"),
        (problem(400, detail="A", errors={"id": ["B"], "name": ["B"]}), "A: id: B; name: B"),
    ],
)
def test_each_vendor_message_is_said_once(mode: Mode, body: dict[str, Any], message: str) -> None:
    outcome, _ = run_mock(answering(reply(400, json=body), reply(404, json={})), mode)

    assert isinstance(outcome, InvalidRequest)
    assert outcome.message == message
