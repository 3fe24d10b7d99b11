"""A test double for code that uses an :class:`~invites.InviteProvider`.

>>> fake = FakeProvider(results={"u-2": AlreadyVerified("already verified")})
>>> fake.resend_invite("u-1").user_id
'u-1'
>>> fake.calls
['u-1']
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

from .errors import InviteError
from .models import Invitee, ResendResult, as_invitee

__all__ = ["FakeProvider"]

Script = ResendResult | InviteError | Callable[[Invitee], ResendResult]


class FakeProvider:
    """Records every resend and answers from a script; satisfies ``InviteProvider``.

    ``results`` maps a user id to what its resend gives: a :class:`ResendResult` to return, an
    :class:`InviteError` to raise (its ``provider`` and ``user_id`` are filled in), or a callable
    taking the :class:`Invitee`. Ids not in the script succeed. ``calls`` lists the user ids in
    call order, ``invitees`` the invitees; ``closed`` tells whether ``close``/``aclose`` ran.
    Once closed, it refuses resends with ``RuntimeError``, as a provider does.
    """

    def __init__(self, results: Mapping[str, Script] | None = None, *, name: str = "fake") -> None:
        self.name = name
        self.results = dict(results or {})
        self.invitees: list[Invitee] = []
        self.closed = False
        self._lock = threading.Lock()

    @property
    def calls(self) -> list[str]:
        """User ids resent to, in call order."""
        return [invitee.user_id for invitee in self.invitees]

    def resend_invite(self, invitee: Invitee | str) -> ResendResult:
        """Record the call and answer from the script."""
        if self.closed:
            raise RuntimeError(f"cannot resend, as the provider {self.name!r} has been closed")
        invitee = as_invitee(invitee)
        with self._lock:
            self.invitees.append(invitee)
        scripted = self.results.get(invitee.user_id)
        if scripted is None:
            return ResendResult(provider=self.name, user_id=invitee.user_id, message="sent")
        if isinstance(scripted, InviteError):
            if scripted.provider is None:
                scripted.provider = self.name
            if scripted.user_id is None:
                scripted.user_id = invitee.user_id
            raise scripted
        if isinstance(scripted, ResendResult):
            return scripted
        return scripted(invitee)

    async def aresend_invite(self, invitee: Invitee | str) -> ResendResult:
        """Async twin of :meth:`resend_invite`."""
        return self.resend_invite(invitee)

    def close(self) -> None:
        self.closed = True

    async def aclose(self) -> None:
        self.closed = True

    def __enter__(self) -> FakeProvider:
        if self.closed:
            raise RuntimeError(f"the provider {self.name!r} has been closed")
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
