"""The provider's own httpx transports, built from httpx's and httpcore's public pieces.

Each transport keeps one httpcore connection pool per origin it talks to, built with the
deadline-bound network backend (:mod:`invites._http.deadline`) and, for an ``https`` origin, the one
verifying TLS context of the process (:func:`verifying_context`), loaded when the first such pool
is made: a client for plain HTTP never loads it. A pool serves a single origin and keeps as many
idle connections as it may open, so httpcore never closes an idle connection to stay under its
keep-alive limit or to make room for another origin: neither can happen to a connection that was
just given to a request. A pool through a proxy is httpcore's ``HTTPProxy`` over the same network
backend, so the deadline and the idle-connection expiry hold through the proxy too.
"""

from __future__ import annotations

import ssl
import threading
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar

import httpcore
import httpx

from .deadline import AsyncDeadlineBackend, DeadlineBackend, time_left
from .proxies import Route

if TYPE_CHECKING:
    import asyncio

__all__ = ["AsyncTransport", "SyncTransport", "as_httpx_error", "verifying_context"]

_context_lock = threading.Lock()
_context: ssl.SSLContext | None = None


def verifying_context() -> ssl.SSLContext:
    """The TLS context every client the library creates verifies servers with, made once.

    It is httpx's default: certifi's CA bundle, or ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``.
    """
    global _context
    with _context_lock:
        if _context is None:
            _context = httpx.create_ssl_context()
        return _context


#: httpcore's errors and httpx's, the more specific first (httpx's own transport maps the same).
_ERRORS: Final[tuple[tuple[type[Exception], type[httpx.TransportError]], ...]] = (
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


def as_httpx_error(exc: Exception) -> httpx.TransportError | None:
    """httpx's error for one of httpcore's (None for any other)."""
    for raised, mapped in _ERRORS:
        if isinstance(exc, raised):
            return mapped(str(exc))
    return None


def _core_request(request: httpx.Request) -> httpcore.Request:
    url = request.url
    return httpcore.Request(
        method=request.method,
        url=httpcore.URL(
            scheme=url.raw_scheme, host=url.raw_host, port=url.port, target=url.raw_path
        ),
        headers=request.headers.raw,
        content=request.stream,
        extensions=request.extensions,
    )


_P = TypeVar("_P", httpcore.ConnectionPool, httpcore.AsyncConnectionPool)


class _Pools(Generic[_P]):
    """One pool per origin, made on first use."""

    def __init__(self, limits: httpx.Limits, route: Route, backend: Any, proxy_type: Any) -> None:
        most = limits.max_connections
        self._options: dict[str, Any] = {
            "max_connections": most,
            # As many idle connections as open ones: see the module's docstring.
            "max_keepalive_connections": most,
            "keepalive_expiry": limits.keepalive_expiry,
            "network_backend": backend,
        }
        self._route = route
        self._proxy_type = proxy_type
        self._pools: dict[tuple[bytes, bytes, int | None], _P] = {}
        self._lock = threading.Lock()

    def get(self, url: httpx.URL, pool_type: type[_P]) -> _P:
        key = (url.raw_scheme, url.raw_host, url.port)
        pool = self._pools.get(key)
        if pool is None:
            with self._lock:
                pool = self._pools.get(key)
                if pool is None:
                    pool = self._pools[key] = self._new(url, pool_type)
        return pool

    def _new(self, url: httpx.URL, pool_type: type[_P]) -> _P:
        context = verifying_context() if url.scheme == "https" else None
        proxy = self._route.proxy_for(url)
        if proxy is None:
            return pool_type(ssl_context=context, **self._options)
        made: _P = self._proxy_type(
            proxy_url=proxy.url,
            proxy_auth=proxy.auth,
            ssl_context=context,
            **self._options,
        )
        return made

    def take_all(self) -> list[_P]:
        with self._lock:
            pools = list(self._pools.values())
            self._pools.clear()
        return pools


def _handed(
    pools: _Pools[_P], request: httpx.Request, pool_type: type[_P]
) -> tuple[_P, httpcore.Request]:
    """The pool for ``request`` and the request as httpcore takes it.

    Nothing has been sent yet: a failure here (the TLS context cannot be loaded, say) is a
    ``ConnectError``, never an answer that may have been lost.
    """
    try:
        return pools.get(request.url, pool_type), _core_request(request)
    except Exception as exc:
        raise httpx.ConnectError(
            f"the connection could not be prepared ({type(exc).__name__}: {exc})"
        ) from exc


class SyncTransport(httpx.BaseTransport):
    """An httpx transport over httpcore pools whose socket operations end by the deadline."""

    def __init__(self, limits: httpx.Limits, route: Route) -> None:
        self._pools: _Pools[httpcore.ConnectionPool] = _Pools(
            limits, route, DeadlineBackend(), httpcore.HTTPProxy
        )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        pool, core = _handed(self._pools, request, httpcore.ConnectionPool)
        try:
            answer = pool.handle_request(core)
        except Exception as exc:
            mapped = as_httpx_error(exc)
            if mapped is None:
                raise
            raise mapped from exc
        return httpx.Response(
            status_code=answer.status,
            headers=answer.headers,
            stream=_SyncBody(answer.stream),
            extensions=answer.extensions,
        )

    def close(self) -> None:
        for pool in self._pools.take_all():
            pool.close()


class AsyncTransport(httpx.AsyncBaseTransport):
    """:class:`SyncTransport` for asyncio (anyio's backend, as httpx uses under asyncio).

    One request at a time waits in a pool for a connection: httpcore's asyncio pool gives an
    idle HTTP/1.1 connection to every request queued when it assigns them (the connection stays
    idle until a request starts on it, which happens only when the loop reaches that task), so
    all but one fail with ``ConnectionNotAvailable`` and queue again, pass after pass. The next
    request enters once the one before has started on a connection (httpcore's first trace event
    for it) or ended.
    """

    def __init__(self, limits: httpx.Limits, route: Route) -> None:
        import asyncio  # loaded already: only async code gets here

        self._pools: _Pools[httpcore.AsyncConnectionPool] = _Pools(
            limits, route, AsyncDeadlineBackend(), httpcore.AsyncHTTPProxy
        )
        self._entry = asyncio.Lock()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        pool, core = _handed(self._pools, request, httpcore.AsyncConnectionPool)
        entry = self._entry
        await _enter(entry, request)
        inner = core.extensions.get("trace")
        held = True

        async def started(name: str, info: dict[str, Any]) -> None:
            nonlocal held
            if held:
                held = False
                entry.release()
            if inner is not None:
                await inner(name, info)

        core.extensions = {**core.extensions, "trace": started}
        try:
            answer = await pool.handle_async_request(core)
        except Exception as exc:
            mapped = as_httpx_error(exc)
            if mapped is None:
                raise
            raise mapped from exc
        finally:
            if held:
                held = False
                entry.release()
        return httpx.Response(
            status_code=answer.status,
            headers=answer.headers,
            stream=_AsyncBody(answer.stream),
            extensions=answer.extensions,
        )

    async def aclose(self) -> None:
        for pool in self._pools.take_all():
            await pool.aclose()


async def _enter(entry: asyncio.Lock, request: httpx.Request) -> None:
    """Take ``entry``, waiting at most until the resend's deadline (then ``PoolTimeout``).

    The request ahead holds it only until it has a connection, or its own pool timeout ends.
    """
    if not entry.locked():
        await entry.acquire()
        return
    import asyncio

    waited = time_left()
    if waited is None:  # outside a resend
        waited = request.extensions.get("timeout", {}).get("pool")
    try:
        async with asyncio.timeout(waited):
            await entry.acquire()
    except TimeoutError:
        raise httpx.PoolTimeout("no connection came free within the pool timeout") from None


class _SyncBody(httpx.SyncByteStream):
    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def __iter__(self) -> Iterator[bytes]:
        try:
            yield from self._stream
        except Exception as exc:
            mapped = as_httpx_error(exc)
            if mapped is None:
                raise
            raise mapped from exc

    def close(self) -> None:
        self._stream.close()


class _AsyncBody(httpx.AsyncByteStream):
    def __init__(self, stream: Any) -> None:
        self._stream = stream

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for part in self._stream:
                yield part
        except Exception as exc:
            mapped = as_httpx_error(exc)
            if mapped is None:
                raise
            raise mapped from exc

    async def aclose(self) -> None:
        await self._stream.aclose()
