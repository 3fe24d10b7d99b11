"""Reading an answer's body: within :data:`BODY_LIMIT` after decoding, decoded in bounded pieces
(:mod:`invites._http.decoding`), and, for a caller's own client, checked against the resend's
deadline between chunks (:mod:`invites._http.deadline`)."""

from __future__ import annotations

import zlib
from collections.abc import Iterator
from typing import Final, TypeGuard, TypeVar

import httpx

from ..errors import UnexpectedResponse
from .deadline import time_left
from .decoding import Chain, Unsupported, chain_for

__all__ = [
    "BODY_LIMIT",
    "JSON_TYPED",
    "Body",
    "DeadlineBound",
    "fits",
    "from_network",
    "json_typed",
    "past_deadline",
    "read_failure",
    "too_large",
    "undecodable",
    "unsupported",
]

_Stream = TypeVar("_Stream", httpx.SyncByteStream, httpx.AsyncByteStream)

#: Bodies larger than this are refused unread.
BODY_LIMIT: Final = 1024 * 1024
#: The response extension :func:`fits` sets: whether a ``Content-Type`` names JSON ("json" in
#: any of its values, without case). Header edits after it would make it stale: none are made.
JSON_TYPED: Final = "invites.json_typed"


def from_network(stream: object, kind: type[_Stream]) -> TypeGuard[_Stream]:
    """Whether ``stream`` is a ``kind`` still to be read (an in-memory body cannot trickle)."""
    return isinstance(stream, kind) and not isinstance(stream, httpx.ByteStream)


class DeadlineBound(httpx.SyncByteStream):
    """A body stream that fails with a read timeout once the resend's deadline has passed."""

    def __init__(self, stream: httpx.SyncByteStream, request: httpx.Request) -> None:
        self._stream = stream
        self._request = request

    def __iter__(self) -> Iterator[bytes]:
        for chunk in self._stream:
            left = time_left()
            if left is not None and left <= 0:
                raise past_deadline(self._request)
            yield chunk

    def close(self) -> None:
        self._stream.close()


class Body:
    """An answer's body, decoded as it arrives, within :data:`BODY_LIMIT`."""

    __slots__ = ("_chain", "_data", "_response")

    def __init__(self, response: httpx.Response) -> None:
        self._response = response
        self._chain: Chain = chain_for(response, BODY_LIMIT)
        self._data = bytearray()

    def add(self, chunk: bytes) -> bool:
        """Decode ``chunk``; True when the body has grown past the limit."""
        try:
            for piece in self._chain.feed(chunk):
                self._data += piece
                if len(self._data) > BODY_LIMIT:
                    return True
        except OverflowError:
            return True
        return False

    def finish(self) -> httpx.Response | Exception:
        """The whole answer, or the refusal of a body that ended past the limit."""
        try:
            for piece in self._chain.flush():
                self._data += piece
                if len(self._data) > BODY_LIMIT:
                    return too_large(self._response)
        except OverflowError:
            return too_large(self._response)
        return _rebuilt(self._response, bytes(self._data))


def fits(response: httpx.Response) -> bool:
    """Whether the body can be read in one go: declared once, small and not compressed.

    The same pass notes, as :data:`JSON_TYPED` in the response's extensions, whether its
    ``Content-Type`` names JSON, so that reading the body as JSON needs no second pass.
    """
    # One pass over the raw headers: two Headers.get() calls cost several times more.
    length: bytes | None = None
    typed = False
    for key, value in response.headers.raw:
        name = key.lower()
        if name == b"content-length":
            if length is not None:
                return False  # declared twice: read it incrementally, within the limit
            length = value
        elif name == b"content-type":
            typed = typed or b"json" in value.lower()
        elif name == b"content-encoding" and value.strip().lower() not in (b"", b"identity"):
            return False
    response.extensions[JSON_TYPED] = typed
    return length is not None and length.isdigit() and int(length) <= BODY_LIMIT


def json_typed(response: httpx.Response) -> bool:
    """Whether ``response``'s ``Content-Type`` names JSON ("json" in any of its values, without
    case): as :data:`JSON_TYPED` says when :func:`fits` noted it, else read from the headers."""
    typed = response.extensions.get(JSON_TYPED)
    if typed is None:
        # One pass over the raw headers: Headers.get() decodes and joins every value first.
        typed = False
        for key, value in response.headers.raw:
            if key.lower() == b"content-type" and b"json" in value.lower():
                typed = True
    return bool(typed)


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


def too_large(response: httpx.Response) -> Exception:
    return UnexpectedResponse(
        f"the answer's body is larger than {BODY_LIMIT} bytes; refused unread",
        status_code=response.status_code,
    )


def unsupported(response: httpx.Response, exc: Unsupported) -> Exception:
    return UnexpectedResponse(
        f"the answer's body is encoded with {exc}, which is not decoded here",
        status_code=response.status_code,
    )


def past_deadline(request: httpx.Request) -> httpx.ReadTimeout:
    # A read timeout: the request may have left, so the policy decides as for any lost answer.
    return httpx.ReadTimeout(
        "the resend's deadline passed before the answer was read", request=request
    )


def undecodable(response: httpx.Response, exc: Exception) -> Exception:
    return UnexpectedResponse(
        f"the answer's body could not be decoded ({type(exc).__name__})",
        status_code=response.status_code,
    )


def read_failure(response: httpx.Response, exc: Exception) -> Exception:
    """What reading ``response``'s body failed with, as the engine takes it: an answer it cannot
    decode is an :class:`UnexpectedResponse`; anything else (httpx's ``TransportError``, an error
    inside the client) is returned as it is, for the policy to judge as a lost answer."""
    if isinstance(exc, httpx.DecodingError | zlib.error):
        return undecodable(response, exc)
    if isinstance(exc, Unsupported):
        return unsupported(response, exc)
    return exc
