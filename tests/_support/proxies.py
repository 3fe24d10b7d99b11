"""A TLS vendor and a forward proxy on loopback, served by one asyncio loop in a thread.

:class:`Origin` answers every request ``200 {"message": "sent"}`` over TLS, with a certificate
from a throwaway CA (``trustme``). :class:`ForwardProxy` is an HTTP proxy: it tunnels ``CONNECT``
and forwards absolute-form requests, and can refuse a tunnel with a status or stall it.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import trustme

ANSWER = (
    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 19\r\n\r\n"
    b'{"message": "sent"}'
)

#: The kind of server :func:`serving` runs.
_Served = TypeVar("_Served", bound="_Server")


class Loop:
    """An event loop running in a daemon thread, for servers."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coroutine: Awaitable[Any]) -> Any:
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(10)  # type: ignore[arg-type]

    def stop(self) -> None:
        """Cancels what still runs, stops the loop in its own thread, waits for it, closes it."""
        try:
            self.run(_cancel_others())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(10)
        if self.thread.is_alive():
            raise RuntimeError("the servers' event loop did not stop within 10 s")
        self.loop.close()


async def _cancel_others() -> None:
    tasks = [task for task in asyncio.all_tasks() if task is not asyncio.current_task()]
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)


async def _head(reader: asyncio.StreamReader) -> tuple[str, dict[str, str]] | None:
    try:
        raw = await reader.readuntil(b"\r\n\r\n")
    except (asyncio.IncompleteReadError, ConnectionError):
        return None
    line, *rest = raw.decode("latin-1").split("\r\n")
    headers = {}
    for header in rest:
        name, _, value = header.partition(":")
        if name:
            headers[name.strip().lower()] = value.strip()
    return line, headers


async def _body(reader: asyncio.StreamReader, headers: dict[str, str]) -> bytes:
    return await reader.readexactly(int(headers.get("content-length", "0")))


class _Server:
    """A server on a :class:`Loop`: every connection is closed when its handler ends, and
    :meth:`close` (run in the loop) ends the open ones too."""

    server: asyncio.Server

    def __init__(self) -> None:
        self._open: set[asyncio.StreamWriter] = set()

    def _listen(self, loop: Loop, context: ssl.SSLContext | None = None) -> asyncio.Server:
        return loop.run(  # type: ignore[no-any-return]
            asyncio.start_server(self._connection, "127.0.0.1", 0, ssl=context)
        )

    async def _connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._open.add(writer)
        try:
            await self._serve(reader, writer)
        finally:
            self._open.discard(writer)
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        raise NotImplementedError

    async def close(self) -> None:
        """No new connection; the open ones aborted (their handlers see the end of the stream);
        returns once the server has let go of all of them."""
        self.server.close()
        for writer in list(self._open):
            writer.transport.abort()
        await _cancel_others()
        await self.server.wait_closed()


class Origin(_Server):
    """A vendor over TLS on 127.0.0.1; ``requests`` lists each request line it answered."""

    def __init__(self, loop: Loop, ca: trustme.CA) -> None:
        super().__init__()
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
        self.ca = ca
        self.requests: list[str] = []
        self.server = self._listen(loop, context)
        self.port = self.server.sockets[0].getsockname()[1]
        self.url = f"https://127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, ssl.SSLError, asyncio.IncompleteReadError):
            while (head := await _head(reader)) is not None:
                await _body(reader, head[1])
                self.requests.append(head[0])
                writer.write(ANSWER)
                await writer.drain()


class ForwardProxy(_Server):
    """An HTTP proxy on 127.0.0.1.

    ``refuse`` answers every request (``CONNECT`` or forwarded) with that status instead;
    ``stall`` accepts a tunnel and then never relays a byte. ``seen`` lists each request line it
    received, ``auth`` each ``Proxy-Authorization`` header (or None).
    """

    def __init__(self, loop: Loop) -> None:
        super().__init__()
        self.refuse: int | None = None
        self.stall = False
        self.seen: list[str] = []
        self.auth: list[str | None] = []
        self.server = self._listen(loop)
        self.port = self.server.sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            while (head := await _head(reader)) is not None:
                line, headers = head
                self.seen.append(line)
                self.auth.append(headers.get("proxy-authorization"))
                if self.refuse is not None:
                    await _body(reader, headers)
                    writer.write(_refusal(self.refuse))
                    await writer.drain()
                    continue
                method, target, _ = line.split(" ", 2)
                if method == "CONNECT":
                    await self._tunnel(target, reader, writer)
                else:
                    await self._forward(method, target, headers, reader, writer)
                break

    async def _tunnel(
        self, target: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        writer.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        await writer.drain()
        if self.stall:
            await reader.read()  # until the client gives up
            return
        host, _, port = target.rpartition(":")
        upstream_reader, upstream_writer = await asyncio.open_connection(host, int(port))
        await asyncio.gather(
            _pipe(reader, upstream_writer), _pipe(upstream_reader, writer), return_exceptions=True
        )

    async def _forward(
        self,
        method: str,
        target: str,
        headers: dict[str, str],
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        body = await _body(reader, headers)
        rest = target.split("://", 1)[1]
        authority, _, path = rest.partition("/")
        host, _, port = authority.rpartition(":")
        upstream_reader, upstream_writer = await asyncio.open_connection(host, int(port))
        kept = {k: v for k, v in headers.items() if not k.startswith("proxy-")}
        kept["connection"] = "close"
        head = f"{method} /{path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in kept.items())
        upstream_writer.write(head.encode("latin-1") + b"\r\n" + body)
        await upstream_writer.drain()
        writer.write(await upstream_reader.read())  # the whole answer: the vendor closes
        await writer.drain()
        upstream_writer.close()


def _refusal(status: int) -> bytes:
    extra = "Proxy-Authenticate: Basic realm=proxy\r\n" if status == 407 else ""
    return f"HTTP/1.1 {status} Refused\r\n{extra}Content-Length: 0\r\n\r\n".encode()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    finally:
        writer.close()


@contextlib.contextmanager
def serving(start: Callable[[Loop], _Served]) -> Iterator[_Served]:
    """``start(loop)``'s server on a fresh loop thread; afterwards, the server and its connections
    are closed in that loop (asyncio objects are not thread-safe), then the loop is stopped."""
    loop = Loop()
    made = start(loop)
    try:
        yield made
    finally:
        try:
            loop.run(made.close())
        finally:
            loop.stop()
