"""The sandbox's shared core: emails, requests, faults, the rate limit, and the vendor plug-in API.

A simulated vendor is a `VendorSandbox`: it owns the paths under its ``path_prefixes``, holds its
own state (seeded users, memberships), and contributes `VendorRoute` entries. The core wraps every
route that names a user in the fault gate, records every request, applies the rate limit and
counts emails; it never looks at a vendor's name. Adding a vendor means writing one subclass and
passing an instance to `Sandbox`; nothing here changes::

    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response

    from invites.sandbox import Sandbox, VendorRoute, VendorSandbox, create_app, default_vendors


    class AcmeSandbox(VendorSandbox):
        name = "acme"
        path_prefixes = ("/acme",)

        def reset(self) -> None:  # called on creation and by `Sandbox.reset`
            self.invited = {"u-1"}

        def routes(self) -> list[VendorRoute]:
            return [
                VendorRoute(
                    "/acme/users/{user_id}/invite", self.resend, ("POST",), "user_id", resend=True
                )
            ]

        async def resend(self, request: Request) -> Response:
            user_id = request.path_params["user_id"]
            if user_id not in self.invited:
                return JSONResponse({"error": "no such user"}, 404)
            self.sandbox.count_email(user_id)
            return JSONResponse({"ok": True})


    sandbox = Sandbox(vendors=[*default_vendors(), AcmeSandbox()])
    app = create_app(sandbox)

The contract of a vendor object:

- ``name`` (recorded on each `RecordedRequest`, used by `Sandbox.add_users` and `Sandbox.vendor`)
  and ``path_prefixes`` (a path belongs to the vendor when it equals a prefix or continues it after
  a ``/``) must not clash with another vendor's, nor claim the sandbox's own ``/__sandbox__``.
- `VendorSandbox.routes` lists its routes. A route with an ``id_param`` passes the fault gate: the
  next injected fault for that user id (and, when ``resend`` is true, a random draw) applies before
  the endpoint runs. A route without one is served as is.
- Endpoints count each invitation email with `Sandbox.count_email`; `VendorSandbox.sandbox` is the
  sandbox the vendor is attached to. One vendor object belongs to one sandbox.
- `VendorSandbox.reset` rebuilds per-run state; `VendorSandbox.add_users` (optional) seeds more
  invitable users that survive a reset; `VendorSandbox.failure` renders a 429/500/503/504 in the
  vendor's JSON error shape (default ``{"message": ...}``).
- Endpoints run on the server's event-loop thread while tests read from another: guard state both
  touch with ``self.lock``.
"""

from __future__ import annotations

import asyncio
import collections
import math
import random
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, TypeVar

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from ._faults import ALL_FAULTS, Fault

if TYPE_CHECKING:
    from collections.abc import Mapping

RESERVED_PREFIX = "/__sandbox__"
"""Paths of the sandbox itself (``/__sandbox__/stats``): no vendor may claim them."""

Clock = Callable[[], float]
Sleep = Callable[[float], Awaitable[None]]
Endpoint = Callable[[Request], Awaitable[Response]]


class RecordedRequest(NamedTuple):
    """One request the sandbox received. Headers are never kept: they carry credentials."""

    vendor: str
    """The owning vendor's ``name`` (``"ecosuite"``, ``"softwareone"``, ...) or ``"unknown"``."""
    method: str
    path: str


class VendorRoute(NamedTuple):
    """One route a vendor contributes (see the module docstring)."""

    path: str
    """A Starlette path template, e.g. ``"/users/{user_id}/resend"``."""
    endpoint: Endpoint
    methods: Sequence[str]
    id_param: str | None = None
    """The path parameter naming the user: faults injected for that id apply. None: no faults."""
    resend: bool = False
    """Whether the route may send an email: only those draw random faults."""


def json_failure(
    status: int, code: str, message: str, headers: Mapping[str, str] | None = None
) -> Response:
    """``{"message": message}``: the default shape of a vendor's 429/500/503/504 answer."""
    return JSONResponse({"message": message}, status, headers=dict(headers or {}))


class VendorSandbox:
    """One simulated vendor: its paths, routes and state. Subclass it (module docstring)."""

    name: str = ""
    path_prefixes: tuple[str, ...] = ()

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self._sandbox: Sandbox | None = None
        self.reset()

    @property
    def sandbox(self) -> Sandbox:
        """The sandbox this vendor is attached to (the one that counts its emails)."""
        if self._sandbox is None:
            raise RuntimeError(f"the {self.name} vendor is not attached to a Sandbox")
        return self._sandbox

    def attach(self, sandbox: Sandbox) -> None:
        """Called by `Sandbox` when it takes this vendor. Raises ValueError for a second one."""
        if self._sandbox is not None and self._sandbox is not sandbox:
            raise ValueError(f"the {self.name} vendor object already belongs to another Sandbox")
        self._sandbox = sandbox

    def owns(self, path: str) -> bool:
        """Whether `path` is one of this vendor's (a prefix, or a prefix then ``/``)."""
        return any(path == prefix or path.startswith(prefix + "/") for prefix in self.path_prefixes)

    def routes(self) -> Sequence[VendorRoute]:
        """The vendor's routes, tried in order."""
        raise NotImplementedError

    def reset(self) -> None:
        """Rebuild the state a run changes; called on creation and by `Sandbox.reset`."""

    def add_users(self, user_ids: Sequence[str]) -> None:
        """Seed more invitable users, kept across resets. Default: not supported."""
        raise ValueError(f"the {self.name} sandbox cannot add users")

    def new_user_ids(self, count: int) -> list[str]:
        """`count` distinct ids in the form this vendor's users take, for `add_users`.

        Default: ``<name>-bulk-000001`` onwards; vendors whose ids have a fixed form override it.
        """
        return [f"{self.name}-bulk-{n:06d}" for n in range(1, count + 1)]

    def failure(
        self, status: int, code: str, message: str, headers: Mapping[str, str] | None = None
    ) -> Response:
        """A 429/500/503/504 in the vendor's error shape (`code` for vendors with codes)."""
        return json_failure(status, code, message, headers)

    def banner(self, url: str) -> str:
        """One line telling a person how to configure a client for this vendor."""
        return f"{self.name:<12} base_url={url}"


V = TypeVar("V", bound=VendorSandbox)


class Sandbox:
    """The state behind the simulated vendors: emails sent, requests seen, faults due.

    Thread-safe: the app mutates it on uvicorn's event-loop thread while tests read it from
    another thread. Every accessor returns a copy.

    Args:
        vendors: the simulated vendors (`VendorSandbox` objects, each used by one sandbox only);
            None: `default_vendors()`, Ecosuite, SoftwareOne and the tenant-header API.
        fault_rate: probability in [0, 1] that a resend request (never a GET) draws a random
            fault from `faults`. Injected faults (`inject`) come first and are not drawn.
        seed: seed of the random generator behind `fault_rate`; the same seed and the same
            sequence of requests give the same `fault_log`.
        faults: the kinds a random draw picks from (default: every `Fault`).
        rate_limit: admit at most this many requests per second across all vendors (a token
            bucket holding ``max(1, rate_limit)`` tokens); beyond it, 429 with ``Retry-After``.
        retry_after: seconds sent in ``Retry-After`` by `Fault.RATE_LIMIT` and `Fault.UNAVAILABLE`.
        slow_seconds: how long `Fault.SLOW` waits before answering.
        request_log_limit: keep only the most recent this-many entries in `requests` (None: all);
            `request_count` still counts every request.
        clock: monotonic seconds for the rate limit; tests pass a frozen clock.
        sleep: the coroutine `Fault.SLOW` awaits; tests pass one that returns at once.

    Raises:
        ValueError: an argument out of range, or two vendors with one name.
    """

    def __init__(
        self,
        *,
        vendors: Iterable[VendorSandbox] | None = None,
        fault_rate: float = 0.0,
        seed: int | None = None,
        faults: Sequence[Fault] = ALL_FAULTS,
        rate_limit: float | None = None,
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
        self.retry_after = retry_after
        self.slow_seconds = slow_seconds
        self.request_log_limit = request_log_limit
        self._clock = clock
        self._sleep = sleep
        self._lock = threading.Lock()
        self._vendors = self._take_vendors(vendors)
        self._clear()

    def _take_vendors(self, vendors: Iterable[VendorSandbox] | None) -> dict[str, VendorSandbox]:
        if vendors is None:
            from . import default_vendors  # the built-in vendors import this module

            vendors = default_vendors()
        taken: dict[str, VendorSandbox] = {}
        for vendor in vendors:
            if not vendor.name or vendor.name in taken or vendor.name == "unknown":
                raise ValueError(f"vendor name {vendor.name!r} is empty, reserved or taken twice")
            if vendor.owns(RESERVED_PREFIX):
                raise ValueError(f"the {vendor.name} vendor claims {RESERVED_PREFIX}, reserved")
            vendor.attach(self)
            taken[vendor.name] = vendor
        return taken

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

    def reset(self) -> None:
        """Forget emails, requests, queued faults, the fault log and rate-limit state.

        The random generator restarts from `seed` and every vendor resets its own state (e.g.
        SoftwareOne memberships get fresh invitation links); the configuration is kept.
        """
        with self._lock:
            self._clear()
        for vendor in self._vendors.values():
            vendor.reset()

    # --- the vendors ---------------------------------------------------------------------------

    @property
    def vendors(self) -> tuple[VendorSandbox, ...]:
        """The simulated vendors, in the order given."""
        return tuple(self._vendors.values())

    def vendor(self, kind: type[V]) -> V:
        """The vendor object of class `kind` (e.g. ``sandbox.vendor(SoftwareOneSandbox)``).

        Raises:
            LookupError: no vendor of that class.
        """
        for vendor in self._vendors.values():
            if isinstance(vendor, kind):
                return vendor
        raise LookupError(f"this sandbox has no {kind.__name__}")

    def vendor_of(self, path: str) -> VendorSandbox | None:
        """The vendor whose paths `path` belongs to, None for none of them."""
        for vendor in self._vendors.values():
            if vendor.owns(path):
                return vendor
        return None

    def add_users(self, vendor: str, user_ids: Iterable[str]) -> None:
        """Seed more users who can be re-invited (kept across `reset`), e.g. for bulk runs.

        Built in: ``"ecosuite"`` (each gets a complete generated profile), ``"softwareone"``
        (user ids; each gets an ``Invited`` membership in `SOFTWAREONE_ACCOUNT_ID`) and
        ``"tenant_api"`` (ids must be UUIDs).

        Raises:
            ValueError: no vendor of that name, or it cannot add users.
        """
        found = self._vendors.get(vendor)
        if found is None:
            raise ValueError(f"no vendor named {vendor!r}; vendors: {', '.join(self._vendors)}")
        found.add_users(list(user_ids))

    def seed_users(self, count: int) -> dict[str, list[str]]:
        """Add `count` invitable users to every vendor that can add users (`add_users`).

        Returns the new ids by vendor name; vendors that cannot add users are left out.
        """
        if count < 0:
            raise ValueError(f"count must not be negative, not {count!r}")
        seeded: dict[str, list[str]] = {}
        for vendor in self._vendors.values():
            user_ids = vendor.new_user_ids(count)
            try:
                vendor.add_users(user_ids)
            except ValueError:
                continue
            seeded[vendor.name] = user_ids
        return seeded

    def stats(self) -> dict[str, Any]:
        """What ``GET /__sandbox__/stats`` answers: emails per user and in all, requests seen
        (that read itself not counted), requests refused by the rate limit, faults applied."""
        with self._lock:
            return {
                "emails": dict(self._emails),
                "emails_total": sum(self._emails.values()),
                "requests": self._request_count,
                "rate_limited": self._rate_limited,
                "faults": len(self._fault_log),
            }

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

    # --- what tests and vendors arrange --------------------------------------------------------

    def inject(self, user_id: str, *faults: Fault) -> None:
        """Queue `faults` for `user_id`.

        Each following request whose path names `user_id` (any vendor; resends and GETs alike)
        takes the next queued fault; once the queue is empty the user is served normally again.
        """
        queued = [Fault(fault) for fault in faults]
        with self._lock:
            self._injected.setdefault(user_id, collections.deque()).extend(queued)

    def count_email(self, user_id: str) -> None:
        """Count one invitation email to `user_id`: vendor endpoints call it when they send one."""
        with self._lock:
            self._emails[user_id] += 1

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
