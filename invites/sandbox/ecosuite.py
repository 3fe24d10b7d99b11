"""Simulated Ecosuite (Project Data API): a user's profile and the invitation resend.

Paths: ``GET /users/{userId}`` and ``PUT /users/{userId}/resend``. Auth is the raw token in
``Authorization`` (``Bearer <token>`` is accepted too). Errors are ``{"message": ...}``; the
resend's only documented 400 text is ``"Invalid status value"``. The other documented user
operations (list, create, update, delete) answer 501 naming the operation.

Assumptions (no source documents them; each is an attribute to switch): a refused token is
``401 {"message": "Unauthorized"}`` (``token_refusal = 403``: ``{"message": "Forbidden"}``, as
an API gateway may answer); a user the token may not manage is ``403 {"message": "Forbidden"}``
(``forbidden_status = 404``: hidden as not found); ``Bearer <token>`` is accepted
(``accept_bearer = False``: refused as a bad token).
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ._core import VendorRoute, VendorSandbox
from ._data import ECOSUITE_PROFILES, ECOSUITE_TOKEN, ECOSUITE_USER_FORBIDDEN

__all__ = ["EcosuiteSandbox"]


def _message(status: int, message: str) -> JSONResponse:
    return JSONResponse({"message": message}, status)


def _plain(value: object) -> object:
    """`value` with read-only mappings turned into dicts, ready for JSON."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    return value


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _valid_access(access: object) -> bool:
    if not isinstance(access, dict):
        return False
    for field in ("startDate", "endDate"):
        if field in access and not (
            isinstance(access[field], str) and _DATE.fullmatch(access[field])
        ):
            return False
    return access.get("preventDownload", "no") in ("no", "yes") and access.get(
        "restrictProjects", "no"
    ) in ("no", "portfolios", "yes")


def _valid_resend_body(body: object) -> bool:
    """Whether `body` is the documented user object: the resend's only validation."""
    if not isinstance(body, dict):
        return False
    for field in ("email", "firstName", "lastName"):
        value = body.get(field)
        if not isinstance(value, str) or not value.strip():
            return False
    if "@" not in body["email"]:
        return False
    for field in ("timezone", "userType"):
        if field in body and not isinstance(body[field], str):
            return False
    return "access" not in body or _valid_access(body["access"])


_REFUSAL_TEXT = {401: "Unauthorized", 403: "Forbidden", 404: "User not found"}
# Documented user operations the sandbox does not play (the Users reference page).
_NOT_SIMULATED = (
    ("GET", "/users", "list users (GET /users)"),
    ("POST", "/users", "create a user (POST /users)"),
    ("PUT", "/users/{user_id}", "update a user (PUT /users/{userId})"),
    ("DELETE", "/users/{user_id}", "delete a user (DELETE /users/{userId})"),
)


def _not_simulated(operation: str) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        return _message(501, f"The sandbox does not simulate {operation}.")

    return endpoint


class EcosuiteSandbox(VendorSandbox):
    """Ecosuite's users: the seeded profiles (`ECOSUITE_PROFILES`) plus any `add_users` added.

    ``token`` is the one credential accepted; assigning another one while serving plays a token
    that expired.
    """

    name = "ecosuite"
    path_prefixes = ("/users",)

    def __init__(
        self,
        *,
        token: str = ECOSUITE_TOKEN,
        token_refusal: int = 401,
        forbidden_status: int = 403,
        accept_bearer: bool = True,
    ) -> None:
        if token_refusal not in (401, 403):
            raise ValueError(f"token_refusal must be 401 or 403, not {token_refusal!r}")
        if forbidden_status not in (403, 404):
            raise ValueError(f"forbidden_status must be 403 or 404, not {forbidden_status!r}")
        self.token = token
        self.token_refusal = token_refusal
        self.forbidden_status = forbidden_status
        self.accept_bearer = accept_bearer
        self._profiles: dict[str, Any] = dict(ECOSUITE_PROFILES)
        super().__init__()

    def routes(self) -> Sequence[VendorRoute]:
        return [
            VendorRoute("/users/{user_id}", self.get_user, ("GET",), "user_id"),
            VendorRoute("/users/{user_id}/resend", self.resend, ("PUT",), "user_id", resend=True),
            *(
                VendorRoute(path, _not_simulated(operation), (method,))
                for method, path, operation in _NOT_SIMULATED
            ),
        ]

    def add_users(self, user_ids: Sequence[str]) -> None:
        """Each id gets a complete generated profile."""
        with self.lock:
            for user_id in user_ids:
                self._profiles[user_id] = {
                    "email": f"{user_id}@example.com",
                    "firstName": "Sandbox",
                    "lastName": user_id,
                }

    def new_user_ids(self, count: int) -> list[str]:
        return [f"eco-bulk-{n:06d}" for n in range(1, count + 1)]

    def banner(self, url: str) -> str:
        return f"{self.name:<12} base_url={url}  token={self.token}"

    def _profile(self, user_id: str) -> Any:
        with self.lock:
            return self._profiles.get(user_id)

    def _refusal(self, request: Request, user_id: str) -> JSONResponse | None:
        """401 for a bad token, 403 for a user the token may not manage, 404 for an unknown user."""
        # The contract: the raw token; some clients send "Bearer <token>" (an assumption: accepted).
        accepted = (self.token, f"Bearer {self.token}") if self.accept_bearer else (self.token,)
        if request.headers.get("authorization") not in accepted:
            return _message(self.token_refusal, _REFUSAL_TEXT[self.token_refusal])
        if user_id == ECOSUITE_USER_FORBIDDEN:
            return _message(self.forbidden_status, _REFUSAL_TEXT[self.forbidden_status])
        if self._profile(user_id) is None:
            return _message(404, "User not found")
        return None

    async def get_user(self, request: Request) -> Response:
        user_id = request.path_params["user_id"]
        refusal = self._refusal(request, user_id)
        if refusal is not None:
            return refusal
        return JSONResponse(_plain(self._profile(user_id)))

    async def resend(self, request: Request) -> Response:
        user_id = request.path_params["user_id"]
        refusal = self._refusal(request, user_id)
        if refusal is not None:
            return refusal
        try:
            body: Any = json.loads(await request.body())
        except ValueError:
            body = None
        if not _valid_resend_body(body):
            # The only 400 text the contract documents, whatever the actual problem.
            return _message(400, "Invalid status value")
        self.sandbox.count_email(user_id)
        return JSONResponse({})
