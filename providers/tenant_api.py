"""A tenant-header identity API: ``POST /v1/users/{id}/resend-invite``.

Contract: ``X-Tenant-ID`` (a UUID) on every request, and the credential in
``X-API-Key`` or ``Authorization: Bearer``; ids are UUIDs; 200 answers ``{"message": ...}``; errors
are ``{"code", "message", "details"?, "notices"?}``, mapped by ``code`` first and status second.
"""

from __future__ import annotations

import re
from typing import Any, Literal

import attrs

from invites.adapter import (
    REQUIRED,
    BaseProvider,
    Call,
    Flow,
    ProviderSettings,
    http_url,
    json_body,
    json_object,
    response_error,
    setting,
    uuid_text,
)
from invites.errors import (
    AlreadyVerified,
    InvalidInvitee,
    InviteError,
    TenantMismatch,
    UserNotFound,
)
from invites.models import Invitee, ResendResult

__all__ = ["TenantApiProvider", "TenantApiSettings"]

_HEX = "[0-9a-fA-F]"
# Both cases spelled out: a case-insensitive pattern takes twice as long to match.
_UUID = re.compile(f"{_HEX}{{8}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{4}}-{_HEX}{{12}}")
_BY_CODE: dict[str, type[InviteError]] = {
    "already_verified": AlreadyVerified,
    "tenant_mismatch": TenantMismatch,
    "not_found": UserNotFound,
}


@attrs.frozen(kw_only=True)
class TenantApiSettings(ProviderSettings):
    """Tenant API keys: ``tenant_id`` (UUID, required) and ``auth`` (``api_key`` or ``bearer``).

    It has no default ``base_url``: the API is each customer's own.
    """

    provider: str = "tenant_api"
    base_url: str = setting(http_url, default=REQUIRED)
    tenant_id: str = setting(uuid_text, default=REQUIRED, identity=True)
    auth: Literal["api_key", "bearer"] = "api_key"


class TenantApiProvider(BaseProvider[TenantApiSettings]):
    """Resend invitations through a tenant-header identity API."""

    name = "tenant_api"
    settings_class = TenantApiSettings

    def __init__(self, settings: TenantApiSettings, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        self._users = self.base_url + "/v1/users/"
        self._headers = {"X-Tenant-ID": self.settings.tenant_id}
        self._bearer = self.settings.auth == "bearer"

    def auth_header(self, token: str) -> tuple[str, str]:
        if self._bearer:
            return ("Authorization", "Bearer " + token)
        return ("X-API-Key", token)

    def canonical_user_id(self, user_id: str) -> str:
        """A UUID in lower case (RFC 9562 compares UUIDs without case); anything else as given.

        An id in lower case already is its own canonical spelling, UUID or not: only the flow
        matches it then (once per resend, not twice).
        """
        lowered = user_id.lower()
        if lowered != user_id and _UUID.fullmatch(user_id):
            return lowered
        return user_id

    def flow(self, invitee: Invitee) -> Flow:
        user_id = invitee.user_id
        # Only the 8-4-4-4-12 form: uuid.UUID() also takes braces, "urn:uuid:", bare hex and
        # int() syntax ("+", "_"), which would send another spelling, or another user's id.
        if not _UUID.fullmatch(user_id):
            raise InvalidInvitee(
                "the tenant API's user ids are UUIDs (8-4-4-4-12 hex digits)",
                provider=self.name,
                user_id=user_id,
            )
        # canonical_user_id of a UUID just matched (the invitee arrives canonical from the base;
        # a flow driven directly may not)
        url = self._users + user_id.lower() + "/resend-invite"
        response = yield Call("POST", url, headers=self._headers)
        if response.status_code == 200:
            message = json_object(response, provider=self.name, user_id=user_id).get("message")
            return ResendResult(
                provider=self.name,
                user_id=user_id,
                message=message if isinstance(message, str) else None,
                status_code=200,
            )
        data = json_body(response)
        code = message = None
        details: dict[str, Any] = {}
        if isinstance(data, dict):
            code = data.get("code") if isinstance(data.get("code"), str) else None
            text = data.get("message")
            message = text if isinstance(text, str) and text else None
            notices = data.get("notices")
            if isinstance(notices, list):
                details["notices"] = [n for n in notices if isinstance(n, str)][:20]
            if isinstance(data.get("details"), dict):
                details["details"] = data["details"]
        # A code classifies only a refusal (4xx): a redirect or a 5xx keeps its own meaning.
        by_code = _BY_CODE.get(code or "") if 400 <= response.status_code < 500 else None
        raise response_error(
            by_code,
            response,
            provider=self.name,
            user_id=user_id,
            message=message,
            vendor_code=code,
            details=details,
        )
