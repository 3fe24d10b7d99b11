"""Ecosuite (Project Data API): ``PUT /users/{userId}/resend``.

Contract: ``Authorization: <token>`` with no prefix by default; the body carries the
user's profile (``email``, ``firstName``, ``lastName`` required); 200 answers ``{}``, 400 answers
``{"message": ...}``. Nothing else is documented, so other statuses map by status code with the
vendor's message kept. An invitee without email or names is completed from ``GET /users/{userId}``.
"""

from __future__ import annotations

import re
from typing import Any

import attrs

from invites.adapter import (
    BaseProvider,
    Call,
    Flow,
    ProviderSettings,
    header_text,
    json_body,
    json_object,
    response_error,
    segment,
    setting,
)
from invites.errors import InvalidInvitee
from invites.models import Access, Invitee, ResendResult

__all__ = ["EcosuiteProvider", "EcosuiteSettings"]

_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+")
_PREVENT_DOWNLOAD = ("no", "yes")
_RESTRICT_PROJECTS = ("no", "portfolios", "yes")
_PROFILE_FIELDS = (
    ("email", "email"),
    ("first_name", "firstName"),
    ("last_name", "lastName"),
    ("timezone", "timezone"),
    ("user_type", "userType"),
)


@attrs.frozen(kw_only=True)
class EcosuiteSettings(ProviderSettings):
    """Ecosuite keys: ``auth_prefix`` (e.g. ``"Bearer"``; default none) and ``fetch_profile``."""

    provider: str = "ecosuite"
    auth_prefix: str = setting(header_text, default="")
    fetch_profile: bool = True


class EcosuiteProvider(BaseProvider[EcosuiteSettings]):
    """Resend Ecosuite invitations.

    User ids compare as written (case-sensitive): the API documents them only as server-generated
    strings, so folding their case could merge two users.
    """

    name = "ecosuite"
    settings_class = EcosuiteSettings
    default_base_url = "https://api.ecosuite.io"

    def __init__(self, settings: EcosuiteSettings, **kwargs: Any) -> None:
        super().__init__(settings, **kwargs)
        prefix = self.settings.auth_prefix.strip()
        self._auth_prefix = prefix + " " if prefix else ""
        self._users = self.base_url + "/users/"

    def auth_header(self, token: str) -> tuple[str, str]:
        return ("Authorization", self._auth_prefix + token)

    def flow(self, invitee: Invitee) -> Flow:
        user_id = invitee.user_id
        url = self._users + segment(user_id)
        access = _access(invitee.access, user_id)
        if invitee.email:
            _check_email(invitee.email, user_id)
        if not (invitee.email and invitee.first_name and invitee.last_name):
            if not self.settings.fetch_profile:
                raise InvalidInvitee(
                    "Ecosuite needs email, first_name and last_name to resend; pass them or "
                    "enable fetch_profile",
                    provider=self.name,
                    user_id=user_id,
                )
            response = yield Call("GET", url, reads_only=True)
            if response.status_code != 200:
                raise self._error(response, user_id, reads_only=True)
            profile = json_object(
                response, provider=self.name, user_id=user_id, what="the user profile"
            )
            invitee = _completed(invitee, profile)
            assert invitee.email is not None
            _check_email(invitee.email, user_id)  # it may come from the profile
            if access is None and isinstance(profile.get("access"), dict):
                access = _access_from_profile(profile["access"])
        body = _body(invitee, access)
        response = yield Call("PUT", url + "/resend", json=body)
        if response.status_code == 200:
            message = json_object(response, provider=self.name, user_id=user_id).get("message")
            return ResendResult(
                provider=self.name,
                user_id=user_id,
                message=message if isinstance(message, str) else None,
                status_code=200,
            )
        raise self._error(response, user_id)

    def _error(self, response: Any, user_id: str, *, reads_only: bool = False) -> Exception:
        data = json_body(response)
        message = data.get("message") if isinstance(data, dict) else None
        return response_error(
            None,
            response,
            provider=self.name,
            user_id=user_id,
            message=message if isinstance(message, str) and message else None,
            reads_only=reads_only,
        )


def _completed(invitee: Invitee, profile: dict[str, Any]) -> Invitee:
    """Fill only the fields the invitee left empty from the fetched profile."""
    changes: dict[str, Any] = {}
    for field, key in _PROFILE_FIELDS:
        value = profile.get(key)
        if not getattr(invitee, field) and isinstance(value, str) and value:
            changes[field] = value
    completed = attrs.evolve(invitee, **changes) if changes else invitee
    missing = [f for f in ("email", "first_name", "last_name") if not getattr(completed, f)]
    if missing:
        raise InvalidInvitee(
            f"the Ecosuite profile lacks {', '.join(missing)}; pass them on the invitee",
            provider="ecosuite",
            user_id=invitee.user_id,
        )
    return completed


def _access(access: Access | None, user_id: str) -> dict[str, str] | None:
    if access is None:
        return None
    problems = []
    if access.prevent_download not in _PREVENT_DOWNLOAD:
        problems.append(f"access.prevent_download must be one of {_PREVENT_DOWNLOAD}")
    if access.restrict_projects not in _RESTRICT_PROJECTS:
        problems.append(f"access.restrict_projects must be one of {_RESTRICT_PROJECTS}")
    for name in ("start_date", "end_date"):
        value = getattr(access, name)
        if value is not None and not _DATE.fullmatch(value):
            problems.append(f"access.{name} must be YYYY-MM-DD")
    if problems:
        raise InvalidInvitee("; ".join(problems), provider="ecosuite", user_id=user_id)
    body = {
        "preventDownload": access.prevent_download,
        "restrictProjects": access.restrict_projects,
    }
    if access.start_date is not None:
        body["startDate"] = access.start_date
    if access.end_date is not None:
        body["endDate"] = access.end_date
    return body


def _access_from_profile(raw: dict[str, Any]) -> dict[str, str] | None:
    """Keep a fetched access window only when it is valid; else send none."""
    prevent = raw.get("preventDownload", "no")
    restrict = raw.get("restrictProjects", "no")
    if prevent not in _PREVENT_DOWNLOAD or restrict not in _RESTRICT_PROJECTS:
        return None
    body = {"preventDownload": prevent, "restrictProjects": restrict}
    for key in ("startDate", "endDate"):
        value = raw.get(key)
        if isinstance(value, str) and _DATE.fullmatch(value):
            body[key] = value
    return body


def _check_email(email: str, user_id: str) -> None:
    if not _EMAIL.fullmatch(email):
        raise InvalidInvitee("email is not an email address", provider="ecosuite", user_id=user_id)


def _body(invitee: Invitee, access: dict[str, str] | None) -> dict[str, Any]:
    """The resend's body, for an invitee whose email has been checked."""
    body: dict[str, Any] = {
        "email": invitee.email,
        "firstName": invitee.first_name,
        "lastName": invitee.last_name,
    }
    if invitee.timezone:
        body["timezone"] = invitee.timezone
    if invitee.user_type:
        body["userType"] = invitee.user_type
    if access is not None:
        body["access"] = access
    return body
