"""What one resend tells the outside as a whole: one record on the ``invites`` logger, the
provider's ``on_outcome`` hook, and OpenTelemetry spans and metrics.

OpenTelemetry is optional (extra ``otel``, the API only) and imported here alone, lazily: telemetry
is recorded once the application has imported ``opentelemetry.trace`` itself (any SDK set-up
does). A program that does not use OpenTelemetry never loads it; one that loads the API but
configures no SDK records nothing (see :func:`._otel.configured`).

A resend may pass through several entry points: a bulk run's ``resend_one``, the ledger's guard,
the provider's ``resend_invite``. The first one opens a :class:`Watch` (and makes it
:data:`ACTIVE` when another entry point may follow); the others find it and only feed it, so a
resend has one span, one record and one ``on_outcome`` call. The engine feeds the watch through
four calls: :meth:`Watch.sending`, :meth:`Watch.answered`, :meth:`Watch.paced` and the
``attempts`` it adds up.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Awaitable, Callable
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any, Final, Literal

import httpx

from ..errors import InviteError, ResendTooSoon
from ..models import Invitee, OutcomeStatus, ResendResult, outcome_status

if TYPE_CHECKING:
    from ._otel import ResendTrace

__all__ = [
    "ACTIVE",
    "ClaimResult",
    "Watch",
    "claimed",
]

logger = logging.getLogger("invites")

ClaimResult = Literal["granted", "settled", "in_flight", "too_soon", "error"]
#: ``on_outcome``: called with an :class:`invites.bulk.Outcome`.
OutcomeHook = Callable[[Any], None]

#: The watch of the resend in progress in this context, when an entry point that another may
#: follow opened it.
ACTIVE: Final[ContextVar[Watch | None]] = ContextVar("invites_watch", default=None)

_OK: Final = frozenset(("sent", "already_verified"))


_loaded: Any = None  # the OpenTelemetry side once imported; False: it cannot be


def _opentelemetry() -> Any:  # the module, or None
    """The OpenTelemetry side (:mod:`._otel`), or None while the application has not loaded the
    OpenTelemetry API: nothing here imports it first."""
    global _loaded
    if _loaded is None:
        if "opentelemetry.trace" not in sys.modules:
            return None
        try:
            from . import _otel
        except ImportError:  # an API too old for the instruments used
            _loaded = False
        else:
            _loaded = _otel
    return _loaded or None


def claimed(vendor: str, result: ClaimResult) -> None:
    """Count one ledger claim by its result."""
    otel = _opentelemetry()
    if otel is not None:
        otel.claimed(vendor, result)


class Watch:
    """One resend, from its first entry point to its outcome.

    ``attempts`` adds up the requests the engine made for it; ``engaged`` says whether a provider
    ran it at all (False: the ledger settled it).
    """

    __slots__ = ("attempts", "engaged", "hook", "started", "trace", "user_id", "vendor")

    def __init__(self, vendor: str, user_id: str, hook: OutcomeHook | None = None) -> None:
        self.vendor = vendor
        self.user_id = user_id
        self.hook = hook
        self.attempts = 0
        self.engaged = False
        self.started = 0.0
        self.trace: ResendTrace | None = None

    def start(self) -> Watch:
        """Start the clock and, with OpenTelemetry, the resend's span (current until the end)."""
        self.started = time.monotonic()
        if "opentelemetry.trace" in sys.modules:  # else nothing to load: see _opentelemetry
            otel = _opentelemetry()
            if otel is not None and otel.configured():
                self.trace = otel.ResendTrace(self.vendor, self.user_id)
        return self

    # -- what the engine reports ---------------------------------------------------------------

    @property
    def tracing(self) -> bool:
        """Whether attempts get spans of their own (an SDK is configured and samples)."""
        trace = self.trace
        return trace is not None and trace.tracing

    def sending(self, method: str, request: httpx.Request, route: str, attempt: int) -> object:
        """An attempt leaves: its span (None when not tracing); ``traceparent`` joins the
        request's headers."""
        trace = self.trace
        if trace is None or not trace.tracing:
            return None
        return trace.sending(method, request, route, attempt)

    def answered(self, span: object, reply: httpx.Response | Exception, wait: float | None) -> None:
        """An attempt ended with ``reply``; another follows after ``wait`` seconds unless None."""
        trace = self.trace
        if trace is not None:
            trace.answered(span, reply, wait)

    def paced(self, seconds: float) -> None:
        """The attempt about to leave waits ``seconds`` for the pace or a provider-wide pause."""
        trace = self.trace
        if trace is not None:
            trace.paced(seconds)

    # -- the outcome -----------------------------------------------------------------------------

    def watching(
        self, invitee: Invitee, send: Callable[[], ResendResult], *, nested: bool = False
    ) -> ResendResult:
        """``send()``, its outcome reported; ``nested``: the watch is :data:`ACTIVE` meanwhile,
        for the entry point ``send`` calls."""
        self.start()
        active = ACTIVE.set(self) if nested else None
        try:
            result = send()
        except BaseException as exc:
            self.raised(invitee, exc, skipped=not self.engaged)
            raise
        finally:
            if active is not None:
                ACTIVE.reset(active)
        self.sent(invitee, result, skipped=not self.engaged)
        return result

    async def awatching(
        self,
        invitee: Invitee,
        sending: Awaitable[ResendResult],
        *,
        nested: bool = False,
    ) -> ResendResult:
        """:meth:`watching` for async code: ``sending`` is the resend, not yet awaited."""
        self.start()
        active = ACTIVE.set(self) if nested else None
        try:
            result = await sending
        except BaseException as exc:
            self.raised(invitee, exc, skipped=not self.engaged)
            raise
        finally:
            if active is not None:
                ACTIVE.reset(active)
        self.sent(invitee, result, skipped=not self.engaged)
        return result

    def sent(self, invitee: Invitee, result: ResendResult, *, skipped: bool = False) -> None:
        if self.trace is None and self.hook is None and not logger.isEnabledFor(logging.INFO):
            return  # the common case of a program that watches nothing: nothing to build
        self.end("sent", invitee=invitee, result=result, skipped=skipped)

    def raised(self, invitee: Invitee, error: BaseException, *, skipped: bool = False) -> None:
        self.end(outcome_status(error), invitee=invitee, error=error, skipped=skipped)

    def end(
        self,
        status: OutcomeStatus,
        *,
        invitee: Invitee | None = None,
        result: ResendResult | None = None,
        error: BaseException | None = None,
        skipped: bool = False,
        outcome: object = None,
    ) -> None:
        """Report the outcome: once, by the entry point that opened the watch.

        ``outcome`` is the :class:`~invites.bulk.Outcome` when the caller has one already.
        """
        elapsed = time.monotonic() - self.started
        if result is not None:
            request_id = result.request_id
        else:
            request_id = error.request_id if isinstance(error, InviteError) else None
        _log(self, status, elapsed, request_id, error, skipped)
        trace = self.trace
        if trace is not None:
            trace.end(status, elapsed, self.attempts, result, error, skipped, request_id)
        if self.hook is not None:
            if outcome is None:
                outcome = _outcome(self.user_id, status, invitee, result, error, skipped)
            _call(self.hook, outcome, self.vendor)


def _log(
    watch: Watch,
    status: OutcomeStatus,
    elapsed: float,
    request_id: str | None,
    error: BaseException | None,
    skipped: bool,
) -> None:
    # A resend the per-user budget refused is the budget doing its job, not a failure to warn of.
    too_soon = isinstance(error, ResendTooSoon)
    level = logging.INFO if status in _OK or too_soon else logging.WARNING
    if not logger.isEnabledFor(level):
        return
    elapsed_ms = round(elapsed * 1000.0, 3)
    error_type = None if error is None else type(error).__name__
    why = "" if error_type is None or status == "already_verified" else f" ({error_type})"
    logger.log(
        level,
        "%s resend to %s: %s%s after %d attempt(s), %.1f ms%s",
        watch.vendor,
        watch.user_id,
        status,
        why,
        watch.attempts,
        elapsed_ms,
        ", not sent (per_user_limit)"
        if too_soon
        else ", settled earlier (ledger)"
        if skipped
        else "",
        extra={
            "vendor": watch.vendor,
            "outcome": status,
            "user_id": watch.user_id,
            "attempts": watch.attempts,
            "request_id": request_id,
            "elapsed_ms": elapsed_ms,
            "skipped": skipped,
            "error_type": error_type,
            "status_code": error.status_code if isinstance(error, InviteError) else None,
            "vendor_code": error.vendor_code if isinstance(error, InviteError) else None,
        },
    )


def _outcome(
    user_id: str,
    status: OutcomeStatus,
    invitee: Invitee | None,
    result: ResendResult | None,
    error: BaseException | None,
    skipped: bool,
) -> object:
    from .._outcome import Outcome  # loaded only for a provider with an on_outcome hook

    return Outcome(
        invitee=invitee,
        user_id=user_id,
        status=status,
        result=result,
        error=error,
        skipped=skipped,
    )


def _call(hook: OutcomeHook, outcome: object, vendor: str) -> None:
    try:
        hook(outcome)
    except Exception:
        # As for on_attempt: a reporting hook never changes what becomes of the resend.
        logger.warning(
            "%s: the on_outcome hook raised; the outcome stands",
            vendor,
            exc_info=True,
            extra={"vendor": vendor},
        )
