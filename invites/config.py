"""Build a provider from configuration: a mapping, environment variables or TOML profiles.

The settings classes check their own values when built; :mod:`invites._settings.structuring`
structures a mapping into them with cattrs and walks cattrs' structured errors for key paths. Every
problem is reported at once, in one :class:`ConfigurationError`, each with its key path. Values are
never echoed.
"""

from __future__ import annotations

import os
import re
import typing
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import httpx

from ._settings.fields import ProviderSettings, with_token
from ._settings.secret import Secret
from ._settings.structuring import (
    AnySettings,
    Problem,
    Spell,
    as_key,
    close_match,
    join_path,
    structure,
)
from .errors import ConfigurationError
from .registry import provider_class

if typing.TYPE_CHECKING:
    from ._delivery.provider import BaseProvider

__all__ = ["Profiles", "from_config", "from_env", "load_profiles"]

ENV_PREFIX = "INVITES_"
#: Variables under the prefix that are no key: the live tests' and the test suite's own.
NOT_KEYS = (
    "INVITES_LIVE_",
    "INVITES_REQUIRE_SERVICES",
    "INVITES_SEEDS_DIR",
    "INVITES_MPT_PYTHON",
)
_CONVENTIONAL = re.compile(r"[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*")


def _variable(key: str) -> str:
    return ENV_PREFIX + key.upper()


# -- building ------------------------------------------------------------------------------------


def _provider(
    settings: ProviderSettings,
    environ: Mapping[str, str] | None,
    *,
    path: str = "",
    spell: Spell = as_key,
    **clients: Any,
) -> BaseProvider:
    """The provider for ``settings``, its token read now from the variable ``token_env`` names."""
    name = settings.token_env
    if name is not None and settings.token is None:
        # Named only when spelt as variables conventionally are (upper case, at most 64): a token
        # pasted here could pass as a name, and would be echoed.
        shown = name if len(name) <= 64 and _CONVENTIONAL.fullmatch(name) else "it names"
        where = f"{spell(join_path(path, 'token_env'))}: the environment variable {shown}"
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
    settings = structure(config, AnySettings)
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
    settings = structure(config, AnySettings, spell=_variable, from_text=True)
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

    def settings(self, name: str) -> ProviderSettings:
        """Profile ``name``'s checked settings, without building it (its token is not read)."""
        return self._settings[name]

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
        Problem(key, "unknown key", close_match(key, ["default", "profiles"])).text(as_key)
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
        settings = structure(tables, dict[str, AnySettings])
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
