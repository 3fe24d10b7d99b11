"""The misbehaviours the sandbox can inject."""

from __future__ import annotations

import enum


class Fault(enum.StrEnum):
    """A misbehaviour the sandbox can put in place of (or around) a vendor's answer.

    Faults that replace the answer (everything except `SLOW` and `DROP_AFTER`) stop the request
    before the vendor handler runs, so no email is counted for it.
    """

    RATE_LIMIT = "rate_limit"
    """429 with ``Retry-After: <retry_after>`` and a vendor-shaped JSON body."""
    UNAVAILABLE = "unavailable"
    """503 with ``Retry-After: <retry_after>`` and a vendor-shaped JSON body."""
    SERVER_ERROR = "server_error"
    """500 with a vendor-shaped JSON body."""
    BAD_GATEWAY = "bad_gateway"
    """502 with a gateway's HTML page."""
    GATEWAY_TIMEOUT = "gateway_timeout"
    """504 with a vendor-shaped JSON body."""
    SLOW = "slow"
    """Wait ``slow_seconds``, then answer normally (an email is counted as usual)."""
    DROP_BEFORE = "drop_before"
    """Start a response, then drop the connection; the vendor never acted (no email)."""
    DROP_AFTER = "drop_after"
    """The vendor acts (an email is counted), then the connection drops before the body."""
    MALFORMED_JSON = "malformed_json"
    """200 labelled JSON with a truncated body; the vendor failed to render (no email)."""
    HTML_ERROR = "html_error"
    """500 with an HTML error page instead of JSON."""


ALL_FAULTS = tuple(Fault)


class ConnectionDropped(Exception):
    """Raised by the app to drop a connection deliberately (`Fault.DROP_BEFORE`, `DROP_AFTER`).

    It is raised after ``http.response.start`` was sent. Under uvicorn the server then closes the
    socket, so an HTTP client sees the connection end mid-response (httpx: ``RemoteProtocolError``).
    In-process, ``httpx.ASGITransport`` and Starlette's ``TestClient`` re-raise it to the caller.
    """
