"""The HTTP side of a provider: the clients it owns or borrows, and bounded body reading.

Every answer is read whole before a vendor's flow sees it, within :data:`BODY_LIMIT` after
decoding, which is done in bounded pieces (:mod:`invites._http.bodies`); a body that does not fit is
refused unread. The clients a provider creates follow no redirect, keep no cookie (so the
credential is never replayed to another place), advertise only the codings decoded here, and end
every socket operation by the resend's deadline (:mod:`invites._http.deadline`). With a caller's own
``AsyncClient`` the event loop's timeout bounds the whole exchange by the deadline; with a
caller's own sync ``Client`` the deadline is checked between body chunks, and the client's own
timeouts bound each connect, write and read.
"""

from __future__ import annotations

import threading
import weakref
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import TYPE_CHECKING, Final

import httpx

from .._settings.fields import ProviderSettings
from ..errors import ConnectionFailed
from .bodies import (
    BODY_LIMIT,
    Body,
    DeadlineBound,
    fits,
    from_network,
    past_deadline,
    read_failure,
    too_large,
)
from .deadline import DEADLINE
from .decoding import ACCEPT_ENCODING
from .loops import LoopOwned
from .proxies import Route
from .transports import AsyncTransport, SyncTransport

if TYPE_CHECKING:
    from asyncio import AbstractEventLoop

    from .watchdog import Watchdog

__all__ = ["BODY_LIMIT", "Transport", "timeout_for"]

#: The provider's own clients' pools (one per origin): httpx's default of 100 connections, every
#: one of which may stay idle (see :mod:`invites._http.transports`), but at most 1.5 s, under the
#: keep-alive timeouts vendors' servers commonly use (gunicorn 2 s; uvicorn, Node.js and Apache 5 s;
#: more behind nginx or a cloud load balancer): a server that closes an idle connection just as it
#: is reused resets the request, whose outcome is then unknown.
LIMITS: Final = httpx.Limits(
    max_connections=100, max_keepalive_connections=100, keepalive_expiry=1.5
)


class Transport:
    """The provider's sync client and its async clients: injected by the caller, or owned.

    An injected client is used as it is (the configured timeouts still apply per request) and
    never closed here. An owned async client belongs to one event loop: each loop the provider
    is used from gets its own, closed when that loop shuts down (``asyncio.run`` and
    ``asyncio.Runner`` close every async generator a loop has started before closing it, which
    is the one hook a loop offers). An injected async client is bound to the first loop it is
    used from here: from any other loop it is refused before anything is sent.
    """

    def __init__(
        self,
        timeout: httpx.Timeout,
        route: Route,
        client: httpx.Client | None = None,
        async_client: httpx.AsyncClient | None = None,
    ) -> None:
        self.timeout = timeout
        self._route = route
        self._client = client
        self._owns_client = client is None
        self._foreign_async = async_client
        self._foreign_loop: weakref.ref[AbstractEventLoop] | None = None
        #: Ends each exchange of the injected async client by the resend's deadline (its loop's).
        self._watchdog: Watchdog | None = None
        self._loop_clients: dict[AbstractEventLoop, LoopOwned[httpx.AsyncClient]] = {}
        self._lock = threading.Lock()
        #: Set by close() and aclose(): no client is handed out any more.
        self.closed = False

    def connection_limit(self, *, asynchronous: bool) -> int | None:
        """How many connections the owned client opens at most; None for a caller's client."""
        owned = self._foreign_async is None if asynchronous else self._owns_client
        return LIMITS.max_connections if owned else None

    def client(self) -> httpx.Client:
        """The sync client, created on first use (once, whichever thread comes first)."""
        client = self._client
        if client is None:
            with self._lock:
                if self.closed:
                    raise _closed()
                if self._client is None:
                    self._client = httpx.Client(
                        timeout=self.timeout,
                        headers={"Accept-Encoding": ACCEPT_ENCODING},
                        transport=SyncTransport(LIMITS, self._route),
                        follow_redirects=False,
                        cookies=_no_cookies(),
                        event_hooks={"response": [_forget_redirect_target]},
                    )
                client = self._client
        return client

    def async_client(self) -> httpx.AsyncClient:
        """The running event loop's async client (call it from that loop).

        Raises :class:`~invites.ConnectionFailed` for an injected client bound to another loop.
        """
        loop = _running_loop()
        if self._foreign_async is not None:
            bound = self._foreign_loop
            if bound is not None and bound() is loop:
                return self._foreign_async
            return self._bind_foreign(loop)
        owned = self._loop_clients.get(loop)
        if owned is not None:
            return owned.client
        return self._new_loop_client(loop)

    def holds_open_clients(self) -> bool:
        """Whether a client created here is still open."""
        owned_sync = self._owns_client and self._client is not None
        return owned_sync or bool(self._loop_clients)

    def close(self, *, warn: bool = True) -> None:
        """Close the sync client and hand each loop's async client to its loop to close.

        A client whose loop is running is closed there soon; one whose loop has closed is
        dropped. One whose loop is idle closes only when that loop runs again: a
        ``ResourceWarning`` says so unless ``warn`` is False (close the provider with
        ``aclose()`` in that loop instead).
        """
        with self._lock:
            self.closed = True
            client, self._client = self._client, None
            self._foreign_loop = None
            left = list(self._loop_clients.values())
            self._loop_clients.clear()
        if client is not None and self._owns_client:
            client.close()
        for owned in left:
            owned.close_elsewhere(warn)

    async def aclose(self) -> None:
        """Close the running loop's async client, then everything :meth:`close` closes."""
        loop = _running_loop()
        with self._lock:
            owned = self._loop_clients.pop(loop, None)
        if owned is not None:
            await owned.aclose()
        self.close()

    def _bind_foreign(self, loop: AbstractEventLoop) -> httpx.AsyncClient:
        with self._lock:
            if self.closed:
                raise _closed()
            if self._foreign_loop is None:
                from .watchdog import Watchdog  # loads asyncio: only async code gets here

                self._foreign_loop = weakref.ref(loop)
                self._watchdog = Watchdog()
            bound = self._foreign_loop()
        assert self._foreign_async is not None
        if bound is loop:
            return self._foreign_async
        # Its connections and locks may belong to the other loop: a request could reach the
        # vendor and then fail waiting for the answer. Refusing now is the one safe answer.
        raise ConnectionFailed(
            "the httpx.AsyncClient passed as async_client was first used here in another event "
            "loop, and an AsyncClient works in one loop only; nothing was sent (pass one client "
            "per event loop, or let the provider create its own)",
            retryable=False,
        )

    def _new_loop_client(self, loop: AbstractEventLoop) -> httpx.AsyncClient:
        client = httpx.AsyncClient(
            timeout=self.timeout,
            headers={"Accept-Encoding": ACCEPT_ENCODING},
            transport=AsyncTransport(LIMITS, self._route),
            follow_redirects=False,
            cookies=_no_cookies(),
            event_hooks={"response": [_aforget_redirect_target]},
        )
        owned = LoopOwned(client, loop, weakref.WeakMethod(self._forget))
        with self._lock:
            if self.closed:
                raise _closed()
            # A loop closed without shutting down its async generators: its client is lost.
            for stale in [each for each in self._loop_clients if each.is_closed()]:
                del self._loop_clients[stale]
            self._loop_clients[loop] = owned
        owned.watch_shutdown()
        return client

    def _forget(self, loop: AbstractEventLoop, client: httpx.AsyncClient) -> None:
        with self._lock:
            owned = self._loop_clients.get(loop)
            if owned is not None and owned.client is client:
                del self._loop_clients[loop]

    def send(self, request: httpx.Request) -> httpx.Response | Exception:
        """The answer, read within the limit, or the failure (returned, not raised).

        A failure that is not httpx's own (a ``RuntimeError`` from a closed client or loop, an
        error inside httpx) is returned as it is: the request may have left.
        """
        client = self._client
        try:
            if client is None:
                client = self.client()
            response = client.send(request, stream=True, follow_redirects=False)
        except Exception as exc:  # httpx's TransportError, or an error inside the client
            # Such as the InvalidURL a caller's own client raises for an answer's Location, after
            # the request left: the retry policy reads it as an answer that may have been lost.
            return exc
        if response.status_code == 407:
            response.close()
            return proxy_refused(request)
        held = False
        try:
            if response.is_stream_consumed:
                # Read already (a mock transport's answer): it holds no connection to release.
                response.read()
                held = True
                return response
            stream = response.stream
            if not self._owns_client and from_network(stream, httpx.SyncByteStream):
                # The caller's sockets do not know the deadline: check it between chunks.
                response.stream = DeadlineBound(stream, request)
            if fits(response):
                response.read()
                return response
            body = Body(response)
            for chunk in response.iter_raw():
                if body.add(chunk):
                    return too_large(response)
            return body.finish()
        except Exception as exc:
            return read_failure(response, exc)
        finally:
            if not held:
                response.close()

    async def asend(
        self, request: httpx.Request, client: httpx.AsyncClient | None = None
    ) -> httpx.Response | Exception:
        """:meth:`send` from async code, through ``client`` when the caller has looked it up
        already (the running loop's, from :meth:`async_client`).

        With a caller's own client, the event loop ends the whole exchange at the resend's
        deadline (one timer per loop, in `watchdog`): its sockets do not know the deadline.
        """
        if self._foreign_async is None or (deadline := DEADLINE.get()) is None:
            return await self._asend(request, client)
        assert self._watchdog is not None  # bound with the client, by async_client()
        watched = self._watchdog.watch(deadline)
        try:
            return await self._asend(request, client)
        except BaseException as exc:
            if watched.timed_out(exc):
                # Anything may have been under way, sending included: a lost answer to the policy.
                return past_deadline(request)
            raise
        finally:
            watched.done()

    async def _asend(
        self, request: httpx.Request, client: httpx.AsyncClient | None
    ) -> httpx.Response | Exception:
        try:
            if client is None or self.closed:  # closed meanwhile: refused as before any send
                client = self.async_client()
            response = await client.send(request, stream=True, follow_redirects=False)
        except Exception as exc:  # as in send()
            return exc
        if response.status_code == 407:  # as in send()
            await response.aclose()
            return proxy_refused(request)
        held = False
        try:
            if response.is_stream_consumed:  # as in send()
                await response.aread()
                held = True
                return response
            if fits(response):
                await response.aread()
                return response
            body = Body(response)
            async for chunk in response.aiter_raw():
                if body.add(chunk):
                    return too_large(response)
            return body.finish()
        except Exception as exc:
            return read_failure(response, exc)
        finally:
            if not (held or response.is_closed):  # reading to the end closed it already
                await response.aclose()


def proxy_refused(request: httpx.Request) -> httpx.ProxyError:
    """A proxy's own 407: it forwarded nothing (no vendor answers 407)."""
    return httpx.ProxyError("407 Proxy Authentication Required", request=request)


def _running_loop() -> AbstractEventLoop:
    import asyncio  # loaded already: only async code gets here

    return asyncio.get_running_loop()


def _closed() -> RuntimeError:
    return RuntimeError("the provider has been closed")


def timeout_for(settings: ProviderSettings) -> httpx.Timeout:
    """The settings' timeouts: ``timeout`` for every phase that ``timeouts`` leaves unset."""
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


def _no_cookies() -> CookieJar:
    """A jar that keeps nothing: a vendor's cookies are never sent back with the credential."""
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


def _forget_redirect_target(response: httpx.Response) -> None:
    """Drop a 3xx's ``Location`` so the client never builds (or parses) the redirect request."""
    if response.is_redirect:
        del response.headers["location"]


async def _aforget_redirect_target(response: httpx.Response) -> None:
    _forget_redirect_target(response)
