"""Build a provider from configuration: a mapping, environment variables or TOML profiles.

The settings classes check their own values when built; this module structures a mapping into
them with cattrs and walks cattrs' structured errors for key paths. Every problem is reported at
once, in one :class:`ConfigurationError`, each with its key path. Values are never echoed.
"""

from __future__ import annotations

import os
import re
import types
import typing
from collections.abc import Callable, Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any, NamedTuple, NewType

import attrs
import cattrs
import httpx
from cattrs.errors import (
    AttributeValidationNote,
    BaseValidationError,
    ClassValidationError,
    ForbiddenExtraKeysError,
    IterableValidationNote,
)
from cattrs.gen import make_dict_structure_fn

from ._secret import Secret
from ._settings import Invalid, ProviderSettings, with_token
from .errors import ConfigurationError
from .registry import known_providers, provider_class

if typing.TYPE_CHECKING:
    from ._base import BaseProvider

__all__ = ["Profiles", "from_config", "from_env", "load_profiles"]

ENV_PREFIX = "INVITES_"
#: Variables under the prefix that are no key: the live tests' and the test suite's own.
NOT_KEYS = ("INVITES_LIVE_", "INVITES_REQUIRE_SERVICES", "INVITES_SEEDS_DIR")
_CONVENTIONAL = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*")

#: Settings of whichever provider the mapping's ``provider`` key names.
_AnySettings = NewType("_AnySettings", ProviderSettings)
_Spell = Callable[[str], str]


class _Problem(NamedTuple):
    path: str
    what: str
    hint: str | None = None

    def text(self, spell: _Spell) -> str:
        hint = f" (did you mean {spell(self.hint)!r}?)" if self.hint else ""
        return f"{spell(self.path) if self.path else 'configuration'}: {self.what}{hint}"


def _key(key: str) -> str:
    return key


def _variable(key: str) -> str:
    return ENV_PREFIX + key.upper()


# -- structuring ---------------------------------------------------------------------------------


@cache
def _converter(from_text: bool = False) -> cattrs.Converter:
    """Values go to the settings classes as given (or parsed from text) for them to check."""
    converter = cattrs.Converter(forbid_extra_keys=True, detailed_validation=True)
    leaf = _parsed if from_text else _as_given
    converter.register_structure_hook_func(lambda tp: not _holds_attrs(tp), leaf)
    for tp in (str, bytes, int, float, bool, Path):  # dispatched before predicates
        converter.register_structure_hook(tp, leaf)
    converter.register_structure_hook_factory(attrs.has, _every_problem)
    converter.register_structure_hook_func(
        lambda tp: tp is _AnySettings, lambda data, _: _by_provider(converter, data)
    )
    return converter


def _holds_attrs(tp: Any) -> bool:
    return any(
        t is _AnySettings or (isinstance(t, type) and attrs.has(t))
        for t in (tp, *typing.get_args(tp))
    )


def _as_given(value: object, _: object) -> object:
    return value


def _parsed(value: object, tp: Any) -> object:
    """An environment variable's text as the number or boolean its key takes; else unchanged."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        tp = next((a for a in typing.get_args(tp) if a is not type(None)), tp)
    if not isinstance(value, str) or tp not in (bool, int, float):
        return value
    word = value.strip().lower()
    if tp is bool:
        return {"1": True, "true": True, "yes": True, "on": True, "0": False, "false": False,
                "no": False, "off": False}.get(word, value)  # fmt: skip
    try:
        number = float(word)
    except ValueError:
        return value
    return int(number) if tp is int and number.is_integer() else number


def _every_problem(cls: type, converter: cattrs.Converter) -> Callable[[Any, Any], Any]:
    """cattrs' structuring of ``cls``, which also checks the values beside bad or unknown keys.

    cattrs builds the object only when every key is sound; then, for a report of every problem,
    the object is built once more from the sound keys alone, so that it checks their values.
    """
    structure: Callable[[Any, Any], Any] = make_dict_structure_fn(cls, converter)

    def hook(data: Any, _: Any) -> Any:
        try:
            return structure(data, cls)
        except ClassValidationError as exc:
            shapes = [_shape_keys(sub) for sub in exc.exceptions]
            if not all(shapes):
                raise  # built and refused by the class itself: its own report is complete
            bad = set().union(*shapes)
            try:
                structure({k: v for k, v in data.items() if k not in bad}, cls)
            except ClassValidationError as more:
                found = [*more.exceptions, *exc.exceptions]
                raise ClassValidationError(exc.message, found, cls) from None
            raise

    return hook


def _shape_keys(exc: BaseException) -> set[str]:
    """The keys a failure of structure (not of value) concerns; empty for any other failure."""
    if isinstance(exc, ForbiddenExtraKeysError):
        return set(exc.extra_fields)
    return {n.name for n in getattr(exc, "__notes__", ()) if isinstance(n, AttributeValidationNote)}


def _by_provider(converter: cattrs.Converter, data: object) -> ProviderSettings:
    if not isinstance(data, Mapping):
        raise Invalid(f"expected a mapping, got {type(data).__name__}")
    name = data.get("provider")
    try:
        cls = _settings_class(name)
    except ConfigurationError as trouble:
        # Still check the keys every provider shares; of the others, flag only near-misses.
        rest = {k: v for k, v in data.items() if k != "provider"}
        try:
            converter.structure(rest, ProviderSettings)
        except ClassValidationError as exc:
            found = [_near_misses(sub) for sub in exc.exceptions]
            found_all = [trouble, *filter(None, found)]
            raise ClassValidationError("", found_all, ProviderSettings) from None
        raise ClassValidationError("", [trouble], ProviderSettings) from None
    return converter.structure(data, cls)


def _settings_class(name: object) -> type[ProviderSettings]:
    if not isinstance(name, str) or not name:
        raise ConfigurationError(f"provider: is required (one of: {', '.join(known_providers())})")
    try:
        settings_class = getattr(provider_class(name), "settings_class", None)
    except LookupError:
        shown = f" {name!r}" if name.isidentifier() else ""
        known = ", ".join(known_providers())
        raise ConfigurationError(f"provider: unknown provider{shown} (known: {known})") from None
    except Exception as exc:  # a plug-in's module failed to import or lacks the class
        why = type(exc).__name__
        raise ConfigurationError(f"provider: cannot load provider {name!r} ({why})") from exc
    if not (isinstance(settings_class, type) and issubclass(settings_class, ProviderSettings)):
        raise ConfigurationError(f"provider: cannot load provider {name!r} (not a provider)")
    return settings_class


def _near_misses(exc: Exception) -> Exception | None:
    if not (isinstance(exc, ForbiddenExtraKeysError) and exc.cl is ProviderSettings):
        return exc
    known = [f.name for f in attrs.fields(ProviderSettings)]
    typos = {k for k in exc.extra_fields if _close_match(str(k), known)}
    return ForbiddenExtraKeysError("", exc.cl, typos) if typos else None


def _close_match(word: str, known: list[str]) -> str | None:
    import difflib  # only for a configuration with an unknown key

    return next(iter(difflib.get_close_matches(word, known, n=1)), None)


def _walk(exc: BaseException, path: str = "") -> Iterator[_Problem]:
    """Every problem in a (nested) structuring error, with its key path."""
    if isinstance(exc, BaseValidationError):
        for sub in exc.exceptions:
            yield from _walk(sub, _join(path, _step(sub)))
    elif isinstance(exc, ForbiddenExtraKeysError):
        known = [f.name for f in attrs.fields(exc.cl)]
        for key in sorted(map(str, exc.extra_fields)):
            yield _Problem(_join(path, key), "unknown key", _close_match(key, known))
    elif isinstance(exc, ConfigurationError):
        for problem in exc.problems:  # "key: what", as the settings classes word them
            key, _, what = problem.partition(": ")
            yield _Problem(_join(path, key), what)
    elif isinstance(exc, Invalid):
        yield from (_Problem(path, str(what)) for what in exc.args)
    elif isinstance(exc, KeyError):  # a key declared without a default, and not given
        yield _Problem(path, "is required")
    elif isinstance(exc, AttributeError | TypeError):  # a nested table that is not a mapping
        yield _Problem(path, "expected a table (mapping)")
    else:
        yield _Problem(path, "invalid value")


def _step(exc: BaseException) -> str:
    for note in getattr(exc, "__notes__", ()):
        if isinstance(note, AttributeValidationNote):
            return note.name
        if isinstance(note, IterableValidationNote):
            return str(note.index)
    return ""


def _join(path: str, key: str) -> str:
    return f"{path}.{key}" if path and key else path or key


def _structure(data: object, tp: Any, *, spell: _Spell = _key, from_text: bool = False) -> Any:
    try:
        return _converter(from_text).structure(data, tp)
    except (BaseValidationError, ConfigurationError, Invalid) as exc:
        name = data.get("provider") if isinstance(data, Mapping) else None
        provider = name if isinstance(name, str) and name in known_providers() else None
        # A missing key fails both of _every_problem's attempts: report it once.
        problems = list(dict.fromkeys(p.text(spell) for p in _walk(exc)))
        raise ConfigurationError(problems, provider=provider) from None


# -- building ------------------------------------------------------------------------------------


def _provider(
    settings: ProviderSettings,
    environ: Mapping[str, str] | None,
    *,
    path: str = "",
    spell: _Spell = _key,
    **clients: Any,
) -> BaseProvider:
    """The provider for ``settings``, its token read now from the variable ``token_env`` names."""
    name = settings.token_env
    if name is not None and settings.token is None:
        # Named only when spelt as variables conventionally are (upper case, at most 64): a token
        # pasted here could pass as a name, and would be echoed.
        shown = name if len(name) <= 64 and _CONVENTIONAL.fullmatch(name) else "it names"
        where = f"{spell(_join(path, 'token_env'))}: the environment variable {shown}"
        value = (os.environ if environ is None else environ).get(name)
        if not value:
            raise ConfigurationError(f"{where} is not set", provider=settings.provider)
        try:
            settings = with_token(settings, Secret(value))
        except ValueError as exc:
            problem = f"{where} holds an unusable token: {exc}"
            raise ConfigurationError(problem, provider=settings.provider) from None
    return provider_class(settings.provider)(settings, **clients)


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
    settings = _structure(config, _AnySettings)
    return _provider(settings, environ, client=client, async_client=async_client)


def from_env(
    environ: Mapping[str, str] | None = None,
    *,
    client: httpx.Client | None = None,
    async_client: httpx.AsyncClient | None = None,
) -> BaseProvider:
    """Build the provider named by ``INVITES_PROVIDER`` from ``INVITES_<KEY>`` variables.

    Numbers and booleans are parsed from their text; an empty variable counts as unset. Any other
    ``INVITES_`` variable is reported as unknown, except those in :data:`NOT_KEYS` and the one
    ``INVITES_TOKEN_ENV`` names. ``environ`` replaces ``os.environ``.
    """
    env = os.environ if environ is None else environ
    token_variable = env.get(ENV_PREFIX + "TOKEN_ENV")
    config = {
        name.removeprefix(ENV_PREFIX).lower(): text
        for name, text in env.items()
        if name.startswith(ENV_PREFIX) and text
        if not name.startswith(NOT_KEYS) and name != token_variable
    }
    settings = _structure(config, _AnySettings, spell=_variable, from_text=True)
    return _provider(settings, env, spell=_variable, client=client, async_client=async_client)


class Profiles(Mapping[str, "BaseProvider"]):
    """Named provider configurations from a TOML file or a mapping.

    Every profile is validated when loaded; a provider is built on first access (reading its
    ``token_env`` variable then) and reused. ``profiles.default`` is the profile named by the
    top-level ``default`` key (or the only one). As a context manager, it closes what it built.
    """

    def __init__(
        self,
        settings: Mapping[str, ProviderSettings],
        default: str | None = None,
        *,
        environ: Mapping[str, str] | None = None,
    ) -> None:
        self._settings = dict(settings)
        self._built: dict[str, BaseProvider] = {}
        self._environ = environ
        self.default_name = default

    def __getitem__(self, name: str) -> BaseProvider:
        provider = self._built.get(name)
        if provider is None:
            settings = self._settings[name]
            path = f"profiles.{name}"
            provider = self._built[name] = _provider(settings, self._environ, path=path)
        return provider

    def __contains__(self, name: object) -> bool:
        return name in self._settings  # without building: Mapping's own would

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

    async def aclose(self) -> None:
        """Close every provider built so far, and its async client."""
        for provider in self._built.values():
            await provider.aclose()

    def __enter__(self) -> Profiles:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> Profiles:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()


def load_profiles(
    source: str | os.PathLike[str] | Mapping[str, Any],
    *,
    environ: Mapping[str, str] | None = None,
) -> Profiles:
    """Load ``default = "name"`` and ``[profiles.name]`` tables from a TOML file or a mapping.

    Every profile is checked now; the variable a profile's ``token_env`` names is read only when
    that profile is first used.
    """
    document = source if isinstance(source, Mapping) else _read_toml(Path(source))
    problems = [
        _Problem(key, "unknown key", _close_match(key, ["default", "profiles"])).text(_key)
        for key in sorted(map(str, set(document) - {"default", "profiles"}))
    ]
    tables = document.get("profiles")
    if not isinstance(tables, Mapping) or not tables:
        problems.append("profiles: at least one [profiles.NAME] table is required")
        tables = {}
    default = document.get("default")
    if default is None and len(tables) == 1:
        default = next(iter(tables))
    if default is not None and not isinstance(default, str):
        problems.append(f"default: expected a profile name, got {type(default).__name__}")
    elif default is not None and default not in tables:
        problems.append(f"default: no profile named {default!r}")
    settings: dict[str, ProviderSettings] = {}
    try:
        settings = _structure(tables, dict[str, _AnySettings])
    except ConfigurationError as exc:
        problems.extend(f"profiles.{problem}" for problem in exc.problems)
    if problems:
        raise ConfigurationError(problems)
    return Profiles(settings, default, environ=environ)


def _read_toml(path: Path) -> Mapping[str, Any]:
    import tomllib  # only here: a provider built from a mapping never parses TOML

    try:
        with path.open("rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot read ({exc.strerror})") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{path}: not valid TOML ({exc})") from None
