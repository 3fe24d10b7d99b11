"""Relay (see ``fourth_vendor``) simulated through the sandbox's public per-vendor API.

Invitations carry a state and a revision that every resend advances; a resend naming an older
revision is refused (409 ``stale_revision``), one naming none is unconditional.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from invites.sandbox import VendorRoute, VendorSandbox

__all__ = [
    "RELAY_ACCEPTED",
    "RELAY_EXPIRED",
    "RELAY_PENDING",
    "RELAY_PENDING_2",
    "RELAY_TOKEN",
    "RELAY_WORKSPACE",
    "RelaySandbox",
]

RELAY_TOKEN = "relay-test-token-not-real"
RELAY_WORKSPACE = "ws-test"
RELAY_PENDING = "inv-pending-1"
RELAY_PENDING_2 = "inv-pending-2"
RELAY_ACCEPTED = "inv-accepted"
RELAY_EXPIRED = "inv-expired"

_SEEDED = {
    RELAY_PENDING: "pending",
    RELAY_PENDING_2: "pending",
    RELAY_ACCEPTED: "accepted",
    RELAY_EXPIRED: "expired",
}


def _error(
    status: int, kind: str, detail: str, headers: Mapping[str, str] | None = None
) -> Response:
    body = {"error": {"kind": kind, "detail": detail, "trace": f"trace-{kind}"}}
    return JSONResponse(body, status, headers=dict(headers or {}))


class RelaySandbox(VendorSandbox):
    """One workspace, `RELAY_WORKSPACE`, reached with `RELAY_TOKEN`."""

    name = "relay"
    path_prefixes = ("/api",)

    def __init__(self) -> None:
        self._added: set[str] = set()
        super().__init__()

    def reset(self) -> None:
        with self.lock:
            self._states = {**_SEEDED, **dict.fromkeys(self._added, "pending")}
            self._revisions = dict.fromkeys(self._states, 1)

    def add_users(self, user_ids: Sequence[str]) -> None:
        with self.lock:
            self._added.update(user_ids)
            for user_id in user_ids:
                self._states.setdefault(user_id, "pending")
                self._revisions.setdefault(user_id, 1)

    def routes(self) -> Sequence[VendorRoute]:
        return [
            VendorRoute("/api/invitations/{invitation_id}", self.read, ("GET",), "invitation_id"),
            VendorRoute(
                "/api/invitations/{invitation_id}:resend",
                self.resend,
                ("POST",),
                "invitation_id",
                resend=True,
            ),
        ]

    def failure(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> Response:
        return _error(status, code, message, headers)

    async def read(self, request: Request) -> Response:
        refusal = _refusal(request)
        if refusal is not None:
            return refusal
        invitation = request.path_params["invitation_id"]
        with self.lock:
            state = self._states.get(invitation)
            revision = self._revisions.get(invitation)
        if state is None:
            return _error(404, "unknown_invitation", "No such invitation.")
        return JSONResponse({"id": invitation, "state": state, "revision": revision})

    async def resend(self, request: Request) -> Response:
        refusal = _refusal(request)
        if refusal is not None:
            return refusal
        invitation = request.path_params["invitation_id"]
        body = await request.json()
        if not isinstance(body, dict) or body.get("channel") not in ("email", "sms"):
            return _error(422, "invalid_body", "channel must be email or sms.")
        with self.lock:
            state = self._states.get(invitation)
            current = self._revisions.get(invitation)
            if state == "pending" and body.get("revision", current) == current:
                self._revisions[invitation] = (current or 0) + 1
        if state is None:
            return _error(404, "unknown_invitation", "No such invitation.")
        if state != "pending":
            return _error(409, state, f"The invitation is {state}.")
        if body.get("revision", current) != current:
            return _error(409, "stale_revision", "The invitation changed since it was read.")
        self.sandbox.count_email(invitation)
        return JSONResponse(
            {"status": "queued", "message": f"Invitation sent by {body['channel']}."}
        )


def _refusal(request: Request) -> Response | None:
    if request.headers.get("x-api-token") != RELAY_TOKEN:
        return _error(401, "bad_token", "Unknown API token.")
    if request.headers.get("x-relay-workspace") != RELAY_WORKSPACE:
        return _error(403, "foreign_workspace", "The token does not reach this workspace.")
    return None
