"""The resend's deadline, enforced inside the provider's own clients' socket operations.

httpx's read timeout applies to each socket read, so an answer trickled a byte at a time never
times out. The provider's own clients (:mod:`invites._http.transports`) use an httpcore network
backend whose streams cap the timeout of every connect, read and write at the time left before the
running resend's deadline, held in :data:`DEADLINE` (a monotonic instant; None outside a resend).
Past it, the operation fails with httpcore's own timeout, mapped to httpx's ``ConnectTimeout``,
``ReadTimeout`` or ``WriteTimeout``: whether the request left is known exactly.
"""

from __future__ import annotations

import ssl
import time
import typing
from collections.abc import Iterable
from contextvars import ContextVar
from typing import Final

import httpcore

__all__ = ["DEADLINE", "AsyncDeadlineBackend", "DeadlineBackend", "time_left"]

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
        # The pool asks each idle connection, on every request, whether the server closed it:
        # the wrapped stream answers directly.
        self.get_extra_info = stream.get_extra_info  # type: ignore[method-assign]

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._stream.read(max_bytes, _capped(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if buffer:  # h11 ends a body of known length with nothing to write
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
        try:
            return _Stream(self._stream.start_tls(ssl_context, server_hostname, timeout))
        except OSError as exc:  # a refused certificate: raised as it is by some httpcore 1.0
            raise httpcore.ConnectError(str(exc)) from exc

    def get_extra_info(self, info: str) -> typing.Any:
        return self._stream.get_extra_info(info)


class DeadlineBackend(httpcore.NetworkBackend):
    """httpcore's sync backend, its streams' operations capped at the deadline."""

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
        # The pool asks each idle connection, on every request, whether the server closed it:
        # the wrapped stream answers directly.
        self.get_extra_info = stream.get_extra_info  # type: ignore[method-assign]

    async def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return await self._stream.read(max_bytes, _capped(timeout, httpcore.ReadTimeout))

    async def write(self, buffer: bytes, timeout: float | None = None) -> None:
        if buffer:  # as in the sync stream
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
        try:
            tls = await self._stream.start_tls(ssl_context, server_hostname, timeout)
        except OSError as exc:  # as in the sync stream
            raise httpcore.ConnectError(str(exc)) from exc
        return _AsyncStream(tls)

    def get_extra_info(self, info: str) -> typing.Any:
        return self._stream.get_extra_info(info)


class AsyncDeadlineBackend(httpcore.AsyncNetworkBackend):
    """:class:`DeadlineBackend` over anyio's backend, as httpx uses under asyncio."""

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
