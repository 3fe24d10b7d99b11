"""The credential a provider sends: a fixed token, or one fetched and cached until a 401."""

from __future__ import annotations

import inspect
import json
import threading
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Final

import httpx

from ._secret import Secret
from ._settings import TokenProvider
from .errors import AuthenticationFailed, InviteError

if TYPE_CHECKING:
    from concurrent.futures import Future

__all__ = ["Credentials"]

_REDACTED: Final = "<redacted>"
_REDACTED_BYTES: Final = b"<redacted>"


class Credentials:
    """The current token: fixed, or fetched from a token provider and cached until a 401."""

    def __init__(self, token: Secret | None, source: TokenProvider | None) -> None:
        self.current = token
        self.source = source
        # Every token handed out (a static one, then each refresh), for scrubbing errors.
        self._used: list[Secret] = [token] if token is not None else []
        self._needles = _needles(self._used)
        # Held by a blocking refresh for its whole length: blocking callers share one refresh.
        self._lock = threading.Lock()
        # The async refresh in flight, from any thread and event loop: async callers await it
        # instead of a lock, which would belong to one loop.
        self._pending: Future[None] | None = None
        self._pending_lock = threading.Lock()

    def refresh(self, stale: Secret | None) -> None:
        """Replace ``stale`` (None: no token yet) with a new token, unless another caller did."""
        with self._lock:
            if self.current is not stale:
                return  # another caller refreshed it meanwhile
            value = self._call()
            if inspect.isawaitable(value):
                _close_awaitable(value)
                raise AuthenticationFailed(
                    "the token provider returned an awaitable; use aresend_invite with it"
                )
            self._use(value)

    async def arefresh(self, stale: Secret | None) -> None:
        """:meth:`refresh` from async code; the token provider may return an awaitable.

        Callers in every thread and event loop share one refresh in flight; when it fails, the
        next of them tries again.
        """
        import asyncio  # loaded already: this runs in an event loop
        from concurrent.futures import Future  # loaded with asyncio

        while True:
            with self._pending_lock:
                if self.current is not stale:
                    return
                pending = self._pending
                if pending is None:
                    pending = self._pending = Future()
                    pending.set_running_or_notify_cancel()  # a waiter's cancel cannot cancel it
                    break
            await asyncio.wrap_future(pending)
        try:
            value = self._call()
            if inspect.isawaitable(value):
                try:
                    value = await value
                except Exception as exc:
                    raise _provider_failed(exc) from exc
            self._use(value)
        finally:
            with self._pending_lock:
                self._pending = None
            pending.set_result(None)

    def scrubbed(self, response: httpx.Response) -> httpx.Response:
        """``response``, or a copy whose body and reason phrase hold no token this provider used.

        The vendor's text is scrubbed where it enters, before a flow reads it or an error clips
        it: every field filled from it (message, code, trace id, details, body excerpt) is clean,
        and the library's own words are never touched. Also found JSON-escaped (``\\``, ``\\"``,
        ``\\/``).
        """
        content = response.content
        reason = response.extensions.get("reason_phrase", b"")
        for needle in self._needles:
            if needle in content or needle in reason:
                break
        else:
            return response
        for needle in self._needles:
            content = content.replace(needle, _REDACTED_BYTES)
            reason = reason.replace(needle, _REDACTED_BYTES)
        headers = response.headers.copy()
        headers["content-length"] = str(len(content))
        return httpx.Response(
            response.status_code,
            headers=headers,
            content=content,
            request=response.request,
            extensions={**response.extensions, "reason_phrase": reason},
        )

    def scrub(self, error: InviteError) -> None:
        """Remove any token this provider has used from the fields only a vendor fills.

        A second line behind :meth:`scrubbed`, for vendor text that came from elsewhere than the
        body; the message is left alone, as it also holds the library's own words.
        """
        for token in self._used:
            value = token.reveal()
            if error.vendor_code is not None and value in error.vendor_code:
                error.vendor_code = error.vendor_code.replace(value, _REDACTED)
            if error.request_id is not None and value in error.request_id:
                error.request_id = error.request_id.replace(value, _REDACTED)
            if value in repr(error.details):
                error.details = _scrubbed(error.details, value)

    def _use(self, value: object) -> None:
        self.current = _secret(value)
        self._used = [*self._used[-3:], self.current]
        self._needles = _needles(self._used)

    def _call(self) -> object:
        assert self.source is not None
        try:
            return self.source()
        except Exception as exc:
            raise _provider_failed(exc) from exc


def _secret(value: object) -> Secret:
    if not isinstance(value, str) or not value:
        raise AuthenticationFailed("the token provider returned no token (a non-empty str)")
    try:
        return Secret(value)
    except ValueError as exc:
        raise AuthenticationFailed("the token provider returned an unusable token") from exc


def _needles(tokens: list[Secret]) -> tuple[bytes, ...]:
    """Every spelling of the tokens in a body: as they are and JSON-escaped, longest first."""
    found: set[bytes] = set()
    for token in tokens:
        value = token.reveal()
        escaped = json.dumps(value)[1:-1]
        found.update(form.encode("ascii") for form in (value, escaped, escaped.replace("/", "\\/")))
    return tuple(sorted(found, key=len, reverse=True))


def _scrubbed(value: Any, secret: str) -> Any:
    if isinstance(value, str):
        return value.replace(secret, _REDACTED)
    if isinstance(value, dict):
        return {key: _scrubbed(item, secret) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrubbed(item, secret) for item in value]
    return value


def _provider_failed(exc: Exception) -> AuthenticationFailed:
    return AuthenticationFailed(f"the token provider failed: {type(exc).__name__}")


def _close_awaitable(value: Awaitable[Any]) -> None:
    close = getattr(value, "close", None)
    if callable(close):
        close()
