"""An adapter for Relay, an invented vendor, written from docs/adapters.md alone.

Relay's wire shape differs from every built-in vendor's:

- ``GET /api/invitations/{id}`` (header ``X-Api-Token``; ``X-Relay-Workspace`` names the
  workspace) answers ``{"id", "state": "pending" | "accepted" | "expired", "revision": int}``;
- ``POST /api/invitations/{id}:resend`` with ``{"channel": ..., "revision": ...}`` sends the email
  and answers ``{"status": "queued", "message": ...}``; a revision that is no longer current is
  refused with 409 ``stale_revision``, and a resend without one is unconditional;
- errors are ``{"error": {"kind", "detail", "trace"}}``.

The flow reads the state first (a read: no email), refuses an accepted or expired invitation
without sending, and resends with the revision it read. When the state cannot be read (the
connection fails past its retries), it recovers by resending unconditionally.
"""

from __future__ import annotations

from typing import Any, Literal

import attrs
import httpx

from invites.adapter import (
    REQUIRED,
    BaseProvider,
    Call,
    Flow,
    Invitee,
    ProviderSettings,
    ResendResult,
    header_text,
    json_body,
    json_object,
    response_error,
    segment,
    setting,
)
from invites.errors import (
    AlreadyVerified,
    AuthenticationFailed,
    ConnectionFailed,
    InvitationExpired,
    InviteError,
    InviteRejected,
    PermissionDenied,
    UserNotFound,
)

__all__ = ["RelayProvider", "RelaySettings"]

#: Relay's error kinds that say more than their status does.
_KINDS: dict[str, type[InviteError]] = {
    "accepted": AlreadyVerified,
    "expired": InvitationExpired,
    "unknown_invitation": UserNotFound,
    "stale_revision": InviteRejected,
    "bad_token": AuthenticationFailed,
    "foreign_workspace": PermissionDenied,
}


@attrs.frozen(kw_only=True)
class RelaySettings(ProviderSettings):
    """``workspace`` (required; whose invitations the token reaches) and ``channel``."""

    workspace: str = setting(header_text, default=REQUIRED, identity=True)
    channel: Literal["email", "sms"] = "email"


class RelayProvider(BaseProvider[RelaySettings]):
    name = "relay"
    settings_class = RelaySettings

    def auth_header(self, token: str) -> tuple[str, str]:
        return ("X-Api-Token", token)

    def flow(self, invitee: Invitee) -> Flow:
        user_id = invitee.user_id
        url = f"{self.base_url}/api/invitations/{segment(user_id)}"
        headers = {"X-Relay-Workspace": self.settings.workspace}
        revision: int | None = None
        state: httpx.Response | None
        try:
            state = yield Call("GET", url, headers=headers, reads_only=True)
        except ConnectionFailed:
            state = None  # unread: the unconditional resend below still reaches the user
        if state is not None:
            if state.status_code != 200:
                raise self._error(state, user_id, reads_only=True)
            revision = self._revision(json_object(state, provider=self.name, user_id=user_id))
        body: dict[str, Any] = {"channel": self.settings.channel}
        if revision is not None:
            body["revision"] = revision
        sent = yield Call("POST", f"{url}:resend", json=body, headers=headers)
        if sent.status_code != 200:
            raise self._error(sent, user_id)
        data = json_object(sent, provider=self.name, user_id=user_id)
        message = data.get("message")
        return ResendResult(
            provider=self.name,
            user_id=user_id,
            message=message if isinstance(message, str) else None,
            status_code=200,
        )

    def _revision(self, state: dict[str, Any]) -> int | None:
        """The revision to resend, or the refusal a resend would meet."""
        match state.get("state"):
            case "accepted":
                raise AlreadyVerified("the invitation was accepted already")
            case "expired":
                raise InvitationExpired("the invitation expired: send a new one")
        revision = state.get("revision")
        return revision if isinstance(revision, int) else None

    def _error(
        self, answer: httpx.Response, user_id: str, *, reads_only: bool = False
    ) -> InviteError:
        error = json_body(answer)
        fields = error.get("error") if isinstance(error, dict) else None
        if not isinstance(fields, dict):
            fields = {}
        kind, detail, trace = (fields.get(key) for key in ("kind", "detail", "trace"))
        return response_error(
            _KINDS.get(kind) if isinstance(kind, str) else None,
            answer,
            provider=self.name,
            user_id=user_id,
            message=detail if isinstance(detail, str) else None,
            vendor_code=kind if isinstance(kind, str) else None,
            request_id=trace if isinstance(trace, str) else None,
            reads_only=reads_only,
        )
