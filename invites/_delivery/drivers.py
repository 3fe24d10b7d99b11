"""The engine's two drivers: they perform its actions with blocking or asynchronous I/O.

The engine (:mod:`invites._delivery.engine`) decides what a resend does next; a :class:`Driver` does
it with one provider's parts: its transport sends, its pacer answers, its credentials refresh, its
sleep waits. An action's error goes back to the engine as the reply (the engine knows whether
anything was sent). No vendor and no policy is written twice.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from .._http.clients import Transport
from .._http.deadline import DEADLINE
from .._pacing.local import Learner, Pacer
from .._telemetry import Watch
from ..errors import InviteError
from ..models import Invitee, ResendResult
from .actions import (
    AuthHeader,
    Flow,
    Observe,
    Pause,
    PausedFor,
    Refresh,
    Reply,
    Reserve,
    Send,
    Sleep,
    Steps,
)
from .credentials import Credentials
from .engine import Engine

__all__ = ["Driver", "Quick"]

#: The actions other than Send: a driver performs them itself.
Quick = Sleep | Refresh | Reserve | PausedFor | Pause | Observe


class Driver:
    """Runs one provider's resends through its engine, performing each action with its parts."""

    __slots__ = ("_async_sleep", "_sleep", "credentials", "engine", "learner", "pacer", "transport")

    def __init__(
        self,
        engine: Engine,
        transport: Transport,
        pacer: Pacer,
        learner: Learner | None,
        credentials: Credentials,
        sleep: Callable[[float], None],
        async_sleep: Callable[[float], Awaitable[None]],
    ) -> None:
        self.engine = engine
        self.transport = transport
        self.pacer = pacer
        self.learner = learner
        self.credentials = credentials
        self._sleep = sleep
        self._async_sleep = async_sleep

    def steps(self, flow: Callable[[Invitee], Flow], invitee: Invitee, auth: AuthHeader) -> Steps:
        """The engine's actions for one resend, built with the provider's own client (its default
        headers and cookies apply); nothing is performed."""
        build = self.transport.client().build_request
        return self.engine.steps(flow, invitee, build, auth)

    def resend(
        self,
        flow: Callable[[Invitee], Flow],
        invitee: Invitee,
        auth: AuthHeader,
        watch: Watch,
        deadline: float,
    ) -> ResendResult:
        """Run one resend with blocking I/O; ``deadline``: the seconds it may take in all."""
        # The clients' sockets and body reading end by this instant, whatever the vendor sends.
        token = DEADLINE.set(time.monotonic() + deadline)
        try:
            transport = self.transport
            steps = self.engine.steps(flow, invitee, transport.client().build_request, auth, watch)
            send, perform = transport.send, self.perform
            reply: Reply = None
            while True:
                try:
                    action = steps.send(reply)
                except StopIteration as stop:
                    result: ResendResult = stop.value
                    return result
                reply = send(action.request) if isinstance(action, Send) else perform(action)
        finally:
            DEADLINE.reset(token)

    async def aresend(
        self,
        flow: Callable[[Invitee], Flow],
        invitee: Invitee,
        auth: AuthHeader,
        watch: Watch,
        deadline: float,
    ) -> ResendResult:
        """Run one resend with asynchronous I/O, in the running event loop."""
        token = DEADLINE.set(time.monotonic() + deadline)
        try:
            try:
                client = self.transport.async_client()
            except InviteError as exc:  # a client of another event loop: refused, nothing sent
                exc.provider, exc.user_id, exc.attempts = self.engine.name, invitee.user_id, 0
                raise
            steps = self.engine.steps(flow, invitee, client.build_request, auth, watch)
            send, perform = self.transport.asend, self.aperform
            reply: Reply = None
            while True:
                try:
                    action = steps.send(reply)
                except StopIteration as stop:
                    result: ResendResult = stop.value
                    return result
                reply = await (
                    send(action.request, client) if isinstance(action, Send) else perform(action)
                )
        finally:
            DEADLINE.reset(token)

    def perform(self, action: Quick) -> Reply:
        """Do one action other than Send with blocking I/O; its error is the reply."""
        try:
            if isinstance(action, PausedFor):
                return self.pacer.paused_for()
            if isinstance(action, Reserve):
                return self.pacer.reserve()
            if isinstance(action, Observe):
                assert self.learner is not None
                self.learner.observe(action.response)
            elif isinstance(action, Refresh):
                self.credentials.refresh(action.stale)
            elif isinstance(action, Pause):
                self.pacer.pause(action.seconds)
            else:
                self._sleep(action.seconds)
        except Exception as exc:  # the engine knows whether anything was sent
            return exc
        return None

    async def aperform(self, action: Quick) -> Reply:
        """Do one action other than Send with async I/O; its error is the reply."""
        try:
            if isinstance(action, PausedFor):
                return await self.pacer.apaused_for()
            if isinstance(action, Reserve):
                return await self.pacer.areserve()
            if isinstance(action, Observe):
                assert self.learner is not None
                await self.learner.aobserve(action.response)
            elif isinstance(action, Refresh):
                await self.credentials.arefresh(action.stale)
            elif isinstance(action, Pause):
                await self.pacer.apause(action.seconds)
            else:
                await self._async_sleep(action.seconds)
        except Exception as exc:  # the engine knows whether anything was sent
            return exc
        return None
