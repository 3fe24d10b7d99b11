"""Exit statuses, the usage error and configuration loading shared by the subcommands."""

from __future__ import annotations

from typing import TYPE_CHECKING, Final

from ..config import Profiles, load_profiles
from ..errors import ConfigurationError
from .display import is_terminal

if TYPE_CHECKING:
    from .._delivery.provider import BaseProvider

__all__ = [
    "EXIT_FAILED",
    "EXIT_INTERRUPTED",
    "EXIT_OK",
    "EXIT_TERMINATED",
    "EXIT_USAGE",
    "UsageError",
    "is_terminal",
    "open_profiles",
    "pick_profile",
]

EXIT_OK: Final = 0
"""Every invitee is sent or already verified (or the command did what was asked)."""
EXIT_FAILED: Final = 1
"""At least one invitee failed or has an unknown outcome."""
EXIT_USAGE: Final = 2
"""A usage or configuration error: nothing was attempted."""
EXIT_INTERRUPTED: Final = 130
"""Interrupted (Ctrl-C); the resends in flight were settled and recorded first."""
EXIT_TERMINATED: Final = 143
"""Stopped by SIGTERM; the resends in flight were settled and recorded first."""


class UsageError(Exception):
    """A usage or configuration problem, worded for a person; ends the command with status 2.

    The text never contains a configuration value: it may be a secret.
    """


def open_profiles(path: str) -> Profiles:
    """The profiles in the TOML file at ``path``; every problem becomes one :class:`UsageError`."""
    try:
        return load_profiles(path)
    except ConfigurationError as exc:
        problems = "\n".join(f"  - {problem}" for problem in exc.problems)
        raise UsageError(f"invalid configuration in {path}:\n{problems}") from None


def pick_profile(profiles: Profiles, name: str | None, path: str) -> tuple[str, BaseProvider]:
    """The profile named ``name``, or the file's default one, and its provider."""
    names = ", ".join(profiles)
    if name is None:
        name = profiles.default_name
        if name is None:
            raise UsageError(
                f"{path} has several profiles and no default; choose one with --profile ({names})"
            )
    if name not in profiles:
        raise UsageError(f"{path} has no profile named {name!r} (profiles: {names})")
    try:
        return name, profiles[name]
    except ConfigurationError as exc:
        raise UsageError(f"profile {name!r} in {path}: {exc}") from None
