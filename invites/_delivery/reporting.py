"""What the engine tells the outside about each attempt: the ``invites`` log and ``on_attempt``.

Never headers, bodies, tokens or invitation URLs: only the vendor, method, path, status or
transport error, attempt number and timing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping

import attrs
import httpx

from .._settings.fields import AttemptHook
from .answers import segment

__all__ = ["AttemptEvent", "Reporter", "route_ids", "route_template"]

logger = logging.getLogger("invites")


@attrs.frozen(slots=True)
class AttemptEvent:
    """What happened in one attempt, for metrics and tracing (see ``on_attempt``).

    ``status_code`` is None when no answer came (``error`` then names the transport failure);
    ``will_retry`` says whether another attempt follows, after ``wait`` seconds. ``path`` is the
    concrete path; ``route`` the same path with ``{user_id}`` (and ``{account_id}``, ...) in
    place of the ids, a bounded label for metrics.
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
    route: str = ""


def route_template(path: str, user_id: str, ids: tuple[tuple[str, str], ...] = ()) -> str:
    """``path`` (percent-encoded) with ``{user_id}`` in place of the user's segment (the last
    one that names it) and ``{name}`` in place of each segment that ``ids`` maps to a name."""
    parts = path.split("/")
    user = segment(user_id)
    for index in range(len(parts) - 1, 0, -1):
        if parts[index] == user:
            parts[index] = "{user_id}"
            break
    for encoded, name in ids:
        parts = [name if part == encoded else part for part in parts]
    return "/".join(parts)


def route_ids(settings: object) -> dict[str, str]:
    """The ids a provider's settings put in its paths: each field marked ``identity`` (an
    account id), by name."""
    kind = type(settings)
    if not attrs.has(kind):
        return {}
    ids: dict[str, str] = {}
    for field in attrs.fields(kind):
        value = getattr(settings, field.name)
        if field.metadata.get("identity") and isinstance(value, str) and value:
            ids[field.name] = value
    return ids


class Reporter:
    """Reports one provider's attempts as DEBUG records and ``AttemptEvent`` objects."""

    __slots__ = ("hook", "ids", "name")

    def __init__(
        self, name: str, hook: AttemptHook | None, route_ids: Mapping[str, str] | None = None
    ) -> None:
        self.name = name
        self.hook = hook
        # The provider's own ids in its paths (an account id), as they appear there.
        self.ids = tuple((segment(value), f"{{{key}}}") for key, value in (route_ids or {}).items())

    def route(self, request: httpx.Request, user_id: str) -> str:
        """The request's path as a route template: no user or account id in it."""
        path = request.url.raw_path.decode("ascii").partition("?")[0]
        return route_template(path, user_id, self.ids)

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
        route = self.route(request, user_id)
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
                    "route": route,
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
                route=route,
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
        # INFO: the resend's outcome record follows, a WARNING.
        logger.info(
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
