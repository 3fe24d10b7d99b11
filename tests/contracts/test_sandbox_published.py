"""The sandbox answers in the vendors' published shapes, and says where it guesses.

Every SoftwareOne answer the sandbox gives is validated against SoftwareOne's published OpenAPI
subset (``tests/data/softwareone-account-users.openapi.json``), minimally relaxed for two defects
of the spec itself:

1. The schemas that others extend through ``allOf`` (``AccountUserRef``, ``IdRef``, ...) carry
   ``additionalProperties: false`` with only their own few properties, so no object with one more
   field -- not even the spec's own examples -- could ever be valid. That keyword is dropped from
   those bases only; the extending schemas keep theirs, so no unknown field gets through.
2. The spec's paths are ``/public/v1/accounts/{accountId}/users/...``, a family the official
   client's changelog says is gone; the current one is ``/public/v1/accounts/accounts/...``. The
   sandbox's current paths are looked up under the spec's.

OpenAPI 3.0's ``nullable: true`` is translated to JSON Schema's ``"null"`` type (a translation,
not a relaxation). A status the operation does not list (401, the 409, 501) is an assumption of
the sandbox (docs/sandbox.md, "What the sandbox assumes") and is validated against
``ProblemDetails``, the platform's error schema.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import jsonschema
import pytest
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT7

from invites.cli import main
from invites.sandbox import (
    ECOSUITE_TOKEN,
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
    TENANT_ID,
    EcosuiteSandbox,
    Sandbox,
    SoftwareOneSandbox,
    TenantApiSandbox,
    serve,
)

DATA = Path(__file__).parents[1] / "data"
SPEC: dict[str, Any] = json.loads(
    (DATA / "softwareone-account-users.openapi.json").read_text(encoding="utf-8")
)
AUTH = {"Authorization": f"Bearer {SOFTWAREONE_TOKEN}"}
CURRENT = f"/public/v1/accounts/accounts/{SOFTWAREONE_ACCOUNT_ID}/users"
LEGACY = "/public/v1/accounts/account-users"
# Statuses no published source gives these operations: the sandbox's assumptions.
ASSUMED = {401, 409, 501}


@contextmanager
def sandbox_client(sandbox: Sandbox) -> Iterator[httpx.Client]:
    """A client of `sandbox` served over a loopback socket."""
    with serve(sandbox) as running, httpx.Client(base_url=running.url) as client:
        yield client


def _nullable_to_null(node: Any) -> None:
    """OpenAPI 3.0 ``nullable: true`` as JSON Schema: ``"null"`` among the types."""
    if isinstance(node, dict):
        if node.pop("nullable", False) and isinstance(node.get("type"), str):
            node["type"] = [node["type"], "null"]
        for value in node.values():
            _nullable_to_null(value)
    elif isinstance(node, list):
        for value in node:
            _nullable_to_null(value)


def relaxed_spec() -> dict[str, Any]:
    """The spec with defect 1 relaxed (see the module docstring) and nullable translated."""
    spec = copy.deepcopy(SPEC)
    schemas = spec["components"]["schemas"]
    bases = {
        item["$ref"].rsplit("/", 1)[-1]
        for schema in schemas.values()
        for item in schema.get("allOf", [])
    }
    for name in bases:
        schemas[name].pop("additionalProperties", None)
    _nullable_to_null(spec)
    return spec


RELAXED = relaxed_spec()
REGISTRY = Registry().with_resource("spec.json", Resource.from_contents(RELAXED, DRAFT7))


def validator(schema_name: str) -> jsonschema.Draft7Validator:
    schema = {"$ref": f"spec.json#/components/schemas/{schema_name}"}
    return jsonschema.Draft7Validator(schema, registry=REGISTRY)


def _spec_path(path: str) -> str:
    """The spec's path template for a sandbox path (defect 2)."""
    path = path.replace("/public/v1/accounts/accounts/", "/public/v1/accounts/", 1)
    templates: list[str] = list(SPEC["paths"])
    for template in templates:
        wanted, given = template.split("/"), path.split("/")
        if len(wanted) == len(given) and all(
            w == g or (w.startswith("{") and w.endswith("}"))
            for w, g in zip(wanted, given, strict=True)
        ):
            return template
    raise AssertionError(f"{path} is in no published path")


def response_schema(method: str, path: str, status: int) -> str:
    """The schema the spec gives this answer, or ProblemDetails for an assumed status."""
    template = _spec_path(path)
    responses = SPEC["paths"][template][method.lower()]["responses"]
    if str(status) not in responses:
        assert status in ASSUMED, f"{method} {template} answered {status}, which is not published"
        return "ProblemDetails"
    ref: str = responses[str(status)]["content"]["application/json"]["schema"]["$ref"]
    return ref.rsplit("/", 1)[-1]


def violations(schema_name: str, body: object) -> list[str]:
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message}"
        for error in validator(schema_name).iter_errors(body)
    ]


def test_the_relaxation_is_needed_and_minimal() -> None:
    """Unrelaxed, the spec refuses any account user with more than an id; relaxed, a made-up
    field is still refused, and so is a wrong type."""
    with sandbox_client(Sandbox()) as client:
        published = client.post(
            f"{CURRENT}/{SOFTWAREONE_USER_INVITED}/resend-invite", headers=AUTH
        ).json()
    strict = copy.deepcopy(SPEC)
    _nullable_to_null(strict)
    strict_registry = Registry().with_resource("spec.json", Resource.from_contents(strict, DRAFT7))
    schema = {"$ref": "spec.json#/components/schemas/AccountUserQueryLegacy"}
    strict_errors = list(
        jsonschema.Draft7Validator(schema, registry=strict_registry).iter_errors(published)
    )

    assert strict_errors  # defect 1: the allOf base refuses every field but id
    assert violations("AccountUserQueryLegacy", published) == []
    assert violations("AccountUserQueryLegacy", {**published, "madeUp": 1}) != []
    assert violations("AccountUser", {**published, "lastLoginAt": None}) != []
    assert violations("AccountUserQueryLegacy", {**published, "invitation": {"status": 3}}) != []


def _requests() -> Iterator[tuple[str, str, dict[str, str]]]:
    """Every SoftwareOne answer the sandbox can give: each state, each family, each call."""
    members = [
        (SOFTWAREONE_MEMBERSHIP_INVITED, SOFTWAREONE_USER_INVITED),
        (SOFTWAREONE_MEMBERSHIP_ACTIVE, SOFTWAREONE_USER_ACTIVE),
        (SOFTWAREONE_MEMBERSHIP_EXPIRED, SOFTWAREONE_USER_EXPIRED),
        (SOFTWAREONE_MEMBERSHIP_DELETED, SOFTWAREONE_USER_DELETED),
        ("AUSR-9999-9999", "USR-9999-9999"),
    ]
    for membership_id, user_id in members:
        for base in (f"{LEGACY}/{membership_id}", f"{CURRENT}/{user_id}"):
            yield "GET", base, AUTH
            yield "GET", base, {}
            for action in ("resend-invite", "send-new-invite", "accept-invite"):
                yield "POST", f"{base}/{action}", AUTH
            yield "DELETE", base, AUTH


def test_every_softwareone_answer_has_the_published_shape() -> None:
    sandbox = Sandbox()
    seen: set[tuple[str, int]] = set()
    with sandbox_client(sandbox) as client:
        for method, path, headers in _requests():
            for _ in range(2):  # the second resend or renewal meets the state the first left
                response = client.request(method, path, headers=headers)
                schema = response_schema(method, path, response.status_code)
                assert response.headers["content-type"] == "application/json"
                assert violations(schema, response.json()) == [], (method, path)
                seen.add((schema, response.status_code))
            sandbox.reset()

    assert seen >= {
        ("AccountUser", 200),
        ("AccountUserQueryLegacy", 200),
        ("ProblemDetails", 400),
        ("ProblemDetails", 404),
        ("ProblemDetails", 401),
        ("ProblemDetails", 409),
        ("ProblemDetails", 501),
    }


@pytest.mark.parametrize(
    "path", [f"{CURRENT}/{SOFTWAREONE_USER_ACTIVE}", f"{LEGACY}/AUSR-0000-0002"]
)
def test_a_selected_answer_still_has_the_published_shape(path: str) -> None:
    with sandbox_client(Sandbox()) as client:
        response = client.get(path, params={"select": "-audit,-groups"}, headers=AUTH)

    body = response.json()
    assert ("audit" in body, "groups" in body) == (False, False)
    assert violations(response_schema("GET", path, 200), body) == []


def test_the_400_has_the_published_examples_shape() -> None:
    published = json.loads((DATA / "softwareone-errors-handling-400.json").read_text())
    with sandbox_client(Sandbox()) as client:
        response = client.post(f"{CURRENT}/{SOFTWAREONE_USER_ACTIVE}/resend-invite", headers=AUTH)

    body = response.json()
    assert response.status_code == 400
    assert set(body) == set(published)
    for key in ("type", "title", "status", "detail"):
        assert body[key] == published[key]
    assert isinstance(body["errors"], dict)


@pytest.mark.parametrize(
    ("method", "path", "operation"),
    [
        ("POST", f"{CURRENT}/{SOFTWAREONE_USER_INVITED}/accept-invite", "accept-invite"),
        ("POST", f"{LEGACY}/{SOFTWAREONE_MEMBERSHIP_INVITED}/accept-invite", "accept-invite"),
        ("GET", CURRENT, "list account users"),
        ("POST", CURRENT, "create an account user"),
        ("PUT", f"{CURRENT}/{SOFTWAREONE_USER_INVITED}", "update an account user"),
        ("DELETE", f"{CURRENT}/{SOFTWAREONE_USER_INVITED}", "delete an account user"),
        ("DELETE", f"{LEGACY}/{SOFTWAREONE_MEMBERSHIP_INVITED}", "delete an account user"),
    ],
)
def test_an_unsimulated_documented_operation_is_501_naming_it(
    method: str, path: str, operation: str
) -> None:
    with sandbox_client(Sandbox()) as client:
        response = client.request(method, path, headers=AUTH)
        anonymous = client.request(method, path)

    assert response.status_code == 501
    body = response.json()
    assert (body["status"], body["title"]) == (501, "Not Implemented")
    assert f"does not simulate {operation}" in body["detail"]
    assert anonymous.status_code == 401  # the credential is checked first, as for the others


@pytest.mark.parametrize(
    ("method", "path", "operation"),
    [
        ("GET", "/users", "list users"),
        ("POST", "/users", "create a user"),
        ("PUT", "/users/eco-user-1", "update a user"),
        ("DELETE", "/users/eco-user-1", "delete a user"),
    ],
)
def test_ecosuites_unsimulated_operations_are_501(method: str, path: str, operation: str) -> None:
    with sandbox_client(Sandbox()) as client:
        response = client.request(method, path, headers={"Authorization": ECOSUITE_TOKEN})

    assert response.status_code == 501
    assert response.json() == {
        "message": f"The sandbox does not simulate {operation} ({method} "
        + ("/users/{userId}" if path != "/users" else "/users")
        + ")."
    }


@pytest.fixture(scope="module")
def shared() -> Iterator[tuple[Sandbox, httpx.Client]]:
    """One sandbox served for the module's many small requests (reset by each test)."""
    sandbox = Sandbox()
    with sandbox_client(sandbox) as client:
        yield sandbox, client


CONTROL = ["\n", "\r", "\t", "\x00", "\x1b", "\x7f"]
# Each vendor's JSON error shapes: the fields an answer has, the optional ones.
Shape = tuple[set[str], set[str]]
GATEWAY: Shape = ({"message", "statusCode"}, set())
PROBLEM: Shape = ({"type", "title", "status", "detail", "traceId"}, {"errors"})
ECOSUITE: Shape = ({"message"}, set())
TENANT: Shape = ({"code", "message"}, {"details", "notices"})
SHAPES: dict[str, list[Shape]] = {
    "softwareone": [GATEWAY, PROBLEM],
    "ecosuite": [ECOSUITE],
    "tenant_api": [TENANT],
}


@pytest.mark.parametrize("char", CONTROL, ids=[f"0x{ord(c):02x}" for c in CONTROL])
@pytest.mark.parametrize(
    ("method", "path", "headers", "vendor"),
    [
        ("POST", CURRENT + "/USR{c}1/resend-invite", AUTH, "softwareone"),
        ("GET", CURRENT + "/USR{c}1", AUTH, "softwareone"),
        ("POST", LEGACY + "/AUSR{c}1/resend-invite", AUTH, "softwareone"),
        ("GET", "/public/v1/accounts/a{c}b/nowhere", AUTH, "softwareone"),
        ("GET", "/users/eco{c}1/resend", {"Authorization": ECOSUITE_TOKEN}, "ecosuite"),
        ("PUT", "/users/eco{c}1/resend", {"Authorization": ECOSUITE_TOKEN}, "ecosuite"),
        ("GET", "/users/eco{c}1", {"Authorization": ECOSUITE_TOKEN}, "ecosuite"),
        (
            "POST",
            "/v1/users/a{c}b/resend-invite",
            {"X-API-Key": TENANT_API_KEY, "X-Tenant-ID": TENANT_ID},
            "tenant_api",
        ),
    ],
    ids=[
        "so-current",
        "so-current-get",
        "so-legacy",
        "so-unknown-path",
        "eco-wrong-method",
        "eco-resend",
        "eco-get",
        "tenant",
    ],
)
def test_an_id_with_a_control_character_gets_the_vendors_json_error(
    shared: tuple[Sandbox, httpx.Client],
    method: str,
    path: str,
    headers: dict[str, str],
    vendor: str,
    char: str,
) -> None:
    sandbox, client = shared
    sandbox.reset()
    response = client.request(method, path.format(c=quote(char)), headers=headers)

    assert 400 <= response.status_code < 500
    assert response.headers["content-type"] == "application/json"
    keys = set(response.json())
    assert any(needed <= keys <= needed | optional for needed, optional in SHAPES[vendor]), keys
    assert sandbox.emails_snapshot() == {}


# --- the assumptions, switched -------------------------------------------------------------


def test_softwareone_refusal_statuses_can_be_switched() -> None:
    vendor = SoftwareOneSandbox(active_status=409, expired_status=400)
    with sandbox_client(Sandbox(vendors=[vendor])) as client:
        active = client.post(f"{CURRENT}/{SOFTWAREONE_USER_ACTIVE}/resend-invite", headers=AUTH)
        expired = client.post(f"{CURRENT}/{SOFTWAREONE_USER_EXPIRED}/resend-invite", headers=AUTH)

    assert (active.status_code, active.json()["title"]) == (409, "Conflict")
    assert (expired.status_code, expired.json()["title"]) == (400, "Bad Request")
    with pytest.raises(ValueError, match="active_status must be 400 or 409"):
        SoftwareOneSandbox(active_status=422)


def test_ecosuite_refusals_can_be_switched() -> None:
    vendor = EcosuiteSandbox(token_refusal=403, forbidden_status=404, accept_bearer=False)
    with sandbox_client(Sandbox(vendors=[vendor])) as client:
        bad = client.get("/users/eco-user-1", headers={"Authorization": "fake-token-nope"})
        bearer = client.get(
            "/users/eco-user-1", headers={"Authorization": f"Bearer {ECOSUITE_TOKEN}"}
        )
        hidden = client.get("/users/eco-forbidden", headers={"Authorization": ECOSUITE_TOKEN})

    assert (bad.status_code, bad.json()) == (403, {"message": "Forbidden"})
    assert bearer.status_code == 403
    assert (hidden.status_code, hidden.json()) == (404, {"message": "User not found"})
    with pytest.raises(ValueError, match="token_refusal must be 401 or 403"):
        EcosuiteSandbox(token_refusal=400)


def test_tenant_apis_already_verified_status_can_be_switched() -> None:
    vendor = TenantApiSandbox(already_verified_status=400)
    headers = {"X-API-Key": TENANT_API_KEY, "X-Tenant-ID": TENANT_ID}
    with sandbox_client(Sandbox(vendors=[vendor])) as client:
        response = client.post(
            "/v1/users/d1bd28b9-8967-433a-8d11-9e2eb6a04a8c/resend-invite", headers=headers
        )

    assert (response.status_code, response.json()["code"]) == (400, "already_verified")


@pytest.fixture
def assuming() -> Iterator[str]:
    """``invites sandbox --port 0`` with two assumptions switched; its URL once it listens."""
    argv = ["--assume", "softwareone.active_status=409", "--assume", "ecosuite.accept_bearer=false"]
    process = subprocess.Popen(  # noqa: S603  (this interpreter, fixed arguments)
        [sys.executable, "-m", "invites", "sandbox", "--port", "0", *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    try:
        assert process.stdout is not None
        banner = []
        for line in process.stdout:  # the banner ends with the stats line, once listening
            banner.append(line)
            if "email counts:" in line:
                break
        assert banner, "the sandbox exited before serving"
        yield banner[0].split()[3]
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_the_command_switches_assumptions(assuming: str) -> None:
    with httpx.Client(base_url=assuming) as client:
        active = client.post(f"{CURRENT}/{SOFTWAREONE_USER_ACTIVE}/resend-invite", headers=AUTH)
        bearer = client.get(
            "/users/eco-user-1", headers={"Authorization": f"Bearer {ECOSUITE_TOKEN}"}
        )

    assert (active.status_code, active.json()["title"]) == (409, "Conflict")
    assert bearer.status_code == 401


@pytest.mark.parametrize(
    ("argv", "complaint"),
    [
        (["--assume", "softwareone.active_status=422"], "active_status must be 400 or 409"),
        (["--assume", "nope=1"], "expected one of softwareone.active_status"),
        (["--assume", "ecosuite.accept_bearer=yes"], "expected true or false"),
        (["--assume", "tenant_api.already_verified_status"], "=VALUE"),
    ],
)
def test_a_bad_assumption_is_a_usage_error(
    argv: list[str], complaint: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["sandbox", *argv]) == 2
    assert complaint in capsys.readouterr().err
