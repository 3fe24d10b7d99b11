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
import types
import typing
from collections.abc import Awaitable, Callable
from typing import Any, Final, Literal

import attrs

from ..errors import ConfigurationError
from .checks import (
    Check,
    Invalid,
    at_least_one,
    auto_rate,
    callable_or_path,
    credential,
    flag,
    header_text,
    http_url,
    integer,
    key_prefix,
    ledger_url,
    non_negative,
    number,
    one_of,
    path_segment,
    positive,
    rate_or_auto,
    store_label,
    store_url,
    text,
    user_limit,
    uuid_text,
    variable_name,
    without_password,
)
from .proxy import proxy_setting
from .secret import Secret

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
    "resolved_fields",
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

_CHECK: Final = "invites.check"
_TOKEN_SOURCES: Final = ("token", "token_env", "token_provider")


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


def _store_repr(url: str | None) -> str:
    return repr(None if url is None else store_label(url))


def _ledger_repr(url: str | None) -> str:
    return repr(None if url is None else without_password(url))


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


def resolved_fields(cls: Any) -> tuple[attrs.Attribute[Any], ...]:
    """The attrs fields of ``cls``, their annotations resolved to types where they can be.

    Annotations are strings until resolved; one naming what only its defining scope knows stays
    a string.
    """
    with contextlib.suppress(NameError):
        attrs.resolve_types(cls)
    fields: tuple[attrs.Attribute[Any], ...] = attrs.fields(cls)
    return fields


@functools.cache
def _plan(cls: Any) -> tuple[tuple[str, Check, bool], ...]:
    """(key, check, None allowed) for every key of ``cls`` that has a check; a key whose
    annotation stayed a string keeps its declared check alone."""
    plan = []
    for field in resolved_fields(cls):
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
    """Keys every provider accepts. See docs/configuration.md.

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
    #: Requests per second, or ``"auto"``: learned from the vendor's answers.
    rate_limit: float | Literal["auto"] | None = setting(rate_or_auto, default=None)
    #: ``"auto"`` only: the rate it starts from, and the most it may reach.
    rate_limit_start: float | None = setting(auto_rate, default=None)
    rate_limit_max: float | None = setting(auto_rate, default=None)
    #: Where every process shares ``rate_limit`` and the 429 pause (extra ``redis``).
    rate_limit_store: str | None = setting(store_url, default=None, repr=_store_repr)
    rate_limit_fallback: Literal["fail", "local"] = "fail"
    rate_limit_key_prefix: str = setting(key_prefix, default="invites:pace")
    max_retry_after: float = setting(non_negative, default=60.0)
    deadline: float = setting(positive, default=120.0)
    retry_unknown: bool = False
    allow_insecure_http: bool = False
    #: Appended to the ``User-Agent`` every request carries (``invites/<v> httpx/<v>``).
    user_agent: str | None = setting(header_text, default=None)
    #: The http:// proxy the provider's own clients go through (else HTTPS_PROXY and the rest).
    proxy: str | None = setting(proxy_setting, default=None, repr=_ledger_repr)
    on_attempt: AttemptHook | None = setting(callable_or_path, default=None, repr=False)
    #: Called with an ``invites.Outcome`` for each resend of this provider, single or bulk.
    on_outcome: AttemptHook | None = setting(callable_or_path, default=None, repr=False)
    #: Path or URL of the ledger that ``resend_invite(..., idempotency_key=...)`` records in.
    ledger: str | None = setting(ledger_url, default=None, repr=_ledger_repr)
    #: At most N resends to one user per sliding window, across every run sharing the ledger.
    per_user_limit: str | None = setting(user_limit, default=None)

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
