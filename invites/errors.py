"""The exception tree every vendor's failures are mapped into.

Every error a caller sees from a resend is an :class:`InviteError` subclass, chained to its cause,
but for two programming errors raised as they are, with nothing sent: an adapter's bug before any
request that may send the invitation left, and a resend through a closed provider
(``RuntimeError``).
Configuration problems raise :class:`ConfigurationError`, which deliberately sits outside the tree
so that ``except InviteError`` never hides a broken setup.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, Final

__all__ = [
    "AccessDenied",
    "AlreadyVerified",
    "AuthenticationFailed",
    "ConfigurationError",
    "ConnectionFailed",
    "InvalidInvitee",
    "InvalidRequest",
    "InvitationExpired",
    "InviteError",
    "InviteRejected",
    "OutcomeUnknown",
    "PermissionDenied",
    "ProviderUnavailable",
    "RateLimited",
    "ResendTooSoon",
    "TenantMismatch",
    "UnexpectedResponse",
    "UserNotFound",
]

#: What every :class:`InviteError` carries besides its message (pickled, and kept by ledgers).
ERROR_FIELDS = (
    "provider",
    "user_id",
    "status_code",
    "vendor_code",
    "request_id",
    "retryable",
    "retry_after",
    "attempts",
    "details",
)


#: Longest ``message`` an error keeps (longer ones are cut, ending in "...").
MESSAGE_LIMIT: Final = 1024
#: Longest ``vendor_code`` / ``request_id`` an error keeps.
_CODE_LIMIT: Final = 200
#: Total characters of text ``details`` keeps, and its shape limits.
_DETAILS_TEXT: Final = 4096
_DETAILS_STRING: Final = 2048
_DETAILS_ITEMS: Final = 20
_DETAILS_DEPTH: Final = 4

# Links, also JSON-escaped (https:\/\/) or percent-encoded (https%3A%2F%2F): an invitation URL is a
# credential, so no error keeps one.
_LINK: Final = re.compile(r"""https?(?::|%3a)(?:/|\\/|\\u002f|%2f){2}[^\s"'<>]*""", re.IGNORECASE)
# Printable ASCII without ":" or "%": no link (see redact_links), nothing to replace.
_PLAIN_TEXT: Final = re.compile(r"[ -$&-9;-~]*")
# Line breaks, control, format (bidi), surrogate characters: they would break a one-line message.
_UNPRINTABLE: Final = frozenset({"Cc", "Cf", "Cs", "Zl", "Zp"})


# A URL's user information, up to the last "@" before its path: "scheme://user:PASSWORD@".
_USERINFO: Final = re.compile(r"([a-z][a-z0-9+.-]*://[^\s:/?#@]*):[^\s/?#]*@", re.IGNORECASE)
# A password given as a query parameter (libpq's "?password=", some brokers' "?pass=").
_QUERY_PASSWORD: Final = re.compile(r"([?&](?:password|passwd|pass|pwd)=)[^&#\s]*", re.IGNORECASE)


def redact_url(text: str) -> str:
    """``text`` (a URL, or a line holding URLs) with every password in it replaced by ``***``.

    A URL's ``user:password@`` becomes ``user:***@`` and a ``password=`` query parameter
    ``password=***``; everything else, a plain path included, is returned as it is. The CLI passes
    every ledger, broker and store URL it prints through it, and every error line it writes.
    """
    if "://" not in text:
        return text
    return _QUERY_PASSWORD.sub(r"\1***", _USERINFO.sub(r"\1:***@", text))


def redact_links(text: str) -> str:
    """``text`` with every URL replaced by ``<url>``."""
    if ":" not in text and "%" not in text:
        return text  # every link the pattern finds has its scheme's colon, maybe as %3a
    return _LINK.sub("<url>", text)


def clip(text: str, limit: int) -> str:
    """``text`` cut to at most ``limit`` characters, marked with "..." when cut."""
    if len(text) <= limit:
        return text
    return text[: max(limit - 3, 0)] + "..."


def one_line(text: object, limit: int) -> str:
    """Printable, link-free, single-line text of at most ``limit`` characters."""
    if type(text) is str and len(text) <= limit and _PLAIN_TEXT.fullmatch(text):
        return text  # such text is all of that already
    text = redact_links(str(text))
    if not (text.isascii() and text.isprintable()):
        text = "".join(" " if unicodedata.category(c) in _UNPRINTABLE else c for c in text)
    return clip(text, limit)


def _bounded(value: Any, room: list[int], depth: int) -> Any:
    """A small, link-free, JSON-like copy of ``value``; ``room[0]`` is the text still allowed."""
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Mapping | list | tuple):
        if depth >= _DETAILS_DEPTH:
            return "..."
        pairs = value.items() if isinstance(value, Mapping) else enumerate(value)
        kept: dict[str, Any] = {}
        for count, (key, item) in enumerate(pairs):
            if count >= _DETAILS_ITEMS or room[0] <= 0:
                kept["..."] = "..."
                break
            kept[clip(redact_links(str(key)), 100)] = _bounded(item, room, depth + 1)
        return kept if isinstance(value, Mapping) else list(kept.values())
    text = clip(redact_links(str(value)), max(min(room[0], _DETAILS_STRING), 3))
    room[0] -= len(text)
    return text


class InviteError(Exception):
    """Base of every failure to resend an invitation.

    Attributes: ``provider`` (vendor name), ``user_id``, ``status_code`` (HTTP status, if any),
    ``vendor_code`` (the vendor's machine-readable code, if any), ``message`` (the vendor's or the
    library's text), ``request_id`` (the vendor's trace id), ``retryable`` (whether trying again
    later may succeed), ``retry_after`` (seconds the vendor asked to wait), ``attempts`` (requests
    made), ``details`` (a small mapping of extra facts: never credentials or invitation URLs).

    Whatever a vendor sent is kept bounded and link-free: ``message`` is one printable line of at
    most :data:`MESSAGE_LIMIT` characters, ``vendor_code`` and ``request_id`` are short, and
    ``details`` is small JSON-like data with every URL replaced by ``<url>``.
    """

    #: Whether a later attempt may succeed; subclasses override.
    default_retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        user_id: str | None = None,
        status_code: int | None = None,
        vendor_code: str | None = None,
        request_id: str | None = None,
        retryable: bool | None = None,
        retry_after: float | None = None,
        attempts: int | None = None,
        details: Mapping[str, Any] | None = None,
    ) -> None:
        message = one_line(message, MESSAGE_LIMIT)
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.user_id = user_id
        self.status_code = status_code
        self.vendor_code = None if vendor_code is None else one_line(vendor_code, _CODE_LIMIT)
        self.request_id = None if request_id is None else one_line(request_id, _CODE_LIMIT)
        self.retryable = self.default_retryable if retryable is None else retryable
        self.retry_after = retry_after
        self.attempts = attempts
        self.details: dict[str, Any] = _bounded(dict(details or {}), [_DETAILS_TEXT], 0)

    def __str__(self) -> str:
        parts = []
        if self.provider:
            parts.append(self.provider)
        if self.user_id is not None:
            parts.append(f"user {self.user_id!r}")
        if self.status_code is not None:
            parts.append(f"HTTP {self.status_code}")
        if self.vendor_code:
            parts.append(f"code {self.vendor_code!r}")
        head = ", ".join(parts)
        tail = []
        if self.request_id:
            tail.append(f"request id {self.request_id}")
        if self.retry_after is not None:
            tail.append(f"retry after {self.retry_after:g}s")
        if self.attempts is not None and self.attempts > 1:
            tail.append(f"{self.attempts} attempts")
        text = f"{head}: {self.message}" if head else self.message
        return f"{text} ({'; '.join(tail)})" if tail else text

    def __repr__(self) -> str:
        fields = ", ".join(
            f"{name}={getattr(self, name)!r}"
            for name in ("provider", "user_id", "status_code", "vendor_code")
            if getattr(self, name) is not None
        )
        return f"{type(self).__name__}({self.message!r}{', ' if fields else ''}{fields})"

    def __reduce__(self) -> tuple[Any, ...]:
        state = {name: getattr(self, name) for name in ERROR_FIELDS}
        return (_rebuild, (type(self), self.message, state))


def _rebuild(cls: type[InviteError], message: str, state: dict[str, Any]) -> InviteError:
    return cls(message, **state)


class InviteRejected(InviteError):
    """The vendor refused this invitation; retrying will not help."""


class AlreadyVerified(InviteRejected):
    """The user accepted the invitation already; most callers treat this as done."""


class InvitationExpired(InviteRejected):
    """The invitation expired: the vendor wants a new invitation, not a resend."""


class UserNotFound(InviteRejected):
    """The vendor does not know this user."""


class InvalidRequest(InviteRejected):
    """The vendor rejected the request as malformed."""


class AccessDenied(InviteError):
    """The credential may not do this."""


class AuthenticationFailed(AccessDenied):
    """The vendor did not accept the credential (401)."""


class PermissionDenied(AccessDenied):
    """The credential is valid but lacks the permission (403)."""


class TenantMismatch(PermissionDenied):
    """The credential and the tenant header belong to different tenants."""


class RateLimited(InviteError):
    """The vendor asked to slow down (429); ``retry_after`` holds its wait, when it said one."""

    default_retryable = True


class ProviderUnavailable(InviteError):
    """The vendor failed (5xx). Only a 503 is retried automatically."""


class ConnectionFailed(InviteError):
    """The request never reached the vendor, so nothing was sent: safe to retry."""

    default_retryable = True


class OutcomeUnknown(InviteError):
    """The request was sent but no usable answer came back: the email may or may not have gone."""


class UnexpectedResponse(InviteError):
    """An answer the adapter does not understand; ``details["body"]`` keeps a short excerpt."""


class ResendTooSoon(InviteError):
    """Not sent: the user had ``per_user_limit`` resends within its window already (across every
    run sharing the ledger). ``retry_after``: seconds until one more fits; ``last_sent_at``: when
    the latest of them was sent (Unix time in ``details``, a UTC datetime here)."""

    default_retryable = True

    @property
    def last_sent_at(self) -> datetime | None:
        at = self.details.get("last_sent_at")
        if not isinstance(at, int | float):
            return None
        return datetime.fromtimestamp(at, tz=UTC)


class InvalidInvitee(InviteError, ValueError):
    """Refused before sending: an unsafe id or a missing field. Nothing left the process."""


class ConfigurationError(ValueError):
    """The configuration is unusable. ``problems`` lists every problem with its key path."""

    def __init__(self, problems: list[str] | str, *, provider: str | None = None) -> None:
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        self.provider = provider
        what = f"invalid {provider} configuration" if provider else "invalid configuration"
        super().__init__(f"{what}: " + "; ".join(self.problems))

    def __reduce__(self) -> tuple[Any, ...]:
        return (_rebuild_configuration_error, (type(self), self.problems, self.provider))


def _rebuild_configuration_error(
    cls: type[ConfigurationError], problems: list[str], provider: str | None
) -> ConfigurationError:
    return cls(problems, provider=provider)
