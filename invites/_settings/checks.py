"""The value checks a settings key can declare with ``setting(check)``.

Each takes ``(value, settings)`` and returns the value to keep (possibly normalized), or raises
:class:`Invalid` with one message per problem. No message echoes the value: it may be a secret.
"""

from __future__ import annotations

import importlib
import ipaddress
import re
import typing
import unicodedata
import uuid
from collections.abc import Callable
from typing import Any, Final, TypeAlias
from urllib.parse import SplitResult, urlsplit

import httpx

from ..errors import redact_url
from ..models import check_user_id
from .secret import Secret

#: ``check(value, settings)`` returns the value to keep (possibly normalized) or raises Invalid.
Check: TypeAlias = Callable[[Any, Any], Any]

_UUID = re.compile(r"[0-9a-f]{8}(-?)[0-9a-f]{4}\1[0-9a-f]{4}\1[0-9a-f]{4}\1[0-9a-f]{12}", re.I)
_HOSTNAME = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.?")
_IMPORT_PATH = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})


class Invalid(ValueError):
    """What is wrong with one value (one message per argument); never contains the value."""


def text(value: object, _: object = None) -> str:
    if not isinstance(value, str):
        raise Invalid(f"expected a string, got {type(value).__name__}")
    if any(c in value for c in "\r\n\x00"):
        raise Invalid("must not contain CR, LF or NUL")
    if any(unicodedata.category(c) == "Cc" for c in value):
        raise Invalid("must not contain control characters")
    return value


def header_text(value: object, _: object = None) -> str:
    """Text that becomes part of an HTTP header value, which httpx encodes as ASCII."""
    raw = text(value)
    if not (raw.isascii() and raw.isprintable()):
        raise Invalid("must be printable ASCII")
    return raw


def flag(value: object, _: object = None) -> bool:
    if not isinstance(value, bool):
        raise Invalid(f"expected true or false, got {type(value).__name__}")
    return value


def number(value: object, _: object = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise Invalid(f"expected a number, got {type(value).__name__}")
    if value != value or value in (float("inf"), float("-inf")):
        raise Invalid("expected a finite number")
    return float(value)


def positive(value: object, _: object = None) -> float:
    kept = number(value)
    if kept <= 0:
        raise Invalid("must be greater than 0")
    return kept


def rate_or_auto(value: object, _: object = None) -> float | str:
    """Requests per second, or ``"auto"`` (learned from the vendor's answers)."""
    if isinstance(value, str):
        if value.strip().lower() == "auto":
            return "auto"
        raise Invalid('expected a number or "auto", got another text')
    kept = number(value)
    if kept <= 0:
        raise Invalid("must be greater than 0")
    return kept


def auto_rate(value: object, settings: object = None) -> float:
    """A positive rate that only ``rate_limit = "auto"`` uses."""
    kept = positive(value)
    if getattr(settings, "rate_limit", "auto") != "auto":
        raise Invalid('applies only with rate_limit = "auto"')
    return kept


def non_negative(value: object, _: object = None) -> float:
    kept = number(value)
    if kept < 0:
        raise Invalid("must not be negative")
    return kept


def integer(value: object, _: object = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise Invalid(f"expected an integer, got {type(value).__name__}")
    return value


def at_least_one(value: object, _: object = None) -> int:
    kept = integer(value)
    if kept < 1:
        raise Invalid("must be at least 1")
    return kept


def one_of(*choices: object) -> Check:
    def check(value: object, _: object = None) -> object:
        if value not in choices:
            raise Invalid("must be one of " + ", ".join(repr(c) for c in choices))
        return value

    return check


def credential(value: object, _: object = None) -> Secret:
    if isinstance(value, Secret):
        return value
    if not isinstance(value, str):
        raise Invalid(f"expected a string, got {type(value).__name__}")
    if not value:
        raise Invalid("must not be empty")
    try:
        return Secret(value)
    except ValueError as exc:
        raise Invalid(str(exc)) from None


def variable_name(value: object, _: object = None) -> str:
    # A token pasted here by mistake is refused without being named: it is no variable name.
    name = text(value)
    if not _VARIABLE.fullmatch(name):
        raise Invalid("must be an environment variable name (letters, digits and _)")
    return name


def http_url(value: object, settings: object = None) -> str:
    """An absolute http(s) URL with a host and nothing a credential could hide in."""
    raw = text(value)
    try:
        url = httpx.URL(raw)
    except (httpx.InvalidURL, ValueError):
        raise Invalid("is not a valid URL") from None
    if url.scheme not in ("http", "https"):
        raise Invalid("must be an http:// or https:// URL")
    if not url.host:
        raise Invalid("has no host")
    if not _valid_host(url.raw_host.decode("ascii", "replace")):
        raise Invalid("has an invalid host")
    problems = [
        why
        for wrong, why in (
            (url.port is not None and not 0 < url.port < 65536, "has an invalid port"),
            (bool(url.userinfo), "must not contain credentials"),
            (bool(url.query) or "?" in raw, "must not contain a query"),
            (bool(url.fragment) or "#" in raw, "must not contain a fragment"),
        )
        if wrong
    ]
    if getattr(settings, "allow_insecure_http", False) is False and not _secure(url):
        problems.append(
            "must use https:// (plain http is allowed only for a loopback host, or with "
            "allow_insecure_http = true)"
        )
    if problems:
        raise Invalid(*problems)
    return raw.rstrip("/")


def _valid_host(host: str) -> bool:
    """A DNS name (IDNs arrive punycoded), an IPv4 address or an IPv6 literal; nothing else."""
    if ":" not in host:
        return _HOSTNAME.fullmatch(host) is not None
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _secure(url: httpx.URL) -> bool:
    if url.scheme == "https" or url.host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(url.host).is_loopback
    except ValueError:
        return False


def uuid_text(value: object, _: object = None) -> str:
    """A UUID, kept in canonical lower-case form."""
    raw = text(value)
    # uuid.UUID alone also takes int() syntax ("+", "_"), naming another tenant than the written;
    # take only a UUID's own spellings (optionally in braces or a URN).
    core = raw[9:] if raw[:9].lower() == "urn:uuid:" else raw
    if core[:1] == "{" and core[-1:] == "}":
        core = core[1:-1]
    if not _UUID.fullmatch(core):
        raise Invalid("must be a UUID")
    return str(uuid.UUID(raw))


def path_segment(value: object, _: object = None) -> str:
    """An id that is sent as one URL path segment."""
    raw = text(value)
    try:
        return check_user_id(raw)
    except ValueError:
        raise Invalid("is not a usable id (empty, too long or with control characters)") from None


def callable_or_path(value: object, _: object = None) -> Callable[..., Any]:
    """A callable, or the ``"module:function"`` import path of one."""
    if callable(value):
        return value
    if not isinstance(value, str) or not _IMPORT_PATH.fullmatch(value):
        # Not echoed: a credential pasted here by mistake must not reach an error message.
        raise Invalid('expected a callable or a "module:function" string')
    module_name, _, attr = value.partition(":")
    try:
        target = importlib.import_module(module_name)
    except Exception as exc:
        raise Invalid(f"cannot import module {module_name!r} ({type(exc).__name__})") from None
    try:
        for part in attr.split("."):
            target = getattr(target, part)
    except AttributeError:
        raise Invalid(f"module {module_name!r} has no such attribute") from None
    if not callable(target):
        raise Invalid(f"the object it names in module {module_name!r} is not callable")
    return typing.cast(Callable[..., Any], target)


_STORE_SCHEMES: Final = ("redis", "rediss", "unix")


def store_url(value: object, _: object = None) -> str:
    """A Redis URL (``redis://``, ``rediss://``, ``unix://``), kept as written.

    It may hold a password, so no problem names any part of the value.
    """
    raw = text(value)
    try:
        parts = urlsplit(raw)
    except ValueError:
        raise Invalid("is not a valid URL") from None
    if parts.scheme not in _STORE_SCHEMES:
        raise Invalid("must be a redis://, rediss:// or unix:// URL")
    if parts.scheme == "unix":
        if not parts.path:
            raise Invalid("has no socket path")
        return raw
    db = parts.path.strip("/")
    problems = [
        why
        for wrong, why in (
            (not parts.hostname, "has no host"),
            (not _valid_port(parts), "has an invalid port"),
            (bool(db) and not db.isdigit(), "has an invalid database number (the path, e.g. /0)"),
        )
        if wrong
    ]
    if problems:
        raise Invalid(*problems)
    return raw


def _valid_port(parts: SplitResult) -> bool:
    try:
        return parts.port != 0
    except ValueError:  # not a number, or out of range
        return False


def store_label(url: str) -> str:
    """``scheme://host:port/db`` of a store URL: all that errors, logs and reprs show of it."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"unix://{parts.path}"
    try:
        port = parts.port or 6379
    except ValueError:
        port = 6379
    host = parts.hostname or "localhost"
    host = f"[{host}]" if ":" in host else host
    return f"{parts.scheme}://{host}:{port}/{parts.path.strip('/') or '0'}"


_LEDGER_SCHEMES = ("sqlite", "postgresql", "postgres", "postgresql+psycopg")


def ledger_url(value: object, _: object = None) -> str:
    """A ledger: a SQLite file path, or a ``sqlite://`` / ``postgresql://`` URL, kept as written.

    A URL may hold a password, so no problem names any part of the value.
    """
    raw = text(value)
    if not raw.strip():
        raise Invalid("must not be empty")
    if "://" in raw and raw.split("://", 1)[0].lower() not in _LEDGER_SCHEMES:
        raise Invalid(f"must be a file path or a URL ({', '.join(_LEDGER_SCHEMES)})")
    return raw


def user_limit(value: object, _: object = None) -> str:
    """A ``per_user_limit``: ``"N/window"`` (units s, m, h, d), kept without outer spaces."""

    raw = text(value)
    try:
        parse_limit(raw)
    except ValueError as exc:
        raise Invalid(str(exc)) from None
    return raw.strip()


#: The older name of :func:`invites.errors.redact_url`.
without_password = redact_url


def key_prefix(value: object, _: object = None) -> str:
    raw = text(value)
    if not raw or raw != raw.strip():
        raise Invalid("must be non-empty, without leading or trailing spaces")
    return raw


_LIMIT: Final = re.compile(r"\s*([0-9]+)\s*/\s*([0-9]+(?:\.[0-9]+)?)?\s*([smhd])\s*\Z")
_UNITS: Final = {"s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_limit(text: str) -> tuple[int, float]:
    """``"N/window"`` as (N, seconds); ValueError naming the expected form otherwise.

    The window's number may be left out (``"1/h"``: one per hour).
    """
    match = _LIMIT.match(text)
    if match is None:
        raise ValueError('expected "N/window", e.g. "1/24h" or "3/7d" (units s, m, h, d)')
    count, amount, unit = match.groups()
    window = float(amount or 1) * _UNITS[unit]
    if int(count) < 1 or window <= 0:
        raise ValueError("the count and the window must both be above zero")
    return int(count), window
