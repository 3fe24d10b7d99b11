"""Outcomes as JSON text and back, for ledger implementations."""

from __future__ import annotations

import json
from typing import Any

import attrs

from ..errors import ERROR_FIELDS, InviteError
from ..models import ResendResult

__all__ = ["dump_error", "dump_result", "load_error", "load_result"]


def dump_result(result: ResendResult | None) -> str | None:
    """``result`` as JSON text (None stays None)."""
    if result is None:
        return None
    return json.dumps(attrs.asdict(result), sort_keys=True)


def load_result(text: str | None) -> ResendResult | None:
    """The :class:`~invites.ResendResult` :func:`dump_result` wrote."""
    if text is None:
        return None
    fields = json.loads(text)
    return ResendResult(**fields)


def dump_error(error: BaseException | None) -> str | None:
    """``error`` as JSON text: its class name, message and :class:`~invites.InviteError` fields.

    An exception from outside the library keeps only its class name and message.
    """
    if error is None:
        return None
    if isinstance(error, InviteError):
        data: dict[str, Any] = {name: getattr(error, name) for name in ERROR_FIELDS}
        data["message"] = error.message
    else:
        data = {"message": f"{type(error).__name__}: {error}"}
    data["type"] = type(error).__name__
    return json.dumps(data, sort_keys=True, default=str)


def load_error(text: str | None) -> InviteError | None:
    """The error :func:`dump_error` wrote, as its :class:`~invites.InviteError` class (the base
    class when it was not one of the library's)."""
    if text is None:
        return None
    from .. import errors

    data = json.loads(text)
    cls = getattr(errors, str(data.pop("type", "")), None)
    if not (isinstance(cls, type) and issubclass(cls, InviteError)):
        cls = InviteError
    message = str(data.pop("message", ""))
    fields = {name: data[name] for name in ERROR_FIELDS if name in data}
    return cls(message, **fields)
