"""The sans-I/O delivery engine: one vendor flow, wrapped in the delivery policy, as actions.

A vendor's flow yields :class:`Call` objects and receives ``httpx.Response`` objects. The engine
wraps each call in pacing, token refresh, retries and reporting, and yields named actions
(:class:`Send`, :class:`Sleep`, :class:`Refresh`, :class:`Reserve`, :class:`PausedFor`,
:class:`Pause`, :class:`Observe`) for a driver to perform with blocking or asynchronous I/O. The
driver sends each action's result back: the answer or transport failure for :class:`Send`,
seconds for :class:`Reserve` and :class:`PausedFor`, None otherwise; or the exception the action
raised (a failed refresh, an unreachable pacing store), which ends the resend (except for
:class:`Observe`: the answer is in, and it stands).

Whatever ends a resend after a request that may send the invitation left, other than a mapped
:class:`~invites.InviteError` (a plug-in flow's bug, an error inside the HTTP client), ends it
as :class:`~invites.OutcomeUnknown` with that error as its cause: the email may have gone. Before
that, such an error is raised as it is: nothing was sent, and it is a bug to show, not a failure
to report.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Mapping
from typing import Any, Final, TypeAlias

import attrs
import httpx

from ._credentials import Credentials
from ._policy import CONNECT_ERRORS, DECIDED_STATUSES, DELIVER, Decision, RetryPolicy
from ._reporting import AttemptEvent, Reporter
from ._secret import Secret
from ._settings import AttemptHook
from ._telemetry import Watch
from .errors import ConnectionFailed, InviteError, OutcomeUnknown, RateLimited, UnexpectedResponse
from .models import Invitee, ResendResult

__all__ = [
    "Action",
    "AttemptEvent",
    "Call",
    "Engine",
    "Flow",
    "Observe",
    "Pause",
    "PausedFor",
    "Refresh",
    "Reply",
    "Reserve",
    "Send",
    "Sleep",
]


@attrs.frozen(slots=True)
class Call:
    """One request a vendor flow wants made.

    ``reads_only`` marks a request that cannot send an email (a ``GET``): it is also retried when
    its outcome is unknown.
    """

    method: str
    url: str
    json: Any = None
    headers: Mapping[str, str] | None = None
    reads_only: bool = False


#: What a vendor's :meth:`BaseProvider.flow` is.
Flow: TypeAlias = Generator[Call, httpx.Response, ResendResult]


class _Action:
    """An action: equal to another of its kind with equal fields; built once, then only read.

    Plain slotted classes: an attrs class costs about a millisecond of import time to generate,
    and building a frozen one costs more per request than a plain ``__init__``.
    """

    __slots__: tuple[str, ...] = ()

    def _fields(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, _Action)
        return self._fields() == other._fields()

    def __hash__(self) -> int:
        return hash((type(self), self._fields()))

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"{type(self).__name__}({fields})"


class Send(_Action):
    """Send ``request``; reply with the answer read within the limit, or the failure."""

    __slots__ = ("request",)

    def __init__(self, request: httpx.Request) -> None:
        self.request = request


class Sleep(_Action):
    """Wait ``seconds``; reply None."""

    __slots__ = ("seconds",)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds


class Refresh(_Action):
    """Fetch a new token replacing ``stale`` (None when none was ever fetched); reply None."""

    __slots__ = ("stale",)

    def __init__(self, stale: Secret | None) -> None:
        self.stale = stale


class Reserve(_Action):
    """Reserve the pacer's next slot; reply the seconds to wait before sending (below 0: no slot
    was given; ask again after that many seconds)."""

    __slots__ = ()


class PausedFor(_Action):
    """Ask the pacer for the provider-wide pause in force; reply its seconds left (0: none)."""

    __slots__ = ()


class Pause(_Action):
    """Hold every caller of the provider ``seconds`` from now; reply None."""

    __slots__ = ("seconds",)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds


class Observe(_Action):
    """Hand the pacer the vendor's ``response`` to learn from (a pacer that learns); reply None."""

    __slots__ = ("response",)

    def __init__(self, response: httpx.Response) -> None:
        self.response = response


RESERVE: Final = Reserve()
PAUSED_FOR: Final = PausedFor()

Action: TypeAlias = "Send | Sleep | Refresh | Reserve | PausedFor | Pause | Observe"
Reply: TypeAlias = "httpx.Response | Exception | float | None"
#: ``Client.build_request`` of the driver's client: merges its default headers and cookies.
Builder: TypeAlias = Callable[..., httpx.Request]
AuthHeader: TypeAlias = Callable[[str], "tuple[str, str]"]
Steps: TypeAlias = Generator[Action, Reply, ResendResult]


class _Run:
    """One resend in progress: whose, since when, how many requests it has made, and whether one
    that may send the invitation (not a read) may have reached the vendor."""

    __slots__ = ("attempts", "may_have_sent", "started", "user_id", "watch")

    def __init__(self, user_id: str, started: float, watch: Watch | None) -> None:
        self.user_id = user_id
        self.started = started
        self.attempts = 0
        self.may_have_sent = False
        self.watch = watch


#: Replies to a Send that prove the request never left.
_UNSENT: Final = (*CONNECT_ERRORS, ConnectionFailed)


def _checked(reply: Reply) -> None:
    if isinstance(reply, Exception):
        raise reply


def _seconds(reply: Reply) -> float:
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
        # Headers every request carries (User-Agent, Accept); a call's own headers override them.
        self._default_headers = dict(headers or {})
        self.policy = policy
        self.credentials = credentials
        # Given to each request as httpx's "timeout" request extension, which its transports
        # read: cheaper than build_request(timeout=...), which rebuilds a Timeout every time.
        self._timeout = timeout.as_dict()
        self.clock = clock
        self.report = Reporter(name, on_attempt, route_ids)
        # True while pacing could only answer "no pause, send now": the pacing actions are then
        # skipped (None: the pacer cannot tell, so it is always asked).
        self._pacing_idle = pacing_idle
        # The pacer reads every answer (Observe): a learned rate, a vendor's announced budget.
        self._pacing_learns = pacing_learns
        # The last headers built: (the call's headers, the token, the merged headers). The
        # credential header is built once per token, not on every attempt.
        self._headers: tuple[Mapping[str, str] | None, Secret, dict[str, str]] | None = None

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
        run = _Run(invitee.user_id, self.clock(), watch if watch and watch.trace else None)
        calls = flow(invitee)
        try:
            call = next(calls)
            while True:
                try:
                    response = yield from self._exchange(call, run, build, auth_header)
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
                exc.user_id = run.user_id
            if exc.attempts is None:
                exc.attempts = run.attempts
            self.credentials.scrub(exc)
            raise
        except Exception as exc:
            if not run.may_have_sent:
                raise  # nothing that could send the invitation left: a bug, shown as it is
            raise OutcomeUnknown(
                f"the resend failed ({type(exc).__name__}) after a request that may send the "
                "invitation left; the invitation may or may not have been sent",
                provider=self.name,
                user_id=run.user_id,
                attempts=run.attempts,
            ) from exc
        finally:
            calls.close()
            if watch is not None:
                watch.attempts += run.attempts
                watch.engaged = True

    def _exchange(
        self, call: Call, run: _Run, build: Builder, auth_header: AuthHeader
    ) -> Generator[Action, Reply, httpx.Response]:
        """Make one call under the delivery policy; return the answer the vendor should read.

        The common case takes no clock reading and no policy decision: an answer with a status
        the policy always delivers, from a provider reporting nothing, goes straight to the flow.
        """
        credentials = self.credentials
        idle = self._pacing_idle
        report = self.report
        attempt = 0
        refreshed = False
        while True:
            if idle is None or not idle():
                yield from self._paced(call, run, attempt)
            token = credentials.current
            if token is None:
                _checked((yield Refresh(None)))
                token = credentials.current
                assert token is not None
            attempt += 1
            run.attempts += 1
            request = self._build(build, call, self._headers_for(call.headers, token, auth_header))
            span = None if run.watch is None else self._sending(call, request, run, attempt)
            # An attempt is reported when the hook is set or DEBUG records are wanted as it leaves.
            timed = report.active()
            sent_at = self.clock() if timed else 0.0
            reply = yield Send(request)
            run.may_have_sent |= not (call.reads_only or isinstance(reply, _UNSENT))
            if self._pacing_learns and type(reply) is httpx.Response:
                yield Observe(reply)  # a failure to learn leaves the answer as it is
            if type(reply) is httpx.Response and reply.status_code not in DECIDED_STATUSES:
                self._answered(run, span, reply, None)
                took = self.clock() - sent_at if timed else None
                self._report(call, request, run, attempt, reply, took, DELIVER)
                return credentials.scrubbed(reply)
            if isinstance(reply, InviteError):
                self._answered(run, span, reply, None)
                raise reply
            assert isinstance(reply, (httpx.Response, Exception))
            now = self.clock()
            decision = self.policy.decide(
                reply,
                reads_only=call.reads_only,
                attempt=attempt,
                elapsed=now - run.started,
                refreshable=credentials.source is not None and not refreshed,
            )
            elapsed = now - sent_at if timed else None
            self._answered(run, span, reply, decision.wait)
            if decision.refresh:
                # The vendor refused the credential, so nothing was sent: the attempt is not spent.
                refreshed = True
                self._report(call, request, run, attempt, reply, elapsed, decision)
                attempt -= 1
                _checked((yield Refresh(token)))
                continue
            if decision.pause is not None:
                _checked((yield Pause(decision.pause)))
            self._report(call, request, run, attempt, reply, elapsed, decision)
            if decision.wait is None:
                if decision is DELIVER:
                    assert isinstance(reply, httpx.Response)
                    return credentials.scrubbed(reply)
                return self._settle(call, request, run, attempt, reply, decision)
            if decision.pause is None:  # after a pause, the pacing above waits it out
                yield Sleep(decision.wait)

    def _sending(self, call: Call, request: httpx.Request, run: _Run, attempt: int) -> object:
        """Tell the resend's watch an attempt leaves: its span, when attempts are traced."""
        watch = run.watch
        if watch is None or not watch.tracing:
            return None
        return watch.sending(call.method, request, self.report.route(request, run.user_id), attempt)

    def _answered(
        self, run: _Run, span: object, reply: httpx.Response | Exception, wait: float | None
    ) -> None:
        if run.watch is not None:
            run.watch.answered(span, reply, wait)

    def _report(
        self,
        call: Call,
        request: httpx.Request,
        run: _Run,
        attempt: int,
        reply: httpx.Response | Exception,
        elapsed: float | None,
        decision: Decision,
    ) -> None:
        """Report an attempt that was timed (``elapsed`` None: nothing wanted a report)."""
        if elapsed is not None:
            self.report.attempt(
                call.method, request, run.user_id, attempt, reply, elapsed, decision.wait
            )

    def _paced(self, call: Call, run: _Run, attempt: int) -> Generator[Action, Reply, None]:
        """Ask the pacer before an attempt; wait when a pause or the pace holds the caller."""
        paused = yield PAUSED_FOR
        wait = 0.0 if paused else (yield RESERVE)
        if paused or wait:  # anything else, an error too, is for the slow path to judge
            yield from self._pace(call, run, attempt, _seconds(paused), _seconds(wait))

    def _pace(
        self, call: Call, run: _Run, attempt: int, paused: float, wait: float
    ) -> Generator[Action, Reply, None]:
        """Wait out a pause in force (``paused``) or for a reserved slot (``wait``; below 0: none
        was given, ask again after ``-wait`` s).

        Raise RateLimited, with nothing sent, when a pause is longer than the policy may wait.
        """
        while True:
            if paused > 0:
                if not self.policy.may_pause(paused, self.clock() - run.started):
                    self.report.give_up(
                        call.method, httpx.URL(call.url).path, run.user_id, attempt, "paused"
                    )
                    raise RateLimited(
                        f"the vendor asked to pause for {paused:.0f} s, longer than "
                        "max_retry_after or the deadline allows; nothing was sent",
                        provider=self.name,
                        user_id=run.user_id,
                        retry_after=paused,
                        attempts=run.attempts,
                    )
                wait = _seconds((yield RESERVE))
            if wait == 0:
                return
            if run.watch is not None:
                run.watch.paced(abs(wait))
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

    def _headers_for(
        self, extra: Mapping[str, str] | None, token: Secret, auth_header: AuthHeader
    ) -> dict[str, str]:
        """The call's headers with the credential's; never mutated (httpx copies them)."""
        last = self._headers
        if last is not None and last[0] is extra and last[1] is token:
            return last[2]
        name, value = auth_header(token.reveal())
        headers = dict(self._default_headers)
        if extra:
            given = {key.lower() for key in extra}
            headers = {key: text for key, text in headers.items() if key.lower() not in given}
            headers.update(extra)
        headers[name] = value
        self._headers = (extra, token, headers)
        return headers

    def _build(self, build: Builder, call: Call, headers: dict[str, str]) -> httpx.Request:
        # The timeouts also apply over a caller's own client.
        extensions = {"timeout": self._timeout.copy()}
        try:
            return build(
                call.method, call.url, json=call.json, headers=headers, extensions=extensions
            )
        except (UnicodeError, httpx.InvalidURL) as exc:
            # e.g. a cookie a vendor set in the caller's own client that cannot be sent back
            raise UnexpectedResponse(
                f"the request could not be built ({type(exc).__name__}); nothing was sent"
            ) from exc

    def _settle(
        self,
        call: Call,
        request: httpx.Request,
        run: _Run,
        attempt: int,
        reply: httpx.Response | Exception,
        decision: Decision,
    ) -> httpx.Response:
        """End the call: the answer for the flow, or the error no retry is left to avoid."""
        if decision.gave_up:
            why = type(reply).__name__
            if isinstance(reply, httpx.Response):
                why = f"HTTP {reply.status_code}"
            self.report.give_up(call.method, request.url.path, run.user_id, attempt, why)
        if isinstance(reply, Exception):
            assert decision.error is not None
            raise decision.error(
                decision.message, provider=self.name, user_id=run.user_id, attempts=run.attempts
            ) from reply
        return self.credentials.scrubbed(reply)
