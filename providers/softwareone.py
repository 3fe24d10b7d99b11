"""SoftwareOne Marketplace Platform: resend an account user's invitation.

Contract (SoftwareOne's published documentation and OpenAPI, and its official Python client):
``Authorization: Bearer``; no request body; 200 answers the account-user object; errors are RFC 7807
problem details (with ``errors`` as a mapping, a list or a string), the gateway's
``{"message", "statusCode"}``, or not JSON at all.

Two endpoints: with ``account_id`` set, the current
``POST /public/v1/accounts/accounts/{accountId}/users/{userId}/resend-invite`` (``userId`` is a
user id, ``USR-...``); without it, the deprecated
``POST /public/v1/accounts/account-users/{id}/resend-invite`` (``id`` is an account-user id,
``AUSR-...``). How a resend to an accepted or expired membership is refused is not documented, so
a refusal (400/409) is classified by reading the membership's state with one ``GET``. With
``renew_expired`` an expired invitation is replaced through ``.../send-new-invite``, the call the
vendor documents for it ("Sends a new invitation if the original invite has expired").
"""

from __future__ import annotations

import inspect
import os
import urllib.parse
import warnings
from pathlib import Path
from types import FrameType
from typing import Any

import attrs
import httpx

import invites
from invites.adapter import (
    BaseProvider,
    Call,
    Flow,
    Invalid,
    ProviderSettings,
    flag,
    json_body,
    json_object,
    path_segment,
    response_error,
    segment,
    setting,
)
from invites.errors import (
    AlreadyVerified,
    InvitationExpired,
    InviteError,
    UserNotFound,
)
from invites.models import Invitee, ResendResult

__all__ = ["SoftwareOneProvider", "SoftwareOneSettings"]

_API = "/public/v1"
_LEGACY_HINT = (
    "the deprecated account-users endpoint may have been removed by SoftwareOne; set account_id "
    "to use /accounts/accounts/{accountId}/users/{userId}/resend-invite"
)
# Membership states that explain a refused resend, compared without case or spaces: the users
# page spells the expired state "Invitation expired", the account-user schema "InvitationExpired".
_REFUSAL_BY_STATE: dict[str, type[InviteError]] = {
    "active": AlreadyVerified,
    "invitationexpired": InvitationExpired,
}
_REFUSED = (400, 409)
# Path id prefixes: account-user ids (AUSR-) name a membership on the deprecated endpoint, user
# ids (USR-) a user on the current one.
_ACCOUNT_USER_PREFIX = "AUSR-"
_USER_PREFIX = "USR-"
_CURRENT_EXPECTS = (
    "this endpoint takes user ids (USR-...), and AUSR-... is an account-user id "
    "(for the deprecated endpoint)"
)
_LEGACY_EXPECTS = (
    "the deprecated endpoint takes account-user ids (AUSR-...), and USR-... is a user id "
    "(for the current endpoint, with account_id set)"
)


def _renewable(value: object, settings: object) -> bool:
    """``renew_expired``: send-new-invite exists only on the current endpoint."""
    renew = flag(value)
    if renew and getattr(settings, "account_id", None) is None:
        raise Invalid("needs account_id (send-new-invite exists only on the current endpoint)")
    return renew


@attrs.frozen(kw_only=True)
class SoftwareOneSettings(ProviderSettings):
    """SoftwareOne keys.

    ``account_id`` selects the current endpoint (unset: the legacy one). ``renew_expired``: when a
    resend is refused because the invitation expired, send a new one (``send-new-invite``, one
    call) instead of raising `InvitationExpired`; current endpoint only.
    """

    provider: str = "softwareone"
    account_id: str | None = setting(path_segment, default=None, identity=True)
    renew_expired: bool = setting(_renewable, default=False)


class SoftwareOneProvider(BaseProvider[SoftwareOneSettings]):
    """Resend SoftwareOne account-user invitations."""

    name = "softwareone"
    settings_class = SoftwareOneSettings
    default_base_url = "https://api.platform.softwareone.com"

    def __init__(self, settings: SoftwareOneSettings, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
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

    @classmethod
    def canonical_base_url(cls, base_url: str) -> str:
        """As the official client does: a base URL whose whole path is /public or /public/v1 means
        the host; any other path (e.g. /else/public) is kept as given. Ids are left as written:
        the platform's ids (``USR-…``, ``AUSR-…``) are case-sensitive as far as its
        documentation says (it does not say otherwise)."""
        parts = urllib.parse.urlsplit(super().canonical_base_url(base_url))
        if parts.path in ("/public", _API):
            return urllib.parse.urlunsplit(parts._replace(path=""))
        return urllib.parse.urlunsplit(parts)

    def flow(self, invitee: Invitee) -> Flow:
        user_id = invitee.user_id
        member_url = self._members + segment(user_id)
        response = yield Call("POST", member_url + "/resend-invite")
        if response.status_code == 200:
            return self._result(response, user_id)
        refusal = self._error(response, user_id)
        if response.status_code not in _REFUSED:
            raise refusal
        try:
            state_response = yield Call("GET", member_url, reads_only=True)
        except InviteError:
            raise refusal from None
        explained = self._explained(refusal, state_response)
        if not (isinstance(explained, InvitationExpired) and self.settings.renew_expired):
            raise explained
        renewal = yield Call("POST", member_url + "/send-new-invite")
        if renewal.status_code == 200:
            return self._result(renewal, user_id, renewed=True)
        raise self._error(renewal, user_id) from explained

    def _result(
        self, response: httpx.Response, user_id: str, *, renewed: bool = False
    ) -> ResendResult:
        data = json_object(response, provider=self.name, user_id=user_id)
        return ResendResult(
            provider=self.name,
            user_id=user_id,
            invitation_status=_invitation_status(data),
            status_code=200,
            renewed=renewed,
        )

    def _explained(self, refusal: InviteError, state_response: httpx.Response) -> InviteError:
        """`refusal`, or the error the membership's state shows it to be."""
        state = _state(json_body(state_response)) if state_response.status_code == 200 else None
        better = _REFUSAL_BY_STATE.get((state or "").replace(" ", "").casefold())
        if better is None:
            return refusal
        message = f"{refusal.message} (the membership is {state})"
        if better is InvitationExpired and not self.settings.renew_expired:
            needs = "account_id and renew_expired = true" if self.legacy else "renew_expired = true"
            message += f"; set {needs} to send a new invitation instead"
        return better(
            message,
            provider=self.name,
            user_id=refusal.user_id,
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
        if response.status_code == 404:
            message = self._not_found(message or "404 Not Found", user_id)
            cls = UserNotFound if self.legacy else None
        return response_error(
            cls,
            response,
            provider=self.name,
            user_id=user_id,
            message=message,
            request_id=request_id,
            details=details,
        )

    def _not_found(self, message: str, user_id: str) -> str:
        """A 404's message, saying which kind of id the endpoint takes when the id is the other."""
        if self.legacy:
            if user_id.startswith(_USER_PREFIX):
                message = f"{message}; {_LEGACY_EXPECTS}"
            return f"{message}; {_LEGACY_HINT}"
        if user_id.startswith(_ACCOUNT_USER_PREFIX):
            return f"{message}; {_CURRENT_EXPECTS}"
        return message


# Frames in these folders are the library's own: the deprecation names the first frame outside.
_LIBRARY_DIRS = tuple(
    str(Path(module_file).resolve().parent) + os.sep for module_file in (__file__, invites.__file__)
)


def _caller_stacklevel() -> int:
    """The ``stacklevel`` that makes a warning issued by our caller name the user's own code."""
    level = 1  # the frame that calls warnings.warn
    here = inspect.currentframe()
    frame = here.f_back if here is not None else None  # our caller's
    while frame is not None and frame.f_back is not None and _library_frame(frame):
        frame = frame.f_back
        level += 1
    return level


def _library_frame(frame: FrameType) -> bool:
    return str(Path(frame.f_code.co_filename).resolve()).startswith(_LIBRARY_DIRS)


def _text(value: object) -> str | None:
    return value if isinstance(value, str) and value else None


def _problem(data: dict[str, Any]) -> tuple[str | None, str | None, dict[str, Any]]:
    """Message, trace id and details from problem details or the gateway's shape."""
    head = _text(data.get("detail")) or _text(data.get("title")) or _text(data.get("message"))
    errors = _field_errors(data.get("errors"))
    details: dict[str, Any] = {}
    if errors:
        details["errors"] = [shown for shown, _ in errors]
        extra = _unsaid(errors, head)
        if extra:
            head = f"{head}: {'; '.join(extra)}" if head else "; ".join(extra)
    title = _text(data.get("title"))
    if title:
        details["title"] = title
    return head, _text(data.get("traceId")), details


def _unsaid(errors: list[tuple[str, str]], head: str | None) -> list[str]:
    """The errors `head` does not already say, each once.

    The platform writes ``detail`` as the ``"; "``-joined ``errors[].message`` values, so a
    message equal to ``detail`` or to one of its ``"; "`` parts is said already.
    """
    said = {head, *head.split("; ")} if head else set()
    extra: list[str] = []
    for shown, message in errors:
        if message not in said and shown not in said and shown not in extra:
            extra.append(shown)
    return extra


def _field_errors(raw: object) -> list[tuple[str, str]]:
    """``(shown, message)`` for ``errors`` as ``{"field": ["msg"]}``, a list or a string."""
    found: list[tuple[str, str]] = []
    if isinstance(raw, dict):
        for field, messages in raw.items():
            items = messages if isinstance(messages, list) else [messages]
            found.extend((f"{field}: {m}", m) for m in items if isinstance(m, str) and m)
    elif isinstance(raw, list):
        for item in raw:
            if isinstance(item, dict) and _text(item.get("message")):
                found.append((item["message"], item["message"]))
            elif isinstance(item, str) and item:
                found.append((item, item))
    elif isinstance(raw, str) and raw:
        found.append((raw, raw))
    return found[:10]


def _invitation_status(data: dict[str, Any]) -> str | None:
    invitation = data.get("invitation")
    return _text(invitation.get("status")) if isinstance(invitation, dict) else None


def _state(data: object) -> str | None:
    """The membership's state: ``status`` (the platform's objects), else ``invitation.status``."""
    if not isinstance(data, dict):
        return None
    return _text(data.get("status")) or _invitation_status(data)
