"""The Starlette app: the simulated vendors' routes behind admission and fault injection.

Every request passes two layers before a vendor endpoint sees it. `_Admission` (around the whole
app) records the request and applies the rate limit. `_FaultGate` (around each vendor route that
names a user) applies the next fault due for that user id. The routes come from the sandbox's
vendors (`VendorSandbox.routes`), so the app knows no vendor by name. The sandbox's own paths,
under ``/__sandbox__`` (``GET /__sandbox__/stats``: `Sandbox.stats`), pass neither layer.
"""

from __future__ import annotations

from typing import NoReturn, cast

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import BaseRoute, Route, request_response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._core import (
    RESERVED_PREFIX,
    Endpoint,
    RecordedRequest,
    Sandbox,
    VendorRoute,
    VendorSandbox,
    json_failure,
)
from ._faults import ConnectionDropped, Fault

# Gateway-level failures: (machine code, text in the words of AWS API Gateway).
_FAILURE_TEXT = {
    429: ("rate_limited", "Too Many Requests"),
    500: ("internal_error", "Internal server error"),
    503: ("unavailable", "Service Unavailable"),
    504: ("gateway_timeout", "Endpoint request timed out"),
}


def _failure(
    vendor: VendorSandbox | None, status: int, headers: dict[str, str] | None = None
) -> Response:
    """A 429/500/503/504 in the JSON shape `vendor` uses for its errors."""
    code, message = _FAILURE_TEXT[status]
    if vendor is None:
        return json_failure(status, code, message, headers)
    return vendor.failure(status, code, message, headers)


_BAD_GATEWAY_PAGE = "<html><body><h1>502 Bad Gateway</h1></body></html>"
_SERVER_ERROR_PAGE = (
    "<!DOCTYPE html><html><head><title>500 Internal Server Error</title></head>"
    "<body><h1>Internal Server Error</h1>"
    "<p>The server encountered an unexpected condition.</p></body></html>"
)
_TRUNCATED_JSON = b'{"message": "Invite re'
_DROPPED_LENGTH = 100


def _fault_response(fault: Fault, vendor: VendorSandbox | None, retry_after: int) -> Response:
    """The answer that replaces the vendor's for a fault that stops the request."""
    match fault:
        case Fault.RATE_LIMIT:
            return _failure(vendor, 429, {"Retry-After": str(retry_after)})
        case Fault.UNAVAILABLE:
            return _failure(vendor, 503, {"Retry-After": str(retry_after)})
        case Fault.SERVER_ERROR:
            return _failure(vendor, 500)
        case Fault.GATEWAY_TIMEOUT:
            return _failure(vendor, 504)
        case Fault.BAD_GATEWAY:
            return HTMLResponse(_BAD_GATEWAY_PAGE, 502)
        case Fault.HTML_ERROR:
            return HTMLResponse(_SERVER_ERROR_PAGE, 500)
        case Fault.MALFORMED_JSON:
            return Response(_TRUNCATED_JSON, 200, media_type="application/json")
        case _:
            raise ValueError(f"{fault} does not replace the answer")


def _sandbox_of(scope: Scope) -> Sandbox:
    return cast(Sandbox, scope["app"].state.sandbox)


class _Admission:
    """Records every HTTP request and refuses those over the rate limit."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sandbox = _sandbox_of(scope)
        if _is_reserved(scope["path"]):  # the sandbox's own paths: never counted nor limited
            await self.app(scope, receive, send)
            return
        vendor = sandbox.vendor_of(scope["path"])
        retry_after = sandbox._admit(
            RecordedRequest(vendor.name if vendor else "unknown", scope["method"], scope["path"])
        )
        if retry_after is None:
            await self.app(scope, receive, send)
        else:
            response = _failure(vendor, 429, {"Retry-After": str(retry_after)})
            await response(scope, receive, send)


class _FaultGate:
    """One vendor route, behind the faults due for the user id its path names.

    `id_param` is the path parameter holding that id; `resend` marks routes that may send an
    email, the only ones random faults hit.
    """

    def __init__(self, endpoint: Endpoint, *, id_param: str, resend: bool) -> None:
        self.app = request_response(endpoint)
        self.id_param = id_param
        self.resend = resend

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        sandbox = _sandbox_of(scope)
        user_id: str = scope["path_params"][self.id_param]
        fault = sandbox._take_fault(user_id, resend=self.resend)
        if fault is None:
            await self.app(scope, receive, send)
        elif fault is Fault.SLOW:
            await sandbox._sleep(sandbox.slow_seconds)
            await self.app(scope, receive, send)
        elif fault is Fault.DROP_AFTER:
            drop = _Drop(fault, receive, send)
            await self.app(scope, drop.receive, drop.send_headers_only)
            await drop.now()  # the handler sent no body: drop all the same
        elif fault is Fault.DROP_BEFORE:
            drop = _Drop(fault, receive, send)
            await drop.send_headers_only(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", str(_DROPPED_LENGTH).encode()),
                    ],
                }
            )
            await drop.now()
        else:
            response = _fault_response(fault, sandbox.vendor_of(scope["path"]), sandbox.retry_after)
            await response(scope, receive, send)


class _Drop:
    """Ends a response after its headers by raising `ConnectionDropped`.

    The request body is read to its end first: closing a socket with unread input makes the
    kernel reset the connection, and the client could lose the headers already sent.
    """

    def __init__(self, fault: Fault, receive: Receive, send: Send) -> None:
        self.fault = fault
        self._receive = receive
        self._send = send
        self._request_read = False

    async def receive(self) -> Message:
        message = await self._receive()
        if message["type"] != "http.request" or not message.get("more_body", False):
            self._request_read = True
        return message

    async def send_headers_only(self, message: Message) -> None:
        if message["type"] == "http.response.body":
            await self.now()
        await self._send(message)

    async def now(self) -> NoReturn:
        while not self._request_read:
            await self.receive()
        raise ConnectionDropped(str(self.fault))


def _is_reserved(path: str) -> bool:
    return path == RESERVED_PREFIX or path.startswith(RESERVED_PREFIX + "/")


async def _stats(request: Request) -> Response:
    return JSONResponse(_sandbox_of(request.scope).stats())


async def _unrouted(request: Request, exc: Exception) -> Response:
    """404/405 from the router, in the JSON shape of the vendor owning the path (Starlette's
    own answer is text/plain): e.g. an id holding a newline, which no path template takes."""
    assert isinstance(exc, HTTPException)
    vendor = _sandbox_of(request.scope).vendor_of(request.scope["path"])
    if vendor is None:
        response = json_failure(exc.status_code, "not_found", exc.detail)
    else:
        response = vendor.unrouted(exc.status_code)
    response.headers.update(exc.headers or {})
    return response


def _route(route: VendorRoute) -> BaseRoute:
    if route.id_param is None:
        return Route(route.path, route.endpoint, methods=list(route.methods))
    gate = _FaultGate(route.endpoint, id_param=route.id_param, resend=route.resend)
    return Route(route.path, gate, methods=list(route.methods))


def create_app(sandbox: Sandbox | None = None) -> Starlette:
    """The ASGI app playing every vendor of `sandbox` on one base URL.

    `sandbox` (a new default `Sandbox` when None) holds the state and is also reachable as
    ``app.state.sandbox``. Serve it in-process with ``httpx.ASGITransport`` or over a socket with
    `serve`.
    """
    sandbox = sandbox if sandbox is not None else Sandbox()
    routes = [_route(route) for vendor in sandbox.vendors for route in vendor.routes()]
    routes.append(Route(f"{RESERVED_PREFIX}/stats", _stats, methods=["GET"]))
    app = Starlette(
        routes=routes,
        middleware=[Middleware(_Admission)],
        exception_handlers={404: _unrouted, 405: _unrouted},
    )
    app.state.sandbox = sandbox
    return app
