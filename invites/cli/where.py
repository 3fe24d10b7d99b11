"""Which ledger a command uses, and opening it: a path, a ``sqlite:///`` or ``postgresql://`` URL
(``--journal``, ``invites ledger ... LEDGER``) or a profile's ``ledger``.

Every text shown names the ledger by :func:`label` (a URL's password replaced by ``***``). A
ledger that cannot be opened is a :class:`~invites.cli.common.UsageError` (exit status 2):
nothing was attempted.
"""

from __future__ import annotations

import contextlib
import os
from urllib.parse import urlsplit

from ..errors import redact_url
from ..ledger import Ledger, RecordKey, open_ledger
from .common import UsageError

__all__ = ["label", "open_target", "probe", "sqlite_path"]


def label(target: str) -> str:
    """``target`` as it may be shown: a URL's password replaced by ``***``."""
    return redact_url(target)


def _password(target: str) -> str | None:
    if "://" not in target:
        return None
    try:
        return urlsplit(target).password
    except ValueError:
        return None


def _scrubbed(target: str, text: str) -> str:
    password = _password(target)
    return text.replace(password, "***") if password else text


def sqlite_path(target: str) -> str | None:
    """The file of a SQLite ledger (a plain path or ``sqlite:///...``); None for a server's."""
    if "://" not in target:
        return target
    if not target.lower().startswith("sqlite:"):
        return None
    from ..ledger._sqlite_file import path_of

    try:
        return path_of(target)
    except ValueError as exc:
        raise UsageError(f"ledger {label(target)}: {exc}") from None


def open_target(target: str, *, must_exist: bool, read_only: bool = False) -> Ledger:
    """The ledger at ``target``; ``must_exist``: a SQLite file that is not there is refused
    instead of created; ``read_only``: it is only read. Any failure to open it is a
    :class:`UsageError`."""
    path = sqlite_path(target)
    if path is not None:
        if os.path.isdir(path):
            raise UsageError(f"ledger {label(target)}: is a directory")
        if must_exist and not os.path.isfile(path):
            raise UsageError(f"{label(target)}: no such ledger file")
    try:
        return open_ledger(target, read_only=read_only)
    except Exception as exc:  # any reason it cannot be opened: nothing is attempted
        why = _scrubbed(target, str(exc) or type(exc).__name__)
        raise UsageError(f"ledger {label(target)} cannot be used: {why}") from None


def probe(ledger: Ledger, target: str, key: RecordKey) -> None:
    """Read ``key`` from ``ledger``: a ledger that cannot answer stops the command up front."""
    try:
        ledger.get(key)
    except Exception as exc:
        with contextlib.suppress(Exception):
            ledger.close()
        why = _scrubbed(target, str(exc) or type(exc).__name__)
        raise UsageError(f"ledger {label(target)} cannot be used: {why}") from None
