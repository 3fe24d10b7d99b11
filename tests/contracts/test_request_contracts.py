"""Contract tests, request side: every request the adapters send, against what the vendors publish.

``tests/data/request-contracts.json`` holds, per vendor and call, the published method, path
template, header names and value shapes, query and body (each entry's ``_source`` and
``tests/data/SOURCES.md`` name the page or the official client's file). The adapters run against
``httpx.MockTransport`` answering the published examples, so no request reaches the sandbox: the
sandbox is the project's own picture of the vendors, this is theirs.
"""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from _support.cassettes import MODES, Mode, resend_captured
from _support.vendors import vendor_config

import invites
from invites import Invitee, ResendResult
from invites.sandbox import (
    ECOSUITE_TOKEN,
    SOFTWAREONE_ACCOUNT_ID,
    TENANT_BEARER_TOKEN,
    TENANT_ID,
)

DATA = Path(__file__).parents[1] / "data"
CONTRACTS: dict[str, dict[str, Any]] = json.loads(
    (DATA / "request-contracts.json").read_text(encoding="utf-8")
)
modes = pytest.mark.parametrize("mode", MODES)

SOFTWAREONE = "https://api.platform.softwareone.com"
ECOSUITE = "https://api.ecosuite.io"
TENANT = "https://identity.example.com"
USER_ID = "USR-6375-2499"
ACCOUNT_USER_ID = "AUSR-4134-7183-7330"
TENANT_USER = "2489e9ad-2ee2-8e00-8ec9-32d5f69181c0"
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")


def example(name: str) -> Any:
    return json.loads((DATA / name).read_text(encoding="utf-8"))


def _template(path: str) -> re.Pattern[str]:
    """``/users/{userId}`` as a pattern capturing each parameter."""
    parts = re.split(r"\{(\w+)\}", path)
    pattern = "".join(
        re.escape(part) if index % 2 == 0 else f"(?P<{part}>[^/]+)"
        for index, part in enumerate(parts)
    )
    return re.compile(pattern)


def _calls(vendor: str) -> Iterator[tuple[str, dict[str, Any]]]:
    for name, contract in CONTRACTS[vendor].items():
        if not name.startswith("_"):
            yield name, contract


def violations(vendor: str, request: httpx.Request, params: dict[str, str]) -> list[str]:
    """What is wrong with `request` against the vendor's published calls (empty: it is one).

    `params` are the values the path's parameters must have (the configured account, the
    invitee's id). The request must match a call's method and path template, then its query,
    headers and body must be as that call publishes them (where two calls share a path, as
    the tenant API's two credentials do, one of them).
    """
    found: list[str] = []
    for name, contract in _calls(vendor):
        match = _template(contract["path"]).fullmatch(request.url.path)
        if match is None or request.method != contract["method"]:
            continue
        problems = [f"{name}: {line}" for line in _against(contract, request, match, params)]
        if not problems:
            return []
        found.extend(problems)
    return found or [f"{request.method} {request.url.path}: no published {vendor} call has it"]


def _against(
    contract: dict[str, Any], request: httpx.Request, match: re.Match[str], params: dict[str, str]
) -> Iterator[str]:
    for key, value in match.groupdict().items():
        if key in params and value != params[key]:
            yield f"path parameter {key} is {value!r}, not {params[key]!r}"
        if contract.get("path_formats", {}).get(key) == "uuid" and not _UUID.fullmatch(value):
            yield f"path parameter {key} is not a UUID"
    unknown_query = set(request.url.params.keys()) - set(contract.get("query", []))
    if unknown_query:
        yield f"query {sorted(unknown_query)} is not published"
    for header, shape in contract["headers"].items():
        value = request.headers.get(header)
        if value is None:
            yield f"header {header} is missing"
        elif not re.fullmatch(shape, value):
            yield f"header {header} does not have the published shape {shape!r}"
    for header in contract["absent"]:
        if header in request.headers:
            yield f"header {header} is sent, and the call has none"
    yield from _body(contract["body"], request)


def _body(published: dict[str, list[str]] | None, request: httpx.Request) -> Iterator[str]:
    if published is None:
        if request.content:
            yield f"a body is sent ({len(request.content)} bytes), and the call takes none"
        return
    try:
        body = json.loads(request.content)
    except ValueError:
        yield "the body is not JSON"
        return
    if not isinstance(body, dict):
        yield "the body is not a JSON object"
        return
    missing = set(published["required"]) - set(body)
    extra = set(body) - set(published["allowed"])
    if missing:
        yield f"body fields {sorted(missing)} are missing"
    if extra:
        yield f"body fields {sorted(extra)} are not published"


Handler = Callable[[httpx.Request], httpx.Response]


def _run(
    config: dict[str, Any], invitee: Invitee | str, handle: Handler, mode: Mode
) -> tuple[ResendResult | invites.InviteError, list[httpx.Request]]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return resend_captured(config, invitee, mode, transport=httpx.MockTransport(handle))


def _softwareone_handler(*, state: str) -> Handler:
    """Published answers: the resend refused (400) unless Invited, the account user by GET."""
    [account_user] = example("softwareone-account-user-object.json")["data"]
    refusal = example("softwareone-errors-handling-400.json")
    member = {**account_user, "invitation": {**account_user["invitation"], "status": state}}

    def handle(request: httpx.Request) -> httpx.Response:
        if request.method == "GET" or request.url.path.endswith("/send-new-invite"):
            return httpx.Response(200, json=member)
        if state == "Invited":
            return httpx.Response(200, json=member)
        return httpx.Response(400, json=refusal)

    return handle


# The SoftwareOne runs: (configuration overrides, invitee, membership state, calls made).
SOFTWAREONE_RUNS: dict[str, tuple[dict[str, Any], str, str, list[str]]] = {
    "current": ({}, USER_ID, "Invited", ["resend"]),
    "current-refused": ({}, USER_ID, "Active", ["resend", "get"]),
    "current-renewed": (
        {"renew_expired": True},
        USER_ID,
        "InvitationExpired",
        ["resend", "get", "send_new_invite"],
    ),
    "legacy": ({"account_id": None}, ACCOUNT_USER_ID, "Invited", ["legacy_resend"]),
    "legacy-refused": (
        {"account_id": None},
        ACCOUNT_USER_ID,
        "Active",
        ["legacy_resend", "legacy_get"],
    ),
}


def _which(vendor: str, request: httpx.Request) -> str | None:
    """The published call `request` is (the first whose rules it meets), None for none."""
    for name, contract in _calls(vendor):
        match = _template(contract["path"]).fullmatch(request.url.path)
        if (
            match is not None
            and request.method == contract["method"]
            and not any(_against(contract, request, match, {}))
        ):
            return name
    return None


@modes
@pytest.mark.parametrize("run", SOFTWAREONE_RUNS)
def test_softwareone_requests_are_the_published_ones(mode: Mode, run: str) -> None:
    overrides, invitee, state, expected = SOFTWAREONE_RUNS[run]
    config = vendor_config("softwareone", SOFTWAREONE, **overrides)

    _, sent = _run(config, invitee, _softwareone_handler(state=state), mode)

    params = {"accountId": SOFTWAREONE_ACCOUNT_ID, "userId": invitee, "id": invitee}
    assert [_which("softwareone", request) for request in sent] == expected
    for request in sent:
        assert violations("softwareone", request, params) == []


def _ecosuite_handler(request: httpx.Request) -> httpx.Response:
    page = example("ecosuite-resend-user-invite.json")
    if request.method == "GET":
        return httpx.Response(200, json=page["request_body"])
    return httpx.Response(200, json=page["response_200"])


@modes
@pytest.mark.parametrize(
    "invitee",
    [
        "eco-42",
        Invitee(user_id="eco-42", email="name@gmail.com", first_name="Ada", last_name="L"),
    ],
    ids=["bare-id", "full-invitee"],
)
def test_ecosuite_requests_are_the_published_ones(mode: Mode, invitee: Invitee | str) -> None:
    config = vendor_config("ecosuite", ECOSUITE)

    outcome, sent = _run(config, invitee, _ecosuite_handler, mode)

    assert outcome == ResendResult(provider="ecosuite", user_id="eco-42")
    expected = ["get", "resend"] if isinstance(invitee, str) else ["resend"]
    assert [_which("ecosuite", request) for request in sent] == expected
    for request in sent:
        assert violations("ecosuite", request, {"userId": "eco-42"}) == []
        assert request.headers["Authorization"] == ECOSUITE_TOKEN  # the raw token, as published


@modes
@pytest.mark.parametrize(
    ("auth", "call"), [("api_key", "resend_api_key"), ("bearer", "resend_bearer")]
)
def test_tenant_api_requests_are_the_published_ones(mode: Mode, auth: str, call: str) -> None:
    page = example("tenant-api-resend-invite.json")
    token = TENANT_BEARER_TOKEN if auth == "bearer" else None
    config = vendor_config("tenant_api", TENANT, auth=auth, **({"token": token} if token else {}))

    def handle(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=page["response_200"])

    outcome, sent = _run(config, TENANT_USER.upper(), handle, mode)

    assert isinstance(outcome, ResendResult)
    assert [_which("tenant_api", request) for request in sent] == [call]
    params = {"id": TENANT_USER}
    assert violations("tenant_api", sent[0], params) == []
    assert sent[0].headers["X-Tenant-ID"] == TENANT_ID


def test_every_published_call_is_exercised() -> None:
    """Each contract entry is one the runs above reach (a stale entry would check nothing)."""
    reached = {call for *_, calls in SOFTWAREONE_RUNS.values() for call in calls}
    assert reached == {name for name, _ in _calls("softwareone")}


# --- the checker itself: each published rule refuses a request that breaks it ---------------


def _request(method: str, url: str, **kwargs: Any) -> httpx.Request:
    return httpx.Request(method, url, **kwargs)


@pytest.mark.parametrize(
    ("vendor", "request_", "problem"),
    [
        (
            "tenant_api",
            _request(
                "POST", f"{TENANT}/v1/users/{TENANT_USER}/resend-invite", headers={"X-API-Key": "k"}
            ),
            "header X-Tenant-ID is missing",
        ),
        (
            "tenant_api",
            _request(
                "POST",
                f"{TENANT}/v1/tenants/{TENANT_ID}/users/{TENANT_USER}/resend-invite",
                headers={"X-API-Key": "k", "X-Tenant-ID": TENANT_ID},
            ),
            "no published tenant_api call has it",
        ),
        (
            "softwareone",
            _request(
                "POST",
                f"{SOFTWAREONE}/public/v1/accounts/accounts/ACC-1/users/{USER_ID}/resend-invite",
                headers={"Authorization": "Bearer idt:TKN-AAAA-BBBB:x"},
                json={},
            ),
            "a body is sent",
        ),
        (
            "ecosuite",
            _request("GET", f"{ECOSUITE}/users/eco-42", headers={"Authorization": "Bearer t"}),
            "does not have the published shape",
        ),
    ],
    ids=["no-tenant-header", "tenant-path", "softwareone-body", "ecosuite-bearer"],
)
def test_the_checker_names_what_breaks_the_contract(
    vendor: str, request_: httpx.Request, problem: str
) -> None:
    found = violations(vendor, request_, {})

    assert any(problem in line for line in found), found


# --- who is calling -------------------------------------------------------------------------

LIBRARY_AGENT = f"invites/{invites.__version__} httpx/{httpx.__version__}"
_ANY_ANSWER: dict[str, Handler] = {
    "ecosuite": _ecosuite_handler,
    "softwareone": _softwareone_handler(state="Active"),
    "tenant_api": lambda request: httpx.Response(200, json={"message": "Invite resent."}),
}
_BASE_URLS = {"ecosuite": ECOSUITE, "softwareone": SOFTWAREONE, "tenant_api": TENANT}
_INVITEES = {"ecosuite": "eco-42", "softwareone": USER_ID, "tenant_api": TENANT_USER}


@modes
@pytest.mark.parametrize("vendor", sorted(_BASE_URLS))
@pytest.mark.parametrize("extra", [None, "acme-sync/2.1 (+https://acme.example)"])
def test_requests_say_who_is_calling_and_ask_for_json(
    mode: Mode, vendor: str, extra: str | None
) -> None:
    config = vendor_config(vendor, _BASE_URLS[vendor], user_agent=extra)

    _, sent = _run(config, _INVITEES[vendor], _ANY_ANSWER[vendor], mode)

    expected = f"{LIBRARY_AGENT} {extra}" if extra else LIBRARY_AGENT
    assert sent  # every call of the flow: the reads and the resend alike
    for request in sent:
        assert request.headers.get_list("User-Agent") == [expected]
        assert request.headers.get_list("Accept") == ["application/json"]


def test_a_user_agent_that_is_not_a_header_value_is_refused() -> None:
    config = vendor_config("ecosuite", ECOSUITE, user_agent="acme\r\nX-Injected: 1")

    with pytest.raises(invites.ConfigurationError, match="user_agent: must not contain CR"):
        invites.from_config(config)
