"""The sandbox's vendor plug-in API: `VendorSandbox`, `VendorRoute` and the default error shape.

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

import threading
from collections.abc import Awaitable, Callable, Sequence
from typing import TYPE_CHECKING, NamedTuple

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

if TYPE_CHECKING:
    from collections.abc import Mapping

    from ._core import Sandbox

Endpoint = Callable[[Request], Awaitable[Response]]


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


_UNROUTED = {404: ("not_found", "Not Found"), 405: ("method_not_allowed", "Method Not Allowed")}


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

    def unrouted(self, status: int) -> Response:
        """A request under the vendor's paths that no route takes (404) or whose method none
        takes (405) -- e.g. an id holding a control character -- in the vendor's error shape."""
        code, message = _UNROUTED.get(status, ("error", "Error"))
        return self.failure(status, code, message)

    def banner(self, url: str) -> str:
        """One line telling a person how to configure a client for this vendor."""
        return f"{self.name:<12} base_url={url}"
