"""Whether the process that holds a ledger claim still runs (only knowable on its own host)."""

from __future__ import annotations

import os
import socket
import weakref
from pathlib import Path

__all__ = ["owned_by", "owner_alive", "owner_gone"]

# The owners of this process whose claimer still exists, each to its claimer.
_LIVE: weakref.WeakValueDictionary[str, object] = weakref.WeakValueDictionary()


def owned_by(owner: str, claimer: object) -> None:
    """Record that ``claimer`` claims as ``owner`` for as long as it exists."""
    _LIVE[owner] = claimer


def owner_alive(owner: str) -> bool:
    """Whether the claimer behind ``owner`` is known to run: on this host, its process runs
    (and, for this very process, the object claiming as it still exists). False when that cannot
    be known (another host, an owner not made by :func:`~invites.ledger.new_owner`).

    A live owner's intent is never taken over, whatever its lease says: the lease is wall-clock
    time, and a clock set ahead must not let a second process send what the first is sending. A
    reused process id reads alive too, which errs on the side of sending nothing.
    """
    host, _, rest = owner.partition(":")
    pid_text = rest.partition(":")[0]
    if host != socket.gethostname() or not pid_text.isdigit():
        return False
    if int(pid_text) == os.getpid():
        return owner in _LIVE
    return not owner_gone(owner)


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
