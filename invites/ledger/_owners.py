"""Whether the process that holds a ledger claim still runs (only knowable on its own host)."""

from __future__ import annotations

import os
import socket
from pathlib import Path

__all__ = ["owner_gone"]


def owner_gone(owner: str) -> bool:
    """Whether the process behind a :func:`~invites.ledger.new_owner` string ran on this host
    and has ended (exited, or killed and not yet reaped); False when that cannot be known."""
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False  # another machine: only its lease can tell
    pid = int(pid_text)
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        pass  # it exists, owned by another user
    return _zombie(pid)


def _zombie(pid: int) -> bool:
    """Whether ``pid`` has exited and only awaits its parent's ``wait`` (Linux ``/proc``)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return False
    # The state follows the parenthesised command name, which may itself hold parentheses.
    return stat.rpartition(")")[2].split()[:1] == ["Z"]
