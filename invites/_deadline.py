"""The resend's deadline, enforced inside the provider's own clients' socket operations.

httpx's read timeout applies to each socket read, so an answer trickled a byte at a time never
times out. The provider's own clients use an httpcore network backend whose streams cap the
timeout of every connect, read and write at the time left before the running resend's deadline,
held in :data:`DEADLINE` (a monotonic instant; None outside a resend). Past it, the operation fails
with httpcore's own timeout, which httpx maps to ``ConnectTimeout``, ``ReadTimeout`` or
``WriteTimeout``: whether the request left is known exactly.
"""

from __future__ import annotations

import ssl
import threading
import time
import typing
from collections.abc import Iterable
from contextvars import ContextVar
from typing import Any, Final

import httpcore
import httpx

__all__ = ["DEADLINE", "async_transport", "sync_transport", "time_left"]

#: The monotonic instant the running resend must end by (per thread and per task).
DEADLINE: Final[ContextVar[float | None]] = ContextVar("invites_deadline", default=None)

_SocketOption: typing.TypeAlias = (
    "tuple[int, int, int] | tuple[int, int, bytes | bytearray] | tuple[int, int, None, int]"
)


def time_left() -> float | None:
    """Seconds left before the running resend's deadline (None: no resend is running)."""
    deadline = DEADLINE.get()
    return None if deadline is None else deadline - time.monotonic()


def _capped(timeout: float | None, expired: type[Exception]) -> float | None:
    deadline = DEADLINE.get()
    if deadline is None:
        return timeout
    left = deadline - time.monotonic()
    if left <= 0:
        raise expired("the resend's deadline passed")
    return left if timeout is None or left < timeout else timeout


class _Stream(httpcore.NetworkStream):
    def __init__(self, stream: httpcore.NetworkStream) -> None:
        self._stream = stream

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _capped(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._stream.write(buffer, _capped(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._stream.close()

    def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.NetworkStream:
        timeout = _capped(timeout, httpcore.ConnectTimeout)
        return _Stream(self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> typing.Any:
        return self._stream.get_extra_info(info)


class _Backend(httpcore.NetworkBackend):
    def __init__(self) -> None:
        self._backend = httpcore.SyncBackend()

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[_SocketOption] | None = None,
    ) -> httpcore.NetworkStream:
        timeout = _capped(timeout, httpcore.ConnectTimeout)
        stream = self._backend.connect_tcp(host, port, timeout, local_address, socket_options)
        return _Stream(stream)

    def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[_SocketOption] | None = None,
    ) -> httpcore.NetworkStream:
        timeout = _capped(timeout, httpcore.ConnectTimeout)
        return _Stream(self._backend.connect_unix_socket(path, timeout, socket_options))

    def sleep(self, seconds: float) -> None:
        self._backend.sleep(seconds)


class _AsyncStream(httpcore.AsyncNetworkStream):
    def __init__(self, stream: httpcore.AsyncNetworkStream) -> None:
        self._stream = stream

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._stream.read(max_bytes, _capped(timeout, httpcore.ReadTimeout))

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        await self._stream.write(buffer, _capped(timeout, httpcore.WriteTimeout))

    async def aclose(self) -> None:
        await self._stream.aclose()

    async def start_tls(
        self,
        ssl_context: ssl.SSLContext,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> httpcore.AsyncNetworkStream:
        timeout = _capped(timeout, httpcore.ConnectTimeout)
        return _AsyncStream(await self._stream.start_tls(ssl_context, server_hostname, timeout))

    def get_extra_info(self, info: str) -> typing.Any:
        return self._stream.get_extra_info(info)


class _AsyncBackend(httpcore.AsyncNetworkBackend):
    def __init__(self) -> None:
        self._backend = httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[_SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        timeout = _capped(timeout, httpcore.ConnectTimeout)
        connect = self._backend.connect_tcp
        return _AsyncStream(await connect(host, port, timeout, local_address, socket_options))

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,
        socket_options: Iterable[_SocketOption] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        timeout = _capped(timeout, httpcore.ConnectTimeout)
        connect = self._backend.connect_unix_socket
        return _AsyncStream(await connect(path, timeout, socket_options))

    async def sleep(self, seconds: float) -> None:
        await self._backend.sleep(seconds)


class _Pool(httpcore.ConnectionPool):
    """httpcore's pool, taking the process's verifying TLS context at its first TLS connection."""

    def create_connection(self, origin: httpcore.Origin) -> httpcore.ConnectionInterface:
        if self._ssl_context is None and origin.scheme == b"https":
            self._ssl_context = verifying_context()
        return super().create_connection(origin)


class _AsyncPool(httpcore.AsyncConnectionPool):
    """:class:`_Pool` for asyncio."""

    def create_connection(self, origin: httpcore.Origin) -> httpcore.AsyncConnectionInterface:
        if self._ssl_context is None and origin.scheme == b"https":
            self._ssl_context = verifying_context()
        return super().create_connection(origin)


_context_lock = threading.Lock()
_context: ssl.SSLContext | None = None


def verifying_context() -> ssl.SSLContext:
    """The TLS context every client the library creates verifies servers with, made once.

    It is httpx's default (certifi's CA bundle, or ``SSL_CERT_FILE`` / ``SSL_CERT_DIR``), and
    loading that bundle is most of what creating a client costs: so it is loaded when the first
    connection needs it, and shared by the sync client and every event loop's async client.
    """
    global _context
    with _context_lock:
        if _context is None:
            _context = httpx.create_ssl_context()
        return _context


def _placeholder_context() -> ssl.SSLContext:
    """What httpx's transport is built with before its pool is replaced: it trusts nothing."""
    return ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)


def sync_transport(limits: httpx.Limits) -> httpx.HTTPTransport:
    """An httpx transport whose socket operations end by the running resend's deadline."""
    transport = httpx.HTTPTransport(verify=_placeholder_context(), limits=limits)
    # httpx takes no network backend, so its pool is replaced by an equal one that has ours.
    transport._pool = _Pool(network_backend=_Backend(), **_pool_options(limits))
    return transport


def async_transport(limits: httpx.Limits) -> httpx.AsyncHTTPTransport:
    """:func:`sync_transport` for asyncio (anyio's backend, as httpx uses under asyncio)."""
    transport = httpx.AsyncHTTPTransport(verify=_placeholder_context(), limits=limits)
    transport._pool = _AsyncPool(network_backend=_AsyncBackend(), **_pool_options(limits))
    return transport


def _pool_options(limits: httpx.Limits) -> dict[str, Any]:
    """What httpx itself gives the pool it builds for these limits, but the TLS context."""
    return {
        "max_connections": limits.max_connections,
        "max_keepalive_connections": limits.max_keepalive_connections,
        "keepalive_expiry": limits.keepalive_expiry,
    }
