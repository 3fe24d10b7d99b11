"""The sans-I/O delivery engine: one vendor flow, wrapped in the delivery policy, as actions.

The engine runs a vendor's flow and wraps each call it yields in pacing, token refresh, retries
and reporting, yielding actions for a driver to perform (the words:
:mod:`invites._delivery.actions`). Each attempt waits for the pace, sends, and is judged by
:meth:`RetryPolicy.decide`::

    DELIVER          the flow reads the answer
    refresh          Refresh the token, then the same attempt again (not counted)
    pause            Pause every caller of the provider; then as below
    wait None        no attempt follows: raise the error, or the flow reads (and maps) the answer
    wait             Sleep (after a pause: the next attempt's pacing waits it out); next attempt

An action that fails (a refresh, an unreachable pacing store) raises its error where the engine
receives it and ends the resend, except Observe: the answer is in, and it stands.

Whatever ends a resend after a request that may send the invitation left, other than a mapped
:class:`~invites.InviteError` (a plug-in flow's bug, an error inside the HTTP client), ends it
as :class:`~invites.OutcomeUnknown` with that error as its cause: the email may have gone. Before
that, such an error is raised as it is: nothing was sent, and it is a bug to show, not a failure
to report.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from typing import Final, NamedTuple

import httpx

from .._settings.fields import AttemptHook
from .._settings.secret import Secret
from .._telemetry import Watch
from ..errors import ConnectionFailed, InviteError, OutcomeUnknown, RateLimited
from ..models import Invitee, ResendResult
from .actions import (
    PAUSED_FOR,
    RESERVE,
    Action,
    AuthHeader,
    Builder,
    Call,
    Flow,
    Observe,
    Pause,
    Refresh,
    Reply,
    Send,
    Sleep,
    Steps,
)
from .credentials import Credentials
from .policy import CONNECT_ERRORS, DECIDED_STATUSES, DELIVER, Decision, RetryPolicy
from .reporting import Reporter
from .requests import Requests

__all__ = ["Engine"]


class _Resend:
    """One resend in progress: whose, since when, how many requests it has made, and whether one
    that may send the invitation (not a read) may have reached the vendor."""

    __slots__ = ("attempts", "may_have_sent", "started", "user_id", "watch")

    def __init__(self, user_id: str, started: float, watch: Watch | None) -> None:
        self.user_id = user_id
        self.started = started
        self.attempts = 0
        self.may_have_sent = False
        self.watch = watch


class _Attempt(NamedTuple):
    """One attempt at a call, as it went: its number among the call's attempts (a refreshed
    token's repeat keeps it), the token and request, the reply, when it left (None: not timed,
    nothing wants a report) and its span."""

    call: Call
    number: int
    token: Secret
    request: httpx.Request
    reply: httpx.Response | Exception
    sent_at: float | None
    span: object


#: Replies to a Send that prove the request never left.
_UNSENT: Final = (*CONNECT_ERRORS, ConnectionFailed)


def _checked(reply: Reply) -> None:
    """Raise the error an action ended with (a failed refresh, an unreachable pacing store)."""
    if isinstance(reply, Exception):
        raise reply


def _seconds(reply: Reply) -> float:
    """The seconds a pacing action replied; raise the error it ended with instead."""
    if isinstance(reply, Exception):
        raise reply
    assert isinstance(reply, (int, float))
    return reply


class Engine:
    """Delivery of one provider's resends: its policy, credentials, clock and attempt reports."""

    def __init__(
        self,
        name: str,
        *,
        policy: RetryPolicy,
        credentials: Credentials,
        timeout: httpx.Timeout,
        clock: Callable[[], float],
        on_attempt: AttemptHook | None,
        pacing_idle: Callable[[], bool] | None = None,
        pacing_learns: bool = False,
        headers: Mapping[str, str] | None = None,
        route_ids: Mapping[str, str] | None = None,
    ) -> None:
        self.name = name
        self.policy = policy
        self.credentials = credentials
        self.requests = Requests(timeout, headers)
        self.clock = clock
        self.report = Reporter(name, on_attempt, route_ids)
        # True while pacing could only answer "no pause, send now": the pacing actions are then
        # skipped (None: the pacer cannot tell, so it is always asked).
        self._pacing_idle = pacing_idle
        # The pacer reads every answer (Observe): a learned rate, a vendor's announced budget.
        self._pacing_learns = pacing_learns

    def steps(
        self,
        flow: Callable[[Invitee], Flow],
        invitee: Invitee,
        build: Builder,
        auth_header: AuthHeader,
        watch: Watch | None = None,
    ) -> Steps:
        """Run ``flow(invitee)`` as actions; return its result or raise a completed error.

        ``watch`` hears of each attempt and adds up the attempts made.
        """
        # Attempts are reported only to a watch that records them (OpenTelemetry in use).
        resend = _Resend(invitee.user_id, self.clock(), watch if watch and watch.trace else None)
        calls = flow(invitee)
        try:
            call = next(calls)
            while True:
                try:
                    response = yield from self._exchange(call, resend, build, auth_header)
                except InviteError as exc:
                    # The flow may recover (a failed state read keeps the original refusal).
                    call = calls.throw(exc)
                else:
                    call = calls.send(response)
        except StopIteration as stop:
            result: ResendResult = stop.value
            return result
        except InviteError as exc:
            if exc.provider is None:
                exc.provider = self.name
            if exc.user_id is None:
                exc.user_id = resend.user_id
            if exc.attempts is None:
                exc.attempts = resend.attempts
            self.credentials.scrub(exc)
            raise
        except Exception as exc:
            if not resend.may_have_sent:
                raise  # nothing that could send the invitation left: a bug, shown as it is
            raise OutcomeUnknown(
                f"the resend failed ({type(exc).__name__}) after a request that may send the "
                "invitation left; the invitation may or may not have been sent",
                provider=self.name,
                user_id=resend.user_id,
                attempts=resend.attempts,
            ) from exc
        finally:
            calls.close()
            if watch is not None:
                watch.attempts += resend.attempts
                watch.engaged = True

    def _exchange(
        self, call: Call, resend: _Resend, build: Builder, auth_header: AuthHeader
    ) -> Generator[Action, Reply, httpx.Response]:
        """Make one call under the delivery policy; return the answer the vendor's flow reads.

        Each attempt is made (:meth:`_attempt`) and judged (:meth:`_judge`); then what the policy
        decided is done, in this order: a refreshed token repeats the attempt; a pause holds
        every caller of the provider; with no attempt left the call ends (:meth:`_end`: the
        error, or the answer for the flow); else the next attempt follows a sleep.
        """
        number = 1
        refreshed = False
        while True:
            attempt = yield from self._attempt(call, resend, number, build, auth_header)
            decision = self._judge(attempt, resend, refreshed)
            if decision is DELIVER:
                break
            if decision.refresh:
                # The vendor refused the credential, so nothing was sent: the attempt is not spent.
                refreshed = True
                _checked((yield Refresh(attempt.token)))
                continue
            if decision.pause is not None:
                _checked((yield Pause(decision.pause)))
            if decision.wait is None:
                self._end(attempt, resend, decision)
                break
            if decision.pause is None:  # after a pause, the next attempt's pacing waits it out
                yield Sleep(decision.wait)
            number += 1
        assert isinstance(attempt.reply, httpx.Response)
        return self.credentials.scrubbed(attempt.reply)

    def _attempt(
        self, call: Call, resend: _Resend, number: int, build: Builder, auth_header: AuthHeader
    ) -> Generator[Action, Reply, _Attempt]:
        """Make attempt ``number`` of ``call``: wait for the pace, fetch a first token, send."""
        idle = self._pacing_idle
        if idle is None or not idle():
            yield from self._paced(call, resend, number)
        token = self.credentials.current
        if token is None:
            _checked((yield Refresh(None)))
            token = self.credentials.current
            assert token is not None
        resend.attempts += 1
        request = self.requests.build(build, call, token, auth_header)
        span = None if resend.watch is None else self._sending(call, request, resend, number)
        # An attempt is timed when the hook is set or DEBUG records are wanted as it leaves.
        sent_at = self.clock() if self.report.active() else None
        reply = yield Send(request)
        resend.may_have_sent |= not (call.reads_only or isinstance(reply, _UNSENT))
        if self._pacing_learns and type(reply) is httpx.Response:
            yield Observe(reply)  # a failure to learn leaves the answer as it is
        if isinstance(reply, InviteError):  # raised by the transport (the deadline ran out)
            if resend.watch is not None:
                resend.watch.answered(span, reply, None)
            raise reply
        assert isinstance(reply, (httpx.Response, Exception))
        return _Attempt(call, number, token, request, reply, sent_at, span)

    def _judge(self, attempt: _Attempt, resend: _Resend, refreshed: bool) -> Decision:
        """The policy's decision on the attempt's reply; the attempt is recorded with it (its
        span ends, its report is made).

        The common case takes no clock reading and no policy decision: an answer with a status
        the policy always delivers goes straight to the flow.
        """
        reply = attempt.reply
        sent_at = attempt.sent_at
        if type(reply) is httpx.Response and reply.status_code not in DECIDED_STATUSES:
            decision = DELIVER
            elapsed = None if sent_at is None else self.clock() - sent_at
        else:
            now = self.clock()
            decision = self.policy.decide(
                reply,
                reads_only=attempt.call.reads_only,
                attempt=attempt.number,
                elapsed=now - resend.started,
                refreshable=self.credentials.source is not None and not refreshed,
            )
            elapsed = None if sent_at is None else now - sent_at
        if resend.watch is not None:
            resend.watch.answered(attempt.span, reply, decision.wait)
        if elapsed is not None:
            self.report.attempt(
                attempt.call.method,
                attempt.request,
                resend.user_id,
                attempt.number,
                reply,
                elapsed,
                decision.wait,
            )
        return decision

    def _end(self, attempt: _Attempt, resend: _Resend, decision: Decision) -> None:
        """End a call no attempt follows: raise the error no retry is left to avoid; otherwise
        the answer goes to the flow, which maps it."""
        reply = attempt.reply
        if decision.gave_up:
            why = type(reply).__name__
            if isinstance(reply, httpx.Response):
                why = f"HTTP {reply.status_code}"
            self.report.give_up(
                attempt.call.method, attempt.request.url.path, resend.user_id, attempt.number, why
            )
        if isinstance(reply, Exception):
            assert decision.error is not None
            raise decision.error(
                decision.message,
                provider=self.name,
                user_id=resend.user_id,
                attempts=resend.attempts,
            ) from reply

    def _sending(self, call: Call, request: httpx.Request, resend: _Resend, number: int) -> object:
        """Tell the resend's watch an attempt leaves: its span, when attempts are traced."""
        watch = resend.watch
        if watch is None or not watch.tracing:
            return None
        return watch.sending(
            call.method, request, self.report.route(request, resend.user_id), number
        )

    def _paced(self, call: Call, resend: _Resend, number: int) -> Generator[Action, Reply, None]:
        """Ask the pacer before an attempt; wait when a pause or the pace holds the caller."""
        paused = _seconds((yield PAUSED_FOR))
        wait = 0.0 if paused else _seconds((yield RESERVE))
        if paused or wait:
            yield from self._pace(call, resend, number, paused, wait)

    def _pace(
        self, call: Call, resend: _Resend, number: int, paused: float, wait: float
    ) -> Generator[Action, Reply, None]:
        """Wait out a pause in force (``paused``) or for a reserved slot (``wait``; below 0: none
        was given, ask again after ``-wait`` s).

        Raise RateLimited, with nothing sent, when a pause is longer than the policy may wait.
        """
        while True:
            if paused > 0:
                self._may_wait_out(call, resend, number, paused)
                wait = _seconds((yield RESERVE))
            if wait == 0:
                return
            if resend.watch is not None:
                resend.watch.paced(abs(wait))
            yield Sleep(abs(wait))
            paused = _seconds((yield PAUSED_FOR))
            if paused > 0:
                # A pause began while this caller waited for its slot: that slot is void (every
                # caller holding one would send at once when the pause ends), so take a new one.
                continue
            if wait > 0:
                return
            # No slot was given (a learned pace hands them out only a little ahead): ask again.
            wait = _seconds((yield RESERVE))

    def _may_wait_out(self, call: Call, resend: _Resend, number: int, paused: float) -> None:
        """Raise RateLimited, with nothing sent, when the policy may not wait ``paused`` s."""
        if self.policy.may_pause(paused, self.clock() - resend.started):
            return
        self.report.give_up(call.method, httpx.URL(call.url).path, resend.user_id, number, "paused")
        raise RateLimited(
            f"the vendor asked to pause for {paused:.0f} s, longer than max_retry_after or the "
            "deadline allows; nothing was sent",
            provider=self.name,
            user_id=resend.user_id,
            retry_after=paused,
            attempts=resend.attempts,
        )
