"""The machinery every vendor shares: one sans-I/O flow, a sync and an async driver.

A vendor adapter subclasses :class:`BaseProvider` and writes only :meth:`BaseProvider.flow`, a
generator that yields :class:`Call` objects and receives ``httpx.Response`` objects, raising a
mapped :class:`~invites.InviteError` or returning a :class:`~invites.ResendResult`. The shared
:meth:`BaseProvider._exchange` generator wraps each call in the delivery policy (pace, retries,
token refresh, logging) and yields plain actions; the two drivers perform them with blocking or
asynchronous I/O. No vendor and no policy is written twice.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Generator, Mapping
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import TYPE_CHECKING, Any, ClassVar, Final, TypeAlias

import attrs
import httpx

from ._policy import RetryPolicy, Throttle, parse_retry_after
from ._secret import Secret
from ._settings import ProviderSettings, TokenProvider
from .errors import (
    AuthenticationFailed,
    ConnectionFailed,
    InviteError,
    OutcomeUnknown,
    RateLimited,
    UnexpectedResponse,
)
from .models import Invitee, ResendResult, as_invitee

if TYPE_CHECKING:
    import asyncio

    from .ledger import Ledger
    from .ledger._guard import ProviderLedger

__all__ = ["AttemptEvent", "BaseProvider", "Call", "Flow"]

logger = logging.getLogger("invites")

#: Bodies larger than this are refused unread.
BODY_LIMIT: Final = 1024 * 1024

_CONNECT_ERRORS = (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout)


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


class _Refresh:
    """Action: fetch a new token, replacing ``stale`` (None when none was ever fetched)."""

    __slots__ = ("stale",)

    def __init__(self, stale: Secret | None) -> None:
        self.stale = stale


_Action: TypeAlias = "httpx.Request | float | _Refresh"
_Reply: TypeAlias = "httpx.Response | Exception | None"
#: ``Client.build_request`` of the driver's client: merges its default headers and cookies.
_Builder: TypeAlias = Callable[..., httpx.Request]


class _Credentials:
    """The current token: fixed, or fetched from a token provider and cached until a 401."""

    def __init__(self, token: Secret | None, source: TokenProvider | None) -> None:
        self.current = token
        self.source = source
        # Every token handed out (a static one, then each refresh), for scrubbing errors.
        self._used: list[Secret] = [token] if token is not None else []
        self._lock = threading.Lock()
        self._async_lock: asyncio.Lock | None = None

    def refresh(self, stale: Secret | None) -> None:
        with self._lock:
            if self.current is not stale:
                return  # another caller refreshed it meanwhile
            value = self._call()
            if inspect.isawaitable(value):
                _close_awaitable(value)
                raise AuthenticationFailed(
                    "the token provider returned an awaitable; use aresend_invite with it"
                )
            self.current = self._secret(value)
            self._used = [*self._used[-3:], self.current]

    async def arefresh(self, stale: Secret | None) -> None:
        if self._async_lock is None:
            import asyncio  # loaded already: this runs in an event loop

            self._async_lock = asyncio.Lock()
        async with self._async_lock:
            if self.current is not stale:
                return
            value = self._call()
            if inspect.isawaitable(value):
                try:
                    value = await value
                except Exception as exc:
                    raise _provider_failed(exc) from exc
            self.current = self._secret(value)
            self._used = [*self._used[-3:], self.current]

    def scrub(self, error: InviteError) -> None:
        """Remove any token this provider has used from an error a vendor's answer filled in."""
        for token in self._used:
            value = token.reveal()
            if value in error.message or value in repr(error.details):
                error.message = error.message.replace(value, "<redacted>")
                error.args = (error.message,)
                error.details = _scrubbed(error.details, value)

    def _call(self) -> object:
        assert self.source is not None
        try:
            return self.source()
        except Exception as exc:
            raise _provider_failed(exc) from exc

    @staticmethod
    def _secret(value: object) -> Secret:
        if not isinstance(value, str) or not value:
            raise AuthenticationFailed("the token provider returned no token (a non-empty str)")
        try:
            return Secret(value)
        except ValueError as exc:
            raise AuthenticationFailed("the token provider returned an unusable token") from exc


def _scrubbed(value: Any, secret: str) -> Any:
    if isinstance(value, str):
        return value.replace(secret, "<redacted>")
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


async def _asyncio_sleep(seconds: float) -> None:
    """``asyncio.sleep``, imported when first awaited: synchronous programs never load asyncio."""
    import asyncio

    await asyncio.sleep(seconds)


class BaseProvider:
    """Shared base of every vendor adapter. Satisfies :class:`invites.InviteProvider`.

    Subclasses set :attr:`name`, :attr:`settings_class`, optionally :attr:`default_base_url`,
    implement :meth:`flow`, and override :meth:`auth_header` when the vendor does not take
    ``Authorization: Bearer``. ``client`` / ``async_client`` inject the caller's own httpx clients
    (the configured timeouts still apply per request); otherwise the provider creates and owns them.
    ``clock``, ``sleep`` and ``async_sleep`` exist for tests that must not wait for real.
    ``ledger`` (or the ``ledger`` setting, a path or URL) records resends made with an
    ``idempotency_key``: see :mod:`invites.ledger`.
    """

    name: ClassVar[str]
    settings_class: ClassVar[type[ProviderSettings]] = ProviderSettings
    default_base_url: ClassVar[str | None] = None

    def __init__(
        self,
        settings: ProviderSettings,
        *,
        client: httpx.Client | None = None,
        async_client: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
        async_sleep: Callable[[float], Awaitable[None]] = _asyncio_sleep,
        ledger: Ledger | None = None,
    ) -> None:
        self.settings = settings
        base_url = settings.base_url or self.default_base_url
        if base_url is None:
            raise TypeError(f"{self.name}: base_url is required")
        self.base_url = base_url.rstrip("/")
        self._client = client
        self._async_client = async_client
        self._owns_client = client is None
        self._owns_async_client = async_client is None
        self._client_lock = threading.Lock()
        self._timeout = _timeout(settings)
        self._credentials = _Credentials(settings.token, settings.token_provider)
        self._policy = RetryPolicy(
            max_attempts=settings.max_attempts,
            deadline=settings.deadline,
            max_retry_after=settings.max_retry_after,
            retry_unknown=settings.retry_unknown,
        )
        self._throttle = Throttle(settings.rate_limit, clock=clock)
        self._on_attempt = settings.on_attempt
        self._clock = clock
        self._sleep = sleep
        self._async_sleep = async_sleep
        self._ledger = _provider_ledger(settings, ledger)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(base_url={self.base_url!r})"

    # -- what a vendor writes ------------------------------------------------------------------

    @classmethod
    def check_settings(cls, settings: ProviderSettings) -> list[str]:
        """Problems with a combination of settings, as ``"key: what is wrong"`` lines."""
        return []

    def flow(self, invitee: Invitee) -> Flow:
        """Yield the calls a resend needs and return its result; raise mapped errors."""
        raise NotImplementedError

    def auth_header(self, token: str) -> tuple[str, str]:
        """The header that carries the credential."""
        return ("Authorization", "Bearer " + token)

    # -- public API ------------------------------------------------------------------------------

    def resend_invite(
        self, invitee: Invitee | str, *, idempotency_key: str | None = None
    ) -> ResendResult:
        """Resend the invitation, blocking. Raises an :class:`~invites.InviteError` subclass.

        With ``idempotency_key`` (needs a ledger), the resend is sent at most once for that key:
        a later call with it returns the recorded result or raises the recorded error.
        """
        if idempotency_key is not None:
            ledger = _needs_ledger(self._ledger)
            return ledger.resend(self, idempotency_key, as_invitee(invitee), self.resend_invite)
        steps = self._steps(as_invitee(invitee), self._sync_client().build_request)
        reply: _Reply = None
        while True:
            try:
                action = steps.send(reply)
            except StopIteration as stop:
                result: ResendResult = stop.value
                return result
            if isinstance(action, httpx.Request):
                reply = self._send(action)
            elif isinstance(action, _Refresh):
                reply = self._run_refresh(self._credentials.refresh, action)
            else:
                self._sleep(action)
                reply = None

    async def aresend_invite(
        self, invitee: Invitee | str, *, idempotency_key: str | None = None
    ) -> ResendResult:
        """Resend the invitation from async code. Same contract as :meth:`resend_invite`."""
        if idempotency_key is not None:
            ledger = _needs_ledger(self._ledger)
            invitee = as_invitee(invitee)
            return await ledger.aresend(self, idempotency_key, invitee, self.aresend_invite)
        steps = self._steps(as_invitee(invitee), self._async_client_().build_request)
        reply: _Reply = None
        while True:
            try:
                action = steps.send(reply)
            except StopIteration as stop:
                result: ResendResult = stop.value
                return result
            if isinstance(action, httpx.Request):
                reply = await self._asend(action)
            elif isinstance(action, _Refresh):
                try:
                    await self._credentials.arefresh(action.stale)
                    reply = None
                except InviteError as exc:
                    reply = exc
            else:
                await self._async_sleep(action)
                reply = None

    def close(self) -> None:
        """Close the sync client (and the ledger) if this provider created it."""
        if self._client is not None and self._owns_client:
            self._client.close()
            self._client = None
        if self._ledger is not None:
            self._ledger.close()

    async def aclose(self) -> None:
        """Close both clients this provider created."""
        if self._async_client is not None and self._owns_async_client:
            await self._async_client.aclose()
            self._async_client = None
        self.close()

    def __enter__(self) -> BaseProvider:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> BaseProvider:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # -- the shared flow ------------------------------------------------------------------------

    def _steps(
        self, invitee: Invitee, build: _Builder | None = None
    ) -> Generator[_Action, _Reply, ResendResult]:
        if build is None:
            build = self._sync_client().build_request
        started = self._clock()
        attempts = [0]
        flow = self.flow(invitee)
        try:
            call = next(flow)
            while True:
                try:
                    response = yield from self._exchange(
                        call, invitee.user_id, started, attempts, build
                    )
                except InviteError as exc:
                    # The flow may recover (a failed state read keeps the original refusal).
                    call = flow.throw(exc)
                else:
                    call = flow.send(response)
        except StopIteration as stop:
            result: ResendResult = stop.value
            return result
        except InviteError as exc:
            if exc.provider is None:
                exc.provider = self.name
            if exc.user_id is None:
                exc.user_id = invitee.user_id
            if exc.attempts is None:
                exc.attempts = attempts[0]
            self._credentials.scrub(exc)
            raise
        finally:
            flow.close()

    def _exchange(
        self, call: Call, user_id: str, started: float, attempts: list[int], build: _Builder
    ) -> Generator[_Action, _Reply, httpx.Response]:
        """Make one call under the delivery policy; return the answer the vendor should read."""
        policy = self._policy
        credentials = self._credentials
        throttle = self._throttle
        headers = dict(call.headers) if call.headers else {}
        attempt = 0
        refreshed = False
        while True:
            while True:
                paused = throttle.paused_for()
                if paused > 0 and not policy.may_pause(paused, self._clock() - started):
                    self._give_up(call, httpx.URL(call.url).path, user_id, attempt, "paused")
                    raise RateLimited(
                        f"the vendor asked to pause for {paused:.0f} s, longer than "
                        "max_retry_after or the deadline allows; nothing was sent",
                        provider=self.name,
                        user_id=user_id,
                        retry_after=paused,
                        attempts=attempts[0],
                    )
                wait = throttle.acquire()
                if wait <= 0:
                    break
                yield wait
                if throttle.paused_for() <= 0:
                    break
                # A pause began while this caller waited for its slot: that slot is void (every
                # caller holding one would send at once when the pause ends), so take a new one.
            if credentials.current is None:
                failure = yield _Refresh(None)
                if isinstance(failure, InviteError):
                    raise failure
            token = credentials.current
            assert token is not None
            name, value = self.auth_header(token.reveal())
            headers[name] = value
            attempt += 1
            attempts[0] += 1
            try:
                request = build(
                    call.method, call.url, json=call.json, headers=headers, timeout=self._timeout
                )
            except (UnicodeError, httpx.InvalidURL) as exc:
                # e.g. a cookie a vendor set in the caller's own client that cannot be sent back
                raise UnexpectedResponse(
                    f"the request could not be built ({type(exc).__name__}); nothing was sent"
                ) from exc
            sent_at = self._clock()
            reply = yield request
            elapsed = self._clock() - sent_at

            if isinstance(reply, httpx.Response):
                status = reply.status_code
                if status == 401 and credentials.source is not None and not refreshed:
                    # The vendor refused the credential, so nothing was sent: refresh once and
                    # retry without spending an attempt.
                    refreshed = True
                    attempt -= 1
                    self._report(call, request, user_id, attempt + 1, status, None, elapsed, 0.0)
                    failure = yield _Refresh(token)
                    if isinstance(failure, InviteError):
                        raise failure
                    continue
                retry_after = None
                if status == 429 or status == 503:
                    retry_after = parse_retry_after(reply.headers.get("retry-after"))
                    retry = True
                elif status in (502, 504):
                    retry = call.reads_only or policy.retry_unknown
                else:
                    retry = False
                if not retry:
                    self._report(call, request, user_id, attempt, status, None, elapsed, None)
                    return reply
                delay = policy.wait_before_retry(attempt, retry_after, self._clock() - started)
                if status == 429:
                    # The vendor asked this client, not this request, to slow down: hold every
                    # caller for as long as it said (or the backoff when it did not say).
                    if retry_after is not None:
                        throttle.pause(retry_after)
                    else:
                        throttle.pause(delay if delay is not None else policy.backoff(attempt))
                self._report(call, request, user_id, attempt, status, None, elapsed, delay)
                if delay is None:
                    self._give_up(call, request.url.path, user_id, attempt, f"HTTP {status}")
                    return reply
                if status != 429:  # a 429 paused the whole provider; the loop above waits it out
                    yield delay
                continue

            assert isinstance(reply, Exception)
            if isinstance(reply, InviteError):
                raise reply
            connect = isinstance(reply, _CONNECT_ERRORS)
            error_name = type(reply).__name__
            delay = None
            if connect or call.reads_only or policy.retry_unknown:
                delay = policy.wait_before_retry(attempt, None, self._clock() - started)
            self._report(call, request, user_id, attempt, None, error_name, elapsed, delay)
            if delay is not None:
                yield delay
                continue
            self._give_up(call, request.url.path, user_id, attempt, error_name)
            if connect:
                raise ConnectionFailed(
                    f"could not reach the vendor ({error_name}); nothing was sent",
                    provider=self.name,
                    user_id=user_id,
                    attempts=attempts[0],
                ) from reply
            if call.reads_only:
                raise ConnectionFailed(
                    f"the vendor's answer was lost ({error_name}) while reading, before any "
                    "resend was sent",
                    provider=self.name,
                    user_id=user_id,
                    attempts=attempts[0],
                ) from reply
            raise OutcomeUnknown(
                f"the request was sent but no answer came back ({error_name}); "
                "the invitation may or may not have been sent",
                provider=self.name,
                user_id=user_id,
                attempts=attempts[0],
            ) from reply

    def _report(
        self,
        call: Call,
        request: httpx.Request,
        user_id: str,
        attempt: int,
        status: int | None,
        error: str | None,
        elapsed: float,
        wait: float | None,
    ) -> None:
        hook = self._on_attempt
        if hook is None and not logger.isEnabledFor(logging.DEBUG):
            return
        path = request.url.path
        elapsed_ms = round(elapsed * 1000.0, 3)
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug(
                "%s %s %s -> %s (attempt %d, %.1f ms)",
                self.name,
                call.method,
                path,
                status if status is not None else error,
                attempt,
                elapsed_ms,
                extra={
                    "vendor": self.name,
                    "method": call.method,
                    "path": path,
                    "status_code": status,
                    "error": error,
                    "attempt": attempt,
                    "elapsed_ms": elapsed_ms,
                    "will_retry": wait is not None,
                },
            )
        if hook is not None:
            hook(
                AttemptEvent(
                    provider=self.name,
                    method=call.method,
                    path=path,
                    user_id=user_id,
                    attempt=attempt,
                    status_code=status,
                    error=error,
                    elapsed_ms=elapsed_ms,
                    will_retry=wait is not None,
                    wait=wait,
                )
            )

    def _give_up(self, call: Call, path: str, user_id: str, attempt: int, why: str) -> None:
        logger.warning(
            "%s %s %s: giving up after %d attempt(s): %s",
            self.name,
            call.method,
            path,
            attempt,
            why,
            extra={
                "vendor": self.name,
                "method": call.method,
                "path": path,
                "attempt": attempt,
                "error": why,
            },
        )

    # -- I/O --------------------------------------------------------------------------------------

    def _run_refresh(self, refresh: Callable[[Secret | None], None], action: _Refresh) -> _Reply:
        try:
            refresh(action.stale)
        except InviteError as exc:
            return exc
        return None

    def _sync_client(self) -> httpx.Client:
        client = self._client
        if client is None:
            with self._client_lock:
                if self._client is None:
                    self._client = httpx.Client(
                        timeout=self._timeout,
                        follow_redirects=False,
                        cookies=_no_cookies(),
                        event_hooks={"response": [_forget_redirect_target]},
                    )
                client = self._client
        return client

    def _async_client_(self) -> httpx.AsyncClient:
        if self._async_client is None:
            self._async_client = httpx.AsyncClient(
                timeout=self._timeout,
                follow_redirects=False,
                cookies=_no_cookies(),
                event_hooks={"response": [_aforget_redirect_target]},
            )
        return self._async_client

    def _send(self, request: httpx.Request) -> httpx.Response | Exception:
        try:
            response = self._sync_client().send(request, stream=True, follow_redirects=False)
        except httpx.TransportError as exc:
            return exc
        except (UnicodeError, httpx.InvalidURL) as exc:
            return _unprocessable(exc)
        try:
            if _fits(response) or response.is_stream_consumed:
                response.read()
                return response
            body = bytearray()
            for chunk in response.iter_bytes():
                body += chunk
                if len(body) > BODY_LIMIT:
                    return _too_large(response)
            return _rebuilt(response, bytes(body))
        except httpx.TransportError as exc:
            return exc
        except httpx.DecodingError as exc:
            return _undecodable(response, exc)
        finally:
            response.close()

    async def _asend(self, request: httpx.Request) -> httpx.Response | Exception:
        try:
            response = await self._async_client_().send(
                request, stream=True, follow_redirects=False
            )
        except httpx.TransportError as exc:
            return exc
        except (UnicodeError, httpx.InvalidURL) as exc:
            return _unprocessable(exc)
        try:
            if _fits(response) or response.is_stream_consumed:
                await response.aread()
                return response
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > BODY_LIMIT:
                    return _too_large(response)
            return _rebuilt(response, bytes(body))
        except httpx.TransportError as exc:
            return exc
        except httpx.DecodingError as exc:
            return _undecodable(response, exc)
        finally:
            if not response.is_closed:  # reading to the end closed it already
                await response.aclose()


# -- the ledger for idempotency keys (logic in invites.ledger; loaded only when configured) --------


def _provider_ledger(settings: ProviderSettings, ledger: Ledger | None) -> ProviderLedger | None:
    if settings.ledger is None and ledger is None:
        return None
    from .ledger._guard import ProviderLedger

    return ProviderLedger.build(settings.ledger, ledger)


def _needs_ledger(ledger: ProviderLedger | None) -> ProviderLedger:
    if ledger is None:
        from .errors import ConfigurationError

        raise ConfigurationError("idempotency_key needs a ledger (the ledger setting or argument)")
    return ledger


def _timeout(settings: ProviderSettings) -> httpx.Timeout:
    phases = settings.timeouts
    default = settings.timeout
    if phases is None:
        return httpx.Timeout(default)
    return httpx.Timeout(
        default,
        connect=phases.connect or default,
        read=phases.read or default,
        write=phases.write or default,
        pool=phases.pool or default,
    )


def _fits(response: httpx.Response) -> bool:
    """Whether the body can be read in one go: declared once, small and not compressed."""
    # One pass over the raw headers: two Headers.get() calls cost several times more.
    length: bytes | None = None
    for key, value in response.headers.raw:
        name = key.lower()
        if name == b"content-length":
            if length is not None:
                return False  # declared twice: read it incrementally, within the limit
            length = value
        elif name == b"content-encoding" and value.strip().lower() not in (b"", b"identity"):
            return False
    return length is not None and length.isdigit() and int(length) <= BODY_LIMIT


def _rebuilt(response: httpx.Response, body: bytes) -> httpx.Response:
    """A response holding ``body``, already decoded, read incrementally within the limit."""
    headers = response.headers.copy()
    headers.pop("content-encoding", None)
    headers["content-length"] = str(len(body))
    return httpx.Response(
        response.status_code,
        headers=headers,
        content=body,
        request=response.request,
        extensions=response.extensions,
    )


def _no_cookies() -> CookieJar:
    """A jar that keeps nothing: a vendor's cookies are never sent back with the credential."""
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


def _forget_redirect_target(response: httpx.Response) -> None:
    """Drop a 3xx's ``Location`` so the client never builds (or parses) the redirect request."""
    if response.is_redirect:
        del response.headers["location"]


async def _aforget_redirect_target(response: httpx.Response) -> None:
    _forget_redirect_target(response)


def _unprocessable(exc: Exception) -> Exception:
    # Only a caller's own client gets here: it keeps cookies and parses a 3xx's Location.
    return UnexpectedResponse(
        f"httpx could not process this exchange ({type(exc).__name__}): a header of the request "
        "or of the vendor's answer is not valid"
    )


def _too_large(response: httpx.Response) -> Exception:
    return UnexpectedResponse(
        f"the answer's body is larger than {BODY_LIMIT} bytes; refused unread",
        status_code=response.status_code,
    )


def _undecodable(response: httpx.Response, exc: Exception) -> Exception:
    return UnexpectedResponse(
        f"the answer's body could not be decoded ({type(exc).__name__})",
        status_code=response.status_code,
    )
