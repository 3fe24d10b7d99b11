"""A vendor of one's own plugged into the sandbox without touching its core."""

from __future__ import annotations

import ast
import asyncio
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

import httpx
import pytest
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

import invites.sandbox
from invites.sandbox import (
    TENANT_API_KEY,
    TENANT_ID,
    TENANT_USER_INVITED,
    EcosuiteSandbox,
    Fault,
    RecordedRequest,
    Sandbox,
    SoftwareOneSandbox,
    TenantApiSandbox,
    VendorRoute,
    VendorSandbox,
    create_app,
    default_vendors,
    serve,
)


class AcmeSandbox(VendorSandbox):
    """A fourth vendor: ``POST /acme/members/{member}/invite`` for the members it knows."""

    name = "acme"
    path_prefixes = ("/acme",)

    def __init__(self) -> None:
        self.resets = 0
        self.members: set[str] = {"m-1"}
        super().__init__()

    def reset(self) -> None:
        with self.lock:
            self.resets += 1

    def add_users(self, user_ids: Sequence[str]) -> None:
        with self.lock:
            self.members.update(user_ids)

    def routes(self) -> Sequence[VendorRoute]:
        return [
            VendorRoute("/acme/members/{member}/invite", self.invite, ("POST",), "member", True),
            VendorRoute("/acme/status", self.status, ("GET",)),
        ]

    def failure(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> Response:
        return JSONResponse({"acme_error": code}, status, headers=dict(headers or {}))

    async def invite(self, request: Request) -> Response:
        member = request.path_params["member"]
        with self.lock:
            known = member in self.members
        if not known:
            return JSONResponse({"acme_error": "unknown_member"}, 404)
        self.sandbox.count_email(member)
        return JSONResponse({"invited": member})

    async def status(self, request: Request) -> Response:
        return JSONResponse({"up": True})


def call(sandbox: Sandbox, method: str, path: str, **kwargs: object) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=create_app(sandbox))
        async with httpx.AsyncClient(transport=transport, base_url="http://sandbox") as client:
            return await client.request(method, path, **kwargs)  # type: ignore[arg-type]

    return asyncio.run(go())


def with_acme(**options: object) -> tuple[Sandbox, AcmeSandbox]:
    acme = AcmeSandbox()
    return Sandbox(vendors=[*default_vendors(), acme], **options), acme  # type: ignore[arg-type]


def test_a_fourth_vendor_serves_beside_the_built_in_ones() -> None:
    sandbox, acme = with_acme()

    invited = call(sandbox, "POST", "/acme/members/m-1/invite")
    unknown = call(sandbox, "POST", "/acme/members/m-2/invite")
    tenant = call(
        sandbox,
        "POST",
        f"/v1/users/{TENANT_USER_INVITED}/resend-invite",
        headers={"X-API-Key": TENANT_API_KEY, "X-Tenant-ID": TENANT_ID},
    )

    assert (invited.status_code, invited.json()) == (200, {"invited": "m-1"})
    assert (unknown.status_code, unknown.json()) == (404, {"acme_error": "unknown_member"})
    assert tenant.json() == {"message": "Invite resent."}
    assert sandbox.emails_snapshot() == {"m-1": 1, TENANT_USER_INVITED: 1}
    assert [request.vendor for request in sandbox.requests] == ["acme", "acme", "tenant_api"]
    assert sandbox.vendor(AcmeSandbox) is acme
    assert acme.sandbox is sandbox


def test_faults_reach_a_plugged_in_vendor_in_its_own_error_shape() -> None:
    sandbox, _ = with_acme(retry_after=4)
    sandbox.inject("m-1", Fault.RATE_LIMIT, Fault.MALFORMED_JSON)

    limited = call(sandbox, "POST", "/acme/members/m-1/invite")
    malformed = call(sandbox, "POST", "/acme/members/m-1/invite")
    served = call(sandbox, "POST", "/acme/members/m-1/invite")

    assert (limited.status_code, limited.json()) == (429, {"acme_error": "rate_limited"})
    assert limited.headers["retry-after"] == "4"
    assert malformed.status_code == 200
    assert malformed.content == b'{"message": "Invite re'
    assert served.json() == {"invited": "m-1"}
    assert sandbox.fault_log == [("m-1", Fault.RATE_LIMIT), ("m-1", Fault.MALFORMED_JSON)]
    assert sandbox.emails_snapshot() == {"m-1": 1}


def test_random_faults_skip_routes_without_a_user() -> None:
    sandbox, _ = with_acme(fault_rate=1.0, seed=1, faults=[Fault.SERVER_ERROR])

    status = call(sandbox, "GET", "/acme/status")
    invite = call(sandbox, "POST", "/acme/members/m-1/invite")

    assert status.json() == {"up": True}
    assert (invite.status_code, invite.json()) == (500, {"acme_error": "internal_error"})


def test_the_rate_limit_answers_in_the_owning_vendors_shape() -> None:
    sandbox, _ = with_acme(rate_limit=1, clock=lambda: 0.0)

    call(sandbox, "GET", "/acme/status")
    refused = call(sandbox, "GET", "/acme/status")
    elsewhere = call(sandbox, "GET", "/nobody/here")

    assert (refused.status_code, refused.json()) == (429, {"acme_error": "rate_limited"})
    assert (elsewhere.status_code, elsewhere.json()) == (429, {"message": "Too Many Requests"})
    assert sandbox.requests[-1] == RecordedRequest("unknown", "GET", "/nobody/here")


def test_reset_and_add_users_reach_the_vendor() -> None:
    sandbox, acme = with_acme()
    sandbox.add_users("acme", ["m-9"])
    sandbox.reset()

    assert acme.resets == 2  # on creation, then by the sandbox
    assert call(sandbox, "POST", "/acme/members/m-9/invite").status_code == 200
    with pytest.raises(ValueError, match="no vendor named 'nope'"):
        sandbox.add_users("nope", ["x"])


def test_a_vendor_without_add_users_refuses_them() -> None:
    class Fixed(VendorSandbox):
        name = "fixed"
        path_prefixes = ("/fixed",)

        def routes(self) -> Sequence[VendorRoute]:
            return []

    sandbox = Sandbox(vendors=[Fixed()])

    with pytest.raises(ValueError, match="the fixed sandbox cannot add users"):
        sandbox.add_users("fixed", ["x"])
    assert sandbox.seed_users(3) == {}


def test_a_plugged_in_vendor_is_served_over_a_socket() -> None:
    acme = AcmeSandbox()
    with serve(Sandbox(vendors=[acme])) as running:
        answer = httpx.post(f"{running.url}/acme/members/m-1/invite")
        elsewhere = httpx.get(f"{running.url}/users/eco-user-1")

    assert answer.json() == {"invited": "m-1"}
    assert elsewhere.status_code == 404  # only the vendors given are played
    assert running.sandbox.emails_snapshot() == {"m-1": 1}


def test_vendor_names_and_objects_are_not_shared() -> None:
    with pytest.raises(ValueError, match="'acme'"):
        Sandbox(vendors=[AcmeSandbox(), AcmeSandbox()])
    acme = AcmeSandbox()
    Sandbox(vendors=[acme])
    with pytest.raises(ValueError, match="another Sandbox"):
        Sandbox(vendors=[acme])
    with pytest.raises(LookupError, match="EcosuiteSandbox"):
        Sandbox(vendors=[AcmeSandbox()]).vendor(EcosuiteSandbox)
    with pytest.raises(RuntimeError, match="not attached"):
        _ = AcmeSandbox().sandbox


def test_the_default_vendors_are_the_three_built_in_ones() -> None:
    kinds = [type(vendor) for vendor in Sandbox().vendors]

    assert kinds == [EcosuiteSandbox, SoftwareOneSandbox, TenantApiSandbox]


def test_the_core_names_no_vendor() -> None:
    package = Path(invites.sandbox.__file__).parent
    names = {"ecosuite", "softwareone", "tenant_api"}
    for core in ("_core.py", "_vendor.py", "_app.py", "_faults.py", "_server.py"):
        tree = ast.parse((package / core).read_text(encoding="utf-8"))
        docstrings = {
            id(node.body[0].value)
            for node in ast.walk(tree)
            if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef)
            and node.body
            and isinstance(node.body[0], ast.Expr)
        }
        for node in ast.walk(tree):
            if isinstance(node, ast.Constant) and id(node) not in docstrings:
                assert not (isinstance(node.value, str) and node.value.lower() in names), core
            if isinstance(node, ast.ImportFrom):
                assert (node.module or "").lstrip(".") not in names, f"{core} imports a vendor"


def test_the_documented_plug_in_example_runs() -> None:
    from invites.sandbox import _vendor

    doc = _vendor.__doc__ or ""
    code = doc[doc.index("    from starlette") : doc.index("The contract of a vendor object")]
    namespace: dict[str, object] = {}
    exec(textwrap.dedent(code), namespace)  # noqa: S102 (the module's own documented example)
    sandbox = namespace["sandbox"]
    assert isinstance(sandbox, Sandbox)

    invited = call(sandbox, "POST", "/acme/users/u-1/invite")
    unknown = call(sandbox, "POST", "/acme/users/u-2/invite")

    assert (invited.status_code, invited.json()) == (200, {"ok": True})
    assert unknown.status_code == 404
    assert sandbox.emails_snapshot() == {"u-1": 1}
    assert [type(vendor).__name__ for vendor in sandbox.vendors][-1] == "AcmeSandbox"
