"""The simulated vendors: sandbox state, fault injection and the Starlette app.

One app answers for three vendors on one base URL; their paths do not collide:

- Ecosuite: ``/users/...``
- SoftwareOne: ``/public/v1/...``
- tenant-header API: ``/v1/...``

Every request passes two layers before a vendor handler sees it. `_Admission` (around the whole
app) records the request and applies the rate limit. `_FaultGate` (around each vendor route)
applies the next fault due for the user id the path names.
"""

from __future__ import annotations

import asyncio
import collections
import enum
import json
import math
import random
import re
import secrets
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any, NamedTuple, NoReturn, cast

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route, request_response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ._data import (
    ECOSUITE_PROFILES,
    ECOSUITE_TOKEN,
    ECOSUITE_USER_FORBIDDEN,
    SOFTWAREONE_ACCOUNT_ID,
    SOFTWAREONE_MEMBERSHIP_ACTIVE,
    SOFTWAREONE_MEMBERSHIP_DELETED,
    SOFTWAREONE_MEMBERSHIP_EXPIRED,
    SOFTWAREONE_MEMBERSHIP_INVITED,
    SOFTWAREONE_TOKEN,
    SOFTWAREONE_USER_ACTIVE,
    SOFTWAREONE_USER_DELETED,
    SOFTWAREONE_USER_EXPIRED,
    SOFTWAREONE_USER_INVITED,
    TENANT_API_KEY,
    TENANT_BEARER_TOKEN,
    TENANT_ID,
    TENANT_USER_COOLDOWN,
    TENANT_USER_INVITED,
    TENANT_USER_INVITED_2,
    TENANT_USER_VERIFIED,
)

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]


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


class ConnectionDropped(Exception):
    """Raised by the app to drop a connection deliberately (`Fault.DROP_BEFORE`, `DROP_AFTER`).

    It is raised after ``http.response.start`` was sent. Under uvicorn the server then closes the
    socket, so an HTTP client sees the connection end mid-response (httpx: ``RemoteProtocolError``).
    In-process, ``httpx.ASGITransport`` and Starlette's ``TestClient`` re-raise it to the caller.
    """


_ALL_FAULTS = tuple(Fault)


class RecordedRequest(NamedTuple):
    """One request the sandbox received. Headers are never kept: they carry credentials."""

    vendor: str
    """``"ecosuite"``, ``"softwareone"``, ``"tenant_api"`` or ``"unknown"``."""
    method: str
    path: str


@dataclass
class _Membership:
    """A SoftwareOne account membership, as the sandbox holds it."""

    membership_id: str
    user_id: str
    name: str
    status: str
    invitation_url: str
    updated_at: str


_SEEDED_MEMBERSHIPS = (
    (SOFTWAREONE_MEMBERSHIP_INVITED, SOFTWAREONE_USER_INVITED, "Alan Turing", "Invited"),
    (SOFTWAREONE_MEMBERSHIP_ACTIVE, SOFTWAREONE_USER_ACTIVE, "Edsger Dijkstra", "Active"),
    (
        SOFTWAREONE_MEMBERSHIP_EXPIRED,
        SOFTWAREONE_USER_EXPIRED,
        "Barbara Liskov",
        "InvitationExpired",
    ),
    (SOFTWAREONE_MEMBERSHIP_DELETED, SOFTWAREONE_USER_DELETED, "Ken Thompson", "Deleted"),
)
_SEEDED_AT = "2025-10-24T20:57:56.471Z"


def _timestamp() -> str:
    now = datetime.now(UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"


def _invitation_url() -> str:
    return f"https://portal.sandbox.invalid/invitations/{secrets.token_hex(12)}"


class Sandbox:
    """The state behind the simulated vendors: emails sent, requests seen, faults due.

    Thread-safe: the app mutates it on uvicorn's event-loop thread while tests read it from
    another thread. Every accessor returns a copy.

    Args:
        fault_rate: probability in [0, 1] that a resend request (never a GET) draws a random
            fault from `faults`. Injected faults (`inject`) come first and are not drawn.
        seed: seed of the random generator behind `fault_rate`; the same seed and the same
            sequence of requests give the same `fault_log`.
        faults: the kinds a random draw picks from (default: every `Fault`).
        rate_limit: admit at most this many requests per second across all vendors (a token
            bucket holding ``max(1, rate_limit)`` tokens); beyond it, 429 with ``Retry-After``.
        legacy_removed: SoftwareOne's deprecated ``/accounts/account-users/...`` family answers the
            gateway's ``404 {"message": "Resource not found", "statusCode": 404}``. A plain
            attribute: it may be switched while the sandbox runs.
        retry_after: seconds sent in ``Retry-After`` by `Fault.RATE_LIMIT` and `Fault.UNAVAILABLE`.
        slow_seconds: how long `Fault.SLOW` waits before answering.
        request_log_limit: keep only the most recent this-many entries in `requests` (None: all);
            `request_count` still counts every request.
        clock: monotonic seconds for the rate limit; tests pass a frozen clock.
        sleep: the coroutine `Fault.SLOW` awaits; tests pass one that returns at once.

    Raises:
        ValueError: an argument out of range.
    """

    def __init__(
        self,
        *,
        fault_rate: float = 0.0,
        seed: int | None = None,
        faults: Sequence[Fault] = _ALL_FAULTS,
        rate_limit: float | None = None,
        legacy_removed: bool = False,
        retry_after: int = 1,
        slow_seconds: float = 0.2,
        request_log_limit: int | None = None,
        clock: Clock = time.monotonic,
        sleep: Sleep = asyncio.sleep,
    ) -> None:
        if not 0.0 <= fault_rate <= 1.0:
            raise ValueError(f"fault_rate must be between 0 and 1, not {fault_rate!r}")
        if fault_rate > 0 and not faults:
            raise ValueError("fault_rate > 0 needs at least one fault kind in faults")
        if rate_limit is not None and not rate_limit > 0:
            raise ValueError(f"rate_limit must be positive, not {rate_limit!r}")
        if retry_after < 0:
            raise ValueError(f"retry_after must not be negative, not {retry_after!r}")
        if slow_seconds < 0:
            raise ValueError(f"slow_seconds must not be negative, not {slow_seconds!r}")
        if request_log_limit is not None and request_log_limit < 0:
            raise ValueError(f"request_log_limit must not be negative, not {request_log_limit!r}")
        self.fault_rate = fault_rate
        self.seed = seed
        self.faults: tuple[Fault, ...] = tuple(Fault(fault) for fault in faults)
        self.rate_limit = rate_limit
        self.legacy_removed = legacy_removed
        self.retry_after = retry_after
        self.slow_seconds = slow_seconds
        self.request_log_limit = request_log_limit
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._ecosuite_profiles: dict[str, Any] = dict(ECOSUITE_PROFILES)
        self._tenant_invited: set[str] = set(_TENANT_INVITED)
        self._clear()

    def add_users(self, vendor: str, user_ids: Iterable[str]) -> None:
        """Seed more users who can be re-invited (kept across `reset`), e.g. for bulk runs.

        ``vendor`` is ``"ecosuite"`` (each gets a complete generated profile) or ``"tenant_api"``
        (ids must be UUIDs).
        """
        ids = list(user_ids)
        with self._lock:
            if vendor == "ecosuite":
                for user_id in ids:
                    self._ecosuite_profiles[user_id] = {
                        "email": f"{user_id}@example.com",
                        "firstName": "Sandbox",
                        "lastName": user_id,
                    }
            elif vendor == "tenant_api":
                self._tenant_invited.update(str(uuid.UUID(user_id)) for user_id in ids)
            else:
                raise ValueError(f"add_users takes 'ecosuite' or 'tenant_api', not {vendor!r}")

    def _clear(self) -> None:
        self._emails: collections.Counter[str] = collections.Counter()
        self._requests: collections.deque[RecordedRequest] = collections.deque(
            maxlen=self.request_log_limit
        )
        self._request_count = 0
        self._injected: dict[str, collections.deque[Fault]] = {}
        self._fault_log: list[tuple[str, Fault]] = []
        self._rng = random.Random(self.seed)
        self._rate_limited = 0
        self._tokens = max(1.0, self.rate_limit or 0.0)
        self._refilled_at = self._clock()
        self._memberships = {
            membership_id: _Membership(
                membership_id, user_id, name, status, _invitation_url(), _SEEDED_AT
            )
            for membership_id, user_id, name, status in _SEEDED_MEMBERSHIPS
        }

    def reset(self) -> None:
        """Forget emails, requests, queued faults, the fault log and rate-limit state.

        The random generator restarts from `seed` and SoftwareOne memberships get fresh
        invitation links; the configuration (rates, flags) is kept.
        """
        with self._lock:
            self._clear()

    # --- what tests read -----------------------------------------------------------------------

    def emails_sent(self, user_id: str) -> int:
        """Invitation emails sent to `user_id`, counted under the id exactly as the path gave it."""
        with self._lock:
            return self._emails[user_id]

    def emails_snapshot(self) -> dict[str, int]:
        """Emails sent per user id (only ids with at least one)."""
        with self._lock:
            return dict(self._emails)

    @property
    def emails(self) -> dict[str, int]:
        """The same as `emails_snapshot()`."""
        return self.emails_snapshot()

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request received, oldest first (the most recent `request_log_limit` ones)."""
        with self._lock:
            return list(self._requests)

    @property
    def request_count(self) -> int:
        """How many requests were received, rate-limited and faulted ones included."""
        with self._lock:
            return self._request_count

    @property
    def fault_log(self) -> list[tuple[str, Fault]]:
        """``(user_id, fault)`` for every fault applied, injected or drawn, oldest first."""
        with self._lock:
            return list(self._fault_log)

    @property
    def rate_limited(self) -> int:
        """How many requests the rate limit refused."""
        with self._lock:
            return self._rate_limited

    # --- what tests arrange --------------------------------------------------------------------

    def inject(self, user_id: str, *faults: Fault) -> None:
        """Queue `faults` for `user_id`.

        Each following request whose path names `user_id` (any vendor; resends and GETs alike)
        takes the next queued fault; once the queue is empty the user is served normally again.
        """
        queued = [Fault(fault) for fault in faults]
        with self._lock:
            self._injected.setdefault(user_id, collections.deque()).extend(queued)

    # --- what the app calls --------------------------------------------------------------------

    def _admit(self, request: RecordedRequest) -> int | None:
        """Record `request`; return None if the rate limit admits it, else Retry-After seconds."""
        with self._lock:
            self._requests.append(request)
            self._request_count += 1
            if self.rate_limit is None:
                return None
            now = self._clock()
            capacity = max(1.0, self.rate_limit)
            elapsed = max(0.0, now - self._refilled_at)
            self._tokens = min(capacity, self._tokens + elapsed * self.rate_limit)
            self._refilled_at = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return None
            self._rate_limited += 1
            return max(1, math.ceil((1.0 - self._tokens) / self.rate_limit))

    def _take_fault(self, user_id: str, *, resend: bool) -> Fault | None:
        """The fault due for this request: the next injected one, else a random draw (resends)."""
        with self._lock:
            queue = self._injected.get(user_id)
            if queue:
                fault = queue.popleft()
            elif resend and self.fault_rate > 0 and self._rng.random() < self.fault_rate:
                fault = self._rng.choice(self.faults)
            else:
                return None
            self._fault_log.append((user_id, fault))
            return fault

    def _count_email(self, user_id: str) -> None:
        with self._lock:
            self._emails[user_id] += 1

    def _find_membership(
        self, *, membership_id: str | None = None, user_id: str | None = None
    ) -> _Membership | None:
        """A copy of the live (not Deleted) membership with that id, or None."""
        with self._lock:
            for membership in self._memberships.values():
                if membership.status == "Deleted":
                    continue
                if membership.membership_id == membership_id or membership.user_id == user_id:
                    return replace(membership)
            return None

    def _renew_invitation(self, membership_id: str, counted_as: str) -> _Membership:
        """Send the invitation again: a fresh link, an updated audit time, one email counted."""
        with self._lock:
            membership = self._memberships[membership_id]
            membership.invitation_url = _invitation_url()
            membership.updated_at = _timestamp()
            self._emails[counted_as] += 1
            return replace(membership)


# --- shared ---------------------------------------------------------------------------------------


def _vendor_of(path: str) -> str:
    """The vendor whose paths `path` belongs to; ``"unknown"`` for none of them."""
    if path == "/users" or path.startswith("/users/"):
        return "ecosuite"
    if path.startswith("/public/"):
        return "softwareone"
    if path.startswith("/v1/"):
        return "tenant_api"
    return "unknown"


def _trace_id() -> str:
    return f"00-{secrets.token_hex(16)}-{secrets.token_hex(8)}-00"


_PROBLEM_TYPES = {
    400: ("https://tools.ietf.org/html/rfc9110#section-15.5.1", "Bad Request"),
    401: ("https://tools.ietf.org/html/rfc9110#section-15.5.2", "Unauthorized"),
    404: ("https://tools.ietf.org/html/rfc9110#section-15.5.5", "Not Found"),
    409: ("https://tools.ietf.org/html/rfc9110#section-15.5.10", "Conflict"),
    429: ("https://tools.ietf.org/html/rfc6585#section-4", "Too Many Requests"),
    500: ("https://tools.ietf.org/html/rfc9110#section-15.6.1", "Internal Server Error"),
    503: ("https://tools.ietf.org/html/rfc9110#section-15.6.4", "Service Unavailable"),
    504: ("https://tools.ietf.org/html/rfc9110#section-15.6.5", "Gateway Timeout"),
}


def _problem(
    status: int,
    detail: str | None,
    *,
    title: str | None = None,
    errors: object = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    """An RFC 7807 problem-details answer as SoftwareOne sends it (with a W3C ``traceId``)."""
    problem_type, default_title = _PROBLEM_TYPES[status]
    body: dict[str, object] = {"type": problem_type, "title": title or default_title}
    body["status"] = status
    if detail is not None:
        body["detail"] = detail
    body["traceId"] = _trace_id()
    if errors is not None:
        body["errors"] = errors
    return JSONResponse(body, status, headers=headers)


# Gateway-level failures, in the words AWS API Gateway (Ecosuite's front) uses.
_FAILURE_TEXT = {
    429: ("rate_limited", "Too Many Requests"),
    500: ("internal_error", "Internal server error"),
    503: ("unavailable", "Service Unavailable"),
    504: ("gateway_timeout", "Endpoint request timed out"),
}


def _failure(vendor: str, status: int, headers: dict[str, str] | None = None) -> Response:
    """A 429/500/503/504 in the JSON shape `vendor` uses for its errors."""
    code, message = _FAILURE_TEXT[status]
    if vendor == "softwareone":
        return _problem(status, message, headers=headers)
    if vendor == "tenant_api":
        return JSONResponse({"code": code, "message": message}, status, headers=headers)
    return JSONResponse({"message": message}, status, headers=headers)


_BAD_GATEWAY_PAGE = "<html><body><h1>502 Bad Gateway</h1></body></html>"
_SERVER_ERROR_PAGE = (
    "<!DOCTYPE html><html><head><title>500 Internal Server Error</title></head>"
    "<body><h1>Internal Server Error</h1>"
    "<p>The server encountered an unexpected condition.</p></body></html>"
)
_TRUNCATED_JSON = b'{"message": "Invite re'


def _fault_response(fault: Fault, vendor: str, retry_after: int) -> Response:
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


# --- the ------------------------------------------------------------------------------------------


class _Admission:
    """Records every HTTP request and refuses those over the rate limit."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        vendor = _vendor_of(scope["path"])
        retry_after = _sandbox_of(scope)._admit(
            RecordedRequest(vendor, scope["method"], scope["path"])
        )
        if retry_after is None:
            await self.app(scope, receive, send)
        else:
            response = _failure(vendor, 429, {"Retry-After": str(retry_after)})
            await response(scope, receive, send)


_DROPPED_LENGTH = 100


class _FaultGate:
    """One vendor route, behind the faults due for the user id its path names.

    `id_param` is the path parameter holding that id; `resend` marks routes that may send an
    email, the only ones random faults hit.
    """

    def __init__(
        self, endpoint: Callable[[Request], Awaitable[Response]], *, id_param: str, resend: bool
    ) -> None:
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
            response = _fault_response(fault, _vendor_of(scope["path"]), sandbox.retry_after)
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


# --- Ecosuite -------------------------------------------------------------------------------------


def _ecosuite_message(status: int, message: str) -> JSONResponse:
    return JSONResponse({"message": message}, status)


def _ecosuite_refusal(request: Request, user_id: str) -> JSONResponse | None:
    """401 for a bad token, 403 for a user the token may not manage, 404 for an unknown user."""
    # The contract: the raw token; some clients send "Bearer <token>", which Ecosuite accepts too.
    if request.headers.get("authorization") not in (ECOSUITE_TOKEN, f"Bearer {ECOSUITE_TOKEN}"):
        return _ecosuite_message(401, "Unauthorized")
    if user_id == ECOSUITE_USER_FORBIDDEN:
        return _ecosuite_message(403, "Forbidden")
    if user_id not in _sandbox_of(request.scope)._ecosuite_profiles:
        return _ecosuite_message(404, "User not found")
    return None


def _plain(value: object) -> object:
    """`value` with read-only mappings turned into dicts, ready for JSON."""
    if isinstance(value, Mapping):
        return {str(key): _plain(item) for key, item in value.items()}
    return value


_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def _valid_resend_body(body: object) -> bool:
    """Whether `body` is the documented user object: the resend's only validation."""
    if not isinstance(body, dict):
        return False
    for field in ("email", "firstName", "lastName"):
        value = body.get(field)
        if not isinstance(value, str) or not value.strip():
            return False
    if "@" not in body["email"]:
        return False
    for field in ("timezone", "userType"):
        if field in body and not isinstance(body[field], str):
            return False
    if "access" not in body:
        return True
    access = body["access"]
    if not isinstance(access, dict):
        return False
    for field in ("startDate", "endDate"):
        if field in access and not (
            isinstance(access[field], str) and _DATE.fullmatch(access[field])
        ):
            return False
    return access.get("preventDownload", "no") in ("no", "yes") and access.get(
        "restrictProjects", "no"
    ) in ("no", "portfolios", "yes")


async def _ecosuite_get_user(request: Request) -> Response:
    user_id = request.path_params["user_id"]
    refusal = _ecosuite_refusal(request, user_id)
    if refusal is not None:
        return refusal
    return JSONResponse(_plain(_sandbox_of(request.scope)._ecosuite_profiles[user_id]))


async def _ecosuite_resend(request: Request) -> Response:
    user_id = request.path_params["user_id"]
    refusal = _ecosuite_refusal(request, user_id)
    if refusal is not None:
        return refusal
    try:
        body: Any = json.loads(await request.body())
    except ValueError:
        body = None
    if not _valid_resend_body(body):
        # The only 400 text the contract documents, whatever the actual problem.
        return _ecosuite_message(400, "Invalid status value")
    _sandbox_of(request.scope)._count_email(user_id)
    return JSONResponse({})


# --- SoftwareOne ----------------------------------------------------------------------------------


def _softwareone_unauthorized(request: Request) -> Response | None:
    if request.headers.get("authorization") != f"Bearer {SOFTWAREONE_TOKEN}":
        return _problem(401, "A valid bearer token is required.")
    return None


def _gateway_not_found() -> Response:
    return JSONResponse({"message": "Resource not found", "statusCode": 404}, 404)


def _circular_reference() -> dict[str, str]:
    """The seed's ``audit.*.by``: a documentation artifact the sandbox reproduces on purpose."""
    return {str(index): char for index, char in enumerate("[Circular Reference]")}


def _account_user(membership: _Membership) -> dict[str, object]:
    """The account-user object of the contract (seed 003), plus the member's ``status``."""
    accepted = membership.status == "Active"
    return {
        "id": membership.membership_id,
        "status": membership.status,
        "audit": {
            "created": {"at": _SEEDED_AT, "by": _circular_reference()},
            "updated": {"at": membership.updated_at, "by": _circular_reference()},
            "invitationAcceptedAt": _SEEDED_AT if accepted else None,
            "access": {"at": _SEEDED_AT if accepted else None},
            "joined": {"at": _SEEDED_AT if accepted else None},
        },
        "$meta": {"omitted": ["settings"]},
        "user": {"id": membership.user_id, "icon": None, "name": membership.name},
        "groups": [
            {
                "id": "UGR-0000-0001",
                "name": "Administrators",
                "description": "Manages users and access of the account.",
                "logo": None,
                "isDefault": True,
            }
        ],
        "buyers": [{"id": "BUY-0000-0001", "icon": None, "name": "Sandbox Buyer"}],
        "modules": [
            {
                "id": "MOD-0000-0001",
                "description": "Users, groups and API tokens.",
                "name": "Access Management",
                "filters": {"group.buyers": ["BUY-0000-0001"]},
                "settings": {
                    "configurable": True,
                    "default": True,
                    "paid": False,
                    "type": ["Client"],
                    "obsolete": False,
                    "eligibility": {"multi": True, "single": True},
                },
            }
        ],
        "account": {
            "id": SOFTWAREONE_ACCOUNT_ID,
            "icon": None,
            "type": "Client",
            "status": "Active",
            "name": "Sandbox Client",
        },
        "invitation": {
            "url": None if accepted else membership.invitation_url,
            "status": membership.status,
        },
        "lastLoginAt": _SEEDED_AT if accepted else None,
    }


def _softwareone_resend(sandbox: Sandbox, membership: _Membership | None, path_id: str) -> Response:
    """Resend to a live membership; allowed only while it is Invited."""
    if membership is None:
        return _problem(404, f"Account user {path_id} not found.")
    if membership.status == "Active":
        return _problem(
            400,
            None,
            title="One or more validation errors occurred.",
            errors={"status": ["Account user is not in Invited state."]},
        )
    if membership.status == "InvitationExpired":
        message = "Invitation has expired; send a new invitation."
        return _problem(
            409,
            message,
            errors=[
                {
                    "id": membership.membership_id,
                    "message": message,
                    "properties": ["status"],
                    "parameters": {},
                }
            ],
        )
    renewed = sandbox._renew_invitation(membership.membership_id, counted_as=path_id)
    return JSONResponse(_account_user(renewed))


def _softwareone_read(membership: _Membership | None, path_id: str) -> Response:
    if membership is None:
        return _problem(404, f"Account user {path_id} not found.")
    return JSONResponse(_account_user(membership))


async def _softwareone_legacy_get(request: Request) -> Response:
    sandbox = _sandbox_of(request.scope)
    if sandbox.legacy_removed:
        return _gateway_not_found()
    refusal = _softwareone_unauthorized(request)
    if refusal is not None:
        return refusal
    membership_id = request.path_params["membership_id"]
    return _softwareone_read(sandbox._find_membership(membership_id=membership_id), membership_id)


async def _softwareone_legacy_resend(request: Request) -> Response:
    sandbox = _sandbox_of(request.scope)
    if sandbox.legacy_removed:
        return _gateway_not_found()
    refusal = _softwareone_unauthorized(request)
    if refusal is not None:
        return refusal
    membership_id = request.path_params["membership_id"]
    membership = sandbox._find_membership(membership_id=membership_id)
    return _softwareone_resend(sandbox, membership, membership_id)


def _softwareone_member(request: Request) -> Response | _Membership | None:
    """The refusal for a bad token or unknown account, else the membership the path names."""
    refusal = _softwareone_unauthorized(request)
    if refusal is not None:
        return refusal
    account_id = request.path_params["account_id"]
    if account_id != SOFTWAREONE_ACCOUNT_ID:
        return _problem(404, f"Account {account_id} not found.")
    return _sandbox_of(request.scope)._find_membership(user_id=request.path_params["user_id"])


async def _softwareone_get(request: Request) -> Response:
    member = _softwareone_member(request)
    if isinstance(member, Response):
        return member
    return _softwareone_read(member, request.path_params["user_id"])


async def _softwareone_resend_current(request: Request) -> Response:
    member = _softwareone_member(request)
    if isinstance(member, Response):
        return member
    return _softwareone_resend(_sandbox_of(request.scope), member, request.path_params["user_id"])


async def _softwareone_unknown_route(request: Request) -> Response:
    return _gateway_not_found()


# --- tenant-header --------------------------------------------------------------------------------


def _tenant_error(status: int, code: str, message: str, **extra: object) -> JSONResponse:
    return JSONResponse({"code": code, "message": message, **extra}, status)


def _as_uuid(text: str | None) -> uuid.UUID | None:
    try:
        return uuid.UUID(text) if text is not None else None
    except ValueError:
        return None


_TENANT_INVITED = frozenset({TENANT_USER_INVITED, TENANT_USER_INVITED_2})


async def _tenant_resend(request: Request) -> Response:
    headers = request.headers
    if (
        headers.get("x-api-key") != TENANT_API_KEY
        and headers.get("authorization") != f"Bearer {TENANT_BEARER_TOKEN}"
    ):
        return _tenant_error(401, "unauthorized", "Missing or invalid credential.")
    tenant_header = headers.get("x-tenant-id")
    tenant = _as_uuid(tenant_header)
    if tenant is None:
        problem = "is required" if tenant_header is None else "must be a UUID"
        return _tenant_error(400, "invalid_tenant", f"X-Tenant-ID header {problem}.")
    if tenant != uuid.UUID(TENANT_ID):
        return _tenant_error(
            403,
            "tenant_mismatch",
            "Credential and X-Tenant-ID belong to different tenants.",
            notices=["policy tenant-isolation forbids cross-tenant access"],
        )
    path_id = request.path_params["user_id"]
    user = _as_uuid(path_id)
    if user is None:
        return _tenant_error(400, "invalid_id", "User id must be a UUID.")
    user_id = str(user)
    if user_id == TENANT_USER_VERIFIED:
        return _tenant_error(409, "already_verified", "User is already verified.")
    if user_id == TENANT_USER_COOLDOWN:
        return _tenant_error(
            422,
            "invite_cooldown",
            "An invitation was sent recently.",
            details={"retry_in": 300},
        )
    if user_id not in _sandbox_of(request.scope)._tenant_invited:
        return _tenant_error(
            404,
            "not_found",
            "User not found.",
            notices=["policy read-users matched no user"],
        )
    _sandbox_of(request.scope)._count_email(path_id)
    return JSONResponse({"message": "Invite resent."})


# --- the ------------------------------------------------------------------------------------------

_ROUTES = [
    Route(
        "/users/{user_id}",
        _FaultGate(_ecosuite_get_user, id_param="user_id", resend=False),
        methods=["GET"],
    ),
    Route(
        "/users/{user_id}/resend",
        _FaultGate(_ecosuite_resend, id_param="user_id", resend=True),
        methods=["PUT"],
    ),
    Route(
        "/public/v1/accounts/account-users/{membership_id}",
        _FaultGate(_softwareone_legacy_get, id_param="membership_id", resend=False),
        methods=["GET"],
    ),
    Route(
        "/public/v1/accounts/account-users/{membership_id}/resend-invite",
        _FaultGate(_softwareone_legacy_resend, id_param="membership_id", resend=True),
        methods=["POST"],
    ),
    Route(
        "/public/v1/accounts/accounts/{account_id}/users/{user_id}",
        _FaultGate(_softwareone_get, id_param="user_id", resend=False),
        methods=["GET"],
    ),
    Route(
        "/public/v1/accounts/accounts/{account_id}/users/{user_id}/resend-invite",
        _FaultGate(_softwareone_resend_current, id_param="user_id", resend=True),
        methods=["POST"],
    ),
    # SoftwareOne's gateway answers every other path (the removed families too) in its own shape.
    Route(
        "/public/{rest:path}",
        _softwareone_unknown_route,
        methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
    ),
    Route(
        "/v1/users/{user_id}/resend-invite",
        _FaultGate(_tenant_resend, id_param="user_id", resend=True),
        methods=["POST"],
    ),
]


def create_app(sandbox: Sandbox | None = None) -> Starlette:
    """The ASGI app playing Ecosuite, SoftwareOne and the tenant-header API on one base URL.

    `sandbox` (a new default `Sandbox` when None) holds the state and is also reachable as
    ``app.state.sandbox``. Serve it in-process with ``httpx.ASGITransport`` or over a socket with
    `serve`.
    """
    app = Starlette(routes=_ROUTES, middleware=[Middleware(_Admission)])
    app.state.sandbox = sandbox if sandbox is not None else Sandbox()
    return app
