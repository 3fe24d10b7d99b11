"""Reading vendor answers (JSON bodies, excerpts) and building the errors they map to; the path
segment a user id becomes. Small pure helpers for the vendor adapters (re-exported by
:mod:`invites.adapter`)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import quote

import httpx

from .._http.bodies import json_typed
from .._pacing.announced import parse_retry_after
from ..errors import (
    AuthenticationFailed,
    InvalidRequest,
    InviteError,
    InviteRejected,
    OutcomeUnknown,
    PermissionDenied,
    ProviderUnavailable,
    RateLimited,
    UnexpectedResponse,
    UserNotFound,
    redact_links,
)

__all__ = [
    "EXCERPT_LIMIT",
    "NOT_JSON",
    "error_class_for_status",
    "excerpt",
    "json_body",
    "json_bytes",
    "json_object",
    "response_error",
    "segment",
]

#: At most this many characters of a body are kept on an error.
EXCERPT_LIMIT: Final = 2048


class _NotJson:
    __slots__ = ()

    def __repr__(self) -> str:
        return "NOT_JSON"


#: What :func:`json_body` returns for a body that is not usable JSON.
NOT_JSON: Final = _NotJson()


#: What ``quote(text, safe="")`` leaves as it is: RFC 3986's unreserved characters.
_UNRESERVED: Final = re.compile(r"[A-Za-z0-9_.~-]*")


def segment(user_id: str) -> str:
    """Percent-encode an id as exactly one URL path segment."""
    if _UNRESERVED.fullmatch(user_id):
        return user_id  # nothing to encode
    return quote(user_id, safe="")


def json_body(response: httpx.Response) -> Any:
    """The response's JSON value, or :data:`NOT_JSON` when it is absent, mistyped or malformed."""
    content = response.content
    if not content:
        return NOT_JSON
    if not json_typed(response):
        return NOT_JSON
    try:
        return json.loads(content.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError):
        return NOT_JSON


def json_object(
    response: httpx.Response, *, provider: str, user_id: str, what: str = "the answer"
) -> dict[str, Any]:
    """The response's JSON object; raise :class:`UnexpectedResponse` when the body is not one.

    For an answer that must be an object to mean success (a 200 whose fields are read): anything
    else, a list, a string or no JSON at all, is "``what`` is not a JSON object".
    """
    data = json_body(response)
    if not isinstance(data, dict):
        raise response_error(
            UnexpectedResponse,
            response,
            provider=provider,
            user_id=user_id,
            message=f"{what} is not a JSON object",
        )
    return data


def excerpt(content: bytes) -> str:
    """A short, link-free excerpt of a body (at most :data:`EXCERPT_LIMIT` characters)."""
    cut = len(content) > EXCERPT_LIMIT
    text = content[: EXCERPT_LIMIT - 3 if cut else EXCERPT_LIMIT].decode("utf-8", errors="replace")
    text = redact_links(text)
    return text[: EXCERPT_LIMIT - 3] + "..." if cut else text[:EXCERPT_LIMIT]


_BY_STATUS: Final[Mapping[int, type[InviteError]]] = {
    400: InvalidRequest,
    401: AuthenticationFailed,
    403: PermissionDenied,
    404: UserNotFound,
    405: InvalidRequest,
    409: InviteRejected,
    410: InviteRejected,
    413: InvalidRequest,
    415: InvalidRequest,
    422: InvalidRequest,
    429: RateLimited,
    502: OutcomeUnknown,
    504: OutcomeUnknown,
}


def error_class_for_status(status: int, *, reads_only: bool = False) -> type[InviteError]:
    """The exception a status maps to when the vendor said nothing more specific.

    For a read (``reads_only``), a 502 or 504 cannot have sent an email, so it is a
    :class:`ProviderUnavailable`, not an :class:`OutcomeUnknown`.
    """
    if status >= 500:
        if status in (502, 504) and not reads_only:
            return OutcomeUnknown
        return ProviderUnavailable
    cls = _BY_STATUS.get(status)
    if cls is not None:
        return cls
    if 400 <= status < 500:
        return InviteRejected
    return UnexpectedResponse


def response_error(
    cls: type[InviteError] | None,
    response: httpx.Response,
    *,
    provider: str,
    user_id: str,
    message: str | None = None,
    vendor_code: str | None = None,
    request_id: str | None = None,
    details: Mapping[str, Any] | None = None,
    reads_only: bool = False,
) -> InviteError:
    """Build the error for a failed answer; ``cls`` None picks it by status.

    Fills in the status, ``Retry-After`` and, when the body was not understood, a short excerpt.
    """
    status = response.status_code
    if cls is None:
        cls = error_class_for_status(status, reads_only=reads_only)
    extra = dict(details or {})
    # The body is kept when the adapter did not read a message from it, or did not understand it.
    if response.content and (message is None or cls is UnexpectedResponse):
        extra.setdefault("body", excerpt(response.content))
    if message is None:
        reason = response.reason_phrase or "no reason given"
        if 300 <= status < 400:
            message = f"unexpected redirect ({status} {reason}); redirects are never followed"
        else:
            message = reason
    retryable = True if status == 503 else None
    return cls(
        message,
        provider=provider,
        user_id=user_id,
        status_code=status,
        vendor_code=vendor_code,
        request_id=request_id,
        retryable=retryable,
        retry_after=parse_retry_after(response.headers.get("retry-after")),
        details=extra,
    )


def json_bytes(value: object) -> bytes:
    """A JSON request body as httpx 0.28 and later encode it, whatever httpx is installed (0.27
    adds spaces): the bytes a vendor receives do not change with httpx."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
