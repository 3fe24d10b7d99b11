"""Vendors that misbehave on the wire: raw socket servers, not the sandbox.

Each server is a small threaded ``socket`` server that reads a request and answers as a hostile
vendor would: trickling its answer a byte at a time, sending decompression bombs, or echoing the
credential in every field it fills. Bounds are measured (elapsed time, peak allocation) and must
hold for the blocking and the asynchronous driver alike.
"""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
import pickle
import socket
import threading
import time
import traceback
import tracemalloc
import zlib
from collections.abc import Callable, Iterator
from functools import cache
from typing import Any

import httpx
import pytest
from _support.vendors import VENDORS, vendor_config

import invites
from invites import ConnectionFailed, InviteError, OutcomeUnknown, UnexpectedResponse

USER = "7d0f3c7e-5d4c-4a8e-9b1a-2f6f0c1e9a11"
TIMEOUT = 0.5
DEADLINE = 1.5
#: Scheduling slack on a loaded machine; the bound is deadline + one read timeout + this.
MARGIN = 0.5
#: How often a trickling server sends its next byte: well inside the read timeout.
TRICKLE = 0.1

Handler = Callable[[socket.socket, bytes, threading.Event], None]


class RawServer:
    """Accepts connections on loopback; each is served by ``handler`` on a thread of its own."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.stop = threading.Event()
        self.requests: list[bytes] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._listener.settimeout(0.05)  # so that closing is noticed: accept() is not woken
        self._connections: list[socket.socket] = []
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._listener.getsockname()[1]}"

    def _accept(self) -> None:
        while not self.stop.is_set():
            try:
                conn, _ = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            conn.settimeout(None)
            self._connections.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            while not self.stop.is_set():
                request = _read_request(conn)
                if request is None:
                    return
                self.requests.append(request)
                self.handler(conn, request, self.stop)
        except OSError:
            pass  # the client went away: that is what a bounded client does
        finally:
            conn.close()

    def close(self) -> None:
        self.stop.set()
        self._listener.close()
        for conn in self._connections:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()
        self._thread.join(timeout=5)


def _read_request(conn: socket.socket) -> bytes | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
    while len(body) < length:
        body += conn.recv(65536)
    return head


@pytest.fixture
def serve() -> Iterator[Callable[[Handler], RawServer]]:
    servers: list[RawServer] = []

    def start(handler: Handler) -> RawServer:
        server = RawServer(handler)
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()


def _answer(
    status: int, body: bytes, headers: tuple[tuple[str, str], ...] = (), reason: str = "Odd"
) -> bytes:
    lines = [f"HTTP/1.1 {status} {reason}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers]
    if not any(name.lower() == "content-type" for name, _ in headers):
        lines.append("Content-Type: application/json")
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def _provider(vendor: str, url: str, **overrides: Any) -> invites.BaseProvider:
    settings = {"timeout": TIMEOUT, "deadline": DEADLINE, **overrides}
    return invites.from_config(vendor_config(vendor, url, **settings))


# -- 1. a trickled answer never ends ------------------------------------------------------------


def _trickle(data: bytes, stop: threading.Event, conn: socket.socket) -> None:
    for index in range(len(data)):
        if stop.wait(TRICKLE):
            return
        conn.sendall(data[index : index + 1])


def trickle_body(conn: socket.socket, request: bytes, stop: threading.Event) -> None:
    conn.sendall(
        b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 9999\r\n\r\n"
    )
    _trickle(b" " * 9999, stop, conn)


def trickle_chunked(conn: socket.socket, request: bytes, stop: threading.Event) -> None:
    conn.sendall(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n")
    conn.sendall(b"Transfer-Encoding: chunked\r\n\r\n")
    while not stop.wait(TRICKLE):
        conn.sendall(b"1\r\n \r\n")


def trickle_headers(conn: socket.socket, request: bytes, stop: threading.Event) -> None:
    _trickle(b"HTTP/1.1 200 OK\r\n" + b"X-Slow: " + b"a" * 9999, stop, conn)


BODY_TRICKLES = [trickle_body, trickle_chunked]
TRICKLES = [*BODY_TRICKLES, trickle_headers]


def _bounded(call: Callable[[], object]) -> tuple[BaseException, float]:
    started = time.monotonic()
    with pytest.raises(InviteError) as caught:
        call()
    return caught.value, time.monotonic() - started


@pytest.mark.parametrize("handler", TRICKLES, ids=lambda handler: handler.__name__)
def test_a_trickled_answer_ends_by_the_deadline(
    serve: Callable[[Handler], RawServer], handler: Handler
) -> None:
    server = serve(handler)
    with _provider("tenant_api", server.url) as provider:
        error, elapsed = _bounded(lambda: provider.resend_invite(USER))
    assert isinstance(error, OutcomeUnknown)  # the POST left: the email may have gone
    assert elapsed <= DEADLINE + TIMEOUT + MARGIN


@pytest.mark.parametrize("handler", TRICKLES, ids=lambda handler: handler.__name__)
def test_a_trickled_answer_ends_by_the_deadline_async(
    serve: Callable[[Handler], RawServer], handler: Handler
) -> None:
    server = serve(handler)

    async def run() -> None:
        async with _provider("tenant_api", server.url) as provider:
            await provider.aresend_invite(USER)

    error, elapsed = _bounded(lambda: asyncio.run(run()))
    assert isinstance(error, OutcomeUnknown)
    assert elapsed <= DEADLINE + TIMEOUT + MARGIN


def test_a_trickled_read_is_a_connection_failure_nothing_was_sent(
    serve: Callable[[Handler], RawServer],
) -> None:
    # Ecosuite reads the profile (a GET) first for an invitee without an email address.
    server = serve(trickle_body)
    with _provider("ecosuite", server.url) as provider:
        error, elapsed = _bounded(lambda: provider.resend_invite("user-1"))
    assert isinstance(error, ConnectionFailed)
    assert elapsed <= DEADLINE + TIMEOUT + MARGIN
    assert all(request.startswith(b"GET ") for request in server.requests)


@pytest.mark.parametrize("handler", BODY_TRICKLES, ids=lambda handler: handler.__name__)
def test_a_callers_own_sync_client_bounds_the_body_between_chunks(
    serve: Callable[[Handler], RawServer], handler: Handler
) -> None:
    server = serve(handler)
    config = vendor_config("tenant_api", server.url, timeout=TIMEOUT, deadline=DEADLINE)
    with httpx.Client() as client, invites.from_config(config, client=client) as provider:
        error, elapsed = _bounded(lambda: provider.resend_invite(USER))
    assert isinstance(error, OutcomeUnknown)
    assert elapsed <= DEADLINE + TIMEOUT + MARGIN


@pytest.mark.parametrize("handler", TRICKLES, ids=lambda handler: handler.__name__)
def test_a_callers_own_async_client_ends_a_trickled_answer_by_the_deadline(
    serve: Callable[[Handler], RawServer], handler: Handler
) -> None:
    server = serve(handler)
    config = vendor_config("tenant_api", server.url, timeout=TIMEOUT, deadline=DEADLINE)

    async def run() -> None:
        async with (
            httpx.AsyncClient() as client,
            invites.from_config(config, async_client=client) as provider,
        ):
            await provider.aresend_invite(USER)

    error, elapsed = _bounded(lambda: asyncio.run(run()))
    assert isinstance(error, OutcomeUnknown)
    assert elapsed <= DEADLINE + TIMEOUT + MARGIN


# -- 2. decompression bombs ---------------------------------------------------------------------

#: Most a bomb may grow the process's traced allocations by while it is refused.
BOMB_GROWTH = 8 * 1024 * 1024
#: Zeros inside each bomb: a single 64 KiB network chunk of it inflates to about 64 MiB.
BOMB_ZEROS = 128 * 1024 * 1024


def _compressed_zeros(compressor: Any, size: int) -> bytes:
    block = bytes(1024 * 1024)
    parts = [compressor.compress(block) for _ in range(size // len(block))]
    return b"".join(parts) + bytes(compressor.flush())


@cache
def _bomb(encoding: str) -> bytes:
    gzip_zeros = _compressed_zeros(zlib.compressobj(9, zlib.DEFLATED, 31), BOMB_ZEROS)
    if encoding == "gzip":
        return gzip_zeros
    if encoding == "deflate":
        return _compressed_zeros(zlib.compressobj(9), BOMB_ZEROS)
    assert encoding == "gzip, gzip"
    return gzip.compress(gzip_zeros, 9)


BOMBS = ["gzip", "deflate", "gzip, gzip"]


def _answering(payload: bytes) -> Handler:
    def handler(conn: socket.socket, request: bytes, stop: threading.Event) -> None:
        conn.sendall(payload)

    return handler


def _peak_growth(call: Callable[[], object]) -> tuple[object, int]:
    tracemalloc.start()
    try:
        before, _ = tracemalloc.get_traced_memory()
        tracemalloc.reset_peak()
        try:
            outcome: object = call()
        except InviteError as exc:
            outcome = exc
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return outcome, peak - before


@pytest.mark.parametrize("encoding", BOMBS)
def test_a_decompression_bomb_is_refused_within_bounded_memory(
    serve: Callable[[Handler], RawServer], encoding: str
) -> None:
    payload = _answer(200, _bomb(encoding), (("Content-Encoding", encoding),))
    server = serve(_answering(payload))
    with _provider("tenant_api", server.url, deadline=30, timeout=10) as provider:
        outcome, growth = _peak_growth(lambda: provider.resend_invite(USER))
    assert isinstance(outcome, UnexpectedResponse)
    assert "larger than" in outcome.message
    assert growth <= BOMB_GROWTH


@pytest.mark.parametrize("encoding", BOMBS)
def test_a_decompression_bomb_is_refused_within_bounded_memory_async(
    serve: Callable[[Handler], RawServer], encoding: str
) -> None:
    payload = _answer(200, _bomb(encoding), (("Content-Encoding", encoding),))
    server = serve(_answering(payload))

    async def run() -> object:
        async with _provider("tenant_api", server.url, deadline=30, timeout=10) as provider:
            return await provider.aresend_invite(USER)

    outcome, growth = _peak_growth(lambda: asyncio.run(run()))
    assert isinstance(outcome, UnexpectedResponse)
    assert "larger than" in outcome.message
    assert growth <= BOMB_GROWTH


@pytest.mark.parametrize(
    ("encoding", "encode"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda data: zlib.compress(data, wbits=-15)),  # raw deflate, as some send
        ("gzip, deflate", lambda data: zlib.compress(gzip.compress(data))),
        ("identity", lambda data: data),
    ],
)
def test_an_encoded_answer_within_the_limit_is_decoded(
    serve: Callable[[Handler], RawServer], encoding: str, encode: Callable[[bytes], bytes]
) -> None:
    # Larger than one decoding step, so the pieces are joined.
    body = json.dumps({"message": "sent", "padding": "x" * 300_000}).encode()
    server = serve(_answering(_answer(200, encode(body), (("Content-Encoding", encoding),))))
    with _provider("tenant_api", server.url) as provider:
        result = provider.resend_invite(USER)
    assert result.message == "sent"
    assert b"accept-encoding: gzip, deflate\r\n" in server.requests[0].lower()


def test_an_encoding_that_cannot_be_decoded_in_bounds_is_refused(
    serve: Callable[[Handler], RawServer],
) -> None:
    server = serve(_answering(_answer(200, b"\x8b\x02\x80{}\x03", (("Content-Encoding", "br"),))))
    with _provider("tenant_api", server.url) as provider, pytest.raises(UnexpectedResponse) as err:
        provider.resend_invite(USER)
    assert "encoded with br" in err.value.message


# -- 3. tokens leak through fields the scrubber skips -------------------------------------------

TOKENS = [
    "test-token-not-real",
    "test\\token\\not-real",  # JSON-escaped in the body
    'test"token/not-real',
]


def _echoing(vendor: str, token: str, shape: str) -> bytes:
    """An error answer that puts ``token`` in every field ``vendor`` fills from it."""
    # The third copy straddles the 1,024-character clip: only its first 10 characters would fit.
    head = f"refused {token} because {token} "
    said = head + "x" * (1021 - 10 - len(head)) + token + " and more"
    if vendor == "tenant_api":
        data: dict[str, Any] = {
            "code": f"bad_key_{token}",
            "message": said,
            "details": {"key": token, "more": [token]},
            "notices": [f"{token}!"],
        }
    elif vendor == "softwareone":
        data = {
            "title": f"bad {token}",
            "detail": said,
            "traceId": f"{token}-trace",
            "errors": {"token": [f"{token} is wrong"]},
        }
    else:
        data = {"message": said}
    if shape == "json":
        return _answer(403, json.dumps(data).encode(), reason=f"No {token}")
    return _answer(403, f"<p>{said}</p>".encode(), (("Content-Type", "text/html"),), f"No {token}")


def _leaks(error: BaseException, token: str) -> list[str]:
    escaped = json.dumps(token)[1:-1]
    views = {
        "str": str(error),
        "repr": repr(error),
        "pickle": pickle.dumps(error).decode("latin-1"),
        "traceback": "".join(traceback.format_exception(error)),
        "fields": repr(vars(error)),
    }
    # Any 8 characters of it in a row count: a token cut short is still a leak.
    pieces = {
        form[start : start + 8] for form in (token, escaped) for start in range(len(form) - 7)
    }
    return [name for name, text in views.items() if any(piece in text for piece in pieces)]


@pytest.mark.parametrize("vendor", VENDORS)
@pytest.mark.parametrize("token", TOKENS)
@pytest.mark.parametrize("shape", ["json", "html"])
def test_no_field_of_any_error_shows_the_token(
    serve: Callable[[Handler], RawServer], vendor: str, token: str, shape: str
) -> None:
    server = serve(_answering(_echoing(vendor, token, shape)))
    config = vendor_config(vendor, server.url, token=token, timeout=TIMEOUT, deadline=DEADLINE)
    with invites.from_config(config) as provider, pytest.raises(InviteError) as caught:
        provider.resend_invite("11111111-2222-4333-8444-555555555555")
    assert "<redacted>" in str(caught.value) or "<redacted>" in repr(caught.value.details)
    assert _leaks(caught.value, token) == []


@pytest.mark.parametrize("vendor", VENDORS)
def test_no_field_of_any_error_shows_the_token_async(
    serve: Callable[[Handler], RawServer], vendor: str
) -> None:
    token = TOKENS[1]
    server = serve(_answering(_echoing(vendor, token, "json")))
    config = vendor_config(vendor, server.url, token=token, timeout=TIMEOUT, deadline=DEADLINE)

    async def run() -> None:
        async with invites.from_config(config) as provider:
            await provider.aresend_invite("11111111-2222-4333-8444-555555555555")

    with pytest.raises(InviteError) as caught:
        asyncio.run(run())
    assert _leaks(caught.value, token) == []


def drop(conn: socket.socket, request: bytes, stop: threading.Event) -> None:
    conn.shutdown(socket.SHUT_RDWR)


@pytest.mark.parametrize("token", ["k", "t"])
def test_a_short_token_leaves_the_librarys_own_words_alone(
    serve: Callable[[Handler], RawServer], token: str
) -> None:
    server = serve(drop)
    config = vendor_config("tenant_api", server.url, token=token, timeout=TIMEOUT)
    with invites.from_config(config) as provider, pytest.raises(OutcomeUnknown) as caught:
        provider.resend_invite(USER)
    assert "no answer came back" in caught.value.message
    assert "<redacted>" not in str(caught.value)


# -- 4. more concurrency than connections -------------------------------------------------------


class _Slow:
    """Answers every request after a pause, counting the requests it holds at once."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.now = 0
        self.most = 0

    def __call__(self, conn: socket.socket, request: bytes, stop: threading.Event) -> None:
        with self.lock:
            self.now += 1
            self.most = max(self.most, self.now)
        stop.wait(0.3)
        with self.lock:
            self.now -= 1
        conn.sendall(_answer(200, b'{"message": "sent"}', reason="OK"))


def _users(count: int) -> list[str]:
    return [f"{index:08x}-0000-4000-8000-000000000000" for index in range(count)]


# Waiting for a connection longer than this is a PoolTimeout: far less than one answer takes.
POOL_WAIT = {"pool": 0.1}


def test_a_bulk_run_wider_than_the_pool_never_waits_for_a_connection(
    serve: Callable[[Handler], RawServer],
) -> None:
    slow = _Slow()
    server = serve(slow)
    config = vendor_config("tenant_api", server.url, timeout=5, timeouts=POOL_WAIT, max_attempts=1)

    async def run() -> list[invites.Outcome]:
        async with invites.from_config(config) as provider:
            return [o async for o in invites.aresend_many(provider, _users(150), concurrency=150)]

    outcomes = asyncio.run(run())
    assert [o.error for o in outcomes if not o.ok] == []
    assert len(outcomes) == 150
    assert slow.most <= 100


def test_a_threaded_bulk_run_wider_than_the_pool_never_waits_for_a_connection(
    serve: Callable[[Handler], RawServer],
) -> None:
    slow = _Slow()
    server = serve(slow)
    config = vendor_config("tenant_api", server.url, timeout=5, timeouts=POOL_WAIT, max_attempts=1)
    with invites.from_config(config) as provider:
        outcomes = list(invites.resend_many(provider, _users(150), concurrency=150))
    assert [o.error for o in outcomes if not o.ok] == []
    assert slow.most <= 100
