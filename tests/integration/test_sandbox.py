"""The sandbox vendors: documented answers, faults, rate limit, serving.

Vendor answers are checked both in-process (Starlette's TestClient) and over real sockets
(`serve` + `httpx.Client`); drops and timeouts only over sockets, where they are real.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import json
import logging
import re
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

import invites.sandbox
from invites.sandbox import (
    ECOSUITE_PROFILES,
    ECOSUITE_TOKEN,
    ECOSUITE_USER_1,
    ECOSUITE_USER_2,
    ECOSUITE_USER_FORBIDDEN,
    OTHER_TENANT_ID,
    SOFTWAREONE_ACCOUNT_ID,
    SOFTWAREONE_MEMBERSHIP_ACTIVE,
    SOFTWAREONE_MEMBERSHIP_DELETED,
    SOFTWAREONE_MEMBERSHIP_EXPIRED,
    SOFTWAREONE_MEMBERSHIP_INVITED,
    SOFTWAREONE_TOKEN,
    SOFTWAREONE_USER_ACTIVE,
    SOFTWAREONE_USER_DELETED,
    SOFTWAREONE_USER_EXPIRED,
    SOFTWAREONE_USER_INVITED,
    TENANT_API_KEY,
    TENANT_BEARER_TOKEN,
    TENANT_ID,
    TENANT_USER_COOLDOWN,
    TENANT_USER_INVITED,
    TENANT_USER_INVITED_2,
    TENANT_USER_UNKNOWN,
    TENANT_USER_VERIFIED,
    ConnectionDropped,
    Fault,
    RunningSandbox,
    Sandbox,
    SoftwareOneSandbox,
    create_app,
    serve,
)
from invites.sandbox.softwareone import PUBLISHED, TOP_LEVEL_STATUS

ECOSUITE_AUTH = {"Authorization": ECOSUITE_TOKEN}
SOFTWAREONE_AUTH = {"Authorization": f"Bearer {SOFTWAREONE_TOKEN}"}
TENANT_AUTH = {"X-API-Key": TENANT_API_KEY, "X-Tenant-ID": TENANT_ID}
ADA = {"email": "ada@example.com", "firstName": "Ada", "lastName": "Lovelace"}
LEGACY = "/public/v1/accounts/account-users"
CURRENT = f"/public/v1/accounts/accounts/{SOFTWAREONE_ACCOUNT_ID}/users"
TRACE_ID = re.compile(r"00-[0-9a-f]{32}-[0-9a-f]{16}-00")
INVITATION_URL = re.compile(r"https://portal\.sandbox\.invalid/invitations/[0-9a-f]{24}")
CIRCULAR = {str(index): char for index, char in enumerate("[Circular Reference]")}
# The top-level fields of the published account-user object as the invite actions and the
# deprecated family answer it (``AccountUserQueryLegacy``; no top-level ``status``). A GET on
# the current family answers ``AccountUser``: the same less ``lastLoginAt``.
ACCOUNT_USER_FIELDS = {
    "id",
    "audit",
    "$meta",
    "user",
    "groups",
    "buyers",
    "modules",
    "account",
    "invitation",
    "lastLoginAt",
}


class InProcess(httpx.BaseTransport):
    """A synchronous face for `httpx.ASGITransport`: one event loop per request.

    App exceptions (`ConnectionDropped`) reach the caller, as with ``ASGITransport``.
    """

    def __init__(self, sandbox: Sandbox) -> None:
        self.asgi = httpx.ASGITransport(app=create_app(sandbox))

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        async def round_trip() -> httpx.Response:
            response = await self.asgi.handle_async_request(request)
            content = await response.aread()
            return httpx.Response(response.status_code, headers=response.headers, content=content)

        return asyncio.run(round_trip())


@dataclass
class Harness:
    client: httpx.Client
    sandbox: Sandbox


@contextlib.contextmanager
def harness(kind: str, sandbox: Sandbox | None = None) -> Iterator[Harness]:
    sandbox = sandbox if sandbox is not None else Sandbox()
    if kind == "in_process":
        transport = InProcess(sandbox)
        with httpx.Client(transport=transport, base_url="http://sandbox.test") as client:
            yield Harness(client, sandbox)
    else:
        with serve(sandbox) as running, httpx.Client(base_url=running.url) as client:
            yield Harness(client, sandbox)


@pytest.fixture(scope="module")
def shared_server() -> Iterator[RunningSandbox]:
    with serve() as running:
        yield running


@pytest.fixture
def over_socket(shared_server: RunningSandbox) -> Iterator[Harness]:
    """The module's server, its sandbox back to a fresh default state."""
    shared_server.sandbox.reset()
    softwareone = shared_server.sandbox.vendor(SoftwareOneSandbox)
    softwareone.legacy_removed = False
    softwareone.shape = PUBLISHED
    with httpx.Client(base_url=shared_server.url) as client:
        yield Harness(client, shared_server.sandbox)


@pytest.fixture(params=["in_process", "socket"])
def vendors(request: pytest.FixtureRequest) -> Iterator[Harness]:
    if request.param == "socket":
        yield request.getfixturevalue("over_socket")
    else:
        with harness("in_process") as opened:
            yield opened


# One resend per vendor family: (user id the path names, method, path, headers, JSON body).
RESENDS: dict[str, tuple[str, str, str, dict[str, str], dict[str, str] | None]] = {
    "ecosuite": (
        ECOSUITE_USER_1,
        "PUT",
        f"/users/{ECOSUITE_USER_1}/resend",
        ECOSUITE_AUTH,
        ADA,
    ),
    "softwareone": (
        SOFTWAREONE_USER_INVITED,
        "POST",
        f"{CURRENT}/{SOFTWAREONE_USER_INVITED}/resend-invite",
        SOFTWAREONE_AUTH,
        None,
    ),
    "softwareone_legacy": (
        SOFTWAREONE_MEMBERSHIP_INVITED,
        "POST",
        f"{LEGACY}/{SOFTWAREONE_MEMBERSHIP_INVITED}/resend-invite",
        SOFTWAREONE_AUTH,
        None,
    ),
    "tenant_api": (
        TENANT_USER_INVITED,
        "POST",
        f"/v1/users/{TENANT_USER_INVITED}/resend-invite",
        TENANT_AUTH,
        None,
    ),
}


def resend(client: httpx.Client, family: str, **kwargs: Any) -> httpx.Response:
    _, method, path, headers, body = RESENDS[family]
    return client.request(method, path, headers=headers, json=body, **kwargs)


def user_of(family: str) -> str:
    return RESENDS[family][0]


# --- Ecosuite ---------------------------------------------------------------------------------


def test_ecosuite_profiles_are_served(vendors: Harness) -> None:
    ada = vendors.client.get(f"/users/{ECOSUITE_USER_1}", headers=ECOSUITE_AUTH)
    grace = vendors.client.get(f"/users/{ECOSUITE_USER_2}", headers=ECOSUITE_AUTH)

    assert ada.status_code == 200
    assert ada.json() == {
        "email": "ada@example.com",
        "firstName": "Ada",
        "lastName": "Lovelace",
        "timezone": "Europe/London",
        "userType": "admin",
        "access": {
            "startDate": "2025-01-06",
            "endDate": "2026-12-31",
            "preventDownload": "no",
            "restrictProjects": "no",
        },
    }
    assert grace.json() == {
        "email": "grace@example.com",
        "firstName": "Grace",
        "lastName": "Hopper",
    }
    assert vendors.sandbox.emails_snapshot() == {}


@pytest.mark.parametrize("authorization", [ECOSUITE_TOKEN, f"Bearer {ECOSUITE_TOKEN}"])
def test_ecosuite_resend_counts_one_email(vendors: Harness, authorization: str) -> None:
    body = json.loads(json.dumps(ECOSUITE_PROFILES[ECOSUITE_USER_1], default=dict))

    response = vendors.client.put(
        f"/users/{ECOSUITE_USER_1}/resend", headers={"Authorization": authorization}, json=body
    )

    assert response.status_code == 200
    assert response.json() == {}
    assert vendors.sandbox.emails_sent(ECOSUITE_USER_1) == 1
    assert vendors.sandbox.emails_snapshot() == {ECOSUITE_USER_1: 1}


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": "wrong"},
        {"Authorization": "Bearer wrong"},
        {"Authorization": f"Token {ECOSUITE_TOKEN}"},
        {"Authorization": f"{ECOSUITE_TOKEN}x"},
    ],
)
def test_ecosuite_refuses_a_bad_token(vendors: Harness, headers: dict[str, str]) -> None:
    profile = vendors.client.get(f"/users/{ECOSUITE_USER_1}", headers=headers)
    sent = vendors.client.put(f"/users/{ECOSUITE_USER_1}/resend", headers=headers, json=ADA)

    for response in (profile, sent):
        assert response.status_code == 401
        assert response.json() == {"message": "Unauthorized"}
    assert vendors.sandbox.emails_snapshot() == {}


@pytest.mark.parametrize(
    ("user_id", "status", "message"),
    [(ECOSUITE_USER_FORBIDDEN, 403, "Forbidden"), ("eco-nobody", 404, "User not found")],
)
def test_ecosuite_refuses_users_it_cannot_serve(
    vendors: Harness, user_id: str, status: int, message: str
) -> None:
    profile = vendors.client.get(f"/users/{user_id}", headers=ECOSUITE_AUTH)
    sent = vendors.client.put(f"/users/{user_id}/resend", headers=ECOSUITE_AUTH, json=ADA)

    for response in (profile, sent):
        assert response.status_code == status
        assert response.json() == {"message": message}
    assert vendors.sandbox.emails_snapshot() == {}


@pytest.mark.parametrize(
    "content",
    [
        b"not json",
        b"\xff\xfe",
        json.dumps([ADA]).encode(),
        json.dumps({"firstName": "Ada", "lastName": "Lovelace"}).encode(),
        json.dumps({**ADA, "email": ""}).encode(),
        json.dumps({**ADA, "email": "ada.example.com"}).encode(),
        json.dumps({**ADA, "firstName": ""}).encode(),
        json.dumps({**ADA, "lastName": "   "}).encode(),
        json.dumps({**ADA, "lastName": 7}).encode(),
        json.dumps({**ADA, "timezone": 1}).encode(),
        json.dumps({**ADA, "access": "no"}).encode(),
        json.dumps({**ADA, "access": {"preventDownload": "maybe"}}).encode(),
        json.dumps({**ADA, "access": {"restrictProjects": "all"}}).encode(),
        json.dumps({**ADA, "access": {"startDate": "tomorrow"}}).encode(),
    ],
)
def test_ecosuite_rejects_a_malformed_body(vendors: Harness, content: bytes) -> None:
    response = vendors.client.put(
        f"/users/{ECOSUITE_USER_1}/resend",
        headers={**ECOSUITE_AUTH, "Content-Type": "application/json"},
        content=content,
    )

    assert response.status_code == 400
    assert response.json() == {"message": "Invalid status value"}
    assert vendors.sandbox.emails_snapshot() == {}


def test_ecosuite_accepts_every_documented_access_value(vendors: Harness) -> None:
    for prevent in ("no", "yes"):
        for restrict in ("no", "portfolios", "yes"):
            access = {"preventDownload": prevent, "restrictProjects": restrict}
            response = vendors.client.put(
                f"/users/{ECOSUITE_USER_2}/resend",
                headers=ECOSUITE_AUTH,
                json={**ADA, "access": access},
            )
            assert response.status_code == 200

    assert vendors.sandbox.emails_sent(ECOSUITE_USER_2) == 6


# --- SoftwareOne ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("path", "counted_as"),
    [
        (f"{LEGACY}/{SOFTWAREONE_MEMBERSHIP_INVITED}", SOFTWAREONE_MEMBERSHIP_INVITED),
        (f"{CURRENT}/{SOFTWAREONE_USER_INVITED}", SOFTWAREONE_USER_INVITED),
    ],
)
def test_softwareone_resend_renews_an_invited_membership(
    vendors: Harness, path: str, counted_as: str
) -> None:
    first = vendors.client.post(f"{path}/resend-invite", headers=SOFTWAREONE_AUTH)
    second = vendors.client.post(f"{path}/resend-invite", headers=SOFTWAREONE_AUTH)
    state = vendors.client.get(path, headers=SOFTWAREONE_AUTH)

    assert first.status_code == second.status_code == state.status_code == 200
    body = first.json()
    assert set(body) == ACCOUNT_USER_FIELDS
    assert body["id"] == SOFTWAREONE_MEMBERSHIP_INVITED
    assert body["invitation"]["status"] == "Invited"
    assert INVITATION_URL.fullmatch(body["invitation"]["url"])
    assert body["user"]["id"] == SOFTWAREONE_USER_INVITED
    assert body["account"]["id"] == SOFTWAREONE_ACCOUNT_ID
    # The schema's ``Id`` object; the published example's junk only when asked for.
    assert body["audit"]["created"]["by"] == body["audit"]["updated"]["by"]
    assert set(body["audit"]["created"]["by"]) == {"id", "name", "icon"}
    assert set(body["audit"]) == {"created", "updated", "invitationAcceptedAt", "access", "joined"}
    # Each resend issues a fresh invitation link; a read shows the latest one.
    assert second.json()["invitation"]["url"] != body["invitation"]["url"]
    assert state.json()["invitation"]["url"] == second.json()["invitation"]["url"]
    assert vendors.sandbox.emails_snapshot() == {counted_as: 2}


@pytest.mark.parametrize(
    ("membership_id", "user_id", "status"),
    [
        (SOFTWAREONE_MEMBERSHIP_INVITED, SOFTWAREONE_USER_INVITED, "Invited"),
        (SOFTWAREONE_MEMBERSHIP_ACTIVE, SOFTWAREONE_USER_ACTIVE, "Active"),
        (SOFTWAREONE_MEMBERSHIP_EXPIRED, SOFTWAREONE_USER_EXPIRED, "InvitationExpired"),
    ],
)
def test_softwareone_reads_the_membership_state(
    vendors: Harness, membership_id: str, user_id: str, status: str
) -> None:
    legacy = vendors.client.get(f"{LEGACY}/{membership_id}", headers=SOFTWAREONE_AUTH)
    current = vendors.client.get(f"{CURRENT}/{user_id}", headers=SOFTWAREONE_AUTH)

    for response in (legacy, current):
        assert response.status_code == 200
        body = response.json()
        assert (body["id"], body["user"]["id"]) == (membership_id, user_id)
        assert body["invitation"]["status"] == status
    assert set(legacy.json()) == ACCOUNT_USER_FIELDS
    assert "invitationAcceptedAt" in legacy.json()["audit"]
    # AccountUser defines neither lastLoginAt nor audit.invitationAcceptedAt.
    assert set(current.json()) == ACCOUNT_USER_FIELDS - {"lastLoginAt"}
    assert set(current.json()["audit"]) == {"created", "updated", "access", "joined"}
    assert vendors.sandbox.emails_snapshot() == {}


@pytest.mark.parametrize(
    "path", [f"{LEGACY}/{SOFTWAREONE_MEMBERSHIP_ACTIVE}", f"{CURRENT}/{SOFTWAREONE_USER_ACTIVE}"]
)
def test_softwareone_get_honours_select(vendors: Harness, path: str) -> None:
    response = vendors.client.get(
        path, params={"select": "-audit,-modules,+groups,-id"}, headers=SOFTWAREONE_AUTH
    )

    assert response.status_code == 200
    body = response.json()
    assert "audit" not in body
    assert "modules" not in body
    assert {"id", "groups", "invitation"} <= set(body)  # id is always kept


def test_softwareone_can_answer_the_published_examples_audit_artifact(vendors: Harness) -> None:
    vendors.sandbox.vendor(SoftwareOneSandbox).audit_by_artifact = True
    try:
        body = vendors.client.get(
            f"{CURRENT}/{SOFTWAREONE_USER_ACTIVE}", headers=SOFTWAREONE_AUTH
        ).json()
    finally:
        vendors.sandbox.vendor(SoftwareOneSandbox).audit_by_artifact = False

    assert body["audit"]["created"]["by"] == body["audit"]["updated"]["by"] == CIRCULAR


def test_softwareone_top_level_status_scenario_adds_the_members_status(vendors: Harness) -> None:
    vendors.sandbox.vendor(SoftwareOneSandbox).shape = TOP_LEVEL_STATUS
    try:
        active = vendors.client.get(
            f"{CURRENT}/{SOFTWAREONE_USER_ACTIVE}", headers=SOFTWAREONE_AUTH
        )
        resent = vendors.client.post(
            f"{CURRENT}/{SOFTWAREONE_USER_INVITED}/resend-invite", headers=SOFTWAREONE_AUTH
        )
    finally:
        vendors.sandbox.vendor(SoftwareOneSandbox).shape = PUBLISHED

    assert set(active.json()) == ACCOUNT_USER_FIELDS - {"lastLoginAt"} | {"status"}
    assert active.json()["status"] == active.json()["invitation"]["status"] == "Active"
    assert resent.json()["status"] == "Invited"
    with pytest.raises(ValueError, match="shape must be one of published, top_level_status"):
        SoftwareOneSandbox(shape="Published")


@pytest.mark.parametrize(
    ("path", "counted_as"),
    [
        (f"{LEGACY}/{SOFTWAREONE_MEMBERSHIP_EXPIRED}", SOFTWAREONE_MEMBERSHIP_EXPIRED),
        (f"{CURRENT}/{SOFTWAREONE_USER_EXPIRED}", SOFTWAREONE_USER_EXPIRED),
    ],
)
def test_softwareone_send_new_invite_renews_only_an_expired_invitation(
    vendors: Harness, path: str, counted_as: str
) -> None:
    renewed = vendors.client.post(f"{path}/send-new-invite", headers=SOFTWAREONE_AUTH)
    again = vendors.client.post(f"{path}/send-new-invite", headers=SOFTWAREONE_AUTH)
    resent = vendors.client.post(f"{path}/resend-invite", headers=SOFTWAREONE_AUTH)

    assert renewed.status_code == 200
    assert renewed.json()["invitation"]["status"] == "Invited"
    assert INVITATION_URL.fullmatch(renewed.json()["invitation"]["url"])
    # Now Invited: a second new invitation is refused, a resend is accepted.
    assert again.status_code == 400
    assert again.json()["errors"] == {"status": ["Account user is not in InvitationExpired state."]}
    assert resent.status_code == 200
    assert vendors.sandbox.emails_snapshot() == {counted_as: 2}


@pytest.mark.parametrize(
    "path",
    [f"{CURRENT}/{SOFTWAREONE_USER_ACTIVE}", f"{CURRENT}/{SOFTWAREONE_USER_DELETED}"],
)
def test_softwareone_send_new_invite_refuses_other_members(vendors: Harness, path: str) -> None:
    response = vendors.client.post(f"{path}/send-new-invite", headers=SOFTWAREONE_AUTH)

    assert response.status_code in (400, 404)
    assert response.json()["status"] == response.status_code
    assert vendors.sandbox.emails_snapshot() == {}


@pytest.mark.parametrize(
    "path",
    [f"{LEGACY}/{SOFTWAREONE_MEMBERSHIP_ACTIVE}", f"{CURRENT}/{SOFTWAREONE_USER_ACTIVE}"],
)
def test_softwareone_refuses_to_resend_to_an_active_member(vendors: Harness, path: str) -> None:
    response = vendors.client.post(f"{path}/resend-invite", headers=SOFTWAREONE_AUTH)

    assert response.status_code == 400
    body = response.json()
    assert body["status"] == 400
    assert body["type"] == "https://tools.ietf.org/html/rfc9110#section-15.5.1"
    # The published 400 example's shape (tests/data/softwareone-errors-handling-400.json).
    assert (body["title"], body["detail"]) == (
        "Bad Request",
        "One or more validation errors occurred.",
    )
    assert body["errors"] == {"status": ["Account user is not in Invited state."]}
    assert TRACE_ID.fullmatch(body["traceId"])
    assert vendors.sandbox.emails_snapshot() == {}


@pytest.mark.parametrize(
    "path",
    [f"{LEGACY}/{SOFTWAREONE_MEMBERSHIP_EXPIRED}", f"{CURRENT}/{SOFTWAREONE_USER_EXPIRED}"],
)
def test_softwareone_refuses_to_resend_an_expired_invitation(vendors: Harness, path: str) -> None:
    response = vendors.client.post(f"{path}/resend-invite", headers=SOFTWAREONE_AUTH)

    assert response.status_code == 409
    body = response.json()
    assert (body["status"], body["title"]) == (409, "Conflict")
    assert body["errors"] == [
        {
            "id": SOFTWAREONE_MEMBERSHIP_EXPIRED,
            "message": "Invitation has expired; send a new invitation.",
            "properties": ["status"],
            "parameters": {},
        }
    ]
    assert TRACE_ID.fullmatch(body["traceId"])
    assert vendors.sandbox.emails_snapshot() == {}


@pytest.mark.parametrize(
    "path",
    [
        f"{LEGACY}/{SOFTWAREONE_MEMBERSHIP_DELETED}",
        f"{LEGACY}/AUSR-9999-9999",
        f"{CURRENT}/{SOFTWAREONE_USER_DELETED}",
        f"{CURRENT}/USR-9999-9999",
        f"/public/v1/accounts/accounts/ACC-9999-9999/users/{SOFTWAREONE_USER_INVITED}",
    ],
)
def test_softwareone_answers_not_found_in_problem_details(vendors: Harness, path: str) -> None:
    for response in (
        vendors.client.get(path, headers=SOFTWAREONE_AUTH),
        vendors.client.post(f"{path}/resend-invite", headers=SOFTWAREONE_AUTH),
    ):
        assert response.status_code == 404
        body = response.json()
        assert body["type"] == "https://tools.ietf.org/html/rfc9110#section-15.5.5"
        assert (body["title"], body["status"]) == ("Not Found", 404)
        assert isinstance(body["detail"], str)
        assert TRACE_ID.fullmatch(body["traceId"])
    assert vendors.sandbox.emails_snapshot() == {}


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": SOFTWAREONE_TOKEN}, {"Authorization": "Bearer idt:TKN-FAKE-0000:x"}],
)
def test_softwareone_refuses_a_bad_token(vendors: Harness, headers: dict[str, str]) -> None:
    for path in (
        f"{LEGACY}/{SOFTWAREONE_MEMBERSHIP_INVITED}",
        f"{CURRENT}/{SOFTWAREONE_USER_INVITED}",
    ):
        response = vendors.client.post(f"{path}/resend-invite", headers=headers)
        assert response.status_code == 401
        assert response.json()["status"] == 401
        assert response.json()["title"] == "Unauthorized"
    assert vendors.sandbox.emails_snapshot() == {}


def test_softwareone_legacy_family_can_be_removed(vendors: Harness) -> None:
    vendors.sandbox.vendor(SoftwareOneSandbox).legacy_removed = True
    legacy = f"{LEGACY}/{SOFTWAREONE_MEMBERSHIP_INVITED}"

    for response in (
        vendors.client.get(legacy, headers=SOFTWAREONE_AUTH),
        vendors.client.post(f"{legacy}/resend-invite", headers=SOFTWAREONE_AUTH),
    ):
        assert response.status_code == 404
        assert response.json() == {"message": "Resource not found", "statusCode": 404}
    current = resend(vendors.client, "softwareone")
    assert current.status_code == 200
    assert vendors.sandbox.emails_snapshot() == {SOFTWAREONE_USER_INVITED: 1}


def test_softwareone_gateway_answers_paths_it_does_not_have(vendors: Harness) -> None:
    # The published OpenAPI's family without the second "accounts" is gone.
    gone = f"/public/v1/accounts/{SOFTWAREONE_ACCOUNT_ID}/users/{SOFTWAREONE_USER_INVITED}"

    response = vendors.client.post(f"{gone}/resend-invite", headers=SOFTWAREONE_AUTH)

    assert response.status_code == 404
    assert response.json() == {"message": "Resource not found", "statusCode": 404}


# --- tenant-header API ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "credential",
    [{"X-API-Key": TENANT_API_KEY}, {"Authorization": f"Bearer {TENANT_BEARER_TOKEN}"}],
)
@pytest.mark.parametrize("user_id", [TENANT_USER_INVITED, TENANT_USER_INVITED_2])
def test_tenant_resend_counts_one_email(
    vendors: Harness, credential: dict[str, str], user_id: str
) -> None:
    response = vendors.client.post(
        f"/v1/users/{user_id}/resend-invite", headers={**credential, "X-Tenant-ID": TENANT_ID}
    )

    assert response.status_code == 200
    assert response.json() == {"message": "Invite resent."}
    assert vendors.sandbox.emails_snapshot() == {user_id: 1}


def test_tenant_ids_compare_as_uuids(vendors: Harness) -> None:
    upper_user = TENANT_USER_INVITED.upper()

    response = vendors.client.post(
        f"/v1/users/{upper_user}/resend-invite",
        headers={"X-API-Key": TENANT_API_KEY, "X-Tenant-ID": TENANT_ID.upper()},
    )

    assert response.status_code == 200
    # Counted under the id as the path spelled it.
    assert vendors.sandbox.emails_snapshot() == {upper_user: 1}


@pytest.mark.parametrize(
    ("headers", "user_id", "status", "body"),
    [
        (
            {"X-Tenant-ID": TENANT_ID},
            TENANT_USER_INVITED,
            401,
            {"code": "unauthorized", "message": "Missing or invalid credential."},
        ),
        (
            {"X-API-Key": "wrong", "X-Tenant-ID": TENANT_ID},
            TENANT_USER_INVITED,
            401,
            {"code": "unauthorized", "message": "Missing or invalid credential."},
        ),
        (
            {"Authorization": f"Bearer {TENANT_API_KEY}", "X-Tenant-ID": TENANT_ID},
            TENANT_USER_INVITED,
            401,
            {"code": "unauthorized", "message": "Missing or invalid credential."},
        ),
        (
            {"X-API-Key": TENANT_API_KEY, "X-Tenant-ID": OTHER_TENANT_ID},
            TENANT_USER_INVITED,
            403,
            {
                "code": "tenant_mismatch",
                "message": "Credential and X-Tenant-ID belong to different tenants.",
                "notices": ["policy tenant-isolation forbids cross-tenant access"],
            },
        ),
        (
            TENANT_AUTH,
            "not-a-uuid",
            400,
            {"code": "invalid_id", "message": "User id must be a UUID."},
        ),
        (
            TENANT_AUTH,
            TENANT_USER_VERIFIED,
            409,
            {"code": "already_verified", "message": "User is already verified."},
        ),
        (
            TENANT_AUTH,
            TENANT_USER_COOLDOWN,
            422,
            {
                "code": "invite_cooldown",
                "message": "An invitation was sent recently.",
                "details": {"retry_in": 300},
            },
        ),
        (
            TENANT_AUTH,
            TENANT_USER_UNKNOWN,
            404,
            {
                "code": "not_found",
                "message": "User not found.",
                "notices": ["policy read-users matched no user"],
            },
        ),
    ],
)
def test_tenant_refusals(
    vendors: Harness, headers: dict[str, str], user_id: str, status: int, body: dict[str, object]
) -> None:
    response = vendors.client.post(f"/v1/users/{user_id}/resend-invite", headers=headers)

    assert response.status_code == status
    assert response.json() == body
    assert vendors.sandbox.emails_snapshot() == {}


@pytest.mark.parametrize("tenant", [None, "acme", ""])
def test_tenant_header_must_be_a_uuid(vendors: Harness, tenant: str | None) -> None:
    headers = {"X-API-Key": TENANT_API_KEY}
    if tenant is not None:
        headers["X-Tenant-ID"] = tenant

    response = vendors.client.post(
        f"/v1/users/{TENANT_USER_INVITED}/resend-invite", headers=headers
    )

    assert response.status_code == 400
    assert response.json()["code"] == "invalid_tenant"
    assert response.json()["message"]
    assert vendors.sandbox.emails_snapshot() == {}


# --- requests and reset ---------------------------------------------------------------------


def test_requests_are_recorded_without_headers(vendors: Harness) -> None:
    for family in ("ecosuite", "softwareone", "tenant_api"):
        resend(vendors.client, family)
    vendors.client.get("/nowhere")

    assert vendors.sandbox.requests == [
        ("ecosuite", "PUT", f"/users/{ECOSUITE_USER_1}/resend"),
        ("softwareone", "POST", f"{CURRENT}/{SOFTWAREONE_USER_INVITED}/resend-invite"),
        ("tenant_api", "POST", f"/v1/users/{TENANT_USER_INVITED}/resend-invite"),
        ("unknown", "GET", "/nowhere"),
    ]
    assert vendors.sandbox.request_count == 4
    recorded = repr(vendors.sandbox.requests)
    for secret in (ECOSUITE_TOKEN, SOFTWAREONE_TOKEN, TENANT_API_KEY):
        assert secret not in recorded


def test_request_log_limit_keeps_the_latest() -> None:
    with harness("in_process", Sandbox(request_log_limit=2)) as opened:
        for path in ("/a", "/b", "/c"):
            opened.client.get(path)

        assert [request.path for request in opened.sandbox.requests] == ["/b", "/c"]
        assert opened.sandbox.request_count == 3


def test_reset_forgets_everything_but_the_configuration() -> None:
    sandbox = Sandbox(rate_limit=1, clock=lambda: 0.0)
    with harness("in_process", sandbox) as opened:
        sandbox.inject(ECOSUITE_USER_1, Fault.SERVER_ERROR)
        assert resend(opened.client, "ecosuite").status_code == 500
        sandbox.inject(ECOSUITE_USER_1, Fault.SERVER_ERROR)
        assert resend(opened.client, "ecosuite").status_code == 429

        sandbox.reset()

        assert (sandbox.emails_snapshot(), sandbox.requests, sandbox.fault_log) == ({}, [], [])
        assert (sandbox.request_count, sandbox.rate_limited) == (0, 0)
        assert resend(opened.client, "ecosuite").status_code == 200  # the queued fault is gone
        assert sandbox.emails_snapshot() == {ECOSUITE_USER_1: 1}
        assert sandbox.rate_limit == 1


# --- faults -------------------------------------------------------------------------------------

FAMILIES = list(RESENDS)


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(("fault", "status"), [(Fault.RATE_LIMIT, 429), (Fault.UNAVAILABLE, 503)])
def test_retryable_faults_carry_retry_after(family: str, fault: Fault, status: int) -> None:
    with harness("socket", Sandbox(retry_after=7)) as opened:
        opened.sandbox.inject(user_of(family), fault)

        refused = resend(opened.client, family)
        served = resend(opened.client, family)

        assert refused.status_code == status
        assert refused.headers["Retry-After"] == "7"
        assert refused.headers["Content-Type"] == "application/json"
        assert_vendor_shaped(family, refused)
        assert served.status_code == 200
        assert opened.sandbox.emails_snapshot() == {user_of(family): 1}
        assert opened.sandbox.fault_log == [(user_of(family), fault)]


def assert_vendor_shaped(family: str, response: httpx.Response) -> None:
    body = response.json()
    if family.startswith("softwareone"):
        assert body["status"] == response.status_code
        assert TRACE_ID.fullmatch(body["traceId"])
    elif family == "tenant_api":
        assert set(body) == {"code", "message"}
    else:
        assert set(body) == {"message"}


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(
    ("fault", "status"), [(Fault.SERVER_ERROR, 500), (Fault.GATEWAY_TIMEOUT, 504)]
)
def test_json_error_faults(over_socket: Harness, family: str, fault: Fault, status: int) -> None:
    over_socket.sandbox.inject(user_of(family), fault)

    response = resend(over_socket.client, family)

    assert response.status_code == status
    assert "Retry-After" not in response.headers
    assert_vendor_shaped(family, response)
    assert over_socket.sandbox.emails_snapshot() == {}


@pytest.mark.parametrize(("fault", "status"), [(Fault.BAD_GATEWAY, 502), (Fault.HTML_ERROR, 500)])
def test_html_faults(over_socket: Harness, fault: Fault, status: int) -> None:
    over_socket.sandbox.inject(ECOSUITE_USER_1, fault)

    response = resend(over_socket.client, "ecosuite")

    assert response.status_code == status
    assert response.headers["Content-Type"].startswith("text/html")
    assert response.text.startswith(("<html>", "<!DOCTYPE html>"))
    with pytest.raises(json.JSONDecodeError):
        response.json()
    assert over_socket.sandbox.emails_snapshot() == {}


def test_bad_gateway_page(over_socket: Harness) -> None:
    over_socket.sandbox.inject(TENANT_USER_INVITED, Fault.BAD_GATEWAY)

    response = resend(over_socket.client, "tenant_api")

    assert response.text == "<html><body><h1>502 Bad Gateway</h1></body></html>"


def test_malformed_json_is_a_200_that_does_not_parse(over_socket: Harness) -> None:
    over_socket.sandbox.inject(SOFTWAREONE_USER_INVITED, Fault.MALFORMED_JSON)

    response = resend(over_socket.client, "softwareone")

    assert response.status_code == 200
    assert response.headers["Content-Type"] == "application/json"
    assert response.text == '{"message": "Invite re'
    with pytest.raises(json.JSONDecodeError):
        response.json()
    assert over_socket.sandbox.emails_snapshot() == {}


@pytest.mark.parametrize("family", FAMILIES)
@pytest.mark.parametrize(("fault", "emails"), [(Fault.DROP_BEFORE, 0), (Fault.DROP_AFTER, 1)])
def test_drops_close_the_socket_mid_response(
    over_socket: Harness, family: str, fault: Fault, emails: int
) -> None:
    over_socket.sandbox.inject(user_of(family), fault)

    with pytest.raises(httpx.RemoteProtocolError):
        resend(over_socket.client, family)

    assert over_socket.sandbox.emails_sent(user_of(family)) == emails
    assert resend(over_socket.client, family).status_code == 200  # the next request is served
    assert over_socket.sandbox.emails_sent(user_of(family)) == emails + 1


@pytest.mark.parametrize(("fault", "emails"), [(Fault.DROP_BEFORE, 0), (Fault.DROP_AFTER, 1)])
def test_drops_in_process_raise_connection_dropped(fault: Fault, emails: int) -> None:
    with harness("in_process") as opened:
        opened.sandbox.inject(ECOSUITE_USER_1, fault)

        with pytest.raises(ConnectionDropped):
            resend(opened.client, "ecosuite")

        assert opened.sandbox.emails_sent(ECOSUITE_USER_1) == emails


class Collect(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_deliberate_drops_are_not_logged_as_errors(over_socket: Harness) -> None:
    collect = Collect()
    uvicorn_errors = logging.getLogger("uvicorn.error")
    uvicorn_errors.addHandler(collect)
    try:
        over_socket.sandbox.inject(ECOSUITE_USER_1, Fault.DROP_BEFORE, Fault.DROP_AFTER)
        for _ in range(2):
            with pytest.raises(httpx.RemoteProtocolError):
                resend(over_socket.client, "ecosuite")
    finally:
        uvicorn_errors.removeHandler(collect)

    # uvicorn logs an application error before it closes the socket, so any is already here.
    assert [record.getMessage() for record in collect.records] == []


def test_slow_fault_waits_then_answers() -> None:
    waits: list[float] = []

    async def record_wait(seconds: float) -> None:
        waits.append(seconds)

    with harness("in_process", Sandbox(slow_seconds=0.25, sleep=record_wait)) as opened:
        opened.sandbox.inject(TENANT_USER_INVITED, Fault.SLOW)

        response = resend(opened.client, "tenant_api")

        assert response.status_code == 200
        assert waits == [0.25]
        assert opened.sandbox.emails_snapshot() == {TENANT_USER_INVITED: 1}


def test_slow_fault_outlasts_a_short_read_timeout() -> None:
    with harness("socket", Sandbox(slow_seconds=0.5)) as opened:
        opened.sandbox.inject(ECOSUITE_USER_1, Fault.SLOW)

        with pytest.raises(httpx.ReadTimeout):
            resend(opened.client, "ecosuite", timeout=httpx.Timeout(5.0, read=0.05))


def test_faults_also_hit_reads_but_count_no_email(vendors: Harness) -> None:
    vendors.sandbox.inject(ECOSUITE_USER_1, Fault.RATE_LIMIT, Fault.MALFORMED_JSON)
    vendors.sandbox.inject(SOFTWAREONE_MEMBERSHIP_ACTIVE, Fault.UNAVAILABLE)

    profile = f"/users/{ECOSUITE_USER_1}"
    assert vendors.client.get(profile, headers=ECOSUITE_AUTH).status_code == 429
    assert vendors.client.get(profile, headers=ECOSUITE_AUTH).text == '{"message": "Invite re'
    assert vendors.client.get(profile, headers=ECOSUITE_AUTH).status_code == 200
    state = f"{LEGACY}/{SOFTWAREONE_MEMBERSHIP_ACTIVE}"
    assert vendors.client.get(state, headers=SOFTWAREONE_AUTH).status_code == 503
    assert vendors.client.get(state, headers=SOFTWAREONE_AUTH).status_code == 200
    assert vendors.sandbox.emails_snapshot() == {}


def test_injected_faults_follow_the_user_the_path_names(vendors: Harness) -> None:
    vendors.sandbox.inject(ECOSUITE_USER_2, Fault.SERVER_ERROR)
    vendors.sandbox.inject(SOFTWAREONE_MEMBERSHIP_INVITED, Fault.SERVER_ERROR)

    # Another user, and the same SoftwareOne membership under its current-endpoint id, are clean.
    assert resend(vendors.client, "ecosuite").status_code == 200
    assert resend(vendors.client, "softwareone").status_code == 200
    assert resend(vendors.client, "softwareone_legacy").status_code == 500
    grace = {"email": "grace@example.com", "firstName": "Grace", "lastName": "Hopper"}
    second = vendors.client.put(
        f"/users/{ECOSUITE_USER_2}/resend", headers=ECOSUITE_AUTH, json=grace
    )
    assert second.status_code == 500
    assert vendors.sandbox.fault_log == [
        (SOFTWAREONE_MEMBERSHIP_INVITED, Fault.SERVER_ERROR),
        (ECOSUITE_USER_2, Fault.SERVER_ERROR),
    ]


def run_resends(sandbox: Sandbox, rounds: int) -> list[int | None]:
    """Resend through every family `rounds` times; the statuses (None for a drop)."""
    statuses: list[int | None] = []
    with harness("in_process", sandbox) as opened:
        for _ in range(rounds):
            for family in FAMILIES:
                try:
                    statuses.append(resend(opened.client, family).status_code)
                except ConnectionDropped:
                    statuses.append(None)
    return statuses


async def no_wait(seconds: float) -> None:
    return None


def test_random_faults_are_reproducible_from_the_seed() -> None:
    first, second, other = (
        Sandbox(fault_rate=0.5, seed=seed, sleep=no_wait) for seed in (11, 11, 12)
    )

    statuses = run_resends(first, 10)
    assert run_resends(second, 10) == statuses
    run_resends(other, 10)

    assert first.fault_log == second.fault_log
    assert first.emails_snapshot() == second.emails_snapshot()
    assert first.fault_log != other.fault_log
    assert 0 < len(first.fault_log) < 40
    assert {fault for _, fault in first.fault_log} <= set(Fault)


def test_random_faults_draw_only_the_configured_kinds_and_only_on_resends() -> None:
    sandbox = Sandbox(fault_rate=1.0, seed=3, faults=[Fault.SERVER_ERROR])
    with harness("in_process", sandbox) as opened:
        reads = [
            opened.client.get(f"/users/{ECOSUITE_USER_1}", headers=ECOSUITE_AUTH),
            opened.client.get(f"{CURRENT}/{SOFTWAREONE_USER_INVITED}", headers=SOFTWAREONE_AUTH),
        ]
        resends = [resend(opened.client, family) for family in FAMILIES]

    assert [response.status_code for response in reads] == [200, 200]
    assert [response.status_code for response in resends] == [500] * len(FAMILIES)
    assert sandbox.fault_log == [(user_of(family), Fault.SERVER_ERROR) for family in FAMILIES]
    assert sandbox.emails_snapshot() == {}


def test_reset_replays_the_same_random_faults() -> None:
    sandbox = Sandbox(fault_rate=0.5, seed=5, sleep=no_wait)
    run_resends(sandbox, 5)
    before = sandbox.fault_log

    sandbox.reset()
    run_resends(sandbox, 5)

    assert sandbox.fault_log == before


# --- rate limit -------------------------------------------------------------------------------


class FrozenClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("kind", ["in_process", "socket"])
def test_rate_limit_refuses_beyond_the_burst_until_time_passes(kind: str) -> None:
    clock = FrozenClock()
    sandbox = Sandbox(rate_limit=5, clock=clock)
    with harness(kind, sandbox) as opened:
        burst = [resend(opened.client, FAMILIES[index % 4]) for index in range(8)]

        admitted = [response for response in burst if response.status_code != 429]
        refused = [response for response in burst if response.status_code == 429]
        assert [response.status_code for response in admitted] == [200] * 5
        assert len(refused) == 3
        for response in refused:
            assert response.headers["Retry-After"] == "1"
        assert sandbox.rate_limited == 3
        assert sum(sandbox.emails_snapshot().values()) == 5
        assert sandbox.request_count == 8

        clock.now += 0.2  # one token back
        assert resend(opened.client, "tenant_api").status_code == 200
        assert resend(opened.client, "tenant_api").status_code == 429

        clock.now += 1.0  # a full bucket, never more than the burst
        later = [resend(opened.client, "tenant_api").status_code for _ in range(6)]
        assert later == [200] * 5 + [429]
        assert sandbox.rate_limited == 5


@pytest.mark.parametrize("family", FAMILIES)
def test_rate_limit_answers_in_the_vendor_shape(family: str) -> None:
    sandbox = Sandbox(rate_limit=1, clock=FrozenClock())
    with harness("in_process", sandbox) as opened:
        assert resend(opened.client, family).status_code == 200
        refused = resend(opened.client, family)

    assert refused.status_code == 429
    assert_vendor_shaped(family, refused)
    assert sandbox.fault_log == []


def test_a_slow_rate_asks_to_wait_longer() -> None:
    sandbox = Sandbox(rate_limit=0.25, clock=FrozenClock())
    with harness("in_process", sandbox) as opened:
        assert resend(opened.client, "ecosuite").status_code == 200
        refused = resend(opened.client, "ecosuite")

    assert refused.headers["Retry-After"] == "4"


# --- construction, serving, packaging --------------------------------------------------------


@pytest.mark.parametrize(
    "arguments",
    [
        {"fault_rate": 1.5},
        {"fault_rate": -0.1},
        {"fault_rate": 0.5, "faults": []},
        {"rate_limit": 0},
        {"retry_after": -1},
        {"slow_seconds": -1},
        {"request_log_limit": -1},
    ],
)
def test_sandbox_rejects_arguments_out_of_range(arguments: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match=next(iter(arguments))):
        Sandbox(**arguments)


def test_create_app_exposes_its_sandbox() -> None:
    sandbox = Sandbox()

    assert create_app(sandbox).state.sandbox is sandbox
    assert isinstance(create_app().state.sandbox, Sandbox)


def test_app_works_through_httpx_asgi_transport() -> None:
    sandbox = Sandbox()

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(sandbox))
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
            return await client.post(
                f"/v1/users/{TENANT_USER_INVITED}/resend-invite", headers=TENANT_AUTH
            )

    response = asyncio.run(go())

    assert response.json() == {"message": "Invite resent."}
    assert sandbox.emails_snapshot() == {TENANT_USER_INVITED: 1}


def test_serve_binds_a_free_port_and_stops_on_exit() -> None:
    sandbox = Sandbox()
    with serve(sandbox) as running:
        assert running.sandbox is sandbox
        assert running.port > 0
        assert running.url == f"http://127.0.0.1:{running.port}"
        response = httpx.get(f"{running.url}/users/{ECOSUITE_USER_1}", headers=ECOSUITE_AUTH)
        assert response.status_code == 200

    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{running.url}/users/{ECOSUITE_USER_1}", headers=ECOSUITE_AUTH)


def test_serve_reports_a_port_it_cannot_bind() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]

        with pytest.raises(RuntimeError, match="did not start"), serve(port=port):
            pass


def test_module_runs_from_the_command_line() -> None:
    with subprocess.Popen(
        [sys.executable, "-m", "invites.sandbox", "--port", "0", "--rate-limit", "50"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    ) as process:
        try:
            assert process.stdout is not None
            banner = [process.stdout.readline() for _ in range(4)]
            found = re.search(r"http://127\.0\.0\.1:\d+", banner[0])
            assert found, banner
            assert any(TENANT_API_KEY in line for line in banner)
            response = httpx.post(
                f"{found.group(0)}/v1/users/{TENANT_USER_INVITED}/resend-invite",
                headers=TENANT_AUTH,
            )
            assert response.json() == {"message": "Invite resent."}
        finally:
            process.terminate()
            process.wait(timeout=10)


def test_sandbox_depends_only_on_stdlib_starlette_and_uvicorn() -> None:
    allowed = set(sys.stdlib_module_names) | {"starlette", "uvicorn"}
    package = Path(invites.sandbox.__file__).parent
    for module in package.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0:
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] in allowed, f"{module.name} imports {name}"
        # Relative imports stay inside the package.
        assert "from .." not in module.read_text(), module.name


def test_added_users_can_be_reinvited_and_survive_a_reset() -> None:
    added_uuid = "7b0e2c1a-1111-4222-8333-444455556666"
    with harness("in_process") as h:
        tenant = {"X-API-Key": TENANT_API_KEY, "X-Tenant-ID": TENANT_ID}
        assert (
            h.client.post(f"/v1/users/{added_uuid}/resend-invite", headers=tenant).status_code
            == 404
        )
        assert (
            h.client.get("/users/bulk-1", headers={"Authorization": ECOSUITE_TOKEN}).status_code
            == 404
        )

        h.sandbox.add_users("tenant_api", [added_uuid.upper()])
        h.sandbox.add_users("ecosuite", ["bulk-1"])
        h.sandbox.reset()

        assert (
            h.client.post(f"/v1/users/{added_uuid}/resend-invite", headers=tenant).status_code
            == 200
        )
        profile = h.client.get("/users/bulk-1", headers={"Authorization": ECOSUITE_TOKEN}).json()
        assert profile["email"] == "bulk-1@example.com"
        assert h.sandbox.emails_snapshot() == {added_uuid: 1}
        with pytest.raises(ValueError, match="no vendor named 'nope'"):
            h.sandbox.add_users("nope", ["u-1"])


def test_added_softwareone_users_have_an_invited_membership_on_both_endpoints() -> None:
    current = f"/public/v1/accounts/accounts/{SOFTWAREONE_ACCOUNT_ID}/users"
    legacy = "/public/v1/accounts/account-users"
    with harness("in_process") as h:
        assert h.client.get(f"{current}/USR-9000-0001", headers=SOFTWAREONE_AUTH).status_code == 404

        h.sandbox.add_users("softwareone", ["USR-9000-0001", "USR-9000-0002"])
        h.sandbox.reset()  # added users survive it
        member = h.client.get(f"{current}/USR-9000-0001", headers=SOFTWAREONE_AUTH).json()
        first = h.client.post(f"{current}/USR-9000-0001/resend-invite", headers=SOFTWAREONE_AUTH)
        second = h.client.post(f"{legacy}/AUSR-9000-0002/resend-invite", headers=SOFTWAREONE_AUTH)

        assert (member["id"], member["invitation"]["status"]) == ("AUSR-9000-0001", "Invited")
        assert (first.status_code, second.status_code) == (200, 200)
        assert h.sandbox.emails_snapshot() == {"USR-9000-0001": 1, "AUSR-9000-0002": 1}
