"""From a vendor's call to the request that is sent: the provider's default headers under the
call's own, the credential's header (built once per token), the timeouts, a JSON body's bytes."""

from __future__ import annotations

from collections.abc import Mapping

import httpx

from .._settings.secret import Secret
from ..errors import UnexpectedResponse
from .actions import AuthHeader, Builder, Call
from .answers import json_bytes

__all__ = ["Requests"]


class Requests:
    """Builds one provider's requests."""

    __slots__ = ("_default_headers", "_last", "_timeout")

    def __init__(self, timeout: httpx.Timeout, headers: Mapping[str, str] | None = None) -> None:
        # Headers every request carries (User-Agent, Accept); a call's own headers override them.
        self._default_headers = dict(headers or {})
        # Given to each request as httpx's "timeout" request extension, which its transports
        # read: cheaper than build_request(timeout=...), which rebuilds a Timeout every time.
        self._timeout = timeout.as_dict()
        # The last headers built: (the call's headers, the token, the merged headers). The
        # credential header is built once per token, not on every attempt.
        self._last: tuple[Mapping[str, str] | None, Secret, httpx.Headers] | None = None

    def _headers(
        self, extra: Mapping[str, str] | None, token: Secret, auth_header: AuthHeader
    ) -> httpx.Headers:
        """The call's headers with the credential's, normalised once; never mutated (httpx
        copies them, which for ``httpx.Headers`` is a list copy, not a new normalisation)."""
        last = self._last
        if last is not None and last[0] is extra and last[1] is token:
            return last[2]
        name, value = auth_header(token.reveal())
        headers = dict(self._default_headers)
        if extra:
            given = {key.lower() for key in extra}
            headers = {key: text for key, text in headers.items() if key.lower() not in given}
            headers.update(extra)
        headers[name] = value
        built = httpx.Headers(headers)
        self._last = (extra, token, built)
        return built

    def build(
        self, build: Builder, call: Call, token: Secret, auth_header: AuthHeader
    ) -> httpx.Request:
        """The request for ``call`` with ``token``, built by the driver's client's ``build``."""
        # The timeouts also apply over a caller's own client.
        extensions = {"timeout": self._timeout.copy()}
        try:
            headers = self._headers(call.headers, token, auth_header)
            if call.json is None:
                return build(call.method, call.url, headers=headers, extensions=extensions)
            content = json_bytes(call.json)
            request = build(
                call.method, call.url, content=content, headers=headers, extensions=extensions
            )
            _type_json(request.headers)
            return request
        except (UnicodeError, httpx.InvalidURL) as exc:
            # e.g. a cookie a vendor set in the caller's own client that cannot be sent back
            raise UnexpectedResponse(
                f"the request could not be built ({type(exc).__name__}); nothing was sent"
            ) from exc


def _type_json(headers: httpx.Headers) -> None:
    """Add ``Content-Type: application/json`` unless the headers have a content type already.

    One pass over the raw headers: ``setdefault`` would look the name up through ``Headers``,
    which first works out the headers' text encoding and raises a KeyError when it is absent.
    """
    for key, _ in headers.raw:
        if key.lower() == b"content-type":
            return
    headers["Content-Type"] = "application/json"
