"""Testing with invites: a test double for code that uses an :class:`~invites.InviteProvider`,
and a vendor adapter's resend driven by hand, with no network.

>>> fake = FakeProvider(results={"u-2": AlreadyVerified("already verified")})
>>> fake.resend_invite("u-1").user_id
'u-1'
>>> fake.calls
['u-1']

:class:`ResendSteps` runs a real provider's resend (its flow under the delivery policy: pacing,
token refresh, retries) against scripted answers, one action at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Mapping
from typing import Any, TypeAlias

import httpx

from ._delivery.actions import Observe, Pause, PausedFor, Refresh, Reply, Reserve, Send, Sleep
from ._delivery.provider import BaseProvider
from .errors import InviteError
from .models import Invitee, ResendResult, as_invitee

__all__ = ["FakeProvider", "ResendSteps", "Scripted", "Send", "Sleep"]

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


#: A scripted answer to a :class:`Send`: the vendor's response (its request is set to the one
#: sent), a function of the request that returns it, or the transport failure (an
#: ``httpx.TransportError``) the request met.
Scripted: TypeAlias = "httpx.Response | Callable[[httpx.Request], httpx.Response] | Exception"

#: The actions that take no time: :meth:`ResendSteps.advance` performs them.
_QUICK = (PausedFor, Reserve, Pause, Observe, Refresh)


class ResendSteps:
    """One resend of ``provider`` (a vendor adapter) driven by hand, with no network.

    The provider's delivery engine runs its flow under the delivery policy and asks for actions.
    :meth:`advance` hands the engine the reply to the last action it asked for, performs every
    action that takes no time with the provider's own pacer and credentials (pacing questions,
    a provider-wide pause, a token refresh, an answer a learning pacer reads) and returns the next
    one that does: a :class:`Send`, to reply with the vendor's answer to ``send.request`` or the
    transport failure, or a :class:`Sleep`, to reply None once that time has passed on the
    provider's ``clock``. When the resend ends, :meth:`advance` returns None and :attr:`result`
    holds its result; or it raises the resend's error.

    Several of them, advanced in turn, interleave concurrent callers of one provider.
    :meth:`run` plays a whole resend against a script.
    """

    def __init__(self, provider: BaseProvider[Any], invitee: Invitee | str) -> None:
        self.provider = provider
        self.invitee = provider._canonical(invitee)
        self.result: ResendResult | None = None
        #: Every request sent, and every sleep asked for (seconds), in order.
        self.requests: list[httpx.Request] = []
        self.slept: list[float] = []
        self._driver = provider._driver
        self._steps = self._driver.steps(provider.flow, self.invitee, provider.auth_header)

    def advance(self, reply: httpx.Response | Exception | None = None) -> Send | Sleep | None:
        """Reply to the last action; return the next Send or Sleep, or None when it ended."""
        answer: Reply = reply
        try:
            action = self._steps.send(answer)
            while isinstance(action, _QUICK):
                action = self._steps.send(self._driver.perform(action))
        except StopIteration as stop:
            self.result = stop.value
            return None
        if isinstance(action, Send):
            self.requests.append(action.request)
        else:
            self.slept.append(action.seconds)
        return action

    def run(self, script: Iterable[Scripted]) -> ResendResult:
        """Answer each Send with the next scripted answer and skip each Sleep (the provider's
        clock does not move) until the resend ends; return its result or raise its error.

        Raise ``AssertionError`` when the resend sends more requests than the script answers.
        """
        answers = iter(script)
        action = self.advance()
        while action is not None:
            reply: httpx.Response | Exception | None = None
            if isinstance(action, Send):
                scripted = next(answers, None)
                if scripted is None:
                    raise AssertionError(f"the script has no answer for {action.request!r}")
                reply = _answer(scripted, action.request)
            action = self.advance(reply)
        assert self.result is not None
        return self.result


def _answer(scripted: Scripted, request: httpx.Request) -> httpx.Response | Exception:
    answer = scripted if isinstance(scripted, (httpx.Response, Exception)) else scripted(request)
    if isinstance(answer, httpx.Response):
        answer.request = request
    return answer
