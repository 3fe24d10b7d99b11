"""Simulated SoftwareOne Marketplace Platform: account users and their invitations.

Paths (all under ``/public/v1``): the current ``/accounts/accounts/{accountId}/users/{userId}``
(``GET``), ``.../resend-invite`` and ``.../send-new-invite`` (``POST``), and the same three under
the deprecated ``/accounts/account-users/{accountUserId}``. Auth is ``Authorization: Bearer
<token>``; errors are RFC 7807 problem details with a W3C ``traceId``; any other ``/public/...``
path gets the gateway's ``404 {"message": "Resource not found", "statusCode": 404}``.

Account users are answered in the published ``AccountUser`` shape: the membership's state only as
``invitation.status`` (``Invited``, ``Active``, ``InvitationExpired``), no top-level ``status``.
The `TOP_LEVEL_STATUS` scenario adds the top-level ``status`` the platform's user objects carry.
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ._core import VendorRoute, VendorSandbox
from ._data import (
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
)

__all__ = ["SoftwareOneSandbox"]

_ALL_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

PUBLISHED = "published"
"""Account users as the published schema has them: the state in ``invitation.status`` only."""
TOP_LEVEL_STATUS = "top_level_status"
"""Account users with a top-level ``status`` too, as the platform's user objects have it."""
_SHAPES = (PUBLISHED, TOP_LEVEL_STATUS)


@dataclass
class _Membership:
    """A SoftwareOne account membership, as the sandbox holds it."""

    membership_id: str
    user_id: str
    name: str
    status: str
    invitation_url: str
    updated_at: str


_SEEDED_MEMBERSHIPS = (
    (SOFTWAREONE_MEMBERSHIP_INVITED, SOFTWAREONE_USER_INVITED, "Alan Turing", "Invited"),
    (SOFTWAREONE_MEMBERSHIP_ACTIVE, SOFTWAREONE_USER_ACTIVE, "Edsger Dijkstra", "Active"),
    (
        SOFTWAREONE_MEMBERSHIP_EXPIRED,
        SOFTWAREONE_USER_EXPIRED,
        "Barbara Liskov",
        "InvitationExpired",
    ),
    (SOFTWAREONE_MEMBERSHIP_DELETED, SOFTWAREONE_USER_DELETED, "Ken Thompson", "Deleted"),
)
_SEEDED_AT = "2025-10-24T20:57:56.471Z"


def _timestamp() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _invitation_url() -> str:
    return f"https://portal.sandbox.invalid/invitations/{secrets.token_hex(12)}"


def _trace_id() -> str:
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-00"


_PROBLEM_TYPES = {
    400: ("https://tools.ietf.org/html/rfc9110#section-15.5.1", "Bad Request"),
    401: ("https://tools.ietf.org/html/rfc9110#section-15.5.2", "Unauthorized"),
    404: ("https://tools.ietf.org/html/rfc9110#section-15.5.5", "Not Found"),
    409: ("https://tools.ietf.org/html/rfc9110#section-15.5.10", "Conflict"),
    429: ("https://tools.ietf.org/html/rfc6585#section-4", "Too Many Requests"),
    500: ("https://tools.ietf.org/html/rfc9110#section-15.6.1", "Internal Server Error"),
    503: ("https://tools.ietf.org/html/rfc9110#section-15.6.4", "Service Unavailable"),
    504: ("https://tools.ietf.org/html/rfc9110#section-15.6.5", "Gateway Timeout"),
}


def problem(
    status: int,
    detail: str | None,
    *,
    title: str | None = None,
    errors: object = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    """An RFC 7807 problem-details answer as SoftwareOne sends it (with a W3C ``traceId``)."""
    problem_type, default_title = _PROBLEM_TYPES[status]
    body: dict[str, object] = {"type": problem_type, "title": title or default_title}
    body["status"] = status
    if detail is not None:
        body["detail"] = detail
    body["traceId"] = _trace_id()
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status, headers=dict(headers or {}))


def _gateway_not_found() -> Response:
    return JSONResponse({"message": "Resource not found", "statusCode": 404}, 404)


def _circular_reference() -> dict[str, str]:
    """The published example's ``audit.*.by``: a documentation-generator artifact, on purpose."""
    return {str(index): char for index, char in enumerate("[Circular Reference]")}


def _account_user(membership: _Membership, shape: str) -> dict[str, object]:
    """The published account-user object; with `TOP_LEVEL_STATUS`, the member's ``status`` too."""
    accepted = membership.status == "Active"
    state: dict[str, object] = {"status": membership.status} if shape == TOP_LEVEL_STATUS else {}
    return {
        "id": membership.membership_id,
        **state,
        "audit": {
            "created": {"at": _SEEDED_AT, "by": _circular_reference()},
            "updated": {"at": membership.updated_at, "by": _circular_reference()},
            "invitationAcceptedAt": _SEEDED_AT if accepted else None,
            "access": {"at": _SEEDED_AT if accepted else None},
            "joined": {"at": _SEEDED_AT if accepted else None},
        },
        "$meta": {"omitted": ["settings"]},
        "user": {"id": membership.user_id, "icon": None, "name": membership.name},
        "groups": [
            {
                "id": "UGR-0000-0001",
                "name": "Administrators",
                "description": "Manages users and access of the account.",
                "logo": None,
                "isDefault": True,
            }
        ],
        "buyers": [{"id": "BUY-0000-0001", "icon": None, "name": "Sandbox Buyer"}],
        "modules": [
            {
                "id": "MOD-0000-0001",
                "description": "Users, groups and API tokens.",
                "name": "Access Management",
                "filters": {"group.buyers": ["BUY-0000-0001"]},
                "settings": {
                    "configurable": True,
                    "default": True,
                    "paid": False,
                    "type": ["Client"],
                    "obsolete": False,
                    "eligibility": {"multi": True, "single": True},
                },
            }
        ],
        "account": {
            "id": SOFTWAREONE_ACCOUNT_ID,
            "icon": None,
            "type": "Client",
            "status": "Active",
            "name": "Sandbox Client",
        },
        "invitation": {
            "url": None if accepted else membership.invitation_url,
            "status": membership.status,
        },
        "lastLoginAt": _SEEDED_AT if accepted else None,
    }


def _not_in_state(state: str) -> Response:
    return problem(
        400,
        None,
        title="One or more validation errors occurred.",
        errors={"status": [f"Account user is not in {state} state."]},
    )


def _expired(membership: _Membership) -> Response:
    message = "Invitation has expired; send a new invitation."
    return problem(
        409,
        message,
        errors=[
            {
                "id": membership.membership_id,
                "message": message,
                "properties": ["status"],
                "parameters": {},
            }
        ],
    )


class SoftwareOneSandbox(VendorSandbox):
    """One account (`SOFTWAREONE_ACCOUNT_ID`) with Invited, Active, expired and deleted members.

    ``legacy_removed``: the deprecated ``/accounts/account-users/...`` family answers the gateway's
    ``404 {"message": "Resource not found", "statusCode": 404}``. ``shape``: `PUBLISHED` (the
    default) or `TOP_LEVEL_STATUS`. Both are plain attributes: they may be switched while the
    sandbox runs.

    A resend is accepted only while the membership is ``Invited`` (400 when ``Active``, 409 when
    ``InvitationExpired``); ``send-new-invite`` only when ``InvitationExpired`` (it becomes
    ``Invited``). Both count one email under the path's id.
    """

    name = "softwareone"
    path_prefixes = ("/public",)

    def __init__(self, *, legacy_removed: bool = False, shape: str = PUBLISHED) -> None:
        if shape not in _SHAPES:
            raise ValueError(f"shape must be one of {', '.join(_SHAPES)}, not {shape!r}")
        self.legacy_removed = legacy_removed
        self.shape = shape
        self._added: list[tuple[str, str, str, str]] = []
        super().__init__()

    def reset(self) -> None:
        """Every membership back to its seeded state, with a fresh invitation link."""
        with self.lock:
            seeded = [*_SEEDED_MEMBERSHIPS, *self._added]
            self._memberships = {
                membership_id: _Membership(
                    membership_id, user_id, name, status, _invitation_url(), _SEEDED_AT
                )
                for membership_id, user_id, name, status in seeded
            }
            # One membership per user here: an index keeps bulk runs over many users fast.
            self._by_user = {m.user_id: m.membership_id for m in self._memberships.values()}

    def add_users(self, user_ids: Sequence[str]) -> None:
        """Each user id (``USR-…``) gets an ``Invited`` membership whose id is ``A`` + the user
        id (``AUSR-…``), for the current and the deprecated endpoints alike."""
        added = [(f"A{user_id}", user_id, f"Sandbox {user_id}", "Invited") for user_id in user_ids]
        with self.lock:
            self._added.extend(added)
            for membership_id, user_id, name, status in added:
                self._memberships[membership_id] = _Membership(
                    membership_id, user_id, name, status, _invitation_url(), _SEEDED_AT
                )
                self._by_user[user_id] = membership_id

    def new_user_ids(self, count: int) -> list[str]:
        """``USR-9000-0001`` onwards (memberships ``AUSR-9000-0001``, ...)."""
        return [f"USR-{9000 + n // 10_000:04d}-{n % 10_000:04d}" for n in range(1, count + 1)]

    def routes(self) -> Sequence[VendorRoute]:
        legacy = "/public/v1/accounts/account-users/{membership_id}"
        current = "/public/v1/accounts/accounts/{account_id}/users/{user_id}"
        legacy_id, current_id = "membership_id", "user_id"
        return [
            VendorRoute(legacy, self.legacy_get, ("GET",), legacy_id),
            VendorRoute(legacy + "/resend-invite", self.legacy_resend, ("POST",), legacy_id, True),
            VendorRoute(legacy + "/send-new-invite", self.legacy_renew, ("POST",), legacy_id, True),
            VendorRoute(current, self.get, ("GET",), current_id),
            VendorRoute(current + "/resend-invite", self.resend, ("POST",), current_id, True),
            VendorRoute(current + "/send-new-invite", self.renew, ("POST",), current_id, True),
            # The gateway answers every other path (the removed families too) in its own shape.
            VendorRoute("/public/{rest:path}", self.unknown_route, _ALL_METHODS),
        ]

    def failure(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> Response:
        return problem(status, message, headers=headers)

    def banner(self, url: str) -> str:
        return (
            f"{self.name:<12} base_url={url}  token={SOFTWAREONE_TOKEN}"
            f"  account_id={SOFTWAREONE_ACCOUNT_ID}"
        )

    # --- state -----------------------------------------------------------------------------------

    def _find(
        self, *, membership_id: str | None = None, user_id: str | None = None
    ) -> _Membership | None:
        """A copy of the live (not Deleted) membership with that id, or None."""
        with self.lock:
            if membership_id is None and user_id is not None:
                membership_id = self._by_user.get(user_id)
            found = None if membership_id is None else self._memberships.get(membership_id)
            if found is None or found.status == "Deleted":
                return None
            return replace(found)

    def _renew(self, membership_id: str, counted_as: str) -> _Membership:
        """Send the invitation again: Invited, a fresh link, an updated audit time, one email."""
        with self.lock:
            membership = self._memberships[membership_id]
            membership.status = "Invited"
            membership.invitation_url = _invitation_url()
            membership.updated_at = _timestamp()
            renewed = replace(membership)
        self.sandbox.count_email(counted_as)
        return renewed

    # --- endpoints -------------------------------------------------------------------------------

    def _answer(self, membership: _Membership) -> Response:
        return JSONResponse(_account_user(membership, self.shape))

    def _read(self, membership: _Membership | None, path_id: str) -> Response:
        if membership is None:
            return problem(404, f"Account user {path_id} not found.")
        return self._answer(membership)

    def _resend(self, membership: _Membership | None, path_id: str) -> Response:
        """Resend to a live membership; allowed only while it is Invited."""
        if membership is None:
            return problem(404, f"Account user {path_id} not found.")
        if membership.status == "Active":
            return _not_in_state("Invited")
        if membership.status == "InvitationExpired":
            return _expired(membership)
        return self._answer(self._renew(membership.membership_id, path_id))

    def _send_new(self, membership: _Membership | None, path_id: str) -> Response:
        """A new invitation for a live membership whose invitation expired."""
        if membership is None:
            return problem(404, f"Account user {path_id} not found.")
        if membership.status != "InvitationExpired":
            return _not_in_state("InvitationExpired")
        return self._answer(self._renew(membership.membership_id, path_id))

    def _legacy_refusal(self, request: Request) -> Response | None:
        if self.legacy_removed:
            return _gateway_not_found()
        return _unauthorized(request)

    async def legacy_get(self, request: Request) -> Response:
        refusal = self._legacy_refusal(request)
        if refusal is not None:
            return refusal
        membership_id = request.path_params["membership_id"]
        return self._read(self._find(membership_id=membership_id), membership_id)

    async def legacy_resend(self, request: Request) -> Response:
        refusal = self._legacy_refusal(request)
        if refusal is not None:
            return refusal
        membership_id = request.path_params["membership_id"]
        return self._resend(self._find(membership_id=membership_id), membership_id)

    async def legacy_renew(self, request: Request) -> Response:
        refusal = self._legacy_refusal(request)
        if refusal is not None:
            return refusal
        membership_id = request.path_params["membership_id"]
        return self._send_new(self._find(membership_id=membership_id), membership_id)

    def _member(self, request: Request) -> Response | _Membership | None:
        """The refusal for a bad token or unknown account, else the membership the path names."""
        refusal = _unauthorized(request)
        if refusal is not None:
            return refusal
        account_id = request.path_params["account_id"]
        if account_id != SOFTWAREONE_ACCOUNT_ID:
            return problem(404, f"Account {account_id} not found.")
        return self._find(user_id=request.path_params["user_id"])

    async def get(self, request: Request) -> Response:
        member = self._member(request)
        if isinstance(member, Response):
            return member
        return self._read(member, request.path_params["user_id"])

    async def resend(self, request: Request) -> Response:
        member = self._member(request)
        if isinstance(member, Response):
            return member
        return self._resend(member, request.path_params["user_id"])

    async def renew(self, request: Request) -> Response:
        member = self._member(request)
        if isinstance(member, Response):
            return member
        return self._send_new(member, request.path_params["user_id"])

    async def unknown_route(self, request: Request) -> Response:
        return _gateway_not_found()


def _unauthorized(request: Request) -> Response | None:
    if request.headers.get("authorization") != f"Bearer {SOFTWAREONE_TOKEN}":
        return problem(401, "A valid bearer token is required.")
    return None
