"""Simulated SoftwareOne Marketplace Platform: account users and their invitations.

Paths (all under ``/public/v1``): the current ``/accounts/accounts/{accountId}/users/{userId}``
(``GET``), ``.../resend-invite`` and ``.../send-new-invite`` (``POST``), and the same three under
the deprecated ``/accounts/account-users/{accountUserId}``. Auth is ``Authorization: Bearer
<token>``; errors are RFC 7807 problem details with a W3C ``traceId``. The other documented
operations on account users answer 501 naming the operation; any other ``/public/...`` path gets
the gateway's ``404 {"message": "Resource not found", "statusCode": 404}``.

Account users are answered in the published shapes (``AccountUser`` for a ``GET`` on the current
family, ``AccountUserQueryLegacy`` otherwise): the membership's state only as
``invitation.status`` (``Invited``, ``Active``, ``InvitationExpired``), no top-level ``status``.
The `TOP_LEVEL_STATUS` scenario adds the top-level ``status`` the platform's user objects carry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ._core import Endpoint, VendorRoute, VendorSandbox
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
from ._softwareone_bodies import (
    PUBLISHED,
    SEEDED_AT,
    SHAPES,
    TOP_LEVEL_STATUS,
    Membership,
    account_user,
    expired,
    gateway_not_found,
    invitation_url,
    not_in_state,
    not_simulated,
    problem,
    selected,
    timestamp,
)

__all__ = ["PUBLISHED", "REFUSAL_STATUSES", "TOP_LEVEL_STATUS", "SoftwareOneSandbox", "problem"]

REFUSAL_STATUSES = (400, 409)
"""What ``active_status`` and ``expired_status`` may be: the statuses the platform documents for
a request refused in the resource's current state (validation, conflict)."""

_CURRENT = "/public/v1/accounts/accounts/{accountId}/users"
_LEGACY = "/public/v1/accounts/account-users"
# Documented operations on account users the sandbox does not play: (method, path, operation).
# The OpenAPI subset documents accept-invite and DELETE; the official client adds list, create
# and update (PUT) on the current family.
_NOT_SIMULATED = (
    ("GET", "", "list account users (GET " + _CURRENT + ")"),
    ("POST", "", "create an account user (POST " + _CURRENT + ")"),
    ("PUT", "/{user_id}", "update an account user (PUT " + _CURRENT + "/{userId})"),
    ("DELETE", "/{user_id}", "delete an account user (DELETE " + _CURRENT + "/{userId})"),
    (
        "POST",
        "/{user_id}/accept-invite",
        "accept-invite (POST " + _CURRENT + "/{userId}/accept-invite)",
    ),
)
_LEGACY_NOT_SIMULATED = (
    ("DELETE", "", "delete an account user (DELETE " + _LEGACY + "/{id})"),
    ("POST", "/accept-invite", "accept-invite (POST " + _LEGACY + "/{id}/accept-invite)"),
)

_ALL_METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS")

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


class SoftwareOneSandbox(VendorSandbox):
    """One account (`SOFTWAREONE_ACCOUNT_ID`) with Invited, Active, expired and deleted members.

    ``legacy_removed``: the deprecated ``/accounts/account-users/...`` family answers the gateway's
    ``404 {"message": "Resource not found", "statusCode": 404}``. ``shape``: `PUBLISHED` (the
    default) or `TOP_LEVEL_STATUS`. ``active_status`` (default 400) and ``expired_status``
    (default 409): the status of a resend refused because the membership is ``Active`` or its
    invitation expired, one of `REFUSAL_STATUSES` -- no source documents either (assumptions).
    ``audit_by_artifact``: ``audit.*.by`` as the published example spells it (the
    ``[Circular Reference]`` junk) instead of the schema's ``Id`` object.
    All are plain attributes: they may be switched while the sandbox runs.

    A resend is accepted only while the membership is ``Invited``; ``send-new-invite`` only when
    ``InvitationExpired`` (it becomes ``Invited``; 400 otherwise). Both count one email under the
    path's id. ``GET`` honours ``select=-field`` (a top-level field left out). Other documented
    operations on account users (list, create, update, delete, accept-invite) answer 501 naming
    the operation.
    """

    name = "softwareone"
    path_prefixes = ("/public",)

    def __init__(
        self,
        *,
        legacy_removed: bool = False,
        shape: str = PUBLISHED,
        active_status: int = 400,
        expired_status: int = 409,
        audit_by_artifact: bool = False,
    ) -> None:
        if shape not in SHAPES:
            raise ValueError(f"shape must be one of {', '.join(SHAPES)}, not {shape!r}")
        for name, status in (("active_status", active_status), ("expired_status", expired_status)):
            if status not in REFUSAL_STATUSES:
                raise ValueError(f"{name} must be 400 or 409, not {status!r}")
        self.legacy_removed = legacy_removed
        self.shape = shape
        self.active_status = active_status
        self.expired_status = expired_status
        self.audit_by_artifact = audit_by_artifact
        self._added: list[tuple[str, str, str, str]] = []
        super().__init__()

    def reset(self) -> None:
        """Every membership back to its seeded state, with a fresh invitation link."""
        with self.lock:
            seeded = [*_SEEDED_MEMBERSHIPS, *self._added]
            self._memberships = {
                membership_id: Membership(
                    membership_id, user_id, name, status, invitation_url(), SEEDED_AT
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
                self._memberships[membership_id] = Membership(
                    membership_id, user_id, name, status, invitation_url(), SEEDED_AT
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
            *(
                VendorRoute(
                    "/public/v1/accounts/accounts/{account_id}/users" + tail,
                    self._not_simulated(operation),
                    (method,),
                )
                for method, tail, operation in _NOT_SIMULATED
            ),
            *(
                VendorRoute(legacy + tail, self._not_simulated(operation, legacy=True), (method,))
                for method, tail, operation in _LEGACY_NOT_SIMULATED
            ),
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

    def unrouted(self, status: int) -> Response:
        """A path no route takes (an id with a control character): the gateway's 404."""
        return gateway_not_found()

    def _not_simulated(self, operation: str, *, legacy: bool = False) -> Endpoint:
        async def endpoint(request: Request) -> Response:
            refusal = self._legacy_refusal(request) if legacy else _unauthorized(request)
            return refusal if refusal is not None else not_simulated(operation)

        return endpoint

    # --- state -----------------------------------------------------------------------------------

    def _find(
        self, *, membership_id: str | None = None, user_id: str | None = None
    ) -> Membership | None:
        """A copy of the live (not Deleted) membership with that id, or None."""
        with self.lock:
            if membership_id is None and user_id is not None:
                membership_id = self._by_user.get(user_id)
            found = None if membership_id is None else self._memberships.get(membership_id)
            if found is None or found.status == "Deleted":
                return None
            return replace(found)

    def _renew(self, membership_id: str, counted_as: str) -> Membership:
        """Send the invitation again: Invited, a fresh link, an updated audit time, one email."""
        with self.lock:
            membership = self._memberships[membership_id]
            membership.status = "Invited"
            membership.invitation_url = invitation_url()
            membership.updated_at = timestamp()
            renewed = replace(membership)
        self.sandbox.count_email(counted_as)
        return renewed

    # --- endpoints -------------------------------------------------------------------------------

    def _answer(self, membership: Membership) -> Response:
        return JSONResponse(
            account_user(membership, self.shape, by_artifact=self.audit_by_artifact)
        )

    def _read(
        self, membership: Membership | None, path_id: str, request: Request, *, legacy: bool
    ) -> Response:
        """The membership as a ``GET`` answers it: ``AccountUser`` on the current family,
        ``AccountUserQueryLegacy`` on the deprecated one; ``select`` honoured."""
        if membership is None:
            return problem(404, f"Account user {path_id} not found.")
        body = account_user(
            membership, self.shape, legacy=legacy, by_artifact=self.audit_by_artifact
        )
        return JSONResponse(selected(body, request.query_params.get("select")))

    def _resend(self, membership: Membership | None, path_id: str) -> Response:
        """Resend to a live membership; allowed only while it is Invited."""
        if membership is None:
            return problem(404, f"Account user {path_id} not found.")
        if membership.status == "Active":
            return not_in_state("Invited", self.active_status)
        if membership.status == "InvitationExpired":
            return expired(membership, self.expired_status)
        return self._answer(self._renew(membership.membership_id, path_id))

    def _send_new(self, membership: Membership | None, path_id: str) -> Response:
        """A new invitation for a live membership whose invitation expired."""
        if membership is None:
            return problem(404, f"Account user {path_id} not found.")
        if membership.status != "InvitationExpired":
            return not_in_state("InvitationExpired")
        return self._answer(self._renew(membership.membership_id, path_id))

    def _legacy_refusal(self, request: Request) -> Response | None:
        if self.legacy_removed:
            return gateway_not_found()
        return _unauthorized(request)

    async def legacy_get(self, request: Request) -> Response:
        refusal = self._legacy_refusal(request)
        if refusal is not None:
            return refusal
        membership_id = request.path_params["membership_id"]
        member = self._find(membership_id=membership_id)
        return self._read(member, membership_id, request, legacy=True)

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

    def _member(self, request: Request) -> Response | Membership | None:
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
        return self._read(member, request.path_params["user_id"], request, legacy=False)

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
        return gateway_not_found()


def _unauthorized(request: Request) -> Response | None:
    if request.headers.get("authorization") != f"Bearer {SOFTWAREONE_TOKEN}":
        return problem(401, "A valid bearer token is required.")
    return None
