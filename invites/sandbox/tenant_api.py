"""Simulated tenant-header identity API: ``POST /v1/users/{id}/resend-invite``.

Auth is ``X-API-Key`` or ``Authorization: Bearer``; ``X-Tenant-ID`` must name the credential's
tenant. Errors are ``{"code", "message", "details"?, "notices"?}``.

Assumptions (the page names no status for its errors): "User is already verified" is
``409 already_verified`` (``already_verified_status = 400``: the other status a user may meet);
"User not found" is ``404 not_found``; ``422 invite_cooldown`` is a code the vendor does not
document, kept on purpose to exercise unknown codes.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ._core import VendorRoute, VendorSandbox
from ._data import (
    TENANT_API_KEY,
    TENANT_BEARER_TOKEN,
    TENANT_ID,
    TENANT_USER_COOLDOWN,
    TENANT_USER_INVITED,
    TENANT_USER_INVITED_2,
    TENANT_USER_VERIFIED,
)

__all__ = ["TenantApiSandbox"]

_SEEDED_INVITED = frozenset({TENANT_USER_INVITED, TENANT_USER_INVITED_2})


def _error(status: int, code: str, message: str, **extra: object) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, **extra}, status)


def _as_uuid(text: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(text) if text is not None else None
    except ValueError:
        return None


class TenantApiSandbox(VendorSandbox):
    """One tenant (`TENANT_ID`) with invited, verified and cooling-down users.

    ``already_verified_status`` (409, or 400) is a plain attribute: it may be switched while the
    sandbox runs.
    """

    name = "tenant_api"
    path_prefixes = ("/v1",)

    def __init__(self, *, already_verified_status: int = 409) -> None:
        if already_verified_status not in (400, 409):
            raise ValueError(
                f"already_verified_status must be 400 or 409, not {already_verified_status!r}"
            )
        self.already_verified_status = already_verified_status
        self._invited: set[str] = set(_SEEDED_INVITED)
        super().__init__()

    def routes(self) -> Sequence[VendorRoute]:
        return [
            VendorRoute(
                "/v1/users/{user_id}/resend-invite", self.resend, ("POST",), "user_id", resend=True
            )
        ]

    def add_users(self, user_ids: Sequence[str]) -> None:
        """The ids must be UUIDs (any case); raises ValueError otherwise."""
        added = {str(uuid.UUID(user_id)) for user_id in user_ids}
        with self.lock:
            self._invited.update(added)

    def new_user_ids(self, count: int) -> list[str]:
        """UUIDs ``00000000-0000-4000-8000-000000000001`` onwards: easy to tell apart."""
        return [f"00000000-0000-4000-8000-{n:012d}" for n in range(1, count + 1)]

    def failure(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> Response:
        return JSONResponse({"code": code, "message": message}, status, headers=dict(headers or {}))

    def banner(self, url: str) -> str:
        return (
            f"{self.name:<12} base_url={url}  tenant_id={TENANT_ID}"
            f"  api_key={TENANT_API_KEY}  bearer_token={TENANT_BEARER_TOKEN}"
        )

    def _is_invited(self, user_id: str) -> bool:
        with self.lock:
            return user_id in self._invited

    async def resend(self, request: Request) -> Response:
        refusal = _credential_refusal(request)
        if refusal is not None:
            return refusal
        path_id = request.path_params["user_id"]
        user = _as_uuid(path_id)
        if user is None:
            return _error(400, "invalid_id", "User id must be a UUID.")
        user_id = str(user)
        if user_id == TENANT_USER_VERIFIED:
            status = self.already_verified_status
            return _error(status, "already_verified", "User is already verified.")
        if user_id == TENANT_USER_COOLDOWN:
            return _error(
                422,
                "invite_cooldown",
                "An invitation was sent recently.",
                details={"retry_in": 300},
            )
        if not self._is_invited(user_id):
            return _error(
                404,
                "not_found",
                "User not found.",
                notices=["policy read-users matched no user"],
            )
        self.sandbox.count_email(path_id)
        return JSONResponse({"message": "Invite resent."})


def _credential_refusal(request: Request) -> Response | None:
    """401 without a valid credential, 400/403 for a missing, malformed or foreign tenant."""
    headers = request.headers
    if (
        headers.get("x-api-key") != TENANT_API_KEY
        and headers.get("authorization") != f"Bearer {TENANT_BEARER_TOKEN}"
    ):
        return _error(401, "unauthorized", "Missing or invalid credential.")
    tenant_header = headers.get("x-tenant-id")
    tenant = _as_uuid(tenant_header)
    if tenant is None:
        problem = "is required" if tenant_header is None else "must be a UUID"
        return _error(400, "invalid_tenant", f"X-Tenant-ID header {problem}.")
    if tenant != uuid.UUID(TENANT_ID):
        return _error(
            403,
            "tenant_mismatch",
            "Credential and X-Tenant-ID belong to different tenants.",
            notices=["policy tenant-isolation forbids cross-tenant access"],
        )
    return None
