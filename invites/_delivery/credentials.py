"""The credential a provider sends: a fixed token, or one fetched and cached until a 401."""

from __future__ import annotations

import inspect
import re
import threading
from collections.abc import Awaitable
from typing import TYPE_CHECKING, Any, Final

import httpx

from .._settings.fields import TokenProvider
from .._settings.secret import Secret
from ..errors import AuthenticationFailed, InviteError

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
        self._spellings = _spellings(self._used)
        self._literals = _literals(self._used)
        self._shortest = _shortest(self._used)
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
        and the library's own words are never touched. Found in any spelling that decodes to the
        token, or to it in another case: as it is, JSON-escaped (``\\"``, ``\\/``, ``\\u002B``
        in either case of hex, any mix of them) or percent-encoded.
        """
        content = response.content
        reason = response.extensions.get("reason_phrase", b"")
        spellings = self._spellings
        mentioned = self._mentioned
        if spellings is None or not (mentioned(content) or (reason and mentioned(reason))):
            return response
        content = spellings[0].sub(_REDACTED_BYTES, content)
        reason = spellings[0].sub(_REDACTED_BYTES, reason)
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
        if self._spellings is None:
            return
        pattern = self._spellings[1]
        if error.vendor_code is not None:
            error.vendor_code = pattern.sub(_REDACTED, error.vendor_code)
        if error.request_id is not None:
            error.request_id = pattern.sub(_REDACTED, error.request_id)
        if pattern.search(repr(error.details)):
            error.details = _scrubbed(error.details, pattern)

    def _mentioned(self, text: bytes) -> bool:
        """Whether ``text`` holds a token this provider used, in any spelling that decodes to it.

        Every spelling but the token itself starts with ``\\`` or ``%``: text holding neither
        can only hold the token as it is, in some case, which a plain search finds far quicker
        than the pattern. No spelling is shorter than the token itself, so a shorter text (a
        reason phrase, an empty object) holds none.
        """
        if len(text) < self._shortest:
            return False
        if b"\\" in text or b"%" in text:
            assert self._spellings is not None
            return self._spellings[0].search(text) is not None
        lowered = text.lower()  # ASCII letters only, as the bytes pattern's IGNORECASE
        # A loop: any() over a generator costs 0.3 µs more, a regex search more on a long body.
        for literal in self._literals:  # noqa: SIM110
            if literal in lowered:
                return True
        return False

    def _use(self, value: object) -> None:
        self.current = _secret(value)
        self._used = [*self._used[-3:], self.current]
        self._literals = _literals(self._used)
        self._spellings = _spellings(self._used)
        self._shortest = _shortest(self._used)

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


def _spellings(tokens: list[Secret]) -> tuple[re.Pattern[bytes], re.Pattern[str]] | None:
    """Patterns finding every token in any spelling that decodes to it, in any case.

    One alternation per character: its JSON escape ``\\uXXXX`` (hex in either case, for both
    cases of a letter), its short JSON escape (``\\"``, ``\\\\``, ``\\/``), its percent-encoding,
    then the character itself. Matched case-insensitively, so an upper-cased echo is found.
    """
    if not tokens:
        return None
    forms = sorted({token.reveal() for token in tokens}, key=len, reverse=True)
    text = "|".join("".join(_spelling(char) for char in form) for form in forms)
    return re.compile(text.encode("ascii"), re.IGNORECASE), re.compile(text, re.IGNORECASE)


def _literals(tokens: list[Secret]) -> tuple[bytes, ...]:
    """Every token as it is, lower-cased: what :meth:`Credentials._mentioned` looks for first."""
    return tuple({token.reveal().lower().encode("ascii") for token in tokens})


def _shortest(tokens: list[Secret]) -> int:
    """The length of the shortest token: what no text shorter than it can hold."""
    return min((len(token.reveal()) for token in tokens), default=0)


def _spelling(char: str) -> str:
    # The escapes before the character itself: a backslash is where its own escapes begin, and
    # an alternation takes the first that matches, so the whole escape goes, never half of it.
    codes = {f"{ord(form):04x}" for form in (char, char.lower(), char.upper())}
    ways = [f"\\\\u{code}" for code in sorted(codes)]
    if char in '"\\/':
        ways.append(re.escape("\\" + char))
    if not char.isalnum():
        ways.append(f"%{ord(char):02x}")
    ways.append(re.escape(char))
    return f"(?:{'|'.join(ways)})"


def _scrubbed(value: Any, pattern: re.Pattern[str]) -> Any:
    if isinstance(value, str):
        return pattern.sub(_REDACTED, value)
    if isinstance(value, dict):
        return {key: _scrubbed(item, pattern) for key, item in value.items()}
    if isinstance(value, list):
        return [_scrubbed(item, pattern) for item in value]
    return value


def _provider_failed(exc: Exception) -> AuthenticationFailed:
    return AuthenticationFailed(f"the token provider failed: {type(exc).__name__}")


def _close_awaitable(value: Awaitable[Any]) -> None:
    close = getattr(value, "close", None)
    if callable(close):
        close()
