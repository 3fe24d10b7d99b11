"""The values a resend takes and gives: :class:`Invitee`, :class:`Access`, :class:`ResendResult`."""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Mapping
from typing import Final, Literal, TypeAlias

import attrs

from .errors import (
    MESSAGE_LIMIT,
    AlreadyVerified,
    InvalidInvitee,
    OutcomeUnknown,
    UnexpectedResponse,
    one_line,
)

__all__ = [
    "MAX_ID_LENGTH",
    "Access",
    "Invitee",
    "OutcomeStatus",
    "ResendResult",
    "as_invitee",
    "check_user_id",
]

#: Longer ids are refused: no vendor here issues ids anywhere near this long.
MAX_ID_LENGTH = 256

# Control, format (bidi marks, BOM), surrogate, private-use and unassigned characters, and the
# Unicode line/paragraph separators: none belongs in an id that becomes a URL path segment.
_FORBIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})


def _hidden_char(user_id: str) -> str | None:
    """Why ``user_id`` has a control or invisible character in it, or None."""
    if user_id.isascii():
        return None if user_id.isprintable() else "it contains a control character"
    for char in user_id:
        if unicodedata.category(char) in _FORBIDDEN_CATEGORIES:
            return f"it contains the invisible or control character U+{ord(char):04X}"
    return None


#: The refusals of a string id, in the order they are tried: each returns why, or None.
_REFUSALS: Final[tuple[Callable[[str], str | None], ...]] = (
    lambda u: "it is empty" if not u or u.isspace() else None,
    lambda u: (
        f"it is {len(u)} characters long (at most {MAX_ID_LENGTH})"
        if len(u) > MAX_ID_LENGTH
        else None
    ),
    lambda u: "it is a relative path segment" if u in {".", ".."} else None,
    # A server that normalizes decoded paths would read it as a relative segment.
    lambda u: (
        "it is a relative path segment once Unicode-normalized"
        if not u.isascii() and unicodedata.normalize("NFKC", u) in {".", ".."}
        else None
    ),
    lambda u: "it has leading or trailing whitespace" if u != u.strip() else None,
    _hidden_char,
)


#: Printable ASCII, 1 to MAX_ID_LENGTH characters, no space first or last: for such an id NFKC
#: normalization changes nothing and the only whitespace is a space, so this pattern and the
#: two relative segments are :data:`_REFUSALS` in full. Any other id goes through them one by one.
_PLAIN_ID: Final = re.compile(rf"[!-~](?:[ -~]{{0,{MAX_ID_LENGTH - 2}}}[!-~])?")
_RELATIVE: Final = frozenset({".", ".."})


def check_user_id(user_id: object, *, provider: str | None = None) -> str:
    """Return ``user_id`` if it is safe to send as one URL path segment, else raise.

    Refused: non-strings, empty or blank ids, ``.`` and ``..`` (also spelled with Unicode
    look-alikes that normalize to them, such as fullwidth dots), ids longer than
    :data:`MAX_ID_LENGTH`, leading or trailing whitespace, and control or invisible characters.
    """
    if type(user_id) is str and _PLAIN_ID.fullmatch(user_id) and user_id not in _RELATIVE:
        return user_id
    why: str | None = None
    if not isinstance(user_id, str):
        why = f"expected a string, got {type(user_id).__name__}"
    else:
        why = next((w for refusal in _REFUSALS if (w := refusal(user_id)) is not None), None)
        if why is None:
            return user_id
    shown = repr(user_id)
    if len(shown) > 80:
        shown = shown[:77] + "..."
    raise InvalidInvitee(f"unsafe user id {shown}: {why}", provider=provider)


def _validate_id(instance: Invitee, attribute: attrs.Attribute[str], value: str) -> None:
    check_user_id(value)


def _vendor_text(value: object) -> str | None:
    """Vendor text kept on a result: one printable line, bounded, with links removed."""
    return None if value is None else one_line(value, MESSAGE_LIMIT)


def _optional_text(
    instance: object, attribute: attrs.Attribute[str | None], value: str | None
) -> None:
    if value is None:
        return
    if not isinstance(value, str):
        raise InvalidInvitee(f"{attribute.name} must be a string, got {type(value).__name__}")
    if not value.isprintable():
        raise InvalidInvitee(f"{attribute.name} contains a control character")


#: What became of one resend, wherever it is told: a bulk run's :class:`~invites.Outcome`, a
#: ledger's record, the outcome log record and span. ``sent`` (the vendor accepted it),
#: ``already_verified``, ``failed`` (nothing was sent, or the vendor refused) or ``unknown`` (the
#: invitation may or may not have gone out).
OutcomeStatus: TypeAlias = Literal["sent", "already_verified", "failed", "unknown"]


def outcome_status(error: BaseException) -> OutcomeStatus:
    """What a resend that raised ``error`` amounts to (a cancellation or an interrupt: unknown)."""
    if isinstance(error, AlreadyVerified):
        return "already_verified"
    if isinstance(error, OutcomeUnknown) or not isinstance(error, Exception):
        return "unknown"
    if isinstance(error, UnexpectedResponse) and 200 <= (error.status_code or 0) < 300:
        return "unknown"  # the vendor accepted the request but its answer was unreadable
    return "failed"


@attrs.frozen(kw_only=True)
class Access:
    """Ecosuite's access window for an invitee (other vendors ignore it).

    ``start_date`` / ``end_date`` are ``YYYY-MM-DD``; ``prevent_download`` is ``"no"`` or
    ``"yes"``; ``restrict_projects`` is ``"no"``, ``"portfolios"`` or ``"yes"``. The Ecosuite
    adapter checks the values before sending.
    """

    start_date: str | None = attrs.field(default=None, validator=_optional_text)
    end_date: str | None = attrs.field(default=None, validator=_optional_text)
    prevent_download: str = "no"
    restrict_projects: str = "no"


def _as_access(value: Access | Mapping[str, object] | None) -> Access | None:
    """An access window given as a mapping of :class:`Access`'s keys becomes one."""
    if value is None or isinstance(value, Access):
        return value
    if not isinstance(value, Mapping):
        raise InvalidInvitee(f"access must be an Access or a mapping, got {type(value).__name__}")
    unknown = sorted(repr(key)[:40] for key in set(value) - set(attrs.fields_dict(Access)))
    if unknown:
        raise InvalidInvitee(f"access has unknown keys: {', '.join(unknown[:5])}")
    return Access(**value)  # type: ignore[arg-type]  # keys checked above, values by Access


@attrs.frozen(kw_only=True)
class Invitee:
    """Who to re-invite. Only ``user_id`` is always required; what else a vendor needs varies.

    The id is checked when the invitee is built: an unsafe id raises :class:`InvalidInvitee`.
    ``access`` takes an :class:`Access` or a mapping of its keys.
    """

    user_id: str = attrs.field(validator=_validate_id)
    email: str | None = attrs.field(default=None, validator=_optional_text)
    first_name: str | None = attrs.field(default=None, validator=_optional_text)
    last_name: str | None = attrs.field(default=None, validator=_optional_text)
    timezone: str | None = attrs.field(default=None, validator=_optional_text)
    user_type: str | None = attrs.field(default=None, validator=_optional_text)
    access: Access | None = attrs.field(default=None, converter=_as_access)


def as_invitee(value: Invitee | str) -> Invitee:
    """What a caller passed to a resend, as an :class:`Invitee`: a bare id becomes one."""
    if isinstance(value, Invitee):
        return value
    if isinstance(value, str):
        return _bare_invitee(check_user_id(value))
    raise TypeError(f"expected an Invitee or a user id string, got {type(value).__name__}")


@attrs.frozen(kw_only=True)
class ResendResult:
    """A resend the vendor accepted.

    ``message`` is the vendor's text when it sent one; ``invitation_status`` the invitation's state
    after the resend when the vendor reports it (SoftwareOne), as sent. ``renewed`` is true when
    the vendor refused the resend because the invitation had expired and a new invitation was sent
    in its place (SoftwareOne's ``renew_expired``). Invitation links are never kept: ``message``
    and ``request_id`` are stored as one bounded printable line with every URL replaced by
    ``<url>``.
    """

    provider: str
    user_id: str
    message: str | None = attrs.field(default=None, converter=_vendor_text)
    invitation_status: str | None = None
    status_code: int = 200
    request_id: str | None = attrs.field(default=None, converter=_vendor_text)
    renewed: bool = False


def _bare_invitee(user_id: str) -> Invitee:
    """An :class:`Invitee` of a checked id and nothing else.

    Built without ``__init__``: its only validation is the id's, done by the caller, and the
    other fields take their defaults (None, which their validators accept). Each field is set
    through its slot's own setter, which costs half of ``object.__setattr__`` (the class is
    frozen).
    """
    invitee = object.__new__(Invitee)
    _SET_USER_ID(invitee, user_id)
    for set_none in _SET_OTHERS:
        set_none(invitee, None)
    return invitee


#: The setters of an Invitee's slots: the id's, then every other field's (all default to None).
_SET_USER_ID: Final[Callable[[Invitee, str], None]] = Invitee.__dict__["user_id"].__set__
_SET_OTHERS: Final[tuple[Callable[[Invitee, None], None], ...]] = tuple(
    Invitee.__dict__[field.name].__set__
    for field in attrs.fields(Invitee)
    if field.name != "user_id" and field.default is None
)
assert len(_SET_OTHERS) == len(attrs.fields(Invitee)) - 1, "an Invitee field with a default"
