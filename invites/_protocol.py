"""The interface every provider satisfies, built-in, plug-in or test double."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from .models import Invitee, ResendResult

__all__ = ["InviteProvider"]


@runtime_checkable
class InviteProvider(Protocol):
    """Something that can resend an invitation, sync or async, and be closed.

    ``resend_invite`` returns a :class:`ResendResult` or raises an :class:`InviteError` subclass.
    """

    @property
    def name(self) -> str:
        """The provider's configuration name, e.g. ``"ecosuite"``."""
        ...

    def resend_invite(self, invitee: Invitee | str) -> ResendResult:
        """Resend the invitation, blocking."""
        ...

    async def aresend_invite(self, invitee: Invitee | str) -> ResendResult:
        """Resend the invitation from async code."""
        ...

    def close(self) -> None:
        """Release the provider's connections."""
        ...

    async def aclose(self) -> None:
        """Release the provider's connections from async code."""
        ...
