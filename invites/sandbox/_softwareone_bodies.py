"""What the simulated SoftwareOne platform answers: its account-user objects and its RFC 7807
problem details, as the published schema has them."""

from __future__ import annotations

import secrets
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from starlette.responses import JSONResponse, Response

from ._data import SOFTWAREONE_ACCOUNT_ID

PUBLISHED = "published"
"""Account users as the published schema has them: the state in ``invitation.status`` only."""
TOP_LEVEL_STATUS = "top_level_status"
"""Account users with a top-level ``status`` too, as the platform's user objects have it."""
SHAPES = (PUBLISHED, TOP_LEVEL_STATUS)


@dataclass
class Membership:
    """A SoftwareOne account membership, as the sandbox holds it."""

    membership_id: str
    user_id: str
    name: str
    status: str
    invitation_url: str
    updated_at: str


SEEDED_AT = "2025-10-24T20:57:56.471Z"


def timestamp() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def invitation_url() -> str:
    return f"https://portal.sandbox.invalid/invitations/{secrets.token_hex(12)}"


def _trace_id() -> str:
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-00"


_PROBLEM_TYPES = {
    400: ("https://tools.ietf.org/html/rfc9110#section-15.5.1", "Bad Request"),
    401: ("https://tools.ietf.org/html/rfc9110#section-15.5.2", "Unauthorized"),
    404: ("https://tools.ietf.org/html/rfc9110#section-15.5.5", "Not Found"),
    405: ("https://tools.ietf.org/html/rfc9110#section-15.5.6", "Method Not Allowed"),
    409: ("https://tools.ietf.org/html/rfc9110#section-15.5.10", "Conflict"),
    429: ("https://tools.ietf.org/html/rfc6585#section-4", "Too Many Requests"),
    500: ("https://tools.ietf.org/html/rfc9110#section-15.6.1", "Internal Server Error"),
    501: ("https://tools.ietf.org/html/rfc9110#section-15.6.2", "Not Implemented"),
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


def gateway_not_found() -> Response:
    return JSONResponse({"message": "Resource not found", "statusCode": 404}, 404)


def _circular_reference() -> dict[str, str]:
    """The published example's ``audit.*.by``: a documentation-generator artifact, on purpose."""
    return {str(index): char for index, char in enumerate("[Circular Reference]")}


_AUDITOR = {"id": "USR-0000-0000", "name": "Sandbox Administrator", "icon": None}
"""Who created and updated every membership: an ``Id`` object, as the schema has ``by``."""


def _seeded_parts() -> dict[str, object]:
    """The parts of an account user the sandbox seeds alike for every member (fresh each time)."""
    return {
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
    }


def account_user(
    membership: Membership, shape: str, *, legacy: bool = True, by_artifact: bool = False
) -> dict[str, object]:
    """The published account-user object; with `TOP_LEVEL_STATUS`, the member's ``status`` too.

    `legacy`: the ``AccountUserQueryLegacy`` schema, which the invite actions and the deprecated
    family answer (``lastLoginAt``, ``audit.invitationAcceptedAt``); else ``AccountUser``, which
    a ``GET`` on the current family answers, without them. `by_artifact`: ``audit.*.by`` as the
    published example spells it (``{"0": "[", "1": "C", ...}``, a documentation-generator
    artifact the schema refuses) instead of an ``Id`` object.
    """
    accepted = membership.status == "Active"
    state: dict[str, object] = {"status": membership.status} if shape == TOP_LEVEL_STATUS else {}
    audit: dict[str, object] = {
        "created": {"at": SEEDED_AT, "by": _circular_reference() if by_artifact else _AUDITOR},
        "updated": {
            "at": membership.updated_at,
            "by": _circular_reference() if by_artifact else _AUDITOR,
        },
    }
    if legacy:
        audit["invitationAcceptedAt"] = SEEDED_AT if accepted else None
    audit["access"] = {"at": SEEDED_AT if accepted else None}
    audit["joined"] = {"at": SEEDED_AT if accepted else None}
    body = {
        "id": membership.membership_id,
        **state,
        "audit": audit,
        "$meta": {"omitted": ["settings"]},
        "user": {"id": membership.user_id, "icon": None, "name": membership.name},
        **_seeded_parts(),
        "invitation": {
            "url": None if accepted else membership.invitation_url,
            "status": membership.status,
        },
    }
    if legacy:
        body["lastLoginAt"] = SEEDED_AT if accepted else None
    return body


def selected(body: dict[str, object], select: str | None) -> dict[str, object]:
    """`body` narrowed by an RQL ``select`` (``-field`` leaves a top-level field out; ``field``
    or ``+field`` names one that is there already); ``id`` always stays."""
    if not select:
        return body
    left_out = {
        name[1:] for name in (part.strip() for part in select.split(",")) if name.startswith("-")
    }
    return {key: value for key, value in body.items() if key == "id" or key not in left_out}


VALIDATION_FAILED = "One or more validation errors occurred."
"""The ``detail`` of the published 400 example (``errors-handling.md``)."""


def not_in_state(state: str, status: int = 400) -> Response:
    """A refusal for a membership in the wrong state: the published 400 example's shape
    (``title`` "Bad Request", ``detail`` `VALIDATION_FAILED`, ``errors`` by field)."""
    return problem(
        status, VALIDATION_FAILED, errors={"status": [f"Account user is not in {state} state."]}
    )


def expired(membership: Membership, status: int = 409) -> Response:
    """A resend to an expired invitation: no source documents it (an assumption)."""
    message = "Invitation has expired; send a new invitation."
    return problem(
        status,
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


def not_simulated(operation: str) -> Response:
    """501 for a documented operation the sandbox does not play, naming it."""
    return problem(501, f"The sandbox does not simulate {operation}.")
