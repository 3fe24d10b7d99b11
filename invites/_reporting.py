"""What the engine tells the outside about each attempt: the ``invites`` log and ``on_attempt``.

Never headers, bodies, tokens or invitation URLs: only the vendor, method, path, status or
transport error, attempt number and timing.
"""

from __future__ import annotations

import logging

import attrs
import httpx

from ._settings import AttemptHook

__all__ = ["AttemptEvent", "Reporter"]

logger = logging.getLogger("invites")


@attrs.frozen(slots=True)
class AttemptEvent:
    """What happened in one attempt, for metrics and tracing (see ``on_attempt``).

    ``status_code`` is None when no answer came (``error`` then names the transport failure);
    ``will_retry`` says whether another attempt follows, after ``wait`` seconds.
    """

    provider: str
    method: str
    path: str
    user_id: str
    attempt: int
    status_code: int | None
    error: str | None
    elapsed_ms: float
    will_retry: bool
    wait: float | None


class Reporter:
    """Reports one provider's attempts as DEBUG records and ``AttemptEvent`` objects."""

    __slots__ = ("hook", "name")

    def __init__(self, name: str, hook: AttemptHook | None) -> None:
        self.name = name
        self.hook = hook

    def active(self) -> bool:
        """Whether an attempt is reported: the hook is set, or DEBUG records are wanted."""
        return self.hook is not None or logger.isEnabledFor(logging.DEBUG)

    def attempt(
        self,
        method: str,
        request: httpx.Request,
        user_id: str,
        attempt: int,
        reply: httpx.Response | Exception,
        elapsed: float,
        wait: float | None,
    ) -> None:
        hook = self.hook
        debug = logger.isEnabledFor(logging.DEBUG)
        if hook is None and not debug:
            return
        status: int | None = None
        error: str | None = None
        if isinstance(reply, httpx.Response):
            status = reply.status_code
        else:
            error = type(reply).__name__
        path = request.url.path
        elapsed_ms = round(elapsed * 1000.0, 3)
        if debug:
            logger.debug(
                "%s %s %s -> %s (attempt %d, %.1f ms)",
                self.name,
                method,
                path,
                status if status is not None else error,
                attempt,
                elapsed_ms,
                extra={
                    "vendor": self.name,
                    "method": method,
                    "path": path,
                    "status_code": status,
                    "error": error,
                    "attempt": attempt,
                    "elapsed_ms": elapsed_ms,
                    "will_retry": wait is not None,
                },
            )
        if hook is not None:
            event = AttemptEvent(
                provider=self.name,
                method=method,
                path=path,
                user_id=user_id,
                attempt=attempt,
                status_code=status,
                error=error,
                elapsed_ms=elapsed_ms,
                will_retry=wait is not None,
                wait=wait,
            )
            self._call(hook, event)

    def _call(self, hook: AttemptHook, event: AttemptEvent) -> None:
        try:
            hook(event)
        except Exception:
            # A metrics hook must never change what becomes of a resend: the request already
            # left. The hook only ever sees the event, so its traceback holds no token and no
            # invitation URL.
            logger.warning(
                "%s %s %s: the on_attempt hook raised; the resend goes on",
                self.name,
                event.method,
                event.path,
                exc_info=True,
                extra={"vendor": self.name, "method": event.method, "path": event.path},
            )

    def give_up(self, method: str, path: str, user_id: str, attempt: int, why: str) -> None:
        logger.warning(
            "%s %s %s: giving up after %d attempt(s): %s",
            self.name,
            method,
            path,
            attempt,
            why,
            extra={
                "vendor": self.name,
                "method": method,
                "path": path,
                "attempt": attempt,
                "error": why,
            },
        )
