"""Settings every provider shares, validated where they are built.

A vendor subclasses :class:`ProviderSettings` with its keys. A key is checked by what it declares:
``setting(check)`` for a constrained value, otherwise its type (``str``, ``bool``, ``int``,
``float``, a ``Literal``, an attrs class). Building a settings object runs every check once and
raises one :class:`~invites.ConfigurationError` naming every bad key; a value is never echoed.
"""

from __future__ import annotations

import contextlib
import copy
import functools
import importlib
import ipaddress
import re
import types
import typing
import unicodedata
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, Final, Literal, TypeAlias
from urllib.parse import SplitResult, urlsplit, urlunsplit

import attrs
import httpx

from ._secret import Secret
from .errors import ConfigurationError
from .models import check_user_id

__all__ = [
    "REQUIRED",
    "AttemptHook",
    "Invalid",
    "ProviderSettings",
    "Timeouts",
    "TokenProvider",
    "at_least_one",
    "callable_or_path",
    "credential",
    "flag",
    "header_text",
    "http_url",
    "integer",
    "key_prefix",
    "ledger_url",
    "non_negative",
    "number",
    "one_of",
    "path_segment",
    "positive",
    "setting",
    "store_label",
    "store_url",
    "text",
    "uuid_text",
    "variable_name",
    "with_token",
    "without_password",
]

#: Returns a fresh token (or an awaitable of one); called when none is cached and after a 401.
TokenProvider = Callable[[], "str | Awaitable[str]"]
#: Receives an :class:`invites.AttemptEvent` after every attempt.
AttemptHook = Callable[[Any], None]
#: ``check(value, settings)`` returns the value to keep (possibly normalized) or raises Invalid.
Check: TypeAlias = Callable[[Any, Any], Any]

_CHECK: Final = "invites.check"
_UUID = re.compile(r"[0-9a-f]{8}(-?)[0-9a-f]{4}\1[0-9a-f]{4}\1[0-9a-f]{4}\1[0-9a-f]{12}", re.I)
_HOSTNAME = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.?")
_IMPORT_PATH = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")
_VARIABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})
_TOKEN_SOURCES: Final = ("token", "token_env", "token_provider")


class Invalid(ValueError):
    """What is wrong with one value (one message per argument); never contains the value."""


class _Required:
    def __repr__(self) -> str:
        return "REQUIRED"


#: The default of a key that must be given: building without it names it as required.
REQUIRED: Final[Any] = _Required()


def setting(check: Check, *, identity: bool = False, **kwargs: Any) -> Any:
    """An attrs field that ``check`` validates (and may normalize) when the settings are built.

    ``identity``: the key selects whose users the provider reaches (a tenant, an account); ledger
    records and a shared pace are keyed by it (see :func:`invites.ledger.provider_identity`).
    """
    metadata: dict[str, Any] = {_CHECK: check}
    if identity:
        metadata["identity"] = True
    return attrs.field(metadata=metadata, **kwargs)


# -- checks: each takes (value, settings) and returns the value to keep --------------------------


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


def _store_repr(url: str | None) -> str:
    return repr(None if url is None else store_label(url))


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


def without_password(url: str) -> str:
    """``url`` with any password in it replaced by ``***`` (a path is returned unchanged)."""
    if "://" not in url:
        return url
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url.split("://", 1)[0] + "://(unreadable URL)"
    if not password:
        return url
    user, _, host = parts.netloc.rpartition("@")
    user = user.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))


def _ledger_repr(url: str | None) -> str:
    return repr(None if url is None else without_password(url))


def key_prefix(value: object, _: object = None) -> str:
    raw = text(value)
    if not raw or raw != raw.strip():
        raise Invalid("must be non-empty, without leading or trailing spaces")
    return raw


def _instance_of(cls: type) -> Check:
    def check(value: object, _: object = None) -> object:
        if not isinstance(value, cls):
            raise Invalid(f"expected a {cls.__name__}")
        return value

    return check


_BY_TYPE: Final[dict[Any, Check]] = {str: text, bool: flag, int: integer, float: number}


def _by_type(tp: Any) -> Check | None:
    if typing.get_origin(tp) is Literal:
        return one_of(*typing.get_args(tp))
    if attrs.has(tp):
        return _instance_of(tp)
    return _BY_TYPE.get(tp)


# -- running the checks -----------------------------------------------------------------------


@functools.cache
def _plan(cls: Any) -> tuple[tuple[str, Check, bool], ...]:
    """(key, check, None allowed) for every key of ``cls`` that has a check."""
    # Annotations are strings until resolved. One naming what only its defining scope knows
    # stays a string: such a key keeps its declared check alone.
    with contextlib.suppress(NameError):
        attrs.resolve_types(cls)
    plan = []
    for field in attrs.fields(cls):
        tp = field.type
        optional = field.default is None  # also when the annotation stayed a string
        if typing.get_origin(tp) in (typing.Union, types.UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            optional = optional or len(args) < len(typing.get_args(tp))
            tp = args[0] if len(args) == 1 else None
        check = field.metadata.get(_CHECK) or _by_type(tp)
        if check is not None:
            plan.append((field.name, check, optional))
    return tuple(plan)


def _check_keys(settings: Any) -> tuple[list[tuple[str, str]], set[str]]:
    """Run every key's check, keeping what it returns; (key, problem) pairs and the bad keys."""
    problems: list[tuple[str, str]] = []
    for name, check, optional in _plan(settings.__class__):
        value = getattr(settings, name)
        if value is None and optional:
            continue
        try:
            if value is REQUIRED:
                raise Invalid("is required")
            kept = check(value, settings)
        except Invalid as exc:
            problems.extend((name, str(why)) for why in exc.args)
            continue
        if kept is not value:
            object.__setattr__(settings, name, kept)  # frozen: normalized once, while being built
    return problems, {name for name, _ in problems}


def _raise(problems: list[tuple[str, str]], provider: object = None) -> None:
    if problems:
        name = provider if isinstance(provider, str) and provider else None
        raise ConfigurationError([f"{key}: {why}" for key, why in problems], provider=name)


@attrs.frozen(kw_only=True)
class Timeouts:
    """Per-phase timeouts in seconds; an unset phase takes ``timeout``."""

    connect: float | None = setting(positive, default=None)
    read: float | None = setting(positive, default=None)
    write: float | None = setting(positive, default=None)
    pool: float | None = setting(positive, default=None)

    def __attrs_post_init__(self) -> None:
        _raise(_check_keys(self)[0])


@attrs.frozen(kw_only=True)
class ProviderSettings:
    """Keys every provider accepts. See the README's configuration reference.

    Building one checks every key and raises one :class:`~invites.ConfigurationError` naming each
    bad key. A ``token`` may be a string or an :class:`~invites.Secret`; it is kept as a Secret.
    Exactly one of ``token``, ``token_env``, ``token_provider`` is required.
    """

    provider: str = ""
    base_url: str | None = setting(http_url, default=None)
    token: Secret | None = setting(credential, default=None, repr=False)
    token_env: str | None = setting(variable_name, default=None)
    token_provider: TokenProvider | None = setting(callable_or_path, default=None, repr=False)
    timeout: float = setting(positive, default=10.0)
    timeouts: Timeouts | None = None
    max_attempts: int = setting(at_least_one, default=3)
    rate_limit: float | None = setting(positive, default=None)
    #: Where every process shares ``rate_limit`` and the 429 pause (extra ``redis``).
    rate_limit_store: str | None = setting(store_url, default=None, repr=_store_repr)
    rate_limit_fallback: Literal["fail", "local"] = "fail"
    rate_limit_key_prefix: str = setting(key_prefix, default="invites:pace")
    max_retry_after: float = setting(non_negative, default=60.0)
    deadline: float = setting(positive, default=120.0)
    retry_unknown: bool = False
    allow_insecure_http: bool = False
    on_attempt: AttemptHook | None = setting(callable_or_path, default=None, repr=False)
    #: Path or URL of the ledger that ``resend_invite(..., idempotency_key=...)`` records in.
    ledger: str | None = setting(ledger_url, default=None, repr=_ledger_repr)

    def __attrs_post_init__(self) -> None:
        problems, bad = _check_keys(self)
        given = [key for key in _TOKEN_SOURCES if getattr(self, key) is not None]
        if not given:
            problems.append(("token", "is required (or token_env, token_provider)"))
        elif len(given) > 1 and not bad.intersection(given):
            problems.append((given[1], "set only one of " + ", ".join(given)))
        _raise(problems, self.provider)


_S = typing.TypeVar("_S", bound=ProviderSettings)


def with_token(settings: _S, token: Secret) -> _S:
    """``settings`` holding ``token``, read from the variable its ``token_env`` names.

    Built as a copy, not anew: the two keys together would be refused as two token sources.
    """
    resolved = copy.copy(settings)
    object.__setattr__(resolved, "token", token)
    return resolved
