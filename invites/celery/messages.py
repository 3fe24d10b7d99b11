"""Invitees and outcomes as JSON: what a task message carries and what a task returns."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs
import cattrs

from ..bulk import Outcome
from ..errors import InviteError
from ..ledger._guard import Guarded
from ..models import Invitee, as_invitee

_converter = cattrs.Converter(detailed_validation=False)


def invitee_to_json(invitee: Invitee | str) -> dict[str, Any]:
    """``invitee`` as a JSON-able mapping (unset fields left out)."""
    data: dict[str, Any] = _converter.unstructure(as_invitee(invitee))
    if data.get("access") is not None:
        data["access"] = {k: v for k, v in data["access"].items() if v is not None}
    return {key: value for key, value in data.items() if value is not None}


def invitee_from_json(data: Mapping[str, Any] | str) -> Invitee:
    """The :class:`~invites.Invitee` :func:`invitee_to_json` wrote (or a bare user id).

    Raises :class:`~invites.InvalidInvitee` for an unsafe id, ``TypeError`` / ``ValueError``
    for anything else that is not an invitee.
    """
    if isinstance(data, str):
        return Invitee(user_id=data)
    if not isinstance(data, Mapping):
        raise TypeError(f"expected a mapping or a user id, got {type(data).__name__}")
    unknown = set(data) - {field.name for field in attrs.fields(Invitee)}
    if unknown:
        raise ValueError(f"unknown invitee fields: {', '.join(sorted(unknown))}")
    try:
        return _converter.structure(dict(data), Invitee)
    except (KeyError, AttributeError) as exc:
        raise ValueError(f"not an invitee ({type(exc).__name__}: {exc})") from None


def outcome_json(outcome: Outcome) -> dict[str, Any]:
    """One outcome as the CLI prints it: user_id, outcome, error (class name), message,
    status_code, skipped, resent_unknown."""
    error, result = outcome.error, outcome.result
    message: str | None = None
    status_code: int | None = None
    if result is not None:
        message, status_code = result.message, result.status_code
    elif isinstance(error, InviteError):
        message, status_code = error.message, error.status_code
    elif error is not None:
        message = str(error)
    return {
        "user_id": outcome.user_id,
        "outcome": outcome.status,
        "error": None if error is None else type(error).__name__,
        "message": message,
        "status_code": status_code,
        "skipped": outcome.skipped,
        "resent_unknown": outcome.resent_unknown,
    }


def guarded_outcome(invitee: Invitee | None, user_id: str, guarded: Guarded) -> Outcome:
    """The outcome of ``invitee`` (``user_id``: its id in the vendor's canonical spelling)."""
    return Outcome(
        invitee=invitee,
        user_id=user_id,
        input_id=user_id if invitee is None else invitee.user_id,
        status=guarded.status,
        result=guarded.result,
        error=guarded.error,
        skipped=guarded.skipped,
        resent_unknown=guarded.resent_unknown,
    )
