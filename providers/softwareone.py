"""SoftwareOne Marketplace Platform: resend an account user's invitation.

Contract (VENDORS.md, seed 003 and SoftwareOne's published OpenAPI): ``Authorization: Bearer``;
no request body; 200 answers the account-user object; errors are RFC 7807 problem details (with
``errors`` as a mapping or a list), the gateway's ``{"message", "statusCode"}``, or not JSON at all.

Two endpoints: with ``account_id`` set, the current
``POST /public/v1/accounts/accounts/{accountId}/users/{userId}/resend-invite``; without it, the
deprecated ``POST /public/v1/accounts/account-users/{id}/resend-invite``. How a resend to an
accepted or expired membership is refused is not documented, so a refusal (400/409) is classified
by reading the membership's state with one ``GET``.
"""

from __future__ import annotations

import os
import sys
import warnings
from pathlib import Path
from typing import Any

import attrs
import httpx

import invites
from invites._base import BaseProvider, Call, Flow
from invites._settings import ProviderSettings
from invites._wire import json_body, response_error, segment
from invites.errors import (
    AlreadyVerified,
    InvitationExpired,
    InviteError,
    UnexpectedResponse,
    UserNotFound,
)
from invites.models import Invitee, ResendResult, check_user_id

__all__ = ["SoftwareOneProvider", "SoftwareOneSettings"]

_API = "/public/v1"
_LEGACY_HINT = (
    "the deprecated account-users endpoint may have been removed by SoftwareOne; set account_id "
    "to use /accounts/accounts/{accountId}/users/{userId}/resend-invite"
)
# Membership states that explain a refused resend (VENDORS.md).
_REFUSAL_BY_STATE: dict[str, type[InviteError]] = {
    "Active": AlreadyVerified,
    "InvitationExpired": InvitationExpired,
}
_REFUSED = (400, 409)


@attrs.frozen(kw_only=True)
class SoftwareOneSettings(ProviderSettings):
    """SoftwareOne keys: ``account_id`` selects the current endpoint (unset: the legacy one)."""

    account_id: str | None = attrs.field(default=None, metadata={"identity": True})


class SoftwareOneProvider(BaseProvider):
    """Resend SoftwareOne account-user invitations."""

    name = "softwareone"
    settings_class = SoftwareOneSettings
    default_base_url = "https://api.platform.softwareone.com"
    settings: SoftwareOneSettings

    @classmethod
    def check_settings(cls, settings: ProviderSettings) -> list[str]:
        account_id = getattr(settings, "account_id", None)
        if account_id is None:
            return []
        try:
            check_user_id(account_id)
        except ValueError:
            return ["account_id: is not a usable id (empty, too long or with control characters)"]
        return []

    def __init__(self, settings: ProviderSettings, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        # The official client accepts a base URL ending in /public or /public/v1; so do we.
        for suffix in (_API, "/public"):
            if self.base_url.endswith(suffix):
                self.base_url = self.base_url.removesuffix(suffix)
                break
        account_id = self.settings.account_id
        self.legacy = account_id is None
        if account_id is None:
            self._members = self.base_url + _API + "/accounts/account-users/"
            warnings.warn(
                "SoftwareOne's account-users resend endpoint is deprecated; set account_id to use "
                "the current endpoint",
                DeprecationWarning,
                stacklevel=_caller_stacklevel(),
            )
        else:
            self._members = (
                self.base_url + _API + "/accounts/accounts/" + segment(account_id) + "/users/"
            )

    def flow(self, invitee: Invitee) -> Flow:
        user_id = invitee.user_id
        member_url = self._members + segment(user_id)
        response = yield Call("POST", member_url + "/resend-invite")
        if response.status_code == 200:
            data = json_body(response)
            if not isinstance(data, dict):
                raise response_error(
                    UnexpectedResponse,
                    response,
                    provider=self.name,
                    user_id=user_id,
                    message="the answer is not a JSON object",
                )
            return ResendResult(
                provider=self.name,
                user_id=user_id,
                invitation_status=_invitation_status(data),
                status_code=200,
            )
        refusal = self._error(response, user_id)
        if response.status_code not in _REFUSED:
            raise refusal
        try:
            state_response = yield Call("GET", member_url, reads_only=True)
        except InviteError:
            raise refusal from None
        state = _state(json_body(state_response)) if state_response.status_code == 200 else None
        better = _REFUSAL_BY_STATE.get(state or "")
        if better is None:
            raise refusal
        raise better(
            f"{refusal.message} (the membership is {state})",
            provider=self.name,
            user_id=user_id,
            status_code=refusal.status_code,
            vendor_code=refusal.vendor_code,
            request_id=refusal.request_id,
            details={**refusal.details, "state": state},
        )

    def _error(self, response: httpx.Response, user_id: str) -> InviteError:
        data = json_body(response)
        message, request_id, details = (
            _problem(data) if isinstance(data, dict) else (None, None, {})
        )
        cls = None
        if response.status_code == 404 and self.legacy:
            cls = UserNotFound
            message = f"{message or '404 Not Found'}; {_LEGACY_HINT}"
        return response_error(
            cls,
            response,
            provider=self.name,
            user_id=user_id,
            message=message,
            request_id=request_id,
            details=details,
        )


# Frames in these folders are the library's own: the deprecation names the first frame outside.
_LIBRARY_DIRS = tuple(
    str(Path(module_file).resolve().parent) + os.sep for module_file in (__file__, invites.__file__)
)


def _caller_stacklevel() -> int:
    """The ``stacklevel`` that makes a warning issued by our caller name the user's own code."""
    level = 1  # the frame that calls warnings.warn
    frame = sys._getframe(1)
    while frame.f_back is not None and str(Path(frame.f_code.co_filename).resolve()).startswith(
        _LIBRARY_DIRS
    ):
        frame = frame.f_back
        level += 1
    return level


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _problem(data: dict[str, Any]) -> tuple[str | None, str | None, dict[str, Any]]:
    """Message, trace id and details from problem details or the gateway's shape."""
    head = _text(data.get("detail")) or _text(data.get("title")) or _text(data.get("message"))
    errors = _field_errors(data.get("errors"))
    details: dict[str, Any] = {}
    if errors:
        details["errors"] = errors
        # A list-shaped ``errors`` often repeats ``detail``: say each message once.
        extra = [error for error in errors if error != head]
        if extra:
            head = f"{head}: {'; '.join(extra)}" if head else "; ".join(extra)
    title = _text(data.get("title"))
    if title:
        details["title"] = title
    return head, _text(data.get("traceId")), details


def _field_errors(raw: object) -> list[str]:
    """``errors`` as ``{"field": ["msg"]}`` or as ``[{"message", "properties", ...}]``."""
    found: list[str] = []
    if isinstance(raw, dict):
        for field, messages in raw.items():
            items = messages if isinstance(messages, list) else [messages]
            found.extend(f"{field}: {m}" for m in items if isinstance(m, str))
    elif isinstance(raw, list):
        for item in raw:
            if isinstance(item, dict) and isinstance(item.get("message"), str):
                found.append(item["message"])
            elif isinstance(item, str):
                found.append(item)
    return found[:10]


def _invitation_status(data: dict[str, Any]) -> str | None:
    invitation = data.get("invitation")
    return _text(invitation.get("status")) if isinstance(invitation, dict) else None


def _state(data: object) -> str | None:
    """The membership's state: ``status`` (the platform's objects), else ``invitation.status``."""
    if not isinstance(data, dict):
        return None
    return _text(data.get("status")) or _invitation_status(data)
