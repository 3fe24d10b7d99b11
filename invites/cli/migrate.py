"""``invites ledger migrate URL``: create a ledger's schema ahead of the first run."""

from __future__ import annotations

from typing import TextIO

from ..errors import ConfigurationError, InviteError, redact_url
from .common import EXIT_FAILED, EXIT_OK, UsageError

__all__ = ["run"]


def run(url: str, stdout: TextIO, stderr: TextIO) -> int:
    """Open the ledger at ``url`` (which creates what is missing) and close it."""
    from ..ledger import open_ledger

    shown = redact_url(url)
    try:
        ledger = open_ledger(url)
    except ConfigurationError as exc:
        raise UsageError(str(exc)) from None
    except InviteError as exc:
        stderr.write(f"invites: {redact_url(str(exc))}\n")
        return EXIT_FAILED
    migrate = getattr(ledger, "migrate", None)
    try:
        if callable(migrate):
            migrate()
    except InviteError as exc:
        stderr.write(f"invites: {redact_url(str(exc))}\n")
        return EXIT_FAILED
    finally:
        ledger.close()
    stdout.write(f"ledger {shown}: schema ready\n")
    return EXIT_OK
