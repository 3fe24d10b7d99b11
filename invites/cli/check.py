"""``invites check-config``: validate a profiles file and list its profiles, never a secret; and
the check of one invitee against its vendor's adapter, with no I/O."""

from __future__ import annotations

import warnings
from typing import TextIO

from .._delivery.provider import BaseProvider
from .._protocol import InviteProvider
from ..config import Profiles
from ..errors import InvalidInvitee
from ..models import Invitee
from .common import EXIT_FAILED, EXIT_OK, UsageError, open_profiles, pick_profile

__all__ = ["run", "vendor_problem"]


def _credential(provider: BaseProvider) -> str:
    """Where the profile's credential comes from; never the credential itself."""
    settings = provider.settings
    if settings.token_env is not None:
        return f"from ${settings.token_env}"
    if settings.token_provider is not None:
        return "from a token provider"
    return "set in the file (hidden)"


def run(path: str, profile: str | None, stdout: TextIO, stderr: TextIO) -> int:
    """Print each profile (or only ``profile``): provider, endpoint, where its credential is."""
    profiles = open_profiles(path)
    try:
        names = list(profiles) if profile is None else [profile]
        rows: list[list[str]] = []
        notes: list[str] = []
        for name in names:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                _, provider = pick_profile(profiles, name, path)
            notes.extend(f"{name}: {warning.message}" for warning in caught)
            if not isinstance(provider, BaseProvider):  # pragma: no cover - plug-ins only
                raise UsageError(f"profile {name!r}: not a provider")
            default = " (default)" if name == profiles.default_name else ""
            rows.append([name + default, provider.name, provider.base_url, _credential(provider)])
        widths = [max(len(row[i]) for row in rows) for i in range(3)]
        stdout.write(f"{path}: valid, {len(profiles)} profile{'s' if len(profiles) != 1 else ''}\n")
        for row in rows:
            cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:3])]
            stdout.write(f"  {'  '.join(cells)}  credential {row[3]}\n")
        for note in notes:
            stderr.write(f"invites: note: {note}\n")
        return _check_servers(profiles, names, stdout, stderr)
    finally:
        profiles.close()


def _check_servers(profiles: Profiles, names: list[str], stdout: TextIO, stderr: TextIO) -> int:
    """Ask every server a profile names (ledger, pacing store) whether it answers."""
    from .servers import check_servers

    status = EXIT_OK
    for name in names:
        provider = profiles[name]
        assert isinstance(provider, BaseProvider)
        for what, problem in check_servers(provider):
            if problem is None:
                stdout.write(f"  {name}: {what}: ok\n")
            elif problem.startswith("not checked"):
                stderr.write(f"invites: note: {name}: {what}: {problem}\n")
            else:
                stderr.write(f"invites: {name}: {what}: {problem}\n")
                status = EXIT_FAILED
    return status


def vendor_problem(provider: InviteProvider, invitee: Invitee) -> str | None:
    """Why the vendor's adapter would refuse ``invitee`` before sending anything, if it would.

    A vendor flow checks its invitee before its first request, so running it up to that request
    (which is never made) validates the row without any I/O.
    """
    if not isinstance(provider, BaseProvider):
        return None
    flow = provider.flow(invitee)
    try:
        next(flow)
    except InvalidInvitee as exc:
        return exc.message
    except StopIteration:
        pass
    finally:
        flow.close()
    return None
