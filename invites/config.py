"""Build a provider from configuration: a mapping, environment variables or TOML profiles.

Every problem in a configuration is reported at once, in one :class:`ConfigurationError`, each with
its key path. Secrets are never echoed.
"""

from __future__ import annotations

import collections.abc
import importlib
import ipaddress
import os
import re
import typing
import unicodedata
import uuid
from collections.abc import Callable, Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any, Literal, NewType, get_args, get_origin
from urllib.parse import urlsplit

import attrs
import cattrs
import httpx
from cattrs.errors import ClassValidationError, ForbiddenExtraKeysError
from cattrs.v import transform_error

from ._secret import Secret
from ._settings import (
    AttemptHook,
    BaseUrl,
    LedgerUrl,
    NonNegativeFloat,
    PositiveFloat,
    PositiveInt,
    ProviderSettings,
    StoreUrl,
    TenantId,
    TokenProvider,
)
from .errors import ConfigurationError
from .registry import known_providers, provider_class

if typing.TYPE_CHECKING:
    from ._base import BaseProvider

__all__ = ["Profiles", "from_config", "from_env", "load_profiles"]

ENV_PREFIX = "INVITES_"
# 32 hex digits, optionally hyphenated 8-4-4-4-12.
_UUID = re.compile(r"[0-9a-f]{8}(-?)[0-9a-f]{4}\1[0-9a-f]{4}\1[0-9a-f]{4}\1[0-9a-f]{12}", re.I)
_HOSTNAME = re.compile(r"[A-Za-z0-9_-]+(?:\.[A-Za-z0-9_-]+)*\.?")
_IMPORT_PATH = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_][\w.]*")
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})


class _Problem(ValueError):
    """A problem with one value, worded for a person; never contains the value itself."""


# -- value checks --------------------------------------------------------------------------------


def _text(value: object, _: object = None) -> str:
    if not isinstance(value, str):
        raise _Problem(f"expected a string, got {type(value).__name__}")
    if any(c in value for c in "\r\n\x00"):
        raise _Problem("must not contain CR, LF or NUL")
    if any(unicodedata.category(c) == "Cc" for c in value):
        raise _Problem("must not contain control characters")
    return value


def _number(value: object) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise _Problem(f"expected a number, got {type(value).__name__}")
    if value != value or value in (float("inf"), float("-inf")):
        raise _Problem("expected a finite number")
    return float(value)


def _positive(value: object, _: object = None) -> float:
    number = _number(value)
    if number <= 0:
        raise _Problem("must be greater than 0")
    return number


def _non_negative(value: object, _: object = None) -> float:
    number = _number(value)
    if number < 0:
        raise _Problem("must not be negative")
    return number


def _positive_int(value: object, _: object = None) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise _Problem(f"expected an integer, got {type(value).__name__}")
    if value < 1:
        raise _Problem("must be at least 1")
    return value


def _boolean(value: object, _: object = None) -> bool:
    if not isinstance(value, bool):
        raise _Problem(f"expected true or false, got {type(value).__name__}")
    return value


def _secret(value: object, _: object = None) -> Secret:
    if not isinstance(value, str):
        raise _Problem(f"expected a string, got {type(value).__name__}")
    if not value:
        raise _Problem("must not be empty")
    try:
        return Secret(value)
    except ValueError as exc:
        raise _Problem(str(exc)) from None


def _base_url(value: object, _: object = None) -> BaseUrl:
    text = _text(value)
    try:
        url = httpx.URL(text)
    except (httpx.InvalidURL, ValueError):
        raise _Problem("is not a valid URL") from None
    if url.scheme not in ("http", "https"):
        raise _Problem("must be an http:// or https:// URL")
    if not url.host:
        raise _Problem("has no host")
    if not _valid_host(url.raw_host.decode("ascii", "replace")):
        raise _Problem("has an invalid host")
    if url.port is not None and not 0 < url.port < 65536:
        raise _Problem("has an invalid port")
    if url.userinfo:
        raise _Problem("must not contain credentials")
    if url.query or "?" in text:
        raise _Problem("must not contain a query")
    if url.fragment or "#" in text:
        raise _Problem("must not contain a fragment")
    return BaseUrl(text.rstrip("/"))


def _valid_host(host: str) -> bool:
    """A DNS name (IDNs arrive punycoded), an IPv4 address or an IPv6 literal; nothing else."""
    if ":" not in host:
        return _HOSTNAME.fullmatch(host) is not None
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def _tenant_id(value: object, _: object = None) -> TenantId:
    text = _text(value)
    # uuid.UUID alone also takes int() syntax ("+", "_"), naming another tenant than the written;
    # take only a UUID's own spellings (optionally in braces or a URN).
    core = text[9:] if text[:9].lower() == "urn:uuid:" else text
    if core[:1] == "{" and core[-1:] == "}":
        core = core[1:-1]
    if not _UUID.fullmatch(core):
        raise _Problem("must be a UUID")
    return TenantId(str(uuid.UUID(text)))


def _store_url(value: object, _: object = None) -> StoreUrl:
    text = _text(value)
    parts = urlsplit(text)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise _Problem("must be a redis://, rediss:// or unix:// URL")
    if parts.scheme != "unix" and not parts.hostname:
        raise _Problem("has no host")
    try:
        parts.port  # noqa: B018 (parsed on access)
    except ValueError:
        raise _Problem("has an invalid port") from None
    return StoreUrl(text)


_LEDGER_SCHEMES = ("sqlite", "postgresql", "postgres", "postgresql+psycopg")


def _ledger_url(value: object, _: object = None) -> LedgerUrl:
    text = _text(value)
    if not text.strip():
        raise _Problem("must not be empty")
    if "://" in text:
        scheme = text.split("://", 1)[0].lower()
        if scheme not in _LEDGER_SCHEMES:
            raise _Problem(f"must be a file path or a URL ({', '.join(_LEDGER_SCHEMES)})")
    return LedgerUrl(text)


def _callable(value: object, _: object = None) -> Callable[..., Any]:
    if callable(value):
        return value
    if not isinstance(value, str) or not _IMPORT_PATH.fullmatch(value):
        # Not echoed: a credential pasted here by mistake must not reach an error message.
        raise _Problem('expected a callable or a "module:function" string')
    module_name, _, attr = value.partition(":")
    try:
        target = importlib.import_module(module_name)
    except Exception as exc:
        raise _Problem(f"cannot import module {module_name!r} ({type(exc).__name__})") from None
    try:
        for part in attr.split("."):
            target = getattr(target, part)
    except AttributeError:
        raise _Problem(f"module {module_name!r} has no such attribute") from None
    if not callable(target):
        raise _Problem(f"the object it names in module {module_name!r} is not callable")
    return typing.cast(Callable[..., Any], target)


def _is_callable_type(tp: Any) -> bool:
    return tp in (TokenProvider, AttemptHook) or get_origin(tp) is collections.abc.Callable


def _is_literal(tp: Any) -> bool:
    return get_origin(tp) is Literal


def _literal(tp: Any) -> Callable[[object, object], object]:
    allowed = get_args(tp)

    def check(value: object, _: object = None) -> object:
        if value not in allowed:
            choices = ", ".join(repr(a) for a in allowed)
            raise _Problem(f"must be one of {choices}")
        return value

    return check


@cache
def _converter() -> cattrs.Converter:
    converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    for tp, hook in (
        (str, _text),
        (bool, _boolean),
        (Secret, _secret),
        (BaseUrl, _base_url),
        (TenantId, _tenant_id),
        (StoreUrl, _store_url),
        (LedgerUrl, _ledger_url),
        (PositiveFloat, _positive),
        (NonNegativeFloat, _non_negative),
        (PositiveInt, _positive_int),
    ):
        converter.register_structure_hook(tp, hook)
    # Matched by origin: resolving the string annotations makes a Callable equal to, but not
    # identical with, TokenProvider, so a plain membership test would miss the token_provider key.
    converter.register_structure_hook_func(_is_callable_type, _callable)
    converter.register_structure_hook_factory(_is_literal, _literal)
    return converter


def _format(exc: BaseException, tp: type | None) -> str:
    if isinstance(exc, _Problem):
        return str(exc)
    if isinstance(exc, KeyError):
        return "is required"
    if isinstance(exc, ForbiddenExtraKeysError):
        return "\x00" + ",".join(sorted(exc.extra_fields))
    if isinstance(exc, AttributeError | TypeError):
        return "expected a table (mapping)"
    return "invalid value"


def _close_matches(word: str, known: list[str]) -> list[str]:
    import difflib  # only for a configuration with an unknown key

    return difflib.get_close_matches(word, known, n=1)


def _problems(exc: Exception, settings_class: type[Any], prefix: str) -> list[str]:
    problems = []
    for line in transform_error(exc, path="$", format_exception=_format):
        message, _, path = line.rpartition(" @ ")
        key = path.removeprefix("$").removeprefix(".")
        if message.startswith("\x00"):
            owner = _class_at(settings_class, key)
            known = [f.name for f in attrs.fields(owner)] if owner else []
            for extra in message[1:].split(","):
                where = _join(prefix, _join(key, extra))
                hint = _close_matches(extra, known)
                problems.append(
                    f"{where}: unknown key" + (f" (did you mean {hint[0]!r}?)" if hint else "")
                )
        else:
            problems.append(f"{_join(prefix, key) or '(top level)'}: {message}")
    return problems


def _class_at(cls: type[Any], dotted: str) -> type[Any] | None:
    for name in filter(None, dotted.split(".")):
        field_type = attrs.fields_dict(cls)[name].type
        cls = next(
            (a for a in (get_args(field_type) or (field_type,)) if attrs.has(a)),
            None,
        )  # type: ignore[assignment]
        if cls is None:
            return None
    return cls


def _join(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix and key else prefix or key


# -- building ------------------------------------------------------------------------------------


def _settings(
    config: Mapping[str, Any], *, prefix: str = "", environ: Mapping[str, str] | None = None
) -> tuple[type[BaseProvider], ProviderSettings]:
    where = _join(prefix, "provider")
    if not isinstance(config, Mapping):
        raise ConfigurationError(
            f"{prefix or 'configuration'}: expected a mapping, got {type(config).__name__}"
        )
    name = config.get("provider")
    if not isinstance(name, str) or not name:
        known = ", ".join(known_providers())
        raise ConfigurationError(f"{where}: is required (one of: {known})")
    try:
        cls = provider_class(name)
    except LookupError:
        known = ", ".join(known_providers())
        raise ConfigurationError(f"{where}: unknown provider {name!r} (known: {known})") from None
    except Exception as exc:  # a plug-in's module failed to import or lacks the class
        raise ConfigurationError(
            f"{where}: cannot load provider {name!r} ({type(exc).__name__})"
        ) from exc
    problems: list[str] = []
    settings: ProviderSettings | None = None
    data = dict(config)
    try:
        settings = _converter().structure(data, cls.settings_class)
    except ClassValidationError as exc:
        problems.extend(_problems(exc, cls.settings_class, prefix))
    # The checks across keys read the raw values, so that a type error elsewhere hides none of
    # them; a value that is itself invalid was reported above and is skipped here.
    token = _token(data, prefix, environ, problems)
    base_url = _valid(_base_url, data.get("base_url")) or cls.default_base_url
    if base_url is None:
        if data.get("base_url") is None:
            problems.append(f"{_join(prefix, 'base_url')}: is required for {name}")
    elif data.get("allow_insecure_http") in (None, False) and not _secure(base_url):
        problems.append(
            f"{_join(prefix, 'base_url')}: must use https:// (plain http is allowed only for "
            "a loopback host, or with allow_insecure_http = true)"
        )
    if settings is not None:
        problems.extend(_join(prefix, p) for p in cls.check_settings(settings))
        if not problems and token is not None and token is not settings.token:
            settings = attrs.evolve(settings, token=token)
    if problems:
        raise ConfigurationError(problems, provider=name)
    assert settings is not None
    return cls, settings


def _valid(check: Callable[[object], Any], value: object) -> Any:
    """``check(value)``, or None when the value is absent or invalid (reported elsewhere)."""
    if value is None:
        return None
    try:
        return check(value)
    except _Problem:
        return None


def _token(
    data: Mapping[str, Any], prefix: str, environ: Mapping[str, str] | None, problems: list[str]
) -> Secret | None:
    """The token from ``token_env``, if that is the one source; adds what is wrong to problems."""
    checks = {"token": _secret, "token_env": _text, "token_provider": _callable}
    sources = [k for k in checks if data.get(k) is not None]
    if any(_valid(checks[k], data[k]) is None for k in sources):
        return None  # a source's own problem is reported; more about it would be noise
    if len(sources) > 1:
        problems.append(f"{_join(prefix, sources[1])}: set only one of {', '.join(sources)}")
        return None
    if not sources:
        problems.append(f"{_join(prefix, 'token')}: is required (or token_env, token_provider)")
        return None
    token_env = data.get("token_env")
    if not isinstance(token_env, str):
        return None
    value = (os.environ if environ is None else environ).get(token_env)
    # The name is not echoed: a token pasted into token_env by mistake would be.
    if not value:
        problems.append(
            f"{_join(prefix, 'token_env')}: the environment variable it names is not set"
        )
        return None
    try:
        return Secret(value)
    except ValueError as exc:
        problems.append(f"{_join(prefix, 'token_env')}: the environment variable it names: {exc}")
        return None


def _secure(base_url: str) -> bool:
    url = httpx.URL(base_url)
    if url.scheme == "https":
        return True
    host = url.host.lower()
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def from_config(
    config: Mapping[str, Any],
    *,
    client: httpx.Client | None = None,
    async_client: httpx.AsyncClient | None = None,
    environ: Mapping[str, str] | None = None,
) -> BaseProvider:
    """Build the configured provider. Raises :class:`ConfigurationError` listing every problem.

    ``client`` / ``async_client`` are the caller's own httpx clients to use (proxies, mTLS, shared
    pools); ``environ`` replaces ``os.environ`` for ``token_env``.
    """
    cls, settings = _settings(config, environ=environ)
    return cls(settings, client=client, async_client=async_client)


def _env_value(field_type: Any, text: str) -> Any:
    """Parse the text of an environment variable by the type of the key it sets."""
    options = [a for a in get_args(field_type) if a is not type(None)] or [field_type]
    target = options[0]
    while isinstance(target, NewType):
        target = target.__supertype__
    if target is bool:
        lowered = text.strip().lower()
        if lowered in ("1", "true", "yes", "on"):
            return True
        if lowered in ("0", "false", "no", "off"):
            return False
        return text
    if target in (int, float):
        try:
            number = float(text)
        except ValueError:
            return text
        return int(number) if target is int and number.is_integer() else number
    return text


def from_env(
    environ: Mapping[str, str] | None = None,
    *,
    client: httpx.Client | None = None,
    async_client: httpx.AsyncClient | None = None,
) -> BaseProvider:
    """Build the provider named by ``INVITES_PROVIDER`` from ``INVITES_<KEY>`` variables.

    Only known keys are read; numbers and booleans are parsed from their text; an empty variable
    counts as unset. ``environ`` replaces ``os.environ``.
    """
    env = os.environ if environ is None else environ
    name = env.get(ENV_PREFIX + "PROVIDER") or None
    config: dict[str, Any] = {"provider": name}
    if name is not None:
        try:
            settings_class = provider_class(name).settings_class
        except LookupError:
            settings_class = ProviderSettings
        attrs.resolve_types(settings_class)  # annotations are strings until resolved
        for field in attrs.fields(settings_class):
            if field.name in ("provider", "timeouts"):
                continue
            text = env.get(ENV_PREFIX + field.name.upper())
            if text:
                config[field.name] = _env_value(field.type, text)
    try:
        cls, settings = _settings(config, environ=env)
    except ConfigurationError as exc:
        exc.problems = [_env_name(p) for p in exc.problems]
        exc.args = (_env_message(exc),)
        raise
    return cls(settings, client=client, async_client=async_client)


def _env_name(problem: str) -> str:
    key, sep, rest = problem.partition(": ")
    return f"{ENV_PREFIX}{key.upper()}{sep}{rest}" if sep else problem


def _env_message(exc: ConfigurationError) -> str:
    what = f"invalid {exc.provider} configuration" if exc.provider else "invalid configuration"
    return f"{what}: " + "; ".join(exc.problems)


class Profiles(Mapping[str, "BaseProvider"]):
    """Named provider configurations from a TOML file or a mapping.

    Every profile is validated when loaded; a provider is built on first access and then reused.
    ``profiles.default`` is the profile named by the top-level ``default`` key (or the only one).
    """

    def __init__(
        self,
        settings: Mapping[str, tuple[type[BaseProvider], ProviderSettings]],
        default: str | None,
    ) -> None:
        self._settings = dict(settings)
        self._built: dict[str, BaseProvider] = {}
        self.default_name = default

    def __getitem__(self, name: str) -> BaseProvider:
        provider = self._built.get(name)
        if provider is None:
            cls, settings = self._settings[name]
            provider = self._built[name] = cls(settings)
        return provider

    def __iter__(self) -> Iterator[str]:
        return iter(self._settings)

    def __len__(self) -> int:
        return len(self._settings)

    def __repr__(self) -> str:
        return f"Profiles({list(self._settings)!r}, default={self.default_name!r})"

    @property
    def default(self) -> BaseProvider:
        """The default profile's provider."""
        if self.default_name is None:
            raise ConfigurationError("default: no default profile is set")
        return self[self.default_name]

    def close(self) -> None:
        """Close every provider built so far."""
        for provider in self._built.values():
            provider.close()


def load_profiles(
    source: str | os.PathLike[str] | Mapping[str, Any],
    *,
    environ: Mapping[str, str] | None = None,
) -> Profiles:
    """Load ``default = "name"`` and ``[profiles.name]`` tables from a TOML file or a mapping."""
    import tomllib  # only here: a provider built from a mapping never parses TOML

    if isinstance(source, Mapping):
        document: Mapping[str, Any] = source
    else:
        path = Path(source)
        try:
            with path.open("rb") as fh:
                document = tomllib.load(fh)
        except OSError as exc:
            raise ConfigurationError(f"{path}: cannot read ({exc.strerror})") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"{path}: not valid TOML ({exc})") from None
    problems: list[str] = []
    unknown = sorted(set(document) - {"default", "profiles"})
    problems.extend(f"{key}: unknown key" for key in unknown)
    tables = document.get("profiles")
    if not isinstance(tables, Mapping) or not tables:
        problems.append("profiles: at least one [profiles.NAME] table is required")
        tables = {}
    default = document.get("default")
    if default is None and len(tables) == 1:
        default = next(iter(tables))
    if default is not None and default not in tables:
        problems.append(f"default: no profile named {default!r}")
    loaded: dict[str, tuple[type[BaseProvider], ProviderSettings]] = {}
    for name, table in tables.items():
        try:
            loaded[name] = _settings(table, prefix=f"profiles.{name}", environ=environ)
        except ConfigurationError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigurationError(problems)
    return Profiles(loaded, default if isinstance(default, str) else None)
